"""EpochStats gives torchmetrics' own MulticlassAccuracy, MeanMetric and SumMetric values, in one update."""

import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric, SumMetric
from torchmetrics.classification import MulticlassAccuracy

from src.models.classifier import EpochStats


def test_epoch_stats_equal_the_library_metrics_over_uneven_batches():
    torch.manual_seed(0)
    stats = EpochStats()
    acc, mean, total = MulticlassAccuracy(10, average="micro"), MeanMetric(), SumMetric()
    for n in (128, 128, 37):  # a short last batch: the loss mean must weight batches by size
        logits, y = torch.randn(n, 10), torch.randint(0, 10, (n,))
        loss = F.cross_entropy(logits, y)
        stats.update(logits, y, loss)
        acc.update(logits, y), mean.update(loss, weight=n), total.update(float(n))
    values = stats.compute()
    assert values["samples"].item() == total.compute().item() == 293
    assert values["acc"].item() == acc.compute().item()
    assert torch.allclose(values["loss"], mean.compute(), rtol=1e-6)
    stats.reset()
    stats.update(torch.eye(3), torch.tensor([0, 1, 1]), torch.tensor(0.5))  # after reset: this batch alone
    assert stats.compute() == {"acc": torch.tensor(2 / 3), "loss": torch.tensor(0.5), "samples": torch.tensor(3.0)}
