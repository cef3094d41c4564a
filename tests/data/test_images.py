"""A user's images brought to the data set's format: channels, size, range, background."""

import pytest
import torch
from PIL import Image

from src.data.images import image_files, read_image, read_images, to_unit_range
from src.errors import UsageError


def digit() -> torch.Tensor:
    """A 28x28 uint8 'image': a bright stroke on black, MNIST-like."""
    x = torch.zeros(28, 28, dtype=torch.uint8)
    x[6:22, 12:16] = 255
    x[6:9, 9:16] = 200
    return x


def test_an_rgb_picture_twice_the_size_becomes_the_grey_original(tmp_path):
    """Nearest-neighbour doubling, then area-averaged halving, returns every pixel; RGB with equal channels is grey."""
    x = digit()
    big = Image.fromarray(x.numpy()).resize((56, 56), Image.NEAREST).convert("RGB")
    big.save(tmp_path / "a.png")
    assert torch.equal(read_image(tmp_path / "a.png", (1, 28, 28), dark_background=True), x.unsqueeze(0) / 255)


def test_black_ink_on_white_paper_is_inverted_only_for_dark_background_data(tmp_path):
    Image.fromarray((255 - digit()).numpy()).save(tmp_path / "paper.png")
    assert torch.allclose(read_image(tmp_path / "paper.png", (1, 28, 28), dark_background=True)[0], digit() / 255)
    assert torch.equal(read_image(tmp_path / "paper.png", (1, 28, 28), dark_background=False)[0], (255 - digit()) / 255)


def test_predict_images_and_files_take_one_path(tmp_path):
    """A list of PIL images of different sizes and the same pictures as files come out the same, inverted alike."""
    from src.data.images import prepare

    small = Image.fromarray((255 - digit()).numpy())  # black ink on white, 28x28
    big = Image.fromarray(digit().numpy()).resize((84, 84), Image.NEAREST)  # MNIST-like, three times the size
    small.save(tmp_path / "a.png")
    big.save(tmp_path / "b.png")
    x = prepare([small, big], (1, 28, 28), dark_background=True)
    assert x.shape == (2, 1, 28, 28) and torch.allclose(x[0], x[1]) and torch.allclose(x[0, 0], digit() / 255)
    assert torch.equal(read_images([tmp_path / "a.png", tmp_path / "b.png"], (1, 28, 28), dark_background=True), x)


def test_grey_picture_for_a_colour_model_repeats_the_channel(tmp_path):
    Image.fromarray(digit().numpy()).resize((32, 32), Image.NEAREST).save(tmp_path / "g.png")
    x = read_image(tmp_path / "g.png", (3, 32, 32), dark_background=False)
    assert x.shape == (3, 32, 32) and torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])


def test_tensors_are_scaled_and_their_channels_mapped():
    u8 = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    assert torch.equal(to_unit_range(u8, 3), u8.float() / 255)
    grey = to_unit_range(u8, 1)
    pil = (
        torch.stack(
            [
                torch.from_numpy(
                    __import__("numpy").asarray(Image.fromarray(img.permute(1, 2, 0).numpy()).convert("L"))
                )
                for img in u8
            ]
        )
        .unsqueeze(1)
        .float()
        / 255
    )
    assert grey.shape == (2, 1, 8, 8) and (grey - pil).abs().max() <= 1 / 255  # PIL's luma, up to its rounding
    assert to_unit_range(u8[:, :1], 3).shape == (2, 3, 8, 8)
    rgba = torch.cat([u8, torch.full((2, 1, 8, 8), 255, dtype=torch.uint8)], dim=1)
    assert torch.equal(to_unit_range(rgba, 3), u8.float() / 255)  # alpha dropped
    with pytest.raises(UsageError, match="2 channels but the model takes 1"):
        to_unit_range(u8[:, :2], 1)


def test_bad_files_and_folders_are_one_clear_error(tmp_path):
    with pytest.raises(UsageError, match="no PNG or JPEG images in"):
        image_files(tmp_path)
    with pytest.raises(UsageError, match="does not exist"):
        image_files(tmp_path / "missing")
    Image.fromarray(digit().numpy()).save(tmp_path / "0.png")
    (tmp_path / "1.png").write_bytes(b"not an image")
    (tmp_path / "notes.txt").write_text("ignored")
    files = image_files(tmp_path)
    assert [f.name for f in files] == ["0.png", "1.png"]
    with pytest.raises(UsageError, match=r"cannot read the image .*1\.png"):
        read_images(files, (1, 28, 28), dark_background=True)
