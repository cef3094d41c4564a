"""LightningDataModules over MNIST, FashionMNIST and CIFAR-10, served from memory."""

from src.data.base import DATA_DIR_ENV, ImageDataModule, default_data_dir
from src.data.cifar10 import CIFAR10DataModule
from src.data.mnist import FashionMNISTDataModule, MNISTDataModule

__all__ = ["DATA_DIR_ENV", "ImageDataModule", "default_data_dir", "MNISTDataModule", "FashionMNISTDataModule", "CIFAR10DataModule"]
