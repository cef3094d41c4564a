"""Where a small MLP's MNIST epoch goes: this template vs the standard pipeline vs a bare PyTorch loop.

    python scripts/benchmark.py [--reps 3] [--batch-size N] [--device cpu] [--json out.json] [--tta] [--manual] [--cnn]
                                [--startup]

Same model (784-64-128-64-10 MLP with batchnorm, ReLU), same batch (configs/mnist_mlp.yaml's unless --batch-size
says otherwise), the configs' optimizer (Adam, fused, lr 1e-3), real MNIST (DATA_DIR):
  T  this template: configs/mnist_mlp.yaml's data module and ImageClassifier, built by LightningCLI,
     one `fit` epoch (train + validation) through Lightning's Trainer;
  S  the standard pipeline: the same LightningModule with torchvision's MNIST, per-sample
     ToTensor + Normalize and a shuffling DataLoader (num_workers 0 and 2);
  L  Lightning's own floor: the same module and data module in `Trainer(barebones=True)` (no logger,
     callbacks or progress bar) without the per-step training metrics, so T/L is what this template adds
     and L/R what Lightning's loop costs;
  R  the limit for a framework: a plain PyTorch loop over preloaded, normalized tensors.
Repetitions alternate T, L, R, S0, S2 so machine drift hits all alike; each time is a median (min-max), each
ratio the median of the per-repetition ratios.
An epoch is timed from on_train_epoch_start to on_train_end of a one-epoch fit: validation, the epoch's logging and
the checkpoint saves (ModelCheckpoint saves after every other on_train_epoch_end) are in; set-up and data decoding
are out, as they happen once per run. --tta adds wall time to test accuracy for the configs;
--manual adds the manual-backprop step against autograd (scripts/bench_manual_step.py), --cnn SmallCNN's step per
memory layout and precision (scripts/bench_cnn_step.py), --startup the phases of `fit` and `test` before the first
step and after the last, next to a plain PyTorch script (scripts/bench_startup.py).
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from lightning.pytorch import Callback, LightningDataModule, Trainer
from torch.utils.data import DataLoader, random_split
from torchvision import datasets, transforms

from src import provenance
from src.cli import main as cli
from src.data.base import default_data_dir
from src.data.mnist import MNISTDataModule
from src.frameworks import skip_nvml_without_gpus
from src.models.classifier import ImageClassifier
from src.models.mlp import MLP

CONFIG = "configs/mnist_mlp.yaml"
HIDDEN = [64, 128, 64]  # the 784-64-128-64-10 MLP, in every pipeline
TRAIN, VAL = 55_000, 5_000
ADAM = {"lr": 1e-3, "fused": True}  # the configs' optimizer (fused), at a fixed lr: no schedule in any pipeline


class EpochTimer(Callback):
    """Must be the trainer's first callback, so its on_train_end runs before any other's (run-end work)."""

    def __init__(self):
        self.times = []

    def on_train_epoch_start(self, trainer, pl_module):
        self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        self.times.append(time.perf_counter() - self.start)


class TorchvisionMNIST(LightningDataModule):
    """The standard pipeline of today's templates: PIL image -> ToTensor -> Normalize per sample."""

    def __init__(self, data_dir: str, num_workers: int, batch_size: int):
        super().__init__()
        self.data_dir, self.num_workers, self.batch_size = data_dir, num_workers, batch_size
        self.tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])

    def setup(self, stage):
        full = datasets.MNIST(self.data_dir, train=True, transform=self.tf)
        self.train, self.val = random_split(full, [TRAIN, VAL], generator=torch.Generator().manual_seed(0))

    def train_dataloader(self):
        return DataLoader(
            self.train,
            batch_size=self.batch_size,
            shuffle=True,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self):
        return DataLoader(
            self.val, batch_size=1000, num_workers=self.num_workers, persistent_workers=self.num_workers > 0
        )


def config_batch_size() -> int:
    """The batch the MLP config trains with: T measures the default a user gets."""
    return yaml.safe_load(Path(CONFIG).read_text())["data"]["init_args"]["batch_size"]


