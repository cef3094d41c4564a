"""Where a command logs and which checkpoint it reads: the CLI's side of a Run (src/run/layout.py), decided once after
parsing and written into the config before anything is built.

    fit                      -> a new <save_dir>/<config name>/version_N[_overrides], or, from a checkpoint of one of
                                the config's runs, that run again (resumed in place, config_resume_K.yaml)
    validate | test | predict -> <run>/test_K (validate_K, predict_K) of the checkpoint's run; a checkpoint outside
                                any run, or none at all, gets a new version_N to hold its evaluation

The logger is pointed there where it takes a folder (TensorBoardLogger, CSVLogger and their subclasses: save_dir /
name / version); any other logger is left as configured, and the run's folder still holds config.yaml,
checkpoints/ and metrics.json.
"""

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from jsonargparse import ArgumentError, Namespace
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.callbacks.progress import ProgressBar as ProgressBarBase
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from src.errors import UsageError, import_class
from src.frameworks import HPARAMS_CLASS_PATH
from src.run.layout import EVALUATIONS, NOT_NAMED, Run, Runs, load_checkpoint, next_name, run_suffix
from src.run.recorder import MonitorCheck, RunRecorder


def _is(node, base: type) -> bool:
    cls = import_class(node.get("class_path")) if isinstance(node, Namespace) else None
    return isinstance(cls, type) and issubclass(cls, base)


def _flat(value, prefix: str = "") -> dict:
    """Nested dicts -> {dotted key: value}; tuples as lists (a config says [0.9, 0.999] where a signature says a
    tuple)."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flat(item, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): list(value) if isinstance(value, tuple) else value}


TRUSTED = ("src.", "torch.", "lightning.")  # packages a checkpoint's hyperparameters may name classes from


def _class_paths(value) -> set[str]:
    if isinstance(value, dict):
        found = {str(value[k]) for k in ("class_path", HPARAMS_CLASS_PATH) if isinstance(value.get(k), str)}
        return found.union(*(_class_paths(v) for v in value.values()))
    if isinstance(value, (list, tuple)):
        return set().union(*(_class_paths(v) for v in value))
    return set()


def refuse_foreign_imports(checkpoint: dict, config: Namespace) -> None:
    """LightningCLI rebuilds the model from the checkpoint's hyperparameters, importing every class_path they name: a
    file that loads safely (weights_only) could still make it import any installed module. Only classes from src.,
    torch. and lightning., and those the user's own config names, may come from a checkpoint."""
    mine = _class_paths(config.as_dict())
    foreign = sorted(
        c for c in _class_paths(checkpoint.get("hyper_parameters") or {}) if not c.startswith(TRUSTED) and c not in mine
    )
    if foreign:
        raise UsageError(
            f"the checkpoint's hyperparameters name {foreign[0]}, a class outside src., torch. and "
            "lightning. that this config does not name; refusing to import it (name it in your config "
            "if you trust the file)"
        )


def refuse_changed_model(config: Namespace, checkpoint: dict, run: Run) -> None:
    """Resuming rebuilds the model from the checkpoint's hyperparameters (LightningCLI), so a model setting changed on
    the command line would be ignored without a word: refuse, naming what differs (trainer settings may change)."""
    saved = dict(checkpoint.get("hyper_parameters") or {})
    if not saved:
        return
    saved = {"class_path": saved.pop(HPARAMS_CLASS_PATH, None), "init_args": saved}
    asked = config.model.as_dict() if isinstance(config.get("model"), Namespace) else {}
    mine, theirs = _flat(asked), _flat(saved)
    linked = ("in_shape", "num_classes")  # handed over from the data module when the model is built, not a choice
    differ = [
        k for k in mine if k in theirs and mine[k] != theirs[k] and not k.endswith(linked) and theirs[k] is not None
    ]
    if differ:
        shown = ", ".join(f"model.{k}: {theirs[k]!r} in the checkpoint, {mine[k]!r} here" for k in differ[:3])
        raise UsageError(
            f"resuming {run.name} trains the checkpoint's model, not this one ({shown}); leave the model as "
            "it was to resume, or start a new run without --ckpt_path"
        )


def config_hint(files) -> str:
    """'--config a.yaml --config b.yaml': what the next command needs to name the same config."""
    return " ".join(f"--config {f}" for f in files)


