"""python -m src.sweep configs/sweeps/<name>.yaml [--workers N] [--storage URL] [--trials N] [--threads N] [--report-only]
                                                [--out DIR]

Runs a sweep file (src/sweep/spec.py) with Optuna: every trial is `fit` + `test --ckpt_path best` (or the file's
test_ckpt) in processes of their own (src/sweep/trials.py), logged under lightning_logs/sweeps/<name>/<trial name>/. The study lives in
lightning_logs/sweeps/<name>/optuna.db (SQLite) unless --storage names a database URL (postgresql://..., mysql://...)
or journal:PATH (Optuna's journal file, for a shared file system): the same command on several machines with one
--storage shares the work. Running the command again resumes: finished trials are kept, trials that were running
when a sweep died are run again, a grid point is never run twice. The report (src/sweep/report.py) is rebuilt from
the storage and the runs' metrics.json at the end, or alone with --report-only.
"""

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from src.errors import ArgumentParser, UsageError


def parse(argv):
    parser = ArgumentParser(prog="python -m src.sweep", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                    allow_abbrev=False)
    parser.add_argument("file", type=Path, help="the sweep file, e.g. configs/sweeps/tricks.yaml")
    parser.add_argument("--workers", type=int, default=1, help="trials at once on this machine")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per trial (default: cores / workers)")
    parser.add_argument("--storage", default=None, help="database URL or journal:PATH (default: SQLite in the sweep folder)")
    parser.add_argument("--trials", type=int, default=None, help="overrides the file's trials (tpe / random)")
    parser.add_argument("--report-only", action="store_true", help="rebuild the report without training")
    parser.add_argument("--save-dir", type=Path, default=Path("lightning_logs/sweeps"), help="where sweeps live")
    parser.add_argument("--out", type=Path, default=None, help="where the report goes (default: the sweep's folder)")
    return parser.parse_args(argv)


def sqlite_storage(url: str):
    """Optuna's RDBStorage on SQLite, with every transaction taking the write lock as it begins (BEGIN IMMEDIATE).
    Optuna hands a queued trial to a worker by reading it WAITING and then writing RUNNING; it locks the row
    (SELECT ... FOR UPDATE) to make that atomic, which SQLite ignores, so under its default deferred transactions two
    workers could both take the same grid point (and one of them crash the sweep when it reports back)."""
    from sqlalchemy import event

    storage = rdb_storage(url, engine_kwargs={"connect_args": {"timeout": 120}})
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


def open_storage(url: str | None, folder: Path):
    import optuna
    from optuna.storages.journal import JournalFileBackend

    try:
        if url is None:
            folder.mkdir(parents=True, exist_ok=True)
            return sqlite_storage(f"sqlite:///{folder / 'optuna.db'}")
        if url.startswith("sqlite:"):
            return sqlite_storage(url)
        if url.startswith("journal:"):
            return optuna.storages.JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
        return rdb_storage(url)
    except Exception as err:  # a driver error, a refused connection, a bad URL, a folder that cannot be written
        raise UsageError(f"cannot open the storage {url or folder / 'optuna.db'} ({type(err).__name__}: "
                         f"{' '.join(str(err).split())[:200]}); pass a reachable --storage URL or journal:PATH") from err


def validate(sweep) -> None:
    """Every point's full config through the CLI's own parser, before any trial runs (a misspelt key is a one-line
    error and exit 2 from src.cli.main). Distributions are checked at both ends. Quietly: Lightning's banners and
    its warning about parsing arguments from within Python would otherwise repeat once per point."""
    import logging
    import warnings

    from src.cli import main as cli_main
    from src.sweep.trials import fit_args

    ends = [{k: (v[end] if isinstance(v, dict) else v[0]) for k, v in sweep.params.items()} for end in ("low", "high")]
    lightning_log = logging.getLogger("lightning.pytorch")
    level = lightning_log.level
    lightning_log.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for values in sweep.grid() if sweep.sampler == "grid" else ends:
                cli_main(fit_args(sweep, values, sweep.seeds[0]), run=False)
    finally:
        lightning_log.setLevel(level)


def stop_on_signals() -> None:
    """SIGTERM (a scheduler, kill) and Ctrl-C end the sweep: the running trials' processes are ended, Optuna marks
    their trials failed, and the next run of the same command runs them again. A signal that comes while no trial
    process runs waits for the next trial's start (trials._run): raised between trials, inside Optuna's writes, it
    could leave a trial marked running, which a resumed sweep would skip until it is STALE."""
    from src.sweep.trials import LIVE, STOPPING

    def handler(signum, frame):
        if LIVE:
            raise KeyboardInterrupt
        STOPPING.set()

    signal.signal(signal.SIGTERM, handler)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not where Ctrl-C is ignored (nohup, ... &)
        signal.signal(signal.SIGINT, handler)


def sweep_command(args: argparse.Namespace) -> None:
    """Run the sweep's missing trials (unless --report-only), then write and print its report."""
    if args.workers <= 0:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    from src.sweep.spec import load

    sweep = load(args.file)
    if args.trials is not None:
        sweep.trials = args.trials
    folder = args.save_dir / sweep.name
    storage = open_storage(args.storage, folder)
    from src.sweep.study import open_study, run

    study = open_study(sweep, storage, folder)
    if not args.report_only:
        from src.forked import processes

        processes()  # the trials' fork server (src/forked.py) imports the CLI while validate checks every point
        validate(sweep)
        threads = args.threads or max(1, (os.cpu_count() or 1) // args.workers)
        stop_on_signals()
        run(study, sweep, folder, args.workers, threads)
        from src.sweep.trials import STOPPING

        if STOPPING.is_set():  # stopped after the last trial had started: no report, exit as stopped
            raise KeyboardInterrupt
    from src.sweep.report import report

    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    print(report(study, sweep, args.out or folder))
    from src.sweep.study import failed_here

    if failed := ([] if args.report_only else failed_here(study)):
        raise TrialsFailed(f"{len(failed)} run(s) of this sweep failed; the same command runs them again: see "
                           f"{', '.join(failed[:3])}{' ...' if len(failed) > 3 else ''}")


class TrialsFailed(Exception):
    """Some trials of this command failed (their logs say why): exit status 1, after the report of the others."""


def main(argv: list[str] | None = None) -> None:
    try:
        sweep_command(parse(argv))
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except TrialsFailed as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        from src.sweep.trials import LIVE, STOPPING

        STOPPING.set()
        for proc in list(LIVE):
            proc.terminate()
        print("interrupted: run the same command again to resume", file=sys.stderr)
        time.sleep(0.5)
        sys.exit(128 + signal.SIGTERM)


if __name__ == "__main__":
    main()
