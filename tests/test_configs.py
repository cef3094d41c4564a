"""Every config in configs/ parses and instantiates: model, net, data module and trainer."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger

from src.cli import DEFAULTS, main
from src.data.base import ImageDataModule
from src.manual.mlp import ManualMLP
from src.run.layout import Run
from src.run.recorder import HParamsSummary
from tests.conftest import ROOT, make_cifar10, only_run, read_scalars, write_image_folder

CONFIGS = sorted(p for p in (Path(__file__).resolve().parent.parent / "configs").glob("*.yaml") if p != DEFAULTS)
# What each experiment resolved to (`--print_config`: model, data, seed, max_epochs, precision, and the net's in_shape
# and num_classes) when every config spelled everything out, before configs/net/ and configs/optim/ and the linking of
# in_shape/num_classes from the data module: composing the files must not change a single value. Only the values that
# differ from their class's defaults are pinned (the libraries' own defaults may move); a config not listed here is
# still built and checked below, it only has no pinned values.
RESOLVED = json.loads((Path(__file__).resolve().parent / "resolved_configs.json").read_text())


@pytest.mark.parametrize("config", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_each_config_says_how_to_run_itself(config):
    """A config's header names the command that runs it, with its own path (copied configs keep a stale one)."""
    assert f"python -m src.cli fit --config configs/{config.name}" in config.read_text()


def tiny_image_folder(root: Path) -> Path:
    """root/train/<class>/ for ten classes of one 28x28 grey image each: what folder_*.yaml need to be built."""
    write_image_folder(
        root,
        "train",
        np.arange(10, dtype=np.uint8).repeat(784).reshape(10, 28, 28) * 25,
        list(range(10)),
        [f"class{c}" for c in range(10)],
    )
    return root


def assert_pinned(resolved, expected, where: str) -> None:
    """Every value in `expected` (nested dicts) is the same in `resolved`; keys it leaves out are not compared."""
    if isinstance(expected, dict):
        assert isinstance(resolved, dict), f"{where}: {resolved!r} is not a mapping"
        for key, value in expected.items():
            assert_pinned(resolved.get(key), value, f"{where}.{key}")
    elif expected is not None:
        assert resolved == expected, f"{where}: {resolved!r} != {expected!r}"


