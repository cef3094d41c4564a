"""LightningDataModules over MNIST, FashionMNIST, CIFAR-10 and your own image folders, served from memory."""

from src.data.base import DATA_DIR_ENV, ImageDataModule, default_data_dir
from src.data.cifar10 import CIFAR10DataModule
from src.data.folder import ImageFolderDataModule
from src.data.mnist import FashionMNISTDataModule, MNISTDataModule

__all__ = [
    "DATA_DIR_ENV",
    "ImageDataModule",
    "default_data_dir",
    "MNISTDataModule",
    "FashionMNISTDataModule",
    "CIFAR10DataModule",
    "ImageFolderDataModule",
]
