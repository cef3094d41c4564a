"""PredictionWriter: `predict` saves what it predicted, as a CSV a person can read."""

import csv
from pathlib import Path

import torch
import torch.distributed as dist
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from src.contracts import class_names, predict_files
from src.run.layout import PREDICTIONS

FIELDS = ("index", "file", "label", "predicted", "confidence", "top3")


class PredictionWriter(BasePredictionWriter):
    """Writes <run>/predict_K/predictions.csv: one row per image in the predict set's order -- its index, its
    file (for --data.init_args.predict_path), its true label where known, the predicted class name, that class's
    probability, and the three most probable classes. Under DDP every rank predicts a disjoint part
    (UnrepeatedDistributedSampler); rank 0 gathers the rows and writes each image exactly once, sorted by index."""

    def __init__(self, dirpath: str | None = None):  # None: the trainer's log_dir (the CLI sets the run's predict_K)
        super().__init__(write_interval="batch")
        self.dirpath = dirpath
        self.rows: list[tuple[int, int, list[float]]] = []

    def on_predict_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.rows = []

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx):
        """prediction: predict_step's {"probs": [B, classes], "target": [B]}; batch_indices: the B dataset indices."""
        probs, target = prediction["probs"].cpu(), prediction["target"].cpu().tolist()
        self.rows.extend(zip(batch_indices, target, probs.tolist()))

    def on_predict_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        rows = self.rows
        if dist.is_available() and dist.is_initialized() and trainer.world_size > 1:
            gathered = [None] * trainer.world_size
            dist.all_gather_object(gathered, rows)
            rows = [row for part in gathered for row in part]
        out = Path(self.dirpath or trainer.log_dir or ".") / PREDICTIONS  # log_dir: a broadcast, every rank asks
        if trainer.is_global_zero:
            write_csv(out, sorted(rows), class_names(trainer.datamodule), predict_files(trainer.datamodule))
            rank_zero_info(f"predictions: {out} ({len(rows)} images)")


def write_csv(path: Path, rows: list[tuple[int, int, list[float]]], classes: list[str], files: list[Path]) -> None:
    """rows: (index, true label or -1, class probabilities) sorted by index."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(FIELDS)
        for index, label, probs in rows:
            top = torch.tensor(probs).topk(min(3, len(probs)))
            best = int(top.indices[0])
            writer.writerow(
                [
                    index,
                    files[index].name if files else "",
                    classes[label] if label >= 0 else "",
                    classes[best],
                    f"{probs[best]:.6f}",
                    "; ".join(f"{classes[int(i)]} ({p:.4f})" for p, i in zip(top.values.tolist(), top.indices)),
                ]
            )
