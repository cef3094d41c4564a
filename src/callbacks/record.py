"""RunRecorder: a command's numbers into its run's metrics.json, from what every LightningModule and logger share.

The CLI adds it to every command (src/cli.py); it needs no logger, and reads only `trainer.callback_metrics` (what
self.log recorded), the training step's returned loss and the trainer's checkpoint callback. A sweep, `best`, the
fit summary and the report all read the file it writes instead of a logger's files.

A fit's metrics.json:
    {"best": {path, monitor, score, epoch, step}, "last": {metric: value at the last validation},
     "epochs": trained epochs, "steps": optimizer steps, "num_params": int, "wall_s": seconds of training,
     "status": running | finished | interrupted | failed,
     "validations": [{epoch, step, val/...}], "epoch_ends": [{epoch, step, every scalar logged by then}],
     "train_steps": [{step, train/loss}] every log_every_n_steps steps,
     "provenance": what made it (src/provenance.py), "earlier_provenance": [the commands it was resumed from]}
An evaluation's (<run>/test_K/metrics.json): {"stage", "checkpoint", "metrics": {test/acc: ..., ...}, "provenance"}.
Written atomically at every checkpoint save, epoch end and the end, so it always matches the newest checkpoint.
"""

import os
import time
from pathlib import Path

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.trainer.states import TrainerFn

from src import provenance
from src.runs import Run


def scalars(metrics: dict) -> dict[str, float]:
    """The scalar entries of trainer.callback_metrics as floats."""
    return {k: float(v) for k, v in metrics.items() if not isinstance(v, torch.Tensor) or v.numel() == 1}


def data_folder(datamodule) -> Path | None:
    """Where a data module's files are (the built-in ones' `folder`), if it says: an extra, discovered."""
    try:
        folder = getattr(datamodule, "folder", None)
    except NotImplementedError:
        return None
    return Path(folder) if isinstance(folder, (str, Path)) else None


class RunRecorder(Callback):
    def __init__(
        self, run: Run, evaluation: str | None = None, checkpoint: str | None = None, args: list[str] | None = None
    ):  # args: the command's, after `python -m src.cli` (None: sys.argv's)
        self.run, self.evaluation, self.checkpoint = run, evaluation, checkpoint  # evaluation: e.g. "test_0"
        self.args = args
        self.record: dict = {}
        self.provenance: dict | None = None
        self.started, self.start_step = time.monotonic(), 0

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if trainer.is_global_zero:  # seed: what seed_everything set (Lightning's documented variable)
            device = trainer.strategy.root_device
            seed = os.environ.get("PL_GLOBAL_SEED")
            self.provenance = provenance.collect(
                provenance.command("src.cli", self.args),
                data_folder(trainer.datamodule),
                None if seed is None else int(seed),
                torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            )

    # --- fit -------------------------------------------------------------------------------------------------------
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """A resumed run keeps its history up to the checkpoint's step (later entries are trained again); the step is
        restored by now."""
        old = self.run.metrics() if trainer.ckpt_path else {}
        step = trainer.global_step
        earlier = [*old.get("earlier_provenance", []), old["provenance"]] if old.get("provenance") else []
        self.record = {
            "status": "running",
            "num_params": sum(p.numel() for p in pl_module.parameters()),
            "provenance": self.provenance,
            **({"earlier_provenance": earlier} if earlier else {}),
            "wall_s": old.get("wall_s", 0.0),
            "best": old.get("best"),
            "last": old.get("last", {}),
            **{
                key: [r for r in old.get(key, []) if r["step"] <= step]
                for key in ("validations", "epoch_ends", "train_steps")
            },
        }
        self.started, self.start_step = time.monotonic(), step

    def on_train_batch_end(self, trainer: Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        every = trainer.log_every_n_steps or 0
        if loss is not None and every and trainer.global_step % every == 0:  # one host read per `every` steps
            self.record["train_steps"].append({"step": trainer.global_step, "train/loss": float(loss)})

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == TrainerFn.VALIDATING:
            return self._evaluated(trainer, "validate")
        if trainer.sanity_checking:
            return
        values = {k: v for k, v in scalars(trainer.callback_metrics).items() if k.startswith("val/")}
        self.record["validations"].append({"epoch": trainer.current_epoch, "step": trainer.global_step, **values})
        self.record["last"] = scalars(trainer.callback_metrics)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._epoch_end(trainer)  # the previous epoch's: its train/ values are logged after the callbacks' epoch end

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict) -> None:
        if trainer.state.fn == TrainerFn.FITTING and self.record:
            self._write(trainer, "running")

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._epoch_end(trainer)
        self._write(trainer, "finished")

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        """A fit that trained is recorded as it stopped; one that did not (a refused resume) leaves the file alone."""
        if trainer.state.fn == TrainerFn.FITTING and self.record and trainer.global_step > self.start_step:
            self._write(trainer, "interrupted" if isinstance(exception, KeyboardInterrupt) else "failed")

    def _epoch_end(self, trainer: Trainer) -> None:
        ends = self.record.get("epoch_ends")
        if ends is None or trainer.global_step == 0 or (ends and ends[-1]["step"] == trainer.global_step):
            return
        ends.append({"epoch": len(ends), "step": trainer.global_step, **scalars(trainer.callback_metrics)})
        self._write(trainer, "running")

    def _write(self, trainer: Trainer, status: str) -> None:
        """metrics.json now (rank 0): the checkpoint callback's best as it stands, and the totals so far."""
        callback = trainer.checkpoint_callback
        if callback is not None and callback.best_model_path:
            score = callback.best_model_score
            best = self.record.get("best") or {}
            if Path(best.get("path", "")).name != Path(callback.best_model_path).name:  # a new best: remember when
                best = {"epoch": trainer.current_epoch, "step": trainer.global_step}
            self.record["best"] = {
                **best,
                "path": f"checkpoints/{Path(callback.best_model_path).name}",  # in the run
                "monitor": callback.monitor,
                "score": None if score is None else float(score),
            }
        now = time.monotonic()
        self.record.update(
            status=status,
            epochs=len(self.record["epoch_ends"]),
            steps=trainer.global_step,
            wall_s=round(self.record["wall_s"] + now - self.started, 3),
        )
        self.started = now
        if trainer.is_global_zero:
            self.run.write_metrics(self.record)

    # --- evaluations -----------------------------------------------------------------------------------------------
    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._evaluated(trainer, "test")

    def _evaluated(self, trainer: Trainer, stage: str) -> None:
        if trainer.is_global_zero and self.evaluation is not None:
            self.run.write_metrics(
                {
                    "stage": stage,
                    "checkpoint": self.checkpoint,
                    "metrics": scalars(trainer.callback_metrics),
                    "provenance": self.provenance,
                },
                self.evaluation,
            )
