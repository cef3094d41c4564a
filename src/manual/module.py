"""ManualClassifier: ImageClassifier's logging, checkpointing and testing around a hand-differentiated net."""

from typing import Literal

from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

from src.manual.cnn import ManualCNN
from src.manual.mlp import ManualMLP
from src.manual.optim import ManualSGD
from src.models.classifier import ImageClassifier


class ManualClassifier(ImageClassifier):
    """Trains a ManualMLP or ManualCNN with its own gradients: no loss.backward(), no autograd graph (manual optimization).
    Validation, test, metrics, checkpoints and the CLI are ImageClassifier's, unchanged."""

    def __init__(
        self,
        net: ManualMLP | ManualCNN,  # in YAML: class_path src.manual.ManualMLP (or ManualCNN) with its init_args
        optimizer: OptimizerCallable = ManualSGD,  # any torch optimizer works; ManualSGD is the exercise's rule
        scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",  # per-epoch decay: epoch
    ):
        super().__init__(net, optimizer, scheduler, scheduler_interval)
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        x, y = batch
        steps_done = self.global_step  # the optimizer step below counts this batch
        scores, loss, grads = self.net.forward_backward(self.normalize(x), y)  # x in [0, 1], as every path feeds
        for name, param in self.net.params.items():
            param.grad = grads[name]
        self.optimizers().step()
        if self.lr_schedulers() is not None and self.scheduler_interval == "step":
            self.lr_schedulers().step()
        self.update_metrics("train", scores, y, loss)
        self.log_train_loss(loss, steps_done)
        return loss

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        if self.lr_schedulers() is not None and self.scheduler_interval == "epoch":  # manual optimization: ours to step
            self.lr_schedulers().step()
