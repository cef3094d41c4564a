import math

import pytest
import torch
from torch import nn

from src.models.mlp import MLP


def _count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_784_64_10_has_50890_parameters_and_right_shape():
    net = MLP(hidden=[64])
    assert _count(net) == 50_890
    assert net(torch.randn(5, 1, 28, 28)).shape == (5, 10)


def test_layers_follow_the_options():
    net = MLP(in_shape=(3, 32, 32), hidden=[50, 25], activation="tanh", batchnorm=True, dropout=0.5)
    kinds = [type(m).__name__ for m in net.layers]
    assert kinds == [
        "Flatten",
        "Linear",
        "BatchNorm1d",
        "Tanh",
        "Dropout",
        "Linear",
        "BatchNorm1d",
        "Tanh",
        "Dropout",
        "Linear",
    ]
    assert net.layers[1].in_features == 3072 and net(torch.randn(4, 3, 32, 32)).shape == (4, 10)
    # Linear weights + biases, and BatchNorm's scale and shift: 3072*50+50 + 2*50 + 50*25+25 + 2*25 + 25*10+10
    assert _count(net) == 3072 * 50 + 50 + 100 + 50 * 25 + 25 + 50 + 25 * 10 + 10


def test_no_hidden_layers_is_a_linear_classifier():
    assert _count(MLP(hidden=[])) == 7850


def test_lecun_normal_init_has_fan_in_variance():
    torch.manual_seed(0)
    first = MLP(hidden=[512], init="lecun_normal").layers[1]
    assert abs(first.weight.std().item() - 1 / math.sqrt(784)) < 0.02 / math.sqrt(784)
    assert abs(first.weight.mean().item()) < 1e-3 and torch.count_nonzero(first.bias) == 0


def test_uniform_init_spans_minus_one_to_one():
    torch.manual_seed(0)
    w = MLP(hidden=[64], init="uniform").layers[1].weight
    assert -1 <= w.min() < -0.99 and 0.99 < w.max() <= 1 and abs(w.std().item() - 1 / math.sqrt(3)) < 0.01


@pytest.mark.parametrize("kwargs", [{"hidden": [0]}, {"hidden": [64, -1]}, {"dropout": 1.0}, {"init": "xavier"}])
def test_bad_arguments_rejected(kwargs):
    with pytest.raises(ValueError):
        MLP(**kwargs)
