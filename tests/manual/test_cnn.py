"""The hand-written CNN layers and ManualCNN: against centred finite differences (float64) and against autograd
on SmallCNN with the same weights (a real MNIST batch), and through the CLI."""

import pytest
import torch
import torch.nn.functional as F

from src.manual.batchnorm import BatchNorm1d, BatchNorm2d
from src.manual.cnn import ManualCNN
from src.manual.conv import Conv2d, Flatten, MaxPool2d
from src.manual.layers import ACTIVATIONS
from src.manual.optim import ManualSGD
from src.models.cnn import SmallCNN
from tests.manual.test_autograd import mnist_batch  # noqa: F401  (the module-scoped real MNIST batch fixture)
from tests.manual.test_gradients import max_relative_error


def numeric_grad(f, t: torch.Tensor, H: float = 1e-5) -> torch.Tensor:
    """Centred differences (f(t + h e_i) - f(t - h e_i)) / 2h of the scalar function f, one entry of t at a time."""
    g, flat = torch.zeros_like(t), t.view(-1)
    for i in range(flat.numel()):
        old = flat[i].item()
        flat[i] = old + H
        plus = f().item()
        flat[i] = old - H
        minus = f().item()
        flat[i] = old
        g.view(-1)[i] = (plus - minus) / (2 * H)
    return g


def assert_matches_finite_differences(analytic: torch.Tensor, numeric: torch.Tensor, name: str) -> None:
    """Relative error < 1e-8 on every entry of magnitude >= 1e-2; below that, centred differences in float64 carry
    an absolute error of ~1e-10 (round-off of f / h) that would be measured instead of the code, so those entries
    (most of them exact zeros: pixels that no window's maximum came from) must agree to 1e-9 absolute."""
    big = analytic.abs() >= 1e-2
    assert big.float().mean() > 0.2, f"{name}: too few large entries for the check to mean something"
    assert max_relative_error(analytic[big], numeric[big]) < 1e-8, name
    assert (analytic - numeric)[~big].abs().max().item() < 1e-9 if (~big).any() else True, name


def weighted_sum(forward, R):
    """The scalar L = sum(out * R) whose gradient with respect to out is R: a random direction, so every output
    entry's gradient path is exercised with its own weight."""
    return lambda: (forward()[0] * R).sum()


@pytest.mark.parametrize(
    "k,pad,shape", [(5, 2, (2, 3, 7, 6)), (3, 1, (2, 2, 6, 5)), (3, 0, (2, 2, 6, 6)), (5, 2, (2, 1, 7, 6))]
)  # one channel: the transposed patches (patches_t)
def test_conv2d_against_finite_differences(k, pad, shape):
    g = torch.Generator().manual_seed(0)
    x, W, b = (torch.randn(s, generator=g, dtype=torch.float64) for s in (shape, (4, shape[1], k, k), (4,)))
    out, cache = Conv2d.forward(x, W, b, pad)
    R = torch.randn(out.shape, generator=g, dtype=torch.float64)
    dx, grads = Conv2d.backward(R, cache)
    L = weighted_sum(lambda: Conv2d.forward(x, W, b, pad), R)
    # L is linear in each of x, W and b, so centred differences are exact for any step but for round-off, which
    # shrinks as the step grows (~1e-16 |L| / h): a step of 0.1 measures the code, not the arithmetic.
    for name, analytic, t in (("x", dx, x), ("W", grads["W"], W), ("b", grads["b"], b)):
        assert_matches_finite_differences(analytic, numeric_grad(L, t, H=0.1), name)


@pytest.mark.parametrize("channels", [4, 1])
def test_conv2d_equals_torch_conv2d(channels):
    g = torch.Generator().manual_seed(1)
    x, W = torch.randn(3, channels, 9, 8, generator=g), torch.randn(5, channels, 5, 5, generator=g)
    b = torch.randn(5, generator=g)
    assert torch.allclose(Conv2d.forward(x, W, b, 2)[0], F.conv2d(x, W, b, padding=2), atol=1e-5)


