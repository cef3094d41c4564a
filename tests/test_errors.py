"""The machine's faults as one line (src/errors.py): a read-only or full folder, a full $TMPDIR, no logger at all,
an image too large to decode; each exit status 2 with nothing on disk changed, or, where nothing needs writing
there, the command simply working."""

import subprocess
import tempfile
from pathlib import Path

import pytest
from PIL import Image

from src.export import main as export_main
from src.run.layout import Run
from tests.conftest import only_run
from tests.test_reliability import cli_error, fit


def listing(folder: Path) -> list[tuple]:
    """Every entry under folder, each file with its size and mtime (a folder's own mtime moves when an entry a
    refused command made is taken back: its contents are what must not change)."""
    return sorted(
        (str(p.relative_to(folder)),) + ((p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else ())
        for p in folder.rglob("*")
    )


def tmpfs(folder: Path, size: str) -> None:
    """A small tmpfs mounted at folder: a real read-only or full file system (root can write anywhere else)."""
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip() or 'not root'})")


@pytest.fixture
def read_only_run(tmp_path, mnist_root, monkeypatch):
    """A finished run (one short epoch) on a tmpfs that is then remounted read-only."""
    monkeypatch.setenv("DATA_DIR", str(mnist_root))
    logs = tmp_path / "logs"
    tmpfs(logs, "64m")
    try:
        fit(tmp_path, "--trainer.max_epochs", "1", save_dir=logs)
        subprocess.run(["mount", "-o", "remount,ro", str(logs)], check=True)
        yield logs
    finally:
        subprocess.run(["umount", "-l", str(logs)])


EVERY_COMMAND = {
    "fit a new run": ["fit", "--trainer.max_epochs", "2"],
    "resume": ["fit", "--ckpt_path", "last", "--trainer.max_epochs", "2"],
    "test": ["test", "--ckpt_path", "best"],
    "validate": ["validate", "--ckpt_path", "best"],
    "predict": ["predict", "--ckpt_path", "best"],
}


@pytest.mark.parametrize("command", list(EVERY_COMMAND) + ["export"])
def test_a_read_only_log_folder_is_one_line_for_every_command(read_only_run, capfd, command):
    before = listing(read_only_run)
    config = ["--config", "configs/mnist_mlp.yaml", "--trainer.logger.init_args.save_dir", str(read_only_run)]
    if command == "export":
        capfd.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            export_main([*config, "--ckpt_path", "best", "--format", "onnx"])
        assert exit_info.value.code == 2
        line = capfd.readouterr().err.strip().splitlines()[-1]
    else:
        line = cli_error(
            capfd,
            EVERY_COMMAND[command][0],
            *config,
            *EVERY_COMMAND[command][1:],
            "--trainer.limit_train_batches",
            "2",
            "--trainer.limit_val_batches",
            "2",
        )
    assert "Read-only file system" in line or "cannot be written" in line, line
    assert str(read_only_run) in line and "--trainer.logger.init_args.save_dir" in line
    assert listing(read_only_run) == before


def test_a_full_tmpdir_costs_nothing(tmp_path, mnist_root, monkeypatch):
    """No command writes through $TMPDIR (checkpoints are written beside themselves: src/run/checkpoints.py), so fit and
    test on a machine whose $TMPDIR is full work as anywhere else."""
    full = tmp_path / "tmp"
    tmpfs(full, "64k")
    try:
        with open(full / "fill", "wb") as f:
            with pytest.raises(OSError):
                f.write(b"\0" * 1_000_000)
                f.flush()
        monkeypatch.setenv("TMPDIR", str(full))
        monkeypatch.setattr(tempfile, "tempdir", None)  # tempfile caches the folder it chose
        monkeypatch.setenv("DATA_DIR", str(mnist_root))
        fit(tmp_path, "--trainer.max_epochs", "1")
        run = only_run(tmp_path / "mnist_mlp")
        fit_logs = listing(run)
        from src.cli import main

        main(
            [
                "test",
                "--config",
                "configs/mnist_mlp.yaml",
                "--trainer.logger.init_args.save_dir",
                str(tmp_path),
                "--ckpt_path",
                "best",
                "--trainer.enable_progress_bar",
                "false",
            ]
        )
        assert Run(run).metrics("test_0")["metrics"]["test/acc"] > 0.8
        assert all(entry in listing(run) for entry in fit_logs)
    finally:
        subprocess.run(["umount", "-l", str(full)])


