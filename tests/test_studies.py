"""Each study end to end on real MNIST with tiny limits: a results table read from the event files, and plots."""

import re
import subprocess
import sys

import pytest

from src.runs import read_scalars
from tests.conftest import ROOT

TINY = ["--epochs", "1", "--limit-batches", "0.01"]


def study(script: str, out, mnist_root, *extra) -> list[list[str]]:
    proc = subprocess.run([sys.executable, f"scripts/{script}", "--out", str(out), "--data-dir", str(mnist_root), *TINY, *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for png in ("loss.png", "accuracy.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    table = [line for line in (out / "results.md").read_text().splitlines() if line.startswith("| ")][1:]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in table]


def check_against_events(rows, logs):
    """Every row's best val acc and test acc equal the values in that run's event files."""
    for label, _, params, best_val, test_acc, epochs, _ in rows:
        run = next((logs / label).glob("version_*"))
        fit, test = read_scalars(run), read_scalars(next(run.glob("test_*")))
        assert float(best_val) == pytest.approx(max(v for _, v in fit["val/acc"]), abs=1e-4)
        assert float(test_acc) == pytest.approx(test["test/acc"][-1][1], abs=1e-4)
        assert int(params.replace(",", "")) == int(fit["num_params"][0][1]) and int(epochs) == len(fit["val/acc"])


@pytest.mark.slow
def test_study_tricks(mnist_root, tmp_path):
    rows = study("study_tricks.py", tmp_path, mnist_root)
    assert len(rows) == 8 and all(r[2] == "50,890" for r in rows)  # 784-64-10, autograd and manual
    check_against_events(rows, tmp_path / "logs")


@pytest.mark.slow
def test_study_width(mnist_root, tmp_path):
    rows = study("study_width.py", tmp_path, mnist_root)
    assert [r[2] for r in rows] == ["25,450", "50,890", "101,770"]  # 784-w-10 for w = 32, 64, 128
    check_against_events(rows, tmp_path / "logs")


@pytest.mark.slow
def test_study_depth_both_parts_on_mnist(mnist_root, tmp_path):
    proc_rows = study("study_depth.py", tmp_path / "part3", mnist_root, "--part", "3")
    assert [r[0] for r in proc_rows] == ["1x64", "2x59", "10x64"]  # 784-59-59-10: 50,455 vs 50,890
    assert proc_rows[1][2] == "50,455"
    rows = study("study_depth.py", tmp_path / "part4", mnist_root, "--part", "4", "--dataset", "mnist")
    assert len(rows) == 24 and len({r[0] for r in rows}) == 24
    check_against_events(rows[:3], tmp_path / "part4" / "logs")


@pytest.mark.slow
def test_study_cnn_vs_mlp_marks_absent_data(mnist_root, tmp_path):
    # A data folder of the test's own with MNIST linked in: the attempt to fetch the absent FashionMNIST must not
    # touch DATA_DIR (where, with a network, it would download).
    data = tmp_path / "data"
    data.mkdir()
    (data / "MNIST").symlink_to(mnist_root / "MNIST")
    rows = study("study_cnn_vs_mlp.py", tmp_path, data, "--datasets", "mnist,fashion_mnist")
    assert [r[0] for r in rows] == ["mnist mlp", "mnist cnn", "fashion_mnist mlp", "fashion_mnist cnn"]
    assert rows[2][2].startswith("not run") and rows[3][2].startswith("not run")  # no FashionMNIST copy here
    assert re.fullmatch(r"0\.\d{4}", rows[1][4])
