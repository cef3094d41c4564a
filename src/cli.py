"""Command line: python -m src.cli {fit,validate,test,predict} --config configs/<name>.yaml [--key value ...]

LightningCLI does the parsing, validation and instantiation; this file adds only what it lacks:
  * every run logs to lightning_logs/<config name>/version_N (the name taken from the --config file);
  * `--ckpt_path best|last` in a new process means that file of the config's newest fit run; any checkpoint is
    checked to be readable; an evaluation logs inside the run it evaluates (<run>/test_K), so it never
    becomes "the newest run", and a fit from a run's checkpoint resumes that run in place;
  * bad input ends in one line on stderr and exit status 2, not a traceback (SRC_DEBUG=1 shows it);
    SIGTERM (after CheckpointOnInterrupt has saved) ends with status 143.
"""

import gc

if __name__ == "__main__":
    # As a program: no garbage collection while the libraries below import. Each full collection walks the growing
    # heap of module objects, all of which live until exit (README, Performance: start-up); see the end of this file.
    gc.disable()

import ctypes
import importlib
import inspect
import logging
import os
import re
import shutil
import signal
import sys
from pathlib import Path

import torch
from jsonargparse import ArgumentError, Namespace
from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import MisconfigurationException, SIGTERMException

from src.errors import UsageError
from src.runs import (better_run, describe, fit_summary, load_checkpoint, next_free, next_version, resolve_checkpoint,
                      run_of, run_suffix)

DEFAULTS = Path(__file__).resolve().parent.parent / "configs" / "default.yaml"  # trainer, logger, callbacks
EVALUATIONS = ("validate", "test", "predict")


class CLI(LightningCLI):
    log_dir: Path | None = None  # the folder this command logs into, where known before it runs (see _watch)
    log_dir_held: set[Path] | None = None  # its entries before the command (None: the folder is new)
    start_step: int = 0  # the global step training starts from (a resumed run's checkpoint's)

    def add_arguments_to_parser(self, parser) -> None:
        # A net's input shape and class count are the data set's: handed over when both are built, never written in
        # a config.
        for key in ("in_shape", "num_classes"):
            parser.link_arguments(f"data.{key}", f"model.init_args.net.init_args.{key}", apply_on="instantiate")

    def parse_arguments(self, parser, args) -> None:
        """After parsing and before LightningCLI reads the checkpoint's hyperparameters (it rebuilds the model
        from them when ckpt_path is a file): name the run, resolve best/last, validate the file."""
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        config = self.config[subcommand] if subcommand else self.config  # run=False: no subcommand
        fit_trainer_to_machine(config)
        check_net_takes_data_shape(config)
        logger = _tensorboard_args(config)
        if logger is None:  # another logger chosen by the user: leave naming and resolution to Lightning
            return
        if logger.name is None:
            files = [Path(str(c)) for c in (config.get("config") or [])]
            logger.name = files[-1].stem if files else "default"
        root = Path(logger.save_dir) / logger.name
        ckpt = config.get("ckpt_path")
        resuming = subcommand == "fit" and ckpt is not None
        taken = logger.version is not None and (root / str(logger.version) / "config.yaml").exists()
        if subcommand in EVALUATIONS and taken and ckpt in ("best", "last"):  # a run's own config.yaml: that run's file
            ckpt = f"{logger.version}:{ckpt}"
        if subcommand == "fit" and taken and not resuming:  # an evaluation logs beside the run (test_K), not into it
            raise UsageError(f"{root / str(logger.version)} already holds a run; leave trainer.logger.init_args.version "
                             "empty for a new version_N, or resume it with --ckpt_path last")
        if ckpt is None and subcommand != "predict":
            self._new_run(parser, config, subcommand, sys.argv[1:] if args is None else args, logger, root)
        else:
            self._from_checkpoint(config, subcommand, ckpt, logger, root)

    def _new_run(self, parser, config: Namespace, subcommand: str, argv, logger: Namespace, root: Path) -> None:
        """A run without a checkpoint logs into <root>/version_N, named here, not by Lightning, so that the folder is
        known before it exists; a fit's name adds what its command line changed (run_suffix)."""
        if logger.version is None:
            # Only options besides the config files can change a value: without any, skip the second parse.
            overrides = isinstance(argv, list) and any(a.startswith("--") and a.split("=")[0] != "--config" for a in argv)
            suffix = run_suffix(changed(parser, config, subcommand)) if subcommand == "fit" and overrides else ""
            logger.version = f"version_{next_version(root)}{suffix}"  # nothing changed: Lightning's own version_N
        self._watch(root / str(logger.version))

    def _from_checkpoint(self, config: Namespace, subcommand: str, ckpt, logger: Namespace, root: Path) -> None:
        """--ckpt_path best|last|<run>:best|file: resolved and checked; an evaluation logs into <run>/test_K, a fit
        resumes its run in place."""
        hint = " ".join(f"--config {c}" for c in (config.get("config") or []))
        if subcommand == "predict" and ckpt is None:
            raise UsageError(f"predict needs a trained model: add --ckpt_path best, last or a .ckpt file "
                             f"(python -m src.cli predict {hint} --ckpt_path best)")
        path = resolve_checkpoint(ckpt, root, hint)
        config.ckpt_path = str(path)
        run = run_of(path)
        rank_zero_info(f"{subcommand}: using checkpoint {path}{describe(path)}")
        if run is not None and subcommand in EVALUATIONS and (note := better_run(run, root)):
            rank_zero_info(note)
        if run is None or Path(run).parent.resolve() != root.resolve():
            return
        logger.version = run.name
        if subcommand in EVALUATIONS:
            logger.sub_dir = next_free(run, subcommand)  # <run>/test_K: beside the run, never a new version
            self._watch(run / logger.sub_dir)
        else:  # resuming: keep logging in the same run; keep its first config.yaml, save this one beside it
            self.save_config_kwargs["config_filename"] = next_free(run, "config_resume") + ".yaml"
            self._watch(run, start_step=load_checkpoint(path).get("global_step", 0))

    def _watch(self, log_dir: Path, start_step: int = 0) -> None:
        """Remember the folder this command logs into, what it held before, and the step training starts from."""
        self.log_dir, self.start_step = log_dir, start_step
        self.log_dir_held = set(log_dir.iterdir()) if log_dir.is_dir() else None

    def _run_subcommand(self, subcommand: str) -> None:
        """No phantom runs: a command that fails (bad data, Ctrl-C, a refused resume, ...) before its first training
        step, or an evaluation that fails at all, removes what it wrote into its log folder (Lightning makes the
        folder, an event file and config.yaml before setup), so that TensorBoard and `--ckpt_path best` never see
        it and a resumed run is left as it was. A run that trained keeps everything."""
        try:
            super()._run_subcommand(subcommand)
        except BaseException as err:
            if isinstance(err, ValueError) and not isinstance(err, UsageError):
                err.in_run = True  # raised by the training or evaluation code itself: a bug, shown with its traceback
            untrained = subcommand != "fit" or self.trainer.global_step <= self.start_step
            if self.log_dir is not None and untrained and self.trainer.is_global_zero and self.log_dir.is_dir():
                for entry in [self.log_dir] if self.log_dir_held is None else set(self.log_dir.iterdir()) - self.log_dir_held:
                    shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink()
            raise

    def after_fit(self) -> None:
        """Where the run is, which checkpoint is best, and what to run next."""
        callback, logger = self.trainer.checkpoint_callback, self.trainer.logger
        if callback is None or logger is None or not self.trainer.is_global_zero or not callback.best_model_path:
            return
        configs = " ".join(f"--config {c}" for c in (self.config["fit"].get("config") or []))
        score = None if callback.best_model_score is None else float(callback.best_model_score)
        # logger.log_dir, not trainer.log_dir: the trainer's is a broadcast that every DDP rank would have to join.
        print(fit_summary(Path(logger.log_dir), Path(callback.best_model_path), score, configs, logger.save_dir))

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
                raise UsageError(f"{type(callback).__name__} monitors {monitor!r}, which is never logged; "
                                 f"choose one of {', '.join(logged)}")


