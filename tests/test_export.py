"""ONNX and TorchScript exports, normalization inside, against the PyTorch model on real test images."""

import pytest
import torch

from src.data.mnist import MNISTDataModule
from src.errors import UsageError
from src.export import export
from src.manual.cnn import ManualCNN
from src.manual.mlp import ManualMLP
from src.manual.module import ManualClassifier
from src.models.classifier import ImageClassifier
from src.models.cnn import SmallCNN
from src.models.mlp import MLP
from tests.conftest import REAL_DATA, run_cli


@pytest.fixture(scope="module")
def mnist():
    """(the data module's inference metadata, its normalization statistics, the first 256 raw test images)."""
    if not (REAL_DATA / "MNIST" / "raw").is_dir():
        pytest.skip("real MNIST not found; set DATA_DIR")
    dm = MNISTDataModule(data_dir=str(REAL_DATA))
    dm.setup("fit")
    return dm.inference_meta(), (dm.mean, dm.std), dm.read_split(train=False)[0][:256]


def nets():
    torch.manual_seed(0)
    return {
        "mlp": ImageClassifier(MLP(hidden=[64], batchnorm=True)),
        "cnn": ImageClassifier(SmallCNN(batchnorm=True)),
        "cnn_eval_flip": ImageClassifier(SmallCNN(batchnorm=True), eval_flip=True),
        "manual_mlp": ManualClassifier(ManualMLP()),
        "manual_cnn": ManualClassifier(ManualCNN(batchnorm=True)),
    }


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("name", ["mlp", "cnn", "cnn_eval_flip", "manual_mlp", "manual_cnn"])
def test_exported_logits_equal_pytorch(mnist, tmp_path, name, fmt):
    meta, stats, images = mnist
    model = nets()[name]
    model.inference = meta
    model.normalize.set(*stats)
    if name.endswith("cnn"):  # non-trivial running statistics, so eval-mode batchnorm is what gets checked
        model.net.train()
        model.net(torch.randn(64, 1, 28, 28))
    run = tmp_path / "version_0"  # a run's checkpoint: the export goes beside it, into <run>/export
    path, difference = export(model.eval(), images, run / "checkpoints" / "x.ckpt", fmt)
    assert path == run / "export" / ("x.onnx" if fmt == "onnx" else "x.pt") and path.stat().st_size > 10_000
    assert difference < 1e-4
    # Independent of export(): the file's logits on the images equal predict_images' probabilities.
    x = images.float() / 255
    if fmt == "torchscript":
        logits = torch.jit.load(str(path))(x)
    else:
        import onnxruntime

        logits = torch.from_numpy(onnxruntime.InferenceSession(str(path)).run(None, {"images": x.numpy()})[0])
    assert (logits.softmax(1) - model.predict_images(images)).abs().max() < 1e-5


def test_export_command_prints_the_file_and_the_difference(short_mlp_run):
    save_dir, run, _ = short_mlp_run
    proc = run_cli(
        "--config",
        "configs/mnist_mlp.yaml",
        "--format",
        "onnx",
        "--trainer.logger.init_args.save_dir",
        str(save_dir),
        data_dir=REAL_DATA,
        module="src.export",
    )
    best = next((run / "checkpoints").glob("epoch*.ckpt"))
    lines = proc.stdout.strip().splitlines()
    assert lines[-2] == f"exported {best} to {run / 'export' / (best.stem + '.onnx')}"
    assert lines[-1].startswith("max |logit difference| against PyTorch on 256 test images: ")
    assert float(lines[-1].rsplit(" ", 1)[1]) < 1e-4
    bad = run_cli("--config", "configs/mnist_mlp.yaml", "--format", "tflite", module="src.export", check=False)
    lines = bad.stderr.strip().splitlines()  # argparse quotes the choices on some Python versions, not on others
    assert (
        bad.returncode == 2
        and len(lines) == 1
        and lines[0].startswith("error: argument --format: invalid choice: 'tflite'")
    )


class Branchy(torch.nn.Module):
    """A net whose forward branches on the data: torch.export (and so the ONNX exporter) cannot capture it."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(784, 10)

    def forward(self, x):
        logits = self.linear(x.flatten(1))
        return logits if x.sum() > 0 else -logits


def test_a_net_the_exporter_cannot_trace_is_one_line_and_leaves_no_file(mnist, tmp_path):
    meta, _, images = mnist
    model = ImageClassifier(Branchy())
    model.inference = meta
    with pytest.raises(UsageError, match=r"^cannot export Branchy to onnx \(TorchExportError: .*") as info:
        export(model.eval(), images, tmp_path / "version_0" / "checkpoints" / "x.ckpt", "onnx")
    assert "\n" not in str(info.value) and "\x1b" not in str(info.value)
    assert not list((tmp_path / "version_0" / "export").iterdir())
