"""python -m src.sweep end to end on real MNIST with tiny limits: the table equals the runs' own event files,
a stopped sweep resumes to exactly the grid, two workers overlap and agree with one, bad input is one line."""

import csv
import os
import signal
import sqlite3
import statistics
import subprocess
import time
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import REAL_DATA, ROOT, Command, read_scalars

TINY = (
    "overrides: {trainer.max_epochs: 1, trainer.limit_train_batches: 4, trainer.limit_val_batches: 2, "
    "trainer.limit_test_batches: 2}\n"
)
GRID = (
    "base: configs/mnist_mlp.yaml\n"
    + TINY
    + "params:\n  model.init_args.net.init_args.hidden: [[16], [32]]\nseeds: [0, 1]\nsampler: grid\n"
)


def sweep(tmp_path: Path, text: str, *args: str, name: str = "grid", wait: bool = True, timeout: float = 900):
    """python -m src.sweep <the file text> ...: finished (a CompletedProcess), or running (a Command) without wait."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    env = {**os.environ, "DATA_DIR": str(REAL_DATA), "PYTHONUNBUFFERED": "1"}
    command = Command("src.sweep", [str(path), "--save-dir", str(tmp_path / "logs"), "--threads", "1", *args], env)
    return command.finish(timeout) if wait else command


def table(folder: Path) -> list[dict]:
    return list(csv.DictReader(open(folder / "results.csv")))


def fit_runs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*/version_*") if (p / "checkpoints").is_dir())


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory):
    if not (REAL_DATA / "MNIST" / "raw").is_dir():
        pytest.skip("real MNIST not found; set DATA_DIR")
    tmp = tmp_path_factory.mktemp("sweep")
    proc = sweep(tmp, GRID, "--workers", "2")  # two trials at a time; the resume test's single worker must agree
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp, proc


@pytest.mark.slow
def test_a_grid_over_seeds_reports_what_its_runs_logged(grid_sweep):
    tmp, proc = grid_sweep
    folder = tmp / "logs" / "grid"
    rows = table(folder)
    assert [r["hidden"] for r in rows] == ["[16]", "[32]"] and all(r["seeds"] == "2" for r in rows)
    assert sorted(p.parent.name for p in fit_runs(folder)) == [
        "hidden=[16]_seed=0",
        "hidden=[16]_seed=1",
        "hidden=[32]_seed=0",
        "hidden=[32]_seed=1",
    ]
    for row in rows:  # mean and std over the two seeds, recomputed from each run's own event files
        runs = [next((folder / f"hidden={row['hidden']}_seed={s}").glob("version_*")) for s in (0, 1)]
        best = [read_scalars(r)["val/acc_best"][-1][1] for r in runs]
        test = [read_scalars(next(r.glob("test_*")))["test/acc"][-1][1] for r in runs]
        assert float(row["objective_mean"]) == pytest.approx(statistics.fmean(best), abs=1e-6)
        assert float(row["objective_std"]) == pytest.approx(statistics.stdev(best), abs=1e-6)
        assert float(row["test_acc_mean"]) == pytest.approx(statistics.fmean(test), abs=1e-6)
        h = int(row["hidden"].strip("[]"))  # 784-h-10 with batchnorm: weights, biases, BN's scale and shift
        assert int(row["params"]) == 784 * h + h + 2 * h + h * 10 + 10
    per_seed = list(csv.DictReader(open(folder / "results_per_seed.csv")))
    assert [(r["hidden"], r["seed"]) for r in per_seed] == [("[16]", "0"), ("[16]", "1"), ("[32]", "0"), ("[32]", "1")]
    epochs = list(csv.DictReader(open(folder / "epochs_per_seed.csv")))
    assert [(r["hidden"], r["seed"], r["epoch"]) for r in epochs] == [
        (h, s, "1") for h, s in [("[16]", "0"), ("[16]", "1"), ("[32]", "0"), ("[32]", "1")]
    ]
    for row, epoch in zip(per_seed, epochs):  # each run's own numbers, not the means
        run = next((folder / f"hidden={row['hidden']}_seed={row['seed']}").glob("version_*"))
        fit, test = read_scalars(run), read_scalars(next(run.glob("test_*")))
        assert float(row["test_acc"]) == pytest.approx(test["test/acc"][-1][1], abs=1e-7)
        assert float(row["val_acc_best"]) == pytest.approx(fit["val/acc"][-1][1], abs=1e-7)
        assert float(epoch["train_acc"]) == pytest.approx(fit["train/acc"][-1][1], abs=1e-7)
        assert float(epoch["val_loss"]) == pytest.approx(fit["val/loss"][-1][1], abs=1e-7)
        # after the 4th (last) optimizer step; Lightning's logger numbers that step 3, counting from 0
        assert int(epoch["step"]) == fit["val/acc"][-1][0] + 1 == 4
    for png in ("curves.png", "objective_hidden.png"):
        data = (folder / png).read_bytes()
        assert data[:4] == b"\x89PNG" and len(data) > 10_000
    assert "| [16] | 12," in (folder / "results.md").read_text()  # 784-16-10 with batchnorm: 12,762 parameters


@pytest.mark.slow
def test_the_per_seed_rows_carry_provenance_and_rebuild_the_report_alone(grid_sweep, tmp_path):
    """What a committed study is: its two per-seed files. In a folder with nothing else (no storage, no runs),
    --report-only rebuilds the sweep's tables, best point and plots exactly."""
    import json

    from PIL import Image

    folder = grid_sweep[0] / "logs" / "grid"
    per_seed = list(csv.DictReader(open(folder / "results_per_seed.csv")))
    environments = json.loads((folder / "provenance.json").read_text())
    for row in per_seed:
        assert row["provenance"] in environments and len(row["commit"]) == 40 and row["dirty"] in ("True", "False")
        assert row["command"].startswith("python -m src.cli fit --config configs/mnist_mlp.yaml")
        assert f"--seed_everything {row['seed']}" in row["command"]
    assert (
        environments[per_seed[0]["provenance"]]["data"]["files"]["t10k-labels-idx1-ubyte"]
        == "27ae3e4e09519cfbb04c329615203637"
    )  # real MNIST's test labels
    out = tmp_path / "committed"
    out.mkdir()
    for name in ("results_per_seed.csv", "epochs_per_seed.csv"):
        (out / name).write_bytes((folder / name).read_bytes())
    proc = sweep(tmp_path, GRID, "--report-only", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (tmp_path / "logs").exists()  # no storage was created to rebuild it
    for name in ("results.csv", "results.md", "best.yaml"):
        assert (out / name).read_bytes() == (folder / name).read_bytes(), name
    for png in ("curves.png", "objective_hidden.png"):
        assert list(Image.open(out / png).getdata()) == list(Image.open(folder / png).getdata()), png


@pytest.mark.slow
def test_running_again_resumes_without_repeating_a_point(grid_sweep, tmp_path):
    """SIGTERM after the first trial finished; the same command again: exactly grid x seeds fit runs, a full table;
    a third run trains nothing. The fixture's sweep (same file, two workers) agrees on every number: runs are
    reproducible whatever the number of workers."""
    proc = sweep(tmp_path, GRID, wait=False)
    deadline = time.time() + 300
    db = tmp_path / "logs" / "grid" / "optuna.db"

    def finished() -> bool:
        """Read only: opening the file with Optuna would create the tables the sweep may be creating that moment."""
        try:
            with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
                return connection.execute("SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0] > 0
        except sqlite3.OperationalError:  # no tables yet, or the sweep is writing
            return False

    while time.time() < deadline and not (db.exists() and finished()):  # until the first trial is recorded finished
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "run the same command again to resume" in err and "Traceback" not in err
    again = sweep(tmp_path, GRID)
    assert again.returncode == 0, again.stderr[-3000:]
    folder = tmp_path / "logs" / "grid"
    assert len(fit_runs(folder)) == 4 and len({p.parent.name for p in fit_runs(folder)}) == 4  # each pair once
    before = set(fit_runs(folder))
    assert sweep(tmp_path, GRID).returncode == 0 and set(fit_runs(folder)) == before
    reference = table(grid_sweep[0] / "logs" / "grid")  # the same grid, run by two workers at once
    for mine, ref in zip(table(folder), reference, strict=True):
        assert mine["hidden"] == ref["hidden"]
        for key in ("objective_mean", "objective_std", "test_acc_mean", "test_acc_std"):
            assert float(mine[key]) == pytest.approx(float(ref[key]), abs=1e-6)


@pytest.mark.slow
def test_a_sigkilled_sweep_runs_its_lost_trial_again_once(tmp_path):
    """SIGKILL during the last trial: no handler runs and the trial stays RUNNING in the storage. The next command,
    started at once, has nothing to queue; it waits out the lost trial's grace period (it exited 0 at once, the point
    a seed short), fails it by Optuna's heartbeat and runs it again, once: every (point, seed) finished exactly once,
    and the report has both seeds of every point."""
    import optuna

    proc = sweep(tmp_path, GRID, "--stale-after", "2", wait=False)
    db = tmp_path / "logs" / "grid" / "optuna.db"
    deadline = time.time() + 300

    def last_one_running() -> bool:
        try:
            with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
                states = dict(connection.execute("SELECT state, COUNT(*) FROM trials GROUP BY state").fetchall())
            return states.get("COMPLETE") == 3 and states.get("RUNNING") == 1
        except sqlite3.OperationalError:
            return False

    while time.time() < deadline and not (
        db.exists() and last_one_running() and len(list(tmp_path.glob("logs/grid/*/trial_version_*.log"))) == 4
    ):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)  # the trial's own process ends with its sweep (src/forked.py)
    proc.communicate(timeout=60)
    again = sweep(tmp_path, GRID, "--stale-after", "4")  # at once: the lost trial's heartbeat is not stale yet
    assert again.returncode == 0, again.stderr[-3000:]
    assert "waiting for 1 trial(s) another sweep command is running" in again.stderr
    trials = optuna.load_study(study_name="grid", storage=f"sqlite:///{db}").trials
    done = sorted((t.user_attrs["point"], t.user_attrs["seed"]) for t in trials if t.state.name == "COMPLETE")
    assert done == [(0, 0), (0, 1), (1, 0), (1, 1)]
    lost = [t.number for t in trials if t.state.name == "FAIL"]
    retried = [t.system_attrs["failed_trial"] for t in trials if "failed_trial" in t.system_attrs]
    assert len(lost) == 1 and retried == lost  # the lost trial, run again exactly once
    assert all(r["seeds"] == "2" for r in table(tmp_path / "logs" / "grid"))


@pytest.mark.slow
def test_optuna_dashboard_reads_the_sweeps_storage(grid_sweep):
    """README's optuna-dashboard line on the sweep's SQLite file, through the dashboard's HTTP API (no browser)."""
    import io
    import json
    from wsgiref.util import setup_testing_defaults

    from optuna_dashboard import wsgi

    app = wsgi(f"sqlite:///{grid_sweep[0] / 'logs' / 'grid' / 'optuna.db'}")
    environ = {"PATH_INFO": "/api/studies", "wsgi.input": io.BytesIO()}
    setup_testing_defaults(environ)
    status = []
    body = b"".join(app(environ, lambda code, headers, exc_info=None: status.append(code)))
    (study,) = json.loads(body)["study_summaries"]
    assert status == ["200 OK"] and study["study_name"] == "grid" and study["directions"] == ["maximize"]


@pytest.mark.slow
def test_two_workers_run_trials_at_once(grid_sweep):
    """The grid ran with --workers 2: some trials overlapped in time; its numbers equal a single worker's (checked
    against the resumed sweep in test_running_again_resumes_without_repeating_a_point)."""
    import optuna

    db = grid_sweep[0] / "logs" / "grid" / "optuna.db"
    study = optuna.load_study(study_name="grid", storage=f"sqlite:///{db}")
    spans = sorted(
        (r["start"], r["end"]) for t in study.trials if t.state.name == "COMPLETE" for r in t.user_attrs["runs"]
    )
    assert len(spans) == 4 and any(a[1] > b[0] for a, b in zip(spans, spans[1:]))  # some trials overlapped in time


@pytest.mark.slow
def test_a_random_sampler_drawing_one_point_four_times_with_two_workers_runs_four_trials_in_four_folders(tmp_path):
    """A space of one point: every draw is the same (point, seed), two at a time. Each trial claims its own run
    folder and tests its own checkpoint; the report counts the one seed once (repeats are no new sample)."""
    import optuna

    from src.run.layout import Run

    text = (
        GRID.replace("[[16], [32]]", "[[16]]")
        .replace("seeds: [0, 1]", "seeds: [0]")
        .replace("sampler: grid", "sampler: random")
        + "trials: 4\n"
    )
    proc = sweep(tmp_path, text, "--workers", "2", name="same")
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = tmp_path / "logs" / "same"
    trials = optuna.load_study(study_name="same", storage=f"sqlite:///{folder / 'optuna.db'}").trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    runs = [Path(t.user_attrs["runs"][0]["run"]) for t in trials]
    assert len(set(runs)) == 4 and sorted(runs) == fit_runs(folder)
    for run in runs:  # each run tested its own best checkpoint, once
        (evaluation,) = Run(run).evaluations("test")
        assert Run(run).metrics(evaluation)["checkpoint"].startswith(str(run / "checkpoints"))
    (row,) = table(folder)
    assert row["seeds"] == "1"
    assert len(list(csv.DictReader(open(folder / "results_per_seed.csv")))) == 1


def bad(tmp_path, text, *args, name="bad") -> str:
    proc = sweep(tmp_path, text, *args, name=name)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and lines and lines[-1].startswith("error: ") and "Traceback" not in proc.stderr, (
        proc.stderr
    )
    return lines[-1]


def test_command_line_overrides_make_a_quick_study_of_its_own_name(tmp_path):
    """A committed study's file, run quickly: fixed overrides and seeds after the file, under a new --name."""
    assert "add --name grid_quick" in bad(tmp_path, GRID, "--trainer.limit_train_batches", "2", name="grid")
    assert "add --name grid_quick" in bad(tmp_path, GRID, "--seeds", "0", name="grid")
    assert "unrecognized arguments: --trainer.limit_train_batchs" in bad(
        tmp_path, GRID, "--name", "quick", "--trainer.limit_train_batchs", "2", name="grid"
    )  # validated like the file's
    assert not (tmp_path / "logs" / "quick").exists()  # refused before any study was made
    proc = sweep(tmp_path, GRID, "--name", "quick", "--seeds", "0", "--trainer.limit_train_batches=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = tmp_path / "logs" / "quick"
    assert not (tmp_path / "logs" / "grid").exists()
    per_seed = list(csv.DictReader(open(folder / "results_per_seed.csv")))
    assert [(r["hidden"], r["seed"]) for r in per_seed] == [("[16]", "0"), ("[32]", "0")]
    from src.run.layout import Run

    assert [Run(p).metrics()["steps"] for p in fit_runs(folder)] == [2, 2]  # the override, not the file's 4


def test_bad_sweeps_are_one_line_before_any_trial(tmp_path):
    head = "base: configs/mnist_mlp.yaml\n" + TINY
    assert "Option 'hiden' is not accepted" in bad(
        tmp_path, head + "params:\n  model.init_args.net.init_args.hiden: [[8]]\n"
    )
    assert "a distribution, which sampler: grid cannot enumerate" in bad(
        tmp_path, head + "params:\n  model.init_args.optimizer.init_args.lr: {low: 0.001, high: 0.1, log: true}\n"
    )
    assert "has no values" in bad(tmp_path, head + "params:\n  model.init_args.net.init_args.hidden: []\n")
    assert "unknown sampler 'bayes'" in bad(tmp_path, head + "params:\n  trainer.max_epochs: [1]\nsampler: bayes\n")
    assert "--workers must be at least 1" in bad(tmp_path, GRID, "--workers", "0")
    assert "cannot open the storage" in bad(tmp_path, GRID, "--storage", "postgresql://nobody@127.0.0.1:1/none")
    assert "so it is a group: give it a list of named settings" in bad(
        tmp_path, head + "params:\n  net: [configs/mnist_cnn.yaml]\n"
    )
    assert "sets 'hidden', which is neither config nor a dotted CLI key" in bad(
        tmp_path, head + "params:\n  net: [{name: a, hidden: [8]}]\n"
    )
    assert not list((tmp_path / "logs").glob("*/*/version_*"))  # no trial ran


def test_a_sweep_can_test_the_last_checkpoint(tmp_path, monkeypatch):
    """test_ckpt: last (seed 004's protocol: the last epoch's model) reaches the trial's test command; anything else
    but best and last is refused in one line."""
    from src.sweep import trials
    from src.sweep.spec import load

    path = tmp_path / "last.yaml"
    path.write_text(GRID + "test_ckpt: last\n")
    sweep_file = load(path)
    commands = []
    monkeypatch.setattr(trials, "_run", lambda cmds, env, log, report=None: commands.extend(cmds) or 1)
    trials.run_trial(sweep_file, sweep_file.grid()[0], 0, tmp_path / "logs", threads=1)
    assert [c[0] for c in commands] == ["fit", "test"] and commands[1][-2:] == ["--ckpt_path", "version_0:last"]
    assert "--ckpt_path" not in commands[0]
    (tmp_path / "best.yaml").write_text(GRID)
    assert load(path).space() != load(tmp_path / "best.yaml").space()  # testing another checkpoint: another study
    assert "test_ckpt must be best or last, not 'first'" in bad(tmp_path, GRID + "test_ckpt: first\n")


def test_a_sweep_under_csv_logger_runs_and_reports(tmp_path):
    """No TensorBoard: the trials' numbers come from each run's metrics.json, so any logger reports the same."""
    text = (
        "base: configs/mnist_mlp.yaml\noverrides: {trainer.logger: lightning.pytorch.loggers.CSVLogger, "
        "trainer.max_epochs: 1, trainer.limit_train_batches: 4, trainer.limit_val_batches: 2, "
        "trainer.limit_test_batches: 2}\nparams:\n  model.init_args.net.init_args.hidden: [[16]]\nseeds: [0]\n"
    )
    proc = sweep(tmp_path, text, name="csv")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = fit_runs(tmp_path / "logs" / "csv")
    assert not list(run.rglob("events.out.tfevents.*")) and (run / "metrics.csv").is_file()
    (row,) = table(tmp_path / "logs" / "csv")
    logged = list(csv.DictReader(open(next(run.glob("test_*")) / "metrics.csv")))  # what CSVLogger wrote
    assert float(row["test_acc_mean"]) == pytest.approx(float(logged[-1]["test/acc"]), abs=1e-6) and row["seeds"] == "1"


def test_a_sweep_whose_trials_fail_exits_non_zero_naming_their_logs(tmp_path):
    """Every point passes validation, every trial fails at run time (no data, download off): exit 1, one line with
    the count and the logs, not exit 0."""
    text = GRID.replace(
        "overrides: {", f"overrides: {{data.init_args.data_dir: {tmp_path / 'none'}, data.init_args.download: false, "
    )
    proc = sweep(tmp_path, text, name="broken")
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert (
        last.startswith("error: 4 run(s) of this sweep failed; the same command runs them again: see ")
        and "trial_version_0.log" in last
    )
    assert (
        "MNIST not found" in (tmp_path / "logs" / "broken" / "hidden=[16]_seed=0" / "trial_version_0.log").read_text()
    )


def test_a_sweep_file_extends_another_point_for_point(tmp_path):
    """fashion_tricks.yaml is tricks.yaml on Fashion-MNIST: the same grid and seeds, the parent's overrides with the
    data class added, its own name (its own study); files extending each other in a loop are one line."""
    from src.errors import UsageError
    from src.sweep.spec import load

    mnist, fashion = (load(ROOT / "configs" / "sweeps" / f"{n}.yaml") for n in ("tricks", "fashion_tricks"))
    assert fashion.grid() == mnist.grid() and fashion.seeds == mnist.seeds and fashion.name == "fashion_tricks"
    assert fashion.overrides == {**mnist.overrides, "data.class_path": "src.data.mnist.FashionMNISTDataModule"}
    assert fashion.space() != mnist.space()
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text(GRID + "extends: a.yaml\n")
    with pytest.raises(UsageError, match="extends it again: the files extend each other in a loop"):
        load(tmp_path / "a.yaml")


def test_a_changed_search_space_needs_a_new_name(tmp_path):
    (tmp_path / "logs").mkdir()
    first = GRID.replace("[[16], [32]]", "[[8]]").replace("seeds: [0, 1]", "seeds: [0]")
    storage = ["--storage", f"sqlite:///{tmp_path / 'logs' / 'optuna.db'}"]
    sweep(tmp_path, first, "--report-only", *storage)  # creates the study (and reports that nothing has finished)
    assert "with a different search space already exists" in bad(tmp_path, GRID, "--report-only", *storage, name="grid")


SWEEPS = sorted((ROOT / "configs" / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_every_sweep_file_parses_and_every_point_instantiates(path, tmp_path, monkeypatch):
    from src.sweep.__main__ import validate
    from src.sweep.spec import load

    monkeypatch.chdir(ROOT)
    sweep = load(path)
    assert sweep.name == path.stem and len(sweep.seeds) >= 3  # one point over seeds is a study of its seed noise
    validate(sweep)  # each point through the CLI's parser, as the command does before its first trial


def test_a_group_sets_its_config_and_keys_together_and_is_named_by_its_name():
    """tricks.yaml's third point (autograd, 3-improved_sigmoid) as the trial's command line and folder name."""
    from src.sweep.spec import load
    from src.sweep.trials import fit_args, trial_name

    sweep = load(ROOT / "configs" / "sweeps" / "tricks.yaml")
    points = sweep.grid()
    assert len(points) == 8 and [p["net"]["name"] for p in points] == ["autograd"] * 4 + ["manual"] * 4
    args = fit_args(sweep, points[2], 1)
    assert trial_name(points[2], 1) == "net=autograd_trick=3-improved_sigmoid_seed=1"
    # the group's config after base (none here), then the fixed overrides, then the point's keys: later ones win
    assert args[:2] == ["--config", "configs/mnist_seed002.yaml"] and args.count("--config") == 1
    keys = dict(zip(args[2::2], args[3::2]))
    assert keys == {
        "--trainer.max_epochs": "30",
        "--data.init_args.batch_size": "32",
        "--model.init_args.net.init_args.init": "lecun_normal",
        "--model.init_args.net.init_args.activation": "improved_sigmoid",
        "--model.init_args.optimizer.init_args.lr": "0.1",
        "--model.init_args.optimizer.init_args.momentum": "0.0",
        "--seed_everything": "1",
        "--data.init_args.seed": "1",
    }


@pytest.mark.slow
def test_one_trick_of_the_tricks_sweep_runs_for_both_nets(tmp_path):
    """The tricks file's last step for the autograd and the manual net, with tiny limits: each run trained what its
    point says (read back from the run's saved config), and the table has one row per net."""
    import yaml

    spec = yaml.safe_load((ROOT / "configs" / "sweeps" / "tricks.yaml").read_text())
    spec["params"]["trick"] = spec["params"]["trick"][-1:]
    spec["overrides"].update(yaml.safe_load(TINY)["overrides"])
    spec["seeds"] = [0]
    proc = sweep(tmp_path, yaml.safe_dump(spec), name="tricks")
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = tmp_path / "logs" / "tricks"
    assert [(r["net"], r["trick"], r["params"]) for r in table(folder)] == [
        ("autograd", "4-momentum", "50890"),
        ("manual", "4-momentum", "50890"),
    ]
    for net in ("autograd", "manual"):
        run = next((folder / f"net={net}_trick=4-momentum_seed=0").glob("version_*"))
        config = yaml.safe_load((run / "config.yaml").read_text())
        model = config["model"]["init_args"]
        assert (
            model["net"]["init_args"]["activation"] == "improved_sigmoid"
            and model["net"]["init_args"]["init"] == "lecun_normal"
        )
        assert model["optimizer"]["init_args"]["lr"] == 0.02 and model["optimizer"]["init_args"]["momentum"] == 0.9
        assert config["data"]["init_args"]["batch_size"] == 32 and config["trainer"]["max_epochs"] == 1
        assert (
            model["net"]["class_path"] == {"autograd": "src.models.mlp.MLP", "manual": "src.manual.mlp.ManualMLP"}[net]
        )


@pytest.mark.slow
def test_a_tpe_sweep_draws_its_trials_and_writes_the_best(tmp_path):
    import optuna
    import yaml

    text = (
        "base: configs/mnist_mlp.yaml\n" + TINY + "params:\n  model.init_args.scheduler.init_args.max_lr: "
        "{low: 1.0e-4, high: 1.0e-1, log: true}\nseeds: [0]\nsampler: tpe\ntrials: 3\n"
    )
    proc = sweep(tmp_path, text, name="tpe")
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = tmp_path / "logs" / "tpe"
    trials = optuna.load_study(study_name="tpe", storage=f"sqlite:///{folder / 'optuna.db'}").trials
    lrs = [t.params["model.init_args.scheduler.init_args.max_lr"] for t in trials if t.state.name == "COMPLETE"]
    assert len(lrs) == 3 == len(set(lrs)) and all(1e-4 <= lr <= 1e-1 for lr in lrs)
    best = yaml.safe_load((folder / "best.yaml").read_text())
    rows = table(folder)
    top = max(rows, key=lambda r: float(r["objective_mean"]))
    assert len(rows) == 3 and best["val/acc_best"]["mean"] == pytest.approx(float(top["objective_mean"]), abs=1e-9)
    assert (
        best["point"]["max_lr"] == top["max_lr"]
        and f"--model.init_args.scheduler.init_args.max_lr {top['max_lr']}" in best["command"]
    )


@pytest.mark.slow
def test_a_pruned_trial_stops_early_keeps_its_tested_run_and_is_not_rerun(tmp_path):
    """A threshold no tiny fit reaches prunes every trial at its first validation (deterministic): the fit stops
    after one of its three epochs like an early-stopped run, its best checkpoint is tested, Optuna records it PRUNED
    with that validation's value, and the same command again trains nothing."""
    import optuna

    from src.run.layout import Run

    text = (
        GRID.replace("trainer.max_epochs: 1", "trainer.max_epochs: 3")
        .replace("sampler: grid", "sampler: random")
        .replace("seeds: [0, 1]", "seeds: [0]")
        + "trials: 2\npruner: {name: threshold, lower: 0.99}\n"
    )
    proc = sweep(tmp_path, text, name="pruned")
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = tmp_path / "logs" / "pruned"
    trials = optuna.load_study(study_name="pruned", storage=f"sqlite:///{folder / 'optuna.db'}").trials
    assert [t.state.name for t in trials] == ["PRUNED", "PRUNED"] and all(
        t.user_attrs["pruned_at"] == 0 for t in trials
    )
    runs = fit_runs(folder)
    for trial, run in zip(trials, sorted(runs, key=lambda p: p.stat().st_mtime)):
        fit = Run(run).metrics()
        assert fit["epochs"] == 1 and fit["steps"] == 4 and fit["status"] == "finished"  # stopped after epoch 1 of 3
        assert trial.value == pytest.approx(fit["validations"][0]["val/acc_best"], abs=1e-7)  # its last report
        assert Run(run).evaluations("test")  # the kept run was tested
    assert {r["state"] for r in csv.DictReader(open(folder / "results_per_seed.csv"))} == {"pruned"}
    assert sweep(tmp_path, text, name="pruned").returncode == 0 and fit_runs(folder) == runs  # nothing trained again
    assert "takes no pruner" in bad(tmp_path, GRID + "pruner: {name: median}\n")
    assert "pruner needs a name" in bad(tmp_path, text.replace("threshold", "halfway"))


@pytest.mark.slow
def test_a_two_objective_sweep_reports_its_pareto_front(tmp_path):
    import optuna

    text = GRID.replace("seeds: [0, 1]", "seeds: [0]") + (
        "objective: [{metric: val/acc_best, direction: maximize}, {metric: num_params, direction: minimize}]\n"
    )
    proc = sweep(tmp_path, text, name="pareto")
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = tmp_path / "logs" / "pareto"
    trials = optuna.load_study(study_name="pareto", storage=f"sqlite:///{folder / 'optuna.db'}").trials
    rows = table(folder)
    for trial in trials:  # one value per objective: the run's val/acc_best and its parameter count
        row = next(r for r in rows if r["hidden"] == f"[{16 * (1 + trial.params['point'])}]")
        assert trial.values == [pytest.approx(float(row["objective_mean"])), int(row["params"])]
    assert [r["pareto"] for r in rows] == [str(p) for p in pareto_by_eye(rows)]
    assert (folder / "pareto.png").read_bytes()[:4] == b"\x89PNG" and "Pareto front of" in (
        folder / "results.md"
    ).read_text()


def pareto_by_eye(rows):
    """Two points: the smaller net is on the front; the larger one too unless it is no more accurate."""
    small, large = (float(r["objective_mean"]) for r in rows)
    return [True, large > small]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    """A throw-away PostgreSQL server (Debian's `postgresql` package; .ci/run installs it) on a free local port, run
    as the `postgres` user where the tests run as root (the server refuses root); skipped where none can start."""
    import glob
    import shutil

    bin_dir = next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1:]), None) or (
        str(Path(shutil.which("pg_ctl")).parent) if shutil.which("pg_ctl") else None
    )
    pytest.importorskip("psycopg", reason='no PostgreSQL driver (pip install "psycopg[binary]")')
    if bin_dir is None:
        pytest.skip("no PostgreSQL server here (Debian: apt-get install postgresql)")
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="sweep-postgres-"))  # not under pytest's tmp: its parents are root's only
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(folder, "postgres")
    port, data = free_port(), folder / "data"
    start = [
        [f"{bin_dir}/initdb", "-D", str(data), "-A", "trust", "-U", "sweep"],
        [
            f"{bin_dir}/pg_ctl",
            "-D",
            str(data),
            "-l",
            str(folder / "log"),
            "-w",
            "-o",
            f"-p {port} -k {folder} -c listen_addresses=127.0.0.1",
            "start",
        ],
    ]
    for cmd in start:
        proc = subprocess.run(as_user + cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"PostgreSQL did not start: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
    yield f"postgresql://sweep@127.0.0.1:{port}/postgres"
    subprocess.run(as_user + [f"{bin_dir}/pg_ctl", "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_two_sweep_commands_share_a_postgresql_study(postgres_url, tmp_path):
    """Two machines, as two processes here: the same command with one --storage URL. Every grid point x seed runs
    exactly once between them, both take part, and the table is complete."""
    procs = [sweep(tmp_path, GRID, "--storage", postgres_url, wait=False) for _ in range(2)]
    outs = [proc.communicate(timeout=600) for proc in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    import optuna

    trials = optuna.load_study(study_name="grid", storage=postgres_url).trials
    done = [t for t in trials if t.state.name == "COMPLETE"]
    assert sorted((t.user_attrs["point"], t.user_attrs["seed"]) for t in done) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert len({t.user_attrs["worker"] for t in done}) == 2
    folder = tmp_path / "logs" / "grid"
    assert len(fit_runs(folder)) == 4 and len({p.parent.name for p in fit_runs(folder)}) == 4
    assert [(r["hidden"], r["seeds"]) for r in table(folder)] == [("[16]", "2"), ("[32]", "2")]


@pytest.mark.slow
def test_a_two_process_ddp_trial_runs_from_the_fork_server(tmp_path):
    """Trials fork from a server that imported the CLI once (src/sweep/trials.py); Lightning's DDP launcher starts
    rank 1 by running the trial's command line again, which the forked trial sets to `python -m src.sweep.trials`."""
    text = (
        GRID.replace(
            "trainer.limit_test_batches: 2",
            "trainer.limit_test_batches: 2, trainer.accelerator: cpu, trainer.devices: 2, trainer.strategy: ddp",
        )
        .replace("[[16], [32]]", "[[16]]")
        .replace("[0, 1]", "[0]")
    )
    proc = sweep(tmp_path, text, timeout=240)  # without its command line, rank 0 waits for rank 1 for 30 minutes
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = tmp_path / "logs" / "grid"
    log = (folder / "hidden=[16]_seed=0" / "trial_version_0.log").read_text()
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in log, log[-3000:]
    run = next((folder / "hidden=[16]_seed=0").glob("version_*"))
    (row,) = table(folder)
    assert float(row["test_acc_mean"]) == pytest.approx(
        read_scalars(next(run.glob("test_*")))["test/acc"][-1][1], abs=1e-6
    )


def test_a_stop_signal_between_trials_stops_the_next_trial_at_its_start(tmp_path, monkeypatch):
    """SIGTERM while no trial process runs (Optuna may be writing a trial's state: an exception there can leave a
    trial marked running, which a resumed sweep skips) only marks the stop; the next trial's start raises it, inside
    the objective, where Optuna marks that trial failed, and its process is ended."""
    import threading

    from src.sweep import trials
    from src.sweep.__main__ import stop_on_signals

    monkeypatch.setattr(trials, "STOPPING", threading.Event())
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        stop_on_signals()
        os.kill(os.getpid(), signal.SIGTERM)  # no trial runs: no KeyboardInterrupt here
        time.sleep(0.1)
    finally:
        signal.signal(signal.SIGTERM, handlers[0])
        signal.signal(signal.SIGINT, handlers[1])
    assert trials.STOPPING.is_set()
    monkeypatch.chdir(tmp_path)  # where the trial would log, had it run
    fit = [
        "fit",
        "--config",
        str(ROOT / "configs" / "mnist_mlp.yaml"),
        "--trainer.max_epochs",
        "1",
        "--trainer.limit_train_batches",
        "2",
    ]
    with pytest.raises(KeyboardInterrupt):
        trials._run([fit], {**os.environ, "DATA_DIR": str(REAL_DATA)}, tmp_path / "trial.log")
    assert not trials.LIVE and not (tmp_path / "lightning_logs").exists()


@pytest.mark.slow
def test_a_sweep_says_each_trial_as_it_ends_with_the_best_so_far(grid_sweep):
    tmp, proc = grid_sweep
    lines = [line for line in proc.stderr.splitlines() if line.startswith("grid: ") and "trials done" in line]
    assert [line.split(" trials done")[0] for line in lines] == [f"grid: {k}/4" for k in (1, 2, 3, 4)]
    rows = list(csv.DictReader(open(tmp / "logs" / "grid" / "results_per_seed.csv")))
    best = max(float(r["objective"]) for r in rows)
    named = {f"(hidden={r['hidden']}, seed {r['seed']})" for r in rows if float(r["objective"]) == best}
    assert any(lines[-1].endswith(f"best so far {best:.4f} {n}") for n in named), (lines[-1], named)