def fit_trainer_to_machine(config: Namespace) -> None:
    """Trainer settings that cannot hold as written: default.yaml's progress bar callback when the bar is switched off
    (Lightning refuses both together), and bf16-mixed where the device has no native bf16 (emulated, it is slower
    than float32)."""
    if config.trainer.get("enable_progress_bar") is False:
        config.trainer.callbacks = [c for c in config.trainer.callbacks or []
                                    if not str(c.get("class_path", "")).endswith("ProgressBar")]
    if config.trainer.get("precision") == "bf16-mixed" and not native_bf16(config.trainer.get("accelerator")):
        rank_zero_info("precision: this device has no native bf16 (where it is emulated it is slower than float32): "
                       "training in 32-true")
        config.trainer.precision = "32-true"


def native_bf16(accelerator) -> bool:
    """Whether the device a run trains on computes in bf16 natively: a CUDA GPU that supports it without emulation
    (Ampere or newer), or a CPU with AVX512-BF16 or AMX (flags in Linux's /proc/cpuinfo; elsewhere: no)."""
    if torch.cuda.is_available() and accelerator in (None, "auto", "gpu", "cuda"):
        return torch.cuda.is_bf16_supported(including_emulation=False)
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return re.search(r"\b(avx512_bf16|amx_bf16)\b", flags) is not None


def check_net_takes_data_shape(config: Namespace) -> None:
    """The data module hands in_shape and num_classes to the net (add_arguments_to_parser): a net class must take both."""
    net = config.get("model.init_args.net")
    if not isinstance(net, Namespace) or not net.get("class_path"):
        return
    module, _, name = net.class_path.rpartition(".")
    parameters = inspect.signature(getattr(importlib.import_module(module), name)).parameters
    missing = [k for k in ("in_shape", "num_classes") if k not in parameters]
    if missing:
        raise UsageError(f"{net.class_path} must take {' and '.join(missing)} as __init__ arguments: the command line "
                         "hands the data module's to the net")


