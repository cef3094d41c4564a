"""A sweep file: which configs, which keys to vary and how, over which seeds, judged by which metric.

base: configs/mnist_mlp.yaml            # one or a list of --config files
overrides: {trainer.max_epochs: 5}      # fixed dotted CLI keys for every trial
params:                                 # dotted CLI keys -> a list (grid) or a distribution
  model.init_args.net.init_args.hidden: [[32], [64], [128]]
  model.init_args.optimizer.init_args.lr: {low: 1.0e-4, high: 1.0e-1, log: true}
  net:                                  # a key without a dot is a group: each value sets several keys at once
    - {name: mlp, config: configs/mnist_mlp.yaml}                 # name: the value's label in names and tables
    - {name: cnn, config: configs/mnist_cnn.yaml, model.init_args.net.init_args.batchnorm: false}
seeds: [0, 1, 2]                        # each point repeated: seed_everything and the data module's seed
sampler: grid                           # grid (lists only) | tpe | random
trials: 20                              # for tpe / random: how many points
objective: {metric: val/acc_best, direction: maximize}  # or a list: the first, then trade-offs against it, e.g.
                                        # [{metric: val/acc_best, direction: maximize},
                                        #  {metric: num_params, direction: minimize}]: the report's Pareto front
                                        # (num_params, wall_s, or any metric the run logs)
test_ckpt: best                         # which checkpoint each trial tests: best (by val/acc) | last (the last epoch's)
pruner: {name: median, n_warmup_steps: 2}  # tpe / random only: stop hopeless trials (median | successive_halving |
                                        # hyperband | threshold, with the pruner's arguments; steps count the fit's
                                        # validations)
reference: {trick: 1-baseline}          # the report also pairs each point with the one that differs from it only
                                        # in these columns' values (an ablation against its baseline)
extends: tricks.yaml                    # another sweep file (relative to this one): its keys, then this file's on
                                        # top (overrides merged key by key), e.g. the same study on other data
"""

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from src.errors import UsageError

SAMPLERS = ("grid", "tpe", "random")
KEYS = {
    "base",
    "overrides",
    "params",
    "seeds",
    "sampler",
    "trials",
    "objective",
    "test_ckpt",
    "extends",
    "pruner",
    "reference",
}


@dataclass
class Sweep:
    name: str  # the file's stem: lightning_logs/sweeps/<name>/
    base: list[str]
    params: dict[str, list | dict]
    overrides: dict = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    sampler: str = "grid"
    trials: int = 20
    metric: str = "val/acc_best"
    direction: str = "maximize"
    test_ckpt: str = "best"  # the checkpoint each trial's test command evaluates: best | last
    pruner: dict | None = None  # {name, the pruner's arguments} (src/sweep/prune.py); None: every trial runs to its end
    trade_offs: list[dict] = field(default_factory=list)  # further objectives [{metric, direction}]: a Pareto front
    reference: dict = field(
        default_factory=dict
    )  # {column: value label}: the report's second comparison (not the study's)

    @property
    def targets(self) -> list[tuple[str, str]]:
        """(metric, direction) of every objective, the first one first."""
        return [(self.metric, self.direction), *((t["metric"], t["direction"]) for t in self.trade_offs)]

    def grid(self) -> list[dict]:
        """Every combination of the listed values, in the file's order (the last key varies fastest)."""
        keys = list(self.params)
        return [dict(zip(keys, values)) for values in itertools.product(*(self.params[k] for k in keys))]

    def checked_points(self) -> list[dict]:
        """The grid points validate() builds before a sweep: every combination of the keys that choose classes (a
        group with a config file or a class_path, a class_path key), and on each of those every value of each other key
        once, the rest at their first values. Each value then meets each class it can be given to, as in the whole
        grid: seed 001's 243-point grid is 11 builds instead of 243."""
        choosing = [k for k in self.params if chooses_class(k, self.params[k])]
        points = []
        for combination in itertools.product(*(self.params[k] for k in choosing)):
            first = {k: v[0] for k, v in self.params.items()} | dict(zip(choosing, combination))
            points += [first, *({**first, k: v} for k in self.params if k not in choosing for v in self.params[k][1:])]
        return points

    def settings(self, values: dict) -> tuple[list[str], dict]:
        """A point -> (its --config files, its dotted keys in order): groups expanded, their config files after base."""
        configs, keys = list(self.base), {}
        for key, value in values.items():
            if is_group(key):
                configs += [value["config"]] if "config" in value else []
                keys.update({k: v for k, v in value.items() if k not in ("name", "config")})
            else:
                keys[key] = value
        return configs, keys

    def space(self) -> str:
        """What identifies the search: a sweep of the same name must not change it (see src.sweep.__main__)."""
        last = (
            {"test_ckpt": self.test_ckpt} if self.test_ckpt != "best" else {}
        )  # studies from before the key: unchanged
        extra = {
            **({"pruner": self.pruner} if self.pruner else {}),
            **({"trade_offs": self.trade_offs} if self.trade_offs else {}),
        }
        return json.dumps(
            {
                "base": self.base,
                "overrides": self.overrides,
                "params": self.params,
                "seeds": self.seeds,
                "sampler": self.sampler,
                "metric": self.metric,
                **last,
                **extra,
            },
            sort_keys=True,
        )


