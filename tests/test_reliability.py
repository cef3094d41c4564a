"""Reliability: reproducible and resumable runs, interrupts, and one-line errors on bad input."""

import math
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from lightning.pytorch import Callback

from src.cli import main
from src.data.mnist import MNISTDataModule
from src.errors import UsageError
from tests.conftest import ROOT, ctrl_c_works, make_idx_dataset, only_run, read_scalars, run_cli

SHORT = [
    "--trainer.limit_train_batches",
    "30",
    "--trainer.limit_val_batches",
    "2",
    "--trainer.enable_progress_bar",
    "false",
]


def fit(tmp_path, *args, config="configs/mnist_mlp.yaml", save_dir=None):
    main(["fit", "--config", config, "--trainer.logger.init_args.save_dir", str(save_dir or tmp_path), *SHORT, *args])


def cli_error(capfd, *args) -> str:
    """Run the CLI in-process, expect exit status 2, no traceback, and one error line, the last on stderr
    (Python warnings may precede it); return that line."""
    capfd.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    lines = capfd.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and not any("Traceback" in line for line in lines), lines
    assert [line for line in lines if line.startswith("error: ")] == lines[-1:], lines
    return lines[-1]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One short real-MNIST fit (2 epochs of 30 batches) whose checkpoints several tests read."""
    if not (os.environ.get("DATA_DIR") or (ROOT.parent / "shared" / "datasets").is_dir()):
        pytest.skip("real MNIST not found")
    os.environ.setdefault("DATA_DIR", str(ROOT.parent / "shared" / "datasets"))
    save_dir = tmp_path_factory.mktemp("logs")
    fit(save_dir, "--trainer.max_epochs", "2")
    return only_run(save_dir / "mnist_mlp")


def weights(ckpt) -> dict:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]


@pytest.mark.slow
def test_same_seed_twice_gives_identical_runs(mnist_root, tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(mnist_root))
    for name in ("a", "b"):
        fit(tmp_path, "--trainer.max_epochs", "2", "--trainer.logger.init_args.name", name)
    a, b = (only_run(tmp_path / n) for n in ("a", "b"))
    assert read_scalars(a)["val/loss"] == read_scalars(b)["val/loss"]
    wa, wb = weights(a / "checkpoints" / "last.ckpt"), weights(b / "checkpoints" / "last.ckpt")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.slow
@pytest.mark.parametrize(
    "config,extra",
    [("configs/mnist_mlp.yaml", ["--model.init_args.scheduler", "null"]), ("configs/mnist_manual.yaml", [])],
)
def test_resume_from_last_equals_an_uninterrupted_run(mnist_root, tmp_path, monkeypatch, config, extra):
    """3 epochs straight vs 2 epochs, stop, `--ckpt_path last` for the third: same metrics, same weights
    (the shuffle order is a function of (seed, epoch); optimizer state incl. ManualSGD's momentum is restored)."""
    monkeypatch.setenv("DATA_DIR", str(mnist_root))
    fit(tmp_path, "--trainer.max_epochs", "3", "--trainer.logger.init_args.name", "straight", *extra, config=config)
    fit(tmp_path, "--trainer.max_epochs", "2", "--trainer.logger.init_args.name", "resumed", *extra, config=config)
    fit(
        tmp_path,
        "--trainer.max_epochs",
        "3",
        "--trainer.logger.init_args.name",
        "resumed",
        "--ckpt_path",
        "last",
        *extra,
        config=config,
    )
    straight, resumed = only_run(tmp_path / "straight"), only_run(tmp_path / "resumed")  # resumed in place
    s, r = read_scalars(straight)["val/loss"], read_scalars(resumed)["val/loss"]
    assert len(s) == len(r) == 3 and all(abs(x[1] - y[1]) < 1e-6 for x, y in zip(s, r))
    ws, wr = weights(straight / "checkpoints" / "last.ckpt"), weights(resumed / "checkpoints" / "last.ckpt")
    assert all(torch.allclose(ws[k], wr[k], atol=1e-6) for k in ws)
    assert (resumed / "config.yaml").is_file() and (resumed / "config_resume_0.yaml").is_file()


class InterruptAt(Callback):
    """Ctrl-C in the middle of an epoch: after training batch `batch` of epoch `epoch`."""

    def __init__(self, epoch: int = 1, batch: int = 13):
        self.epoch, self.batch = epoch, batch

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch):
            raise KeyboardInterrupt