def changed(parser, config: Namespace, subcommand: str) -> dict[str, object]:
    """The values of `config` (flattened, dotted keys) that differ from what its config files alone resolve to: what
    the command line changed, as parsed and typed (a value given but equal to the file's is no change)."""
    files = [str(c) for c in config.get("config") or []]
    if not files:
        return {}
    try:
        base = parser.parse_args([subcommand, *(arg for f in files for arg in ("--config", f))])[subcommand]
    except ArgumentError:  # the files need the command line to be complete: nothing to compare with
        return {}
    return {key: value for key, value in config.items() if base.get(key) != value}


def _tensorboard_args(config: Namespace) -> Namespace | None:
    logger = config.trainer.get("logger")
    if isinstance(logger, Namespace) and str(logger.get("class_path", "")).endswith("TensorBoardLogger"):
        return logger.init_args
    return None


def one_line(message: str) -> str:
    """The gist of a possibly nested jsonargparse message, e.g. 'model.net: Option 'hiden' is not accepted':
    the chain of parser keys down to the first line that says what is wrong."""
    keys: list[str] = []
    for line in message.strip().splitlines():
        text = line.strip().removeprefix("- ")
        key = re.match(r'Parser key "([^"]+)":\s*(.*)', text)
        if key:
            keys.append(key.group(1))
            text = key.group(2)
        if text and not text.startswith(("Does not validate", "Subtypes:", "Errors:", "Problem with given class_path")):
            return f"{'.'.join(keys)}: {text}" if keys else text
    return message.strip().splitlines()[0] if message.strip() else "invalid input"


def skip_nvml_without_gpus() -> None:
    """Importing Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1 (GPU checks through NVML never initialize CUDA
    before a fork). With torch's CUDA build on a machine without NVIDIA's driver, every such check dlopen()s
    the absent libnvidia-ml, and torch.optim checks on every step (README, Performance). With no GPU there is no
    CUDA to protect: drop the variable, so torch's cached runtime check answers."""
    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1" and torch.cuda.device_count() == 0:
        del os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"]


def reuse_freed_memory() -> None:
    """glibc hands a freed block back to the OS when it is over the mmap threshold (which it raises by itself, at most to
    32 MiB) or sits at the top of the heap over the trim threshold, so a tensor of tens of MB allocated anew on every
    step (the manual CNN's patch matrices and activations) page-faults all its pages every time, which costs more
    than the arithmetic on it. A fixed 64 MiB mmap threshold and a 256 MiB trim threshold keep such blocks in the
    heap for reuse; larger thresholds were measured to let a process that trains many runs grow (README,
    Performance). No effect off glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(-3, 64 << 20)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD


def main(args: list[str] | None = None, run: bool = True) -> CLI:
    """The command line; with run=False (tests, notebooks) args hold no subcommand and nothing runs."""
    torch.set_float32_matmul_precision("high")  # TF32 matmuls on Ampere+ GPUs; no effect on CPU
    skip_nvml_without_gpus()
    reuse_freed_memory()
    logging.getLogger("lightning.fabric.utilities.seed").setLevel(logging.WARNING)  # the seed is in config.yaml
    # exit_on_error=False: jsonargparse raises instead of printing the whole usage text; main prints one line.
    # allow_abbrev=False: argparse would take --trainer.max_epoch for --trainer.max_epochs; a typo must be an error.
    defaults = {"default_config_files": [str(DEFAULTS)], "exit_on_error": False, "allow_abbrev": False}
    try:
        return CLI(
            LightningModule,
            LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            parser_kwargs={"exit_on_error": False, "allow_abbrev": False, **{sub: defaults for sub in ("fit", *EVALUATIONS)}}
            if run else defaults,
            args=args,
            run=run,
        )
    except SIGTERMException:  # CheckpointOnInterrupt has saved and said how to resume
        sys.exit(128 + signal.SIGTERM)
    except KeyboardInterrupt:  # Ctrl-C before Lightning's own handling took over (importing, parsing, building)
        print("interrupted", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)
    except (ValueError, ArgumentError, MisconfigurationException) as err:  # UsageError is a ValueError
        # Bad input is a one-line error: what the parser rejects, what a class's __init__ refuses (a ValueError while
        # the config is instantiated), and UsageError. A ValueError from inside a run (e.g. a shape mismatch in
        # F.cross_entropy) is a bug, and a bug needs its traceback.
        if os.environ.get("SRC_DEBUG") or getattr(err, "in_run", False):
            raise
        hint = " (python -m src.cli fit --help lists every option)" if isinstance(err, ArgumentError) else ""
        print(f"error: {one_line(str(err))}{hint}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    gc.freeze()  # the imported modules live as long as the process: no collection needs to walk them again
    gc.enable()
    main()
    gc.freeze()  # exit without a last collection walking every object; the command has closed what it wrote
