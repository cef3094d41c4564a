"""The Optuna side of a sweep: the study, which trials still have to run, and the objective that runs them.

Grid: every (point, seed) pair is a trial of its own, enqueued with fixed parameters; before each run of the
command the pairs without a finished or running trial are enqueued (again), so a resumed sweep runs exactly what
is missing, and several workers or machines pop the queue (atomically, in the storage) without running a pair
twice. TPE / random: each trial draws a point and runs it for every seed in turn; its value is the mean.
"""

import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from src.errors import UsageError
from src.frameworks import journal_storage, quiet_optuna
from src.run.layout import Run
from src.sweep.devices import Devices, sharing, visible_gpus
from src.sweep.prune import make_pruner, pruned_at
from src.sweep.spec import point_name
from src.sweep.storage import HEARTBEAT
from src.sweep.trials import STOPPING, run_trial, target

STALE = 120  # default --stale-after: seconds without a heartbeat after which a running trial belongs to a dead sweep
POLL = 1.0  # seconds between looks at the storage while another command's trials run: a report waits at most this long


def open_study(sweep, storage, folder: Path) -> optuna.Study:
    quiet_optuna()
    sampler = {
        "grid": optuna.samplers.RandomSampler,
        "random": optuna.samplers.RandomSampler,
        "tpe": optuna.samplers.TPESampler,
    }[sweep.sampler](seed=0)
    study = optuna.create_study(
        study_name=sweep.name,
        storage=storage,
        load_if_exists=True,
        sampler=sampler,
        directions=[direction for _, direction in sweep.targets],
        pruner=make_pruner(sweep.pruner),
    )
    space = study.user_attrs.get("space")
    if space is None:
        study.set_user_attr("space", sweep.space())
    elif space != sweep.space():
        raise UsageError(
            f"a sweep named {sweep.name!r} with a different search space already exists in {folder}: "
            "copy the sweep file under a new name for a new sweep, or delete that folder to start over"
        )
    return study


def heartbeat(trial: optuna.Trial, done: threading.Event) -> None:
    """Journal storages only (Optuna has no heartbeat for them): mark the trial alive every HEARTBEAT seconds."""
    while not done.wait(HEARTBEAT):
        try:
            trial.set_user_attr("alive", time.time())
        except optuna.exceptions.UpdateFinishedTrialError:  # it has just finished: nothing left to mark
            return


def own_heartbeat(study: optuna.Study) -> bool:
    """Whether this study's storage lacks Optuna's heartbeat (a journal file): then ours runs."""
    return journal_storage(study)


def fail_stale(study: optuna.Study, stale_after: float) -> None:
    """Trials left running by a dead sweep are failed and queued again, once. Optuna does this on a database
    (RDBStorage's heartbeat, grace period and RetryFailedTrialCallback: src/sweep/__main__.py); on a journal file,
    which has no heartbeat in Optuna, our own thread's "alive" mark says the same, and the grid's enqueue_missing
    queues the pair again."""
    optuna.storages.fail_stale_trials(study)  # a database's: Optuna's heartbeat; nothing for a journal
    if not own_heartbeat(study):
        return
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        alive = t.user_attrs.get("alive", t.datetime_start.timestamp() if t.datetime_start else 0)
        if time.time() - alive > stale_after:
            study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)


def live_pairs(study: optuna.Study) -> dict[tuple, list[int]]:
    """Grid (point, seed) -> the numbers of its trials that are finished, waiting or running."""
    pairs: dict[tuple, list[int]] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.WAITING, TrialState.RUNNING)):
        pairs.setdefault((t.user_attrs.get("point"), t.user_attrs.get("seed")), []).append(t.number)
    return pairs


