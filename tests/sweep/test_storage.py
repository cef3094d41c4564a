"""The sweep's storage opened by several sweep commands at the same moment on a new SQLite file."""

import importlib
import multiprocessing
import sqlite3
import time
from contextlib import closing

from src.sweep.storage import open_storage


def open_at(folder, start: float, results) -> None:
    while time.time() < start:  # every process leaves this loop at the same instant, all imports done
        pass
    try:
        open_storage(None, folder, 120).get_all_studies()
        results.put("ok")
    except Exception as err:  # the test shows what went wrong in which process
        results.put(f"{type(err).__name__}: {str(err)[:200]}")


def test_commands_started_together_all_open_a_new_sqlite_storage(tmp_path):
    """Each process creates the tables it finds missing; without the retry, one of four lost that race with
    "table ... already exists" or a duplicate schema version in every one of ten tries. Two tries here."""
    for module in ("optuna", "sqlalchemy"):  # imported before the fork, as a sweep command has them when it opens
        importlib.import_module(module)

    context = multiprocessing.get_context("fork")
    for attempt in range(2):
        results, start = context.Queue(), time.time() + 1.0
        procs = [context.Process(target=open_at, args=(tmp_path / str(attempt), start, results)) for _ in range(4)]
        for proc in procs:
            proc.start()
        outcomes = [results.get(timeout=120) for _ in procs]
        for proc in procs:
            proc.join()
        assert outcomes == ["ok"] * 4
        with closing(sqlite3.connect(tmp_path / str(attempt) / "optuna.db")) as db:
            assert db.execute("SELECT COUNT(*) FROM alembic_version").fetchone() == (1,)
