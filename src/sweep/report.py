"""The sweep's report, rebuilt from the storage and the runs' metrics.json: results.csv, results.md and plots.

results_per_seed.csv holds every finished run (one row per point and seed) and epochs_per_seed.csv each run's
per-epoch train/val accuracy and loss, the numbers behind the means. One row per point (the values of the swept keys): its parameter count, best val acc and test acc (best
checkpoint) as mean +- std over the seeds that finished, epochs and wall time. Plots: the learning curves of every
point (val/acc and train/loss against the optimizer step, mean over seeds with a band from the lowest to the highest
seed), and the objective against each swept key with error bars (std over seeds).
"""

import csv
import json
import math
import re
import shlex
import statistics
from pathlib import Path

import matplotlib.pyplot as plt
import optuna
import yaml
from optuna.trial import TrialState

from src.sweep.spec import column, label, point_name
from src.sweep.trials import fit_args, run_numbers


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
        row = dict(label(k, v) for k, v in json.loads(key).items())
        row["params"] = runs[0]["num_params"]
        for name in ("objective", "val_acc_best", "test_acc"):
            row[f"{name}_mean"], row[f"{name}_std"] = mean_std([r[name] for r in runs])
        row["epochs"] = statistics.fmean(r["epochs"] for r in runs)
        row["wall_s"] = statistics.fmean(r["wall"] for r in runs)
        row["seeds"] = len(runs)
        table.append(row)
    return table


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_per_seed(grouped: dict[str, list[dict]], folder: Path) -> None:
    """results_per_seed.csv: a row per run; epochs_per_seed.csv: a row per run and validation (the i-th logged point
    of each per-epoch tag, with the optimizer step of its val/acc)."""
    runs, epochs = [], []
    for key, seeds in grouped.items():
        labels = dict(label(k, v) for k, v in json.loads(key).items())
        for r in seeds:
            runs.append({**labels, "seed": r["seed"], "params": r["num_params"], "objective": r["objective"],
                         "val_acc_best": r["val_acc_best"], "test_acc": r["test_acc"], "epochs": r["epochs"],
                         "wall_s": round(r["wall"], 1)})
            curves = r["epoch_curves"]
            for i, (step, val_acc) in enumerate(curves["val/acc"]):
                at = {tag.replace("/", "_"): (c[i][1] if i < len(c) else "") for tag, c in curves.items()}
                epochs.append({**labels, "seed": r["seed"], "epoch": i + 1, "step": step, **at})
    write_csv(folder / "results_per_seed.csv", runs)
    if epochs:
        write_csv(folder / "epochs_per_seed.csv", epochs)


def write_tables(table: list[dict], folder: Path, sweep) -> str:
    write_csv(folder / "results.csv", table)
    keys = [column(k) for k in sweep.params]
    lines = [f"| {' | '.join(keys)} | params | best val acc | test acc ({sweep.test_ckpt} ckpt) | epochs | wall s | seeds |",
             "|" + "---|" * (len(keys) + 6)]
    for r in table:
        lines.append(f"| {' | '.join(str(r[k]) for k in keys)} | {r['params']:,} | {100 * r['val_acc_best_mean']:.2f} ± "
                     f"{100 * r['val_acc_best_std']:.2f} % | {100 * r['test_acc_mean']:.2f} ± {100 * r['test_acc_std']:.2f} % "
                     f"| {r['epochs']:.1f} | {r['wall_s']:.0f} | {r['seeds']} |")
    text = "\n".join(lines)
    (folder / "results.md").write_text(f"# Sweep {sweep.name}\n\nobjective: {sweep.metric} ({sweep.direction}); "
                                       f"mean ± std over seeds {sweep.seeds}\n\n{text}\n")
    return text


def band(ax, curves: list[list[float]], xs, name: str) -> None:
    """Mean of the seeds' curves with a band from their lowest to their highest value."""
    n = min(len(c) for c in curves)
    if n == 0:  # a run too short to log a point (train/loss is written every log_every_n_steps)
        return
    columns = [[c[i] for c in curves] for i in range(n)]
    ax.plot(xs[:n], [statistics.fmean(c) for c in columns], label=name)
    ax.fill_between(xs[:n], [min(c) for c in columns], [max(c) for c in columns], alpha=0.2)


def smooth(values: list[float], weight: float = 0.9) -> list[float]:
    """TensorBoard's smoothing: an exponential moving average, debiased at the start. One logged mini-batch's loss is
    too noisy to compare runs by."""
    out, avg = [], 0.0
    for i, v in enumerate(values):
        avg = weight * avg + (1 - weight) * v
        out.append(avg / (1 - weight ** (i + 1)))
    return out


