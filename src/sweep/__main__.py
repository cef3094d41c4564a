"""python -m src.sweep configs/sweeps/<name>.yaml [--workers N] [--storage URL] [--trials N] [--threads N]
                       [--report-only] [--out DIR] [--name NAME [--seeds S ...] [--dotted.key VALUE ...]]

Runs a sweep file (src/sweep/spec.py) with Optuna: every trial is `fit` + `test --ckpt_path best` (or the file's
test_ckpt) in processes of their own (src/sweep/trials.py), logged under lightning_logs/sweeps/<name>/<trial name>/. The
study lives in lightning_logs/sweeps/<name>/optuna.db (SQLite) unless --storage names a database URL (postgresql://...,
mysql://...) or journal:PATH (Optuna's journal file, for a shared file system): the same command on several machines
with one --storage shares the work. Running the command again resumes: finished trials are kept, trials that were
running when a sweep died are run again, a grid point is never run twice. The report (src/sweep/report.py) is rebuilt
from the storage and the runs' metrics.json at the end, or alone with --report-only; without a storage, --report-only
rebuilds a committed report from its per-seed files (python -m src.sweep FILE --report-only --out scripts/results/...).

Dotted CLI keys after the file (--trainer.max_epochs 1) are fixed overrides on top of the file's, and --seeds
replaces its seeds: a quick version of a committed study without copying the file. Such a changed sweep is another
study, so it needs its own --name (lightning_logs/sweeps/<name>/), never mixing with the file's.
"""

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from src.errors import ArgumentParser, UsageError, one_line_exit


def parse(argv):
    parser = ArgumentParser(
        prog="python -m src.sweep",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("file", type=Path, help="the sweep file, e.g. configs/sweeps/tricks.yaml")
    parser.add_argument("--workers", type=int, default=1, help="trials at once on this machine")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per trial (default: cores / workers)")
    parser.add_argument(
        "--storage", default=None, help="database URL or journal:PATH (default: SQLite in the sweep folder)"
    )
    parser.add_argument("--trials", type=int, default=None, help="overrides the file's trials (tpe / random)")
    parser.add_argument("--report-only", action="store_true", help="rebuild the report without training")
    parser.add_argument("--save-dir", type=Path, default=Path("lightning_logs/sweeps"), help="where sweeps live")
    parser.add_argument("--out", type=Path, default=None, help="where the report goes (default: the sweep's folder)")
    parser.add_argument(
        "--stale-after",
        type=int,
        default=None,
        metavar="SECONDS",
        help="a running trial without a heartbeat for this long belongs to a dead sweep: it is failed "
        "and run again, once (default 120)",
    )
    parser.add_argument("--name", default=None, help="the study's name (default: the file's); needed with overrides")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="instead of the file's seeds")
    args, rest = parser.parse_known_args(argv)
    args.overrides = overrides(rest, parser)
    return args


def overrides(rest: list[str], parser) -> dict:
    """--dotted.key VALUE or --dotted.key=VALUE pairs -> {dotted.key: the value as YAML reads it (1, [64], null)}."""
    import yaml

    found, i = {}, 0
    while i < len(rest):
        key, _, value = rest[i].partition("=")
        if not key.startswith("--") or "." not in key:
            parser.error(
                f"unrecognized argument {rest[i]!r}: after the file, give options of this command or dotted "
                "CLI keys with a value, e.g. --trainer.max_epochs 1"
            )
        if not _:
            if i + 1 == len(rest):
                parser.error(f"{key} needs a value, e.g. {key} 1")
            value, i = rest[i + 1], i + 1
        found[key[2:]] = yaml.safe_load(value)
        i += 1
    return found


def apply_command_line(sweep, args: argparse.Namespace) -> None:
    """--trials, and the overrides and seeds that make another study (hence --name)."""
    if args.trials is not None:
        sweep.trials = args.trials
    if (args.overrides or args.seeds) and args.name in (None, sweep.name):
        raise UsageError(
            f"overrides or --seeds change the sweep, which must not mix with the study {sweep.name!r}: "
            f"add --name {sweep.name}_quick (or any new name)"
        )
    if args.name is not None:
        sweep.name = args.name
    sweep.overrides = {**sweep.overrides, **args.overrides}
    sweep.seeds = args.seeds or sweep.seeds


def validate(sweep) -> None:
    """The points' full configs through the CLI's own parser, before any trial runs (a misspelt key is a one-line
    error and exit 2 from src.cli.main): a grid's checked_points (each value with each class it can meet),
    distributions at both ends. Quietly: Lightning's banners and
    its warning about parsing arguments from within Python would otherwise repeat once per point."""
    from src.cli import main as cli_main
    from src.frameworks import checking_quietly
    from src.sweep.trials import fit_args

    ends = [{k: (v[end] if isinstance(v, dict) else v[0]) for k, v in sweep.params.items()} for end in ("low", "high")]
    with checking_quietly():
        for values in sweep.checked_points() if sweep.sampler == "grid" else ends:
            cli_main(fit_args(sweep, values, sweep.seeds[0]), run=False)


def stop_on_signals() -> None:
    """SIGTERM (a scheduler, kill) and Ctrl-C end the sweep: the running trials' processes are ended, Optuna marks
    their trials failed, and the next run of the same command runs them again. A signal that comes while no trial
    process runs waits for the next trial's start (trials._run): raised between trials, inside Optuna's writes, it
    could leave a trial marked running, which a resumed sweep would skip until it is stale (--stale-after)."""
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
    from src.sweep.study import STALE

    args.stale_after = STALE if args.stale_after is None else args.stale_after
    if args.stale_after <= 0:
        raise UsageError(f"--stale-after must be a positive number of seconds, got {args.stale_after}")
    from src.sweep.spec import load

    sweep = load(args.file)
    apply_command_line(sweep, args)
    folder = args.save_dir / sweep.name
    from src.sweep.storage import open_storage
    from src.sweep.study import open_study, run

    if not args.report_only:  # checked before the storage is touched: a misspelt key leaves no study behind
        from src.forked import processes

        processes()  # the trials' fork server (src/forked.py) imports the CLI while validate checks every point
        validate(sweep)
    if args.report_only and args.storage is None and not (folder / "optuna.db").is_file():
        study = None  # no runs here (a fresh clone): the report is rebuilt from the per-seed files in --out
    else:
        study = open_study(sweep, open_storage(args.storage, folder, args.stale_after), folder)
    if not args.report_only:
        threads = args.threads or max(1, (os.cpu_count() or 1) // args.workers)
        stop_on_signals()
        run(
            study,
            sweep,
            folder,
            args.workers,
            threads,
            args.stale_after,
            args.storage or f"sqlite:///{folder / 'optuna.db'}",
        )
        from src.sweep.trials import STOPPING

        if STOPPING.is_set():  # stopped after the last trial had started: no report, exit as stopped
            raise KeyboardInterrupt
    from src.sweep.report import report

    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    print(report(study, sweep, args.out or folder))
    from src.sweep.study import failed_here

    if failed := ([] if args.report_only else failed_here(study)):
        raise TrialsFailed(
            f"{len(failed)} run(s) of this sweep failed; the same command runs them again: see "
            f"{', '.join(failed[:3])}{' ...' if len(failed) > 3 else ''}"
        )


class TrialsFailed(Exception):
    """Some trials of this command failed (their logs say why): exit status 1, after the report of the others."""


def main(argv: list[str] | None = None) -> None:
    from src.frameworks import quiet

    quiet()
    try:
        with one_line_exit():
            sweep_command(parse(argv))
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
