"""Which GPU each sweep worker trains on, for N workers and G GPUs (faked: the assignment is a pure function)."""

import threading

import pytest

from src.sweep import devices
from src.sweep.trials import trial_env

# G GPUs -> the GPU of workers 1..5 (N = 5; fewer workers take the first N entries)
TABLE = {
    0: [None, None, None, None, None],
    1: ["0", "0", "0", "0", "0"],
    2: ["0", "1", "0", "1", "0"],
    4: ["0", "1", "2", "3", "0"],
}


@pytest.mark.parametrize("gpus", sorted(TABLE))
@pytest.mark.parametrize("workers", [1, 2, 3, 4, 5])
def test_workers_get_gpus_round_robin(workers, gpus):
    ids = [str(i) for i in range(gpus)]
    assert devices.assign(workers, ids) == TABLE[gpus][:workers]
    shared = devices.sharing(workers, ids)
    assert (shared is not None) == (0 < gpus < workers)  # one line, only when two workers must share a GPU
    assert shared is None or f"--workers {gpus} gives each its own" in shared


def test_visible_gpus_follow_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 5")
    assert devices.visible_gpus() == ["2", "5"]
    assert devices.assign(3, devices.visible_gpus()) == ["2", "5", "2"]  # the physical ids the trial is shown
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert devices.visible_gpus() == []


def test_trials_running_at_once_hold_different_gpus():
    pool, held, lock = devices.Devices(2, ["0", "1"]), [], threading.Lock()
    barrier = threading.Barrier(2)

    def trial():
        with pool.take() as device:
            with lock:
                held.append(device)
            barrier.wait(timeout=10)  # both trials hold their device at the same moment

    threads = [threading.Thread(target=trial) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(held) == ["0", "1"]


def test_a_trial_sees_only_its_gpu_and_its_threads(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    env = trial_env(4, "3")
    assert env["CUDA_VISIBLE_DEVICES"] == "3" and env["OMP_NUM_THREADS"] == "4"
    assert "CUDA_VISIBLE_DEVICES" not in trial_env(1, None)  # CPU: nothing set