@pytest.mark.slow
def test_a_run_interrupted_mid_epoch_resumes_exactly(mnist_root, tmp_path, monkeypatch):
    """mnist_cnn (one-cycle lr and momentum, batchnorm, augmentation) for 3 epochs straight vs interrupted at batch 13
    of epoch 1 and resumed with --ckpt_path last: the rest of the interrupted epoch sees exactly the batches it would
    have seen, so metrics, weights and batchnorm's buffers agree. (OneCycleLR's length builds the train loader before
    the checkpoint is restored, where Lightning drops a loader's own state: the resumed epoch replayed its first
    batches until the position came from the trainer's progress.)"""
    monkeypatch.setenv("DATA_DIR", str(mnist_root))
    cnn = ["--trainer.max_epochs", "3", "--trainer.precision", "32-true"]
    fit(tmp_path, *cnn, "--trainer.logger.init_args.name", "straight", config="configs/mnist_cnn.yaml")
    with pytest.raises(SystemExit):  # Lightning's exit after Ctrl-C, once CheckpointOnInterrupt has saved
        fit(
            tmp_path,
            *cnn,
            "--trainer.logger.init_args.name",
            "resumed",
            "--trainer.callbacks+",
            "tests.test_reliability.InterruptAt",
            config="configs/mnist_cnn.yaml",
        )
    resumed = only_run(tmp_path / "resumed")
    assert torch.load(resumed / "checkpoints" / "interrupted.ckpt", weights_only=True)["global_step"] == 30 + 14
    fit(
        tmp_path,
        *cnn,
        "--trainer.logger.init_args.name",
        "resumed",
        "--ckpt_path",
        "last",
        config="configs/mnist_cnn.yaml",
    )
    straight = only_run(tmp_path / "straight")
    s, r = read_scalars(straight)["val/loss"], read_scalars(resumed)["val/loss"]
    assert len(s) == len(r) == 3 and all(abs(x[1] - y[1]) < 1e-6 for x, y in zip(s, r)), (s, r)
    ws, wr = weights(straight / "checkpoints" / "last.ckpt"), weights(resumed / "checkpoints" / "last.ckpt")
    assert any("num_batches_tracked" in k for k in ws)
    assert all(torch.allclose(ws[k].double(), wr[k].double(), atol=1e-6) for k in ws), {
        k: (ws[k].double() - wr[k].double()).abs().max().item() for k in ws
    }


@pytest.mark.slow
@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 1)])
def test_interrupt_saves_a_checkpoint_and_resumes(mnist_root, tmp_path, sig, code):
    args = [
        sys.executable,
        "-m",
        "src.cli",
        "fit",
        "--config",
        "configs/mnist_mlp.yaml",
        "--trainer.max_epochs",
        "6",
        "--trainer.logger.init_args.save_dir",
        str(tmp_path),
        *SHORT,
        "--trainer.limit_train_batches",
        "150",
    ]  # whole epochs, ~0.5 s: 0.3 s after the first one's checkpoint the
    # signal lands in the second epoch's training steps, with four more epochs to go
    env = {**os.environ, "DATA_DIR": str(mnist_root), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=ctrl_c_works
    )
    deadline = time.time() + 120
    while not list(tmp_path.glob("mnist_mlp/version_0*/checkpoints/last.ckpt")) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(0.3)
    ckpts = only_run(tmp_path / "mnist_mlp") / "checkpoints"
    before = {p.name: p.read_bytes() for p in ckpts.glob("*.ckpt")}
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == code, out[-2000:]
    assert "resume by running the same command with --ckpt_path last" in out
    assert "weights_only" not in out  # no stray notice from Lightning about how the checkpoint was saved
    assert (ckpts / "interrupted.ckpt").is_file() and weights(ckpts / "interrupted.ckpt")
    for name in before:  # last and best from before are still there and readable
        assert (ckpts / name).is_file() and weights(ckpts / name)
    resumed = run_cli(
        *args[3:], "--ckpt_path", "last", data_dir=mnist_root, check=False
    )  # the same command, as the message says
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"fit: using checkpoint {ckpts / 'interrupted.ckpt'}" in resumed.stderr
    steps = {
        n: torch.load(ckpts / n, map_location="cpu", weights_only=True)["global_step"]
        for n in ("last.ckpt", "interrupted.ckpt")
    }
    assert steps["last.ckpt"] > steps["interrupted.ckpt"]  # it trained on from where it was stopped


