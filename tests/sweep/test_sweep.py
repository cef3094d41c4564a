"""python -m src.sweep end to end on real MNIST with tiny limits: the table equals the runs' own event files,
a stopped sweep resumes to exactly the grid, two workers overlap and agree with one, bad input is one line."""

import csv
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from src.runs import read_scalars
from tests.conftest import REAL_DATA, ROOT

TINY = "overrides: {trainer.max_epochs: 1, trainer.limit_train_batches: 4, trainer.limit_val_batches: 2, trainer.limit_test_batches: 2}\n"
GRID = ("base: configs/mnist_mlp.yaml\n" + TINY +
        "params:\n  model.init_args.net.init_args.hidden: [[16], [32]]\nseeds: [0, 1]\nsampler: grid\n")


def sweep(tmp_path: Path, text: str, *args: str, name: str = "grid", wait: bool = True):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    cmd = [sys.executable, "-m", "src.sweep", str(path), "--save-dir", str(tmp_path / "logs"), "--threads", "1", *args]
    env = {**os.environ, "DATA_DIR": str(REAL_DATA), "PYTHONUNBUFFERED": "1"}
    if not wait:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def table(folder: Path) -> list[dict]:
    return list(csv.DictReader(open(folder / "results.csv")))


def fit_runs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*/version_*") if (p / "checkpoints").is_dir())


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory):
    if not (REAL_DATA / "MNIST" / "raw").is_dir():
        pytest.skip("real MNIST not found; set DATA_DIR")
    tmp = tmp_path_factory.mktemp("sweep")
    proc = sweep(tmp, GRID)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp, proc


@pytest.mark.slow
def test_a_grid_over_seeds_reports_what_its_runs_logged(grid_sweep):
    tmp, proc = grid_sweep
    folder = tmp / "logs" / "grid"
    rows = table(folder)
    assert [r["hidden"] for r in rows] == ["[16]", "[32]"] and all(r["seeds"] == "2" for r in rows)
    assert sorted(p.parent.name for p in fit_runs(folder)) == ["hidden=[16]_seed=0", "hidden=[16]_seed=1",
                                                               "hidden=[32]_seed=0", "hidden=[32]_seed=1"]
    for row in rows:  # mean and std over the two seeds, recomputed from each run's own event files
        runs = [next((folder / f"hidden={row['hidden']}_seed={s}").glob("version_*")) for s in (0, 1)]
        best = [read_scalars(r)["val/acc_best"][-1][1] for r in runs]
        test = [read_scalars(next(r.glob("test_*")))["test/acc"][-1][1] for r in runs]
        assert float(row["objective_mean"]) == pytest.approx(statistics.fmean(best), abs=1e-6)
        assert float(row["objective_std"]) == pytest.approx(statistics.stdev(best), abs=1e-6)
        assert float(row["test_acc_mean"]) == pytest.approx(statistics.fmean(test), abs=1e-6)
        assert int(row["params"]) == int(read_scalars(runs[0])["num_params"][0][1])
    for png in ("curves.png", "objective_hidden.png"):
        data = (folder / png).read_bytes()
        assert data[:4] == b"\x89PNG" and len(data) > 10_000
    assert "| [16] | 12," in (folder / "results.md").read_text()  # 784-16-10 with batchnorm: 12,762 parameters


