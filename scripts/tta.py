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
        test = trainer.datamodule.splits["test"]
        was_training = pl_module.training
        pl_module.eval()
        correct = sum((pl_module(test.images[i:i + 1000]).argmax(1) == test.labels[i:i + 1000]).sum().item()
                      for i in range(0, len(test), 1000))
        pl_module.train(was_training)
        elapsed = start - float(os.environ["TTA_START"]) - self.excluded
        self.excluded += time.time() - start
        if trainer.is_global_zero:
            print(f"TTA {elapsed:.2f} {correct / len(test):.4f}", flush=True)
