"""The sweep's report, in two steps, so that a committed report is data that rebuilds itself:

1. record(): every finished run's numbers, from the storage and the runs' metrics.json (any logger), into
   results_per_seed.csv (a row per run: point, seed, parameters, objective, best val acc, test acc, epochs, wall
   time, and its provenance: key, commit, dirty tree, command), epochs_per_seed.csv (a row per run and epoch: every
   scalar logged by the epoch's end) and provenance.json (each provenance key's environment, src/provenance.py).
2. build(): everything else from those files alone: results.csv and results.md (per point mean, std and the 95 %
   Student-t interval over seeds; each point's paired difference to the best with its interval and p-value,
   src/stats.py), best.yaml and the plots (src/sweep/plots.py). --report-only in a clone with neither runs nor
   storage rebuilds a committed report from its two per-seed files.
"""

import csv
import json
import math
import shlex
from pathlib import Path

import optuna
import yaml
from optuna.trial import TrialState

from src import stats
from src.run.layout import Run
from src.sweep import plots
from src.sweep.spec import COLUMNS, column, label, point_name, target_column
from src.sweep.trials import fit_args

PER_SEED, PER_EPOCH = "results_per_seed.csv", "epochs_per_seed.csv"
METRICS = ("objective", "val_acc_best", "test_acc")  # the per-seed numbers summarised per point
UNRECORDED = "-"  # the provenance key of a run made before runs recorded theirs


def write_csv(path: Path, rows: list[dict]) -> None:
    fields = list(dict.fromkeys(k for r in rows for k in r))  # every row's keys, first seen first (grad norms vary)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)


def record(study: optuna.Study, sweep, folder: Path) -> int:
    """results_per_seed.csv, epochs_per_seed.csv and provenance.json from every COMPLETE trial -> runs recorded."""
    runs, epochs, environments, seen = [], [], {}, set()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        if "runs" not in trial.user_attrs:  # a grid's placeholder (no point left), not a run
            continue
        values = trial.user_attrs["values"]
        labels = {**dict(label(k, v) for k, v in values.items()), "point": json.dumps(values)}
        for run in trial.user_attrs["runs"]:
            if (labels["point"], run["seed"]) in seen:  # a point TPE/random drew again: the same seed repeats the
                continue  # same run, which is no second sample (the statistics count seeds); the first trial's stays
            seen.add((labels["point"], run["seed"]))
            numbers = Run(Path(run["run"])).numbers(sweep.metric)
            made = numbers["provenance"]
            environments[made.get("key", UNRECORDED)] = made.get("environment")
            git = (made.get("environment") or {}).get("git", {})
            state = {"state": trial.state.name.lower()} if sweep.pruner else {}  # complete | pruned (stopped early)
            runs.append(
                {
                    **labels,
                    "seed": run["seed"],
                    **state,
                    "params": numbers["num_params"],
                    **{name: numbers[name] for name in METRICS},
                    "epochs": numbers["epochs"],
                    "wall_s": round(run["wall"], 1),
                    **{target_column(m): numbers["last"].get(m) for m, _ in sweep.targets[1:] if m not in COLUMNS},
                    "provenance": made.get("key", UNRECORDED),
                    "commit": git.get("commit"),
                    "dirty": git.get("dirty"),
                    "command": made.get("command"),
                }
            )
            epochs += [
                {
                    **labels,
                    "seed": run["seed"],
                    **{k.replace("/", "_"): v for k, v in end.items()},
                    "epoch": end["epoch"] + 1,
                }
                for end in numbers["epoch_ends"]
            ]  # epoch: how many are done
    if not runs:
        return 0
    order = {json.dumps(v): i for i, v in enumerate(sweep.grid())} if sweep.sampler == "grid" else {}
    by_point = lambda r: (order.get(r["point"], len(order)), r["point"], r["seed"], r.get("epoch", 0))  # noqa: E731
    write_csv(folder / PER_SEED, sorted(runs, key=by_point))
    if epochs:
        write_csv(folder / PER_EPOCH, sorted(epochs, key=by_point))
    (folder / "provenance.json").write_text(json.dumps(environments, indent=1, sort_keys=True) + "\n")
    return len(runs)


def pareto(table: list[dict], sweep) -> list[bool]:
    """Whether each point is on the Pareto front of the sweep's objectives (their means over seeds): no other point
    is at least as good in every objective and better in one."""
    signs = [1 if d == "maximize" else -1 for _, d in sweep.targets]
    columns = ["objective_mean", *(target_column(m) for m, _ in sweep.targets[1:])]
    scores = [[sign * row[c] for sign, c in zip(signs, columns)] for row in table]
    return [not any(all(o >= m for o, m in zip(other, mine)) and other != mine for other in scores) for mine in scores]


