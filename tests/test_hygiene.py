"""Run hygiene: no phantom runs, typos are errors, extending a finished schedule is refused before anything changes."""

import os
import signal
import subprocess
import sys
import time

import pytest

from src.data.mnist import MNISTDataModule
from tests.conftest import ROOT, ctrl_c_works, only_run, run_cli

SHORT = [
    "--trainer.limit_train_batches",
    "20",
    "--trainer.limit_val_batches",
    "2",
    "--trainer.enable_progress_bar",
    "false",
]


class SlowMNIST(MNISTDataModule):
    """MNIST whose setup announces itself in `marker`, then takes a minute: time for a Ctrl-C to land in it."""

    def __init__(self, marker: str = "", **kwargs):
        super().__init__(**kwargs)
        self.marker = marker

    def setup(self, stage: str) -> None:
        open(self.marker, "w").close()
        time.sleep(60)


def versions(root) -> list[str]:
    return sorted(p.name for p in root.glob("*/version_*"))


def test_a_fit_that_fails_in_setup_leaves_no_run(tmp_path):
    proc = run_cli(
        "fit",
        "--config",
        "configs/mnist_mlp.yaml",
        "--trainer.logger.init_args.save_dir",
        str(tmp_path),
        "--data.init_args.data_dir",
        str(tmp_path / "nothing"),
        "--data.init_args.download",
        "false",
        check=False,
    )
    assert proc.returncode == 2 and "MNIST not found" in proc.stderr.strip().splitlines()[-1]
    assert versions(tmp_path) == []


def test_ctrl_c_during_setup_is_prompt_and_leaves_no_run(tmp_path):
    marker = tmp_path / "in_setup"
    args = [
        sys.executable,
        "-m",
        "src.cli",
        "fit",
        "--config",
        "configs/mnist_mlp.yaml",
        "--trainer.logger.init_args.save_dir",
        str(tmp_path / "logs"),
        "--data",
        "tests.test_hygiene.SlowMNIST",
        "--data.init_args.marker",
        str(marker),
    ]
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_works,
    )
    deadline = time.time() + 120
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    start = time.time()
    out, err = proc.communicate(timeout=60)
    assert time.time() - start < 10 and proc.returncode == 1  # Lightning's exit status for Ctrl-C
    assert "Detected KeyboardInterrupt" in err and "Traceback" not in err  # Lightning logs on stderr
    assert versions(tmp_path / "logs") == []


def test_an_abbreviated_option_is_an_error_not_a_guess(tmp_path):
    proc = run_cli(
        "fit",
        "--config",
        "configs/mnist_mlp.yaml",
        "--trainer.max_epoch",
        "3",
        "--trainer.logger.init_args.save_dir",
        str(tmp_path),
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: unrecognized arguments: --trainer.max_epoch 3")
    assert not tmp_path.joinpath("mnist_mlp").exists()


@pytest.mark.slow
def test_training_a_one_cycle_run_longer_is_refused_before_anything_changes(mnist_root, tmp_path):
    """The schedule was planned for the first run's steps; resuming with more epochs would run past its end."""
    logs = ["--trainer.logger.init_args.save_dir", str(tmp_path)]
    run_cli(
        "fit", "--config", "configs/mnist_mlp.yaml", "--trainer.max_epochs", "1", *SHORT, *logs, data_dir=mnist_root
    )
    run = only_run(tmp_path / "mnist_mlp")
    before = {p.relative_to(run): p.stat().st_mtime_ns for p in run.rglob("*")}
    proc = run_cli(
        "fit",
        "--config",
        "configs/mnist_mlp.yaml",
        "--trainer.max_epochs",
        "2",
        *SHORT,
        *logs,
        "--ckpt_path",
        "last",
        data_dir=mnist_root,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: this run's learning-rate schedule was planned for 20 steps (its first fit) and cannot go on to 40: "
        "start a new run with the longer schedule (leave out --ckpt_path), or resume with the run's own max_epochs"
    )
    assert {p.relative_to(run): p.stat().st_mtime_ns for p in run.rglob("*")} == before


def test_fast_dev_run_writes_nothing(mnist_root, tmp_path, monkeypatch):
    """A fast_dev_run checks that the code runs and keeps nothing, wherever it is started from: no run folder, and
    no checkpoints/last.ckpt (Lightning 2.6's ModelCheckpoint saves one when training ends, logger or not)."""
    from src.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(mnist_root))
    cli = main(
        [
            "fit",
            "--config",
            str(ROOT / "configs" / "mnist_mlp.yaml"),
            "--trainer.fast_dev_run",
            "true",
            "--trainer.enable_progress_bar",
            "false",
        ]
    )
    assert cli.trainer.global_step == 1 and cli.trainer.state.finished  # it trained its one batch
    assert list(tmp_path.rglob("*")) == []
