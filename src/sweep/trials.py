"""One trial: `fit` then `test --ckpt_path best` (or last: the file's test_ckpt) of one point and seed, in a process
of its own (a crash, NaN or out-of-memory fails the trial, not the sweep; forked, so that it starts without the
imports: src/forked.py), numbers read back from the run's event files."""

import json
import multiprocessing.process
import os
import re
import shutil
import sys
import threading
import time
from pathlib import Path

from src import forked
from src.runs import next_version, read_scalars
from src.sweep.spec import point_name

LIVE: set[multiprocessing.process.BaseProcess] = set()  # the trial processes running now: ended when the sweep is stopped
STOPPING = threading.Event()  # the sweep is being stopped: no trial starts, trials cut short leave no run behind
_LOCK = threading.Lock()


def as_arg(value) -> str:
    """A value as the CLI reads it: lists, dicts and None (null) as JSON, the rest as text."""
    return json.dumps(value) if isinstance(value, (list, dict)) or value is None else str(value)


def trial_name(values: dict, seed: int) -> str:
    """hidden=[64]_lr=0.01_seed=1: each key's label and its value, safe as a folder name."""
    name = f"{point_name(values, '_')}_seed={seed}"
    return re.sub(r"[^A-Za-z0-9.,=+\-\[\]_]", "", name.replace("/", "-"))


def fit_args(sweep, values: dict, seed: int) -> list[str]:
    """The arguments after `fit` (or `test`) shared by a trial's two commands: config files first, so that the
    fixed overrides and the point's keys win over what they set."""
    configs, keys = sweep.settings(values)
    return [*(arg for config in configs for arg in ("--config", config)),
            *(arg for key, value in {**sweep.overrides, **keys}.items() for arg in (f"--{key}", as_arg(value))),
            "--seed_everything", str(seed), "--data.init_args.seed", str(seed)]


def _run(commands: list[list[str]], env: dict, log: Path) -> int:
    """The CLI commands one after the other in one new process (python -m src.sweep.trials, forked: src/forked.py):
    one start-up, not two. -> its exit code."""
    proc = forked.start("src.sweep.trials", [json.dumps(commands)], env, str(log))
    try:
        with _LOCK:
            LIVE.add(proc)
        if STOPPING.is_set():  # e.g. a stop signal that came while no trial ran (stop_on_signals in __main__.py)
            raise KeyboardInterrupt
        proc.join()
        return proc.exitcode
    except BaseException:  # the sweep is being stopped (Ctrl-C, SIGTERM): the trial's process goes with it
        proc.terminate()
        proc.join()
        raise
    finally:
        with _LOCK:
            LIVE.discard(proc)


def run_trial(sweep, values: dict, seed: int, save_dir: Path, threads: int) -> dict:
    """-> {"run": the run folder, "ok": both commands succeeded, "wall": seconds, "log": the commands' output}."""
    name = trial_name(values, seed)
    logger = ["--trainer.logger.init_args.save_dir", str(save_dir), "--trainer.logger.init_args.name", name,
              "--trainer.enable_progress_bar", "false"]
    version = ["--trainer.logger.init_args.version", f"version_{next_version(save_dir / name)}"]  # the name says the rest
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    (save_dir / name).mkdir(parents=True, exist_ok=True)
    log = save_dir / name / "trial.log"
    start = time.time()
    before = set((save_dir / name).glob("version_*"))
    args = [*fit_args(sweep, values, seed), *logger]
    try:
        ok = _run([["fit", *args, *version], ["test", *args, "--ckpt_path", sweep.test_ckpt]], env, log) == 0
    except BaseException:
        ok = False
        STOPPING.set()
    runs = sorted(set((save_dir / name).glob("version_*")) - before, key=lambda p: p.stat().st_mtime)
    if not ok and STOPPING.is_set():  # an attempt cut short by stopping the sweep: it is run again on resume
        for run in runs:
            shutil.rmtree(run, ignore_errors=True)
        raise KeyboardInterrupt
    return {"run": str(runs[-1]) if runs else "", "ok": ok and bool(runs), "wall": time.time() - start, "start": start,
            "end": time.time(), "log": str(log)}


def run_numbers(run: Path, metric: str) -> dict:
    """The numbers a report needs from one finished run's event files (curves as [(step, value)]; the per-epoch ones
    train/acc, train/loss_epoch, val/acc and val/loss as logged, one point per epoch or validation)."""
    fit = read_scalars(run)
    tests = sorted(run.glob("test_*"))
    test = read_scalars(tests[-1]) if tests else {}
    return {"objective": fit[metric][-1][1] if metric in fit else float("nan"),
            "val_acc_best": max((v for _, v in fit.get("val/acc", [])), default=float("nan")),
            "test_acc": test["test/acc"][-1][1] if "test/acc" in test else float("nan"),
            "epochs": len(fit.get("val/acc", [])),  # validation runs once per epoch
            "num_params": int(fit["num_params"][0][1]) if "num_params" in fit else 0,
            "val_curve": fit.get("val/acc", []), "loss_curve": fit.get("train/loss", []),
            "epoch_curves": {tag: fit.get(tag, []) for tag in ("train/acc", "train/loss_epoch", "val/acc", "val/loss")},
            "grad_norms": {k.removeprefix("grad_norm/"): [v for _, v in c] for k, c in fit.items() if k.startswith("grad_norm/")}}


if __name__ == "__main__":  # a trial's process: fit, then test the best checkpoint (see _run)
    import gc

    from src.cli import main

    for command in json.loads(sys.argv[1]):
        main(command)
    gc.freeze()  # exit without a last collection over every object, as src.cli does
