"""The CLI as a user runs it: separate processes for fit and test, output read back from disk."""

import csv
import os

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from src.data.mnist import MNISTDataModule
from src.frameworks import skip_nvml_without_gpus
from src.models.mlp import MLP
from tests.conftest import ROOT, only_run, read_scalars, run_cli


@pytest.mark.slow
def test_fit_then_test_best_in_a_new_process(mnist_root, tmp_path):
    logs = ["--trainer.logger.init_args.save_dir", str(tmp_path)]
    run_cli(
        "fit",
        "--config",
        "configs/mnist_mlp.yaml",
        "--trainer.max_epochs",
        "2",
        "--data.init_args.batch_size",
        "512",
        *logs,
        data_dir=mnist_root,
    )
    run = only_run(tmp_path / "mnist_mlp")
    assert run.name == "version_0_max_epochs-2"  # named by what the command changed; batch_size 512 is the file's own
    assert [v for _, v in read_scalars(run)["val/samples"]] == [5000.0, 5000.0]
    val_acc = read_scalars(run)["val/acc"]
    assert len(val_acc) == 2  # one point per epoch
    hp = read_scalars(run)["hp_metric"]
    assert hp[-1][1] == pytest.approx(max(v for _, v in val_acc))

    proc = run_cli("test", "--config", "configs/mnist_mlp.yaml", "--ckpt_path", "best", *logs, data_dir=mnist_root)
    best = next((run / "checkpoints").glob("epoch*.ckpt"))
    assert (
        f"using checkpoint {best.relative_to(ROOT) if best.is_relative_to(ROOT) else best}" in proc.stderr
    )  # Lightning logs on stderr
    scalars = read_scalars(run / "test_0")  # logged beside the run it evaluates
    test_acc, samples = scalars["test/acc"][-1][1], scalars["test/samples"][-1][1]
    assert samples == 10_000 and test_acc >= 0.97

    # Independent check: the checkpoint's weights in a fresh net, the official test tensors, a plain count.
    state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
    net = MLP(hidden=[256, 128], batchnorm=True)
    net.load_state_dict({k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")})
    dm = MNISTDataModule(data_dir=str(mnist_root))
    dm.setup("test")
    with torch.no_grad():
        x = dm.splits["test"].images  # [0, 1] pixels; the net sees them normalized by the train split's statistics
        preds = net.eval()((x - dm.mean.view(1, -1, 1, 1)) / dm.std.view(1, -1, 1, 1)).argmax(1)
    labels = dm.splits["test"].labels
    correct = (preds == labels).sum().item()
    assert abs(correct / 10_000 - test_acc) < 1e-4

    # The test report: its confusion matrix is the independent count, cell by cell; its pictures reach TensorBoard.
    report = run / "test_0" / "test_report"
    rows = list(csv.reader(open(report / "confusion_matrix.csv")))
    counted = torch.zeros(10, 10, dtype=torch.long).index_put_((labels, preds), torch.tensor(1), accumulate=True)
    assert torch.equal(torch.tensor([[int(v) for v in r[1:]] for r in rows[1:]]), counted)
    per_class = list(csv.DictReader(open(report / "per_class.csv")))
    assert sum(int(r["support"]) for r in per_class) == 10_000
    recall_0 = counted[0, 0].item() / counted[0].sum().item()
    assert abs(float(per_class[0]["recall"]) - recall_0) < 1e-4
    for name in ("confusion_matrix", "misclassified", "filters"):
        assert (report / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    events = EventAccumulator(str(run / "test_0"), size_guidance={"images": 0})
    events.Reload()
    assert {"test/confusion_matrix", "test/misclassified", "test/filters"} <= set(events.Tags()["images"])

    # A second test run neither overwrites the first nor becomes a run that "best" could resolve to.
    run_cli("test", "--config", "configs/mnist_mlp.yaml", "--ckpt_path", "last", *logs, data_dir=mnist_root)
    assert (run / "test_1" / "config.yaml").is_file() and (run / "test_0" / "config.yaml").is_file()
    assert only_run(tmp_path / "mnist_mlp") == run


def test_best_without_any_run_is_one_clear_line(tmp_path):
    proc = run_cli(
        "test",
        "--config",
        "configs/mnist_mlp.yaml",
        "--ckpt_path",
        "best",
        "--trainer.logger.init_args.save_dir",
        str(tmp_path),
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: no trained run with checkpoints under {tmp_path}/mnist_mlp; train first: "
        "python -m src.cli fit --config configs/mnist_mlp.yaml"
    ]


@pytest.mark.parametrize("gpus, kept", [(0, False), (2, True)])
def test_nvml_gpu_check_is_dropped_only_without_gpus(gpus, kept, monkeypatch):
    monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # what importing Lightning sets
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    skip_nvml_without_gpus()
    assert ("PYTORCH_NVML_BASED_CUDA_CHECK" in os.environ) == kept


@pytest.mark.parametrize("native", [True, False])
def test_bf16_config_falls_back_to_float32_where_bf16_is_emulated(native, tmp_path, monkeypatch):
    """configs/mnist_cnn.yaml asks for bf16-mixed: kept where the device has native bf16, else 32-true (emulated bf16
    is slower than float32, and a default must not get slower on a user's machine)."""
    import src.cli
    import src.frameworks

    monkeypatch.setattr(src.frameworks, "native_bf16", lambda accelerator: native)
    monkeypatch.chdir(ROOT)
    cli = src.cli.main(
        ["--config", "configs/mnist_cnn.yaml", "--trainer.logger.init_args.save_dir", str(tmp_path)], run=False
    )
    assert cli.trainer.precision == ("bf16-mixed" if native else "32-true")
