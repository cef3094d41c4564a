"""The small CNN: two 5x5 conv blocks and a linear classifier (plain nn.Module, no Lightning)."""

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from src.models.mlp import Activation, make_activation


@dataclass
class ConvBlock:
    """One entry of SmallCNN's blocks: convolutions in a row, then (pool) a 2x2 max pool."""

    channels: list[int]  # output channels of each convolution, e.g. [24, 24] for conv-conv-pool
    kernel_size: int = 5  # odd, so that 'same' padding keeps H and W until the pool
    pool: bool = True


class SmallCNN(nn.Module):
    """[conv kxk (same padding) -> (BatchNorm2d) -> activation -> maxpool 2] per channel count
    -> flatten -> [Linear -> activation] per hidden size -> Linear. `blocks` generalises the conv part to blocks
    of several convolutions each, with or without a pool (seed 003's CIFAR-10 net: configs/cifar10_cnn_seed003.yaml).

    x: [N, C, H, W] -> logits [N, num_classes]. On MNIST (1x28x28) with channels (16, 16) the
    classifier sees 16*7*7 = 784 features, as many as the pixels an MLP sees; on 3x32x32, 16*8*8 = 1024.
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int] = (
            1,
            28,
            28,
        ),  # one image, channels first; the command line takes the data module's
        num_classes: int = 10,
        channels: tuple[int, ...] = (16, 16),  # output channels of each conv block
        kernel_size: int = 5,  # odd, so that 'same' padding keeps H and W until each pool
        batchnorm: bool = False,  # BatchNorm2d between each conv and its activation
        activation: Activation = "relu",
        hidden: list[int] = [],  # optional hidden Linear layers before the classifier
        channels_last: bool = True,  # conv weights NHWC: oneDNN/cuDNN pick faster kernels than for NCHW
        blocks: list[ConvBlock] | None = None,  # replaces channels and kernel_size: conv blocks, input side first
    ):
        super().__init__()
        blocks = (
            [b if isinstance(b, ConvBlock) else ConvBlock(**b) for b in blocks]
            if blocks
            else [ConvBlock([c], kernel_size) for c in channels]
        )
        if any(b.kernel_size % 2 != 1 for b in blocks):
            raise ValueError(f"kernel sizes must be odd for 'same' padding, got {[b.kernel_size for b in blocks]}")
        if any(c <= 0 for b in blocks for c in b.channels) or any(h <= 0 for h in hidden):
            raise ValueError(f"channels and hidden sizes must be positive, got {blocks} and {hidden}")
        self.in_shape, self.num_classes = tuple(in_shape), num_classes
        c_in, h, w = in_shape
        layers: list[nn.Module] = []
        for block in blocks:
            for c_out in block.channels:
                layers.append(
                    nn.Conv2d(c_in, c_out, block.kernel_size, padding=block.kernel_size // 2, bias=not batchnorm)
                )
                layers += (
                    [nn.BatchNorm2d(c_out), make_activation(activation)] if batchnorm else [make_activation(activation)]
                )
                c_in = c_out
            if block.pool:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
        layers.append(nn.Flatten())
        fan_in = c_in * h * w
        for width in hidden:
            layers += [nn.Linear(fan_in, width), make_activation(activation)]
            fan_in = width
        self.layers = nn.Sequential(*layers, nn.Linear(fan_in, num_classes))
        if channels_last:
            # Only the 4-D conv weights change layout; each conv's output follows its weight's layout, so the
            # activations are NHWC from the first conv on. Module.to(device) and checkpoint loads keep the layout.
            self.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
