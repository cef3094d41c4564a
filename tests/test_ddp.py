"""Two CPU processes with DDP (gloo): the same code path as several GPUs."""

import csv
import os

import pytest

from src.data.mnist import MNISTDataModule
from tests.conftest import only_run, read_scalars, run_cli


class CountingMNIST(MNISTDataModule):
    """MNIST that appends its process id to `marker` each time prepare_data runs."""

    def __init__(self, marker: str = "", **kwargs):
        super().__init__(**kwargs)
        self.marker = marker

    def prepare_data(self) -> None:
        with open(self.marker, "a") as f:
            f.write(f"{os.getpid()}\n")
        super().prepare_data()


DDP = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]


@pytest.mark.slow
def test_two_process_fit_and_test_score_every_image_exactly_once(mnist_root, tmp_path):
    logs = ["--trainer.logger.init_args.save_dir", str(tmp_path)]
    marker = tmp_path / "prepare_data.log"
    proc = run_cli(
        "fit",
        "--config",
        "configs/mnist_mlp.yaml",
        "--trainer.max_epochs",
        "1",
        *DDP,
        *logs,
        "--data",
        "tests.test_ddp.CountingMNIST",
        "--data.init_args.marker",
        str(marker),
        data_dir=mnist_root,
    )
    assert "sync_dist=True" not in proc.stdout + proc.stderr  # the epoch values are logged with sync_dist=True
    assert len(marker.read_text().splitlines()) == 1  # one node: prepare_data ran on one of the two processes
    run = only_run(tmp_path / "mnist_mlp")  # rank 0 logs alone: exactly one run directory
    fit = read_scalars(run)
    # Sums over both ranks (torchmetrics syncs them): the 55,000 train images once, the 5,000 val images once.
    assert fit["train/samples"][-1][1] == 55_000 and fit["val/samples"][-1][1] == 5_000

    run_cli("test", "--config", "configs/mnist_mlp.yaml", "--ckpt_path", "best", *DDP, *logs, data_dir=mnist_root)
    run_cli(
        "test",
        "--config",
        "configs/mnist_mlp.yaml",
        "--ckpt_path",
        "best",
        "--trainer.accelerator",
        "cpu",
        *logs,
        data_dir=mnist_root,
    )
    two, one = read_scalars(run / "test_0"), read_scalars(run / "test_1")
    assert two["test/samples"][-1][1] == one["test/samples"][-1][1] == 10_000
    assert abs(two["test/acc"][-1][1] - one["test/acc"][-1][1]) < 1e-6

    # predict: each rank predicts its share, rank 0 writes every image once, in order, as one process would.
    run_cli("predict", "--config", "configs/mnist_mlp.yaml", "--ckpt_path", "best", *DDP, *logs, data_dir=mnist_root)
    run_cli(
        "predict",
        "--config",
        "configs/mnist_mlp.yaml",
        "--ckpt_path",
        "best",
        "--trainer.accelerator",
        "cpu",
        *logs,
        data_dir=mnist_root,
    )
    two, one = (list(csv.DictReader(open(run / f"predict_{k}" / "predictions.csv"))) for k in (0, 1))
    assert [int(r["index"]) for r in two] == list(range(10_000))
    assert [r["predicted"] for r in two] == [r["predicted"] for r in one]
