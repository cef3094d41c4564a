"""ManualCNN: the small CNN of src.models.cnn.SmallCNN with every gradient written out (conv.py, batchnorm.py)."""

from typing import Literal

import torch
from torch import nn

from src import frameworks
from src.manual.batchnorm import BatchNorm2d
from src.manual.conv import Conv2d, Flatten, MaxPool2d
from src.manual.layers import ACTIVATIONS, Linear, softmax_cross_entropy
from src.manual.mlp import init_weights
from src.models.cnn import SmallCNN
from src.models.mlp import Activation


class ManualCNN(nn.Module):
    """[conv k x k (same padding) -> (BatchNorm2d) -> activation -> maxpool 2] per channel count -> flatten -> Linear.

    The architecture of SmallCNN (without its optional hidden Linear layers). On MNIST with channels (16, 16) and
    k = 5: conv1 16x1x5x5 + 16, conv2 16x16x5x5 + 16, linear 784x10 + 10 = 14,682 parameters.

    Parameters, numbered by layer l = 1..L like ManualMLP's: W{l} [F, C, k, k] and b{l} [F] for the convolutions
    (PyTorch's Conv2d layout; no bias where batchnorm follows, as in SmallCNN), gamma{l}, beta{l} [F] and the
    buffers running_mean{l}, running_var{l} [F] with batchnorm, and W{L} [features, classes], b{L} for the
    classifier (batch-major, z = x W + b). requires_grad=False throughout: autograd never sees them.
    loss = mean cross-entropy + reg * sum_l ||W_l||^2 over every weight (biases and gamma/beta not regularised).
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int] = (
            1,
            28,
            28,
        ),  # one image, channels first; the command line takes the data module's
        num_classes: int = 10,
        channels: list[int] = [16, 16],  # output channels of each conv block
        kernel_size: int = 5,  # odd, so that 'same' padding keeps H and W until each pool
        batchnorm: bool = False,  # BatchNorm2d between each conv and its activation
        activation: Activation = "relu",
        init: Literal["default", "lecun_normal", "uniform"] = "default",  # default: PyTorch's Conv2d/Linear init
        reg: float = 0.0,  # L2 strength on the weights; its gradient is 2 * reg * W
    ):
        super().__init__()
        if kernel_size % 2 != 1 or any(c <= 0 for c in channels):
            raise ValueError(f"need an odd kernel_size and positive channels, got {kernel_size} and {list(channels)}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        frameworks.reuse_freed_memory()  # its patch matrices: tens of MB, allocated anew every step
        self.in_shape, self.num_classes, self.blocks = tuple(in_shape), num_classes, len(channels)
        self.channels, self.kernel_size, self.activation_name = list(channels), kernel_size, activation
        self.pad, self.batchnorm, self.activation, self.reg = kernel_size // 2, batchnorm, ACTIVATIONS[activation], reg
        self.params = nn.ParameterDict()
        c_in, h, w = in_shape
        for l, c_out in enumerate(channels, start=1):
            W, b = init_weights((c_out, c_in, kernel_size, kernel_size), c_in * kernel_size**2, init)
            self.params[f"W{l}"] = nn.Parameter(W, requires_grad=False)
            if batchnorm:
                self.params[f"gamma{l}"] = nn.Parameter(torch.ones(c_out), requires_grad=False)
                self.params[f"beta{l}"] = nn.Parameter(torch.zeros(c_out), requires_grad=False)
                self.register_buffer(f"running_mean{l}", torch.zeros(c_out))
                self.register_buffer(f"running_var{l}", torch.ones(c_out))
            else:
                self.params[f"b{l}"] = nn.Parameter(b, requires_grad=False)
            c_in, h, w = c_out, h // 2, w // 2
        W, b = init_weights((c_in * h * w, num_classes), c_in * h * w, init)
        self.params[f"W{self.blocks + 1}"] = nn.Parameter(W, requires_grad=False)
        self.params[f"b{self.blocks + 1}"] = nn.Parameter(b, requires_grad=False)

    def _block(self, l: int, x: torch.Tensor) -> tuple[torch.Tensor, tuple]:
        """Conv block l: [N, C, H, W] -> [N, F, H/2, W/2], and the caches its backward needs."""
        p = self.params
        h, conv = Conv2d.forward(x, p[f"W{l}"], None if self.batchnorm else p[f"b{l}"], self.pad)
        bn = None
        if self.batchnorm:  # batch statistics (and moving averages) in training mode, running averages in eval
            h, bn = BatchNorm2d.forward(
                h,
                p[f"gamma{l}"],
                p[f"beta{l}"],
                getattr(self, f"running_mean{l}"),
                getattr(self, f"running_var{l}"),
                self.training,
            )
        h, act = self.activation.forward(h)
        h, pool = MaxPool2d.forward(h)
        return h, (conv, bn, act, pool)

    def _block_backward(self, l: int, dh: torch.Tensor, caches: tuple, grads: dict) -> torch.Tensor | None:
        """dL/d(block l's output) -> dL/d(its input) (None for the first block: its input is data); fills grads."""
        conv, bn, act, pool = caches
        dh, _ = MaxPool2d.backward(dh, pool)
        dh, _ = self.activation.backward(dh, act)
        if bn is not None:
            dh, g = BatchNorm2d.backward(dh, bn)
            grads[f"gamma{l}"], grads[f"beta{l}"] = g["gamma"], g["beta"]
        dh, g = Conv2d.backward(dh, conv, input_grad=l > 1)
        grads[f"W{l}"] = g["W"].add_(self.params[f"W{l}"], alpha=2 * self.reg) if self.reg else g["W"]
        if "b" in g:
            grads[f"b{l}"] = g["b"]
        return dh

    @torch.no_grad()
    def forward_backward(self, X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """X: [N, C, H, W], y: [N] -> (scores [N, classes], loss scalar, grads keyed like params)."""
        h, caches = X, []
        for l in range(1, self.blocks + 1):
            h, cache = self._block(l, h)
            caches.append(cache)
        h, flat = Flatten.forward(h)
        last = self.blocks + 1
        scores, linear = Linear.forward(h, self.params[f"W{last}"], self.params[f"b{last}"])
        loss, dh = softmax_cross_entropy(scores, y)
        weights = [self.params[f"W{l}"] for l in range(1, last + 1)]
        if self.reg:
            loss = loss + self.reg * sum((W * W).sum() for W in weights)
        dh, g = Linear.backward(dh, linear)
        grads = {f"W{last}": g["W"].add_(weights[-1], alpha=2 * self.reg) if self.reg else g["W"], f"b{last}": g["b"]}
        dh, _ = Flatten.backward(dh, flat)
        for l in range(self.blocks, 0, -1):  # the chain rule, last block first
            dh = self._block_backward(l, dh, caches[l - 1], grads)
        return scores, loss, grads

    @torch.no_grad()
    def scores(self, X: torch.Tensor) -> torch.Tensor:
        """X: [N, C, H, W] -> class scores (logits) [N, classes]. In training mode batchnorm uses (and moves) the
        batch statistics, as nn.BatchNorm2d does; in eval mode the running averages."""
        h = X
        for l in range(1, self.blocks + 1):
            h, _ = self._block(l, h)
        last = self.blocks + 1
        return Linear.forward(Flatten.forward(h)[0], self.params[f"W{last}"], self.params[f"b{last}"])[0]

    forward = scores

    def loss(self, X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """(mean cross-entropy + reg * sum ||W||^2, {name: d loss / d param})."""
        _, loss, grads = self.forward_backward(X, y)
        return loss, grads

    def to_module(self) -> SmallCNN:
        """The same network as a SmallCNN (autograd, oneDNN/cuDNN kernels) holding copies of these weights and
        running statistics: the twin the tests compare gradients against, and a traceable module for export."""
        net = SmallCNN(
            self.in_shape,
            self.num_classes,
            tuple(self.channels),
            self.kernel_size,
            self.batchnorm,
            self.activation_name,
            channels_last=False,
        ).to(self.params["W1"].dtype)
        convs = [m for m in net.layers if isinstance(m, nn.Conv2d)]
        norms = [m for m in net.layers if isinstance(m, nn.BatchNorm2d)]
        p = self.params
        with torch.no_grad():
            for l, conv in enumerate(convs, start=1):
                conv.weight.copy_(p[f"W{l}"])
                if conv.bias is not None:
                    conv.bias.copy_(p[f"b{l}"])
            for l, norm in enumerate(norms, start=1):
                norm.weight.copy_(p[f"gamma{l}"])
                norm.bias.copy_(p[f"beta{l}"])
                norm.running_mean.copy_(getattr(self, f"running_mean{l}"))
                norm.running_var.copy_(getattr(self, f"running_var{l}"))
            net.layers[-1].weight.copy_(p[f"W{self.blocks + 1}"].T)
            net.layers[-1].bias.copy_(p[f"b{self.blocks + 1}"])
        return net.train(self.training)
