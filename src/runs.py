"""Where runs live, and which checkpoint `--ckpt_path best|last` means in a new process.

Layout: <save_dir>/<config name>/version_N/{config.yaml, events..., checkpoints/{last.ckpt, epochXX-...ckpt,
interrupted.ckpt}}.
Lightning resolves "best" only inside the process that trained (Lightning issue #17312); here the newest
fit run of the config (or the one named, or the best of all) is found on disk, and its ModelCheckpoint state
(saved in last.ckpt) names the best.
Evaluation runs log into <run>/test_K (or validate_K, predict_K), never a version_N of their own.
"""

import functools
import re
from pathlib import Path

import torch

from src.errors import UsageError

_VERSION = re.compile(r"version_(\d+)(_.*)?$")  # version_3, or version_3_lr=0.01 (see run_suffix)
_UNSAFE = re.compile(r"[^A-Za-z0-9.,=+\-\[\]]")  # characters kept in a directory name
# Keys that say where or how a run is stored or launched, not what it trains.
_NOT_NAMED = ("config", "ckpt_path", "print_config", "trainer.logger", "trainer.callbacks", "trainer.enable_progress_bar",
              "trainer.accelerator", "trainer.devices", "trainer.strategy", "trainer.num_nodes")


def fit_runs(root: Path) -> list[Path]:
    """Run directories under <save_dir>/<name> that hold at least one checkpoint, oldest first."""
    runs = [p for p in root.glob("version_*") if _VERSION.match(p.name) and any((p / "checkpoints").glob("*.ckpt"))]
    return sorted(runs, key=lambda p: int(_VERSION.match(p.name).group(1)))


def load_checkpoint(path: Path) -> dict:
    """torch.load with weights_only=True (tensors and plain values only: a checkpoint cannot run code when
    loaded), turning an unreadable file into a one-line UsageError."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, random bytes, a pickle that asks for arbitrary globals, ...
        reason = str(err).strip().splitlines()[0][:200]
        raise UsageError(f"{path} is not a readable checkpoint ({type(err).__name__}: {reason}); "
                         "pass another file, best or last") from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise UsageError(f"{path} is not a Lightning checkpoint (no state_dict); pass another file, best or last")
    return checkpoint


def latest_checkpoint(run: Path) -> Path:
    """The newer of last.ckpt (end of the last validation) and interrupted.ckpt (Ctrl-C / SIGTERM)."""
    candidates = [p for p in (run / "checkpoints" / "last.ckpt", run / "checkpoints" / "interrupted.ckpt") if p.is_file()]
    if not candidates:
        raise UsageError(f"{run} has neither last.ckpt nor interrupted.ckpt; pass --ckpt_path with a file")
    return max(candidates, key=lambda p: p.stat().st_mtime_ns)


def _model_checkpoint_state(run: Path) -> dict:
    """The ModelCheckpoint callback's state as saved in the run's newest checkpoint (read once per file version:
    resolving best, describing it and comparing runs all ask for it)."""
    latest = latest_checkpoint(run)
    return _saved_state(latest, latest.stat().st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _saved_state(path: Path, mtime_ns: int) -> dict:
    state = load_checkpoint(path).get("callbacks", {})
    return next((s for k, s in state.items() if k.startswith("ModelCheckpoint")), {})


def best_checkpoint(run: Path) -> Path:
    """The best checkpoint of a fit run, as recorded by its ModelCheckpoint in the newest checkpoint."""
    path = _model_checkpoint_state(run).get("best_model_path")
    if not path:
        raise UsageError(f"{run} records no best checkpoint; pass --ckpt_path with a file")
    best = run / "checkpoints" / Path(path).name  # by name: the run directory may have moved since
    if not best.is_file():
        raise UsageError(f"the best checkpoint {best} of {run} is gone; pass --ckpt_path last or a file")
    return best


def best_score(run: Path) -> float | None:
    """The monitored value (val/acc) of the run's best checkpoint; None where the run records none."""
    score = _model_checkpoint_state(run).get("best_model_score")
    return None if score is None else float(score)


def _pick_run(which: str, kind: str, runs: list[Path], root: Path) -> Path:
    """'' -> the newest run; 'all' -> the run with the best val/acc (for best) or the newest (for last);
    a run's folder name, or its version_N alone -> that run."""
    if not which:
        return runs[-1]
    if which == "all":
        return max(reversed(runs), key=lambda r: best_score(r) or float("-inf")) if kind == "best" else runs[-1]
    named = [r for r in runs if r.name == which or _VERSION.match(r.name).group(1) == which.removeprefix("version_")]
    if len(named) != 1:
        raise UsageError(f"no trained run {which!r} under {root}; runs with checkpoints: "
                         f"{', '.join(r.name for r in runs)} (pass NAME:best, NAME:last or all:best)")
    return named[0]


