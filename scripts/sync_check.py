"""Count host-device synchronisations inside the template's training step on a GPU.

    python scripts/sync_check.py configs/mnist_mlp.yaml [configs/mnist_cnn.yaml ...]

Trains one epoch of each config (one validation batch) with torch.cuda.set_sync_debug_mode("warn") switched on
from on_train_batch_start to on_train_batch_end, so every operation that makes the host wait for the GPU inside
a training step (forward, backward, optimizer, logging, callbacks) raises a warning; prints the count and where
each came from. The target is 0 from src/: a sync per step stalls the GPU's queue of kernels.
"""

import collections
import sys
import time
import warnings

import torch
from lightning.pytorch import Callback

from src.cli import main


class SyncWatch(Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        torch.cuda.set_sync_debug_mode("warn")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        torch.cuda.set_sync_debug_mode(0)


def check(config: str) -> None:
    cli = main(
        [
            "--config",
            config,
            "--trainer.max_epochs",
            "1",
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.limit_val_batches",
            "1",
            "--trainer.logger.init_args.save_dir",
            "/tmp/sync_check",
        ],
        run=False,
    )
    cli.trainer.callbacks.append(SyncWatch())  # last: its on_train_batch_end runs after the template's callbacks
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        cli.trainer.fit(cli.model, cli.datamodule)
        wall = time.perf_counter() - start
    syncs = [w for w in caught if "synchroniz" in str(w.message).lower()]
    where = collections.Counter(f"{w.filename.rsplit('site-packages/', 1)[-1]}:{w.lineno}" for w in syncs)
    ours = sum(n for place, n in where.items() if "/src/" in place)
    print(f"{config}: one epoch in {wall:.2f} s; {len(syncs)} syncs inside training steps, {ours} from src/")
    for place, n in where.most_common(10):
        print(f"  {n:6d}  {place}")


if __name__ == "__main__":
    if not torch.cuda.is_available():
        sys.exit("error: no GPU: the sync check needs CUDA")
    for config in sys.argv[1:] or ["configs/mnist_mlp.yaml"]:
        check(config)
