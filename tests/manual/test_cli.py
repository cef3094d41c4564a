"""The manual-backprop networks through the same CLI as every other model, on real MNIST."""

import pytest
import torch

from tests.conftest import fit_then_test_best, read_scalars


@pytest.mark.slow
def test_mnist_manual_reaches_97_percent_on_the_best_checkpoint(mnist_root, tmp_path):
    run = fit_then_test_best("configs/mnist_manual.yaml", tmp_path, mnist_root)
    fit, test = read_scalars(run), read_scalars(run / "test_0")
    assert test["test/samples"][-1][1] == 10_000 and test["test/acc"][-1][1] >= 0.97
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "val/acc_best", "hp_metric"} <= set(fit)
    # The checkpoint holds the exercise's parameters (W: [fan_in, fan_out]) and ManualSGD's momentum buffers.
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["state_dict"]["net.params.W1"].shape == (784, 64)
    assert ckpt["optimizer_states"][0]["state"][0]["delta"].shape == (784, 64)


@pytest.mark.slow
def test_mnist_manual_cnn_reaches_98_5_percent_on_the_best_checkpoint(mnist_root, tmp_path):
    # 2 of the config's 3 epochs (its one-cycle schedule fitted to them): 98.78 % here, in two thirds of the time
    run = fit_then_test_best("configs/mnist_manual_cnn.yaml", tmp_path, mnist_root, "--trainer.max_epochs", "2")
    test = read_scalars(run / "test_0")
    assert test["test/samples"][-1][1] == 10_000 and test["test/acc"][-1][1] >= 0.985
    assert (run / "test_0" / "test_report" / "filters.png").is_file()
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["state_dict"]["net.params.W1"].shape == (16, 1, 5, 5)
