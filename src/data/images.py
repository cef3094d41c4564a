"""Images from outside the data set (a user's PNG/JPEG files, or tensors) brought to a model's input format.

What a user would expect of a photo or a drawing of a digit: any size, colour or grey, is turned into what
the data set's images look like -- the data set's channel count (colour to grey by PIL's ITU-R 601 luma, grey
to colour by repeating the channel), its height and width (a larger picture shrunk by area averaging, a
smaller one enlarged bilinearly; aspect ratio not kept: the data sets' images are square and so are most crops
a user would make), values in [0, 1]. For data sets of
light strokes on a dark background (MNIST, FashionMNIST), a picture with a light border (black ink on white
paper) is inverted, so that it looks like the training images.
"""

from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torchvision.transforms.functional import pil_to_tensor

from src.errors import UsageError

SUFFIXES = (".png", ".jpg", ".jpeg")


def image_files(path: Path) -> list[Path]:
    """The PNG/JPEG files named by `path`: the file itself, or the folder's images in sorted order."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise UsageError(f"predict_path {path} does not exist; pass an image file or a folder of PNG/JPEG images")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())
    if not files:
        raise UsageError(f"no PNG or JPEG images in {path}; pass a folder that holds some, or one image file")
    return files


def open_image(path, channels: int, max_pixels: int | None = None) -> Image.Image | str:
    """The file as a grey (channels 1) or RGB (3) PIL image, or the reason it cannot be one: unreadable, not an image,
    or (checked from its header, before decoding) more than max_pixels pixels."""
    try:
        with Image.open(path) as img:
            if max_pixels is not None and img.width * img.height > max_pixels:
                return f"{img.width}x{img.height} pixels, more than max_pixels={max_pixels:,}"
            img.load()
            return img.convert("L" if channels == 1 else "RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as err:
        return f"{type(err).__name__}: {' '.join(str(err).split())[:120]}"


def read_image(path: Path, in_shape: tuple[int, int, int], dark_background: bool) -> torch.Tensor:
    """One file -> float [C, H, W] in [0, 1] in the model's shape (see prepare)."""
    img = open_image(path, in_shape[0])
    if isinstance(img, str):
        raise UsageError(f"cannot read the image {path} ({img}); remove or replace it")
    return prepare([img], in_shape, dark_background)[0]


def prepare(images, in_shape, dark_background: bool) -> torch.Tensor:
    """A user's images -> float [N, *in_shape] in [0, 1], the one path of CLI predict, predict_images and the files of
    predict_path: uint8 [N, C, H, W], float [N, C, H, W] in [0, 1], or a list of PIL images or [C, H, W] tensors of any
    sizes; channels mapped (to_unit_range), resized (resize), and inverted where the data set's images are light on
    dark and an image has a light border. A batch tensor goes through in one piece (predict's 1,000-image batches)."""
    c, h, w = in_shape
    if isinstance(images, torch.Tensor) and images.dim() != 3:
        x = resize(to_unit_range(images, c), (h, w))
    else:  # one image, or a list of images that may differ in size: each on its own
        items = [images] if isinstance(images, torch.Tensor) else list(images)
        x = torch.cat(
            [resize(to_unit_range(i[None] if isinstance(i, torch.Tensor) else [i], c), (h, w)) for i in items]
        )
    if dark_background:
        x = torch.where(light_borders(x).view(-1, 1, 1, 1), 1.0 - x, x)
    return x


def resized(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """A PIL image at (H, W) = size: area averaging (BOX) to shrink, bilinear to enlarge; aspect ratio not kept."""
    if (img.height, img.width) == tuple(size):
        return img
    shrink = img.width >= size[1] and img.height >= size[0]
    return img.resize((size[1], size[0]), Image.BOX if shrink else Image.BILINEAR)


def light_borders(x: torch.Tensor) -> torch.Tensor:
    """Whether each image's outermost pixels are mostly light: x float [N, C, H, W] in [0, 1] -> bool [N]."""
    border = torch.cat(
        [x[:, :, 0].flatten(1), x[:, :, -1].flatten(1), x[:, :, :, 0].flatten(1), x[:, :, :, -1].flatten(1)], 1
    )
    return border.float().mean(dim=1) > 0.5


def read_images(files: list[Path], in_shape: tuple[int, int, int], dark_background: bool) -> torch.Tensor:
    """-> float [N, C, H, W] in [0, 1]; the first unreadable file stops it with a one-line error that names it."""
    return torch.stack([read_image(f, in_shape, dark_background) for f in files])


def to_unit_range(images, channels: int) -> torch.Tensor:
    """uint8 or float images [N, C, H, W] (or a list of same-size PIL images) -> float32 in [0, 1] with `channels`
    channels.
    uint8 is scaled by 1/255; float is taken to be in [0, 1] already. 1 <-> 3 channels are mapped (luma weights
    of ITU-R 601 for colour -> grey, as PIL's convert("L")); a 4th (alpha) channel is dropped."""
    if isinstance(images, (list, tuple)):
        images = torch.stack([pil_to_tensor(img.convert("L" if channels == 1 else "RGB")) for img in images])
    if images.dim() != 4:
        raise UsageError(f"images must be [N, C, H, W], got shape {list(images.shape)}")
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    if x.shape[1] == 4:
        x = x[:, :3]
    if x.shape[1] == channels:
        return x
    if (x.shape[1], channels) == (3, 1):
        return (x * torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
    if (x.shape[1], channels) == (1, 3):
        return x.expand(-1, 3, -1, -1)
    raise UsageError(
        f"images have {images.shape[1]} channels but the model takes {channels}: pass grey (1), RGB (3) "
        "or RGBA (4) images"
    )


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Float images [N, C, H, W] -> [N, C, *size]: area averaging to shrink, bilinear to enlarge; aspect ratio not
    kept."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = x.shape[-2] >= size[0] and x.shape[-1] >= size[1]
    return F.interpolate(x, size=size, mode="area") if shrink else F.interpolate(x, size=size, mode="bilinear")
