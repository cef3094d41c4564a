"""A run: the one owner of a run's folder, its checkpoints and its numbers. Nothing else knows the layout.

    <save_dir>/<config name>/version_N[_overrides]/
        config.yaml               the fit's full config (config_resume_K.yaml for each resume)
        metrics.json              best and last validation metrics, per-validation, per-epoch and per-step history,
                                  epochs, steps, parameter count, wall time (src/run/recorder.py writes it)
        checkpoints/              last.ckpt, epochXX-accY.ckpt (the best), interrupted.ckpt
        test_K/ validate_K/ predict_K/   one folder per evaluation, each with its own metrics.json
        (and whatever the logger writes: TensorBoard events, metrics.csv, hparams.yaml)

Lightning resolves "best" only inside the process that trained (Lightning issue #17312); here metrics.json names
it, so `--ckpt_path best|last|RUN:best|all:best` work in a new process with any logger.
"""

import functools
import itertools
import json
import logging
import os
import re
import shutil
from pathlib import Path

import torch

from src.errors import UsageError

VERSION = re.compile(r"version_(\d+)(_.*)?$")  # version_3, or version_3_lr-0.01 (see run_suffix)
_UNSAFE = re.compile(r"[^A-Za-z0-9.,=+\-\[\]_]")  # characters kept in a folder name
# Keys that say where or how a run is stored or launched, not what it trains.
NOT_NAMED = (
    "config",
    "ckpt_path",
    "print_config",
    "trainer.logger",
    "trainer.callbacks",
    "trainer.enable_progress_bar",
    "trainer.accelerator",
    "trainer.devices",
    "trainer.strategy",
    "trainer.num_nodes",
)
EVALUATIONS = ("validate", "test", "predict")
# The names inside a run; nothing outside this file spells them (tests/test_runs.py checks).
CONFIG, METRICS, CHECKPOINTS = "config.yaml", "metrics.json", "checkpoints"
LAST, INTERRUPTED = "last.ckpt", "interrupted.ckpt"
TEST_REPORT, PREDICTIONS, EXPORT = "test_report", "predictions.csv", "export"


def safe_name(text: str) -> str:
    """text as a folder name: '/' becomes '-', spaces and other unsafe characters go."""
    return _UNSAFE.sub("", str(text).replace("/", "-").replace(" ", ""))


def shell_safe(value) -> str:
    """A value as part of a run's name that no shell reads specially (no brackets, commas, '=', spaces or quotes,
    which break globs and look like assignments): [128, 64] -> 128-64, a/b -> a-b, -0.01 stays."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", re.sub(r"[\[\](){}\s'\"]", "", str(value)))


def run_suffix(changed: dict[str, object], limit: int = 160) -> str:
    """'_lr-0.01_hidden-128-64' from the values a command changed relative to its config files (dotted key ->
    value), so runs of one config tell apart in TensorBoard: each a.init_args.b becomes b-value (the last key
    segment), shell-safe. Cut at `limit` characters, well inside the file systems' 255."""
    parts = [
        f"{key.split('.')[-1]}-{shell_safe(value)}"
        for key, value in changed.items()
        if not key.startswith(NOT_NAMED) and not key.endswith("__path__")
    ]
    return ("_" + "_".join(parts))[:limit] if parts else ""


@functools.lru_cache(maxsize=2)  # a command reads one or two checkpoints; each may be large
def _load(path: Path, mtime_ns: int) -> dict:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, random bytes, a pickle that asks for arbitrary globals, ...
        reason = (str(err).strip().splitlines() or [""])[0][:200]
        raise UsageError(
            f"{path} is not a readable checkpoint ({type(err).__name__}: {reason}); pass another file, best or last"
        ) from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise UsageError(f"{path} is not a Lightning checkpoint (no state_dict); pass another file, best or last")
    return checkpoint


