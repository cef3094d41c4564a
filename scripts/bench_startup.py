"""Where a command's time goes before its first step and after its last: each phase of `fit` and of
`test --ckpt_path best` (configs/mnist_mlp.yaml, one epoch, real MNIST from DATA_DIR), next to a plain PyTorch
script that imports torch, reads the same IDX files and takes its first step.

    python scripts/bench_startup.py [--reps 3] [--config configs/mnist_mlp.yaml] [--json out.json]

Each command runs in a fresh process that prints a time stamp at every phase boundary (this file's CHILD code and
its Stamps callback); the parent notes when it spawned the process and when the process was gone. Repetitions
alternate the three commands; every figure is the median over repetitions, in seconds.
  interpreter   spawn -> Python runs the first line
  imports       `from src.cli import main` (torch, torchvision, lightning, torchmetrics, jsonargparse, ...)
  parse+build   LightningCLI parses the config, resolves the checkpoint, builds the model, data module, trainer
  data          the data module's setup: read the IDX files, split, normalise
  to 1st step   model summary, sanity check, loaders: up to the first training (or test) batch
  loop          first batch -> end of the loop (excluded from start-up)
  wind-down     end of the loop -> interpreter exit (checkpoints, logger, test report, atexit)
  exit          interpreter exit -> the parent sees the process gone
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lightning.pytorch import Callback

from src import provenance

ROOT = Path(__file__).resolve().parent.parent

# `python -m src.cli` with stamps: the gc calls are the ones src/cli.py makes when it runs as the program (the
# "python -m src.cli" column times the real command, unstamped, to check that these phases add up to it).
CHILD = """
import atexit, gc, sys, time
def stamp(name):
    print(f"STAMP {name} {time.time():.4f}", flush=True)
stamp("interpreter")
gc.disable()
from src.cli import main
stamp("imports")
from src.data.base import ImageDataModule
setup = ImageDataModule.setup
def timed_setup(self, stage):
    stamp("parse+build")
    setup(self, stage)
    stamp("data")
ImageDataModule.setup = timed_setup
atexit.register(stamp, "wind-down")
gc.freeze()
gc.enable()
main(sys.argv[1:])
gc.freeze()
"""

PLAIN = """
import sys, time
def stamp(name):
    print(f"STAMP {name} {time.time():.4f}", flush=True)
stamp("interpreter")
import numpy as np
import torch
from torch import nn
stamp("imports")
raw = sys.argv[1]
x = np.fromfile(f"{raw}/train-images-idx3-ubyte", dtype=np.uint8, offset=16).reshape(-1, 1, 28, 28)
y = np.fromfile(f"{raw}/train-labels-idx1-ubyte", dtype=np.uint8, offset=8)
x = torch.from_numpy(x).float().div_(255)
x = (x - x.mean()) / x.std()
y = torch.from_numpy(y).long()
stamp("data")
net = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.BatchNorm1d(256), nn.ReLU(), nn.Linear(256, 128),
                    nn.BatchNorm1d(128), nn.ReLU(), nn.Linear(128, 10))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
perm = torch.randperm(len(y))
stamp("to 1st step")
for i in range(0, len(y), 512):
    idx = perm[i:i + 512]
    loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
stamp("loop")
"""

PHASES = ["interpreter", "imports", "parse+build", "data", "to 1st step", "loop", "wind-down", "exit"]


class Stamps(Callback):
    """Stamps the first batch and the end of the training or test loop (passed with --trainer.callbacks+=)."""

    def __init__(self):
        self.started = False

    def _first(self) -> None:
        if not self.started:
            self.started = True
            print(f"STAMP to 1st step {time.time():.4f}", flush=True)

    def on_train_batch_start(self, *args) -> None:
        self._first()

    def on_test_batch_start(self, *args) -> None:
        self._first()

    def on_train_end(self, *args) -> None:
        print(f"STAMP loop {time.time():.4f}", flush=True)

    def on_test_end(self, *args) -> None:
        print(f"STAMP loop {time.time():.4f}", flush=True)


def phases(cmd: list[str], env: dict) -> dict[str, float]:
    """Run one command; -> seconds per phase (each stamp minus the one before; spawn is the first)."""
    start = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    end = time.time()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed:\n{proc.stderr[-3000:]}")
    stamps = [
        (line.split()[1:-1], float(line.split()[-1])) for line in proc.stdout.splitlines() if line.startswith("STAMP ")
    ]
    out, prev = {}, start
    for words, t in [*stamps, (["exit"], end)]:
        out[" ".join(words)] = t - prev
        prev = t
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--config", default="configs/mnist_mlp.yaml")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument(
        "--train-batches",
        type=int,
        help="train on this many batches of the epoch (default: all; a "
        "shorter loop for a quick check of the phases, not for the figures)",
    )
    args = parser.parse_args()
    data_dir = os.environ.get("DATA_DIR") or str(ROOT / "data")
    save_dir = tempfile.mkdtemp(prefix="bench_startup_")
    env = {**os.environ, "DATA_DIR": data_dir, "PYTHONPATH": str(ROOT)}
    common = [
        "--config",
        args.config,
        "--trainer.logger.init_args.save_dir",
        save_dir,
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.callbacks+=scripts.bench_startup.Stamps",
    ]
    epoch = ["--trainer.max_epochs", "1"] + (
        [] if args.train_batches is None else ["--trainer.limit_train_batches", str(args.train_batches)]
    )
    commands = {
        "fit (1 epoch)": [sys.executable, "-c", CHILD, "fit", *common, *epoch],
        "test --ckpt_path best": [sys.executable, "-c", CHILD, "test", *common, "--ckpt_path", "best"],
        "python -m src.cli fit": [sys.executable, "-m", "src.cli", "fit", *common[:-1], *epoch],
        "plain PyTorch (1 epoch)": [sys.executable, "-c", PLAIN, f"{data_dir}/MNIST/raw"],
    }
    runs: dict[str, list[dict]] = {name: [] for name in commands}
    for rep in range(args.reps):  # fit first in every repetition: test needs its checkpoint
        for name, cmd in commands.items():
            runs[name].append(phases(cmd, env))
        print(f"rep {rep}: " + ", ".join(f"{n} {sum(r[-1].values()):.2f}s" for n, r in runs.items()), flush=True)
    table = {name: {p: statistics.median(r.get(p, 0.0) for r in rs) for p in PHASES} for name, rs in runs.items()}
    for row in table.values():
        row["start-up (spawn -> 1st step)"] = sum(row[p] for p in PHASES[:5])
        row["total"] = sum(row[p] for p in PHASES)
    names = list(table)
    print(f"\n{'phase (median s)':<30}" + "".join(f"{n:>25}" for n in names))
    for phase in [*PHASES, "start-up (spawn -> 1st step)", "total"]:
        print(f"{phase:<30}" + "".join(f"{table[n][phase]:>25.2f}" for n in names))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "config": args.config,
                    "reps": args.reps,
                    "median_s": table,
                    "runs": runs,
                    "provenance": provenance.collect(provenance.command()),
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
