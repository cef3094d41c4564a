"""last.ckpt holds the newest state even when val/acc stopped improving (Lightning 2.6 alone keeps the best's copy)."""

import torch

from src.cli import main
from src.run.layout import Run
from tests.conftest import ROOT, only_run


def test_last_ckpt_is_the_last_epoch_when_val_acc_never_improves(tmp_path, monkeypatch, mnist_root):
    """lr 0 and no batchnorm: the weights never change, so val/acc is the same after every epoch and only epoch 0's
    checkpoint is ever the best; last.ckpt must still be epoch 2's, as --ckpt_path last and seed 004's protocol need."""
    monkeypatch.chdir(ROOT)
    main(
        [
            "fit",
            "--config",
            "configs/fashion_mnist_seed004.yaml",
            "--data",
            "src.data.mnist.MNISTDataModule",
            "--data.init_args.data_dir",
            str(mnist_root),
            "--data.init_args.val_on_test",
            "false",
            "--model.init_args.optimizer.init_args.lr",
            "0.0",
            "--trainer.max_epochs",
            "3",
            "--trainer.min_epochs",
            "3",
            "--trainer.limit_train_batches",
            "5",
            "--trainer.limit_val_batches",
            "2",
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.logger.init_args.save_dir",
            str(tmp_path),
        ]
    )
    run = only_run(tmp_path / "fashion_mnist_seed004")
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    best = torch.load(Run(run).best_checkpoint(), weights_only=True)
    assert (best["epoch"], best["global_step"]) == (0, 5)
    assert (last["epoch"], last["global_step"]) == (2, 15)  # epoch 0's copy without the fix