class CtrlCInValidation(Callback):
    """Test helper: Ctrl-C (KeyboardInterrupt) at the first validation batch of epoch `epoch`."""

    def __init__(self, epoch: int = 1):
        self.epoch = epoch

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        if not trainer.sanity_checking and trainer.current_epoch == self.epoch:
            raise KeyboardInterrupt


def test_ctrl_c_during_validation_saves_nothing_and_says_what_resumes(mnist_root, tmp_path):
    """Cut short, a validation has no scores: no interrupted.ckpt; the line names last.ckpt (end of epoch 0), which
    `--ckpt_path last` then resumes from."""
    args = [
        "fit",
        "--config",
        "configs/mnist_mlp.yaml",
        "--trainer.max_epochs",
        "2",
        "--trainer.logger.init_args.save_dir",
        str(tmp_path),
        *SHORT,
    ]
    proc = run_cli(
        *args, "--trainer.callbacks+=tests.test_reliability.CtrlCInValidation", data_dir=mnist_root, check=False
    )
    ckpts = only_run(tmp_path / "mnist_mlp") / "checkpoints"
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert (
        f"interrupted during validation at epoch 1, step 60; resume by running the same command with --ckpt_path "
        f"last (from {ckpts / 'last.ckpt'})"
    ) in proc.stderr
    assert not (ckpts / "interrupted.ckpt").exists()
    assert torch.load(ckpts / "last.ckpt", map_location="cpu", weights_only=True)["global_step"] == 30
    resumed = run_cli(*args, "--ckpt_path", "last", data_dir=mnist_root)
    assert f"fit: using checkpoint {ckpts / 'last.ckpt'}" in resumed.stderr
    assert torch.load(ckpts / "last.ckpt", map_location="cpu", weights_only=True)["global_step"] == 60


class PoisonAtStep(Callback):
    """Test helper: turns the weights to NaN before training step `step`."""

    def __init__(self, step: int = 25):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            with torch.no_grad():
                for p in pl_module.parameters():
                    p.fill_(float("nan"))


def test_nan_loss_stops_at_once_and_keeps_the_best_checkpoint(mnist_root, tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(mnist_root))
    line = cli_error(
        capfd,
        "fit",
        "--config",
        "configs/mnist_mlp.yaml",
        "--trainer.logger.init_args.save_dir",
        str(tmp_path),
        *SHORT,
        "--trainer.val_check_interval",
        "10",
        "--trainer.callbacks+=tests.test_reliability.PoisonAtStep",
        "--trainer.callbacks.step",
        "25",
    )
    assert "loss became nan at epoch 0, step 25" in line
    ckpts = only_run(tmp_path / "mnist_mlp") / "checkpoints"
    best = [p for p in ckpts.glob("epoch*.ckpt")]
    assert len(best) == 1 and all(torch.isfinite(v).all() for v in weights(best[0]).values() if v.is_floating_point())


BAD_ARGS = [
    (["--model.init_args.net.init_args.hiden", "[5]"], "Option 'hiden' is not accepted"),
    (["--data.init_args.batch_size", "abc"], "data.batch_size: Expected a <class 'int'>. Got value: abc"),
    (["--model.init_args.net.init_args.activation", "swish"], "model.net.activation: Expected a typing.Literal"),
    (["--model.init_args.net.init_args.init", "xavier"], "model.net.init: Expected a typing.Literal"),
    (["--model.init_args.net.init_args.hidden", "[64, 0]"], "hidden sizes must be positive"),
    (["--data.init_args.batch_size", "0"], "batch sizes must be positive"),
    (["--model.init_args.net", "torch.nn.Identity"], "torch.nn.Identity must take in_shape and num_classes"),
    (["--data.init_args.val_size", "60000"], "val_size=60000 leaves no training images"),
    (
        ["--trainer.callbacks+=lightning.pytorch.callbacks.EarlyStopping", "--trainer.callbacks.monitor", "val/acx"],
        "EarlyStopping monitors 'val/acx', which is never logged",
    ),
    (
        ["--model.init_args.optimizer.init_args.lr", "-1"],
        "the optimizer or its schedule refuses its settings: Invalid learning rate",
    ),
    (["--trainer.max_epochs", "0"], "this fit would train nothing"),
    (["--trainer.limit_train_batches", "0"], "this fit would train nothing"),
    (["--trainer.accumulate_grad_batches", "0"], "trainer.accumulate_grad_batches must be 1 or more"),
]


