"""LightningDataModules over MNIST, FashionMNIST, CIFAR-10 and your own image folders, served from memory."""
