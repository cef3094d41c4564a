"""Sweep.checked_points: which grid points a sweep builds before its first trial (src/sweep/spec.py)."""

from pathlib import Path

import pytest

from tests.conftest import ROOT


def sweep_file(tmp_path: Path, text: str):
    from src.sweep.spec import load

    path = tmp_path / "s.yaml"
    path.write_text(text)
    return load(path)


def test_seed001s_grid_is_checked_one_value_at_a_time():
    """No key of seed 001's grid picks a class: the first point, then each other value of each key alone (1 + 5 x 2)."""
    from src.sweep.spec import load

    sweep = load(ROOT / "configs" / "sweeps" / "cifar10_seed001_grid.yaml")
    points = sweep.checked_points()
    assert len(sweep.grid()) == 243 and len(points) == 11 and points[0] == sweep.grid()[0]
    first = points[0]
    assert all(sum(p[k] != first[k] for k in sweep.params) == 1 for p in points[1:])  # one key away from the first
    for key, values in sweep.params.items():  # and every value of every key among them
        assert [p[key] for p in points if p[key] != first[key]] == values[1:]


def test_keys_that_pick_classes_meet_every_value_of_the_others(tmp_path):
    """tricks: the net group names a config (autograd MLP or ManualMLP), so every trick is built with both nets; a
    class_path key is crossed the same way, while a plain key's values are tried once per class combination."""
    from src.sweep.spec import load

    tricks = load(ROOT / "configs" / "sweeps" / "tricks_seed002.yaml")
    assert tricks.checked_points() == tricks.grid()  # 2 nets x 6 tricks, all 12
    sweep = sweep_file(
        tmp_path,
        "base: configs/mnist_mlp.yaml\nparams:\n"
        "  data.class_path: [src.data.mnist.MNISTDataModule, src.data.mnist.FashionMNISTDataModule]\n"
        "  data.init_args.batch_size: [32, 64, 128]\n  model.init_args.optimizer.init_args.lr: [0.1, 0.01]\n"
        "seeds: [0, 1, 2]\n",
    )
    points = [
        (
            p["data.class_path"].rsplit(".", 1)[1],
            p["data.init_args.batch_size"],
            p["model.init_args.optimizer.init_args.lr"],
        )
        for p in sweep.checked_points()
    ]
    assert points == [
        (data, b, lr)
        for data in ("MNISTDataModule", "FashionMNISTDataModule")
        for b, lr in [(32, 0.1), (64, 0.1), (128, 0.1), (32, 0.01)]
    ]


@pytest.mark.parametrize("position", [1, 2])
def test_a_bad_value_anywhere_in_a_big_grid_is_refused_before_any_trial(tmp_path, monkeypatch, capsys, position):
    """The check that replaced building all 3^4 points still builds the bad one: an activation ManualMLP has not."""
    from src.sweep.__main__ import validate

    monkeypatch.chdir(ROOT)
    activations = ["relu", "sigmoid", "tanh"]
    activations[position] = "nope"
    sweep = sweep_file(
        tmp_path,
        "base: configs/mnist_manual.yaml\nparams:\n"
        "  model.init_args.net.init_args.hidden: [[8], [16], [32]]\n"
        "  model.init_args.net.init_args.reg: [0.0, 0.001, 0.01]\n"
        "  data.init_args.batch_size: [32, 64, 128]\n"
        f"  model.init_args.net.init_args.activation: {activations}\nseeds: [0, 1, 2]\n",
    )
    assert len(sweep.grid()) == 81 and len(sweep.checked_points()) == 9
    with pytest.raises(SystemExit) as exit:
        validate(sweep)
    assert exit.value.code == 2 and "Got value: nope" in capsys.readouterr().err


def test_a_reference_that_names_no_value_is_one_line(tmp_path):
    from src.errors import UsageError

    with pytest.raises(
        UsageError,
        match="reference trick: 9-nope is not a value of a swept column of a grid; give one "
        "of net: autograd, trick: 1-baseline",
    ):
        sweep_file(tmp_path, f"extends: {ROOT}/configs/sweeps/tricks.yaml\nreference: {{trick: 9-nope}}\n")
