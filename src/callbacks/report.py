"""TestReport: per-class metrics, confusion matrix, misclassified images and first-layer filters after `test`."""

import csv
from pathlib import Path

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import (MulticlassConfusionMatrix, MulticlassF1Score, MulticlassPrecision,
                                         MulticlassRecall)
from torchvision.transforms.functional import pil_to_tensor

from src.callbacks.render import confusion_image, filter_grid, labelled_grid


def per_class_rows(precision, recall, f1, confmat, classes) -> list[dict]:
    """One row per class: precision, recall, F1 and support (the class's count in the test set)."""
    support = confmat.sum(dim=1)
    return [{"class": name, "precision": round(float(precision[i]), 4), "recall": round(float(recall[i]), 4),
             "f1": round(float(f1[i]), 4), "support": int(support[i])} for i, name in enumerate(classes)]


def markdown_table(rows: list[dict]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    return "\n".join(lines + ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows])


def first_layer_filters(net: nn.Module, in_shape: tuple[int, ...]) -> torch.Tensor:
    """The first layer's weights as images [K, C, H, W]: conv kernels as they are; a Linear layer's rows
    reshaped to the input image, i.e. what each first hidden unit looks for. A net that keeps its weights
    outside nn.Linear/nn.Conv2d (the manual-backprop nets) says so itself with a first_layer_filters method."""
    if hasattr(net, "first_layer_filters"):
        return net.first_layer_filters(in_shape)
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            return module.weight
        if isinstance(module, nn.Linear):
            return module.weight.reshape(-1, *in_shape)
    raise ValueError(f"no first Linear or Conv2d layer in {type(net).__name__}")


class TestReport(Callback):
    """After `test`, writes into <run>/test_K/test_report/ and logs to TensorBoard:
    per_class.csv/.md (torchmetrics precision, recall, F1 per class; also a TensorBoard text),
    confusion_matrix.csv/.png, misclassified.png (true -> predicted), filters.png.
    The metrics are synced over all DDP ranks (each test image counted once); the misclassified grid shows
    rank 0's first examples."""

    def __init__(self, max_misclassified: int = 32, max_filters: int = 64):
        self.max_misclassified, self.max_filters = max_misclassified, max_filters

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        n = len(trainer.datamodule.classes)
        self.metrics = MetricCollection({
            "precision": MulticlassPrecision(n, average=None), "recall": MulticlassRecall(n, average=None),
            "f1": MulticlassF1Score(n, average=None), "confmat": MulticlassConfusionMatrix(n)}).to(pl_module.device)
        self.wrong: list[tuple[torch.Tensor, int, int]] = []

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        x, y = batch
        preds = outputs.argmax(dim=1)  # ImageClassifier.test_step returns the logits [N, C]
        self.metrics.update(preds, y)
        for i in torch.nonzero(preds != y).flatten()[: self.max_misclassified - len(self.wrong)].tolist():
            self.wrong.append((x[i].detach().cpu(), int(y[i]), int(preds[i])))

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        values = self.metrics.compute()  # synced across ranks
        out = Path(trainer.log_dir or ".") / "test_report"  # log_dir is a broadcast: every rank must ask
        if not trainer.is_global_zero:
            return
        data, classes = trainer.datamodule, trainer.datamodule.classes
        out.mkdir(parents=True, exist_ok=True)
        rows = per_class_rows(values["precision"], values["recall"], values["f1"], values["confmat"], classes)
        with open(out / "per_class.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        table = markdown_table(rows)
        (out / "per_class.md").write_text(table + "\n")
        confmat = values["confmat"].cpu()
        with open(out / "confusion_matrix.csv", "w", newline="") as f:
            csv.writer(f).writerows([["true \\ predicted", *classes]] + [[c, *map(int, r)] for c, r in zip(classes, confmat)])
        images = {"confusion_matrix": confusion_image(confmat, classes),
                  "filters": filter_grid(first_layer_filters(pl_module.net, data.in_shape)[: self.max_filters])}
        if self.wrong:
            x = data.denormalize(torch.stack([w[0] for w in self.wrong]))
            images["misclassified"] = labelled_grid(x, [f"{classes[t]}->{classes[p]}" for _, t, p in self.wrong])
        for name, img in images.items():
            img.save(out / f"{name}.png")
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_text("test/per_class", table, trainer.global_step)
                for name, img in images.items():
                    logger.experiment.add_image(f"test/{name}", pil_to_tensor(img), trainer.global_step)
        rank_zero_info(f"test report: {out} (per-class table, confusion matrix, misclassified images, filters)")
