"""ImageClassifier: the one LightningModule; it takes any net that maps images to logits (src/contracts.py).
EpochStats: a stage's accuracy, mean loss and sample count over an epoch, as one torchmetrics Metric."""

from typing import Literal

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_info
from torch import nn
from torchmetrics import MaxMetric, Metric

from src.errors import UsageError
from src.frameworks import saving_hyperparameters
from src.models.wrap import Normalize, flip_mean

STAGES = ("train", "val", "test")
EPOCH_METRICS = ("acc", "loss", "samples")  # per stage, EpochStats' values, logged once per epoch


def epoch_name(stage: str, metric: str) -> str:
    """The logged name of an epoch metric: train/loss is the per-step curve, so its epoch mean is train/loss_epoch."""
    return f"{stage}/{metric}" + ("_epoch" if (stage, metric) == ("train", "loss") else "")


def _brief(values) -> str:
    values = list(values)
    return f"[{', '.join(map(str, values[:4]))}{', ...' if len(values) > 4 else ''}]"


class ImageClassifier(LightningModule):
    """Cross-entropy training of `net` on images in [0, 1], normalized by its first layer (`normalize`: the training
    split's per-channel mean and std, set from the data module and saved in the state dict), with torchmetrics for
    every logged number.

    Logs `train/loss` (on the steps the logger writes), `train/loss_epoch`, `{val,test}/loss`, `{stage}/acc` and
    `{stage}/samples` per epoch
    (samples proves that every image is scored exactly once, also across DDP ranks), and
    `val/acc_best`. The net's `in_shape` and `num_classes`, where it has them (MLP and SmallCNN; ManualMLP
    has num_classes and checks its input size itself), are checked against the data module's before training: the
    command line hands the data module's to the net (src/cli.py), a net built by hand may disagree.
    """

    def __init__(
        self,
        # the network; in YAML a class_path (src.models.mlp.MLP, src.models.cnn.SmallCNN) with init_args
        net: nn.Module,
        optimizer: OptimizerCallable = torch.optim.Adam,  # class_path + init_args of any torch.optim optimizer
        scheduler: LRSchedulerCallable | None = None,  # see configure_optimizers
        scheduler_interval: Literal["step", "epoch"] = "step",  # step the scheduler after every batch, or every epoch
        label_smoothing: float = 0.0,  # training targets (1 - s) one-hot + s / classes; val/test losses stay plain
        # outside training (val, test, predict, export) score each image and its left-right mirror
        eval_flip: bool = False,
    ):
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.net, self.optimizer, self.scheduler, self.scheduler_interval = (
            net,
            optimizer,
            scheduler,
            scheduler_interval,
        )
        self.label_smoothing, self.eval_flip = label_smoothing, eval_flip
        self.normalize = Normalize()
        with saving_hyperparameters():
            # eval_flip is how the model is scored, not what it is: kept out of the checkpoint's hyperparameters,
            # which LightningCLI lays over the command line when it loads --ckpt_path, so that `test --ckpt_path X
            # --model.init_args.eval_flip true` scores any checkpoint with it (the run's config.yaml records it).
            self.save_hyperparameters(ignore=["eval_flip"])
        # LightningCLI saves the config of `net` and `optimizer` (plain class_path/init_args dicts); a module
        # built by hand would pickle objects into every checkpoint, which torch's weights_only load refuses.
        for key in [k for k, v in self.hparams.items() if callable(v)]:
            del self.hparams[key]
        # Keys avoid bare stage names: ModuleDict is a Module, and "train" would shadow Module.train().
        self.stats = nn.ModuleDict({f"{stage}_stats": EpochStats() for stage in STAGES})
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # saved in checkpoints, so a resumed run keeps its best
        # What classifying a user's images needs besides the weights (data module's inference_meta: classes, in_shape,
        # dark_background); taken from the data module in setup, saved in and restored from every checkpoint.
        self.inference: dict | None = None

    def setup(self, stage: str) -> None:
        data = self.trainer.datamodule
        shape, expected = tuple(getattr(data, "in_shape", ())), getattr(self.net, "in_shape", None)
        if shape and expected is not None and shape != tuple(expected):
            raise UsageError(
                f"the net expects images of shape {tuple(self.net.in_shape)} but the data module gives "
                f"{shape}: build the net with in_shape {list(shape)}"
            )
        classes, outputs = getattr(data, "num_classes", None), getattr(self.net, "num_classes", None)
        if classes is not None and outputs is not None and classes != outputs:
            raise UsageError(
                f"the net has {outputs} outputs but the data set has {classes} classes: build the net "
                f"with num_classes {classes}"
            )
        if getattr(data, "mean", None) is not None:  # not in predict, which reads no train split: the checkpoint's stay
            self.normalize.set(data.mean, data.std)
            self.inference = data.inference_meta()
        elif stage == "fit":  # a data module without the optional extras (src/contracts.py)
            from src.contracts import class_names

            rank_zero_info(f"no mean/std from {type(data).__name__}: training on raw pixels")
            self.inference = {"classes": class_names(data), "in_shape": list(shape)}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.inference is not None:
            checkpoint["inference"] = self.inference  # plain lists and strings: loadable with weights_only=True

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.adopt(checkpoint)

    def restore(self, checkpoint: dict) -> "ImageClassifier":
        """Load a checkpoint read with src.run.layout.load_checkpoint into this model, outside a Trainer (export,
        notebooks)."""
        self.adopt(checkpoint)
        self.load_state_dict(checkpoint["state_dict"])
        return self

    def adopt(self, checkpoint: dict) -> None:
        """Checkpoints written before the normalization was a layer carry it as checkpoint["inference"] mean/std:
        converted here. Then the first mismatch between the checkpoint and this model, named in one line (Lightning's
        own error lists every tensor over many lines)."""
        state, inference = checkpoint["state_dict"], checkpoint.get("inference") or {}
        if "normalize.mean" not in state and "mean" in inference:
            state["normalize.mean"] = torch.tensor(inference["mean"]).view(1, -1, 1, 1)
            state["normalize.std"] = torch.tensor(inference["std"]).view(1, -1, 1, 1)
        if "normalize.mean" in state:  # sized by the data: take the checkpoint's shape before the weights load
            self.normalize.set(state["normalize.mean"].flatten(), state["normalize.std"].flatten())
        ours = self.state_dict()
        for key, value in state.items():
            if key not in ours or ours[key].shape != value.shape:
                here = f"{list(ours[key].shape)} here" if key in ours else "absent here"
                raise UsageError(
                    f"the checkpoint does not fit this model: {key} is {list(value.shape)} in the checkpoint "
                    f"but {here}; use the config the checkpoint was trained with (its run's config.yaml)"
                )
        missing = sorted(set(ours) - set(state))
        if missing:
            raise UsageError(
                f"the checkpoint does not fit this model: it lacks {missing[0]}; use the config the "
                "checkpoint was trained with (its run's config.yaml)"
            )
        self._check_same_data(checkpoint.get("inference"))
        self.inference = checkpoint.get("inference")  # None in checkpoints written before it was saved

    def _check_same_data(self, trained_on: dict | None) -> None:
        """A checkpoint evaluated or resumed on another data set than it was trained on (an MNIST model under a
        FashionMNIST config scores 5 %) is refused in one line: the data module (setup) and the checkpoint both say
        their classes and image shape."""
        serving = self.inference
        if not serving or not trained_on:
            return
        for key in ("classes", "in_shape"):
            if list(serving[key]) != list(trained_on[key]):
                raise UsageError(
                    f"the checkpoint was trained on other data ({key} {_brief(trained_on[key])}) than this "
                    f"config's data module serves ({_brief(serving[key])}); use the config it was trained "
                    "with (its run's config.yaml)"
                )

    def on_train_start(self) -> None:
        """A schedule over the whole run (OneCycleLR) restored from a checkpoint keeps the length it was planned
        for; resumed with more epochs it would run past its end (torch raises at the step after). Refuse before
        the first step (the optimizer and scheduler states are restored by now), while nothing has been trained."""
        schedulers = self.lr_schedulers()
        planned = getattr(schedulers[0] if isinstance(schedulers, list) else schedulers, "total_steps", None)
        needed = int(self.trainer.estimated_stepping_batches)
        if planned is not None and needed > planned:
            raise UsageError(
                f"this run's learning-rate schedule was planned for {planned} steps (its first fit) and cannot go on "
                f"to {needed}: start a new run with the longer schedule (leave out --ckpt_path), or resume "
                "with the run's own max_epochs"
            )

    @torch.no_grad()
    def predict_images(self, images) -> torch.Tensor:
        """Class probabilities [N, num_classes] for a user's images: uint8 [N, C, H, W] (0..255), float [N, C, H, W] in
        [0, 1], or a list of PIL images of any sizes, brought to the model's input as `predict` brings files
        (src/data/images.py: prepare). Runs in eval mode, whatever mode the module is in."""
        if self.inference is None:
            raise UsageError(
                "this model carries no input description (a checkpoint written before it was saved, or a "
                "model never set up with a data module): retrain it, or prepare the images yourself and "
                "call model(x)"
            )
        from src.data.images import prepare  # a fit never needs the image decoder

        x = prepare(images, self.inference["in_shape"], self.inference.get("dark_background", False)).to(self.device)
        training = self.training
        self.eval()
        probs = self(x).softmax(dim=1)
        self.train(training)
        return probs

    @property
    def classes(self) -> list[str]:
        """Class names, index by index (from the data set the model was trained on)."""
        return self.inference["classes"] if self.inference else [str(i) for i in range(self.net.num_classes)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, C, H, W] images in [0, 1] -> logits [N, num_classes]. With eval_flip, in eval mode: the mean of the
        logits of x and of x mirrored (src/models/wrap.py), for data sets whose classes a mirror keeps, as a training
        flip assumes."""
        z = self.normalize(x)
        return flip_mean(self.net, z) if self.eval_flip and not self.training else self.net(z)

    def _shared_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (loss, logits [N, C])."""
        x, y = batch  # [N, C, H, W] float in [0, 1], [N] int64
        logits = self(x)
        # Smoothing is a training target; the val and test losses measure the model against the true labels.
        loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing if stage == "train" else 0.0)
        self.update_metrics(stage, logits, y, loss)
        return loss, logits

    def update_metrics(self, stage: str, logits: torch.Tensor, y: torch.Tensor, loss: torch.Tensor) -> None:
        """Accumulate one batch into the stage's EpochStats (logits [N, C], labels [N]); logged once per epoch."""
        self.stats[f"{stage}_stats"].update(logits.detach(), y, loss.detach())

    def _log_epoch(self, stage: str) -> dict[str, torch.Tensor]:
        """Compute (summed over all ranks by torchmetrics), log and reset the stage's statistics.
        Each self.log call walks Lightning's whole result collection, so per-step logging of these three
        would cost more than a small MLP's step; the values are epoch aggregates anyway."""
        stats = self.stats[f"{stage}_stats"]
        values = stats.compute()
        for m in EPOCH_METRICS:
            self.log(epoch_name(stage, m), values[m], prog_bar=(stage, m) == ("val", "acc"), sync_dist=True)
        stats.reset()
        return values

    def log_train_loss(self, loss: torch.Tensor, steps_done: int) -> None:
        """The per-step train/loss curve, logged only on the steps the logger writes (Lightning writes step
        scalars when (steps_done + 1) % log_every_n_steps == 0). Values logged in between would never reach the
        logger, yet each self.log call walks Lightning's result collection (docs/performance.md).
        steps_done: optimizer steps taken before this batch."""
        every = self.trainer.log_every_n_steps
        if self.trainer.fast_dev_run or (every and (steps_done + 1) % every == 0):
            self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True)

    def training_step(self, batch, batch_idx):
        loss, _ = self._shared_step(batch, "train")
        self.log_train_loss(loss, self.global_step)
        return loss

    def validation_step(self, batch, batch_idx):
        self._shared_step(batch, "val")

    def test_step(self, batch, batch_idx):
        """Returns the logits [N, C], for callbacks such as TestReport."""
        return self._shared_step(batch, "test")[1]

    def predict_step(self, batch, batch_idx):
        """batch: images [N, C, H, W] and labels (-1 where unknown) -> {"probs": [N, classes], "target"}: the same path
        as predict_images on a user's images."""
        return {"probs": self.predict_images(batch[0]), "target": batch[1]}

    def on_train_epoch_end(self):
        self._log_epoch("train")

    def on_validation_epoch_end(self):
        acc = self._log_epoch("val")["acc"]
        if self.trainer.sanity_checking:  # the sanity check's few batches are no accuracy to remember
            return
        self.val_acc_best.update(acc)
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True, sync_dist=True)

    def on_test_epoch_end(self):
        self._log_epoch("test")

    def configure_optimizers(self):
        """torch's optimizers and schedulers check their settings when built, here, inside the run: a ValueError
        they raise (lr -1, a one-cycle schedule over 0 steps) is a bad config value, said in one line."""
        try:
            optimizer = self.optimizer(self.parameters())
            if self.scheduler is None:
                return optimizer
            kwargs = {}
            # A schedule over the whole run (OneCycleLR with total_steps left empty) needs the run's length,
            # which only the trainer knows: epochs x batches per epoch, after limits and accumulation.
            if getattr(self.scheduler, "keywords", {}).get("total_steps", 0) is None:
                kwargs["total_steps"] = int(self.trainer.estimated_stepping_batches)
            scheduler = self.scheduler(optimizer, **kwargs)
        except ValueError as err:
            raise UsageError(f"the optimizer or its schedule refuses its settings: {err}") from err
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": self.scheduler_interval}}