def enqueue_missing(study: optuna.Study, sweep) -> int:
    """Enqueue every grid (point, seed) that has no finished, waiting or running trial; -> how many are queued."""
    taken = live_pairs(study)
    for point in range(len(sweep.grid())):
        for seed in sweep.seeds:
            if (point, seed) not in taken:  # the pair also as user attributes: Optuna shows those on every trial
                study.enqueue_trial({"point": point, "seed": seed}, user_attrs={"point": point, "seed": seed})
    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def first_claim(trial: optuna.Trial, point: int, seed: int) -> bool:
    """Whether this trial is the lowest-numbered live (waiting, running or finished) trial of its grid pair. Two
    sweeps that start together can both enqueue the missing pairs; only the first trial of each pair then runs."""
    return min(live_pairs(trial.study).get((point, seed), [trial.number])) == trial.number


def suggest(trial: optuna.Trial, sweep) -> dict:
    """The point a TPE/random trial draws: lists as categorical choices (JSON text: Optuna keeps scalars only)."""
    values = {}
    for key, spec in sweep.params.items():
        if isinstance(spec, list):
            values[key] = json.loads(trial.suggest_categorical(key, [json.dumps(v) for v in spec]))
        elif all(isinstance(spec[k], int) for k in ("low", "high")) and isinstance(spec.get("step", 1), int):
            values[key] = trial.suggest_int(
                key, spec["low"], spec["high"], step=spec.get("step", 1), log=spec.get("log", False)
            )
        else:
            values[key] = trial.suggest_float(
                key, spec["low"], spec["high"], step=spec.get("step"), log=spec.get("log", False)
            )
    return values


def objective(sweep, folder: Path, threads: int, devices: Devices, storage_url: str):
    grid = sweep.grid()

    def run_one(trial: optuna.Trial) -> float | list[float]:
        if sweep.sampler == "grid":
            if "point" not in trial.user_attrs:  # not a queued pair: another worker took the last one first
                trial.study.stop()
                raise optuna.TrialPruned("no grid point left")
            point, seed = trial.suggest_int("point", 0, len(grid) - 1), trial.suggest_categorical("seed", sweep.seeds)
            if not first_claim(trial, point, seed):
                raise optuna.TrialPruned("another trial has this grid point and seed")
            pairs = [(grid[point], seed)]
        else:
            values = suggest(trial, sweep)
            pairs = [(values, seed) for seed in sweep.seeds]
        trial.set_user_attr("worker", worker())  # which sweep command ran it
        done = threading.Event()
        if own_heartbeat(trial.study):
            threading.Thread(target=heartbeat, args=(trial, done), daemon=True).start()
        # the first seed's fit reports to the pruner (one curve per trial); a pruned trial runs no further seeds
        report = (
            {
                "storage": storage_url,
                "study": sweep.name,
                "trial": trial.number,
                "metric": sweep.metric,
                "pruner": sweep.pruner,
            }
            if sweep.pruner
            else None
        )
        runs, pruned = [], None
        try:
            with devices.take() as device:
                for values, seed in pairs:
                    runs.append(run_trial(sweep, values, seed, folder, threads, device, report if not runs else None))
                    if report and runs[-1]["ok"] and (pruned := pruned_at(trial)) is not None:
                        break
        finally:
            done.set()
        trial.set_user_attr("values", pairs[0][0])
        trial.set_user_attr("runs", [{**r, "seed": seed} for r, (_, seed) in zip(runs, pairs)])
        failed = [r for r in runs if not r["ok"]]
        if failed:
            raise RuntimeError(f"trial {trial.number} failed: see {failed[0]['log']}")
        if pruned is not None:  # Optuna records it PRUNED with its last reported value
            raise optuna.TrialPruned(f"pruned at validation {pruned}")
        numbers = [Run(Path(r["run"])).numbers(sweep.metric) for r in runs]
        means = [sum(target(n, r, metric) for n, r in zip(numbers, runs)) / len(runs) for metric, _ in sweep.targets]
        return means[0] if len(means) == 1 else means  # a trade-off: one value per objective

    return run_one


