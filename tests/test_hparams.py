from src.data import MNISTDataModule

from src.callbacks.hparams import table


def test_table_keeps_what_a_run_changed():
    hparams = {"_instantiator": "x", "_class_path": "src.models.ImageClassifier",
               "net": {"class_path": "src.models.MLP", "init_args": {"hidden": [256, 128], "dropout": 0.0}},
               "optimizer": {"class_path": "torch.optim.Adam", "init_args": {"lr": 0.005, "betas": [0.9, 0.999], "eps": 1e-08}},
               "scheduler": None}
    data = MNISTDataModule(batch_size=64)
    assert table(hparams, data) == {"net": "MLP", "net/hidden": [256, 128], "optimizer": "Adam", "optimizer/lr": 0.005,
                                    "scheduler": None, "data/batch_size": 64}
