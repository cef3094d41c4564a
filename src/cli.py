"""Command line: python -m src.cli {fit,validate,test,predict} --config configs/<name>.yaml [--key value ...]

LightningCLI does the parsing, validation and instantiation; this file adds only what it lacks:
  * every run logs to lightning_logs/<config name>/version_N (the name taken from the --config file);
  * `--ckpt_path best|last` in a new process means that file of the config's newest fit run, and an
    evaluation logs inside the run it evaluates (<run>/test_K), so it never becomes "the newest run";
  * bad input ends in one line on stderr and exit status 2, not a traceback (SRC_DEBUG=1 shows it).
"""

import logging
import os
import sys
from pathlib import Path

import torch
from jsonargparse import Namespace
from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningCLI

from src.errors import UsageError
from src.runs import next_free, resolve_checkpoint, run_of

DEFAULTS = Path(__file__).resolve().parent.parent / "configs" / "default.yaml"  # trainer, logger, callbacks
EVALUATIONS = ("validate", "test", "predict")


class CLI(LightningCLI):
    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config  # run=False: no subcommand
        logger = _tensorboard_args(config)
        if logger is None:  # another logger chosen by the user: leave naming and resolution to Lightning
            return
        if logger.name is None:
            files = [Path(str(c)) for c in (config.get("config") or [])]
            logger.name = files[-1].stem if files else "default"
        root = Path(logger.save_dir) / logger.name
        ckpt = config.get("ckpt_path")
        if ckpt is None or (self.subcommand == "fit" and ckpt != "last"):
            return  # "best" or a path in fit is Lightning's own business
        hint = " ".join(f"--config {c}" for c in (config.get("config") or []))
        path = resolve_checkpoint(ckpt, root, hint)
        config.ckpt_path = str(path)
        _print_rank_zero(f"{self.subcommand}: using checkpoint {path}")
        run = run_of(path)
        if run is None or Path(run).parent.resolve() != root.resolve():
            return
        logger.version = run.name
        if self.subcommand in EVALUATIONS:
            logger.sub_dir = next_free(run, self.subcommand)  # <run>/test_K: beside the run, never a new version
        else:  # resuming: keep logging in the same run; keep its first config.yaml, save this one beside it
            self.save_config_kwargs["config_filename"] = next_free(run, "config_resume") + ".yaml"


def _tensorboard_args(config: Namespace) -> Namespace | None:
    logger = config.trainer.get("logger")
    if isinstance(logger, Namespace) and str(logger.get("class_path", "")).endswith("TensorBoardLogger"):
        return logger.init_args
    return None


def _print_rank_zero(message: str) -> None:
    # Rank is known only from the launcher's environment here: the trainer does not exist yet.
    if int(os.environ.get("LOCAL_RANK", 0)) == 0 and int(os.environ.get("NODE_RANK", 0)) == 0:
        print(message, flush=True)


def main(args: list[str] | None = None, run: bool = True) -> CLI:
    """The command line; with run=False (tests, notebooks) args hold no subcommand and nothing runs."""
    torch.set_float32_matmul_precision("high")  # TF32 matmuls on Ampere+ GPUs; no effect on CPU
    logging.getLogger("lightning.fabric.utilities.seed").setLevel(logging.WARNING)  # the seed is in config.yaml
    defaults = {"default_config_files": [str(DEFAULTS)]}
    try:
        return CLI(
            LightningModule,
            LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            parser_kwargs={sub: defaults for sub in ("fit", *EVALUATIONS)} if run else defaults,
            args=args,
            run=run,
        )
    except UsageError as err:
        if os.environ.get("SRC_DEBUG"):
            raise
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