def test_max_pool_against_finite_differences():
    """Distinct values 0.01 apart (a shuffled ramp): no window holds two values within h of each other, so the
    arg-max never changes under the perturbation. The odd last column belongs to no window: gradient 0."""
    g = torch.Generator().manual_seed(0)
    x = (torch.randperm(2 * 3 * 6 * 7, generator=g).double() * 0.01).view(2, 3, 6, 7)
    out, cache = MaxPool2d.forward(x)
    R = torch.randn(out.shape, generator=g, dtype=torch.float64)
    dx, _ = MaxPool2d.backward(R, cache)
    assert out.shape == (2, 3, 3, 3) and (dx[..., 6] == 0).all()
    # Piecewise linear with kinks 0.01 apart: a step of 1e-3 is exact but for round-off.
    assert_matches_finite_differences(dx, numeric_grad(weighted_sum(lambda: MaxPool2d.forward(x), R), x, H=1e-3), "x")


def test_max_pool_breaks_ties_like_pytorch():
    """Small integers make most windows hold tied maxima; the gradient must go where PyTorch's does."""
    x = torch.randint(0, 3, (2, 3, 8, 9), generator=torch.Generator().manual_seed(0)).double().requires_grad_()
    ref = F.max_pool2d(x, 2)
    R = torch.randn(ref.shape, dtype=torch.float64)
    (ref * R).sum().backward()
    out, cache = MaxPool2d.forward(x.detach())
    assert torch.equal(out, ref.detach()) and torch.equal(MaxPool2d.backward(R, cache)[0], x.grad)


def test_flatten_round_trip():
    x = torch.randn(2, 3, 4, 5)
    out, shape = Flatten.forward(x)
    assert torch.equal(out, x.reshape(2, 60)) and torch.equal(Flatten.backward(out, shape)[0], x)


@pytest.mark.parametrize("layer,shape", [(BatchNorm1d, (6, 4)), (BatchNorm2d, (3, 4, 3, 2))])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_against_finite_differences(layer, shape, training):
    g = torch.Generator().manual_seed(0)
    x = 3 * torch.randn(shape, generator=g, dtype=torch.float64) + 1
    gamma, beta = (
        torch.rand(4, generator=g, dtype=torch.float64) + 0.5,
        torch.randn(4, generator=g, dtype=torch.float64),
    )
    stats = torch.randn(4, generator=g, dtype=torch.float64), torch.rand(4, generator=g, dtype=torch.float64) + 0.5

    def forward():  # fresh running buffers each call: the moving averages must not drift between evaluations
        return layer.forward(x, gamma, beta, stats[0].clone(), stats[1].clone(), training)

    out, cache = forward()
    R = torch.randn(out.shape, generator=g, dtype=torch.float64)
    dx, grads = layer.backward(R, cache)
    L = weighted_sum(forward, R)
    for name, analytic, t in (("x", dx, x), ("gamma", grads["gamma"], gamma), ("beta", grads["beta"], beta)):
        assert_matches_finite_differences(analytic, numeric_grad(L, t), name)


def tiny_cnn(batchnorm: bool, activation: str, seed: int) -> tuple[ManualCNN, torch.Tensor, torch.Tensor]:
    """A 2x8x8 -> [conv3x3-3, pool, conv3x3-4, pool] -> 3-class net, reg 0.005, with weights and 4 inputs drawn
    from one seeded generator (weights scaled up so that the loss is far from flat)."""
    g = torch.Generator().manual_seed(seed)
    net = ManualCNN(
        in_shape=(2, 8, 8),
        num_classes=3,
        channels=[3, 4],
        kernel_size=3,
        batchnorm=batchnorm,
        activation=activation,
        reg=0.005,
    ).double()
    for name, p in net.params.items():
        p.data = torch.randn(p.shape, generator=g, dtype=torch.float64) + (1.0 if name.startswith("gamma") else 0.0)
    return net, torch.randn(4, 2, 8, 8, generator=g, dtype=torch.float64), torch.tensor([0, 1, 2, 1])