@pytest.mark.parametrize("args,message", BAD_ARGS, ids=[a[0].split(".")[-1] for a, _ in BAD_ARGS])
def test_bad_config_values_are_one_line(mnist_root, tmp_path, capfd, monkeypatch, args, message):
    monkeypatch.setenv("DATA_DIR", str(mnist_root))
    line = cli_error(
        capfd, "fit", "--config", "configs/mnist_mlp.yaml", "--trainer.logger.init_args.save_dir", str(tmp_path), *args
    )
    assert message in line
    assert not any(tmp_path.rglob("*.ckpt"))


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "holds nothing; a config maps keys to values"),
        (bytes(range(128, 256)), "is not a text file; --config takes a YAML file"),
        (b"trainer:\n  max_epochs: [3\n", "line 3: not valid YAML"),
        (b"- fit\n- test\n", "holds a list, not a mapping"),
    ],
    ids=["empty", "binary", "syntax", "list"],
)
def test_a_config_file_that_is_no_mapping_is_named_in_one_line(tmp_path, capfd, content, message):
    config = tmp_path / "bad.yaml"
    config.write_bytes(content)
    line = cli_error(
        capfd, "fit", "--config", str(config), "--trainer.logger.init_args.save_dir", str(tmp_path / "logs")
    )
    assert line.startswith(f"error: {config}") and message in line and not (tmp_path / "logs").exists()


def test_missing_config_file(capfd):
    assert "File does not exist" in cli_error(capfd, "fit", "--config", "configs/nope.yaml")


def test_missing_data_with_download_off(tmp_path, capfd):
    line = cli_error(
        capfd,
        "fit",
        "--config",
        "configs/mnist_mlp.yaml",
        "--trainer.logger.init_args.save_dir",
        str(tmp_path),
        "--data.init_args.data_dir",
        str(tmp_path / "none"),
        "--data.init_args.download",
        "false",
    )
    assert f"MNIST not found in {tmp_path / 'none'}" in line


def test_truncated_idx_through_the_cli(tmp_path, capfd):
    make_idx_dataset(tmp_path / "d", "MNIST", n_train=100, n_test=10)
    f = tmp_path / "d" / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:1000])
    line = cli_error(
        capfd,
        "fit",
        "--config",
        "configs/mnist_mlp.yaml",
        "--trainer.logger.init_args.save_dir",
        str(tmp_path),
        "--data.init_args.data_dir",
        str(tmp_path / "d"),
        "--data.init_args.val_size",
        "10",
    )
    assert "truncated" in line and "t10k-images-idx3-ubyte" in line


class BatchDroppingNet(torch.nn.Module):
    """A bug on purpose: its logits miss the batch's last image, so F.cross_entropy raises a ValueError mid-run."""

    def __init__(self, in_shape: tuple[int, ...] = (1, 28, 28), num_classes: int = 10, drop: int = 1):
        super().__init__()
        self.linear, self.drop = torch.nn.Linear(math.prod(in_shape), num_classes), drop

    def forward(self, x):
        return self.linear(x.flatten(1))[: -self.drop]


def test_a_bug_inside_a_run_shows_its_traceback(tmp_path, capfd, monkeypatch):
    """Only bad input is a one-line error: a ValueError raised by the training code is a bug and keeps its traceback."""
    monkeypatch.chdir(ROOT)
    make_idx_dataset(tmp_path / "d", "MNIST", n_train=300, n_test=10)
    with pytest.raises(ValueError, match="batch_size"):
        main(
            [
                "fit",
                "--config",
                "configs/mnist_mlp.yaml",
                "--model.init_args.net",
                "tests.test_reliability.BatchDroppingNet",
                "--data.init_args.data_dir",
                str(tmp_path / "d"),
                "--data.init_args.val_size",
                "100",
                "--trainer.logger.init_args.save_dir",
                str(tmp_path / "logs"),
                "--trainer.max_epochs",
                "1",
            ]
        )
    assert "error:" not in capfd.readouterr().err


