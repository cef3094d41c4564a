import pytest
import torch

from src.models.cnn import SmallCNN


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


def test_channels_last_is_a_layout_only_same_outputs_and_gradients():
    torch.manual_seed(0)
    plain = SmallCNN(in_shape=(3, 32, 32), batchnorm=True, channels_last=False)
    fast = SmallCNN(in_shape=(3, 32, 32), batchnorm=True)
    fast.load_state_dict(plain.state_dict())  # values copied in; the NHWC layout stays
    conv = fast.layers[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert fast.to("cpu").layers[0].weight.is_contiguous(memory_format=torch.channels_last)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    losses = [torch.nn.functional.cross_entropy(net(x), y) for net in (plain, fast)]
    for loss in losses:
        loss.backward()
    assert torch.allclose(losses[0], losses[1], atol=1e-6)
    for a, b in zip(plain.parameters(), fast.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-5)
