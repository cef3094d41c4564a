"""Save a resumable checkpoint when a fit is interrupted (Ctrl-C, SIGTERM from a scheduler)."""

from pathlib import Path

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_info

INTERRUPTED = "interrupted.ckpt"


class CheckpointOnInterrupt(Callback):
    """Writes <run>/checkpoints/interrupted.ckpt (atomically, like every Lightning checkpoint) and says how to
    resume. last.ckpt and the best checkpoint are left as they were; `--ckpt_path last` picks whichever of
    last.ckpt and interrupted.ckpt is newer (src/runs.py). Lightning then exits with status 1 (Ctrl-C);
    src.cli.main turns SIGTERM into status 143."""

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, (KeyboardInterrupt, SIGTERMException)) or not trainer.training:
            return
        if trainer.checkpoint_callback is None or trainer.checkpoint_callback.dirpath is None:
            return
        path = Path(trainer.checkpoint_callback.dirpath) / INTERRUPTED
        trainer.save_checkpoint(path, weights_only=False)  # a full, resumable checkpoint (and no "not set" notice)
        rank_zero_info(f"interrupted at epoch {trainer.current_epoch}, step {trainer.global_step}: saved {path}; "
                       "resume by running the same command with --ckpt_path last")
