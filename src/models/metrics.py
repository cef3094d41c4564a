"""EpochStats: a stage's accuracy, mean loss and sample count over an epoch, as one torchmetrics Metric."""

import torch
from torchmetrics import Metric


class EpochStats(Metric):
    """Counts correct predictions, sums the loss over samples and counts the samples; torchmetrics sums the
    three states over DDP ranks at compute() and resets them each epoch.

    One metric and one update per batch, because the update runs on every training step: the same numbers
    from MulticlassAccuracy(average="micro") + MeanMetric + SumMetric cost three updates' overhead per step, a
    visible share of a small MLP's step (README, Performance). tests/models/test_metrics.py checks that both
    give the same values.
    """

    full_state_update = False  # update() needs only the batch, not the accumulated state

    def __init__(self):
        super().__init__()
        self.add_state("correct", torch.tensor(0), dist_reduce_fx="sum")  # int64: exact at any count
        self.add_state("loss_sum", torch.tensor(0.0), dist_reduce_fx="sum")  # sum over samples of the loss
        self.add_state("count", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, target: torch.Tensor, loss: torch.Tensor) -> None:
        """logits [N, C], target [N] class indices, loss: the batch's mean loss (a scalar)."""
        self.correct += (logits.argmax(dim=1) == target).sum()
        self.loss_sum += loss * len(target)
        self.count += len(target)

    def compute(self) -> dict[str, torch.Tensor]:
        """-> {"acc", "loss", "samples"} as float scalars (NaN before any update)."""
        count = self.count.float()
        return {"acc": self.correct / count, "loss": self.loss_sum / count, "samples": count}
