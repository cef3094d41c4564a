"""CIFAR-10: 3x32x32 colour images, 50,000 train / 10,000 test, read from the pickled python batches."""

import pickle
from pathlib import Path

import torch
from torchvision import datasets

from src.data.base import DATA_DIR_ENV, ImageDataModule
from src.errors import UsageError


class CIFAR10DataModule(ImageDataModule):
    """Krizhevsky's CIFAR-10. Files: <data_dir>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}.
    Set augment: true for the standard random crop (4-pixel padding) + horizontal flip."""

    in_shape = (3, 32, 32)
    classes = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    dataset_cls = datasets.CIFAR10

    @property
    def folder(self) -> Path:
        return self.data_dir / self.dataset_cls.base_folder

    def read_split(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        folder = self.folder
        if not folder.is_dir():
            raise UsageError(
                f"CIFAR-10 not found: {folder} does not exist; set {DATA_DIR_ENV} or --data.init_args.data_dir to "
                "the folder that holds cifar-10-batches-py, or pass --data.init_args.download true"
            )
        try:
            ds = self.dataset_cls(str(self.data_dir), train=train, download=False)  # checks every file's md5
        except (RuntimeError, pickle.UnpicklingError, EOFError, KeyError, ValueError) as err:
            raise UsageError(
                f"CIFAR-10 files in {folder} are missing or corrupt ({err}); delete the folder and "
                "pass --data.init_args.download true"
            ) from err
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # [N, 32, 32, 3] -> [N, 3, 32, 32]
        return images, torch.tensor(ds.targets, dtype=torch.long)
