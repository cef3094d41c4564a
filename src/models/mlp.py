"""A configurable multi-layer perceptron (plain nn.Module, no Lightning), and the activation functions a config
selects by name (SmallCNN uses them too)."""

import math
from typing import Literal

import torch
from torch import nn

Activation = Literal["relu", "leaky_relu", "sigmoid", "tanh", "improved_sigmoid"]


class ImprovedSigmoid(nn.Module):
    """f(x) = 1.7159 * tanh(2x / 3)  (LeCun et al., Efficient BackProp, 1998, section 4.4).

    The constants make f(+-1) = +-1, so unit-variance inputs give unit-variance outputs, and the
    gain f'(0) = 1.7159 * 2/3 = 1.14393 keeps the linear regime in play; unlike the logistic sigmoid
    it is centred on zero, which keeps the next layer's inputs zero-mean.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1.7159 * torch.tanh(x * (2.0 / 3.0))


def make_activation(name: Activation) -> nn.Module:
    """A fresh activation module for `name` (a new one per layer keeps `print(net)` readable)."""
    factories = {
        "relu": nn.ReLU,
        "leaky_relu": nn.LeakyReLU,  # negative slope 0.01, the same as the manual-backprop layer
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
        "improved_sigmoid": ImprovedSigmoid,
    }
    if name not in factories:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(factories)}")
    return factories[name]()


Init = Literal["default", "lecun_normal", "uniform", "normal"]


def init_linear_(layer: nn.Linear, init: Init, std: float = 1e-4) -> None:
    """Re-initialise one Linear layer in place.

    default:      PyTorch's own (Kaiming-uniform with a = sqrt(5), i.e. U[-1/sqrt(fan_in), 1/sqrt(fan_in)]).
    lecun_normal: W ~ N(0, 1/fan_in), b = 0 -- the "improved weight init" of Efficient BackProp 4.6:
                  unit-variance inputs then give unit-variance pre-activations.
    uniform:      W, b ~ U[-1, 1] -- the naive baseline of the tricks-of-the-trade exercise; with 784
                  inputs it saturates sigmoids from the first step, which is the point of the exercise.
    normal:       W ~ N(0, std^2), b = 0 -- the two-layer-net exercise's small Gaussian (std 1e-4).
    """
    if init == "default":
        layer.reset_parameters()
    elif init == "lecun_normal":
        nn.init.normal_(layer.weight, 0.0, 1.0 / math.sqrt(layer.in_features))
        nn.init.zeros_(layer.bias)
    elif init == "uniform":
        nn.init.uniform_(layer.weight, -1.0, 1.0)
        nn.init.uniform_(layer.bias, -1.0, 1.0)
    elif init == "normal":
        nn.init.normal_(layer.weight, 0.0, std)
        nn.init.zeros_(layer.bias)
    else:
        raise ValueError(f"unknown init {init!r}; choose one of default, lecun_normal, uniform, normal")


class MLP(nn.Module):
    """Flatten -> [Linear -> (BatchNorm1d) -> activation -> (Dropout)] per hidden size -> Linear.

    x: [N, *in_shape] -> logits [N, num_classes]. 784-64-10 has 784*64 + 64 + 64*10 + 10 = 50,890 parameters.
    """

    def __init__(
        self,
        in_shape: tuple[int, ...] = (1, 28, 28),  # one image, channels first; the command line takes the data module's
        num_classes: int = 10,
        hidden: list[int] = [256, 128],  # widths of the hidden layers; [] gives a linear classifier
        activation: Activation = "relu",
        batchnorm: bool = False,  # BatchNorm1d between each hidden Linear and its activation
        dropout: float = 0.0,  # dropout probability after each hidden activation
        init: Init = "default",  # see init_linear_
        init_std: float = 1e-4,  # the standard deviation of init: normal
    ):
        super().__init__()
        if any(h <= 0 for h in hidden):
            raise ValueError(f"hidden sizes must be positive integers, got {list(hidden)}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.in_shape, self.num_classes = tuple(in_shape), num_classes
        layers: list[nn.Module] = [nn.Flatten()]
        fan_in = math.prod(in_shape)
        for width in hidden:
            linear = nn.Linear(fan_in, width)
            init_linear_(linear, init, init_std)
            layers += [linear, nn.BatchNorm1d(width)] if batchnorm else [linear]
            layers.append(make_activation(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            fan_in = width
        head = nn.Linear(fan_in, num_classes)
        init_linear_(head, init, init_std)
        self.layers = nn.Sequential(*layers, head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
