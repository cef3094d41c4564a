import ast
import json
import os
import threading
import time
from pathlib import Path

import pytest
import torch

from src.errors import UsageError
from src.run.layout import Run, Runs, next_version, run_suffix


def test_run_suffix_names_each_changed_value_by_its_last_key():
    changed = {
        "model.init_args.optimizer.init_args.lr": 0.01,
        "model.init_args.net.init_args.hidden": [128, 64],
        "trainer.max_epochs": 3,
        "trainer.logger.init_args.save_dir": "/tmp/x",
        "trainer.accelerator": "cpu",
        "model.init_args.net.__path__": "configs/net/mlp.yaml",
        "model.init_args.scheduler": None,
    }
    assert run_suffix(changed) == "_lr-0.01_hidden-128-64_max_epochs-3_scheduler-None"
    # nothing a shell reads specially (globs, assignments), whatever the values
    odd = {"a.lr": -0.01, "a.name": "x/y z", "a.betas": (0.9, 0.999), "a.dict": {"k": "v"}}
    assert run_suffix(odd) == "_lr--0.01_name-x-yz_betas-0.9-0.999_dict-k-v"
    assert run_suffix({}) == ""
    many = {
        "model.init_args.net.init_args.hidden": [500, 300, 250, 100, 50, 25],
        "model.init_args.net.init_args.activation": "leaky_relu",
        "model.init_args.optimizer.init_args.lr": 0.001,
        "data.init_args.batch_size": 200,
        "trainer.max_epochs": 50,
        "seed_everything": 2,
    }
    assert run_suffix(many).endswith("_max_epochs-50_seed_everything-2")  # the last values survive: not cut at 80


def _run(root, name, ckpts=("last.ckpt",)):
    (root / name / "checkpoints").mkdir(parents=True)
    for c in ckpts:
        torch.save({"state_dict": {}, "callbacks": {}}, root / name / "checkpoints" / c)
    return root / name


def test_versions_with_suffixes_are_ordered_by_number(tmp_path):
    _run(tmp_path, "version_2_lr=0.1")
    _run(tmp_path, "version_10")
    (tmp_path / "version_11").mkdir()  # no checkpoint: an aborted run is never "the newest run"
    assert [r.name for r in Runs(tmp_path).trained()] == ["version_2_lr=0.1", "version_10"]
    assert next_version(tmp_path) == 12
    assert (
        Run.of(tmp_path / "version_2_lr=0.1" / "checkpoints" / "last.ckpt").folder
        == (tmp_path / "version_2_lr=0.1").resolve()
    )


