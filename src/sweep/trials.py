"""One trial: `fit` then `test --ckpt_path best` (or last: the file's test_ckpt) of one point and seed, in a process
of its own (a crash, NaN or out-of-memory fails the trial, not the sweep; forked, so that it starts without the
imports: src/forked.py), numbers read back from the run's metrics.json (src/run/layout.py), whatever the logger."""

import json
import multiprocessing.process
import os
import shutil
import sys
import threading
import time
from pathlib import Path

from src import forked
from src.run.layout import Run, safe_name
from src.sweep.spec import point_name

LIVE: set[multiprocessing.process.BaseProcess] = (
    set()
)  # the trial processes running now: ended when the sweep is stopped
STOPPING = threading.Event()  # the sweep is being stopped: no trial starts, trials cut short leave no run behind
_LOCK = threading.Lock()


def as_arg(value) -> str:
    """A value as the CLI reads it: lists, dicts and None (null) as JSON, the rest as text."""
    return json.dumps(value) if isinstance(value, (list, dict)) or value is None else str(value)


def trial_name(values: dict, seed: int) -> str:
    """hidden=[64]_lr=0.01_seed=1: each key's label and its value, safe as a folder name."""
    return safe_name(f"{point_name(values, '_')}_seed={seed}")


def fit_args(sweep, values: dict, seed: int) -> list[str]:
    """The arguments after `fit` (or `test`) shared by a trial's two commands: config files first, so that the
    fixed overrides and the point's keys win over what they set."""
    configs, keys = sweep.settings(values)
    return [
        *(arg for config in configs for arg in ("--config", config)),
        *(arg for key, value in {**sweep.overrides, **keys}.items() for arg in (f"--{key}", as_arg(value))),
        "--seed_everything",
        str(seed),
        "--data.init_args.seed",
        str(seed),
    ]


def _run(commands: list[list[str]], env: dict, log: Path, report: dict | None = None) -> int:
    """The CLI commands one after the other in one new process (python -m src.sweep.trials, forked: src/forked.py):
    one start-up, not two; the first (the fit) reports to the pruner where report says. -> its exit code."""
    proc = forked.start("src.sweep.trials", [json.dumps({"commands": commands, "report": report})], env, str(log))
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


def trial_env(threads: int, device: str | None) -> dict[str, str]:
    """A trial's environment: its share of the CPU threads, and its GPU alone where it has one
    (src/sweep/devices.py)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    return {**env, "CUDA_VISIBLE_DEVICES": device} if device is not None else env


def run_trial(
    sweep, values: dict, seed: int, save_dir: Path, threads: int, device: str | None = None, report: dict | None = None
) -> dict:
    """-> {"run": the run folder, "ok": both commands succeeded, "wall": seconds, "log": the commands' output}.
    report: where the fit reports to the pruner (src/sweep/prune.py), or None."""
    name = trial_name(values, seed)
    # The run's folder is claimed here, before the fit starts (an exclusive mkdir, src/run/layout.py): two workers
    # running the same point and seed at once (a random sampler drawing it twice) get two folders and two logs.
    run = Run.claim(save_dir / name)
    logger = [
        "--trainer.logger.init_args.save_dir",
        str(save_dir),
        "--trainer.logger.init_args.name",
        name,
        "--trainer.enable_progress_bar",
        "false",
    ]
    env = trial_env(threads, device)
    # The log lies beside the run, not in it: a fit that fails before its first step removes its run folder, and the
    # log says why.
    log = run.trial_log
    start = time.time()
    args = [*fit_args(sweep, values, seed), *logger]
    try:
        commands = [
            ["fit", *args, "--trainer.logger.init_args.version", run.name],
            ["test", *args, "--ckpt_path", f"{run.name}:{sweep.test_ckpt}"],
        ]  # this run's, not the newest
        ok = _run(commands, env, log, report) == 0
    except BaseException:
        ok = False
        STOPPING.set()
    if not ok and STOPPING.is_set():  # an attempt cut short by stopping the sweep: it is run again on resume
        shutil.rmtree(run.folder, ignore_errors=True)
        raise KeyboardInterrupt
    made = run.folder.is_dir()
    return {
        "run": str(run.folder) if made else "",
        "ok": ok and made,
        "wall": time.time() - start,
        "start": start,
        "end": time.time(),
        "log": str(log),
        "device": device,
    }


def target(numbers: dict, run: dict, metric: str) -> float:
    """One objective's value for a finished run: its parameter count, its trial's wall time, or a logged metric's
    value at the last validation (Run.numbers' output, run_trial's)."""
    if metric == "num_params":
        return numbers["num_params"]
    if metric == "wall_s":
        return run["wall"]
    return numbers["last"].get(metric, float("nan"))


if __name__ == "__main__":  # a trial's process: fit, then test the best checkpoint (see _run)
    import gc

    from src.cli import main

    spec = json.loads(sys.argv[1])
    if spec["report"]:
        from src.sweep.prune import reporter
        from src.sweep.storage import open_storage

        report = spec["report"]
        storage = open_storage(report["storage"], Path("."))  # the sweep's own, resolved to a URL
        callbacks = [reporter(storage, report["study"], report["trial"], report["metric"], report["pruner"])]
    for i, command in enumerate(spec["commands"]):
        main(command, callbacks=callbacks if spec["report"] and i == 0 else None)
    gc.freeze()  # exit without a last collection over every object, as src.cli does
