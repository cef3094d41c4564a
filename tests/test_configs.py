"""Every config in configs/ parses and instantiates: model, net, data module and trainer."""

import math
from pathlib import Path

import pytest
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger

from src.callbacks import HParamsSummary
from src.cli import DEFAULTS, main
from src.data import ImageDataModule
from src.manual import ManualMLP

CONFIGS = sorted(p for p in (Path(__file__).resolve().parent.parent / "configs").glob("*.yaml") if p != DEFAULTS)


@pytest.mark.parametrize("config", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_each_config_says_how_to_run_itself(config):
    """A config's header names the command that runs it, with its own path (copied configs keep a stale one)."""
    assert f"python -m src.cli fit --config configs/{config.name}" in config.read_text()


@pytest.mark.parametrize("config", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_instantiates(config, tmp_path):
    cli = main(["--config", str(config), "--trainer.logger.init_args.save_dir", str(tmp_path)], run=False)
    data, net = cli.datamodule, cli.model.net
    assert isinstance(data, ImageDataModule)
    assert net.num_classes == data.num_classes == 10
    if isinstance(net, ManualMLP):  # takes flattened images
        assert net.sizes[0] == math.prod(data.in_shape)
    else:
        assert tuple(net.in_shape) == data.in_shape
    logger = cli.trainer.logger
    assert isinstance(logger, TensorBoardLogger) and Path(logger.log_dir) == tmp_path / config.stem / "version_0"
    kinds = {type(c) for c in cli.trainer.callbacks}
    assert {ModelCheckpoint, EarlyStopping, LearningRateMonitor, HParamsSummary} <= kinds
    assert cli.trainer.checkpoint_callback.monitor == "val/acc" and cli.trainer.max_epochs >= 1


def test_dotted_overrides_reach_the_net(tmp_path):
    cli = main(["--config", str(CONFIGS[0].parent / "mnist_mlp.yaml"), "--trainer.max_epochs", "3",
                "--model.init_args.net.init_args.hidden", "[128,64]", "--trainer.logger.init_args.save_dir", str(tmp_path)],
               run=False)
    assert cli.trainer.max_epochs == 3 and [m.out_features for m in cli.model.net.layers if hasattr(m, "out_features")] == [128, 64, 10]