def test_claims_made_at_once_never_share_a_folder(tmp_path):
    """Eight commands naming their run at the same moment get eight folders (an exclusive mkdir, not a guess)."""
    runs: list[Run] = []
    threads = [threading.Thread(target=lambda: runs.append(Run.claim(tmp_path, "_x"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.number for r in runs) == list(range(8))


def test_last_is_the_newer_of_last_and_interrupted(tmp_path):
    run = _run(tmp_path, "version_0", ("last.ckpt", "interrupted.ckpt"))
    old = time.time() - 100
    os.utime(run / "checkpoints" / "last.ckpt", (old, old))
    assert Run(run).latest_checkpoint().name == "interrupted.ckpt"
    assert Runs(tmp_path).resolve("last").name == "interrupted.ckpt"


def test_best_without_a_recorded_best_is_a_clear_error(tmp_path):
    _run(tmp_path, "version_0")
    with pytest.raises(UsageError, match="records no best checkpoint"):
        Runs(tmp_path).resolve("best")


def test_evaluation_folders_count_up(tmp_path):
    run = Run(tmp_path)
    (tmp_path / "test_0").mkdir()
    assert run.claim_evaluation("test") == "test_1" and run.evaluations("test") == ["test_0", "test_1"]


def test_a_run_resumed_twice_keeps_each_config(tmp_path):
    run = Run(tmp_path)
    (tmp_path / "config_resume_0.yaml").write_text("")
    assert run.resume_config() == "config_resume_1.yaml"


def _scored_run(root, name, score):
    """A run whose metrics.json records (as RunRecorder does) a best checkpoint with val/acc `score`."""
    ckpts = root / name / "checkpoints"
    ckpts.mkdir(parents=True)
    best = ckpts / f"epoch03-acc{score:.4f}.ckpt"
    torch.save({"state_dict": {}, "epoch": 3}, best)
    torch.save({"state_dict": {}}, ckpts / "last.ckpt")
    record = {"best": {"path": f"checkpoints/{best.name}", "monitor": "val/acc", "score": score, "epoch": 3}}
    (root / name / "metrics.json").write_text(json.dumps(record))
    return root / name


def test_best_of_the_newest_run_says_when_another_run_is_better(tmp_path):
    """A 1-epoch smoke run after a real run: best still means the newest run, but it says which run is better
    and how to pick it by name, or the best of all."""
    real = _scored_run(tmp_path, "version_0", 0.9921)
    smoke = _scored_run(tmp_path, "version_1_max_epochs=1", 0.9512)
    runs = Runs(tmp_path, "--config x.yaml")
    path = runs.resolve("best")
    assert path == smoke / "checkpoints" / "epoch03-acc0.9512.ckpt"
    assert Run.of(path).describe(path) == " (run version_1_max_epochs=1, val/acc 0.9512)"
    assert runs.better_than(Run(smoke)) == (
        "note: run version_0 of this config has a better best checkpoint (val/acc "
        "0.9921 vs 0.9512): --ckpt_path version_0:best, or all:best for the best of all runs"
    )
    assert runs.better_than(Run(real)) is None
    assert runs.resolve("version_0:best") == real / "checkpoints" / "epoch03-acc0.9921.ckpt"
    assert runs.resolve("version_1:last") == smoke / "checkpoints" / "last.ckpt"
    assert runs.resolve("all:best") == real / "checkpoints" / "epoch03-acc0.9921.ckpt"
    with pytest.raises(UsageError, match="no trained run 'version_7'.*version_0, version_1_max_epochs=1"):
        runs.resolve("version_7:best")


def test_the_only_run_is_not_better_than_itself_under_a_relative_save_dir(tmp_path, monkeypatch):
    """The default save_dir is relative (lightning_logs), the run of a resolved checkpoint absolute: still one run."""
    _scored_run(tmp_path / "lightning_logs" / "mnist_mlp", "version_0", 0.9824)
    monkeypatch.chdir(tmp_path)
    runs = Runs(Path("lightning_logs") / "mnist_mlp")
    assert runs.better_than(Run.of(runs.resolve("best"))) is None


def test_a_zero_byte_checkpoint_is_one_clear_error(tmp_path):
    """A save killed before it wrote anything leaves an empty file: torch's EOFError has no message."""
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    with pytest.raises(UsageError, match=r"empty.ckpt is not a readable checkpoint \(EOFError"):
        Runs(tmp_path).resolve(str(empty))


def test_an_unreadable_checkpoint_in_another_run_does_not_block_this_one(tmp_path):
    """Comparing runs reads their metrics.json, never their checkpoints: one broken last.ckpt blocks nothing else."""
    good = _scored_run(tmp_path, "version_0", 0.97)
    broken = _scored_run(tmp_path, "version_1", 0.99)
    (broken / "checkpoints" / "last.ckpt").write_bytes(b"")
    runs = Runs(tmp_path)
    assert runs.resolve("version_0:best") == good / "checkpoints" / "epoch03-acc0.9700.ckpt"
    assert "run version_1 of this config has a better best checkpoint" in runs.better_than(Run(good))


def test_last_falls_back_to_the_newest_readable_checkpoint_and_says_so(tmp_path, caplog):
    run = _scored_run(tmp_path, "version_0", 0.97)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"broken")
    os.utime(run / "checkpoints" / "epoch03-acc0.9700.ckpt", (time.time() - 50, time.time() - 50))
    assert Runs(tmp_path).resolve("last") == run / "checkpoints" / "epoch03-acc0.9700.ckpt"
    assert "last.ckpt cannot be read" in caplog.text and "using epoch03-acc0.9700.ckpt" in caplog.text


def test_a_checkpoint_write_that_fails_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    """A crash (here: torch.save raising half-way) or a full disk during a save: the previous last.ckpt is intact."""
    import errno

    from src.run.checkpoints import AtomicCheckpointIO

    io = AtomicCheckpointIO()
    path = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}}, path)
    before = path.read_bytes()

    def half_written(obj, f):
        f.write(b"PK\x03\x04 half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", half_written)
    with pytest.raises(
        UsageError, match=r"cannot write the checkpoint .*last.ckpt \(No space left on device\); free space"
    ):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before and sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]
    assert torch.equal(torch.load(path, weights_only=True)["state_dict"]["w"], torch.ones(3))


LAYOUT_NAMES = (
    "config.yaml",
    "config_resume",
    "checkpoints",
    ".ckpt",
    "metrics.json",
    "test_report",
    "predictions.csv",
    "export",
    "trial_{",
    "version_",
)


def strings_in_code(path: Path) -> list[str]:
    """The string constants of a module's code that could be part of a path (f-string parts too; no docstrings,
    no messages: a message that names a file to a user spells no path)."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    for node in ast.walk(tree):  # an f-string's pieces, each followed by "{" where a value comes next
        if isinstance(node, ast.JoinedStr):
            for piece, after in zip(node.values, node.values[1:]):
                if isinstance(piece, ast.Constant) and isinstance(after, ast.FormattedValue):
                    piece.value += "{"
    return [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant)
        and isinstance(n.value, str)
        and id(n) not in docstrings
        and not any(c.isspace() for c in n.value)
    ]


def test_only_the_run_layout_spells_a_runs_on_disk_names():
    src = Path(__file__).resolve().parent.parent / "src"
    owner = src / "run" / "layout.py"
    assert any("metrics.json" in s for s in strings_in_code(owner))  # the check reads what it claims to
    spelled = {
        f"{p.relative_to(src)}: {s!r}"
        for p in src.rglob("*.py")
        if p != owner
        for s in strings_in_code(p)
        if any(name in s for name in LAYOUT_NAMES)
    }
    assert not spelled, sorted(spelled)