class EpochStats(Metric):
    """Counts correct predictions, sums the loss over samples and counts the samples; torchmetrics sums the
    three states over DDP ranks at compute() and resets them each epoch.

    One metric and one update per batch, because the update runs on every training step: the same numbers
    from MulticlassAccuracy(average="micro") + MeanMetric + SumMetric cost three updates' overhead per step, a
    visible share of a small MLP's step (docs/performance.md). tests/models/test_metrics.py checks that both
    give the same values.
    """

    full_state_update = False  # update() needs only the batch, not the accumulated state

    def __init__(self):
        super().__init__()
        self.add_state("correct", torch.tensor(0), dist_reduce_fx="sum")  # int64: exact at any count
        self.add_state("loss_sum", torch.tensor(0.0), dist_reduce_fx="sum")  # sum over samples of the loss
        self.add_state("count", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, target: torch.Tensor, loss: torch.Tensor) -> None:
        """logits [N, C], target [N] class indices, loss: the batch's mean loss (a scalar)."""
        self.correct += (logits.argmax(dim=1) == target).sum()
        self.loss_sum += loss * len(target)
        self.count += len(target)

    def compute(self) -> dict[str, torch.Tensor]:
        """-> {"acc", "loss", "samples"} as float scalars (NaN before any update)."""
        count = self.count.float()
        return {"acc": self.correct / count, "loss": self.loss_sum / count, "samples": count}