def kink_margin(net: ManualCNN, X: torch.Tensor) -> float:
    """The smallest distance of any ReLU input from 0 and of any pooling window's top two values from a tie:
    where it exceeds h by far, a perturbation of h never crosses a kink, so finite differences are exact there."""
    h, margin, p = X, float("inf"), net.params
    for l in range(1, net.blocks + 1):
        pre, _ = Conv2d.forward(h, p[f"W{l}"], None if net.batchnorm else p[f"b{l}"], net.pad)
        if net.batchnorm:
            c = pre.shape[1]
            pre, _ = BatchNorm2d.forward(pre, p[f"gamma{l}"], p[f"beta{l}"], pre.new_zeros(c), pre.new_ones(c), True)
        if net.activation is ACTIVATIONS["relu"]:
            margin = min(margin, pre.abs().min().item())
        a, _ = net.activation.forward(pre)
        windows = a.unfold(2, 2, 2).unfold(3, 2, 2).reshape(*a.shape[:2], a.shape[2] // 2, a.shape[3] // 2, 4)
        top2 = windows.topk(2).values
        varying = top2[..., 0] != 0  # a window of ReLU zeros is constant near the point: its ties do not matter
        margin = min(margin, (top2[..., 0] - top2[..., 1])[varying].min().item())
        h, _ = MaxPool2d.forward(a)
    return margin


# Seeds chosen so that kink_margin > 10 h (checked below): the loss is smooth within h of the point. The step h
# balances the two errors of centred differences, round-off ~1e-16 |L| / h and truncation ~h^2 |L's third derivative|:
# the ReLU net without batchnorm is piecewise linear up to its softmax and starts at a large loss (43), so round-off
# dominates (h = 1e-5 measured 1.3e-8 on one CPU, 1e-4 measures 4e-9); smooth activations curve: small steps.
@pytest.mark.parametrize(
    "batchnorm,activation,seed,h",
    [
        (False, "relu", 0, 1e-4),
        (True, "relu", 3, 3e-5),
        (False, "improved_sigmoid", 157, 1e-5),
        (True, "tanh", 4, 3e-5),
    ],
)
def test_manual_cnn_against_finite_differences(batchnorm, activation, seed, h):
    net, X, y = tiny_cnn(batchnorm, activation, seed)
    assert kink_margin(net, X) > 10 * h
    _, analytic = net.loss(X, y)
    assert set(analytic) == set(net.params)
    for name, p in net.params.items():
        assert_matches_finite_differences(analytic[name], numeric_grad(lambda: net.loss(X, y)[0], p.data, H=h), name)


def autograd_grads(net: SmallCNN, x, y, reg: float) -> tuple[torch.Tensor, dict]:
    """The loss and its gradients by autograd, keyed like ManualCNN's parameters."""
    convs = [m for m in net.layers if isinstance(m, torch.nn.Conv2d)]
    norms = [m for m in net.layers if isinstance(m, torch.nn.BatchNorm2d)]
    weights = [c.weight for c in convs] + [net.layers[-1].weight]
    loss = F.cross_entropy(net(x), y) + reg * sum((w**2).sum() for w in weights)
    loss.backward()
    grads = {"W3": net.layers[-1].weight.grad.T, "b3": net.layers[-1].bias.grad}
    for l, conv in enumerate(convs, start=1):
        grads[f"W{l}"] = conv.weight.grad
        if conv.bias is not None:
            grads[f"b{l}"] = conv.bias.grad
    for l, norm in enumerate(norms, start=1):
        grads[f"gamma{l}"], grads[f"beta{l}"] = norm.weight.grad, norm.bias.grad
    return loss, grads


@pytest.mark.parametrize("batchnorm,activation", [(False, "relu"), (True, "relu"), (True, "improved_sigmoid")])
def test_loss_and_every_gradient_equal_autograd(mnist_batch, batchnorm, activation):  # noqa: F811
    """float64: equal to autograd's to 1e-10. float32: equal to autograd's float64 to 1e-5, and to autograd's own
    float32 result to 1e-5 plus autograd's own float32 error (oneDNN's conv weight gradient sums 100,352 products
    in float32 and lands up to ~1e-4 off the float64 value; ours, one blocked matrix product, ~5e-7)."""
    torch.manual_seed(0)
    manual = ManualCNN(batchnorm=batchnorm, activation=activation, reg=1e-3).double()
    x, y = mnist_batch[0].double(), mnist_batch[1]
    loss, grads = manual.loss(x, y)
    ref, ref_grads = autograd_grads(manual.to_module(), x, y, reg=1e-3)
    assert abs(loss.item() - ref.item()) < 1e-10
    assert set(grads) == set(ref_grads) == set(manual.params)
    manual32 = ManualCNN(batchnorm=batchnorm, activation=activation, reg=1e-3)
    manual32.load_state_dict(manual.state_dict())
    loss32, grads32 = manual32.loss(x.float(), y)
    _, auto32 = autograd_grads(manual32.to_module(), x.float(), y, reg=1e-3)
    assert abs(loss32.item() - ref.item()) < 1e-5
    for name, g in grads.items():
        assert (g - ref_grads[name]).abs().max().item() < 1e-10, name
        assert (grads32[name].double() - ref_grads[name]).abs().max().item() < 1e-5, name
        autograd_error = (auto32[name].double() - ref_grads[name]).abs().max().item()
        assert (grads32[name] - auto32[name]).abs().max().item() < 1e-5 + autograd_error, name


def test_training_steps_and_running_statistics_equal_pytorch(mnist_batch):  # noqa: F811
    """Five ManualSGD steps on hand-computed gradients == five torch.optim.SGD steps on autograd's, in float64:
    the weights, and the batchnorm running averages that nn.BatchNorm2d keeps, then eval-mode scores."""
    torch.manual_seed(0)
    manual = ManualCNN(batchnorm=True).double()
    net = manual.to_module()
    x, y = mnist_batch[0].double(), mnist_batch[1]
    ours = ManualSGD(manual.parameters(), lr=0.05, momentum=0.9)
    theirs = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, dampening=0.0)
    for step in range(5):
        batch = slice(25 * step, 25 * step + 64)  # a different batch each step moves the running averages
        _, grads = manual.loss(x[batch], y[batch])
        for name, p in manual.params.items():
            p.grad = grads[name]
        ours.step()
        theirs.zero_grad()
        F.cross_entropy(net(x[batch]), y[batch]).backward()
        theirs.step()
    norms = [m for m in net.layers if isinstance(m, torch.nn.BatchNorm2d)]
    for l, norm in enumerate(norms, start=1):
        assert torch.allclose(getattr(manual, f"running_mean{l}"), norm.running_mean, atol=1e-10, rtol=0)
        assert torch.allclose(getattr(manual, f"running_var{l}"), norm.running_var, atol=1e-10, rtol=0)
    assert torch.allclose(manual.params["W2"], net.layers[4].weight, atol=1e-10, rtol=0)
    manual.eval(), net.eval()
    assert torch.allclose(manual(x), net(x), atol=1e-9, rtol=0)


