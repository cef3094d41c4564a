"""ImageDataModule: decode a torchvision image data set once, then serve batches from memory.

Each split is decoded once into one tensor (uint8 -> float32 in [0, 1]) on the training device; the model
normalizes with the train split's statistics (mean, std), which this module computes.
Training batches come from DistributedSampler (a permutation seeded by seed + epoch, a disjoint shard
per rank), val/test batches from UnrepeatedDistributedSampler (each image scored exactly once over all
ranks, no padding). Augmentation runs batched on the device after transfer.
"""

import os
import shutil
import tempfile
from pathlib import Path

import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, DistributedSampler

from src.data.memory import InMemoryDataset, ResumableLoader, keep_batch, random_crop_flip
from src.errors import UsageError
from src.frameworks import batches_fetched, unrepeated_sampler

DATA_DIR_ENV = "DATA_DIR"  # the one setting that says where data sets live (default: ./data)


def default_data_dir() -> str:
    return os.environ.get(DATA_DIR_ENV) or "data"


def channel_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (population) std of uint8 images [N, C, H, W], on the [0, 1] scale, from each channel's
    histogram of its 256 byte values: one pass over the bytes and exact float64 sums over 256 bins, instead of
    converting 47 (MNIST) to 154 (CIFAR-10) million bytes to float64 and reducing over them."""
    values = torch.arange(256, dtype=torch.float64) / 255.0
    counts = torch.stack([torch.bincount(images[:, c].reshape(-1), minlength=256) for c in range(images.shape[1])])
    p = counts.double() / counts.sum(dim=1, keepdim=True)  # [C, 256]: the share of each byte value
    mean = p @ values
    return mean.float(), (p @ values.square() - mean.square()).sqrt().float()


class ImageDataModule(LightningDataModule):
    """Base class. A subclass sets `in_shape`, `classes`, `dark_background` (light strokes on black, as MNIST: a user's
    picture with a light border is inverted for predict) and, where one downloads it, `dataset_cls` (the torchvision
    data set), and implements `folder` and `read_split(train)`."""

    in_shape: tuple[int, int, int]
    classes: tuple[str, ...]
    dark_background: bool = False
    dataset_cls: type | None = None  # None: files of the user's own, which nothing can download

    def __init__(
        self,
        data_dir: str | None = None,  # root holding the data set's folder; default $DATA_DIR, else ./data
        batch_size: int = 128,  # training batch size per device (the global batch is this x devices x nodes)
        eval_batch_size: int = 1000,  # val/test batch size per device: no gradients, so larger is faster
        val_size: int = 5000,  # images carved from the official train set for validation
        normalize: bool = True,  # subtract the train split's per-channel mean, divide by its std
        augment: bool = False,  # random crop (crop_pad-pixel padding) + horizontal flip of training batches
        crop_pad: int = 4,  # augment's padding in pixels: 4 for CIFAR's 32x32; 0 flips only
        download: bool = True,  # fetch the data set with torchvision if its folder is not in data_dir
        seed: int = 0,  # seeds the train/val split, the per-epoch shuffles and the augmentation
        on_device: bool = True,  # hold the decoded splits on the training device (GPU) instead of in RAM
        predict_path: str
        | None = None,  # `predict` on these PNG/JPEG files (a file or a folder) instead of the test split
        val_on_test: bool = False,  # validate on the official test images and train on the whole train set (seed 004's
        # protocol); val_size is then unused, and val/acc is a test score: never tune or pick checkpoints by it
        shuffle: bool = True,  # reshuffle the training images every epoch; false: every epoch in the file's order (seed
        # 002's shuffling ablation)
    ):
        super().__init__()
        if batch_size <= 0 or eval_batch_size <= 0:
            raise UsageError(
                f"batch sizes must be positive, got batch_size={batch_size}, eval_batch_size={eval_batch_size}"
            )
        if crop_pad < 0:
            raise UsageError(f"crop_pad must be 0 (flips only) or a positive number of pixels, got {crop_pad}")
        if val_size <= 0 and not val_on_test:
            raise UsageError(
                f"val_size must be positive (early stopping and checkpointing watch val/acc), got {val_size}"
            )
        self.data_dir = Path(data_dir if data_dir is not None else default_data_dir())
        self.batch_size, self.eval_batch_size, self.val_size = batch_size, eval_batch_size, val_size
        self.normalize, self.augment, self.download, self.seed, self.on_device = (
            normalize,
            augment,
            download,
            seed,
            on_device,
        )
        self.predict_path = Path(predict_path) if predict_path is not None else None
        self.val_on_test, self.crop_pad, self.shuffle = val_on_test, crop_pad, shuffle
        self.splits: dict[str, InMemoryDataset] = {}
        self.mean = self.std = None  # [C] each, set by setup()
        self.predict_files: list[Path] = []  # the files behind the predict set's rows, when predict_path is set

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def folder(self) -> Path:
        """Where the data set's files live inside data_dir (torchvision's layout)."""
        raise NotImplementedError

    def read_split(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The official train or test split as (uint8 images [N, C, H, W], int64 labels [N]) on the CPU."""
        raise NotImplementedError

    def prepare_data(self) -> None:
        """Downloads when the data set's folder is absent or empty. Lightning runs this on one process per node, so
        concurrent ranks never download twice; a folder with files in it is never touched. The download goes into a
        temporary folder beside it and is moved into place only when it succeeded: a failed one leaves data_dir as
        it was (folders it had to create are removed again), so a data folder only ever holds whole data sets."""
        if not self.download or (self.folder.is_dir() and any(self.folder.iterdir())):
            return  # an empty folder is what a failed download used to leave behind: try again
        if self.dataset_cls is None:
            raise UsageError(
                f"{type(self).__name__}'s files are not in {self.folder}, and it has no download: put them "
                f"there, or point --data.init_args.data_dir (or {DATA_DIR_ENV}) at the folder holding them"
            )
        existing = next(p for p in [self.data_dir, *self.data_dir.parents] if p.exists())
        if not os.access(existing, os.W_OK):
            raise UsageError(
                f"cannot download into {self.data_dir}: {existing} is not writable; "
                f"set {DATA_DIR_ENV} or --data.init_args.data_dir to a writable directory"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=self.data_dir))
        try:
            for train in (True, False):
                self.dataset_cls(str(tmp), train=train, download=True)
            self.folder.parent.mkdir(parents=True, exist_ok=True)
            if self.folder.is_dir():
                self.folder.rmdir()  # empty (checked above)
            (tmp / self.folder.relative_to(self.data_dir)).rename(self.folder)
        except (OSError, RuntimeError) as err:  # URLError is an OSError
            reason = " ".join(str(err).split())[:300]  # torchvision's message spans lines; keep the error on one
            raise UsageError(
                f"could not download {self.dataset_cls.__name__} into {self.data_dir}: check the network, or "
                f"set {DATA_DIR_ENV} to a folder that already holds it ({reason})"
            ) from err
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            for folder in [self.data_dir, *self.data_dir.parents][: len(self.data_dir.parts) - len(existing.parts)]:
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()  # made above for a download that did not happen

    def setup(self, stage: str) -> None:
        if stage == "predict":
            self._setup_predict()
            return
        if self.splits:  # fit then test in one process: decode once
            return
        images, labels = self.read_split(train=True)
        if self.val_size >= len(labels) and not self.val_on_test:
            raise UsageError(f"val_size={self.val_size} leaves no training images: the train set has {len(labels)}")
        # The split depends on the seed alone, so every rank and every rerun carve the same val set.
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(self.seed))
        train_idx, val_idx = (order, None) if self.val_on_test else (order[self.val_size :], order[: self.val_size])
        train_idx = train_idx if self.shuffle else train_idx.sort().values  # unshuffled: the file's order
        channels, train_images = images.shape[1], images[train_idx]  # gathered once: the statistics and the split
        self.mean, self.std = (
            channel_stats(train_images) if self.normalize else (torch.zeros(channels), torch.ones(channels))
        )
        test_images, test_labels = self.read_split(train=False)
        device = (
            self.trainer.strategy.root_device if (self.trainer is not None and self.on_device) else torch.device("cpu")
        )
        test = self._to_dataset(test_images, test_labels, device)
        self.splits = {
            "train": self._to_dataset(train_images, labels[train_idx], device),
            "val": test if self.val_on_test else self._to_dataset(images[val_idx], labels[val_idx], device),
            "test": test,
        }

    def _setup_predict(self) -> None:
        """The predict set holds images [N, C, H, W] with their labels: the test split, or predict_path's files
        (label -1: unknown), brought to the data set's shape as predict_images brings any image (src/data/images.py)."""
        if self.predict_path is not None:
            from src.data.images import image_files, read_images  # only predict on files needs the decoder

            self.predict_files = image_files(self.predict_path)
            images = read_images(self.predict_files, self.in_shape, self.dark_background)
            labels = torch.full((len(images),), -1, dtype=torch.long)
        else:
            images, labels = self.read_split(train=False)
        device = (
            self.trainer.strategy.root_device if (self.trainer is not None and self.on_device) else torch.device("cpu")
        )
        self.splits["predict"] = InMemoryDataset(
            images.to(device).float() / (255.0 if images.dtype == torch.uint8 else 1.0), labels.to(device)
        )

    def inference_meta(self) -> dict:
        """What a trained model needs to classify a user's images without this data module (saved in its checkpoints;
        the normalization is in its weights): the class names, the image shape, the background's brightness."""
        return {"classes": list(self.classes), "in_shape": list(self.in_shape), "dark_background": self.dark_background}

    def _to_dataset(self, images: torch.Tensor, labels: torch.Tensor, device: torch.device) -> InMemoryDataset:
        """uint8 [N, C, H, W] -> float32 in [0, 1] on `device` (converted there: 4x fewer bytes to copy)."""
        return InMemoryDataset(images.to(device).float().div_(255.0), labels.to(device))

    def _rank_and_world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_dataloader(self) -> DataLoader:
        rank, world = self._rank_and_world()
        # Lightning calls set_epoch on this sampler every epoch: the order is a function of (seed, epoch).
        sampler = DistributedSampler(
            self.splits["train"], num_replicas=world, rank=rank, shuffle=self.shuffle, seed=self.seed
        )
        loader = ResumableLoader(
            self.splits["train"], batch_size=self.batch_size, sampler=sampler, collate_fn=keep_batch
        )
        loader.done = self._batches_done
        return loader

    def _batches_done(self) -> int:
        """Training batches of the current epoch the loop has fetched: 0 at an epoch's start, the checkpoint's count
        at the first batch of a fit resumed mid-epoch (ResumableLoader skips them); 0 outside a fit's loop."""
        return batches_fetched(self.trainer)

    def _eval_dataloader(self, split: str) -> DataLoader:
        rank, world = self._rank_and_world()
        # Lightning would inject a padding DistributedSampler here (scoring some images twice); a sampler of
        # our own that is already a DistributedSampler is left alone.
        sampler = unrepeated_sampler(self.splits[split], world, rank)
        return DataLoader(self.splits[split], batch_size=self.eval_batch_size, sampler=sampler, collate_fn=keep_batch)

    def val_dataloader(self) -> DataLoader:
        return self._eval_dataloader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_dataloader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._eval_dataloader("predict")

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        if not (self.augment and self.trainer is not None and self.trainer.training):
            return batch
        x, y = batch
        # Randomness is a function of (seed, optimizer step, rank): a resumed run, which restores global_step, redraws
        # the same crops. (With accumulate_grad_batches = k, the k batches of one step share their draws.)
        key = hash((self.seed, self.trainer.global_step, self.trainer.global_rank))
        generator = torch.Generator(device=x.device).manual_seed(key & 0x7FFF_FFFF_FFFF_FFFF)
        return random_crop_flip(x, pad=self.crop_pad, generator=generator), y
