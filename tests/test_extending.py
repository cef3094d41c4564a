"""README "Extending", done as a user does it: a net and a data set in a package of their own, an experiment YAML, and
every command on them. No test fixture, registry or method of ours is needed."""

import csv
import math
import shlex
import sys
import textwrap

import pytest
import torch

from src.cli import main
from src.export import main as export_main
from src.run.layout import Run
from tests.conftest import ROOT, only_run

NET = '''
import math
from torch import nn


class TinyNet(nn.Module):
    """Only __init__ and forward: no in_shape/num_classes attributes, no filters method, no Lightning."""

    def __init__(self, in_shape=(1, 28, 28), num_classes=10, width: int = 32):
        super().__init__()
        layers = [nn.Flatten(), nn.Linear(math.prod(in_shape), width), nn.ReLU(), nn.Linear(width, num_classes)]
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)
'''

DATA = '''
from src.data.mnist import MNISTDataModule


class ParityMNIST(MNISTDataModule):
    """Two classes: even and odd digits."""

    classes = ("even", "odd")

    def read_split(self, train):
        images, labels = super().read_split(train)
        return images, labels % 2
'''

CONFIG = """
# python -m src.cli fit --config parity.yaml
model:
  class_path: src.models.classifier.ImageClassifier
  init_args:
    net:
      class_path: mypkg.nets.TinyNet
      init_args: {width: 32}
data:
  class_path: mypkg.data.ParityMNIST
  init_args: {batch_size: 256, val_size: 1000}
trainer:
  max_epochs: 1
  limit_train_batches: 40
  enable_progress_bar: false
"""


@pytest.fixture
def user_package(tmp_path, monkeypatch, mnist_root):
    """mypkg/{nets,data}.py and parity.yaml in a folder outside the repository, on sys.path."""
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(textwrap.dedent(NET))
    (pkg / "data.py").write_text(textwrap.dedent(DATA))
    (tmp_path / "parity.yaml").write_text(CONFIG)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("DATA_DIR", str(mnist_root))
    monkeypatch.chdir(ROOT)
    return tmp_path


@pytest.mark.parametrize("logger", ["tensorboard", "csv"])
def test_a_users_net_and_data_set_go_through_every_command(user_package, logger):
    config = str(user_package / "parity.yaml")
    logs = ["--trainer.logger.init_args.save_dir", str(user_package / "logs")]
    if logger == "csv":  # any Lightning logger: the run folder, best and the test report do not depend on it
        logs += [
            "--trainer.logger",
            "lightning.pytorch.loggers.CSVLogger",
            "--trainer.logger.init_args.save_dir",
            str(user_package / "logs"),
        ]
    main(["fit", "--config", config, *logs])
    run = Run(only_run(user_package / "logs" / "parity"))
    best = run.metrics()["best"]
    assert best["score"] > 0.85 and (run.folder / best["path"]).is_file()  # parity of digits: well above chance (0.5)
    assert run.metrics()["num_params"] == 784 * 32 + 32 + 32 * 2 + 2
    made = run.metrics()["provenance"]  # what made it, found on the user's data module (an MNIST subclass)
    assert made["command"] == shlex.join(["python", "-m", "src.cli", "fit", "--config", config, *logs])
    assert made["environment"]["data"]["files"]["train-images-idx3-ubyte"] == "6bbc9ace898e44ae57da46a324031adb"
    assert made["seed"] == 0 and made["environment"]["hardware"]["cores"] >= 1
    assert (run.folder / ("metrics.csv" if logger == "csv" else "hparams.yaml")).is_file()

    main(["test", "--config", config, "--ckpt_path", "best", *logs])  # a new command finds the best checkpoint
    test = run.metrics("test_0")["metrics"]
    assert test["test/samples"] == 10_000 and test["test/acc"] > 0.85
    assert run.metrics("test_0")["provenance"]["command"].startswith("python -m src.cli test --config")
    report = run.folder / "test_0" / "test_report"
    confmat = list(csv.reader(open(report / "confusion_matrix.csv")))
    assert confmat[0] == ["true \\ predicted", "even", "odd"] and len(confmat) == 3  # two classes, not ten
    assert sum(int(v) for row in confmat[1:] for v in row[1:]) == 10_000
    assert (report / "filters.png").is_file()  # found: the first Linear reads the flattened image

    main(["predict", "--config", config, "--ckpt_path", "best", *logs])
    rows = list(csv.DictReader(open(run.folder / "predict_0" / "predictions.csv")))
    assert len(rows) == 10_000 and {r["predicted"] for r in rows} == {"even", "odd"}
    agree = sum(r["predicted"] == r["label"] for r in rows) / len(rows)
    assert agree == pytest.approx(test["test/acc"], abs=1e-4)

    path = export_main(["--config", str(run.folder / "config.yaml"), "--format", "onnx"])  # the run's own config
    assert path == run.folder / "export" / (run.best_checkpoint().stem + ".onnx") and path.stat().st_size > 10_000
    import onnxruntime

    images = torch.rand(3, 1, 28, 28)
    from src.models.classifier import ImageClassifier

    model = ImageClassifier.load_from_checkpoint(run.best_checkpoint()).eval()
    logits = onnxruntime.InferenceSession(str(path)).run(None, {"images": images.numpy()})[0]
    assert math.isclose(float(abs(torch.from_numpy(logits) - model(images)).max()), 0.0, abs_tol=1e-4)