def number(text: str):
    """A CSV cell back as the value it was written from (repr round-trips floats exactly; True/False: flags); text
    stays text."""
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: number(v) for k, v in row.items()} for row in csv.DictReader(f)]


def grouped(rows: list[dict]) -> dict[str, list[dict]]:
    """point (its values as JSON) -> its rows, in the file's order (the grid's)."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["point"], []).append(r)
    return groups


def rows(points: dict[str, list[dict]], sweep) -> list[dict]:
    """A row per point: values, params, mean/std/ci95 per metric, epochs, wall; then the paired difference of its
    objective and test acc to the best point's (by mean objective) on the seeds both ran."""
    sign = 1 if sweep.direction == "maximize" else -1
    table = []
    for key, runs in points.items():
        row = dict(label(k, v) for k, v in json.loads(key).items())
        row["params"] = runs[0]["params"]
        for name in METRICS:
            s = stats.summary([r[name] for r in runs])
            row[f"{name}_mean"], row[f"{name}_std"], row[f"{name}_ci95"] = s.mean, s.std, s.half_width
        row["epochs"] = sum(r["epochs"] for r in runs) / len(runs)
        row["wall_s"] = sum(r["wall_s"] for r in runs) / len(runs)
        row["seeds"] = len(runs)
        for metric, _ in sweep.targets[1:]:
            if metric not in COLUMNS:
                row[target_column(metric)] = sum(r[target_column(metric)] for r in runs) / len(runs)
        if "state" in runs[0]:
            row["pruned"] = sum(r["state"] == "pruned" for r in runs)
        table.append(row)
    best = max(
        range(len(table)),
        key=lambda i: sign * table[i]["objective_mean"] if math.isfinite(table[i]["objective_mean"]) else -math.inf,
    )
    runs_of = list(points.values())
    for i, row in enumerate(table):
        pair(row, runs_of[i], runs_of[best], "best")
        row["best"] = i == best
        if sweep.reference:  # the same point with the reference columns' values (spec.py checked they exist)
            labels = {**{k: row[k] for k in keys_of(sweep)}, **sweep.reference}
            ref = next(j for j, r in enumerate(table) if all(str(r[k]) == v for k, v in labels.items()))
            pair(row, runs_of[i], runs_of[ref], "ref")
            row["reference"] = ref == i
    if sweep.trade_offs:
        for row, on_front in zip(table, pareto(table, sweep)):
            row["pareto"] = on_front
    return table


def pair(row: dict, runs: list[dict], other: list[dict], to: str) -> None:
    """row's objective and test acc minus other's, paired by seed: <metric>_vs_<to>[_ci95, _p, _resolved]."""
    for name in ("objective", "test_acc"):
        p = stats.paired({r["seed"]: r[name] for r in runs}, {r["seed"]: r[name] for r in other})
        row[f"{name}_vs_{to}"], row[f"{name}_vs_{to}_ci95"] = p.difference.mean, p.difference.half_width
        row[f"{name}_vs_{to}_p"], row[f"{name}_vs_{to}_resolved"] = p.p, p.resolved
        row[f"vs_{to}_seeds"] = p.difference.n  # the seeds both points ran


def keys_of(sweep) -> list[str]:
    """The table's columns for the swept keys."""
    return [column(k) for k in sweep.params]


def percent(mean: float, std: float, ci: float) -> str:
    interval = "" if math.isnan(ci) else f" (± {100 * ci:.2f})"
    return f"{100 * mean:.2f} ± {100 * std:.2f}{interval} %"


def difference(row: dict, name: str, to: str = "best") -> str:
    if row["best" if to == "best" else "reference"]:
        return "(best)" if to == "best" else "(reference)"
    if math.isnan(row[f"{name}_vs_{to}_p"]):
        return f"{100 * row[f'{name}_vs_{to}']:+.2f} % (one shared seed: no test)"
    verdict = "resolved" if row[f"{name}_vs_{to}_resolved"] else f"not resolved with {row[f'vs_{to}_seeds']} seeds"
    return (
        f"{100 * row[f'{name}_vs_{to}']:+.2f} ± {100 * row[f'{name}_vs_{to}_ci95']:.2f} %, "
        f"p = {row[f'{name}_vs_{to}_p']:.2g}, {verdict}"
    )


