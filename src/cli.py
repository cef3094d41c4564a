"""Command line: python -m src.cli {fit,validate,test,predict} --config configs/<name>.yaml [--key value ...]

LightningCLI parses, validates and instantiates; this file adds, through its public hooks, only the run
(src/run/choice.py decides it once, right after parsing):
  * a fit logs to lightning_logs/<config name>/version_N[_overrides], a folder src/run/layout.py claims;
  * `--ckpt_path best|last|RUN:best|all:best` in a new process means that checkpoint of the config's runs; an
    evaluation logs inside the run it evaluates (<run>/test_K), and a fit from a run's checkpoint resumes it;
  * a command that fails before training leaves nothing behind;
  * bad input (UsageError, the parser's errors) is one line on stderr and exit status 2; anything else is a bug and
    keeps its traceback. SIGTERM (after CheckpointOnInterrupt has saved) ends with status 143.
"""

if __name__ == "__main__":
    from src import frameworks

    frameworks.before_imports()

import signal
import sys
from pathlib import Path

from jsonargparse import ArgumentError
from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback
from lightning.pytorch.utilities.exceptions import MisconfigurationException, SIGTERMException

from src import frameworks
from src.errors import UsageError, check_config_files, check_net_takes_data_shape, one_line, one_line_exit
from src.run.choice import RunChoice, changed

DEFAULTS = Path(__file__).resolve().parent.parent / "configs" / "default.yaml"  # trainer, logger, callbacks
SUBCOMMANDS = ("fit", "validate", "test", "predict")


class RunConfig(SaveConfigCallback):
    """The command's config.yaml where its run says (config_filename: a path), whatever the logger."""

    def save_config(self, trainer, pl_module, stage: str) -> None:
        # skip_unset=False: every value, None too, so the file alone rebuilds the command
        self.parser.save(self.config, self.config_filename, skip_unset=False, multifile=self.multifile)


class CLI(LightningCLI):
    choice: RunChoice | None = None  # which run this command writes and which checkpoint it reads

    def __init__(self, *args, run: bool = True, **kwargs):
        self.runs_a_command = run
        try:
            super().__init__(*args, run=run, save_config_callback=RunConfig, **kwargs)
        except BaseException:  # nothing of a command that failed before training stays on disk
            if self.choice is not None:
                self.choice.undo(getattr(self, "trainer", None))
            raise

    def add_arguments_to_parser(self, parser) -> None:
        # A net's input shape and class count are the data set's: handed over when both are built, never in a config.
        for key in ("in_shape", "num_classes"):
            parser.link_arguments(f"data.{key}", f"model.init_args.net.init_args.{key}", apply_on="instantiate")
        if not self.runs_a_command:  # no subcommand: fit's own arguments (ckpt_path, ...), which a config.yaml holds
            skip = {"model", "train_dataloaders", "val_dataloaders", "datamodule"}
            parser.add_method_arguments(self.trainer_class, "fit", skip=skip)

    def parse_arguments(self, parser, args) -> None:
        """The run is chosen here, not in before_instantiate_classes: LightningCLI reads a checkpoint's
        hyperparameters right after parsing, so best/last must be a file by then."""
        super().parse_arguments(parser, args)
        self.command_args = list(args) if isinstance(args, (list, tuple)) else None  # for provenance (None: argv)
        subcommand = self.config.get("subcommand")
        config = self.config[subcommand] if subcommand else self.config
        frameworks.fit_trainer_to_machine(config)
        check_net_takes_data_shape(config)
        self.choice = RunChoice.of(config, subcommand, lambda: changed(parser, config, subcommand, args))

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
        """The one place the run's choice reaches the trainer: its config.yaml, then its callbacks."""
        if self.choice.config_file is None:  # nothing runs (run=False), or a fast_dev_run: no folder to save into
            self.save_config_callback = None
        else:
            self.save_config_kwargs = {"save_to_log_dir": False, "config_filename": str(self.choice.config_file)}
        trainer = super().instantiate_trainer(**kwargs)
        self.choice.apply(trainer, self.command_args)
        return trainer

    def after_fit(self) -> None:
        if self.trainer.is_global_zero and self.choice.run is not None:
            print(self.choice.summary())


def main(args: list[str] | None = None, run: bool = True, callbacks: list | None = None) -> CLI:
    """The command line; with run=False (tests, notebooks) args hold no subcommand and nothing runs. callbacks: added
    to the trainer's own, outside the config (a sweep trial's pruning report: src/sweep/prune.py)."""
    frameworks.at_start()
    frameworks.quiet()
    # exit_on_error=False: jsonargparse raises instead of printing the whole usage text; main prints one line.
    # allow_abbrev=False: argparse would take --trainer.max_epoch for --trainer.max_epochs; a typo must be an error.
    defaults = {"default_config_files": [str(DEFAULTS)], "exit_on_error": False, "allow_abbrev": False}
    parser_kwargs = {"exit_on_error": False, "allow_abbrev": False, **{s: defaults for s in SUBCOMMANDS}}
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
                    parser_kwargs=parser_kwargs if run else defaults,
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
    frameworks.after_imports()
    main()
    frameworks.before_exit()
