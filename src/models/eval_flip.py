"""Test-time augmentation by mirroring, defined once: ImageClassifier scores with it outside training (eval_flip), and
src.export writes it into the exported model, so a file and the checkpoint it came from give the same logits."""

from torch import Tensor, nn


def flip_mean(net: nn.Module, x: Tensor) -> Tensor:
    """x: [N, C, H, W] -> the mean of net's logits on x and on x mirrored left-right, [N, num_classes]. Averaging logits
    is averaging log-probabilities up to a per-image constant: the softmax is the two views' normalized geometric mean."""
    return (net(x) + net(x.flip(-1))) / 2


class FlipMean(nn.Module):
    """flip_mean(net, x) as a module (for the exporters, which take modules)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return flip_mean(self.net, x)
