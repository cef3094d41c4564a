import functools
import json
import shutil
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from src.cli import main
from src.errors import UsageError
from src.models.classifier import ImageClassifier
from src.models.cnn import SmallCNN
from src.models.mlp import MLP
from tests.conftest import REAL_DATA, only_run, read_scalars, run_cli


def test_shared_step_loss_and_metrics_on_a_tiny_batch():
    torch.manual_seed(0)
    model = ImageClassifier(MLP(hidden=[8]))
    x, y = torch.randn(6, 1, 28, 28), torch.tensor([0, 1, 2, 3, 4, 5])
    loss, logits_out = model._shared_step((x, y), "val")
    logits = model.net(x)
    assert torch.allclose(loss, F.cross_entropy(logits, y))
    stats = model.stats["val_stats"].compute()
    assert stats["acc"].item() == (logits.argmax(1) == y).float().mean().item()
    assert stats["samples"].item() == 6
    assert torch.allclose(stats["loss"], loss)


def test_label_smoothing_smooths_the_training_loss_only():
    """Training: cross-entropy against (1 - s) one-hot + s / classes, written out by hand; val and test: plain."""
    torch.manual_seed(0)
    model = ImageClassifier(MLP(hidden=[8]), label_smoothing=0.1)
    x, y = torch.randn(6, 1, 28, 28), torch.tensor([0, 1, 2, 3, 4, 5])
    logits = model.net(x)
    target = 0.9 * F.one_hot(y, 10) + 0.1 / 10
    smoothed = -(target * logits.log_softmax(dim=1)).sum(dim=1).mean()
    assert torch.allclose(model._shared_step((x, y), "train")[0], smoothed)
    for stage in ("val", "test"):
        assert torch.allclose(model._shared_step((x, y), stage)[0], F.cross_entropy(logits, y))
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        ImageClassifier(MLP(hidden=[8]), label_smoothing=1.0)


def test_eval_flip_scores_an_image_and_its_mirror_alike_outside_training_only():
    """Eval mode: the mean of the net's logits on the normalized image and on its mirror, so an image and its mirror
    get the same scores; training steps see the one view the batch holds."""
    torch.manual_seed(0)
    model = ImageClassifier(SmallCNN(batchnorm=True), eval_flip=True).eval()
    x = torch.rand(8, 1, 28, 28)
    z = model.normalize(x)
    both = (model.net(z) + model.net(z.flip(-1))) / 2
    assert torch.allclose(model(x), both, atol=1e-6)
    assert torch.allclose(model(x.flip(-1)), model(x), atol=1e-5)
    assert not torch.allclose(model.net(z.flip(-1)), model.net(z), atol=1e-3)  # the net alone tells them apart
    model.train()  # batchnorm on the batch's statistics: both calls see the same batch
    assert torch.equal(model(x), model.net(z))


def test_hand_built_module_keeps_checkpoint_safe_hparams():
    model = ImageClassifier(MLP(hidden=[8]), optimizer=torch.optim.SGD)
    assert "net" not in model.hparams and "optimizer" not in model.hparams  # objects never reach a checkpoint


def test_one_cycle_gets_the_run_length_from_the_trainer():
    sched = functools.partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=0.1, total_steps=None)
    model = ImageClassifier(MLP(hidden=[8]), optimizer=functools.partial(torch.optim.SGD, lr=0.1), scheduler=sched)
    model.trainer = SimpleNamespace(estimated_stepping_batches=21)  # epochs x batches, as Trainer computes it
    config = model.configure_optimizers()
    assert config["lr_scheduler"]["scheduler"].total_steps == 21 and config["lr_scheduler"]["interval"] == "step"


@pytest.mark.parametrize(
    "net, data, message",
    [
        (
            MLP(hidden=[8]),
            SimpleNamespace(in_shape=(3, 32, 32), num_classes=10),
            r"expects images of shape \(1, 28, 28\) but the data module gives \(3, 32, 32\).*in_shape \[3, 32, 32\]",
        ),
        (
            MLP(hidden=[8]),
            SimpleNamespace(in_shape=(1, 28, 28), num_classes=100),
            r"the net has 10 outputs but the data set has 100 classes.*num_classes 100",
        ),
    ],
)
def test_setup_names_a_net_that_does_not_fit_the_data(net, data, message):
    model = ImageClassifier(net)
    model.trainer = SimpleNamespace(datamodule=data)
    with pytest.raises(UsageError, match=message):
        model.setup("fit")
    model.trainer = SimpleNamespace(datamodule=SimpleNamespace(in_shape=(1, 28, 28), num_classes=10))
    model.setup("fit")  # a fitting data module passes


