import os
import time

import pytest
import torch

from src.errors import UsageError
from src.runs import fit_runs, latest_checkpoint, next_free, next_version, resolve_checkpoint, run_of, run_suffix


def test_run_suffix_names_what_the_command_line_changed():
    args = ["fit", "--config", "configs/mnist_mlp.yaml", "--model.init_args.optimizer.init_args.lr", "0.01",
            "--model.init_args.net.init_args.hidden", "[128, 64]", "--trainer.max_epochs=3",
            "--trainer.logger.init_args.save_dir", "/tmp/x", "--trainer.accelerator", "cpu"]
    assert run_suffix(args) == "_lr=0.01_hidden=[128,64]_max_epochs=3"
    assert run_suffix(["fit", "--config", "configs/mnist_mlp.yaml"]) == ""


def _run(root, name, ckpts=("last.ckpt",)):
    (root / name / "checkpoints").mkdir(parents=True)
    for c in ckpts:
        torch.save({"state_dict": {}, "callbacks": {}}, root / name / "checkpoints" / c)
    return root / name


def test_versions_with_suffixes_are_ordered_by_number(tmp_path):
    _run(tmp_path, "version_2_lr=0.1")
    _run(tmp_path, "version_10")
    (tmp_path / "version_11").mkdir()  # no checkpoint: an aborted run is never "the newest run"
    assert [p.name for p in fit_runs(tmp_path)] == ["version_2_lr=0.1", "version_10"]
    assert next_version(tmp_path) == 12
    assert run_of(tmp_path / "version_2_lr=0.1" / "checkpoints" / "last.ckpt") == (tmp_path / "version_2_lr=0.1").resolve()


def test_last_is_the_newer_of_last_and_interrupted(tmp_path):
    run = _run(tmp_path, "version_0", ("last.ckpt", "interrupted.ckpt"))
    old = time.time() - 100
    os.utime(run / "checkpoints" / "last.ckpt", (old, old))
    assert latest_checkpoint(run).name == "interrupted.ckpt"
    assert resolve_checkpoint("last", tmp_path, "").name == "interrupted.ckpt"


def test_best_without_a_recorded_best_is_a_clear_error(tmp_path):
    _run(tmp_path, "version_0")
    with pytest.raises(UsageError, match="records no best checkpoint"):
        resolve_checkpoint("best", tmp_path, "")


def test_next_free_counts_up(tmp_path):
    (tmp_path / "test_0").mkdir()
    assert next_free(tmp_path, "test") == "test_1"
