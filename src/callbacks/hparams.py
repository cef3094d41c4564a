"""The hyperparameters that say what a run trained, and hp_metric = best val/acc, for every logger (TensorBoard
shows them in its HParams tab)."""

import inspect
import os

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger

from src.config_checks import import_class

METRIC = "val/acc_best"
DATA_KEYS = (
    "batch_size",
    "val_size",
    "normalize",
    "augment",
    "crop_pad",
    "seed",
    "val_on_test",
)  # data settings that change results
ALWAYS = ("hidden", "channels", "activation", "batch_size")  # shown even at their defaults: what tells runs apart
# Trainer settings that change what a run trains, with Lightning's defaults; max_epochs is always shown.
TRAINER_DEFAULTS = {
    "precision": "32-true",
    "accumulate_grad_batches": 1,
    "limit_train_batches": 1.0,
    "gradient_clip_val": None,
}


def _defaults(class_path: str) -> dict:
    cls = import_class(class_path)
    try:
        signature = inspect.signature(cls)
    except (ValueError, TypeError):  # None (not importable), or a builtin without a signature
        return {}
    return {k: _plain(p.default) for k, p in signature.parameters.items() if p.default is not inspect.Parameter.empty}


def _plain(value):
    """Tuples as lists: a config says [0.9, 0.999] where a signature says (0.9, 0.999)."""
    return list(value) if isinstance(value, tuple) else value


def table(model_hparams: dict, data=None, trainer=None) -> dict:
    """{'net': {class_path, init_args}, 'optimizer': {...}, ...} -> {'net': 'MLP', 'net/hidden': [256, 128],
    'optimizer': 'Adam', 'optimizer/lr': 0.005, 'data/batch_size': 64, 'trainer/max_epochs': 12, 'seed': 0, ...}.
    Arguments appear only where they differ from their class's defaults (TensorBoard shows the first columns
    first, so defaults would push what a run changed, and hp_metric after them, off screen), except what tells
    runs apart even at its default (ALWAYS, max_epochs, the seed); Lightning's own keys (`_...`) are left out."""
    rows = {}
    for key, value in model_hparams.items():
        if key.startswith("_"):
            continue
        if isinstance(value, dict) and "class_path" in value:
            rows[key] = value["class_path"].rpartition(".")[2]
            defaults = _defaults(value["class_path"])
            for arg, v in (value.get("init_args") or {}).items():
                if arg in ALWAYS or arg not in defaults or defaults[arg] != _plain(v):
                    rows[f"{key}/{arg}"] = v
        else:
            rows[key] = value
    data_defaults = _defaults(f"{type(data).__module__}.{type(data).__qualname__}") if data is not None else {}
    for key in DATA_KEYS if data is not None else ():
        if hasattr(data, key) and (key in ALWAYS or data_defaults.get(key, None) != getattr(data, key)):
            rows[f"data/{key}"] = getattr(data, key)
    if trainer is not None:
        rows["trainer/max_epochs"] = trainer.max_epochs
        for key, default in TRAINER_DEFAULTS.items():
            if getattr(trainer, key, default) != default:
                rows[f"trainer/{key}"] = getattr(trainer, key)
    if os.environ.get("PL_GLOBAL_SEED") is not None:  # set by seed_everything (the configs' seed_everything: 0)
        rows["seed"] = int(os.environ["PL_GLOBAL_SEED"])
    return rows


class HParamsSummary(Callback):
    """Writes the run's hyperparameters (see `table`, plus `num_params`) with `hp_metric` = best `val/acc`.

    Lightning's default writes hp_metric = -1 at start, a placeholder that stays in the scalar curve; with
    the logger's `default_hp_metric: false` this callback writes the HParams entry after the first real
    validation instead, and updates `hp_metric` after every later one.
    """

    def __init__(self):
        self._written = False

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._written = False

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        best = trainer.callback_metrics.get(METRIC)
        if trainer.sanity_checking or best is None:
            return
        best = float(best)
        for logger in trainer.loggers:
            if self._written:
                logger.log_metrics({"hp_metric": best}, step=trainer.global_step)
            elif isinstance(logger, TensorBoardLogger):  # its HParams tab pairs the table with a metric
                logger.log_hyperparams(self.params(pl_module, trainer), metrics={"hp_metric": best})
            else:
                logger.log_hyperparams(self.params(pl_module, trainer))
                logger.log_metrics({"hp_metric": best}, step=trainer.global_step)
        self._written = True

    @staticmethod
    def params(pl_module: LightningModule, trainer: Trainer) -> dict:
        # ImageClassifier keeps eval_flip out of its hparams (an evaluation may set it), so it is read off the module.
        scoring = {"eval_flip": pl_module.eval_flip} if hasattr(pl_module, "eval_flip") else {}
        return {
            **table(dict(pl_module.hparams), trainer.datamodule, trainer),
            **scoring,
            "num_params": sum(p.numel() for p in pl_module.parameters()),
        }
