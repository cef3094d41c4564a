"""Batched data augmentation on the device that holds the batch (no per-image PIL work)."""

import torch


def random_crop_flip(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """torchvision's RandomCrop(size, padding=pad) + RandomHorizontalFlip(), for a whole batch.

    x: [N, C, H, W] images in [0, 1]; the padding is black (0), as torchvision pads.
    Each image gets its own offset in [0, 2*pad]^2 and its own coin flip, drawn from `generator`.
    """
    n, c, h, w = x.shape
    padded = x.new_zeros(n, c, h + 2 * pad, w + 2 * pad)  # [N, C, H+2p, W+2p]
    padded[:, :, pad : pad + h, pad : pad + w] = x
    dy, dx = torch.randint(0, 2 * pad + 1, (2, n, 1), device=x.device, generator=generator)
    flip = torch.rand(n, 1, device=x.device, generator=generator) < 0.5
    cols = dx + torch.arange(w, device=x.device)  # [N, W]
    cols = torch.where(flip, cols.flip(1), cols)  # a flip is reading the columns backwards
    rows = dy + torch.arange(h, device=x.device)  # [N, H]
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    # Index [N, H+2p, W+2p, C] with broadcastable [N,1,1], [N,H,1], [N,1,W] -> [N, H, W, C].
    return padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()
