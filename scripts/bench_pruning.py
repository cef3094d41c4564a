"""Pruning, measured: the same 12-trial TPE search over mnist_mlp's learning rate, run without and with a median
pruner in one run of this script, on real MNIST (DATA_DIR). Prints and saves each sweep's pruned trials, total
training time (the fits' own wall_s from each run's metrics.json) and total trial time (fit + test, start-up
included), its best validation accuracy, and that running the pruned sweep again trains nothing.

    python scripts/bench_pruning.py --json scripts/results/pruning_cpu.json
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

from src import provenance
from src.run.layout import Run

ROOT = Path(__file__).resolve().parent.parent
# The search: one-cycle's max lr over four decades (above ~0.1 Adam diverges or stalls: pruning's prey), 6 epochs,
# one seed; the pruner looks from the 4th trial on (n_startup_trials) and from the 2nd validation (n_warmup_steps).
SWEEP = """base: configs/mnist_mlp.yaml
overrides: {trainer.max_epochs: 6}
params:
  model.init_args.scheduler.init_args.max_lr: {low: 1.0e-4, high: 1.0, log: true}
seeds: [0]
sampler: tpe
trials: 12
"""
PRUNER = "pruner: {name: median, n_startup_trials: 3, n_warmup_steps: 1}\n"


def run_sweep(folder: Path, name: str, text: str) -> float:
    (folder / f"{name}.yaml").write_text(text)
    start = time.time()
    subprocess.run(
        [sys.executable, "-m", "src.sweep", str(folder / f"{name}.yaml"), "--save-dir", str(folder / "logs")],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return time.time() - start


def summary(folder: Path, name: str, wall: float) -> dict:
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{folder / 'logs' / name / 'optuna.db'}")
    trials = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    runs = [Run(Path(r["run"])) for t in trials for r in t.user_attrs["runs"]]
    return {
        "trials": len(trials),
        "pruned": sum(t.state.name == "PRUNED" for t in trials),
        "fit_s": sum(r.metrics()["wall_s"] for r in runs),
        "trial_s": sum(r["wall"] for t in trials for r in t.user_attrs["runs"]),
        "epochs": sum(r.metrics()["epochs"] for r in runs),
        "sweep_wall_s": wall,
        "best_val_acc_best": max(t.value for t in trials if t.state.name == "COMPLETE"),
        "runs": sorted(str(r.folder) for r in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench_pruning_"))
    report = {}
    for name, text in (("unpruned", SWEEP), ("pruned", SWEEP + PRUNER)):
        report[name] = summary(folder, name, run_sweep(folder, name, text))
        print(
            f"{name:>9}: {report[name]['trials']} trials, {report[name]['pruned']} pruned, {report[name]['epochs']} "
            f"epochs, fits {report[name]['fit_s']:.0f} s, trials {report[name]['trial_s']:.0f} s, best val/acc_best "
            f"{report[name]['best_val_acc_best']:.4f}"
        )
    again = run_sweep(folder, "pruned", SWEEP + PRUNER)
    report["rerun"] = {
        "wall_s": again,
        "new_runs": len(set(summary(folder, "pruned", again)["runs"]) - set(report["pruned"]["runs"])),
    }
    u, p = report["unpruned"], report["pruned"]
    report["ratios"] = {
        "fit_s pruned/unpruned": p["fit_s"] / u["fit_s"],
        "trial_s pruned/unpruned": p["trial_s"] / u["trial_s"],
        "best difference": p["best_val_acc_best"] - u["best_val_acc_best"],
    }
    print(
        f"pruned/unpruned training time {report['ratios']['fit_s pruned/unpruned']:.2f}, trial time "
        f"{report['ratios']['trial_s pruned/unpruned']:.2f}; "
        f"best val/acc_best {100 * report['ratios']['best difference']:+.2f} %; "
        f"rerun: {report['rerun']['new_runs']} new runs in {again:.1f} s"
    )
    report["provenance"] = provenance.collect(provenance.command())
    for name in ("unpruned", "pruned"):
        report[name].pop("runs")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
