"""StopOnNonFiniteLoss: every step on a CPU; on an accelerator, a device-side record read every `every` steps."""

from types import SimpleNamespace

import pytest
import torch

from src.callbacks.finite import StopOnNonFiniteLoss
from src.errors import UsageError


def feed(callback, losses, trainer=None):
    """Train-batch ends with these losses, as Lightning calls them (global_step counts the finished step)."""
    trainer = trainer or SimpleNamespace(global_step=0, current_epoch=0)
    for loss in losses:
        trainer.global_step += 1
        callback.on_train_batch_end(trainer, None, {"loss": torch.tensor(loss)}, None, trainer.global_step - 1)
    return trainer


def test_every_step_stops_at_the_bad_step():
    with pytest.raises(UsageError, match="became nan at epoch 0, step 7"):
        feed(StopOnNonFiniteLoss(), [1.0] * 7 + [float("nan")])


def test_deferred_check_names_the_first_bad_step_at_the_next_read():
    """every=50: nothing is read before step 49; then the error names step 7 and its loss, not a later one."""
    callback = StopOnNonFiniteLoss(every=50)
    losses = [1.0] * 7 + [float("inf")] + [float("nan")] * 41  # steps 0..48: no read yet
    trainer = feed(callback, losses)
    with pytest.raises(UsageError, match="became inf at epoch 0, step 7"):
        feed(callback, [float("nan")], trainer)  # step 49: the read
    callback = StopOnNonFiniteLoss(every=50)
    trainer = feed(callback, [1.0] * 3 + [float("nan")])
    with pytest.raises(UsageError, match="step 3"):
        callback.on_train_epoch_end(trainer, None)  # and before the epoch's checkpoint, whatever the count
    callback = StopOnNonFiniteLoss(every=50)
    callback.on_train_epoch_end(feed(callback, [1.0] * 60), None)  # all finite: no error
