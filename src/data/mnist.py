"""MNIST and FashionMNIST: 1x28x28 grey images, 60,000 train / 10,000 test, read from IDX files."""

import os
from pathlib import Path

import torch
from torchvision import datasets

from src.data.base import DATA_DIR_ENV, ImageDataModule
from src.errors import UsageError

# IDX element type codes (the third byte of the magic number) and their sizes in bytes.
_IDX_ITEM_BYTES = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}


def check_idx_file(path: Path) -> None:
    """Raise UsageError unless `path` is a whole IDX file: its header's shape must account for every byte.
    torchvision reads a truncated file without complaint (or fails deep inside a reshape)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.read(4)
        if len(header) < 4 or header[:2] != b"\x00\x00" or header[2] not in _IDX_ITEM_BYTES:
            raise UsageError(f"{path} is not an IDX file (bad magic number); delete it and download the data set again")
        ndim = header[3]
        dims = [int.from_bytes(f.read(4), "big") for _ in range(ndim)]
    expected = 4 + 4 * ndim + _IDX_ITEM_BYTES[header[2]] * torch.Size(dims).numel()
    if size != expected:
        raise UsageError(
            f"{path} has {size:,} bytes but its header {dims} needs {expected:,}: the file is truncated or "
            "corrupt; delete it and download the data set again (--data.init_args.download true)"
        )


class MNISTDataModule(ImageDataModule):
    """Handwritten digits (LeCun, Cortes, Burges). Files: <data_dir>/MNIST/raw/*-ubyte, torchvision's layout."""

    in_shape = (1, 28, 28)
    classes = tuple(str(d) for d in range(10))
    dark_background = True
    dataset_cls = datasets.MNIST

    @property
    def folder(self) -> Path:
        return self.data_dir / self.dataset_cls.__name__ / "raw"

    def read_split(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        folder = self.folder
        names = [os.path.splitext(os.path.basename(url))[0] for url, _ in self.dataset_cls.resources]
        prefix = "train" if train else "t10k"
        files = [folder / n for n in names if n.startswith(prefix)]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise UsageError(
                f"{self.dataset_cls.__name__} not found in {folder} (missing {', '.join(missing)}): set "
                f"{DATA_DIR_ENV} or --data.init_args.data_dir to the folder that holds "
                f"{self.dataset_cls.__name__}/raw, or pass --data.init_args.download true"
            )
        for f in files:
            check_idx_file(f)
        ds = self.dataset_cls(str(self.data_dir), train=train, download=False)
        if len(ds.data) != len(ds.targets):
            raise UsageError(
                f"{folder}: {len(ds.data)} images but {len(ds.targets)} labels; download the data set again"
            )
        if (
            tuple(ds.data.shape[1:]) != self.in_shape[1:]
        ):  # a whole file of other images: would train on scrambled pixels
            raise UsageError(
                f"{files[0]} holds {tuple(ds.data.shape[1:])} images, not {self.dataset_cls.__name__}'s "
                f"{self.in_shape[1:]}; download the data set again (--data.init_args.download true)"
            )
        labels, n = ds.targets.long(), len(ds.classes)  # the file's own classes (a subclass may map them to others)
        if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < n:
            raise UsageError(
                f"{folder}: a label is {int(labels.max())}, but {self.dataset_cls.__name__} has "
                f"{n} classes (0-{n - 1}); download the data set again"
            )
        return ds.data.unsqueeze(1), labels  # [N, 1, 28, 28] uint8, [N] int64


class FashionMNISTDataModule(MNISTDataModule):
    """Zalando's article images, MNIST's format and sizes. Files: <data_dir>/FashionMNIST/raw/*-ubyte."""

    classes = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    dataset_cls = datasets.FashionMNIST