def template_epoch(device: str, save_dir: str, batch: int) -> float:
    """T: the real CLI path (config, data module, ImageClassifier, callbacks, logger), one epoch."""
    adam = [a for k, v in ADAM.items() for a in (f"--model.init_args.optimizer.init_args.{k}", str(v).lower())]
    built = cli(
        [
            "--config",
            CONFIG,
            "--model.init_args.net.init_args.hidden",
            str(HIDDEN),
            "--data.init_args.batch_size",
            str(batch),
            "--model.init_args.scheduler",
            "null",
            "--model.init_args.label_smoothing",
            "0",
            *adam,  # R's loss
            "--trainer.max_epochs",
            "1",
            "--trainer.accelerator",
            device,
            "--trainer.enable_model_summary",
            "false",
            "--trainer.logger.init_args.save_dir",
            save_dir,
            "--trainer.num_sanity_val_steps",
            "0",
        ],
        run=False,
    )
    timer = EpochTimer()
    built.trainer.callbacks.insert(0, timer)
    built.trainer.fit(built.model, built.datamodule)
    return timer.times[0]


def standard_epoch(device: str, num_workers: int, batch: int) -> float:
    """S: the same LightningModule with torchvision's per-sample pipeline, default Trainer settings."""
    timer = EpochTimer()
    trainer = Trainer(
        max_epochs=1,
        accelerator=device,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
        callbacks=[timer],
    )
    trainer.fit(classifier(), TorchvisionMNIST(default_data_dir(), num_workers, batch))
    return timer.times[0]


def bench_net() -> MLP:
    return MLP(hidden=HIDDEN, batchnorm=True)


def classifier(cls: type = ImageClassifier) -> ImageClassifier:
    return cls(bench_net(), optimizer=partial(torch.optim.Adam, **ADAM))


class NoTrainMetrics(ImageClassifier):
    """L's module: the template's module minus its per-step training metrics (train/acc, train/loss_epoch)."""

    def update_metrics(self, stage, logits, y, loss):
        if stage != "train":
            super().update_metrics(stage, logits, y, loss)


def lightning_floor_epoch(device: str, batch: int) -> float:
    """L: the template's data module and net in Lightning's barebones Trainer, the cheapest loop it has."""
    timer = EpochTimer()
    trainer = Trainer(max_epochs=1, accelerator=device, barebones=True, num_sanity_val_steps=0, callbacks=[timer])
    trainer.fit(classifier(NoTrainMetrics), MNISTDataModule(batch_size=batch))
    return timer.times[0]


def preload(device: str):
    """R's data: the official train file as normalized float tensors on the device, split like the template."""
    ds = datasets.MNIST(default_data_dir(), train=True)
    x = ds.data.unsqueeze(1).float().div(255).sub(0.1307).div(0.3081).to(device)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    return (x[order[VAL:]], ds.targets[order[VAL:]].to(device)), (x[order[:VAL]], ds.targets[order[:VAL]].to(device))


def raw_epoch(device: str, data, batch: int) -> float:
    """R: permutation, index, forward, backward, Adam step; then the validation pass. Nothing else."""
    (xt, yt), (xv, yv) = data
    model = bench_net().to(device)
    opt = torch.optim.Adam(model.parameters(), **ADAM)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    model.train()
    perm = torch.randperm(len(xt), device=device)
    for i in range(0, len(xt), batch):
        idx = perm[i : i + batch]
        loss = F.cross_entropy(model(xt[idx]), yt[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        correct = sum((model(xv[i : i + 1000]).argmax(1) == yv[i : i + 1000]).sum() for i in range(0, len(xv), 1000))
    correct.item()
    sync()
    return time.perf_counter() - start


def summary(times: list[float]) -> dict:
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "samples_per_s": TRAIN / statistics.median(times),
        "runs": len(times),
    }


def time_to_accuracy(config: str, targets: list[float], device: str, save_dir: str) -> dict:
    """Wall time of `fit` (from the command's start) until the model at an epoch's end scores each target
    on the full test set; the test evaluations themselves are not counted."""
    argv = [
        "fit",
        "--config",
        config,
        "--trainer.accelerator",
        device,
        "--trainer.logger.init_args.save_dir",
        save_dir,
        "--trainer.callbacks+=scripts.tta.TestEveryEpoch",
        "--trainer.enable_progress_bar",
        "false",
    ]
    script = f"import sys; sys.argv[1:] = {argv!r};from src.cli import main; main()"
    start = time.time()
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env={**os.environ, "TTA_START": str(start)}
    )
    rows = [line.split()[1:] for line in proc.stdout.splitlines() if line.startswith("TTA ")]
    curve = [(float(t), float(a)) for t, a in rows]
    return {
        "config": config,
        "curve": curve,
        **{f">={t:.3f}": next((s for s, a in curve if a >= t), None) for t in targets},
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=None, help=f"every pipeline's batch (default: {CONFIG}'s)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--tta", action="store_true", help="also time fit until target test accuracies")
    parser.add_argument("--manual", action="store_true", help="also time the manual-backprop step")
    parser.add_argument("--cnn", action="store_true", help="also time SmallCNN's step per memory layout and precision")
    parser.add_argument(
        "--startup", action="store_true", help="also time the phases before the first step and after the last"
    )
    parser.add_argument("--workers", default="0,2", help="num_workers values for S")
    return parser.parse_args()


