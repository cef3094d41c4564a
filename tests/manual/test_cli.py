"""The manual-backprop network through the same CLI as every other model, on real MNIST."""

import pytest
import torch

from tests.conftest import only_run, read_scalars, run_cli


@pytest.mark.slow
def test_mnist_manual_reaches_97_percent_on_the_best_checkpoint(mnist_root, tmp_path):
    logs = ["--trainer.logger.init_args.save_dir", str(tmp_path)]
    run_cli("fit", "--config", "configs/mnist_manual.yaml", *logs, data_dir=mnist_root)
    run_cli("test", "--config", "configs/mnist_manual.yaml", "--ckpt_path", "best", *logs, data_dir=mnist_root)
    run = only_run(tmp_path / "mnist_manual")
    fit, test = read_scalars(run), read_scalars(run / "test_0")
    assert test["test/samples"][-1][1] == 10_000 and test["test/acc"][-1][1] >= 0.97
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "val/acc_best", "hp_metric"} <= set(fit)
    # The checkpoint holds the exercise's parameters (W: [fan_in, fan_out]) and ManualSGD's momentum buffers.
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["state_dict"]["net.params.W1"].shape == (784, 64)
    assert ckpt["optimizer_states"][0]["state"][0]["delta"].shape == (784, 64)
