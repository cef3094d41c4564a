"""ManualMLP against autograd on the equivalent nn.Module MLP, on a real MNIST batch."""

import pytest
import torch
import torch.nn.functional as F

from src.data.mnist import MNISTDataModule
from src.manual.mlp import ManualMLP
from src.manual.optim import ManualSGD
from tests.conftest import REAL_DATA


@pytest.fixture(scope="module")
def mnist_batch():
    if not (REAL_DATA / "MNIST" / "raw").is_dir():
        pytest.skip("real MNIST not found; set DATA_DIR")
    dm = MNISTDataModule(data_dir=str(REAL_DATA))
    dm.setup("fit")
    return dm.splits["train"].images[:128], dm.splits["train"].labels[:128]  # [128, 1, 28, 28], [128]


def autograd_loss(net, x, y, reg: float):
    linears = [m for m in net.layers if isinstance(m, torch.nn.Linear)]
    return F.cross_entropy(net(x), y) + reg * sum((m.weight**2).sum() for m in linears), linears


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize("activation", ["improved_sigmoid", "sigmoid", "tanh", "relu", "leaky_relu"])
def test_loss_and_every_gradient_equal_autograd(mnist_batch, dtype, tol, activation):
    torch.manual_seed(0)
    hidden, reg = [64, 32], 1e-3
    manual = ManualMLP(hidden=hidden, activation=activation, init="lecun_normal", reg=reg).to(dtype)
    x, y = mnist_batch[0].to(dtype), mnist_batch[1]
    loss, grads = manual.loss(x, y)
    net = manual.to_module()
    ref, linears = autograd_loss(net, x, y, reg)
    ref.backward()
    assert abs(loss.item() - ref.item()) < tol
    for l, linear in enumerate(linears, start=1):
        assert (grads[f"W{l}"] - linear.weight.grad.T).abs().max().item() < tol, f"W{l}"
        assert (grads[f"b{l}"] - linear.bias.grad).abs().max().item() < tol, f"b{l}"


def test_momentum_steps_equal_torch_sgd(mnist_batch):
    """ManualSGD on hand-computed gradients (with 2*reg*W inside) == torch.optim.SGD(momentum, dampening=0)
    on autograd gradients with weight_decay = 2*reg on the weights only."""
    torch.manual_seed(0)
    lr, momentum, reg = 0.05, 0.9, 1e-3
    manual = ManualMLP(hidden=[64], activation="improved_sigmoid", reg=reg).double()
    net = manual.to_module()
    x, y = mnist_batch[0].double(), mnist_batch[1]
    linears = [m for m in net.layers if isinstance(m, torch.nn.Linear)]
    reference = torch.optim.SGD(
        [
            {"params": [m.weight for m in linears], "weight_decay": 2 * reg},
            {"params": [m.bias for m in linears], "weight_decay": 0.0},
        ],
        lr=lr,
        momentum=momentum,
        dampening=0.0,
    )
    ours = ManualSGD(manual.parameters(), lr=lr, momentum=momentum)
    for _ in range(3):  # the first step has no momentum yet; the later ones use it
        _, grads = manual.loss(x, y)
        for name, p in manual.params.items():
            p.grad = grads[name]
        ours.step()
        reference.zero_grad()
        F.cross_entropy(net(x), y).backward()
        reference.step()
    for l, linear in enumerate(linears, start=1):
        assert torch.allclose(manual.params[f"W{l}"], linear.weight.T, atol=1e-12, rtol=0)
        assert torch.allclose(manual.params[f"b{l}"], linear.bias, atol=1e-12, rtol=0)


def test_no_autograd_anywhere():
    net = ManualMLP(in_shape=(10,), hidden=[5], num_classes=3)
    assert all(not p.requires_grad for p in net.parameters())
    loss, grads = net.loss(torch.randn(4, 10), torch.tensor([0, 1, 2, 0]))
    assert loss.grad_fn is None and all(g.grad_fn is None for g in grads.values())


def test_wrong_input_size_is_named():
    with pytest.raises(ValueError, match="expects 784 input features"):
        ManualMLP().scores(torch.randn(2, 3, 32, 32))
