"""The performance harness runs end to end and reports consistent figures (no wall-clock thresholds here)."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT


def test_benchmark_prints_and_saves_the_ratios(mnist_root, tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "scripts/benchmark.py", "--reps", "1", "--workers", "", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "DATA_DIR": str(mnist_root)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    # What a reader sees is what is saved: each pipeline's printed median and each printed ratio.
    printed = {
        line.split()[0]: float(line.split()[1]) for line in proc.stdout.splitlines() if line[:2] in ("T ", "L ", "R ")
    }
    assert printed == {k: round(report["epochs"][k]["median_s"], 2) for k in ("T", "L", "R")}
    for name in ("T/R", "T/L", "L/R"):
        assert f"{name} = {report['ratios'][name]:.2f} (" in proc.stdout
    assert all(e["runs"] == 1 for e in report["epochs"].values()) and report["peak_rss_mib"] > 0
    # Every pipeline ran at the MLP config's batch: T is the default a user gets.
    config = yaml.safe_load((ROOT / "configs" / "mnist_mlp.yaml").read_text())
    assert (
        report["batch_size"] == config["data"]["init_args"]["batch_size"]
        and f"batch {report['batch_size']}" in proc.stdout
    )
    made = report["provenance"]  # what made the figures: the command, the MNIST files it read, the machine
    assert (
        made["command"].startswith("python scripts/benchmark.py --reps 1") and made["environment"]["hardware"]["cores"]
    )
    assert made["environment"]["data"]["files"]["t10k-labels-idx1-ubyte"] == "27ae3e4e09519cfbb04c329615203637"


def test_startup_phases_cover_each_command_from_spawn_to_exit(mnist_root, tmp_path):
    """Every stamped phase was reached, in order (none negative), and the phases add up to the command's wall time."""
    out = tmp_path / "startup.json"
    command = [sys.executable, "scripts/bench_startup.py", "--reps", "1", "--train-batches", "20", "--json", str(out)]
    proc = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "DATA_DIR": str(mnist_root)}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    phases = ["interpreter", "imports", "parse+build", "data", "to 1st step", "loop", "wind-down", "exit"]
    for name in ("fit (1 epoch)", "test --ckpt_path best"):
        (run,) = report["runs"][name]
        assert list(run) == phases and all(v >= 0 for v in run.values()), run
        row = report["median_s"][name]
        assert row["total"] == pytest.approx(sum(run.values())) and row[
            "start-up (spawn -> 1st step)"
        ] == pytest.approx(sum(run[p] for p in phases[:5]))
    (plain,) = report["runs"]["plain PyTorch (1 epoch)"]
    assert list(plain) == ["interpreter", "imports", "data", "to 1st step", "loop", "exit"]
    assert "start-up (spawn -> 1st step)" in proc.stdout
    assert report["provenance"]["command"].startswith("python scripts/bench_startup.py")


def test_image_folder_benchmark_prints_what_it_saves(fashion_root, tmp_path):
    """A small folder (600 + 1,000 images): the printed medians and ratio are the saved ones, and a cached setup is
    faster than decoding."""
    out = tmp_path / "folder.json"
    proc = subprocess.run(
        [sys.executable, "scripts/bench_image_folder.py", "--images", "600", "--reps", "1", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "DATA_DIR": str(fashion_root)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    median = report["median"]
    assert f"first run (decode + cache)  {median['first_s']:.2f} s" in proc.stdout
    assert f"cached run                  {median['cached_s']:.2f} s" in proc.stdout
    assert f"first/cached = {median['first/cached']:.1f}x" in proc.stdout and median["first/cached"] > 1
    assert report["images"] == 1600 and len(report["runs"]) == 1
    assert report["provenance"]["environment"]["packages"]["torch"]