@dataclass
class RunChoice:
    runs: Runs  # the config's runs
    hint: str  # its --config arguments
    save_dir: Path
    run: Run | None = None  # the run this command writes into (None: nothing runs, or a fast_dev_run)
    evaluation: str | None = None  # test_K etc. inside run, for an evaluation
    checkpoint: str | None = None  # the checkpoint read, resolved to a file
    config_file: Path | None = None  # where this command's config.yaml goes
    start_step: int = 0  # the global step training starts from (a resumed run's)
    logger: Namespace | None = field(default=None, repr=False)  # the logger's init_args, where it takes a folder
    tensorboard: bool = False  # the logger is TensorBoard's
    version: str | None = None  # the logger's version as configured (a run's own config.yaml names its folder)
    name_given: bool = False  # the logger's name was set (not the config file's name)
    stage: str | None = None  # the subcommand (None: run=False)

    @classmethod
    def of(cls, config: Namespace, subcommand: str | None, changed: Callable[[], dict]) -> "RunChoice":
        if config.trainer.get("enable_progress_bar") is False:  # Lightning refuses a progress bar callback then
            config.trainer.callbacks = [c for c in config.trainer.callbacks or [] if not _is(c, ProgressBarBase)]
        files = [str(c) for c in config.get("config") or []]
        logger = config.trainer.get("logger")
        args = logger.init_args if _is(logger, (TensorBoardLogger, CSVLogger)) else None
        save_dir = Path(args.get("save_dir") or "lightning_logs") if args is not None else Path("lightning_logs")
        name = (args.get("name") if args is not None else None) or (Path(files[-1]).stem if files else "default")
        place = cls(
            Runs(save_dir / name, config_hint(files)),
            config_hint(files),
            save_dir,
            logger=args,
            tensorboard=_is(logger, TensorBoardLogger),
            name_given=args is not None and bool(args.get("name")),
            stage=subcommand,
            version=None if args is None or args.get("version") is None else str(args.version),
        )
        if subcommand is None:  # run=False: named as a fit would be, nothing made
            place._point_logger(save_dir, name, place.version or next_name(place.runs.root))
        elif not config.trainer.get("fast_dev_run"):  # a fast_dev_run keeps nothing: Lightning turns the logger off
            place._place(config, subcommand, changed)
        return place

    def find(self, ckpt: str) -> Path:
        """A checkpoint for using a model (src.export): best|last of the run this config names (a run's own
        config.yaml names its folder) or of the newest run; or a file."""
        return self.runs.resolve(f"{self.version}:{ckpt}" if self.own and ckpt in ("best", "last") else ckpt)

    @property
    def own(self) -> bool:
        """Whether the logger names a folder that holds a run already (a run's own config.yaml)."""
        return self.version is not None and Run(self.runs.root / self.version).config.exists()

    def _place(self, config: Namespace, subcommand: str, changed) -> None:
        root, ckpt, version, own = self.runs.root, config.get("ckpt_path"), self.version, self.own
        if subcommand == "predict" and ckpt is None:
            raise UsageError(
                f"predict needs a trained model: add --ckpt_path best, last or a .ckpt file "
                f"(python -m src.cli predict {self.hint} --ckpt_path best)"
            )
        if subcommand in EVALUATIONS and own and ckpt in ("best", "last"):  # that run's file, not the newest run's
            ckpt = f"{version}:{ckpt}"
        trainer = config.trainer
        if subcommand == "fit" and (trainer.get("max_epochs") == 0 or trainer.get("limit_train_batches") in (0, 0.0)):
            raise UsageError(
                "trainer.max_epochs and trainer.limit_train_batches must be above 0: this fit would train "
                "nothing (use validate or test to evaluate without training)"
            )
        accumulate = trainer.get("accumulate_grad_batches")
        if subcommand == "fit" and accumulate is not None and accumulate < 1:  # Lightning divides by it
            raise UsageError(
                f"trainer.accumulate_grad_batches must be 1 or more (batches per optimizer step), got {accumulate}"
            )
        if subcommand == "fit" and own and ckpt is None:
            raise UsageError(
                f"{root / version} already holds a run; leave trainer.logger.init_args.version empty for "
                "a new version_N, or resume it with --ckpt_path last"
            )
        source = self._resolve(config, subcommand, ckpt) if ckpt is not None else None
        resuming = subcommand == "fit" and source is not None and source.folder.resolve().parent == root.resolve()
        if resuming:
            refuse_changed_model(config, load_checkpoint(Path(self.checkpoint)), source)
        self._choose_run(subcommand, version, changed, source, resuming)
        for callback in config.trainer.get("callbacks") or []:  # checkpoints in the run, whatever the logger
            if _is(callback, ModelCheckpoint) and callback.init_args.get("dirpath") is None:
                callback.init_args.dirpath = str(self.run.checkpoints)

    def _choose_run(self, subcommand: str, version: str | None, changed, source: Run | None, resuming: bool) -> None:
        """resuming: a fit from a checkpoint of one of this config's runs, which goes on in that run."""
        root = self.runs.root
        if resuming:
            self.run, self.start_step = source, load_checkpoint(Path(self.checkpoint)).get("global_step", 0)
            self.run.watch()
            self.config_file = self.run.folder / self.run.resume_config()
        elif subcommand == "fit":
            self.run = self._claim(version, run_suffix(changed()) if version is None else "")
            self.config_file = self.run.config
        else:
            self.run = source or self._claim(version, "")  # a new run folder made here goes whole on undo
            if source is not None:
                self.run.watch()
            self.evaluation = self.run.claim_evaluation(subcommand) if rank_zero_only.rank == 0 else f"{subcommand}_0"
            self.config_file = self.run.evaluation_config(self.evaluation)
            self._point_logger(self.run.folder, "", self.evaluation)
            return
        self._point_logger(self.save_dir, root.name, self.run.name)

    def _resolve(self, config: Namespace, subcommand: str, ckpt: str) -> Run | None:
        """--ckpt_path best|last|RUN:best|all:best|file -> a checked file, in config.ckpt_path; -> its run."""
        path = self.runs.resolve(ckpt)
        refuse_foreign_imports(load_checkpoint(path), config)
        config.ckpt_path = self.checkpoint = str(path)
        source = Run.of(path)
        rank_zero_info(f"{subcommand}: using checkpoint {path}{source.describe(path) if source else ''}")
        if source is not None and subcommand in EVALUATIONS and (note := self.runs.better_than(source)):
            rank_zero_info(note)
        return source

    def _claim(self, version: str | None, suffix: str) -> Run:
        """A new run folder: the version asked for, or the next version_N<suffix>; made on rank 0 only (the other
        ranks of a DDP run never write, and Lightning broadcasts rank 0's folders to them)."""
        root = self.runs.root
        if version is not None:
            run = Run(root / version)
            if rank_zero_only.rank == 0:
                run.folder.mkdir(parents=True, exist_ok=True)
            return run
        if rank_zero_only.rank != 0:
            return Run(root / next_name(root, suffix))
        return Run.claim(root, suffix)

    def _point_logger(self, save_dir: Path, name: str, version: str) -> None:
        if self.logger is not None:
            self.logger.save_dir, self.logger.name, self.logger.version = str(save_dir), name, version

    def undo(self, trainer) -> None:
        """After a failure: an evaluation, or a fit that took no training step, leaves nothing on disk."""
        trained = self.evaluation is None and trainer is not None and trainer.global_step > self.start_step
        if self.run is not None and not trained and rank_zero_only.rank == 0:
            self.run.undo()

    def apply(self, trainer, command_args: list[str] | None) -> None:
        """The one place a command's choice reaches the trainer's callbacks (the config's were placed by _place):
        a fast_dev_run keeps nothing (Lightning turns its logger off, but ModelCheckpoint would still save last.ckpt
        into ./checkpoints); logger false has no LearningRateMonitor (Lightning refuses one with nothing to log to);
        monitors are checked against what the model logs; the run records its numbers; an evaluation writes its
        report (test) or predictions (predict) into its own folder, imported only then."""
        callbacks = trainer.callbacks
        if trainer.fast_dev_run:
            callbacks[:] = [c for c in callbacks if not isinstance(c, ModelCheckpoint)]
        if not trainer.loggers:
            callbacks[:] = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
        callbacks.insert(0, MonitorCheck())  # before EarlyStopping and ModelCheckpoint read their monitors
        if self.run is None:
            return
        if self.stage in ("test", "predict"):
            from src.callbacks.predictions import PredictionWriter
            from src.callbacks.report import TestReport

            kind = TestReport if self.stage == "test" else PredictionWriter
            if not any(isinstance(c, kind) for c in callbacks):  # one the config names keeps its own settings
                callbacks.append(kind())
            for callback in (c for c in callbacks if isinstance(c, kind)):
                callback.dirpath = callback.dirpath or str(self.run.folder / self.evaluation)
        callbacks.append(RunRecorder(self.run, self.evaluation, self.checkpoint, command_args))

    def summary(self) -> str:
        """The block printed at the end of `fit`: the run, its best checkpoint (epoch, score) and the next commands."""
        best = self.run.metrics().get("best") or {}
        logs = (
            "" if self.save_dir == Path("lightning_logs") else f" --trainer.logger.init_args.save_dir {self.save_dir}"
        )
        if self.name_given:
            logs += f" --trainer.logger.init_args.name {self.runs.root.name}"
        score = f", {best.get('monitor')} {best['score']:.4f}" if best.get("score") is not None else ""
        lines = [f"run:   {self.run.folder}"]
        if best.get("path"):
            lines.append(f"best:  {self.run.folder / best['path']} (epoch {best.get('epoch')}{score})")
        lines.append(f"test:  python -m src.cli test {self.hint}{logs} --ckpt_path best")
        if self.tensorboard:
            lines.append(f"watch: tensorboard --logdir {self.save_dir}")
        return "\n".join(lines)


def changed(parser, config: Namespace, subcommand: str, argv) -> dict[str, object]:
    """The values of `config` (flattened, dotted keys) that differ from what its config files alone resolve to: what
    the command line changed, as parsed and typed. Only options that can name a run (not --config, nor where and how
    it is stored or launched: src.run.layout.NOT_NAMED) can change the name: without any, no second parse."""
    argv = sys.argv[1:] if argv is None else argv
    files = [str(c) for c in config.get("config") or []]
    keys = [a.split("=")[0].removeprefix("--") for a in argv if a.startswith("--")]
    if not files or all(k.startswith(NOT_NAMED) for k in keys):
        return {}
    try:
        base = parser.parse_args([subcommand, *(arg for f in files for arg in ("--config", f))])[subcommand]
    except ArgumentError:  # the files need the command line to be complete: nothing to compare with
        return {}
    return {key: value for key, value in config.items() if base.get(key) != value}
