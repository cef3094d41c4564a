"""How a run's checkpoints are written: crash-safe (AtomicCheckpointIO), last.ckpt always the newest state
(ModelCheckpoint), and interrupted.ckpt when a fit is interrupted (CheckpointOnInterrupt)."""

import os
from pathlib import Path

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint as LightningModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from src.errors import DISK_ERRNOS, UsageError
from src.frameworks import save_last_now, saves_on_train_epoch_end
from src.run.layout import INTERRUPTED


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if storage_options is not None:  # as Lightning's: nothing to do with them for a local file
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException as err:  # a full disk, a read-only folder, Ctrl-C mid-write: the old file stays
            tmp.unlink(missing_ok=True)
            disk = _disk_cause(err)
            if disk is not None:
                raise UsageError(
                    f"cannot write the checkpoint {path} ({os.strerror(disk.errno)}); free space in "
                    f"{path.parent} or pass another --trainer.logger.init_args.save_dir; {path.name} "
                    "and the other checkpoints there are as they were"
                ) from err
            raise


def _disk_cause(err: BaseException) -> OSError | None:
    """The OSError of DISK_ERRNOS behind a failed save, if any: torch.save's zip writer turns a full disk into
    `RuntimeError: [enforce fail at inline_container.cc] unexpected pos ...`, the ENOSPC being its __context__."""
    while err is not None:
        if isinstance(err, OSError) and err.errno in DISK_ERRNOS:
            return err
        err = err.__cause__ or err.__context__
    return None


class ModelCheckpoint(LightningModelCheckpoint):
    """Lightning's ModelCheckpoint (same arguments, same state key), with last.ckpt written at every save point."""

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if saves_on_train_epoch_end(self, trainer):
            save_last_now(self, trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        super().on_validation_end(trainer, pl_module)
        if not saves_on_train_epoch_end(self, trainer):
            save_last_now(self, trainer)


RESUME = "resume by running the same command with --ckpt_path last"


class CheckpointOnInterrupt(Callback):
    """Writes <run>/checkpoints/interrupted.ckpt (crash-safe, as every checkpoint: src/run/checkpoints.py) and says how
    to resume. last.ckpt and the best checkpoint are left as they were; `--ckpt_path last` picks whichever of
    last.ckpt and interrupted.ckpt is newer (src/run/layout.py). Lightning then exits with status 1 (Ctrl-C);
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
