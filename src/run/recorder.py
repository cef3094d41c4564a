"""A run's numbers, from what every LightningModule and logger share: RunRecorder writes them into the run's
metrics.json (its schema is src/run/layout.py's), HParamsSummary hands the hyperparameters that say what a run
trained, and hp_metric = best val/acc, to every logger (TensorBoard shows them in its HParams tab)."""

import inspect
import os
import time
from pathlib import Path

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.trainer.states import TrainerFn

from src import provenance
from src.errors import UsageError, import_class
from src.run.layout import Run


def scalars(metrics: dict) -> dict[str, float]:
    """The scalar entries of trainer.callback_metrics as floats."""
    return {k: float(v) for k, v in metrics.items() if not isinstance(v, torch.Tensor) or v.numel() == 1}


def data_folder(datamodule) -> Path | None:
    """Where a data module's files are (the built-in ones' `folder`), if it says: an extra, discovered."""
    try:
        folder = getattr(datamodule, "folder", None)
    except NotImplementedError:
        return None
    return Path(folder) if isinstance(folder, (str, Path)) else None


class MonitorCheck(Callback):
    """A callback's `monitor` (EarlyStopping's, ModelCheckpoint's) that names nothing the model logs is refused in
    one line listing what it does log, at the end of the first validation: the sanity check's, before any training,
    where there is one. Whatever a module logs can be monitored, with no list to register it in. A train/ monitor is
    left to the callback itself: training metrics exist only once training has logged them."""

    def __init__(self):
        self.checked = False

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.checked or trainer.state.fn != TrainerFn.FITTING:
            return
        self.checked, logged = True, sorted(trainer.callback_metrics)
        for callback in trainer.callbacks:
            monitor = getattr(callback, "monitor", None)
            if isinstance(monitor, str) and not monitor.startswith("train") and monitor not in logged:
                raise UsageError(
                    f"{type(callback).__name__} monitors {monitor!r}, which is never logged; "
                    f"choose one of {', '.join(logged)}"
                )


class RunRecorder(Callback):
    def __init__(
        self, run: Run, evaluation: str | None = None, checkpoint: str | None = None, args: list[str] | None = None
    ):  # args: the command's, after `python -m src.cli` (None: sys.argv's)
        self.run, self.evaluation, self.checkpoint = run, evaluation, checkpoint  # evaluation: e.g. "test_0"
        self.args = args
        self.record: dict = {}
        self.provenance: dict | None = None
        self.started, self.start_step = time.monotonic(), 0

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if trainer.is_global_zero:  # seed: what seed_everything set (Lightning's documented variable)
            device = trainer.strategy.root_device
            seed = os.environ.get("PL_GLOBAL_SEED")
            self.provenance = provenance.collect(
                provenance.command("src.cli", self.args),
                data_folder(trainer.datamodule),
                None if seed is None else int(seed),
                torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            )

    # --- fit -------------------------------------------------------------------------------------------------------
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """A resumed run keeps its history up to the checkpoint's step (later entries are trained again); the step is
        restored by now."""
        old = self.run.metrics() if trainer.ckpt_path else {}
        step = trainer.global_step
        earlier = [*old.get("earlier_provenance", []), old["provenance"]] if old.get("provenance") else []
        self.record = {
            "status": "running",
            "num_params": sum(p.numel() for p in pl_module.parameters()),
            "provenance": self.provenance,
            **({"earlier_provenance": earlier} if earlier else {}),
            "wall_s": old.get("wall_s", 0.0),
            "best": old.get("best"),
            "last": old.get("last", {}),
            **{
                key: [r for r in old.get(key, []) if r["step"] <= step]
                for key in ("validations", "epoch_ends", "train_steps")
            },
        }
        self.started, self.start_step = time.monotonic(), step

    def on_train_batch_end(self, trainer: Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        every = trainer.log_every_n_steps or 0
        if loss is not None and every and trainer.global_step % every == 0:  # one host read per `every` steps
            self.record["train_steps"].append({"step": trainer.global_step, "train/loss": float(loss)})

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == TrainerFn.VALIDATING:
            return self._evaluated(trainer, "validate")
        if trainer.sanity_checking:
            return
        values = {k: v for k, v in scalars(trainer.callback_metrics).items() if k.startswith("val/")}
        self.record["validations"].append({"epoch": trainer.current_epoch, "step": trainer.global_step, **values})
        self.record["last"] = scalars(trainer.callback_metrics)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._epoch_end(trainer)  # the previous epoch's: its train/ values are logged after the callbacks' epoch end

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict) -> None:
        if trainer.state.fn == TrainerFn.FITTING and self.record:
            self._write(trainer, "running")

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._epoch_end(trainer)
        self._write(trainer, "finished")

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        """A fit that trained is recorded as it stopped; one that did not (a refused resume) leaves the file alone."""
        if trainer.state.fn == TrainerFn.FITTING and self.record and trainer.global_step > self.start_step:
            self._write(trainer, "interrupted" if isinstance(exception, KeyboardInterrupt) else "failed")

    def _epoch_end(self, trainer: Trainer) -> None:
        ends = self.record.get("epoch_ends")
        if ends is None or trainer.global_step == 0 or (ends and ends[-1]["step"] == trainer.global_step):
            return
        ends.append({"epoch": len(ends), "step": trainer.global_step, **scalars(trainer.callback_metrics)})
        self._write(trainer, "running")

    def _write(self, trainer: Trainer, status: str) -> None:
        """metrics.json now (rank 0): the checkpoint callback's best as it stands, and the totals so far."""
        callback = trainer.checkpoint_callback
        if callback is not None and callback.best_model_path:
            score = callback.best_model_score
            best = self.record.get("best") or {}
            if Path(best.get("path", "")).name != Path(callback.best_model_path).name:  # a new best: remember when
                best = {"epoch": trainer.current_epoch, "step": trainer.global_step}
            self.record["best"] = {
                **best,
                "path": self.run.in_run(callback.best_model_path),
                "monitor": callback.monitor,
                "score": None if score is None else float(score),
            }
        now = time.monotonic()
        self.record.update(
            status=status,
            epochs=len(self.record["epoch_ends"]),
            steps=trainer.global_step,
            wall_s=round(self.record["wall_s"] + now - self.started, 3),
        )
        self.started = now
        if trainer.is_global_zero:
            self.run.write_metrics(self.record)

    # --- evaluations -----------------------------------------------------------------------------------------------
    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._evaluated(trainer, "test")

    def _evaluated(self, trainer: Trainer, stage: str) -> None:
        if trainer.is_global_zero and self.evaluation is not None:
            self.run.write_metrics(
                {
                    "stage": stage,
                    "checkpoint": self.checkpoint,
                    "metrics": scalars(trainer.callback_metrics),
                    "provenance": self.provenance,
                },
                self.evaluation,
            )


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