def test_no_logger_at_all_trains_and_tests_the_best_checkpoint(tmp_path, mnist_root, monkeypatch):
    """logger false: the run folder still holds its checkpoints, numbers and test report (the learning-rate monitor,
    which logs only to a logger, is left out), and test --ckpt_path best finds them."""
    monkeypatch.setenv("DATA_DIR", str(mnist_root))
    monkeypatch.chdir(tmp_path)
    repo = Path(__file__).resolve().parent.parent
    from src.cli import main

    args = ["--config", str(repo / "configs/mnist_mlp.yaml"), "--trainer.logger", "false"]
    main(
        [
            "fit",
            *args,
            "--trainer.max_epochs",
            "1",
            "--trainer.limit_train_batches",
            "30",
            "--trainer.limit_val_batches",
            "2",
            "--trainer.enable_progress_bar",
            "false",
        ]
    )
    run = only_run(tmp_path / "lightning_logs" / "mnist_mlp")
    assert {p.name for p in (run / "checkpoints").iterdir()} >= {"last.ckpt"} and not list(run.glob("events.*"))
    main(["test", *args, "--ckpt_path", "best", "--trainer.enable_progress_bar", "false"])
    assert Run(run).metrics("test_0")["metrics"]["test/acc"] > 0.8
    assert (run / "test_0" / "test_report" / "per_class.csv").is_file()  # in the run, as with a logger
    assert [p.name for p in tmp_path.iterdir()] == ["lightning_logs"]  # not into the working directory


def test_predicting_a_400_megapixel_image_is_one_line(tmp_path, mnist_root, monkeypatch, capfd):
    monkeypatch.setenv("DATA_DIR", str(mnist_root))
    fit(tmp_path, "--trainer.max_epochs", "1")
    images = tmp_path / "images"
    images.mkdir()
    Image.new("L", (20_000, 20_000)).save(images / "huge.png")  # 0.4 MB on disk, 400 MB decoded
    before = listing(tmp_path / "mnist_mlp")
    line = cli_error(
        capfd,
        "predict",
        "--config",
        "configs/mnist_mlp.yaml",
        "--trainer.logger.init_args.save_dir",
        str(tmp_path),
        "--ckpt_path",
        "best",
        "--data.init_args.predict_path",
        str(images),
    )
    assert f"cannot read the image {images / 'huge.png'}" in line and "DecompressionBombError" in line
    assert listing(tmp_path / "mnist_mlp") == before


KILLED_MID_WRITE = """
import sys, time, torch
from src.run.checkpoints import AtomicCheckpointIO
save = torch.save
def half_then_hang(obj, f):  # the new checkpoint half written, then the process is killed
    f.write(b"PK\\x03\\x04 half")
    f.flush()
    print("writing", flush=True)
    time.sleep(60)
torch.save = half_then_hang
AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.zeros(3)}}, sys.argv[1])
"""


def test_a_checkpoint_write_killed_midway_leaves_the_previous_file_loadable(tmp_path):
    import signal
    import sys

    import torch

    from src.run.checkpoints import AtomicCheckpointIO

    path = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(3)}}, path)
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_MID_WRITE, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert child.stdout.readline().strip() == "writing"  # blocked inside the write: SIGKILL it there
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert torch.equal(torch.load(path, weights_only=True)["state_dict"]["w"], torch.ones(3))


def test_a_checkpoint_that_does_not_fit_on_the_disk_is_one_line_and_the_old_one_stays(tmp_path):
    import torch

    from src.errors import UsageError
    from src.run.checkpoints import AtomicCheckpointIO

    disk = tmp_path / "disk"
    tmpfs(disk, "256k")
    try:
        path = disk / "checkpoints" / "last.ckpt"
        AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(3)}}, path)
        with pytest.raises(UsageError, match=r"cannot write the checkpoint .*last.ckpt \(No space left on device\)"):
            AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.zeros(1_000_000)}}, path)  # 4 MB
        assert torch.equal(torch.load(path, weights_only=True)["state_dict"]["w"], torch.ones(3))
        assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]  # no temp file left
    finally:
        subprocess.run(["umount", "-l", str(disk)])