def resolve_checkpoint(ckpt_path: str, root: Path, config_hint: str) -> Path:
    """best | last -> that checkpoint of the config's newest fit run under root; RUN:best | RUN:last -> of the run
    named RUN (a folder name, or version_N); all:best -> the best val/acc over all the config's runs;
    anything else is the path of a checkpoint file, which must exist and be readable."""
    which, _, kind = ckpt_path.rpartition(":") if ckpt_path.endswith((":best", ":last")) else ("", "", ckpt_path)
    if kind in ("best", "last") and "/" not in which:
        runs = fit_runs(root)
        if not runs:
            raise UsageError(f"no trained run with checkpoints under {root}; train first: python -m src.cli fit {config_hint}")
        run = _pick_run(which, kind, runs, root)
        path = best_checkpoint(run) if kind == "best" else latest_checkpoint(run)
    else:
        path = Path(ckpt_path)
        if not path.is_file():
            raise UsageError(f"checkpoint {path} does not exist; pass best, last, RUN:best, all:best or the path of a .ckpt file")
    load_checkpoint(path)  # fail here, in one line, rather than deep inside the trainer
    return path


def describe(path: Path) -> str:
    """' (run version_2, val/acc 0.9824)' for a run's best checkpoint, ' (run version_2)' for its other ones."""
    run = run_of(path)
    if run is None:
        return ""
    try:
        score = best_score(run) if path.resolve() == best_checkpoint(run).resolve() else None
    except UsageError:  # a run without last.ckpt or a recorded best: name the run alone
        score = None
    return f" (run {run.name}" + (f", val/acc {score:.4f})" if score is not None else ")")


def better_run(run: Path, root: Path) -> str | None:
    """A line naming another run of the config whose best val/acc beats this run's, or None."""
    runs = fit_runs(root)
    others = [r for r in runs if r.resolve() != run.resolve()]  # root may be relative (lightning_logs/...), run not
    mine = best_score(run) if len(others) < len(runs) else None
    scored = [(best_score(r), r) for r in others]
    scored = [(s, r) for s, r in scored if s is not None and (mine is None or s > mine)]
    if not scored:
        return None
    score, other = max(scored, key=lambda t: t[0])
    return (f"note: run {other.name} of this config has a better best checkpoint (val/acc {score:.4f}"
            f"{'' if mine is None else f' vs {mine:.4f}'}): --ckpt_path {other.name}:best, or all:best for the best of all runs")


def fit_summary(run: Path, best: Path, score: float | None, configs: str, save_dir: str) -> str:
    """The block printed at the end of `fit`: the run, its best checkpoint (epoch, val/acc) and the next commands."""
    epoch = load_checkpoint(best).get("epoch")
    logs = "" if Path(save_dir) == Path("lightning_logs") else f" --trainer.logger.init_args.save_dir {save_dir}"
    score_text = f", val/acc {score:.4f}" if score is not None else ""
    return "\n".join([
        f"run:   {run}",
        f"best:  {best} (epoch {epoch}{score_text})",
        f"test:  python -m src.cli test {configs}{logs} --ckpt_path best",
        f"watch: tensorboard --logdir {save_dir}",
    ])


def next_version(root: Path) -> int:
    """The N of a new version_N under root (one more than any version_N there, suffix or not)."""
    numbers = [int(m.group(1)) for p in root.glob("version_*") if (m := _VERSION.match(p.name))]
    return max(numbers, default=-1) + 1


def run_suffix(changed: dict[str, object], limit: int = 160) -> str:
    """'_lr=0.01_hidden=[128,64]' from the values a command changed relative to its config files (dotted key ->
    value), so runs of one config tell apart in TensorBoard: each a.init_args.b becomes b=value (the last key
    segment). Cut at `limit` characters, well inside the file systems' 255, so that a name still tells runs apart
    where several values changed."""
    parts = []
    for key, value in changed.items():
        if key.startswith(_NOT_NAMED) or key.endswith("__path__"):
            continue
        text = str(value).replace("/", "-").replace(" ", "")
        parts.append(f"{key.split('.')[-1]}={_UNSAFE.sub('', text)}")
    return ("_" + "_".join(parts))[:limit] if parts else ""


def run_of(checkpoint: Path) -> Path | None:
    """The run directory a checkpoint belongs to (<run>/checkpoints/x.ckpt), or None for a file elsewhere."""
    parent = checkpoint.resolve().parent
    return parent.parent if parent.name == "checkpoints" and _VERSION.match(parent.parent.name) else None


def next_free(run: Path, prefix: str) -> str:
    """prefix_K with the smallest K not yet used inside run (test_0, test_1, ...)."""
    k = 0
    while (run / f"{prefix}_{k}").exists():
        k += 1
    return f"{prefix}_{k}"


def read_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the TensorBoard event files directly inside log_dir: tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # heavy: only when asked

    scalars: dict[str, list[tuple[int, float]]] = {}
    for events in sorted(Path(log_dir).glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return scalars
