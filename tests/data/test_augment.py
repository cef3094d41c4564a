import torch
import torch.nn.functional as F

from src.data.memory import random_crop_flip


def test_crop_flip_matches_per_image_reference():
    x = torch.randn(16, 3, 8, 8)
    out = random_crop_flip(x, pad=2, generator=torch.Generator().manual_seed(5))
    # Replay the same draws and crop each image by slicing, as torchvision does one image at a time.
    g = torch.Generator().manual_seed(5)
    dy, dx = torch.randint(0, 5, (2, 16, 1), generator=g)
    flip = torch.rand(16, 1, generator=g) < 0.5
    for i in range(16):
        padded = torch.stack([F.pad(x[i, c], (2, 2, 2, 2), value=0.0) for c in range(3)])
        crop = padded[:, dy[i, 0] : dy[i, 0] + 8, dx[i, 0] : dx[i, 0] + 8]
        expected = crop.flip(2) if flip[i, 0] else crop
        assert torch.equal(out[i], expected), i
    assert flip.any() and not flip.all() and (dy != 2).any()  # the draw exercised both branches


def test_same_key_same_augmentation():
    x = torch.randn(4, 3, 32, 32)
    a, b = (random_crop_flip(x, 4, torch.Generator().manual_seed(1)) for _ in range(2))
    c = random_crop_flip(x, 4, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c) and a.shape == x.shape


def test_no_padding_flips_only():
    """crop_pad: 0 (the Fashion-MNIST CNN recipes): every image comes back whole, as it was or mirrored, both seen."""
    x = torch.randn(32, 1, 28, 28)
    out = random_crop_flip(x, 0, torch.Generator().manual_seed(3))
    same = [torch.equal(o, i) for o, i in zip(out, x)]
    mirrored = [torch.equal(o, i.flip(2)) for o, i in zip(out, x)]
    assert all(s != m for s, m in zip(same, mirrored)) and any(same) and any(mirrored)
