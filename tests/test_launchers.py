"""Standard launchers: torchrun (torchelastic environment) and the SLURM batch scripts."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, only_run, read_scalars, run_cli

SBATCH = sorted((ROOT / "scripts" / "slurm").glob("train*.sbatch"))


@pytest.mark.slow
def test_torchrun_two_processes_then_test_matches_one_process(mnist_root, tmp_path):
    logs = ["--trainer.logger.init_args.save_dir", str(tmp_path)]
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [
        str(torchrun),
        "--nproc_per_node",
        "2",
        "-m",
        "src.cli",
        "fit",
        "--config",
        "configs/mnist_mlp.yaml",
        "--trainer.accelerator",
        "cpu",
        "--trainer.devices",
        "2",
        "--trainer.strategy",
        "ddp",
        "--trainer.max_epochs",
        "1",
        "--trainer.limit_train_batches",
        "20",
        "--data.init_args.batch_size",
        "128",
        *logs,
    ]
    proc = subprocess.run(
        cmd, cwd=ROOT, env={**os.environ, "DATA_DIR": str(mnist_root)}, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = only_run(tmp_path / "mnist_mlp")  # one set of logs and checkpoints, written by rank 0 alone
    assert {p.name for p in (run / "checkpoints").iterdir()} >= {"last.ckpt"}
    fit = read_scalars(run)
    assert fit["train/samples"][-1][1] == 2 * 20 * 128  # two ranks, 20 batches each, no sample counted twice
    assert fit["val/samples"][-1][1] == 5_000

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
    proc = subprocess.run(
        [
            str(torchrun),
            "--nproc_per_node",
            "2",
            "-m",
            "src.cli",
            "test",
            "--config",
            "configs/mnist_mlp.yaml",
            "--ckpt_path",
            "best",
            "--trainer.accelerator",
            "cpu",
            "--trainer.devices",
            "2",
            "--trainer.strategy",
            "ddp",
            *logs,
        ],
        cwd=ROOT,
        env={**os.environ, "DATA_DIR": str(mnist_root)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    one, two = read_scalars(run / "test_0"), read_scalars(run / "test_1")
    assert one["test/samples"][-1][1] == two["test/samples"][-1][1] == 10_000
    assert abs(one["test/acc"][-1][1] - two["test/acc"][-1][1]) < 1e-6


@pytest.mark.parametrize("script", SBATCH, ids=[p.name for p in SBATCH])
def test_sbatch_runs_the_documented_command_and_it_parses(script, tmp_path):
    """The script run by bash with SLURM's variables set and a stand-in `srun` that adds --print_config: its command
    is the README's, parses with this CLI, and asks for one DDP process per task on the script's nodes."""
    text = script.read_text()
    command = re.search(r"^srun (python -m src\.cli fit .*)$", text, re.M).group(1)
    assert command in (ROOT / "README.md").read_text()
    nodes, tasks = (int(re.search(rf"#SBATCH --{key}=(\d+)", text).group(1)) for key in ("nodes", "ntasks-per-node"))
    assert "#SBATCH --signal=SIGUSR1@" in text  # Lightning checkpoints and requeues on this signal
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("srun", 'exec "$@" --print_config'), ("python", f'exec {sys.executable} "$@"')):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    for name in ("src", "configs"):  # the repository as the job's working directory, without its virtual environment
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "activate").write_text("")
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SLURM_NTASKS_PER_NODE": str(tasks),
        "SLURM_NNODES": str(nodes),
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    trainer = yaml.safe_load(proc.stdout)["trainer"]
    # devices stays the string "4" (its type is int | str | list); Lightning reads both alike
    assert (str(trainer["devices"]), trainer["num_nodes"], trainer["strategy"], trainer["accelerator"]) == (
        str(tasks),
        nodes,
        "ddp",
        "gpu",
    )
    assert (nodes, tasks) == ((2, 4) if "2nodes" in script.name else (1, 4))


@pytest.mark.slow
def test_sweep_array_tasks_share_one_journal_study(mnist_root, tmp_path):
    """Two array tasks of scripts/slurm/sweep.sbatch, run here by bash at the same time: between them they run the
    grid's two points once each, recorded in one journal file."""
    import optuna

    (tmp_path / "two.yaml").write_text(
        "base: configs/mnist_mlp.yaml\noverrides: {trainer.max_epochs: 1, trainer.limit_train_batches: 4, "
        "trainer.limit_val_batches: 2, trainer.limit_test_batches: 2}\n"
        "params:\n  model.init_args.net.init_args.hidden: [[8], [16]]\nseeds: [0]\n"
    )
    env = {
        **os.environ,
        "SWEEP": str(tmp_path / "two.yaml"),
        "SAVE_DIR": str(tmp_path / "sweeps"),
        "VENV": str(Path(sys.executable).parent.parent),
        "DATA_DIR": str(mnist_root),
        "SLURM_CPUS_PER_TASK": "1",
    }
    tasks = [
        subprocess.Popen(
            ["bash", "scripts/slurm/sweep.sbatch"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    errors = [task.communicate(timeout=600)[1] for task in tasks]
    assert [t.returncode for t in tasks] == [0, 0], [e[-2000:] for e in errors]
    journal = tmp_path / "sweeps" / "two.journal"
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    done = [t for t in optuna.load_study(study_name="two", storage=storage).trials if t.state.name == "COMPLETE"]
    assert sorted(t.user_attrs["point"] for t in done) == [0, 1]
    assert sorted(p.parent.name for p in (tmp_path / "sweeps" / "two").glob("*/version_*")) == [
        "hidden=[16]_seed=0",
        "hidden=[8]_seed=0",
    ]
