"""ManualMLP: a multi-layer perceptron whose gradients are written out by hand (layers.py)."""

import math

import torch
from torch import nn

from src.manual.layers import ACTIVATIONS, Linear, softmax_cross_entropy
from src.models.mlp import MLP, Activation, Init


class ManualMLP(nn.Module):
    """Images [N, *in_shape] flattened to D = prod(in_shape) features, Linear -> activation for every hidden layer, then
    Linear to num_classes scores: sizes = [D, H1, ..., HL, C].

    Parameters live in `params` as W1, b1, W2, b2, ... with W_l: [fan_in, fan_out] (batch-major, z = xW + b)
    and b_l: [fan_out]. They are nn.Parameters with requires_grad=False: an nn.Module only so that Lightning
    can move them between devices, checkpoint them and hand them to an optimizer; autograd never sees them.
    loss = mean cross-entropy + reg * sum_l ||W_l||^2 (biases are not regularised).
    """

    def __init__(
        self,
        in_shape: tuple[int, ...] = (1, 28, 28),  # one image, channels first; the command line takes the data module's
        num_classes: int = 10,
        hidden: list[int] = [64],  # hidden widths, input side first
        activation: Activation = "improved_sigmoid",
        init: Init = "lecun_normal",  # the laws of src.models.mlp.init_linear_
        reg: float = 0.0,  # L2 strength on the weights; its gradient is 2 * reg * W
        init_std: float = 1e-4,  # the standard deviation of init: normal
    ):
        super().__init__()
        sizes = [math.prod(in_shape), *hidden, num_classes]
        if any(s <= 0 for s in sizes):
            raise ValueError(
                f"in_shape, hidden widths and num_classes must be positive, got {tuple(in_shape)}, "
                f"{list(hidden)}, {num_classes}"
            )
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        self.in_shape, self.num_classes, self.sizes = tuple(in_shape), num_classes, sizes
        self.activation, self.activation_name, self.reg = ACTIVATIONS[activation], activation, reg
        self.params = nn.ParameterDict()
        for l, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:]), start=1):
            W, b = init_weights((fan_in, fan_out), fan_in, init, init_std)
            self.params[f"W{l}"] = nn.Parameter(W, requires_grad=False)
            self.params[f"b{l}"] = nn.Parameter(b, requires_grad=False)

    @property
    def depth(self) -> int:
        return len(self.sizes) - 1

    def _flatten(self, X: torch.Tensor) -> torch.Tensor:
        X = X.reshape(len(X), -1)  # images [N, C, H, W] -> [N, D]
        if X.shape[1] != self.sizes[0]:
            raise ValueError(
                f"ManualMLP expects {self.sizes[0]} input features (in_shape {self.in_shape}) but got {X.shape[1]}"
            )
        return X

    @torch.no_grad()
    def scores(self, X: torch.Tensor) -> torch.Tensor:
        """X: [N, D] (or images [N, C, H, W]) -> class scores (logits) [N, C]."""
        h = self._flatten(X)
        for l in range(1, self.depth + 1):
            h, _ = Linear.forward(h, self.params[f"W{l}"], self.params[f"b{l}"])
            if l < self.depth:
                h, _ = self.activation.forward(h)
        return h

    forward = scores

    @torch.no_grad()
    def forward_backward(self, X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """One forward and one backward pass: (scores [N, C], loss scalar, grads keyed like params)."""
        h, caches = self._flatten(X), []
        for l in range(1, self.depth + 1):
            h, linear_cache = Linear.forward(h, self.params[f"W{l}"], self.params[f"b{l}"])
            act_cache = None
            if l < self.depth:
                h, act_cache = self.activation.forward(h)
            caches.append((linear_cache, act_cache))
        scores = h
        weights = [self.params[f"W{l}"] for l in range(1, self.depth + 1)]
        loss, dh = softmax_cross_entropy(scores, y)
        if self.reg:  # skipped at reg = 0: it would allocate a weight-sized temporary per layer for nothing
            loss = loss + self.reg * sum((W * W).sum() for W in weights)
        grads = {}
        for l in range(self.depth, 0, -1):  # the chain rule, last layer first
            linear_cache, act_cache = caches[l - 1]
            if l < self.depth:
                dh, _ = self.activation.backward(dh, act_cache)
            dh, g = Linear.backward(dh, linear_cache, input_grad=l > 1)
            grads[f"W{l}"] = g["W"].add_(weights[l - 1], alpha=2 * self.reg) if self.reg else g["W"]
            grads[f"b{l}"] = g["b"]
        return scores, loss, grads

    def loss(self, X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """(mean cross-entropy + reg * sum ||W||^2, {name: d loss / d param})."""
        _, loss, grads = self.forward_backward(X, y)
        return loss, grads

    def to_module(self) -> MLP:
        """The same network as an nn.Module MLP (nn.Linear stores W^T) holding copies of these weights: the twin
        autograd is compared against, and a traceable module for export."""
        net = MLP(
            in_shape=self.in_shape,
            hidden=self.sizes[1:-1],
            num_classes=self.num_classes,
            activation=self.activation_name,
        ).to(self.params["W1"].dtype)
        linears = [m for m in net.layers if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for l, linear in enumerate(linears, start=1):
                linear.weight.copy_(self.params[f"W{l}"].T)
                linear.bias.copy_(self.params[f"b{l}"])
        return net


def init_weights(
    shape: tuple[int, ...], fan_in: int, init: str, std: float = 1e-4
) -> tuple[torch.Tensor, torch.Tensor]:
    """A weight of `shape` and a bias of its output size, drawn from torch's global generator with the laws of the
    nn.Module nets (src.models.mlp.init_linear_): default is PyTorch's U[-1/sqrt(fan_in), 1/sqrt(fan_in)] for both
    (nn.Linear's and nn.Conv2d's), lecun_normal is N(0, 1/fan_in) and a zero bias, uniform is U[-1, 1] for both,
    normal is N(0, std^2) and a zero bias.
    Linear: shape [fan_in, fan_out], bias [fan_out]; convolution: shape [F, C, k, k] (fan_in C*k*k), bias [F]."""
    out = shape[-1] if len(shape) == 2 else shape[0]
    if init == "lecun_normal":
        return torch.randn(shape) / math.sqrt(fan_in), torch.zeros(out)
    if init == "uniform":
        return torch.rand(shape) * 2 - 1, torch.rand(out) * 2 - 1
    if init == "default":
        bound = 1 / math.sqrt(fan_in)
        return (torch.rand(shape) * 2 - 1) * bound, (torch.rand(out) * 2 - 1) * bound
    if init == "normal":
        return torch.randn(shape) * std, torch.zeros(out)
    raise ValueError(f"unknown init {init!r}; choose one of default, lecun_normal, uniform, normal")
