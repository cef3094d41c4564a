"""One GPU per sweep worker: worker i trains on GPU i mod G, so N workers on G GPUs go round-robin (two workers share
a GPU only when N > G, and the sweep says so). A trial sees only its GPU (CUDA_VISIBLE_DEVICES, set in its process
before CUDA starts); without GPUs nothing is set and the workers split the CPU threads (trials.trial_env).
"""

import contextlib
import os
import queue


def visible_gpus() -> list[str]:
    """The GPUs this sweep may use: those CUDA_VISIBLE_DEVICES lists, else every GPU torch counts (counting does not
    initialise torch's CUDA state; trials run in processes forked from the fork server, which never counted)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip() and d.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def assign(workers: int, gpus: list[str]) -> list[str | None]:
    """Worker i -> its GPU (i mod G), or None for every worker without GPUs."""
    return [gpus[i % len(gpus)] if gpus else None for i in range(workers)]


def sharing(workers: int, gpus: list[str]) -> str | None:
    if not gpus or workers <= len(gpus):
        return None
    return (
        f"note: {workers} workers on {len(gpus)} GPU(s): workers share GPUs round-robin (each trial still sees one); "
        f"--workers {len(gpus)} gives each its own"
    )


class Devices:
    """The workers' devices as a pool: a trial takes one for its duration, so trials running at once never share a
    GPU while a free one exists."""

    def __init__(self, workers: int, gpus: list[str]):
        self.free: queue.Queue = queue.Queue()
        for device in assign(workers, gpus):
            self.free.put(device)

    @contextlib.contextmanager
    def take(self):
        device = self.free.get()
        try:
            yield device
        finally:
            self.free.put(device)
