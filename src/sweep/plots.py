"""The sweep report's plots, drawn from the per-seed files alone (src/sweep/report.py):

curves.png        per point, accuracy and loss of training (dashed) and validation (solid) at each epoch's end against
                  the optimizer step: mean over seeds, validation with a band from the lowest to the highest seed;
objective_<key>.png  the objective at each value of a swept key, error bars: the 95 % interval of the mean;
grad_norms.png    where runs logged grad_norm/* (src.callbacks.gradnorm.GradNorms): each weight's gradient norm,
                  median over epochs and seeds, against its depth;
pareto.png        a sweep with trade-offs: each point at its first two objectives, the Pareto front joined.

Hand-made rather than optuna.visualization.matplotlib's: those plot one value per trial from the storage (a grid
point over 3 seeds is 3 trials there, and a committed study has no storage); these plot means and intervals over
seeds from the per-seed files.
"""

import json
import math
import re
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display is ever needed
import matplotlib.pyplot as plt  # noqa: E402

from src.sweep.spec import column, point_name, target_column  # noqa: E402

METADATA = {"Software": None}  # no matplotlib version in the PNG: a rebuilt plot is the committed one byte for byte


def save(fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=90, metadata=METADATA)
    plt.close(fig)
    return path.name


def by_seed(rows: list[dict], tag: str) -> list[list[tuple[int, float]]]:
    """[(step, value)] of each seed's epochs that logged tag, seed by seed."""
    seeds: dict[int, list] = {}
    for r in rows:
        if isinstance(r.get(tag), float):
            seeds.setdefault(r["seed"], []).append((r["step"], r[tag]))
    return list(seeds.values())


def line(ax, curves: list[list[tuple[int, float]]], name: str, style: str, color=None, band: bool = False):
    """The seeds' mean at each epoch they all reached; band: from their lowest to their highest value."""
    n = min((len(c) for c in curves), default=0)
    if n == 0:
        return color
    xs = [curves[0][i][0] for i in range(n)]
    columns = [[c[i][1] for c in curves] for i in range(n)]
    (drawn,) = ax.plot(xs, [statistics.fmean(c) for c in columns], style, color=color, label=name)
    if band:
        ax.fill_between(xs, [min(c) for c in columns], [max(c) for c in columns], alpha=0.15, color=drawn.get_color())
    return drawn.get_color()


def curves(epochs: dict[str, list[dict]], folder: Path) -> list[str]:
    fig, (acc, loss) = plt.subplots(1, 2, figsize=(12, 4.5))
    for key, rows in epochs.items():
        name = point_name(json.loads(key))
        color = line(acc, by_seed(rows, "val_acc"), f"{name} val", "-", band=True)
        line(acc, by_seed(rows, "train_acc"), f"{name} train", "--", color)
        color = line(loss, by_seed(rows, "val_loss"), f"{name} val", "-", band=True)
        line(loss, by_seed(rows, "train_loss_epoch"), f"{name} train", "--", color)
    if not acc.lines:
        plt.close(fig)
        return []
    acc.set(
        xlabel="optimizer step",
        ylabel="accuracy (fraction)",
        title="accuracy at each epoch's end (band: min-max over seeds)",
    )
    loss.set(
        xlabel="optimizer step", ylabel="cross-entropy (nats)", title="loss (train: the epoch's mean)", yscale="log"
    )
    for ax in (acc, loss):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6, ncol=2)
    return [save(fig, folder / "curves.png")]


def objective(table: list[dict], sweep, folder: Path) -> list[str]:
    """One plot per swept key: the objective at each of its values, one series per setting of the other keys."""
    names, columns = [], [column(k) for k in sweep.params]
    for key in columns:
        others = [c for c in columns if c != key]
        xs = list(dict.fromkeys(r[key] for r in table))
        series: dict[tuple, list[dict]] = {}
        for r in table:
            series.setdefault(tuple(r[c] for c in others), []).append(r)
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        for i, (rest, rs) in enumerate(series.items()):
            shift = 0.08 * (i - (len(series) - 1) / 2)  # side by side, so that the error bars do not hide each other
            ax.errorbar(
                [xs.index(r[key]) + shift for r in rs],
                [r["objective_mean"] for r in rs],
                yerr=[0 if math.isnan(r["objective_ci95"]) else r["objective_ci95"] for r in rs],
                fmt="o-",
                capsize=4,
                label=", ".join(f"{c}={v}" for c, v in zip(others, rest)) or "mean, 95 % interval",
            )
        ax.set_xticks(range(len(xs)), xs, rotation=20, fontsize=7)
        ax.set(xlabel=key, ylabel=f"{sweep.metric} (fraction)", title=f"{sweep.name}: {sweep.metric} against {key}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
        names.append(save(fig, folder / f"objective_{key}.png"))
    return names


def grad_norms(epochs: dict[str, list[dict]], folder: Path) -> list[str]:
    """A fan falling towards the input is a vanishing gradient."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for key, rows in epochs.items():
        # input layer first: by the module indices in the names (layers.2.weight before layers.10.weight)
        names = sorted(
            {k for r in rows for k in r if k.startswith("grad_norm_") and isinstance(r[k], float)},
            key=lambda n: [int(i) for i in re.findall(r"\d+", n)],
        )
        if names:
            ax.plot(
                range(1, len(names) + 1),
                [statistics.median(r[n] for r in rows if isinstance(r.get(n), float)) for n in names],
                "o-",
                label=point_name(json.loads(key)),
            )
    if not ax.lines:
        plt.close(fig)
        return []
    ax.set(
        xlabel="weight layer (1 = next to the input)",
        ylabel="gradient 2-norm (median over epochs and seeds)",
        yscale="log",
        title="gradient norm per layer",
    )
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return [save(fig, folder / "grad_norms.png")]


def pareto(table: list[dict], sweep, folder: Path) -> list[str]:
    """A two-objective sweep: every point at (second objective, first objective), the front joined and labelled."""
    if not sweep.trade_offs:
        return []
    (first, _), (second, direction) = sweep.targets[:2]
    x = target_column(second)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.scatter([r[x] for r in table], [r["objective_mean"] for r in table], color="grey", label="points")
    front = sorted((r for r in table if r["pareto"]), key=lambda r: r[x])
    ax.plot([r[x] for r in front], [r["objective_mean"] for r in front], "o-", color="C3", label="Pareto front")
    for r in front:
        ax.annotate(
            ", ".join(f"{column(k)}={r[column(k)]}" for k in sweep.params),
            (r[x], r["objective_mean"]),
            fontsize=7,
            xytext=(4, -10),
            textcoords="offset points",
        )
    ax.set(xlabel=f"{second} ({direction})", ylabel=f"{first} (mean over seeds)", title=f"{sweep.name}: trade-off")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    return [save(fig, folder / "pareto.png")]


def draw(epochs: dict[str, list[dict]], table: list[dict], sweep, folder: Path) -> list[str]:
    """-> the names of the pictures drawn, in the order results.md shows them."""
    return [
        *curves(epochs, folder),
        *objective(table, sweep, folder),
        *grad_norms(epochs, folder),
        *pareto(table, sweep, folder),
    ]
