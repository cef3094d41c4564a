import pytest
import torch

from src.models.mlp import ImprovedSigmoid, make_activation


def test_improved_sigmoid_fixed_points_and_gain():
    f = ImprovedSigmoid()
    x = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64, requires_grad=True)
    y = f(x)
    assert torch.allclose(y, torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64), atol=2e-4)  # f(+-1) = +-1.0000
    (grad,) = torch.autograd.grad(y[1], x)
    assert abs(grad[1].item() - 1.14393) < 1e-5  # f'(0) = 1.7159 * 2/3
    assert abs(f(torch.tensor(100.0)).item() - 1.7159) < 1e-6  # saturates at the constant


@pytest.mark.parametrize(
    "name,value", [("relu", 0.0), ("leaky_relu", -0.02), ("sigmoid", 0.11920292), ("tanh", -0.96402758)]
)
def test_named_activations(name, value):
    assert abs(make_activation(name)(torch.tensor([-2.0])).item() - value) < 1e-6


def test_unknown_activation_lists_choices():
    with pytest.raises(ValueError, match="choose one of relu, leaky_relu"):
        make_activation("swish")