@pytest.mark.parametrize("config", ["mnist_mlp", "mnist_manual"])
def test_train_loss_is_logged_on_exactly_the_steps_the_logger_writes(config, mnist_root, tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(mnist_root))
    main(
        [
            "fit",
            "--config",
            f"configs/{config}.yaml",
            "--trainer.logger.init_args.save_dir",
            str(tmp_path),
            "--trainer.max_epochs",
            "2",
            "--trainer.limit_train_batches",
            "12",
            "--trainer.limit_val_batches",
            "1",
            "--trainer.log_every_n_steps",
            "5",
            "--trainer.enable_progress_bar",
            "false",
        ]
    )
    scalars = read_scalars(only_run(tmp_path / config))
    # 24 optimizer steps (0..23); Lightning writes step scalars after steps 4, 9, 14, 19, across the epoch boundary.
    assert [step for step, _ in scalars["train/loss"]] == [4, 9, 14, 19]
    assert [step for step, _ in scalars["lr-" + ("ManualSGD" if config == "mnist_manual" else "Adam")]] == [
        4,
        9,
        14,
        19,
    ]


def test_a_checkpoint_from_before_inference_metadata_loads_and_predict_says_why_not():
    """Checkpoints written before class names and shapes were saved: they load; predicting a user's images is one
    clear error (the model cannot know the input's shape)."""
    model = ImageClassifier(MLP(hidden=[8]))
    old = {"state_dict": model.state_dict()}  # no "inference" entry
    model.restore(old)
    assert model.inference is None and model.classes == [str(i) for i in range(10)]
    with pytest.raises(UsageError, match="carries no input description"):
        model.predict_images(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))


def test_a_checkpoint_from_before_normalization_was_a_layer_keeps_its_statistics():
    """Such checkpoints hold mean/std in checkpoint["inference"] and no normalize.* tensors: converted on load, so
    the model normalizes as it was trained to, (x - mean) / std."""
    torch.manual_seed(0)
    trained = ImageClassifier(MLP(hidden=[8]))
    state = {k: v for k, v in trained.state_dict().items() if not k.startswith("normalize.")}
    old = {
        "state_dict": state,
        "inference": {
            "mean": [0.1307],
            "std": [0.3081],
            "classes": list("0123456789"),
            "in_shape": [1, 28, 28],
            "dark_background": True,
        },
    }
    model = ImageClassifier(MLP(hidden=[8])).restore(old)
    x = torch.rand(4, 1, 28, 28)
    assert torch.allclose(model.eval()(x), trained.net.eval()((x - 0.1307) / 0.3081))


def test_eval_flip_set_on_the_command_line_scores_a_trained_checkpoint(short_mlp_run, tmp_path):
    """eval_flip is kept out of the checkpoint's hyperparameters, which LightningCLI lays over the command line: set
    for an evaluation, it applies. MNIST's digits are not mirror-symmetric, so scoring their mirrors too costs
    accuracy: the evaluation with it must differ from the one without."""
    save_dir, run, _ = short_mlp_run
    ckpt = tmp_path / "mlp.ckpt"  # a copy outside the shared run: these evaluations get their own folders
    shutil.copy(run / "checkpoints" / "last.ckpt", ckpt)
    assert "eval_flip" not in torch.load(ckpt, weights_only=True)["hyper_parameters"]
    accuracy = {}
    for flip in ("false", "true"):
        logs = tmp_path / flip
        run_cli(
            "validate",
            "--config",
            "configs/mnist_mlp.yaml",
            "--ckpt_path",
            str(ckpt),
            "--model.init_args.eval_flip",
            flip,
            "--trainer.logger.init_args.save_dir",
            str(logs),
            "--trainer.limit_val_batches",
            "4",
            data_dir=REAL_DATA,
        )
        (metrics,) = logs.glob("mnist_mlp/version_*/validate_*/metrics.json")
        accuracy[flip] = json.loads(metrics.read_text())["metrics"]["val/acc"]
    assert accuracy["false"] > 0.85 and accuracy["true"] < accuracy["false"] - 0.05, accuracy
