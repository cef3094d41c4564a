"""Every process-wide performance setting, in one place, each with what it measured (README, Performance).

src/cli.py calls these (and ManualCNN reuse_freed_memory); nothing else changes the interpreter, the allocator or the trainer behind the user's back.
"""

import gc
import os
import re
from pathlib import Path


def before_imports() -> None:
    """As a program only: no garbage collection while torch, Lightning and torchvision import. Each full collection
    walks the growing heap of module objects, all of which live until exit (start-up -0.6 s of ~3.7 s)."""
    gc.disable()


def after_imports() -> None:
    """The imported modules live as long as the process: freeze them out of every later collection."""
    gc.freeze()
    gc.enable()


def before_exit() -> None:
    """Exit without a last collection walking every object (-0.8 s at the end of a command); the command has closed
    what it wrote."""
    gc.freeze()


def at_start() -> None:
    """Settings for any command, also in-process (tests, notebooks): TF32 matrix products on Ampere+ GPUs (no effect
    on a CPU)."""
    import torch

    torch.set_float32_matmul_precision("high")
    skip_nvml_without_gpus()


def reuse_freed_memory() -> None:
    """glibc hands a freed block back to the OS when it is over the mmap threshold (which it raises by itself, at most to
    32 MiB) or sits at the top of the heap over the trim threshold, so a tensor of tens of MB allocated anew on every
    step (the manual CNN's patch matrices) page-faults all its pages every time, which cost more than the arithmetic
    on it (17 ms of faults per step for a 40 MB buffer). A fixed 64 MiB mmap threshold and a 256 MiB trim threshold
    keep such blocks in the heap (larger ones let a process that trains many runs grow by 75 %; this, by 6 %).
    Called by the manual CNN, the one net that allocates such blocks; no effect off glibc."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(-3, 64 << 20)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD


def fit_trainer_to_machine(config) -> None:
    """Trainer settings that cannot hold as written: default.yaml's progress bar callback when the bar is switched
    off (Lightning refuses both together), and bf16-mixed where the device has no native bf16 (emulated, it is slower
    than float32; native on this CPU it made mnist_cnn's fit 26 s instead of 41 s)."""
    from lightning.pytorch.utilities import rank_zero_info

    if config.trainer.get("enable_progress_bar") is False:
        config.trainer.callbacks = [
            c for c in config.trainer.callbacks or [] if not str(c.get("class_path", "")).endswith("ProgressBar")
        ]
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
    """Importing Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1 (GPU checks through NVML never initialize CUDA
    before a fork). With torch's CUDA build on a machine without NVIDIA's driver, every such check dlopen()s
    the absent libnvidia-ml, and torch.optim checks on every step: 976 such checks cost 0.21 s of the README main
    command's 8.7 s (2.4 %, cProfile of the whole command; a bare optimizer-step loop shows 58 us per step). With no
    GPU there is no CUDA to protect: drop the variable, so torch's cached runtime check answers."""
    import torch

    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1" and torch.cuda.device_count() == 0:
        del os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"]