@pytest.mark.parametrize("config", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_instantiates(config, tmp_path):
    folder = (
        ["--data.init_args.root", str(tiny_image_folder(tmp_path / "images")), "--data.init_args.channels", "1"]
        if config.stem.startswith("folder_")
        else []
    )  # the one argument a folder config leaves to the command line
    cli = main(["--config", str(config), "--trainer.logger.init_args.save_dir", str(tmp_path), *folder], run=False)
    data, net = cli.datamodule, cli.model.net
    resolved = yaml.safe_load(cli.parser.dump(cli.config, skip_none=False))  # what --print_config prints
    if folder:
        resolved["data"]["init_args"].update(root=None, channels=3)  # as the file says
    expected = RESOLVED.get(config.stem, {})
    for key in ("seed_everything", "model", "data", "trainer"):
        assert_pinned(resolved.get(key), expected.get(key), key)
    assert {
        k: list(getattr(net, k)) if k == "in_shape" else getattr(net, k) for k in expected.get("net", {})
    } == expected.get("net", {})
    assert isinstance(data, ImageDataModule)
    assert net.num_classes == data.num_classes == len(data.classes) and tuple(net.in_shape) == data.in_shape
    logger = cli.trainer.logger
    assert isinstance(logger, TensorBoardLogger) and Path(logger.log_dir) == tmp_path / config.stem / "version_0"
    kinds = {type(c) for c in cli.trainer.callbacks}
    assert all(
        any(issubclass(k, c) for k in kinds)
        for c in (ModelCheckpoint, EarlyStopping, LearningRateMonitor, HParamsSummary)
    )
    assert cli.trainer.checkpoint_callback.monitor == "val/acc"
    assert (cli.trainer.max_epochs or 0) >= 1 or cli.trainer.max_steps >= 1  # a length in epochs or in steps


def test_dotted_overrides_reach_the_net(tmp_path):
    cli = main(
        [
            "--config",
            str(CONFIGS[0].parent / "mnist_mlp.yaml"),
            "--trainer.max_epochs",
            "3",
            "--model.init_args.net.init_args.hidden",
            "[128,64]",
            "--trainer.logger.init_args.save_dir",
            str(tmp_path),
        ],
        run=False,
    )
    assert cli.trainer.max_epochs == 3 and [
        m.out_features for m in cli.model.net.layers if hasattr(m, "out_features")
    ] == [128, 64, 10]


def seed_run(config: str, data: Path, tmp_path: Path, *extra: str) -> Path:
    """Two epochs of a seed recipe on generated data, in this process (the CIFAR md5 check is patched out here)."""
    main(
        [
            "fit",
            "--config",
            f"configs/{config}.yaml",
            "--data.init_args.data_dir",
            str(data),
            "--data.init_args.val_size",
            "100",
            "--trainer.max_epochs",
            "2",
            "--trainer.log_every_n_steps",
            "1",
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.logger.init_args.save_dir",
            str(tmp_path / "logs"),
            *extra,
        ]
    )
    return only_run(tmp_path / "logs" / config)


def test_fashion_mnist_seed004_feeds_unit_range_pixels_to_sgd_and_validates_on_test(
    tmp_path, monkeypatch, fashion_root
):
    """The seed's protocol on the real data: [0, 1] pixels, 784-128-64-10, a constant lr of 0.03, all 60,000 training
    images training and the 10,000 test images validating, and min_epochs = max_epochs (no early stop)."""
    monkeypatch.chdir(ROOT)
    cli = main(
        [
            "--config",
            "configs/fashion_mnist_seed004.yaml",
            "--data.init_args.data_dir",
            str(fashion_root),
            "--trainer.logger.init_args.save_dir",
            str(tmp_path),
        ],
        run=False,
    )
    cli.datamodule.setup("fit")
    x, _ = next(iter(cli.datamodule.train_dataloader()))
    assert x.shape == (64, 1, 28, 28) and x.min() >= 0 and x.max() <= 1 and x.max() > 0.99  # ToTensor's [0, 1]
    assert (
        len(cli.datamodule.splits["train"]) == 60000 and cli.datamodule.splits["val"] is cli.datamodule.splits["test"]
    )
    assert [m.out_features for m in cli.model.net.layers if isinstance(m, torch.nn.Linear)] == [128, 64, 10]
    assert cli.trainer.min_epochs == cli.trainer.max_epochs == 20
    main(
        [
            "fit",
            "--config",
            "configs/fashion_mnist_seed004.yaml",
            "--data.init_args.data_dir",
            str(fashion_root),
            "--trainer.max_epochs",
            "2",
            "--trainer.min_epochs",
            "2",
            "--trainer.limit_train_batches",
            "150",
            "--trainer.limit_val_batches",
            "2",
            "--trainer.log_every_n_steps",
            "1",
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.logger.init_args.save_dir",
            str(tmp_path / "logs"),
        ]
    )
    fit = read_scalars(only_run(tmp_path / "logs" / "fashion_mnist_seed004"))
    assert {round(v, 6) for _, v in fit["lr-SGD"]} == {0.03} and len(fit["val/acc"]) == 2
    assert (
        fit["val/acc"][-1][1] > 0.60
    )  # (67.6 % measured) 300 steps of the seed's SGD on real images, scored on 2,000 test images


STEPS = ("--trainer.max_steps", "4", "--trainer.min_steps", "4", "--trainer.val_check_interval", "2")  # a fixed length


def test_cifar10_seed000_is_seed001s_best_point_with_per_epoch_decay(tmp_path, monkeypatch, no_cifar_md5):
    """Seed 001's best point: batch 256, a fixed 3,000 steps validated every 250 (here 4, every 2), lr x 0.95 an
    epoch."""
    monkeypatch.chdir(ROOT)
    torch.manual_seed(0)
    net = ManualMLP(in_shape=(3, 32, 32), hidden=[200], activation="relu", init="normal", init_std=1e-4)
    assert abs(net.params["W1"].std().item() - 1e-4) < 2e-6 and not net.params["b1"].any()
    cli = main(["--config", "configs/cifar10_seed000.yaml"], run=False)
    assert (cli.datamodule.batch_size, cli.trainer.max_steps, cli.trainer.min_steps) == (256, 3000, 3000)
    assert cli.trainer.val_check_interval == 250 and cli.trainer.check_val_every_n_epoch is None
    data = make_cifar10(tmp_path / "data", n_per_batch=100)  # 500 train images: 400 after val, 2 batches of 256
    run = seed_run("cifar10_seed000", data, tmp_path, *STEPS)
    fit = read_scalars(run)
    assert [round(v, 10) for _, v in fit["lr-ManualSGD"]] == [1e-3, 1e-3, 9.5e-4, 9.5e-4]  # x 0.95 after epoch 1
    assert [v["step"] for v in Run(run).metrics()["validations"]] == [2, 4]  # the last step is validated


def test_seed001s_grid_and_untuned_default_train_on_cifar_files(tmp_path, monkeypatch, no_cifar_md5):
    """One point of the 243 (the grid's first: hidden 100, batch 128, lr 1e-2, reg 1e-2) and the untuned default, as
    their sweeps would run them, for 4 steps each on generated CIFAR-10 files."""
    from src.sweep.spec import load
    from src.sweep.trials import fit_args

    monkeypatch.chdir(ROOT)
    data = make_cifar10(tmp_path / "data", n_per_batch=100)
    for name, expected in [("grid", ([100], 128, 1e-2, 1e-2, 0.9)), ("default", ([50], 200, 1e-4, 0.25, 0.0))]:
        sweep = load(ROOT / "configs" / "sweeps" / f"cifar10_seed001_{name}.yaml")
        args = [*fit_args(sweep, sweep.grid()[0], 0), "--trainer.logger.init_args.name", name]
        cli = main(args, run=False)
        net, optimizer = cli.model.net, cli.model.optimizer(cli.model.parameters()).defaults
        assert (net.sizes[1:-1], cli.datamodule.batch_size, optimizer["lr"], net.reg, optimizer["momentum"]) == expected
        main(
            [
                "fit",
                *args,
                "--data.init_args.data_dir",
                str(data),
                "--data.init_args.val_size",
                "100",
                *STEPS,
                "--trainer.enable_progress_bar",
                "false",
                "--trainer.logger.init_args.save_dir",
                str(tmp_path / "logs"),
            ]
        )
        assert Run(only_run(tmp_path / "logs" / name)).metrics()["steps"] == 4


def test_cifar10_cnn_seed003_is_the_seeds_table_3(tmp_path, monkeypatch, no_cifar_md5):
    monkeypatch.chdir(ROOT)
    data = make_cifar10(tmp_path / "data", n_per_batch=60)
    run = seed_run("cifar10_cnn_seed003", data, tmp_path, *STEPS)
    assert Run(run).metrics()["num_params"] == 1216 + 9624 + 14424 + 3472 + 2320 + 20500 + 210  # 51,766, row by row
    assert len(read_scalars(run)["val/acc"]) == 2
    cli = main(["--config", "configs/cifar10_cnn_seed003.yaml"], run=False)  # the seed's SGD, batch and length
    optimizer = cli.model.optimizer(cli.model.parameters())
    assert isinstance(optimizer, torch.optim.SGD) and cli.datamodule.batch_size == 32
    assert {k: optimizer.defaults[k] for k in ("lr", "momentum", "dampening")} == {
        "lr": 0.01,
        "momentum": 0.9,
        "dampening": 0.9,
    }
    assert cli.trainer.max_steps == cli.trainer.min_steps == 6000


def test_mnist_seed003_trains_the_manual_cnn_with_the_seeds_averaged_momentum(tmp_path, monkeypatch, mnist_root):
    """Seed 003's procedure on real MNIST: ManualCNN, ManualSGD with dampening = momentum = 0.9, batch 16, a fixed
    length validated by steps across epochs; 300 of its 5,000 steps already classify."""
    monkeypatch.chdir(ROOT)
    cli = main(["--config", "configs/mnist_seed003.yaml"], run=False)
    optimizer = cli.model.optimizer(cli.model.parameters())
    assert type(cli.model.net).__name__ == "ManualCNN" and cli.datamodule.batch_size == 16
    assert {k: optimizer.defaults[k] for k in ("momentum", "dampening")} == {"momentum": 0.9, "dampening": 0.9}
    assert (cli.trainer.max_steps, cli.trainer.min_steps, cli.trainer.val_check_interval) == (5000, 5000, 500)
    run = seed_run(
        "mnist_seed003",
        mnist_root,
        tmp_path,
        "--trainer.max_steps",
        "300",
        "--trainer.min_steps",
        "300",
        "--trainer.val_check_interval",
        "150",
        "--trainer.limit_val_batches",
        "2",
        "--data.init_args.val_size",
        "5000",
    )
    validations = Run(run).metrics()["validations"]
    assert [v["step"] for v in validations] == [150, 300]
    assert validations[-1]["val/acc"] > 0.85  # (90.2 % measured) 4,800 images seen, scored on 2,000
