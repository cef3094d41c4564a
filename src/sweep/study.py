"""The Optuna side of a sweep: the study, which trials still have to run, and the objective that runs them.

Grid: every (point, seed) pair is a trial of its own, enqueued with fixed parameters; before each run of the
command the pairs without a finished or running trial are enqueued (again), so a resumed sweep runs exactly what
is missing, and several workers or machines pop the queue (atomically, in the storage) without running a pair
twice. TPE / random: each trial draws a point and runs it for every seed in turn; its value is the mean.
"""

import json
import os
import socket
import threading
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from src.errors import UsageError
from src.sweep.trials import run_numbers, run_trial

STALE = 120  # seconds without a heartbeat after which a running trial is taken to belong to a dead sweep
optuna.logging.set_verbosity(optuna.logging.WARNING)


def open_study(sweep, storage, folder: Path) -> optuna.Study:
    sampler = {"grid": optuna.samplers.RandomSampler, "random": optuna.samplers.RandomSampler,
               "tpe": optuna.samplers.TPESampler}[sweep.sampler](seed=0)
    study = optuna.create_study(study_name=sweep.name, storage=storage, load_if_exists=True, sampler=sampler,
                                direction=sweep.direction)
    space = study.user_attrs.get("space")
    if space is None:
        study.set_user_attr("space", sweep.space())
    elif space != sweep.space():
        raise UsageError(f"a sweep named {sweep.name!r} with a different search space already exists in {folder}: "
                         "copy the sweep file under a new name for a new sweep, or delete that folder to start over")
    return study


def heartbeat(trial: optuna.Trial, done: threading.Event) -> None:
    """Mark the trial alive every 30 s while it runs, so that other sweeps can tell it from a dead one's."""
    while not done.wait(30):
        try:
            trial.set_user_attr("alive", time.time())
        except optuna.exceptions.UpdateFinishedTrialError:  # it has just finished: nothing left to mark
            return


def fail_stale(study: optuna.Study) -> None:
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        alive = t.user_attrs.get("alive", t.datetime_start.timestamp() if t.datetime_start else 0)
        if time.time() - alive > STALE:
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
            values[key] = trial.suggest_int(key, spec["low"], spec["high"], step=spec.get("step", 1), log=spec.get("log", False))
        else:
            values[key] = trial.suggest_float(key, spec["low"], spec["high"], step=spec.get("step"), log=spec.get("log", False))
    return values


def objective(sweep, folder: Path, threads: int):
    grid = sweep.grid()

    def run_one(trial: optuna.Trial) -> float:
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
        threading.Thread(target=heartbeat, args=(trial, done), daemon=True).start()
        try:
            runs = [run_trial(sweep, values, seed, folder, threads) for values, seed in pairs]
        finally:
            done.set()
        trial.set_user_attr("values", pairs[0][0])
        trial.set_user_attr("runs", [{**r, "seed": seed} for r, (_, seed) in zip(runs, pairs)])
        failed = [r for r in runs if not r["ok"]]
        if failed:
            raise RuntimeError(f"trial {trial.number} failed: see {failed[0]['log']}")
        scores = [run_numbers(Path(r["run"]), sweep.metric)["objective"] for r in runs]
        return sum(scores) / len(scores)

    return run_one


def worker() -> str:
    """This sweep command, as its trials record it: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def failed_here(study: optuna.Study) -> list[str]:
    """The logs of the runs that failed in the trials this sweep command ran (its host and process id)."""
    return [r["log"] for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
            if t.user_attrs.get("worker") == worker() for r in t.user_attrs.get("runs", []) if not r["ok"]]


def run(study: optuna.Study, sweep, folder: Path, workers: int, threads: int) -> None:
    fail_stale(study)
    callbacks = []
    if sweep.sampler == "grid":
        if enqueue_missing(study, sweep) == 0:
            return
        callbacks.append(lambda s, t: s.stop() if not s.get_trials(deepcopy=False, states=(TrialState.WAITING,)) else None)
    else:
        finished = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        if finished >= sweep.trials:
            return
        callbacks.append(optuna.study.MaxTrialsCallback(sweep.trials, states=(TrialState.COMPLETE,)))
    study.optimize(objective(sweep, folder, threads), n_jobs=workers, callbacks=callbacks, catch=(RuntimeError,))
