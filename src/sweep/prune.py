"""Pruning: a trial's fit reports the sweep's metric at every validation to its Optuna trial, and stops when the
study's pruner (median, successive halving, hyperband, threshold: the sweep file's `pruner`) says the trial is hopeless.

Why not optuna-integration's PyTorchLightningPruningCallback: it takes a live optuna.Trial, which exists in the
sweep's process, not in the trial's own (src/sweep/trials.py), and it raises TrialPruned inside Lightning's loop, so
the fit would end as a crash: no final metrics.json, no test of the best checkpoint. Here the trial's process opens
the study from its storage, stops the fit through `trainer.should_stop` (a pruned run ends like an early-stopped
one: checkpoints, metrics.json, its test) and marks the trial `pruned_at`; the sweep then records it PRUNED, with its
last reported value (Optuna's rule) and its run kept.
"""

import optuna
from lightning.pytorch import Callback, LightningModule, Trainer

from src.frameworks import quiet_optuna, trial_of

PRUNERS = {
    "median": optuna.pruners.MedianPruner,
    "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    "hyperband": optuna.pruners.HyperbandPruner,
    "threshold": optuna.pruners.ThresholdPruner,
}  # e.g. {name: threshold, lower: 0.2}: stop what is at chance


def make_pruner(spec: dict | None) -> optuna.pruners.BasePruner:
    """The sweep file's `pruner: {name: median, n_warmup_steps: 2, ...}` (its other keys: the pruner's arguments,
    steps counted in validations); none: never prune."""
    if not spec:
        return optuna.pruners.NopPruner()
    args = {k: v for k, v in spec.items() if k != "name"}
    return PRUNERS[spec["name"]](**args)


class ReportToTrial(Callback):
    """Added by the trial's process to its fit (src.cli.main's callbacks): step k is the k-th validation of the fit."""

    def __init__(self, trial: optuna.Trial, metric: str):
        self.trial, self.metric, self.validations = trial, metric, 0

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        value = trainer.callback_metrics.get(self.metric)
        if trainer.sanity_checking or value is None or not trainer.is_global_zero:
            return
        self.trial.report(float(value), step=self.validations)
        if self.trial.should_prune():
            self.trial.set_user_attr("pruned_at", self.validations)
            trainer.should_stop = True
        self.validations += 1


def reporter(storage, study_name: str, trial_number: int, metric: str, pruner: dict) -> ReportToTrial:
    """The trial's process's handle on its Optuna trial, opened from the sweep's storage (the pruner is not stored
    there: it comes with the trial)."""
    quiet_optuna()
    study = optuna.load_study(study_name=study_name, storage=storage, pruner=make_pruner(pruner))
    return ReportToTrial(trial_of(study, trial_number), metric)


def pruned_at(trial: optuna.Trial) -> int | None:
    """Where the trial's process stopped its fit (the validation index), read back from the storage."""
    frozen = next(t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)
    return frozen.user_attrs.get("pruned_at")