def worker() -> str:
    """This sweep command, as its trials record it: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def failed_here(study: optuna.Study) -> list[str]:
    """The logs of the runs that failed in the trials this sweep command ran (its host and process id)."""
    return [
        r["log"]
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if t.user_attrs.get("worker") == worker()
        for r in t.user_attrs.get("runs", [])
        if not r["ok"]
    ]


def run(
    study: optuna.Study, sweep, folder: Path, workers: int, threads: int, stale_after: float, storage_url: str
) -> None:
    """The trials still missing; then, while another command's trials are running (or were, until it died), waits:
    each finishes, or goes stale after stale_after seconds and is failed and run here. The report that follows has
    every seed of every point, never a point silently short of one."""
    told = False
    while True:
        fail_stale(study, stale_after)
        _optimize(study, sweep, folder, workers, threads, storage_url)
        others = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))  # ours have all ended here
        if not others or STOPPING.is_set():
            return
        if not told:
            told = True
            print(
                f"waiting for {len(others)} trial(s) another sweep command is running; a trial whose command died is "
                f"failed and run here after {stale_after:g} s without its heartbeat (--stale-after)",
                file=sys.stderr,
            )
        time.sleep(POLL)


def progress(sweep):
    """An Optuna callback: a line on stderr as each trial of this command ends, with the trials done of the sweep's
    total and the best so far, so a long sweep is not silent until its table."""
    total = len(sweep.grid()) * len(sweep.seeds) if sweep.sampler == "grid" else sweep.trials
    metric, direction = sweep.targets[0]
    pick = max if direction == "maximize" else min

    def say(trial) -> str:
        seed = f", seed {trial.user_attrs['seed']}" if "seed" in trial.user_attrs else ""
        return f"{point_name(trial.user_attrs.get('values', {}))}{seed}"

    def report(study: optuna.Study, trial) -> None:
        if "runs" not in trial.user_attrs:  # a grid trial that found no pair of its own: nothing ran
            return
        done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))]
        counted = [t for t in done if "runs" in t.user_attrs]
        scored = [t for t in counted if t.state == TrialState.COMPLETE and t.values]
        line = (
            f"{sweep.name}: {len(counted)}/{total} trials done; trial {trial.number} ({say(trial)}) {trial.state.name}"
        )
        if trial.state == TrialState.COMPLETE and trial.values:
            line += f", {metric} {trial.values[0]:.4f}"
        if scored:
            best = pick(scored, key=lambda t: t.values[0])
            line += f"; best so far {best.values[0]:.4f} ({say(best)})"
        print(line, file=sys.stderr, flush=True)

    return report


def _optimize(study: optuna.Study, sweep, folder: Path, workers: int, threads: int, storage_url: str) -> None:
    """One optimize over what is missing: the grid's queue, or the TPE/random trials still short of sweep.trials."""
    callbacks, missing = [], None  # None: the grid runs until its queue is empty
    if sweep.sampler == "grid":
        if enqueue_missing(study, sweep) == 0:
            return
        callbacks.append(
            lambda s, t: s.stop() if not s.get_trials(deepcopy=False, states=(TrialState.WAITING,)) else None
        )
    else:
        done = (TrialState.COMPLETE, TrialState.PRUNED)  # a pruned trial counts: a resume does not redo it
        # this command runs at most the trials still missing, failed ones included (the next command runs those
        # again), so a trial that always fails cannot loop; the callback stops it early where other commands finish some
        missing = sweep.trials - len(study.get_trials(deepcopy=False, states=done))
        if missing <= 0:
            return
        callbacks.append(optuna.study.MaxTrialsCallback(sweep.trials, states=done))
    callbacks.append(progress(sweep))
    gpus = visible_gpus()
    if note := sharing(workers, gpus):
        print(note, file=sys.stderr)
    study.optimize(
        objective(sweep, folder, threads, Devices(workers, gpus), storage_url),
        n_trials=missing,
        n_jobs=workers,
        callbacks=callbacks,
        catch=(RuntimeError,),
    )
