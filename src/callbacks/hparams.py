"""TensorBoard's HParams entry with the best validation accuracy as its metric."""

from lightning.pytorch import Callback, LightningModule, Trainer

METRIC = "val/acc_best"


class HParamsSummary(Callback):
    """Writes the run's hyperparameters (plus `num_params`) with `hp_metric` = best `val/acc` so far.

    Lightning's default writes hp_metric = -1 at start, a placeholder that stays in the scalar curve; with
    the logger's `default_hp_metric: false` this callback writes the HParams entry after the first real
    validation instead, and updates `hp_metric` after every later one.
    """

    def __init__(self):
        self._written = False

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._written = False

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        best = trainer.callback_metrics.get(METRIC)
        if trainer.sanity_checking or best is None:
            return
        best = float(best)
        for logger in trainer.loggers:
            if self._written:
                logger.log_metrics({"hp_metric": best}, step=trainer.global_step)
            else:
                num_params = sum(p.numel() for p in pl_module.parameters())
                logger.log_hyperparams({**pl_module.hparams, "num_params": num_params}, metrics={"hp_metric": best})
        self._written = True
