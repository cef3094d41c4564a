"""Activation functions selectable by name from a config."""

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