@pytest.mark.slow
def test_running_again_resumes_without_repeating_a_point(grid_sweep, tmp_path):
    """SIGTERM after the first trial finished; the same command again: exactly grid x seeds fit runs, a full table;
    a third run trains nothing. The other sweep (same file) agrees on every number: runs are reproducible."""
    proc = sweep(tmp_path, GRID, wait=False)
    deadline = time.time() + 300
    import optuna

    db = tmp_path / "logs" / "grid" / "optuna.db"
    def finished() -> bool:
        try:
            study = optuna.load_study(study_name="grid", storage=f"sqlite:///{db}")
        except KeyError:  # the study is not created yet
            return False
        return any(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False))

    while time.time() < deadline and not (db.exists() and finished()):  # until the first trial is recorded finished
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "run the same command again to resume" in err
    again = sweep(tmp_path, GRID)
    assert again.returncode == 0, again.stderr[-3000:]
    folder = tmp_path / "logs" / "grid"
    assert len(fit_runs(folder)) == 4 and len({p.parent.name for p in fit_runs(folder)}) == 4  # each pair once
    before = set(fit_runs(folder))
    assert sweep(tmp_path, GRID).returncode == 0 and set(fit_runs(folder)) == before
    reference = table(grid_sweep[0] / "logs" / "grid")
    assert [(r["hidden"], r["objective_mean"], r["test_acc_mean"]) for r in table(folder)] == \
           [(r["hidden"], r["objective_mean"], r["test_acc_mean"]) for r in reference]


@pytest.mark.slow
def test_two_workers_run_trials_at_once_and_agree_with_one(grid_sweep, tmp_path):
    proc = sweep(tmp_path, GRID, "--workers", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    import optuna

    study = optuna.load_study(study_name="grid", storage=f"sqlite:///{tmp_path / 'logs' / 'grid' / 'optuna.db'}")
    spans = sorted((r["start"], r["end"]) for t in study.trials if t.state.name == "COMPLETE" for r in t.user_attrs["runs"])
    assert len(spans) == 4 and any(a[1] > b[0] for a, b in zip(spans, spans[1:]))  # some trials overlapped in time
    for mine, ref in zip(table(tmp_path / "logs" / "grid"), table(grid_sweep[0] / "logs" / "grid")):
        for key in ("objective_mean", "objective_std", "test_acc_mean", "test_acc_std"):
            assert float(mine[key]) == pytest.approx(float(ref[key]), abs=1e-6)


def bad(tmp_path, text, *args, name="bad") -> str:
    proc = sweep(tmp_path, text, *args, name=name)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and lines and lines[-1].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    return lines[-1]


def test_bad_sweeps_are_one_line_before_any_trial(tmp_path):
    head = "base: configs/mnist_mlp.yaml\n" + TINY
    assert "Option 'hiden' is not accepted" in bad(tmp_path, head + "params:\n  model.init_args.net.init_args.hiden: [[8]]\n")
    assert "a distribution, which sampler: grid cannot enumerate" in bad(
        tmp_path, head + "params:\n  model.init_args.optimizer.init_args.lr: {low: 0.001, high: 0.1, log: true}\n")
    assert "has no values" in bad(tmp_path, head + "params:\n  model.init_args.net.init_args.hidden: []\n")
    assert "unknown sampler 'bayes'" in bad(tmp_path, head + "params:\n  trainer.max_epochs: [1]\nsampler: bayes\n")
    assert "--workers must be at least 1" in bad(tmp_path, GRID, "--workers", "0")
    assert "cannot open the storage" in bad(tmp_path, GRID, "--storage", "postgresql://nobody@127.0.0.1:1/none")
    assert not list((tmp_path / "logs").glob("*/*/version_*"))  # no trial ran


def test_a_changed_search_space_needs_a_new_name(tmp_path):
    (tmp_path / "logs").mkdir()
    first = GRID.replace("[[16], [32]]", "[[8]]").replace("seeds: [0, 1]", "seeds: [0]")
    sweep(tmp_path, first, "--report-only")  # creates the study (and reports that nothing has finished)
    assert "with a different search space already exists" in bad(tmp_path, GRID, "--report-only", name="grid")


SWEEPS = sorted((ROOT / "configs" / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_every_sweep_file_parses_and_every_point_instantiates(path, tmp_path, monkeypatch):
    from src.sweep.__main__ import validate
    from src.sweep.spec import load

    monkeypatch.chdir(ROOT)
    sweep = load(path)
    assert sweep.name == path.stem and len(sweep.grid()) >= 2 and len(sweep.seeds) >= 3
    validate(sweep)  # each point through the CLI's parser, as the command does before its first trial