def load_checkpoint(path: Path) -> dict:
    """torch.load with weights_only=True (tensors and plain values only: a checkpoint cannot run code when loaded),
    an unreadable file as a one-line UsageError; read once per command (cached by path and modification time)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(
            f"checkpoint {path} does not exist; pass best, last, RUN:best, all:best or the path of a .ckpt file"
        )
    return _load(path, path.stat().st_mtime_ns)


def write_json(path: Path, values: dict) -> None:
    """Atomically: a reader sees the old file or the new one, never half of one (temp file in the same folder)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(values, indent=1) + "\n")
    os.replace(tmp, path)


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as err:
        raise UsageError(f"{path} is not valid JSON ({err}); delete it or pass --ckpt_path with a file") from err


def _mkdir_first_free(folders) -> Path:
    """The first of `folders` that this process creates itself (an exclusive mkdir): one another command made a
    moment ago is skipped, never shared."""
    for folder in folders:
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise AssertionError("an endless sequence of names ran out")


class Run:
    """One fit run's folder."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.held: set[Path] | None = None  # what the folder held before this command (None: this command made it)

    def __repr__(self) -> str:
        return f"Run({str(self.folder)!r})"

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def number(self) -> int:
        return int(VERSION.match(self.name).group(1))

    @property
    def checkpoints(self) -> Path:
        return self.folder / CHECKPOINTS

    @classmethod
    def of(cls, checkpoint: Path) -> "Run | None":
        """The run a checkpoint belongs to (<run>/checkpoints/x.ckpt), or None for a file elsewhere."""
        parent = Path(checkpoint).resolve().parent
        return cls(parent.parent) if parent.name == CHECKPOINTS and VERSION.match(parent.parent.name) else None

    @classmethod
    def claim(cls, root: Path, suffix: str = "") -> "Run":
        """A new version_N<suffix> under root, made here with an exclusive mkdir: two commands started together
        never share a folder."""
        root.mkdir(parents=True, exist_ok=True)
        return cls(_mkdir_first_free(root / f"version_{n}{suffix}" for n in itertools.count(next_version(root))))

    def metrics(self, evaluation: str | None = None) -> dict:
        """metrics.json of the run, or of one of its evaluations (a folder name, e.g. test_0); {} where absent."""
        return read_json((self.folder / evaluation if evaluation else self.folder) / METRICS)

    def write_metrics(self, values: dict, evaluation: str | None = None) -> None:
        write_json((self.folder / evaluation if evaluation else self.folder) / METRICS, values)

    def evaluations(self, kind: str = "test") -> list[str]:
        """The run's kind_K folders (test_0, test_1, ...), oldest first."""
        found = [p.name for p in self.folder.glob(f"{kind}_*") if re.fullmatch(rf"{kind}_\d+", p.name)]
        return sorted(found, key=lambda n: int(n.rpartition("_")[2]))

    def claim_evaluation(self, kind: str) -> str:
        """A new kind_K folder in the run (exclusive mkdir, as claim) -> its name."""
        return _mkdir_first_free(self.folder / f"{kind}_{k}" for k in itertools.count(len(self.evaluations(kind)))).name

    @property
    def config(self) -> Path:
        """The fit's config.yaml (a run's own config names its folder: trainer.logger.init_args.version)."""
        return self.folder / CONFIG

    def evaluation_config(self, evaluation: str) -> Path:
        return self.folder / evaluation / CONFIG

    def in_run(self, checkpoint: Path) -> str:
        """A checkpoint's name as metrics.json records it: relative to the run, which may move."""
        return f"{CHECKPOINTS}/{Path(checkpoint).name}"

    @property
    def trial_log(self) -> Path:
        """A sweep trial's log, beside its run folder: trial_<run name>.log."""
        return self.folder.parent / f"trial_{self.name}.log"

    def resume_config(self) -> str:
        """The file name of the config a resume saves beside the first one: config_resume_K.yaml, K unused."""
        k = 0
        while (self.folder / f"config_resume_{k}.yaml").exists():
            k += 1
        return f"config_resume_{k}.yaml"

    def numbers(self, metric: str) -> dict:
        """The numbers a report needs from one finished run's metrics.json: its objective, best val acc, test acc (its
        last evaluation), epochs, parameters, provenance, and per epoch every scalar logged by its end (train/acc,
        train/loss_epoch, val/acc, val/loss, grad_norm/..., with the epoch and optimizer step)."""
        fit, tests = self.metrics(), self.evaluations("test")
        test = self.metrics(tests[-1]).get("metrics", {}) if tests else {}
        nan = float("nan")
        return {
            "objective": fit.get("last", {}).get(metric, nan),
            "val_acc_best": max((v["val/acc"] for v in fit.get("validations", []) if "val/acc" in v), default=nan),
            "test_acc": test.get("test/acc", nan),
            "epochs": fit.get("epochs", 0),
            "num_params": fit.get("num_params", 0),
            "provenance": fit.get("provenance") or {},
            "epoch_ends": fit.get("epoch_ends", []),
            "last": fit.get("last", {}),
        }

    def best_checkpoint(self) -> Path:
        best = self.metrics().get("best") or {}
        if not best.get("path"):
            raise UsageError(
                f"{self.folder} records no best checkpoint (no metrics.json with one); pass --ckpt_path with a file"
            )
        path = self.checkpoints / Path(best["path"]).name  # by name: the run folder may have moved since
        if not path.is_file():
            raise UsageError(f"the best checkpoint {path} of {self.folder} is gone; pass --ckpt_path last or a file")
        return path

    def best_score(self) -> float | None:
        score = (self.metrics().get("best") or {}).get("score")
        return None if score is None else float(score)

    def latest_checkpoint(self) -> Path:
        """The newer of last.ckpt (end of the last validation) and interrupted.ckpt (Ctrl-C / SIGTERM); where that one
        cannot be read (a file broken outside this project's crash-safe saves), the newest readable checkpoint of the
        run, said on stderr."""
        found = [p for p in (self.checkpoints / LAST, self.checkpoints / INTERRUPTED) if p.is_file()]
        if not found:
            raise UsageError(f"{self.folder} has neither last.ckpt nor interrupted.ckpt; pass --ckpt_path with a file")
        newest = max(found, key=lambda p: p.stat().st_mtime_ns)
        try:
            load_checkpoint(newest)
            return newest
        except UsageError as err:
            others = sorted(
                (p for p in self.checkpoints.glob("*.ckpt") if p != newest), key=lambda p: -p.stat().st_mtime_ns
            )
            for other in others:
                try:
                    load_checkpoint(other)
                except UsageError:
                    continue
                logging.getLogger(__name__).warning(
                    f"{newest.name} cannot be read ({err}); using {other.name}, the newest "
                    "readable checkpoint of the run"
                )
                return other
            raise

    def describe(self, checkpoint: Path) -> str:
        """' (run version_2, val/acc 0.9824)' for the run's best checkpoint, ' (run version_2)' for its other ones."""
        best = self.metrics().get("best") or {}
        if best.get("path") and Path(best["path"]).name == Path(checkpoint).name and best.get("score") is not None:
            return f" (run {self.name}, {best.get('monitor', 'val/acc')} {best['score']:.4f})"
        return f" (run {self.name})"

    def watch(self) -> None:
        """Remember what the folder holds now, so that undo can take back what this command adds; refuse a folder
        this command could not write into (a read-only mount, another user's), before anything runs."""
        if self.folder.is_dir() and not os.access(self.folder, os.W_OK):
            raise UsageError(
                f"{self.folder} cannot be written (a read-only file system or another user's folder), "
                "and this command saves there; make it writable, or train a new run elsewhere with "
                "--trainer.logger.init_args.save_dir"
            )
        self.held = set(self.folder.iterdir()) if self.folder.is_dir() else None

    def undo(self, folder: Path | None = None) -> None:
        """Remove what this command wrote: the whole folder if the command made it, else only the entries it added
        (a failed resume or evaluation leaves the run as it was)."""
        target = folder or self.folder
        if folder is not None or self.held is None:
            shutil.rmtree(target, ignore_errors=True)
            return
        for entry in set(target.iterdir()) - self.held:
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)


