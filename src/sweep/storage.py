"""A sweep's Optuna storage, opened from its URL: SQLite (the default, in the sweep's folder), a journal file, or a
database server, with Optuna's own fault tolerance (heartbeat, grace period, one retry of a stale trial) where the
storage has it."""

import time
from pathlib import Path

from src.errors import UsageError

HEARTBEAT = 30  # seconds between a running trial's heartbeats (Optuna's on SQLite/PostgreSQL/MySQL; ours on a journal)


def heartbeat(stale_after: int | None) -> dict:
    """Optuna's fault tolerance on a database: each running trial's heartbeat, and a trial without one for stale_after
    seconds (a sweep SIGKILLed, a machine lost) is failed by the next sweep command and queued again, once. None (a
    trial's own process, which only reports to its trial): none."""
    import optuna

    if stale_after is None:
        return {}
    return {
        "heartbeat_interval": min(HEARTBEAT, max(1, stale_after // 2)),
        "grace_period": stale_after,
        "heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1),
    }


def sqlite_storage(url: str, stale_after: int | None):
    """Optuna's RDBStorage on SQLite, with every transaction taking the write lock as it begins (BEGIN IMMEDIATE).
    Optuna hands a queued trial to a worker by reading it WAITING and then writing RUNNING; it locks the row
    (SELECT ... FOR UPDATE) to make that atomic, which SQLite ignores, so under its default deferred transactions two
    workers could both take the same grid point (and one of them crash the sweep when it reports back)."""
    from sqlalchemy import event

    storage = rdb_storage(url, engine_kwargs={"connect_args": {"timeout": 120}}, **heartbeat(stale_after))
    event.listen(storage.engine, "connect", lambda connection, _: setattr(connection, "isolation_level", None))
    event.listen(storage.engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN IMMEDIATE"))
    storage.engine.dispose()  # the connections opened before the listeners existed
    return storage


def rdb_storage(url: str, attempts: int = 5, **kwargs):
    """Optuna's RDBStorage. Sweeps started together (in two terminals, on several machines) all create the tables in a
    new database at once; those that lose that race ("already exists", a duplicate schema version) find them there a
    moment later. Any other error (a refused connection, a bad URL) is raised at once."""
    import optuna
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, **kwargs)
        except (IntegrityError, OperationalError, ProgrammingError) as err:
            lost_the_race = isinstance(err, IntegrityError) or "already exists" in str(err)
            if not lost_the_race or attempt == attempts - 1:
                raise
            time.sleep(1 + attempt)


def open_storage(url: str | None, folder: Path, stale_after: int | None = None):
    import optuna
    from optuna.storages.journal import JournalFileBackend

    try:
        if url is None:
            folder.mkdir(parents=True, exist_ok=True)
            return sqlite_storage(f"sqlite:///{folder / 'optuna.db'}", stale_after)
        if url.startswith("sqlite:"):
            return sqlite_storage(url, stale_after)
        if url.startswith("journal:"):
            return optuna.storages.JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
        return rdb_storage(url, **heartbeat(stale_after))
    except Exception as err:  # a driver error, a refused connection, a bad URL, a folder that cannot be written
        raise UsageError(
            f"cannot open the storage {url or folder / 'optuna.db'} ({type(err).__name__}: "
            f"{' '.join(str(err).split())[:200]}); pass a reachable --storage URL or journal:PATH"
        ) from err
