"""What made a result: the command, the code (git commit, dirty tree and a hash of its diff), the packages, the data
files' md5s, the hardware and the seed. RunRecorder puts it into every metrics.json; a sweep's per-seed rows carry
its key (src/sweep/report.py), and results files the whole record.

    {"command": "python -m src.cli fit --config ...", "seed": 0,
     "data_folder": where the data was read, "environment": {"git": {commit, dirty, diff_sha256},
     "packages": {python, torch, ...}, "data": {files: {name: md5} (or their count), md5},
     "hardware": {cpu, cores, gpu}},
     "key": 12 hex digits of the environment's sha256: runs with the same key ran the same code on the same data,
            packages and hardware}

The data files are hashed once per data set and then cached outside the data folder (which is never written to),
keyed by each file's path, size and mtime: a changed file is hashed again.
"""

import hashlib
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("torch", "torchvision", "lightning", "torchmetrics", "jsonargparse", "optuna", "numpy")
LIST_FILES_UP_TO = 16  # a data set of more files (an image folder) records their count and one md5 over all of them


def cache_home(kind: str) -> Path:
    """This template's cache folder for one kind of thing (image-folders, md5): $XDG_CACHE_HOME or ~/.cache."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lightning-mnist-template" / kind


def git(*args: str) -> str | None:
    """A git command's output in this checkout, or None where there is no git or no repository (an installed copy)."""
    try:
        done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.decode(errors="replace") if done.returncode == 0 else None


def code() -> dict:
    """The commit, and whether the tree differs from it (tracked changes or untracked files git does not ignore);
    a dirty tree's diff (and the untracked files' names) hashed, so two runs of one dirty tree can be told apart."""
    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None, "diff_sha256": None}
    status = git("status", "--porcelain", "--untracked-files=all") or ""
    diff = (git("diff", "HEAD", "--binary") or "") + status
    return {
        "commit": commit.strip(),
        "dirty": bool(status.strip()),
        "diff_sha256": hashlib.sha256(diff.encode()).hexdigest()[:16] if status.strip() else None,
    }


def packages() -> dict:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def hardware(gpu: str | None = None) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": cores, "gpu": gpu}


def md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def data(folder: Path | None, cache_dir: Path | None = None) -> dict | None:
    """The md5 of every file under folder (a data set's files), from the cache when no file's size or mtime changed."""
    if folder is None or not folder.is_dir():
        return None
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    signature = [f"{p.relative_to(folder)}\t{p.stat().st_size}\t{p.stat().st_mtime_ns}" for p in files]
    key = hashlib.sha256("\n".join([str(folder.resolve()), *signature]).encode()).hexdigest()[:32]
    cache = (cache_dir or cache_home("md5")) / f"{key}.json"
    try:
        return json.loads(cache.read_text())
    except (OSError, ValueError):
        pass
    sums = {str(p.relative_to(folder)): md5(p) for p in files}
    record = {
        "files": sums if len(sums) <= LIST_FILES_UP_TO else len(sums),
        "md5": hashlib.md5("\n".join(f"{k} {v}" for k, v in sums.items()).encode()).hexdigest(),
    }
    try:  # a cache that cannot be written costs the next run the hashing, nothing else
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, cache)
    except OSError:
        pass
    return record


def key(environment: dict) -> str:
    return hashlib.sha256(json.dumps(environment, sort_keys=True).encode()).hexdigest()[:12]


def command(module: str | None = None, args: list[str] | None = None) -> str:
    """This process's command line as a user types it: python -m MODULE ARGS, or python SCRIPT ARGS; args None:
    sys.argv's."""
    args = sys.argv[1:] if args is None else args
    return shlex.join(["python", *(["-m", module] if module else [sys.argv[0]]), *args])


def collect(command: str, data_folder: Path | None = None, seed: int | None = None, gpu: str | None = None) -> dict:
    environment = {"git": code(), "packages": packages(), "data": data(data_folder), "hardware": hardware(gpu)}
    return {
        "command": command,
        "seed": seed,
        "data_folder": None if data_folder is None else str(data_folder),
        "environment": environment,
        "key": key(environment),
    }
