"""README "Extending", done as a user does it: a net and a data set in a package of their own, an experiment YAML, and
every command on them. No test fixture, registry or method of ours is needed."""

import csv
import math
import shlex
import textwrap

import pytest
import torch

from src.cli import main
from src.export import main as export_main
from src.runs import Run
from tests.conftest import ROOT, only_run

NET = '''
import math
from torch import nn


class TinyNet(nn.Module):
    """Only __init__ and forward: no in_shape/num_classes attributes, no filters method, no Lightning."""

    def __init__(self, in_shape=(1, 28, 28), num_classes=10, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(in_shape), width), nn.ReLU(), nn.Linear(width, num_classes))

    def forward(self, x):
        return self.body(x)
'''

DATA = '''
from src.data import MNISTDataModule


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
  class_path: src.models.ImageClassifier
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
    from src.models import ImageClassifier

    model = ImageClassifier.load_from_checkpoint(run.best_checkpoint()).eval()
    logits = onnxruntime.InferenceSession(str(path)).run(None, {"images": images.numpy()})[0]
    assert math.isclose(float(abs(torch.from_numpy(logits) - model(images)).max()), 0.0, abs_tol=1e-4)
