"""The sweep's report, rebuilt from the storage and the runs' event files: results.csv, results.md and plots.

One row per point (the values of the swept keys): its parameter count, best val acc and test acc (best
checkpoint) as mean +- std over the seeds that finished, epochs and wall time. Plots: the learning curves of every
point (val/acc per epoch and train/loss per step, mean over seeds with a band from the lowest to the highest
seed), and the objective against each swept key with error bars (std over seeds).
"""

import csv
import json
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from src.sweep.trials import as_arg, run_numbers  # noqa: E402


def points(study: optuna.Study, sweep) -> dict[str, list[dict]]:
    """Point (its values as JSON) -> the finished runs' numbers, one per seed, from every COMPLETE trial."""
    grouped: dict[str, list[dict]] = {}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        values = trial.user_attrs["values"]
        for run in trial.user_attrs["runs"]:
            numbers = run_numbers(Path(run["run"]), sweep.metric)
            grouped.setdefault(json.dumps(values), []).append({**numbers, "seed": run["seed"], "wall": run["wall"]})
    order = [json.dumps(v) for v in sweep.grid()] if sweep.sampler == "grid" else sorted(grouped)
    return {key: sorted(grouped[key], key=lambda r: r["seed"]) for key in order if key in grouped}


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def rows(grouped: dict[str, list[dict]]) -> list[dict]:
    table = []
    for key, runs in grouped.items():
        row = {k.rsplit(".", 1)[-1]: as_arg(v) for k, v in json.loads(key).items()}
        row["params"] = runs[0]["num_params"]
        for name in ("objective", "val_acc_best", "test_acc"):
            row[f"{name}_mean"], row[f"{name}_std"] = mean_std([r[name] for r in runs])
        row["epochs"] = statistics.fmean(r["epochs"] for r in runs)
        row["wall_s"] = statistics.fmean(r["wall"] for r in runs)
        row["seeds"] = len(runs)
        table.append(row)
    return table


def write_tables(table: list[dict], folder: Path, sweep) -> str:
    with open(folder / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    keys = [k.rsplit(".", 1)[-1] for k in sweep.params]
    lines = [f"| {' | '.join(keys)} | params | best val acc | test acc (best ckpt) | epochs | wall s | seeds |",
             "|" + "---|" * (len(keys) + 6)]
    for r in table:
        lines.append(f"| {' | '.join(str(r[k]) for k in keys)} | {r['params']:,} | {100 * r['val_acc_best_mean']:.2f} ± "
                     f"{100 * r['val_acc_best_std']:.2f} % | {100 * r['test_acc_mean']:.2f} ± {100 * r['test_acc_std']:.2f} % "
                     f"| {r['epochs']:.1f} | {r['wall_s']:.0f} | {r['seeds']} |")
    text = "\n".join(lines)
    (folder / "results.md").write_text(f"# Sweep {sweep.name}\n\nobjective: {sweep.metric} ({sweep.direction}); "
                                       f"mean ± std over seeds {sweep.seeds}\n\n{text}\n")
    return text


def band(ax, curves: list[list[float]], xs, label: str) -> None:
    """Mean of the seeds' curves with a band from their lowest to their highest value."""
    n = min(len(c) for c in curves)
    if n == 0:  # a run too short to log a point (train/loss is written every log_every_n_steps)
        return
    columns = [[c[i] for c in curves] for i in range(n)]
    ax.plot(xs[:n], [statistics.fmean(c) for c in columns], label=label)
    ax.fill_between(xs[:n], [min(c) for c in columns], [max(c) for c in columns], alpha=0.2)


def plot_curves(grouped: dict[str, list[dict]], folder: Path) -> None:
    fig, (acc, loss) = plt.subplots(1, 2, figsize=(12, 4.5))
    for key, runs in grouped.items():
        label = ", ".join(f"{k.rsplit('.', 1)[-1]}={as_arg(v)}" for k, v in json.loads(key).items())
        band(acc, [r["val_curve"] for r in runs], list(range(1, 1 + max(len(r["val_curve"]) for r in runs))), label)
        steps = [s for s, _ in runs[0]["loss_curve"]]
        band(loss, [[v for _, v in r["loss_curve"]] for r in runs], steps, label)
    acc.set(xlabel="epoch", ylabel="validation accuracy (fraction)", title="val/acc per epoch (band: min-max over seeds)")
    loss.set(xlabel="optimizer step", ylabel="training loss (cross-entropy, nats)", title="train/loss per logged step")
    if loss.lines:
        loss.set_yscale("log")
    for ax in (acc, loss):
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(folder / "curves.png", dpi=90)
    plt.close(fig)


def plot_objective(table: list[dict], sweep, folder: Path) -> None:
    for key in sweep.params:
        short = key.rsplit(".", 1)[-1]
        fig, ax = plt.subplots(figsize=(6, 4))
        xs = [r[short] for r in table]
        ax.errorbar(range(len(xs)), [r["objective_mean"] for r in table], yerr=[r["objective_std"] for r in table],
                    fmt="o", capsize=4, label=f"{sweep.metric}: mean ± std over seeds")
        ax.set_xticks(range(len(xs)), xs, rotation=30, fontsize=7)
        ax.set(xlabel=short, ylabel=f"{sweep.metric} (fraction)", title=f"{sweep.name}: {sweep.metric} against {short}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(folder / f"objective_{short}.png", dpi=90)
        plt.close(fig)


def report(study: optuna.Study, sweep, folder: Path) -> str:
    """Writes results.csv, results.md, curves.png and objective_<key>.png into folder; returns the table."""
    grouped = points(study, sweep)
    if not grouped:
        return f"sweep {sweep.name}: no finished trial yet in {folder}"
    table = rows(grouped)
    text = write_tables(table, folder, sweep)
    plot_curves(grouped, folder)
    plot_objective(table, sweep, folder)
    best = study.best_trial if sweep.sampler != "grid" else None
    extra = f"\nbest: {json.dumps(best.user_attrs['values'])} ({sweep.metric} {best.value:.4f})" if best else ""
    return f"{text}{extra}\nreport: {folder / 'results.md'}"
