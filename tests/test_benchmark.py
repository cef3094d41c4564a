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
    proc = subprocess.run([sys.executable, "scripts/benchmark.py", "--reps", "1", "--workers", "", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "DATA_DIR": str(mnist_root)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {line.split()[0] for line in proc.stdout.splitlines() if line[:2] in ("T ", "L ", "R ")}
    assert rows == {"T", "L", "R"}
    assert "T/R = " in proc.stdout and "T/L = " in proc.stdout and "L/R = " in proc.stdout
    report = json.loads(out.read_text())
    epochs, ratios = report["epochs"], report["ratios"]
    assert set(epochs) == {"T", "L", "R"} and all(e["runs"] == 1 for e in epochs.values())
    for e in epochs.values():  # 55,000 training images per epoch; one run: median = min = max
        assert e["samples_per_s"] == pytest.approx(55_000 / e["median_s"]) and e["min_s"] == e["median_s"] == e["max_s"]
    assert ratios["T/R"] == pytest.approx(epochs["T"]["median_s"] / epochs["R"]["median_s"])
    assert ratios["T/R"] == pytest.approx(ratios["T/L"] * ratios["L/R"])
    assert report["peak_rss_mib"] > 0
    # Every pipeline ran at the MLP config's batch: T is the default a user gets.
    config = yaml.safe_load((ROOT / "configs" / "mnist_mlp.yaml").read_text())
    assert report["batch_size"] == config["data"]["init_args"]["batch_size"] and f"batch {report['batch_size']}" in proc.stdout
