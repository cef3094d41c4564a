"""The one boundary to the frameworks: everything this template does to torch, Lightning, jsonargparse, Optuna, the
interpreter and the allocator beyond their plain public use, each with its reason and the version checked
(torch 2.14, lightning 2.6.6, jsonargparse 4.53, optuna 5.1). docs/internals.md lists them; a test checks that no
other module of src/ filters a warning or touches a private name of these libraries.

- process settings for speed (cli.py calls them; their measurements are in docs/performance.md)
- warning and log filters (quiet, quiet_optuna, saving_hyperparameters, checking_quietly)
- private APIs with no public equivalent (save_last_now, UnrepeatedDistributedSampler, HPARAMS_CLASS_PATH,
  journal_storage, trial_of, parser_key)
"""

import contextlib
import gc
import logging
import os
import re
import warnings
from pathlib import Path

# --- process settings for speed --------------------------------------------------------------------------------


def before_imports() -> None:
    """As a program only: no garbage collection while the libraries import (each collection walks every module
    object so far, and all of them live until exit)."""
    gc.disable()


def after_imports() -> None:
    """The imported modules live as long as the process: freeze them out of every later collection."""
    gc.freeze()
    gc.enable()


def before_exit() -> None:
    """Exit without a last collection walking every object; the command has closed what it wrote."""
    gc.freeze()


def at_start() -> None:
    """For any command, also in-process: TF32 matrix products on Ampere+ GPUs (no effect on a CPU)."""
    import torch

    torch.set_float32_matmul_precision("high")
    skip_nvml_without_gpus()


def reuse_freed_memory() -> None:
    """Keep freed blocks of up to 64 MiB in glibc's heap (mmap threshold 64 MiB, trim threshold 256 MiB): the manual
    CNN allocates patch matrices of tens of MB anew every step, and glibc's default returns each to the OS, so every
    step page-faults them in again. Called by ManualCNN, the one net that needs it; no effect off glibc."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(-3, 64 << 20)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD


def fit_trainer_to_machine(config) -> None:
    """bf16-mixed only where the device has native bf16: emulated, it is slower than float32."""
    from lightning.pytorch.utilities import rank_zero_info

    if config.trainer.get("precision") == "bf16-mixed" and not native_bf16(config.trainer.get("accelerator")):
        rank_zero_info(
            "precision: this device has no native bf16 (where it is emulated it is slower than float32): "
            "training in 32-true"
        )
        config.trainer.precision = "32-true"


def native_bf16(accelerator) -> bool:
    """Whether the device a run trains on computes in bf16 natively: a CUDA GPU that supports it without emulation
    (Ampere or newer), or a CPU with AVX512-BF16 or AMX (flags in Linux's /proc/cpuinfo; elsewhere: no)."""
    import torch

    if torch.cuda.is_available() and accelerator in (None, "auto", "gpu", "cuda"):
        return torch.cuda.is_bf16_supported(including_emulation=False)
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return re.search(r"\b(avx512_bf16|amx_bf16)\b", flags) is not None


def skip_nvml_without_gpus() -> None:
    """Importing Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1, so that GPU checks never initialize CUDA before a
    fork. Without NVIDIA's driver every such check dlopen()s the absent libnvidia-ml, and torch.optim checks on every
    step. With no GPU there is no CUDA to protect: drop the variable, so torch's cached check answers."""
    import torch

    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1" and torch.cuda.device_count() == 0:
        del os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"]


# --- warning and log filters ------------------------------------------------------------------------------------


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip:")


_DROP_TIPS = _DropTips()  # one instance: adding it again (main runs once per command, often in one process) is a no-op


def quiet() -> None:
    # Lightning 2.6 advertises its cloud products (litlogger, litmodels) in every Trainer it builds.
    for name in ("lightning.pytorch", "lightning.fabric", "lightning_utilities"):
        logging.getLogger(name).addFilter(_DROP_TIPS)
    for handler in logging.getLogger("lightning.pytorch").handlers:
        handler.addFilter(_DROP_TIPS)
    # Lightning's own _pytree helper uses LeafSpec, which torch 2.14 deprecates; nothing of ours calls it.
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    # The model summary counts bytes in float32 under bf16-mixed; its parameter counts, the part we read, are right.
    warnings.filterwarnings("ignore", message="Precision bf16-mixed is not supported by the model summary")
    # A resumed run saves into its own checkpoints/ folder, which holds its earlier checkpoints by design.
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    # A run of fewer batches than log_every_n_steps (README's quick tries) gets this advice "to see logs for the
    # training epoch"; the classifier logs every epoch's values (train/loss_epoch, train/acc) whatever the interval.
    warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller than the logging")
    # The seed is in config.yaml; Lightning's line about it on every command says nothing more.
    logging.getLogger("lightning.fabric.utilities.seed").setLevel(logging.WARNING)
    # src.export, sweeps and tests build the CLI from Python on purpose (args=...).
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended to run from within Python")


@contextlib.contextmanager
def saving_hyperparameters():
    """Lightning warns that an nn.Module argument (the net) would be pickled into the hyperparameters. Under
    LightningCLI (and load_from_checkpoint) what is saved is the net's class_path/init_args config, which
    load_from_checkpoint needs to rebuild it; a net built by hand is removed by the classifier. A false alarm."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Attribute 'net' is an instance of `nn.Module`")
        yield


@contextlib.contextmanager
def checking_quietly():
    """A sweep builds (never runs) each point's CLI once to check it: Lightning's notices and warnings about a
    trainer that never trains say nothing about the sweep."""
    log = logging.getLogger("lightning.pytorch")
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        log.setLevel(level)


class _NoTracebacks(logging.Filter):
    """Optuna logs every failed trial with its traceback. Ours fail with a RuntimeError naming the run's log (the
    traceback is only our own raise), and a stopped sweep with a KeyboardInterrupt, which the sweep answers with the
    one resume line: the first keeps its one-line message, the second says nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, KeyboardInterrupt):
            return False
        if isinstance(error, RuntimeError):
            record.exc_info = None
        return True