def test_data_dir_not_writable_when_a_download_is_needed(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # root may write anywhere; pretend it may not
    with pytest.raises(UsageError, match="is not writable"):
        MNISTDataModule(data_dir=str(tmp_path / "new"), download=True).prepare_data()


@pytest.mark.parametrize("content", [os.urandom(4096), None], ids=["random_bytes", "truncated"])
def test_unreadable_checkpoint_is_one_line(tiny_run, tmp_path, capfd, content):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(content if content is not None else (tiny_run / "checkpoints" / "last.ckpt").read_bytes()[:5000])
    line = cli_error(
        capfd,
        "test",
        "--config",
        "configs/mnist_mlp.yaml",
        "--ckpt_path",
        str(bad),
        "--trainer.logger.init_args.save_dir",
        str(tmp_path),
    )
    assert f"{bad} is not a readable checkpoint" in line


def test_checkpoint_of_another_architecture_names_the_mismatch(tiny_run, tmp_path, capfd):
    # Our checkpoints carry their hyperparameters, from which LightningCLI rebuilds the right model; one made
    # elsewhere (here: the same file without them) must meet a clear error, not a 20-line state_dict dump.
    checkpoint = torch.load(tiny_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    del checkpoint["hyper_parameters"]
    foreign = tmp_path / "foreign.ckpt"
    torch.save(checkpoint, foreign)
    line = cli_error(
        capfd,
        "test",
        "--config",
        "configs/mnist_mlp.yaml",
        "--ckpt_path",
        str(foreign),
        "--model.init_args.net.init_args.hidden",
        "[64]",
        "--trainer.logger.init_args.save_dir",
        str(tmp_path),
    )
    assert "net.layers.1.weight is [256, 784] in the checkpoint but [64, 784] here" in line


def test_crafted_pickle_in_a_checkpoint_is_refused_not_run(tmp_path, capfd):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "x": Payload()}, evil)
    with open(evil, "rb") as f:  # the payload really is in the file: plain pickle would run it
        assert b"system" in f.read()
    line = cli_error(
        capfd,
        "test",
        "--config",
        "configs/mnist_mlp.yaml",
        "--ckpt_path",
        str(evil),
        "--trainer.logger.init_args.save_dir",
        str(tmp_path),
    )
    assert "is not a readable checkpoint (UnpicklingError" in line and not marker.exists()


def test_rerun_into_an_existing_run_never_overwrites_it(tiny_run, capfd):
    before = {p: p.read_bytes() for p in tiny_run.rglob("*") if p.is_file()}
    line = cli_error(
        capfd,
        "fit",
        "--config",
        "configs/mnist_mlp.yaml",
        "--trainer.logger.init_args.save_dir",
        str(tiny_run.parent.parent),
        "--trainer.logger.init_args.version",
        tiny_run.name,
    )
    assert "already holds a run" in line
    assert {p: p.read_bytes() for p in tiny_run.rglob("*") if p.is_file()} == before


def test_a_runs_own_config_tests_that_runs_best_checkpoint_beside_it(tiny_run, tmp_path):
    """`test --config <run>/config.yaml --ckpt_path best`: the saved config names the run, so `best` is that run's
    (not the config's newest run's) and the evaluation logs beside it (test_K) instead of being refused."""
    root = tmp_path / "mnist_mlp"
    shutil.copytree(tiny_run, root / tiny_run.name)
    shutil.copytree(tiny_run, root / "version_9")  # a newer run of the same config
    main(
        [
            "test",
            "--config",
            str(root / tiny_run.name / "config.yaml"),
            "--trainer.logger.init_args.save_dir",
            str(tmp_path),
            "--ckpt_path",
            "best",
            "--trainer.limit_test_batches",
            "2",
            "--trainer.enable_progress_bar",
            "false",
        ]
    )
    assert "test/acc" in read_scalars(root / tiny_run.name / "test_0") and not (root / "version_9" / "test_0").exists()


def test_resuming_with_a_changed_model_is_refused_before_anything_changes(tiny_run, capfd):
    """LightningCLI rebuilds a resumed model from the checkpoint: a changed net would be ignored without a word."""
    before = {p: p.read_bytes() for p in tiny_run.rglob("*") if p.is_file()}
    line = cli_error(
        capfd,
        "fit",
        "--config",
        "configs/mnist_mlp.yaml",
        "--trainer.logger.init_args.save_dir",
        str(tiny_run.parent.parent),
        "--ckpt_path",
        "last",
        "--model.init_args.net.init_args.hidden",
        "[64]",
    )
    assert (
        f"resuming {tiny_run.name} trains the checkpoint's model, not this one (model.init_args.net.init_args.hidden: "
        "[256, 128] in the checkpoint, [64] here)"
    ) in line
    assert {p: p.read_bytes() for p in tiny_run.rglob("*") if p.is_file()} == before


