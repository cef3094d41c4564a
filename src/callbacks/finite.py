"""Stop at the first non-finite training loss, before it reaches a checkpoint."""

import math

from lightning.pytorch import Callback, LightningModule, Trainer

from src.errors import UsageError


class StopOnNonFiniteLoss(Callback):
    """Raises at the first step whose loss is NaN or inf, naming the step. The fit stops there: no checkpoint
    is written from the diverged weights, so the best and last ones from before stay loadable.

    Costs one device-to-host sync per step (the check needs the value): negligible on a CPU, a small stall per
    step on a GPU. Lightning's EarlyStopping(check_finite=True) only notices at the next validation."""

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None and not math.isfinite(float(loss)):
            # global_step has already counted this batch's optimizer step; name the step that produced the loss.
            raise UsageError(f"the training loss became {float(loss)} at epoch {trainer.current_epoch}, step "
                             f"{trainer.global_step - 1}: lower the learning rate (the best checkpoint so far is kept)")
