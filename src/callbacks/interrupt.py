"""Save a resumable checkpoint when a fit is interrupted (Ctrl-C, SIGTERM from a scheduler)."""

from pathlib import Path

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_info

INTERRUPTED = "interrupted.ckpt"
RESUME = "resume by running the same command with --ckpt_path last"


class CheckpointOnInterrupt(Callback):
    """Writes <run>/checkpoints/interrupted.ckpt (crash-safe, as every checkpoint: src/checkpoint_io.py) and says how to
    resume. last.ckpt and the best checkpoint are left as they were; `--ckpt_path last` picks whichever of
    last.ckpt and interrupted.ckpt is newer (src/runs.py). Lightning then exits with status 1 (Ctrl-C);
    src.cli.main turns SIGTERM into status 143.

    A Ctrl-C during a validation inside fit saves nothing: cut short, the validation has no scores yet, nor has
    anything that follows them (the best checkpoint, early stopping), and last.ckpt, saved when the previous
    validation ended, is the consistent state to go on from; the line says so (Lightning defers a SIGTERM to the
    next training step)."""

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, (KeyboardInterrupt, SIGTERMException)) or trainer.state.fn != TrainerFn.FITTING:
            return
        if trainer.checkpoint_callback is None or trainer.checkpoint_callback.dirpath is None:
            return
        where = f"at epoch {trainer.current_epoch}, step {trainer.global_step}"
        if not trainer.training:  # the sanity check or a validation
            last = trainer.checkpoint_callback.last_model_path
            then = (
                f"{RESUME} (from {last})"
                if last and Path(last).is_file()
                else "nothing saved yet: run the command again"
            )
            rank_zero_info(f"interrupted during validation {where}; {then}")
            return
        path = Path(trainer.checkpoint_callback.dirpath) / INTERRUPTED
        trainer.save_checkpoint(path, weights_only=False)  # a full, resumable checkpoint (and no "not set" notice)
        rank_zero_info(f"interrupted {where}: saved {path}; {RESUME}")
