"""ModelCheckpoint whose last.ckpt is always the newest state, as resuming and seed 004's "last epoch" need.

Lightning 2.6 writes last.ckpt only where a top-k file was saved too ("saves a last.ckpt copy whenever a checkpoint
file gets saved"; model_checkpoint.py, on_train_epoch_end / on_validation_end). With save_top_k: 1 on val/acc,
last.ckpt is then the best epoch's copy, not the last: a run whose val/acc peaked at epoch 14 of 20 resumed from
epoch 14 with --ckpt_path last, and seed 004's last-epoch score was epoch 14's (measured: 87.3 % instead of 85.4 %).
This subclass writes it at every point where Lightning would save (the end of each training epoch, after its
validation, or the end of each validation when validation runs within epochs). It calls Lightning's private
_save_last_checkpoint, _monitor_candidates, _should_skip_saving_checkpoint and _should_save_on_train_epoch_end
(checked on lightning 2.6.6): the public hooks offer no other way to save the file under ModelCheckpoint's own
bookkeeping (last_model_path, the state saved in it).
"""

from lightning.pytorch.callbacks import ModelCheckpoint as LightningModelCheckpoint


class ModelCheckpoint(LightningModelCheckpoint):
    """Lightning's ModelCheckpoint (same arguments, same state key), with last.ckpt written at every save point."""

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_newest(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_newest(trainer)

    def _save_newest(self, trainer) -> None:
        """last.ckpt now, unless Lightning has just saved it (or a top-k file) at this step, or must not save."""
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