FOREIGN_DATA = '''
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, TensorDataset


class Quadrants(LightningDataModule):
    """Not a subclass of ours: in_shape, num_classes and the dataloaders, nothing else. Class k lights quadrant k."""

    in_shape, num_classes = (1, 8, 8), 4

    def __init__(self, n: int = 512):
        super().__init__()
        labels = torch.arange(n) % 4
        images = torch.rand(n, 1, 8, 8) * 0.3
        for k in range(4):
            r, c = divmod(k, 2)
            images[labels == k, :, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4] += 0.7
        self.data = TensorDataset(images, labels)

    def train_dataloader(self):
        return DataLoader(self.data, batch_size=64, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.data, batch_size=128)

    test_dataloader = predict_dataloader = val_dataloader
'''

MANUAL_NET = '''
import math
import torch
from torch import nn


class OwnManualNet(nn.Module):
    """A manual net of the test's own (not ManualMLP/ManualCNN): softmax regression with its gradient written out."""

    def __init__(self, in_shape=(1, 8, 8), num_classes=4, reg: float = 0.0):
        super().__init__()
        self.in_shape, self.num_classes = tuple(in_shape), num_classes
        self.params = nn.ParameterDict({"W": nn.Parameter(torch.zeros(math.prod(in_shape), num_classes),
                                                          requires_grad=False),
                                        "b": nn.Parameter(torch.zeros(num_classes), requires_grad=False)})

    def forward(self, x):
        return x.flatten(1) @ self.params["W"] + self.params["b"]

    def forward_backward(self, x, y):
        """-> (scores [N, classes], mean cross-entropy, its gradient for each of params), written out."""
        scores = self(x)
        probs = scores.softmax(1)
        loss = -probs[torch.arange(len(y)), y].log().mean()
        d = probs.clone()
        d[torch.arange(len(y)), y] -= 1
        d /= len(y)
        return scores, loss, {"W": x.flatten(1).T @ d, "b": d.sum(0)}
'''


@pytest.fixture
def foreign_package(tmp_path, monkeypatch):
    pkg = tmp_path / "theirs"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "data.py").write_text(textwrap.dedent(FOREIGN_DATA))
    (pkg / "manual.py").write_text(textwrap.dedent(MANUAL_NET))
    for name in [n for n in sys.modules if n == "theirs" or n.startswith("theirs.")]:  # another test's package
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(ROOT)
    return tmp_path


def test_a_data_module_that_is_not_ours_goes_through_fit_test_and_predict(foreign_package):
    logs = [
        "--trainer.logger.init_args.save_dir",
        str(foreign_package / "logs"),
        "--trainer.logger.init_args.name",
        "quadrants",
        "--trainer.enable_progress_bar",
        "false",
    ]
    data = ["--data", "theirs.data.Quadrants", "--trainer.max_epochs", "3"]
    main(["fit", "--config", "configs/mnist_mlp.yaml", *data, *logs])
    run = Run(only_run(foreign_package / "logs" / "quadrants"))
    assert run.metrics()["best"]["score"] > 0.95  # four bright quadrants: well above chance (0.25)
    main(["test", "--config", "configs/mnist_mlp.yaml", *data, "--ckpt_path", "best", *logs])
    assert run.metrics("test_0")["metrics"]["test/samples"] == 512
    main(["predict", "--config", "configs/mnist_mlp.yaml", *data, "--ckpt_path", "best", *logs])
    rows = list(csv.DictReader(open(run.folder / "predict_0" / "predictions.csv")))
    assert len(rows) == 512 and {r["predicted"] for r in rows} == {"0", "1", "2", "3"}  # digits where no names


def test_a_manual_net_of_ones_own_trains_with_the_manual_classifier(foreign_package):
    logs = [
        "--trainer.logger.init_args.save_dir",
        str(foreign_package / "logs"),
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.logger.init_args.name",
        "own_manual",
    ]
    args = [
        "--data",
        "theirs.data.Quadrants",
        "--model.init_args.net",
        "theirs.manual.OwnManualNet",
        "--trainer.max_epochs",
        "3",
    ]
    main(["fit", "--config", "configs/mnist_manual.yaml", *args, *logs])
    run = Run(only_run(foreign_package / "logs" / "own_manual"))
    assert run.metrics()["best"]["score"] > 0.95


def test_a_metric_a_subclass_logs_is_monitored_with_no_registration(foreign_package):
    (foreign_package / "theirs" / "model.py").write_text(
        textwrap.dedent("""
        from src.models.classifier import ImageClassifier


        class WithMargin(ImageClassifier):
            def validation_step(self, batch, batch_idx):
                logits = self.net(self.normalize(batch[0]))
                top2 = logits.topk(2, dim=1).values
                self.log("val/margin", (top2[:, 0] - top2[:, 1]).mean(), on_epoch=True)
                return super().validation_step(batch, batch_idx)
        """)
    )
    logs = [
        "--trainer.logger.init_args.save_dir",
        str(foreign_package / "logs"),
        "--trainer.enable_progress_bar",
        "false",
    ]
    args = [
        "--data",
        "theirs.data.Quadrants",
        "--model",
        "theirs.model.WithMargin",
        "--trainer.max_epochs",
        "30",
        "--trainer.callbacks.init_args.monitor",
        "val/margin",
        "--trainer.callbacks.init_args.patience",
        "2",
        "--trainer.callbacks.init_args.mode",
        "min",
    ]  # the margin grows as it learns: stops after patience
    main(["fit", "--config", "configs/mnist_mlp.yaml", *args, *logs])
    run = Run(only_run(foreign_package / "logs" / "mnist_mlp"))
    assert "val/margin" in run.metrics()["last"] and run.metrics()["epochs"] == 3  # epoch 0 best, then 2 patience
    with pytest.raises(SystemExit) as stop:
        main(["fit", "--config", "configs/mnist_mlp.yaml", *args[:-4], "val/margn", *logs])
    assert stop.value.code == 2