_NO_TRACEBACKS = _NoTracebacks()  # one instance: quiet_optuna runs for every study and trial opened


def quiet_optuna() -> None:
    """Optuna marks its heartbeat, grace period and stale-trial retry experimental (since 2.8/2.9); sweeps rely on
    them on purpose. Its trial loop's logger (optuna.study._optimize, optuna 5.1) prints tracebacks we log per trial."""
    import optuna
    from optuna.exceptions import ExperimentalWarning

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=ExperimentalWarning)
    logging.getLogger("optuna.study._optimize").addFilter(_NO_TRACEBACKS)


def quiet_rerun_as_main() -> None:
    """The sweep's fork server imported src.cli; running it again as __main__ is what `python -m` does too, so
    runpy's warning that the module is already imported says nothing there."""
    warnings.filterwarnings("ignore", "'.*' found in sys.modules after import of package", RuntimeWarning)


# --- private APIs with no public equivalent ----------------------------------------------------------------------


def save_last_now(callback, trainer) -> None:
    """last.ckpt now, through ModelCheckpoint's own bookkeeping (last_model_path, its state), unless it has just saved
    at this step or must not save. Lightning 2.6 writes last.ckpt only where a top-k file was saved too; these
    private methods are the only way to save it under the callback's own records (lightning 2.6.6)."""
    if callback.save_last and not callback._should_skip_saving_checkpoint(trainer):
        callback._save_last_checkpoint(trainer, callback._monitor_candidates(trainer))


def saves_on_train_epoch_end(callback, trainer) -> bool:
    """Whether ModelCheckpoint saves at the end of a training epoch rather than of a validation (lightning 2.6.6)."""
    return callback._should_save_on_train_epoch_end(trainer)


def unrepeated_sampler(dataset, num_replicas: int, rank: int):
    """Lightning's sampler that scores each validation/test image exactly once over all DDP ranks (no padding
    repeats); lightning.pytorch.overrides is not public API (lightning 2.6.6)."""
    from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler

    return UnrepeatedDistributedSampler(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)


def batches_fetched(trainer) -> int:
    """Training batches of the current epoch the fit loop has fetched (the checkpoint's count at the first batch of a
    resumed fit); 0 without a trainer. The trainer exposes no public count, and Lightning's public seam (a loader's
    state_dict) is dropped when the loader is built before the checkpoint is restored, as estimated_stepping_batches
    (OneCycleLR's length) builds it (Lightning issue #20550; lightning 2.6.6)."""
    loop = getattr(trainer, "fit_loop", None)  # None: no trainer, or a loader iterated by hand
    return loop.epoch_loop.batch_progress.current.ready if loop is not None else 0


# The key under which LightningCLI saves the model's class in a checkpoint's hyper_parameters (lightning 2.6.6).
HPARAMS_CLASS_PATH = "_class_path"


def journal_storage(study) -> bool:
    """Whether a study lives in a journal file (no heartbeat of Optuna's own there); Study has no public accessor
    for its storage (optuna 5.1)."""
    import optuna

    return isinstance(study._storage, optuna.storages.JournalStorage)


def trial_of(study, number: int):
    """A live Trial for the trial numbered `number` of a study, to report intermediate values to from another
    process: Optuna has no public way from a trial's number to its id (FrozenTrial._trial_id) nor to a Trial
    object outside study.optimize (optuna 5.1)."""
    import optuna

    trial_id = next(t._trial_id for t in study.get_trials(deepcopy=False) if t.number == number)
    return optuna.trial.Trial(study, trial_id)


def parser_key(text: str) -> tuple[str, str] | None:
    """jsonargparse's 'Parser key "model.net": rest' -> ("model.net", "rest"): its nested errors are text only
    (jsonargparse 4.53)."""
    key = re.match(r'Parser key "([^"]+)":\s*(.*)', text)
    return (key.group(1), key.group(2)) if key else None
