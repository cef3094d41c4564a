"""Benchmark helper for scripts/benchmark.py --tta: after each training epoch, score the full test set and
print `TTA <seconds since TTA_START, evaluations excluded> <test accuracy>`."""

import os
import time

import torch
from lightning.pytorch import Callback


class TestEveryEpoch(Callback):
    def __init__(self):
        self.excluded = 0.0

    @torch.no_grad()
    def on_train_epoch_end(self, trainer, pl_module):
        start = time.time()
        was_training = pl_module.training
        pl_module.eval()
        correct = total = 0
        for x, y in trainer.datamodule.test_dataloader():  # the data module's own test batches, on the device
            correct += (pl_module(x.to(pl_module.device)).argmax(1) == y.to(pl_module.device)).sum().item()
            total += len(y)
        pl_module.train(was_training)
        elapsed = start - float(os.environ["TTA_START"]) - self.excluded
        self.excluded += time.time() - start
        if trainer.is_global_zero:
            print(f"TTA {elapsed:.2f} {correct / total:.4f}", flush=True)