def next_name(root: Path, suffix: str = "") -> str:
    """The name a new run under root would get now (another command may take it first: Run.claim takes it)."""
    return f"version_{next_version(root)}{suffix}"


def next_version(root: Path) -> int:
    """The N of a new version_N under root (one more than any version_N there, suffix or not)."""
    numbers = [int(m.group(1)) for p in root.glob("version_*") if (m := VERSION.match(p.name))]
    return max(numbers, default=-1) + 1


class Runs:
    """The fit runs of one config: <save_dir>/<config name>/version_*."""

    def __init__(self, root: Path, hint: str = ""):
        self.root, self.hint = Path(root), hint  # hint: the --config arguments that name this config

    def trained(self) -> list[Run]:
        """Runs that hold at least one checkpoint, oldest first."""
        runs = [
            Run(p)
            for p in self.root.glob("version_*")
            if VERSION.match(p.name) and any((p / CHECKPOINTS).glob("*.ckpt"))
        ]
        return sorted(runs, key=lambda r: r.number)

    def pick(self, which: str, kind: str) -> Run:
        """'' -> the newest run; 'all' -> the run with the best score (for best) or the newest (for last);
        a run's folder name, or its version_N alone -> that run."""
        runs = self.trained()
        if not runs:
            raise UsageError(
                f"no trained run with checkpoints under {self.root}; train first: python -m src.cli fit {self.hint}"
            )
        if not which or (which == "all" and kind == "last"):
            return runs[-1]
        if which == "all":
            return max(reversed(runs), key=lambda r: r.best_score() or float("-inf"))
        named = [r for r in runs if which in (r.name, f"version_{r.number}", str(r.number))]
        if len(named) != 1:
            raise UsageError(
                f"no trained run {which!r} under {self.root}; runs with checkpoints: "
                f"{', '.join(r.name for r in runs)} (pass NAME:best, NAME:last or all:best)"
            )
        return named[0]

    def resolve(self, ckpt_path: str) -> Path:
        """best | last -> that checkpoint of the newest run; RUN:best | RUN:last -> of the run named RUN; all:best ->
        the best score over all runs; anything else is the path of a checkpoint file. It must be readable."""
        which, _, kind = ckpt_path.rpartition(":") if ckpt_path.endswith((":best", ":last")) else ("", "", ckpt_path)
        if kind in ("best", "last") and "/" not in which:
            run = self.pick(which, kind)
            path = run.best_checkpoint() if kind == "best" else run.latest_checkpoint()
        else:
            path = Path(ckpt_path)
        load_checkpoint(path)  # fail here, in one line, rather than deep inside the trainer
        return path

    def better_than(self, run: Run) -> str | None:
        """A line naming another run of the config whose best score beats this run's, or None."""
        mine = run.best_score() if run.folder.resolve().parent == self.root.resolve() else None
        others = [(r.best_score(), r) for r in self.trained() if r.folder.resolve() != run.folder.resolve()]
        others = [(s, r) for s, r in others if s is not None and (mine is None or s > mine)]
        if not others:
            return None
        score, other = max(others, key=lambda t: t[0])
        return (
            f"note: run {other.name} of this config has a better best checkpoint (val/acc {score:.4f}"
            f"{'' if mine is None else f' vs {mine:.4f}'}): --ckpt_path {other.name}:best, "
            "or all:best for the best of all runs"
        )


def export_folder(checkpoint: Path) -> Path:
    """Where src.export writes a checkpoint's files: its run's export/, or export/ beside a file outside any run."""
    run = Run.of(checkpoint)
    return (run.folder if run is not None else Path(checkpoint).resolve().parent) / EXPORT
