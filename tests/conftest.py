"""Shared fixtures: the real MNIST folder, and small data sets written in the official on-disk formats."""

import os
import pickle
import signal
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets.cifar

from src import forked

ROOT = Path(__file__).resolve().parent.parent
REAL_DATA = Path(os.environ.get("DATA_DIR") or ROOT.parent / "shared" / "datasets")


def pytest_configure(config):
    """Under pytest-xdist (pyproject's `-n auto`: one worker per core) each worker, and every process it starts, gets
    one torch thread unless OMP_NUM_THREADS says otherwise: two workers of two OpenMP threads each on two cores
    spin-wait for each other's cores, and a training test then takes four times as long."""
    if os.environ.get("PYTEST_XDIST_WORKER") and "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


def pytest_collection_modifyitems(items):
    """The tests marked slow first, so that the workers start on the longest ones and finish together."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def read_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the TensorBoard event files directly inside log_dir: tag -> [(step, value)]. The tests' own
    reading of what TensorBoard got, to check the project's numbers (metrics.json, reports) against."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars: dict[str, list[tuple[int, float]]] = {}
    for events in sorted(Path(log_dir).glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return scalars


def real_data(folder: str) -> Path:
    """The folder holding the real <folder>/raw IDX files (CI sets DATA_DIR to it); the test skips where it is
    absent."""
    if not (REAL_DATA / folder / "raw" / "train-images-idx3-ubyte").is_file():
        pytest.skip(f"real {folder} not found under {REAL_DATA}; set DATA_DIR to the folder holding {folder}/raw")
    return REAL_DATA


@pytest.fixture
def mnist_root() -> Path:
    return real_data("MNIST")


@pytest.fixture
def fashion_root() -> Path:
    return real_data("FashionMNIST")


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array in the IDX format of LeCun's MNIST files (big-endian header, then the bytes)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def make_idx_dataset(root: Path, folder: str, n_train: int, n_test: int, seed: int = 0) -> Path:
    """<root>/<folder>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte with random 28x28 images."""
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n, dtype=np.uint8) % 10)
    return root


def write_image_folder(root: Path, split: str, images: np.ndarray, labels: list[int], classes: list[str]) -> None:
    """uint8 images [N, H, W] (grey) or [N, H, W, 3] as root/split/<class>/<n>.png: ImageFolderDataModule's layout."""
    from PIL import Image

    for n, (x, y) in enumerate(zip(images, labels)):
        folder = root / split / classes[y]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(x).save(folder / f"{n:05d}.png")


def make_cifar10(root: Path, n_per_batch: int, seed: int = 0) -> Path:
    """<root>/cifar-10-batches-py/ in CIFAR-10's python format: pickled dicts of 'data' [n, 3072] uint8
    (channel planes R, G, B, row-major) and b'labels', five train batches, one test batch, batches.meta."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {
            "batch_label": name,
            "labels": [int(v) for v in rng.integers(0, 10, n_per_batch)],
            "data": rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
            "filenames": [f"{name}_{i}.png" for i in range(n_per_batch)],
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {
        "label_names": [
            c for c in ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
        ],
        "num_vis": 3072,
    }
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return root


@pytest.fixture
def no_cifar_md5(monkeypatch):
    """Generated CIFAR files cannot match torchvision's md5 list; skip that check, in tests only."""
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: os.path.isfile(path))


def only_run(root: Path) -> Path:
    """The one run directory under <save_dir>/<config> (named version_0, or version_0_<overrides>)."""
    runs = sorted(p for p in Path(root).iterdir() if p.name.startswith("version_"))
    assert len(runs) == 1, runs
    return runs[0]


def ctrl_c_works() -> None:
    """preexec_fn of a child that a test sends Ctrl-C (SIGINT): a shell starts a background job (pytest &, nohup)
    with SIGINT ignored, children inherit that, and Python then installs no KeyboardInterrupt handler; the child
    gets the default back, as in a terminal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Command:
    """`python -m <module> args...` from the repository root in its own process, forked from a server that imported the
    CLI once (src/forked.py, as sweep trials start) rather than paying a new interpreter's imports; with the methods
    of subprocess.Popen that the tests use."""

    def __init__(self, module: str, args, env: dict[str, str]):
        self.args, self.returncode = [module, *args], None
        self._tmp = tempfile.TemporaryDirectory()
        self._out, self._err = Path(self._tmp.name) / "stdout", Path(self._tmp.name) / "stderr"
        self._proc = forked.start(module, list(args), env, str(self._out), str(self._err), cwd=str(ROOT))

    def send_signal(self, sig: int) -> None:
        os.kill(self._proc.pid, sig)

    def communicate(self, timeout: float = 900) -> tuple[str, str]:
        self._proc.join(timeout)
        if self._proc.exitcode is None:
            self._proc.kill()
            raise AssertionError(f"python -m {' '.join(self.args)} still running after {timeout} s")
        self.returncode = self._proc.exitcode
        out, err = (p.read_text() if p.exists() else "" for p in (self._out, self._err))
        self._tmp.cleanup()
        return out, err

    def finish(self, timeout: float = 900) -> subprocess.CompletedProcess:
        """Wait for the end: -> what subprocess.run returns."""
        out, err = self.communicate(timeout)
        return subprocess.CompletedProcess(self.args, self.returncode, out, err)


def run_cli(
    *args: str, data_dir: Path | None = None, check: bool = True, module: str = "src.cli"
) -> subprocess.CompletedProcess:
    """python -m <module> args... (a Command) to its end; with check, a non-zero exit fails the test and shows the end
    of both streams."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if data_dir is not None:
        env["DATA_DIR"] = str(data_dir)
    proc = Command(module, args, env).finish()
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def fit_then_test_best(config: str, save_dir: Path, data_dir: Path, *extra: str) -> Path:
    """`fit` a config, then `test --ckpt_path best` in a new process, as a user does; -> the run folder."""
    logs = ["--trainer.logger.init_args.save_dir", str(save_dir), *extra]
    run_cli("fit", "--config", config, *logs, data_dir=data_dir)
    run_cli("test", "--config", config, "--ckpt_path", "best", *logs, data_dir=data_dir)
    return only_run(save_dir / Path(config).stem)


@pytest.fixture(scope="session")
def short_mlp_run(tmp_path_factory) -> tuple[Path, Path, str]:
    """One short real-MNIST fit of mnist_mlp in its own process (1 epoch of 30 batches, ~92 % test accuracy),
    shared by the tests that use a trained model: (save_dir, run directory, the fit's stdout)."""
    real_data("MNIST")
    save_dir = tmp_path_factory.mktemp("short_run")
    proc = run_cli(
        "fit",
        "--config",
        "configs/mnist_mlp.yaml",
        "--trainer.logger.init_args.save_dir",
        str(save_dir),
        "--trainer.max_epochs",
        "1",
        "--trainer.limit_train_batches",
        "30",
        data_dir=REAL_DATA,
    )
    return save_dir, only_run(save_dir / "mnist_mlp"), proc.stdout
