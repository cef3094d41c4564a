import pytest
import torch

from src.models import SmallCNN


def test_mnist_gives_784_features_into_the_classifier():
    net = SmallCNN()
    head = net.layers[-1]
    assert head.in_features == 16 * 7 * 7 == 784
    assert net(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    # conv 1->16 5x5 (+bias), conv 16->16 5x5 (+bias), linear 784->10
    assert sum(p.numel() for p in net.parameters()) == (25 * 16 + 16) + (16 * 25 * 16 + 16) + (784 * 10 + 10)


def test_cifar_shape_batchnorm_and_hidden():
    net = SmallCNN(in_shape=(3, 32, 32), batchnorm=True, hidden=[100], activation="improved_sigmoid")
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert net.layers[-3].in_features == 16 * 8 * 8 and net.layers[-1].in_features == 100
    assert net.layers[0].bias is None  # batchnorm's shift makes the conv bias redundant


def test_even_kernel_rejected():
    with pytest.raises(ValueError, match="odd"):
        SmallCNN(kernel_size=4)
