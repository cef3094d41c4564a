"""ManualClassifier: ImageClassifier's logging, checkpointing and testing around a hand-differentiated net."""

from typing import Literal

from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn

from src.contracts import ManualNet
from src.errors import UsageError
from src.manual.optim import ManualSGD
from src.models.classifier import ImageClassifier


class ManualClassifier(ImageClassifier):
    """Trains any net that follows the ManualNet contract (src/contracts.py: ManualMLP, ManualCNN or one's own) with
    its own gradients: no loss.backward(), no autograd graph (manual optimization). Validation, test, metrics,
    checkpoints and the CLI are ImageClassifier's, unchanged."""

    def __init__(
        self,
        net: nn.Module,  # a ManualNet; in YAML: class_path src.manual.mlp.ManualMLP (or ManualCNN, or one's own)
        optimizer: OptimizerCallable = ManualSGD,  # any torch optimizer works; ManualSGD is the exercise's rule
        scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",  # per-epoch decay: epoch
    ):
        if not isinstance(net, ManualNet):
            raise UsageError(
                f"{type(net).__name__} is not a manual net: ManualClassifier needs `params` and "
                "`forward_backward(x, y)` (src/contracts.py); train an autograd net with ImageClassifier"
            )
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
