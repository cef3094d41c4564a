"""`python -m <module> <args>` without a fresh interpreter's imports: forked from a server process that imported
src.cli (torch, Lightning, torchvision) once. Every new interpreter spends seconds on those imports before its first
line of ours (docs/performance.md: start-up); a process forked from the server starts at once. Sweep trials start
this way (src/sweep/trials.py), and so do the tests' CLI commands (tests/conftest.py)."""

import functools
import multiprocessing
import os
import runpy
import sys

from src.frameworks import quiet_rerun_as_main


@functools.cache
def processes():
    """multiprocessing's fork server, started now (it imports in its own process while the caller goes on); fresh
    interpreters where the platform has no fork server (Windows)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    from multiprocessing import forkserver

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["src.cli"])
    forkserver.ensure_running()
    return context


def start(
    module: str, args: list[str], env: dict[str, str], stdout: str, stderr: str | None = None, cwd: str | None = None
):
    """Start `python -m module args` with the environment env, its output appended to the file stdout (and stderr to
    the file stderr, else to stdout too), in the folder cwd (default: the caller's). -> the running Process."""
    proc = processes().Process(target=run_module, args=(module, args, env, stdout, stderr or stdout, cwd, os.getpid()))
    proc.start()
    return proc


def end_with(owner: int) -> None:
    """SIGTERM this process once the process that asked for it (a sweep, a test run) is gone, even killed by SIGKILL:
    the fork server, its parent, outlives it, and a trial went on training as an orphan, unrecorded. A daemon thread
    looks once a second."""
    import signal
    import threading
    import time

    def watch() -> None:
        while True:
            time.sleep(1)
            try:
                os.kill(owner, 0)
            except ProcessLookupError:
                os.kill(os.getpid(), signal.SIGTERM)
                return
            except PermissionError:  # alive, another user's: cannot happen for our own parent, keep looking
                continue

    threading.Thread(target=watch, daemon=True).start()


def run_module(
    module: str, args: list[str], env: dict[str, str], stdout: str, stderr: str, cwd: str | None, owner: int
) -> None:
    """The forked process: the working directory, the environment, torch's thread count (the server imported torch
    before this process's OMP_NUM_THREADS was set), the output files, then the module run as __main__ with sys.argv
    as `python -m` sets them, which is also what Lightning's DDP launcher runs again to start a run's other ranks."""
    end_with(owner)
    if cwd is not None:
        os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    if "OMP_NUM_THREADS" in env:
        import torch

        torch.set_num_threads(int(env["OMP_NUM_THREADS"]))
    for fd, path in ((1, stdout), (2, stderr)):
        out = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.dup2(out, fd)
        os.close(out)
    sys.stdout.reconfigure(line_buffering=True)
    sys.argv = [module, *args]  # run_module puts the module's file first, as `python -m` does
    quiet_rerun_as_main()
    runpy.run_module(module, run_name="__main__", alter_sys=True)
