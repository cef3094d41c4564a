from types import SimpleNamespace

from src.data.mnist import MNISTDataModule
from src.models.classifier import ImageClassifier
from src.models.mlp import MLP
from src.run.recorder import HParamsSummary, table


def test_table_keeps_what_a_run_changed(monkeypatch):
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)  # what an earlier test's seed_everything left behind
    hparams = {
        "_instantiator": "x",
        "_class_path": "src.models.classifier.ImageClassifier",
        "net": {"class_path": "src.models.mlp.MLP", "init_args": {"hidden": [256, 128], "dropout": 0.0}},
        "optimizer": {
            "class_path": "torch.optim.Adam",
            "init_args": {"lr": 0.005, "betas": [0.9, 0.999], "eps": 1e-08},
        },
        "scheduler": None,
    }
    data = MNISTDataModule(batch_size=64)
    assert table(hparams, data) == {
        "net": "MLP",
        "net/hidden": [256, 128],
        "optimizer": "Adam",
        "optimizer/lr": 0.005,
        "scheduler": None,
        "data/batch_size": 64,
    }


def test_runs_that_differ_in_epochs_batch_or_seed_tell_apart(monkeypatch):
    """max_epochs, the batch size and the seed are shown even at their defaults; other trainer settings when changed."""
    monkeypatch.setenv("PL_GLOBAL_SEED", "3")
    trainer = SimpleNamespace(
        max_epochs=4, precision="bf16-mixed", accumulate_grad_batches=1, limit_train_batches=1.0, gradient_clip_val=None
    )
    rows = table({"net": {"class_path": "src.models.mlp.MLP", "init_args": {}}}, MNISTDataModule(), trainer)
    assert rows == {
        "net": "MLP",
        "data/batch_size": 128,
        "trainer/max_epochs": 4,
        "trainer/precision": "bf16-mixed",
        "seed": 3,
    }


def test_eval_flip_is_a_column_though_the_checkpoint_leaves_it_out(monkeypatch):
    """Two runs that differ only in eval_flip tell apart in HParams (the classifier keeps it out of its hparams)."""
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)
    trainer = SimpleNamespace(datamodule=MNISTDataModule(), max_epochs=1, precision="32-true")
    for flip in (False, True):
        model = ImageClassifier(MLP(hidden=[8]), eval_flip=flip)
        assert "eval_flip" not in model.hparams
        rows = HParamsSummary.params(model, trainer)
        assert rows["eval_flip"] is flip
