"""What the classifier puts around a net, and src.export writes into an exported model, so a file and its
checkpoint give the same logits: Normalize, the input normalization as the first layer (a checkpoint carries it as
weights), and flip_mean / FlipMean, test-time augmentation by mirroring (ImageClassifier's eval_flip)."""

import torch
from torch import Tensor, nn


class Normalize(nn.Module):
    """(x - mean) / std per channel, for images x in [0, 1]: [N, C, H, W] -> [N, C, H, W].

    mean and std are buffers of shape [1, C, 1, 1] (in the state dict, moved with the model); C is not known until
    a data module or a checkpoint says it, so they start empty, and an empty Normalize passes x through."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.zeros(0))
        self.register_buffer("std", torch.ones(0))

    def set(self, mean, std) -> None:
        """mean, std: [C] sequences or tensors (the training split's per-channel statistics on the [0, 1] scale)."""
        mean, std = (torch.as_tensor(v, dtype=torch.float32, device=self.mean.device).flatten() for v in (mean, std))
        shape = (1, -1, 1, 1) if mean.numel() else (0,)  # an empty Normalize stays empty (a model never set up)
        self.mean, self.std = mean.reshape(shape), std.reshape(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # empty: shape [0]; set: [1, C, 1, 1]. One new tensor, divided in place: a second allocation per batch costs
        # more than the arithmetic (each fresh block page-faults). Dividing, not multiplying by 1/std, keeps every
        # committed result bit for bit.
        return x if self.mean.dim() == 1 else (x - self.mean).div_(self.std)

    def extra_repr(self) -> str:
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"


def flip_mean(net: nn.Module, x: Tensor) -> Tensor:
    """x: [N, C, H, W] -> the mean of net's logits on x and on x mirrored left-right, [N, num_classes]. Averaging logits
    is averaging log-probabilities up to a per-image constant: the softmax is the two views' normalized geometric
    mean."""
    return (net(x) + net(x.flip(-1))) / 2


class FlipMean(nn.Module):
    """flip_mean(net, x) as a module (for the exporters, which take modules)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return flip_mean(self.net, x)
