import functools
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from src.models import MLP, ImageClassifier


def test_shared_step_loss_and_metrics_on_a_tiny_batch():
    torch.manual_seed(0)
    model = ImageClassifier(MLP(hidden=[8]))
    x, y = torch.randn(6, 1, 28, 28), torch.tensor([0, 1, 2, 3, 4, 5])
    loss, logits_out = model._shared_step((x, y), "val")
    logits = model.net(x)
    assert torch.allclose(loss, F.cross_entropy(logits, y))
    acc = model.metrics["val_acc"].compute().item()
    assert acc == (logits.argmax(1) == y).float().mean().item()
    assert model.metrics["val_samples"].compute().item() == 6
    assert torch.allclose(model.metrics["val_loss"].compute(), loss)


def test_hand_built_module_keeps_checkpoint_safe_hparams():
    model = ImageClassifier(MLP(hidden=[8]), optimizer=torch.optim.SGD)
    assert "net" not in model.hparams and "optimizer" not in model.hparams  # objects never reach a checkpoint


def test_one_cycle_gets_the_run_length_from_the_trainer():
    sched = functools.partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=0.1, total_steps=None)
    model = ImageClassifier(MLP(hidden=[8]), optimizer=functools.partial(torch.optim.SGD, lr=0.1), scheduler=sched)
    model._trainer = SimpleNamespace(estimated_stepping_batches=21)  # epochs x batches, as Trainer computes it
    config = model.configure_optimizers()
    assert config["lr_scheduler"]["scheduler"].total_steps == 21 and config["lr_scheduler"]["interval"] == "step"