def markdown(table: list[dict], sweep) -> str:
    keys = keys_of(sweep)
    lines = [
        f"| {' | '.join(keys)} | params | best val acc | test acc ({sweep.test_ckpt} ckpt) | epochs | wall s | seeds |",
        "|" + "---|" * (len(keys) + 6),
    ]
    lines += [
        f"| {' | '.join(str(r[k]) for k in keys)} | {r['params']:,} | "
        f"{percent(r['val_acc_best_mean'], r['val_acc_best_std'], r['val_acc_best_ci95'])} | "
        f"{percent(r['test_acc_mean'], r['test_acc_std'], r['test_acc_ci95'])} | {r['epochs']:.1f} | "
        f"{r['wall_s']:.0f} | {r['seeds']}{' (pruned)' if r.get('pruned') else ''} |"
        for r in table
    ]
    lines += [
        "",
        f"Paired by seed against the best point (by mean {sweep.metric}): the mean difference ± the half-width "
        "of its 95 % Student-t interval, and a two-sided paired t-test; resolved: the interval excludes 0.",
        "",
        f"| {' | '.join(keys)} | {sweep.metric} − best | test acc − best |",
        "|" + "---|" * (len(keys) + 2),
    ]
    lines += [
        f"| {' | '.join(str(r[k]) for k in keys)} | {difference(r, 'objective')} | {difference(r, 'test_acc')} |"
        for r in table
    ]
    if sweep.reference:
        ref = ", ".join(f"{k} = {v}" for k, v in sweep.reference.items())
        lines += [
            "",
            f"Paired by seed against the same point with {ref}, as above:",
            "",
            f"| {' | '.join(keys)} | {sweep.metric} − reference | test acc − reference |",
            "|" + "---|" * (len(keys) + 2),
        ]
        lines += [
            f"| {' | '.join(str(r[k]) for k in keys)} | {difference(r, 'objective', 'ref')} | "
            f"{difference(r, 'test_acc', 'ref')} |"
            for r in table
        ]
    if sweep.trade_offs:
        goals = ", ".join(f"{m} ({d})" for m, d in sweep.targets)
        front = [", ".join(str(r[k]) for k in keys) for r in table if r["pareto"]]
        lines += ["", f"Pareto front of {goals}, on the means over seeds: {'; '.join(front)}"]
    return "\n".join(lines)


def write_best(points: dict[str, list[dict]], table: list[dict], sweep, folder: Path) -> str:
    """best.yaml: the point with the best mean objective and the command that trains it again."""
    key, row = next((k, r) for k, r in zip(points, table) if r["best"])
    values = json.loads(key)
    command = shlex.join(["python", "-m", "src.cli", "fit", *fit_args(sweep, values, sweep.seeds[0])])
    best = {
        "point": dict(label(k, v) for k, v in values.items()),
        "values": values,
        sweep.metric: {
            "mean": row["objective_mean"],
            "std": row["objective_std"],
            "ci95": row["objective_ci95"],
            "seeds": [r["seed"] for r in points[key]],
        },
        "command": command,
    }
    (folder / "best.yaml").write_text(yaml.safe_dump(best, sort_keys=False, width=1000))
    return (
        f"best: {point_name(values)} ({sweep.metric} {row['objective_mean']:.4f} ± {row['objective_std']:.4f}): "
        f"{folder / 'best.yaml'}"
    )


def build(sweep, folder: Path) -> str:
    """results.csv, results.md, best.yaml and the plots from results_per_seed.csv and epochs_per_seed.csv alone."""
    points = grouped(read_csv(folder / PER_SEED))
    epochs = grouped(read_csv(folder / PER_EPOCH)) if (folder / PER_EPOCH).is_file() else {}
    table = rows(points, sweep)
    write_csv(folder / "results.csv", table)
    text = markdown(table, sweep)
    pictures = plots.draw(epochs, table, sweep, folder)
    (folder / "results.md").write_text(
        f"# Sweep {sweep.name}\n\nobjective: {sweep.metric} ({sweep.direction}); mean ± std (± half-width of the 95 % "
        f"Student-t interval of the mean) over seeds {sweep.seeds}; rebuilt from {PER_SEED} by the sweep's command "
        f"with --report-only\n\n{text}\n" + "".join(f"\n![{name[:-4]}]({name})\n" for name in pictures)
    )
    return f"{text}\n{write_best(points, table, sweep, folder)}\nreport: {folder / 'results.md'}"


def report(study: optuna.Study | None, sweep, folder: Path) -> str:
    """Records the finished runs (when there is a study with some) and builds the report from the per-seed files."""
    if study is not None and record(study, sweep, folder) == 0 and not (folder / PER_SEED).is_file():
        return f"sweep {sweep.name}: no finished trial yet in {folder}"
    if not (folder / PER_SEED).is_file():
        return f"sweep {sweep.name}: neither a study nor {folder / PER_SEED} to report from"
    return build(sweep, folder)
