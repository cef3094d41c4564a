"""The in-memory dataset behind every data module (a whole split as two tensors), its resumable loader, and batched
augmentation on the device that holds the batch (no per-image PIL work).

A DataLoader over it (num_workers=0) asks `__getitems__` for a whole batch of indices at once, so a batch costs one
tensor-indexing op on the device the data lives on, instead of N `__getitem__` calls, N PIL transforms and a
collate. Samplers stay the library's own (DistributedSampler, UnrepeatedDistributedSampler), so shuffling and DDP
sharding are the ones every Lightning user knows."""

import torch
from torch.utils.data import DataLoader, Dataset


class InMemoryDataset(Dataset):
    """images: [N, C, H, W] float (normalized), labels: [N] int64, both on the same device."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch: ([B, C, H, W], [B]) by a single gather."""
        index = torch.as_tensor(indices, device=self.labels.device)
        return self.images[index], self.labels[index]


def keep_batch(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """collate_fn for InMemoryDataset: `__getitems__` already returns the collated batch.
    (A module-level function, so DataLoaders stay picklable for ddp_spawn.)"""
    return batch


class ResumableLoader(DataLoader):
    """The training DataLoader, resumable mid-epoch: an iterator that starts where the training loop has already
    processed k batches of this epoch (a fit resumed from a mid-epoch checkpoint, whose progress Lightning restores)
    draws the same (seed, epoch) permutation and discards its first k batches, so the run goes on with exactly the
    batches an unbroken one would see.

    k is the trainer's own count (`done`, set by the data module), read at the first batch, after Lightning has
    restored the checkpoint and set the sampler's epoch; not a loader state_dict, which Lightning drops here
    (src/frameworks.py: batches_fetched says why)."""

    done = None  # () -> batches of the current epoch the training loop has fetched already (0 unless resumed)

    def __iter__(self):
        return self._skipping(super().__iter__())

    def state_dict(self) -> dict:
        """Nothing of its own to save: its position is the fit loop's restored progress (`done`). The pair of methods
        is how Lightning knows a loader resumes mid-epoch; without them it warns, on every such resume, that it may
        not."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """See state_dict: the position comes from the trainer, not from the checkpoint's loader state."""

    def _skipping(self, batches):
        for _ in range(min(self.done() if self.done is not None else 0, len(self))):
            next(batches)
        yield from batches


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
