"""Command line: python -m src.cli {fit,validate,test,predict} --config configs/<name>.yaml [--key value ...]

LightningCLI parses, validates and instantiates; this file adds, through its public hooks, only the run:
  * a fit logs to lightning_logs/<config name>/version_N[_overrides], a folder the Run (src/runs.py) claims;
  * `--ckpt_path best|last|RUN:best|all:best` in a new process means that checkpoint of the config's runs; an
    evaluation logs inside the run it evaluates (<run>/test_K), and a fit from a run's checkpoint resumes it;
  * a command that fails before training leaves nothing behind (Run.undo);
  * bad input (UsageError, the parser's errors) is one line on stderr and exit status 2; anything else is a bug and
    keeps its traceback. SIGTERM (after CheckpointOnInterrupt has saved) ends with status 143.
"""

if __name__ == "__main__":
    from src import perf

    perf.before_imports()

import logging
import signal
import sys
from pathlib import Path

from jsonargparse import ArgumentError
from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback
from lightning.pytorch.utilities.exceptions import MisconfigurationException, SIGTERMException

from src import perf
from src.callbacks.record import RunRecorder
from src.config_checks import check_config_files, check_net_takes_data_shape
from src.errors import UsageError, one_line, one_line_exit
from src.perf import fit_trainer_to_machine
from src.placement import Placement, changed
from src.quiet import quiet

DEFAULTS = Path(__file__).resolve().parent.parent / "configs" / "default.yaml"  # trainer, logger, callbacks
SUBCOMMANDS = ("fit", "validate", "test", "predict")


class RunConfig(SaveConfigCallback):
    """The command's config.yaml where its run says (config_filename: a path), whatever the logger."""

    def save_config(self, trainer, pl_module, stage: str) -> None:
        self.parser.save(
            self.config, self.config_filename, skip_unset=False, multifile=self.multifile
        )  # every value, None too


class CLI(LightningCLI):
    place: Placement | None = None  # where this command logs and which checkpoint it reads (None: run=False)

    def __init__(self, *args, run: bool = True, **kwargs):
        self.runs_a_command = run
        try:
            super().__init__(
                *args, run=run, save_config_callback=RunConfig, save_config_kwargs={"save_to_log_dir": False}, **kwargs
            )
        except BaseException:  # nothing of a command that failed before training stays on disk
            if self.place is not None:
                self.place.undo(getattr(self, "trainer", None))
            raise

    def add_arguments_to_parser(self, parser) -> None:
        # A net's input shape and class count are the data set's: handed over when both are built, never in a config.
        for key in ("in_shape", "num_classes"):
            parser.link_arguments(f"data.{key}", f"model.init_args.net.init_args.{key}", apply_on="instantiate")
        if (
            not self.runs_a_command
        ):  # no subcommand: take fit's own arguments (ckpt_path, ...), which a run's config.yaml holds
            parser.add_method_arguments(
                self.trainer_class, "fit", skip={"model", "train_dataloaders", "val_dataloaders", "datamodule"}
            )

    def parse_arguments(self, parser, args) -> None:
        """Here, not in before_instantiate_classes: LightningCLI reads a checkpoint's hyperparameters right after
        parsing, so best/last must be a file by then."""
        super().parse_arguments(parser, args)
        self.command_args = (
            list(args) if isinstance(args, (list, tuple)) else None
        )  # for the run's provenance (None: sys.argv)
        subcommand = self.config.get("subcommand")
        config = self.config[subcommand] if subcommand else self.config
        fit_trainer_to_machine(config)
        check_net_takes_data_shape(config)
        self.place = Placement.of(config, subcommand, lambda: changed(parser, config, subcommand, args))
        if self.place.config_file is not None:
            self.save_config_kwargs["config_filename"] = str(self.place.config_file)
        else:  # nothing runs (run=False), or a fast_dev_run: no run folder to save a config into
            self.save_config_callback = None

    def instantiate_classes(self) -> None:
        """A class that refuses its arguments (a ValueError from its __init__: hidden sizes must be positive, ...)
        is bad input, not a bug: said in one line."""
        try:
            super().instantiate_classes()
        except UsageError:
            raise
        except ValueError as err:
            raise UsageError(str(err)) from err

    def instantiate_trainer(self, **kwargs):
        trainer = super().instantiate_trainer(**kwargs)
        if self.place.run is not None:  # after ModelCheckpoint (Lightning orders it last): it reads what that saved
            trainer.callbacks.append(
                RunRecorder(self.place.run, self.place.evaluation, self.place.checkpoint, self.command_args)
            )
        return trainer

    def before_fit(self) -> None:
        """A monitor that is never logged would fail only after the first epoch; fail now, in one line. A
        fast_dev_run (a few batches to check the code) keeps nothing: Lightning turns the logger off, but its
        ModelCheckpoint still saves last.ckpt when training ends, into ./checkpoints of wherever it ran."""
        if self.trainer.fast_dev_run:
            self.trainer.callbacks = [c for c in self.trainer.callbacks if not isinstance(c, ModelCheckpoint)]
        logged = getattr(self.model, "logged_metrics", None)
        for callback in self.trainer.callbacks if logged else []:
            monitor = getattr(callback, "monitor", None)
            if monitor is not None and monitor not in logged:
                raise UsageError(
                    f"{type(callback).__name__} monitors {monitor!r}, which is never logged; "
                    f"choose one of {', '.join(logged)}"
                )

    def after_fit(self) -> None:
        if self.trainer.is_global_zero and self.place.run is not None:
            print(self.place.summary())


def main(args: list[str] | None = None, run: bool = True, callbacks: list | None = None) -> CLI:
    """The command line; with run=False (tests, notebooks) args hold no subcommand and nothing runs. callbacks: added
    to the trainer's own, outside the config (a sweep trial's pruning report: src/sweep/prune.py)."""
    perf.at_start()
    quiet()
    logging.getLogger("lightning.fabric.utilities.seed").setLevel(logging.WARNING)  # the seed is in config.yaml
    # exit_on_error=False: jsonargparse raises instead of printing the whole usage text; main prints one line.
    # allow_abbrev=False: argparse would take --trainer.max_epoch for --trainer.max_epochs; a typo must be an error.
    defaults = {"default_config_files": [str(DEFAULTS)], "exit_on_error": False, "allow_abbrev": False}
    try:
        with one_line_exit():
            try:
                check_config_files(list(sys.argv[1:] if args is None else args))
                return CLI(
                    LightningModule,
                    LightningDataModule,
                    subclass_mode_model=True,
                    subclass_mode_data=True,
                    args=args,
                    parser_kwargs={"exit_on_error": False, "allow_abbrev": False, **{s: defaults for s in SUBCOMMANDS}}
                    if run
                    else defaults,
                    run=run,
                    trainer_defaults={"callbacks": callbacks} if callbacks else None,
                )
            except (ArgumentError, MisconfigurationException) as err:  # the parser's and Lightning's: bad input too
                hint = " (python -m src.cli fit --help lists every option)" if isinstance(err, ArgumentError) else ""
                raise UsageError(f"{one_line(str(err))}{hint}") from err
    except SIGTERMException:  # CheckpointOnInterrupt has saved and said how to resume
        sys.exit(128 + signal.SIGTERM)
    except KeyboardInterrupt:  # Ctrl-C before Lightning's own handling took over (importing, parsing, building)
        print("interrupted", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)


if __name__ == "__main__":
    perf.after_imports()
    main()
    perf.before_exit()
