"""ProgressBar: Lightning's tqdm bar, named by the run, and plain lines where output is not a terminal."""

import sys

from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.utilities.rank_zero import rank_zero_info


def run_name(trainer) -> str:
    return str(trainer.logger.version) if trainer.logger is not None and trainer.logger.version is not None else ""


class ProgressBar(TQDMProgressBar):
    """The bar's description is the run's name and epoch (instead of Lightning's `v_num=` of the version string).
    Where stderr is not a terminal (a log file, a job's output), tqdm's redraws would fill it with escape codes:
    there the bar is off and each epoch ends with one line of the same numbers."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if not sys.stderr.isatty():
            self.disable()

    def get_metrics(self, trainer, pl_module) -> dict:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        if self.is_enabled:
            self.train_progress_bar.set_description(f"{run_name(trainer)} epoch {trainer.current_epoch}".strip())

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if not self.is_enabled and not trainer.sanity_checking:
            numbers = ", ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                for k, v in self.get_metrics(trainer, pl_module).items()
            )
            rank_zero_info(f"{run_name(trainer)} epoch {trainer.current_epoch}: {numbers}".strip())
