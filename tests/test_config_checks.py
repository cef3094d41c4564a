"""src/errors.py: what a config must be before anything is built (through the CLI: tests/test_reliability.py)."""

import pytest
from jsonargparse import Namespace

from src.errors import UsageError, check_config_files, check_net_takes_data_shape


def net(class_path: str) -> Namespace:
    return Namespace(model=Namespace(init_args=Namespace(net=Namespace(class_path=class_path))))


def test_a_net_must_take_the_data_sets_shape_and_class_count():
    check_net_takes_data_shape(net("src.models.mlp.MLP"))  # takes both
    with pytest.raises(UsageError, match="torch.nn.Linear must take in_shape and num_classes as __init__ arguments"):
        check_net_takes_data_shape(net("torch.nn.Linear"))
    check_net_takes_data_shape(net("no.such.Net"))  # not importable: jsonargparse's own error says so


def test_each_config_file_is_checked_in_the_order_given_and_named(tmp_path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("trainer: {max_epochs: 1}\n")
    bad.write_text("trainer:\n  max_epochs: 1\n  - x\n")
    check_config_files(["fit", "--config", str(good), f"--config={tmp_path / 'absent.yaml'}"])
    with pytest.raises(UsageError, match=rf"^{bad} line 3: not valid YAML"):
        check_config_files(["fit", "--config", str(good), f"--config={bad}"])