def test_parameter_count_is_the_seeds():
    """Seed 003's table: 416 + 6,416 + 7,850 = 14,682 trainable parameters; SmallCNN has as many."""
    assert sum(p.numel() for p in ManualCNN().parameters()) == 14_682
    assert sum(p.numel() for p in SmallCNN(channels_last=False).parameters()) == 14_682


def test_trains_without_autograd(mnist_root, tmp_path, monkeypatch):
    """Twenty training steps through the CLI's classes with every autograd entry point made to fail."""

    def refuse(*args, **kwargs):
        raise AssertionError("autograd was called")

    monkeypatch.setattr(torch.Tensor, "backward", refuse)
    monkeypatch.setattr(torch.autograd, "backward", refuse)
    monkeypatch.setattr(torch.autograd, "grad", refuse)
    from src.cli import main

    cli = main(
        [
            "--config",
            "configs/mnist_manual_cnn.yaml",
            "--trainer.logger.init_args.save_dir",
            str(tmp_path),
            "--data.init_args.data_dir",
            str(mnist_root),
            "--trainer.limit_train_batches",
            "20",
            "--trainer.limit_val_batches",
            "1",
            "--trainer.max_epochs",
            "1",
            "--trainer.enable_progress_bar",
            "false",
        ],
        run=False,
    )
    before = cli.model.net.params["W2"].clone()
    cli.trainer.fit(cli.model, cli.datamodule)
    assert cli.trainer.global_step == 20 and not torch.equal(before, cli.model.net.params["W2"])
