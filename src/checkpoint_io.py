"""AtomicCheckpointIO: every checkpoint written so that a crash or a full disk never leaves a broken file.

Lightning's TorchCheckpointIO saves through an fsspec transaction, which writes a temp file in $TMPDIR and moves it
into place; where the log folder is on another filesystem that move is a copy over the old file, so a SIGKILL during
it left last.ckpt at 0 bytes (and a 240 MB orphan in $TMPDIR), and a full disk a truncated one. Here the temp file is
in the checkpoint's own folder, fsynced, then os.replace()d over the old name: a reader sees the old file or the new
one, never part of one, and a failed write leaves the old file and no temp file behind.
"""

import os
from pathlib import Path

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from src.errors import DISK_ERRNOS, UsageError


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
