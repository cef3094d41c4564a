"""Stop at the first non-finite training loss, before it reaches a checkpoint."""

import math

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from src.errors import UsageError


class StopOnNonFiniteLoss(Callback):
    """Raises naming the first step whose loss was NaN or inf. No checkpoint is written from the diverged weights,
    so the best and last ones from before stay loadable. Lightning's EarlyStopping(check_finite=True) only
    notices at the next validation, after the epoch's work.

    Reading a loss on the host waits for the device to finish the step. On a CPU that costs nothing and the loss
    is checked every step. On a GPU it would stall the queue of kernels every step (the template's only
    host-device sync in a training step, measured with torch.cuda.set_sync_debug_mode), so there the first bad
    step is recorded on the device and read every `every` steps and before each validation and epoch end -- before
    ModelCheckpoint, which Lightning runs after the other callbacks, can save anything.
    """

    def __init__(self, every: int | None = None):  # steps between reads; default 1 on a CPU, 50 on an accelerator
        self.every = every
        self.first_bad: torch.Tensor | None = (
            None  # [2] on the loss's device: (step, loss) of the first bad step, step -1 if none
        )

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        step = trainer.global_step - 1  # global_step has already counted this batch's optimizer step
        every = self.every or (1 if loss.device.type == "cpu" else 50)
        if every == 1:
            if not math.isfinite(float(loss)):
                self._stop(trainer, step, float(loss))
            return
        if self.first_bad is None or self.first_bad.device != loss.device:
            self.first_bad = torch.full((2,), -1.0, device=loss.device)  # a fill kernel: no copy from the host
        new = (~torch.isfinite(loss.detach())) & (self.first_bad[0] < 0)  # without a sync: a device-side select
        here = torch.stack(
            [torch.full((), float(step), device=loss.device), loss.detach().float()]
        )  # a fill kernel, no copy
        self.first_bad = torch.where(new, here, self.first_bad)
        if (step + 1) % every == 0:
            self._check(trainer)

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.training:
            self._check(trainer)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._check(trainer)

    def _check(self, trainer: Trainer) -> None:
        if self.first_bad is not None:
            step, loss = self.first_bad.tolist()  # the one sync, every `every` steps
            if step >= 0:
                self._stop(trainer, int(step), loss)

    @staticmethod
    def _stop(trainer: Trainer, step: int, loss: float) -> None:
        raise UsageError(
            f"the training loss became {loss} at epoch {trainer.current_epoch}, step {step}: lower the "
            "learning rate (the best checkpoint so far is kept)"
        )
