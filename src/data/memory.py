"""The in-memory dataset behind every data module (a whole split as two tensors), and its resumable loader.

A DataLoader over it (num_workers=0) asks `__getitems__` for a whole batch of indices at once, so a
batch costs one tensor-indexing op on the device the data lives on, instead of N `__getitem__` calls,
N PIL transforms and a collate. Samplers stay the library's own (DistributedSampler,
UnrepeatedDistributedSampler), so shuffling and DDP sharding are the ones every Lightning user knows.
"""

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
    """The training DataLoader, resumable mid-epoch. Lightning saves state_dict() in every checkpoint and hands it
    to load_state_dict() when a fit resumes; the resumed epoch then skips the batches that were already trained on,
    so an interrupted run goes on with exactly the batches an unbroken one would see.

    The state is (epoch, batches processed), read from the trainer's own progress (`progress`, set by the data
    module) rather than counted here. Skipping draws the same (seed, epoch) permutation and discards its first
    index batches; it happens at the first batch, after Lightning has set the sampler's epoch."""

    progress = None  # () -> (epoch, batches of it the training loop has processed)
    skip: tuple[int, int] | None = None  # (epoch, batches) to skip in that epoch, from a checkpoint

    def state_dict(self) -> dict:
        epoch, batches = self.progress() if self.progress is not None else (0, 0)
        return {"epoch": epoch, "batches": batches}

    def load_state_dict(self, state: dict) -> None:
        self.skip = (state["epoch"], state["batches"])

    def __iter__(self):
        return self._skipping(super().__iter__())

    def _skipping(self, batches):
        skip, self.skip = self.skip, None
        if skip is not None and getattr(self.sampler, "epoch", None) == skip[0]:
            for _ in range(min(skip[1], len(self))):
                next(batches)
        yield from batches