def is_group(key: str) -> bool:
    return "." not in key


def chooses_class(key: str, values: list) -> bool:
    """Whether a swept key can change which classes the others are given to (Sweep.checked_points)."""
    if is_group(key):
        return any("config" in v or any(k.endswith("class_path") for k in v) for v in values)
    return key.endswith("class_path")


def column(key: str) -> str:
    """A swept key's short name in tables, plots and trial names: a group's own name, else the key's last part."""
    return key if is_group(key) else key.rsplit(".", 1)[-1]


def label(key: str, value) -> tuple[str, str]:
    """(column, value) as tables and trial names show a point's value: a group value's name, else compact JSON."""
    if is_group(key):
        return key, str(value["name"])
    return column(key), json.dumps(value).replace(" ", "") if isinstance(value, (list, dict)) else str(value)


def point_name(values: dict, sep: str = ", ") -> str:
    """A point as its labels say it: hidden=[64], lr=0.01 (legends, best.yaml) or hidden=[64]_lr=0.01 (folders)."""
    return sep.join("=".join(label(k, v)) for k, v in values.items())


def read(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """A sweep file's keys, with those of the file it extends underneath (its overrides merged key by key)."""
    if not path.is_file():
        raise UsageError(f"sweep file {path} does not exist; pass a file such as configs/sweeps/tricks.yaml")
    spec = yaml.safe_load(path.read_text()) or {}
    unknown = set(spec) - KEYS
    if unknown:
        raise UsageError(f"{path}: unknown key {sorted(unknown)[0]!r}; a sweep file has {', '.join(sorted(KEYS))}")
    if "extends" not in spec:
        return spec
    parent = path.parent / str(spec.pop("extends"))
    if parent.resolve() in seen:
        raise UsageError(f"{path}: extends {parent}, which extends it again: the files extend each other in a loop")
    below = read(parent, (*seen, path.resolve()))
    return {**below, **spec, "overrides": {**(below.get("overrides") or {}), **(spec.get("overrides") or {})}}


def load(path: Path) -> Sweep:
    """Read and check a sweep file; every problem is a one-line UsageError that says what to change."""
    spec = read(path)
    base = spec.get("base", [])
    base = [base] if isinstance(base, str) else base
    if not isinstance(base, list) or not all(isinstance(b, str) for b in base):
        raise UsageError(
            f"{path}: base must name the --config file(s) to start from, e.g. base: configs/mnist_mlp.yaml"
        )
    objective = spec.get("objective") or {}
    objective, *trade_offs = objective if isinstance(objective, list) and objective else [objective]
    if not isinstance(objective, dict) or not all(
        isinstance(t, dict) and {"metric", "direction"} <= set(t) for t in trade_offs
    ):
        raise UsageError(
            f"{path}: objective is {{metric, direction}} or a list of them, e.g. [{{metric: val/acc_best, "
            "direction: maximize}, {metric: num_params, direction: minimize}]"
        )
    sweep = Sweep(
        name=path.stem,
        base=base,
        params=spec.get("params") or {},
        overrides=spec.get("overrides") or {},
        seeds=list(spec.get("seeds", [0])),
        sampler=spec.get("sampler", "grid"),
        trials=int(spec.get("trials", 20)),
        metric=objective.get("metric", "val/acc_best"),
        direction=objective.get("direction", "maximize"),
        test_ckpt=spec.get("test_ckpt", "best"),
        pruner=spec.get("pruner"),
        trade_offs=trade_offs,
        reference={str(k): str(v) for k, v in (spec.get("reference") or {}).items()},
    )
    check(sweep, path)
    return sweep


def check(sweep: Sweep, path: Path) -> None:
    if sweep.sampler not in SAMPLERS:
        raise UsageError(f"{path}: unknown sampler {sweep.sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if sweep.test_ckpt not in ("best", "last"):
        raise UsageError(f"{path}: test_ckpt must be best or last, not {sweep.test_ckpt!r}")
    for metric, direction in sweep.targets:
        if direction not in ("maximize", "minimize"):
            raise UsageError(f"{path}: objective {metric}'s direction must be maximize or minimize, not {direction!r}")
    if sweep.trade_offs and sweep.pruner is not None:
        raise UsageError(f"{path}: Optuna prunes single-objective studies only: remove pruner or the trade-offs")
    if not sweep.seeds or not all(isinstance(s, int) for s in sweep.seeds):
        raise UsageError(f"{path}: seeds must be a non-empty list of integers, e.g. seeds: [0, 1, 2]")
    if not sweep.params:
        raise UsageError(f"{path}: params is empty: name at least one dotted key with its values")
    for key, values in sweep.params.items():
        if is_group(key):
            check_group(key, values, path)
        elif isinstance(values, dict):
            if sweep.sampler == "grid":
                raise UsageError(
                    f"{path}: {key} is a distribution, which sampler: grid cannot enumerate; give it a list "
                    "of values, or use sampler: tpe or random"
                )
            if not {"low", "high"} <= set(values) or not set(values) <= {"low", "high", "log", "step"}:
                raise UsageError(f"{path}: {key} must be a list of values or {{low, high[, log][, step]}}")
        elif not isinstance(values, list) or not values:
            raise UsageError(f"{path}: {key} has no values: give a non-empty list (the grid would be empty)")
    if sweep.pruner is not None:
        check_pruner(sweep, path)
    for name, value in sweep.reference.items():
        labels = {column(k): [label(k, v)[1] for v in vs] for k, vs in sweep.params.items() if isinstance(vs, list)}
        if sweep.sampler != "grid" or value not in labels.get(name, []):
            raise UsageError(
                f"{path}: reference {name}: {value} is not a value of a swept column of a grid; give one "
                f"of {', '.join(f'{c}: {vs[0]}' for c, vs in labels.items())}"
            )
    if sweep.sampler != "grid" and sweep.trials <= 0:
        raise UsageError(f"{path}: trials must be positive for sampler: {sweep.sampler}")
    if not sweep.base and not any(is_group(k) and all("config" in v for v in vs) for k, vs in sweep.params.items()):
        raise UsageError(
            f"{path}: no config to start from: add base: configs/<name>.yaml, or a config to every value of a group"
        )


def check_pruner(sweep: Sweep, path: Path) -> None:
    from src.sweep.prune import PRUNERS

    if sweep.sampler == "grid":
        raise UsageError(
            f"{path}: a grid runs every point to compare them all, so it takes no pruner; use sampler: "
            "tpe or random, or remove pruner"
        )
    if not isinstance(sweep.pruner, dict) or sweep.pruner.get("name") not in PRUNERS:
        raise UsageError(f"{path}: pruner needs a name, one of {', '.join(PRUNERS)}, e.g. pruner: {{name: median}}")
    try:
        PRUNERS[sweep.pruner["name"]](**{k: v for k, v in sweep.pruner.items() if k != "name"})
    except (TypeError, ValueError) as err:
        raise UsageError(f"{path}: pruner {sweep.pruner['name']}: {err}") from err


def check_group(key: str, values, path: Path) -> None:
    example = f"{key}: [{{name: a, config: configs/mnist_mlp.yaml, trainer.max_epochs: 3}}, ...]"
    if not isinstance(values, list) or not values or not all(isinstance(v, dict) and "name" in v for v in values):
        raise UsageError(
            f"{path}: {key} has no dot, so it is a group: give it a list of named settings, e.g. {example}"
        )
    for value in values:
        odd = [k for k in value if k not in ("name", "config") and is_group(k)]
        if odd:
            raise UsageError(
                f"{path}: {key} {value['name']!r} sets {odd[0]!r}, which is neither config nor a dotted "
                f"CLI key, e.g. {example}"
            )
    names = [str(v["name"]) for v in values]
    if len(set(names)) != len(names):
        raise UsageError(f"{path}: {key} repeats a name ({', '.join(names)}): each value needs its own")


COLUMNS = {"num_params": "params", "wall_s": "wall_s"}  # trade-off metrics that are per-seed columns already


def target_column(metric: str) -> str:
    """The per-seed column of a trade-off objective: params, wall_s, or the logged metric (val/loss -> val_loss)."""
    return COLUMNS.get(metric, metric.replace("/", "_"))
