"""Provenance: the data files' md5s (cached outside the data folder, hashed again when a file changes), the git state
(a dirty tree is flagged and its diff hashed), and the key that tells two environments apart."""

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from src import provenance


def test_data_md5s_are_the_files_and_cached_outside_the_folder(tmp_path):
    data, cache = tmp_path / "data", tmp_path / "cache"
    data.mkdir()
    (data / "a").write_bytes(b"first")
    (data / "b").write_bytes(b"second")
    before = sorted(p.name for p in data.iterdir())
    record = provenance.data(data, cache)
    assert record["files"] == {"a": hashlib.md5(b"first").hexdigest(), "b": hashlib.md5(b"second").hexdigest()}
    assert sorted(p.name for p in data.iterdir()) == before  # nothing written into the data folder
    assert len(list(cache.glob("*.json"))) == 1
    assert provenance.data(data, cache) == record  # from the cache now
    (data / "a").write_bytes(b"changed")  # another size: hashed again
    assert provenance.data(data, cache)["files"]["a"] == hashlib.md5(b"changed").hexdigest()


def test_many_files_are_counted_and_hashed_together(tmp_path):
    for i in range(provenance.LIST_FILES_UP_TO + 1):
        (tmp_path / f"{i:02d}.png").write_bytes(bytes([i]))
    record = provenance.data(tmp_path, tmp_path.parent / "cache_many")
    assert record["files"] == provenance.LIST_FILES_UP_TO + 1 and len(record["md5"]) == 32


def git_repo(path: Path) -> None:
    for args in (["init", "-q"], ["add", "f"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", "-C", str(path), *args], check=True)


def test_a_dirty_tree_is_flagged_and_its_diff_hashed(tmp_path, monkeypatch):
    (tmp_path / "f").write_text("one")
    git_repo(tmp_path)
    monkeypatch.setattr(provenance, "REPO", tmp_path)
    clean = provenance.code()
    assert clean["dirty"] is False and clean["diff_sha256"] is None and len(clean["commit"]) == 40
    (tmp_path / "f").write_text("two")
    first = provenance.code()
    (tmp_path / "f").write_text("three")
    second = provenance.code()
    assert first["dirty"] and second["dirty"] and first["commit"] == clean["commit"]
    assert first["diff_sha256"] != second["diff_sha256"]  # two dirty states are told apart


def test_no_repository_records_none(tmp_path, monkeypatch):
    monkeypatch.setattr(provenance, "REPO", tmp_path)
    assert provenance.code() == {"commit": None, "dirty": None, "diff_sha256": None}


def test_the_key_is_the_environment_not_the_command_or_seed(tmp_path):
    a = provenance.collect(provenance.command("src.cli", ["fit", "--seed_everything", "1"]), None, 1)
    b = provenance.collect(provenance.command("src.cli", ["fit", "--seed_everything", "2"]), None, 2)
    assert a["key"] == b["key"] == provenance.key(json.loads(json.dumps(a["environment"])))
    assert a["command"] == "python -m src.cli fit --seed_everything 1" and a["seed"] == 1
    assert set(a["environment"]) == {"git", "packages", "data", "hardware"}
    assert a["environment"]["packages"]["torch"] == pytest.importorskip("torch").__version__.split("+")[0]