def epochs(args: argparse.Namespace, batch: int, save_dir: str) -> dict:
    """T, S (per num_workers), L and R, one epoch each per repetition: their times and ratios, printed."""
    workers = [int(w) for w in args.workers.split(",") if w != ""]
    data = preload(args.device)
    times = {"T": [], **{f"S{w}": [] for w in workers}, "L": [], "R": []}
    raw_epoch(args.device, data, batch)  # warm-up
    for rep in range(args.reps):
        times["T"].append(
            template_epoch(args.device, save_dir, batch)
        )  # T, L, R back to back: their ratios are the fine ones
        times["L"].append(lightning_floor_epoch(args.device, batch))
        times["R"].append(raw_epoch(args.device, data, batch))
        for w in workers:
            times[f"S{w}"].append(standard_epoch(args.device, w, batch))
        print(f"rep {rep}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()), flush=True)
    result = {k: summary(v) for k, v in times.items()}
    # Each ratio is taken within a repetition (its pipelines ran seconds apart), then the median over repetitions:
    # this VM switches between a fast and a slow state, and a ratio of medians could pair one with the other.
    pairs = [("T", "R"), *[(f"S{w}", "T") for w in workers], ("T", "L"), ("L", "R")]
    per_rep = {f"{a}/{b}": [x / y for x, y in zip(times[a], times[b])] for a, b in pairs}
    ratios = {k: statistics.median(v) for k, v in per_rep.items()}
    print(f"\n{'pipeline':<10}{'median s/epoch':>16}{'min-max':>16}{'samples/s':>12}")
    for k, v in result.items():
        print(f"{k:<10}{v['median_s']:>16.2f}{v['min_s']:>8.2f}-{v['max_s']:<7.2f}{v['samples_per_s']:>12,.0f}")
    print(
        "ratios (median over repetitions, min-max): "
        + ", ".join(f"{k} = {v:.2f} ({min(per_rep[k]):.2f}-{max(per_rep[k]):.2f})" for k, v in ratios.items())
    )
    return {"epochs": result, "ratios": ratios, "ratios_per_rep": per_rep}


def extras(args: argparse.Namespace, save_dir: str) -> dict:
    """What --manual, --cnn, --startup and --tta ask for, printed."""
    report, device = {}, ["--device", args.device]
    for flag, key, script, extra in (
        ("manual", "manual_step", "bench_manual_step", device),
        ("cnn", "cnn_step", "bench_cnn_step", device),
        ("startup", "startup", "bench_startup", []),
    ):
        if getattr(args, flag):
            out = subprocess.run(
                [sys.executable, f"scripts/{script}.py", *extra], capture_output=True, text=True
            ).stdout
            print(out)
            report[key] = out
    if args.tta:
        report["time_to_accuracy"] = [
            time_to_accuracy("configs/mnist_cnn.yaml", [0.99, 0.992], args.device, save_dir),
            time_to_accuracy(CONFIG, [0.98], args.device, save_dir),
        ]
        for row in report["time_to_accuracy"]:
            print(
                row["config"],
                {k: v for k, v in row.items() if k.startswith(">=")},
                "curve (s, test acc):",
                row["curve"],
            )
    return report


def main() -> None:
    args = parse_args()
    save_dir = tempfile.mkdtemp(prefix="benchmark_logs_")  # the runs' logs are not the point: removed at the end
    batch = args.batch_size or config_batch_size()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
        f"device {args.device}, batch {batch}"
    )
    skip_nvml_without_gpus()  # R stands for a process without Lightning, which never sets this variable
    report = {
        "device": args.device,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch_size": batch,
        **epochs(args, batch, save_dir),
    }
    report["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process: {report['peak_rss_mib']:.0f} MiB")
    report.update(extras(args, save_dir))
    report["provenance"] = provenance.collect(provenance.command(), MNISTDataModule(default_data_dir()).folder)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    shutil.rmtree(save_dir)


if __name__ == "__main__":
    main()