def test_a_checkpoint_of_another_data_set_is_refused_in_one_line(tiny_run, tmp_path, capfd, fashion_root):
    """An MNIST model tested under the FashionMNIST config would score ~5 %: the classes differ, said in one line,
    and nothing is left behind."""
    before = sorted(p.name for p in tiny_run.iterdir())
    line = cli_error(
        capfd,
        "test",
        "--config",
        "configs/fashion_mnist_mlp.yaml",
        "--ckpt_path",
        str(next((tiny_run / "checkpoints").glob("epoch*.ckpt"))),
        "--data.init_args.data_dir",
        str(fashion_root),
        "--trainer.logger.init_args.save_dir",
        str(tmp_path),
    )
    assert (
        "the checkpoint was trained on other data (classes [0, 1, 2, 3, ...]) than this config's data module "
        "serves ([T-shirt/top, Trouser, Pullover, Dress, ...])" in line
    )
    assert sorted(p.name for p in tiny_run.iterdir()) == before


def test_a_checkpoint_cannot_choose_what_gets_imported(tiny_run, tmp_path, capfd):
    """A file that loads fine with weights_only=True names a class in a module nobody asked for: refused before the
    import (the standard library's `this` prints the Zen of Python when imported)."""
    import sys

    checkpoint = torch.load(tiny_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    checkpoint["hyper_parameters"]["net"]["class_path"] = "this.Foo"
    crafted = tmp_path / "crafted.ckpt"
    torch.save(checkpoint, crafted)
    sys.modules.pop("this", None)
    line = cli_error(
        capfd,
        "test",
        "--config",
        "configs/mnist_mlp.yaml",
        "--ckpt_path",
        str(crafted),
        "--trainer.logger.init_args.save_dir",
        str(tmp_path),
    )
    assert "the checkpoint's hyperparameters name this.Foo, a class outside src., torch. and lightning." in line
    assert "this" not in sys.modules and "Zen of Python" not in capfd.readouterr().out


@pytest.mark.slow
def test_a_run_resumed_three_times_trains_on_each_time_and_keeps_each_config(mnist_root, tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(mnist_root))
    constant = ["--model.init_args.scheduler", "null", "--trainer.logger.init_args.name", "run"]
    fit(tmp_path, *constant, "--trainer.max_epochs", "1")
    run = only_run(tmp_path / "run")
    for epochs in (2, 3, 4):
        fit(tmp_path, *constant, "--trainer.max_epochs", str(epochs), "--ckpt_path", "last")
        assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 30 * epochs
    assert only_run(tmp_path / "run") == run  # each resume went on in the same folder
    assert sorted(p.name for p in run.glob("config*.yaml")) == [
        "config.yaml",
        "config_resume_0.yaml",
        "config_resume_1.yaml",
        "config_resume_2.yaml",
    ]


TOGETHER = """
import sys, time
from pathlib import Path
from src.run.layout import Run
from src.cli import main
claim, barrier = Run.claim.__func__, Path(sys.argv[1])
def claim_together(cls, root, suffix=""):  # both commands reach the naming of their run, then both name it at once
    (barrier / f"ready_{sys.argv[2]}").touch()
    while len(list(barrier.glob("ready_*"))) < 2:
        time.sleep(0.001)
    return claim(cls, root, suffix)
Run.claim = classmethod(claim_together)
main(sys.argv[3:])
"""


@pytest.mark.slow
def test_two_fits_of_one_command_started_together_finish_in_two_folders(mnist_root, tmp_path):
    """A barrier just before each command names its run: both name it at the same moment, both finish, in two
    folders, and every checkpoint of each loads (the second no longer fails and deletes the first's folder)."""
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    args = [
        "fit",
        "--config",
        "configs/mnist_mlp.yaml",
        "--trainer.logger.init_args.save_dir",
        str(tmp_path / "logs"),
        "--trainer.max_epochs",
        "1",
        "--trainer.limit_train_batches",
        "2",
        "--trainer.limit_val_batches",
        "1",
        "--trainer.enable_progress_bar",
        "false",
    ]
    env = {**os.environ, "DATA_DIR": str(mnist_root)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", TOGETHER, str(barrier), str(i), *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    runs = sorted((tmp_path / "logs" / "mnist_mlp").iterdir())
    assert [r.name.split("_max_epochs")[0] for r in runs] == ["version_0", "version_1"]
    for run in runs:
        checkpoints = sorted((run / "checkpoints").glob("*.ckpt"))
        assert len(checkpoints) == 2 and all(torch.load(c, weights_only=True)["global_step"] == 2 for c in checkpoints)
