"""TestReport: per-class metrics, confusion matrix, misclassified images and first-layer filters after `test`."""

import csv
import math
from pathlib import Path

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)
from torchvision.io import write_png
from torchvision.utils import make_grid

from src.contracts import class_names
from src.run.layout import TEST_REPORT


def per_class_rows(precision, recall, f1, confmat, classes) -> list[dict]:
    """One row per class: precision, recall, F1 and support (the class's count in the test set)."""
    support = confmat.sum(dim=1)
    return [
        {
            "class": name,
            "precision": round(float(precision[i]), 4),
            "recall": round(float(recall[i]), 4),
            "f1": round(float(f1[i]), 4),
            "support": int(support[i]),
        }
        for i, name in enumerate(classes)
    ]


def markdown_table(rows: list[dict]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    return "\n".join(lines + ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows])


def misclassified_figure(images: torch.Tensor, captions: list[str], ncol: int = 8):
    """images [N, C, H, W] in [0, 1] as one grid of tiles, each with its caption ("true -> predicted") above it: one
    axes, not one per image, whose layout and drawing cost more than the rest of a test run."""
    import matplotlib.pyplot as plt

    pad, (h, w) = 12, images.shape[-2:]  # the padding above each tile holds its caption
    grid = make_grid(images.clamp(0, 1), nrow=ncol, padding=pad, pad_value=1.0)  # [3, H', W']
    fig, ax = plt.subplots(figsize=(grid.shape[2] / 40, grid.shape[1] / 40))
    ax.imshow(grid.permute(1, 2, 0).numpy())
    for k, caption in enumerate(captions):
        ax.text(
            (k % ncol) * (w + pad) + pad + w / 2,
            (k // ncol) * (h + pad) + pad - 1,
            caption,
            ha="center",
            va="bottom",
            fontsize=7,
        )
    ax.axis("off")
    fig.subplots_adjust(0, 0, 1, 1)
    return fig


def rendered(fig) -> torch.Tensor:
    """A matplotlib figure drawn once (Agg, whatever the backend) and closed: RGB uint8 [3, H, W], which both the
    PNG file and TensorBoard take."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    fig.set_dpi(90)
    canvas.draw()
    image = torch.from_numpy(np.asarray(canvas.buffer_rgba())[..., :3].copy()).permute(2, 0, 1).contiguous()
    plt.close(fig)
    return image


def first_layer_filters(net: nn.Module, in_shape: tuple[int, int, int]) -> torch.Tensor | None:
    """What each first-layer unit looks for, as images: the first Conv2d's kernels [F, C, k, k], or the first Linear's
    rows [H, *in_shape] where it reads the flattened image; a hand-written net is read through its nn.Module twin
    (to_module(), where it has one). None where neither is found."""
    net = net.to_module() if hasattr(net, "to_module") else net
    first = next((m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))), None)
    if isinstance(first, nn.Conv2d):
        return first.weight
    if isinstance(first, nn.Linear) and first.in_features == math.prod(in_shape):
        return first.weight.reshape(-1, *in_shape)
    return None


class TestReport(Callback):
    """After `test`, writes into <run>/test_K/test_report/ and logs to TensorBoard:
    per_class.csv/.md (torchmetrics precision, recall, F1 per class; also a TensorBoard text),
    confusion_matrix.csv/.png, misclassified.png (true -> predicted), filters.png (where the net's first layer can be
    drawn: first_layer_filters).
    The metrics are synced over all DDP ranks (each test image counted once); the misclassified grid shows
    rank 0's first examples."""

    def __init__(self, max_misclassified: int = 32, max_filters: int = 64, dirpath: str | None = None):
        # dirpath: the folder test_report/ goes in; None: the trainer's log_dir (the CLI sets the run's test_K)
        self.max_misclassified, self.max_filters, self.dirpath = max_misclassified, max_filters, dirpath

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        n = len(class_names(trainer.datamodule))
        self.metrics = MetricCollection(
            {
                "precision": MulticlassPrecision(n, average=None),
                "recall": MulticlassRecall(n, average=None),
                "f1": MulticlassF1Score(n, average=None),
                "confmat": MulticlassConfusionMatrix(n),
            }
        ).to(pl_module.device)
        self.wrong: list[tuple[torch.Tensor, int, int]] = []

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        x, y = batch
        preds = outputs.argmax(dim=1)  # ImageClassifier.test_step returns the logits [N, C]
        self.metrics.update(preds, y)
        for i in torch.nonzero(preds != y).flatten()[: self.max_misclassified - len(self.wrong)].tolist():
            self.wrong.append((x[i].detach().cpu(), int(y[i]), int(preds[i])))

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        values = self.metrics.compute()  # synced across ranks
        out = Path(self.dirpath or trainer.log_dir or ".") / TEST_REPORT  # log_dir: a broadcast, every rank asks
        if not trainer.is_global_zero:
            return
        classes = class_names(trainer.datamodule)
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
            csv.writer(f).writerows(
                [["true \\ predicted", *classes]] + [[c, *map(int, r)] for c, r in zip(classes, confmat)]
            )
        filters = first_layer_filters(pl_module.net, tuple(trainer.datamodule.in_shape))
        self.pictures(trainer, out, table, confmat, classes, filters)
        rank_zero_info(
            f"test report: {out} (per-class table, confusion matrix, misclassified images, "
            + ("filters)" if filters is not None else "no filters: the net has no first Linear or Conv2d to draw)")
        )

    def pictures(self, trainer, out: Path, table: str, confmat, classes, filters: torch.Tensor | None) -> None:
        """confusion_matrix.png (torchmetrics' own plot), misclassified.png (matplotlib) and filters.png (torchvision's
        grid, each filter scaled to [0, 1] on its own), as files and in TensorBoard."""
        images = {
            "confusion_matrix": rendered(MulticlassConfusionMatrix(len(classes)).plot(confmat, labels=list(classes))[0])
        }
        if self.wrong:
            x = torch.stack([w[0] for w in self.wrong])  # the images as the model takes them: [N, C, H, W] in [0, 1]
            images["misclassified"] = rendered(
                misclassified_figure(x, [f"{classes[t]} -> {classes[p]}" for _, t, p in self.wrong])
            )
        if filters is not None:
            grid = make_grid(
                filters[: self.max_filters].detach().float().cpu(),
                nrow=8,
                normalize=True,
                scale_each=True,
                pad_value=1.0,
            )
            images["filters"] = (
                grid.repeat_interleave(4, dim=1).repeat_interleave(4, dim=2).mul(255).round().byte()
            )  # 4x
        for name, image in images.items():
            write_png(image, str(out / f"{name}.png"))
        for writer in [lg.experiment for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]:
            writer.add_text("test/per_class", table, trainer.global_step)
            for name, image in images.items():
                writer.add_image(f"test/{name}", image, trainer.global_step)