def plot_curves(grouped: dict[str, list[dict]], folder: Path) -> None:
    fig, (acc, loss) = plt.subplots(1, 2, figsize=(12, 4.5))
    for key, runs in grouped.items():
        name = point_name(json.loads(key))
        band(acc, [[v for _, v in r["val_curve"]] for r in runs], [s for s, _ in runs[0]["val_curve"]], name)
        band(loss, [smooth([v for _, v in r["loss_curve"]]) for r in runs], [s for s, _ in runs[0]["loss_curve"]], name)
    acc.set(xlabel="optimizer step", ylabel="validation accuracy (fraction)", title="val/acc (band: min-max over seeds)")
    loss.set(xlabel="optimizer step", ylabel="training loss (cross-entropy, nats)",
             title="train/loss (moving average 0.9 of the logged steps)")
    if loss.lines:
        loss.set_yscale("log")
    for ax in (acc, loss):
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    save(fig, folder / "curves.png")


def plot_grad_norms(grouped: dict[str, list[dict]], folder: Path) -> None:
    """Where runs logged grad_norm/* (src.callbacks.GradNorms): each weight's gradient norm, median over the logged
    steps and the seeds, against its depth (input first). A fan falling towards the input is a vanishing gradient."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for key, runs in grouped.items():
        # input layer first: by the module indices in the names (layers.2.weight before layers.10.weight)
        names = sorted(runs[0]["grad_norms"], key=lambda n: [int(i) for i in re.findall(r"\d+", n)])
        if names:
            ax.plot(range(1, len(names) + 1), [statistics.median(v for r in runs for v in r["grad_norms"][n]) for n in names],
                    "o-", label=point_name(json.loads(key)))
    if not ax.lines:
        return plt.close(fig)
    ax.set(xlabel="weight layer (1 = next to the input)", ylabel="gradient 2-norm (median over steps and seeds)",
           yscale="log", title="gradient norm per layer")
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=7)
    save(fig, folder / "grad_norms.png")


def save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_objective(table: list[dict], sweep, folder: Path) -> None:
    """One plot per swept key: the objective at each of its values, one series per setting of the other keys."""
    columns = [column(k) for k in sweep.params]
    for key in columns:
        others = [c for c in columns if c != key]
        xs = list(dict.fromkeys(r[key] for r in table))
        series: dict[tuple, list[dict]] = {}
        for r in table:
            series.setdefault(tuple(r[c] for c in others), []).append(r)
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        for i, (rest, rs) in enumerate(series.items()):
            shift = 0.08 * (i - (len(series) - 1) / 2)  # side by side, so that the error bars do not hide each other
            ax.errorbar([xs.index(r[key]) + shift for r in rs], [r["objective_mean"] for r in rs],
                        yerr=[r["objective_std"] for r in rs], fmt="o-", capsize=4,
                        label=", ".join(f"{c}={v}" for c, v in zip(others, rest)) or "mean ± std over seeds")
        ax.set_xticks(range(len(xs)), xs, rotation=20, fontsize=7)
        ax.set(xlabel=key, ylabel=f"{sweep.metric} (fraction)", title=f"{sweep.name}: {sweep.metric} against {key}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
        save(fig, folder / f"objective_{key}.png")


def write_best(grouped: dict[str, list[dict]], table: list[dict], sweep, folder: Path) -> str:
    """best.yaml: the point with the best mean objective over its seeds (table's rows are grouped's points, in order),
    and the command that trains it again."""
    sign = 1 if sweep.direction == "maximize" else -1
    key, row = max(zip(grouped, table), key=lambda kr: sign * kr[1]["objective_mean"]
                   if math.isfinite(kr[1]["objective_mean"]) else -math.inf)
    values = json.loads(key)
    command = shlex.join(["python", "-m", "src.cli", "fit", *fit_args(sweep, values, sweep.seeds[0])])
    best = {"point": dict(label(k, v) for k, v in values.items()), "values": values,
            sweep.metric: {"mean": row["objective_mean"], "std": row["objective_std"],
                           "seeds": [r["seed"] for r in grouped[key]]}, "command": command}
    (folder / "best.yaml").write_text(yaml.safe_dump(best, sort_keys=False, width=1000))
    return f"best: {point_name(values)} ({sweep.metric} {row['objective_mean']:.4f} ± {row['objective_std']:.4f}): " \
           f"{folder / 'best.yaml'}"


def report(study: optuna.Study, sweep, folder: Path) -> str:  # folder: where the report goes
    """Writes results.csv, results.md, results_per_seed.csv, epochs_per_seed.csv, best.yaml, curves.png, objective_<key>.png (and grad_norms.png) into folder."""
    grouped = points(study, sweep)
    if not grouped:
        return f"sweep {sweep.name}: no finished trial yet in {folder}"
    table = rows(grouped)
    text = write_tables(table, folder, sweep)
    write_per_seed(grouped, folder)
    plot_curves(grouped, folder)
    plot_objective(table, sweep, folder)
    plot_grad_norms(grouped, folder)
    pictures = ["curves.png", *(f"objective_{column(k)}.png" for k in sweep.params), "grad_norms.png"]
    with open(folder / "results.md", "a") as f:
        f.writelines(f"\n![{name[:-4]}]({name})\n" for name in pictures if (folder / name).is_file())
    return f"{text}\n{write_best(grouped, table, sweep, folder)}\nreport: {folder / 'results.md'}"
