"""What every command would print that a user learns to ignore: each silenced here with its reason (the rest were
fixed at their cause). src.cli.main calls quiet() once per process."""

import logging
import warnings


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip:")


def quiet() -> None:
    # Lightning 2.6 advertises its cloud products (litlogger, litmodels) in every Trainer it builds.
    for name in ("lightning.pytorch", "lightning.fabric", "lightning_utilities"):
        logging.getLogger(name).addFilter(_DropTips())
    for handler in logging.getLogger("lightning.pytorch").handlers:
        handler.addFilter(_DropTips())
    # Lightning's own _pytree helper uses LeafSpec, which torch 2.14 deprecates; nothing of ours calls it.
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    # The model summary counts bytes in float32 under bf16-mixed; its parameter counts, the part we read, are right.
    warnings.filterwarnings("ignore", message="Precision bf16-mixed is not supported by the model summary")
    # A resumed run saves into its own checkpoints/ folder, which holds its earlier checkpoints by design.
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    # Under DDP Lightning asks for sync_dist=True on epoch-level values; ours come from torchmetrics, which has summed
    # their states over all ranks already: every rank logs the same global value.
    warnings.filterwarnings("ignore", message=r"It is recommended to use `self\.log\('(train|val|test)/")
    # Optuna marks its heartbeat, grace period and stale-trial retry experimental (since 2.8/2.9); sweeps rely on them
    # on purpose (src/sweep/__main__.py), and fail_stale_trials is what Optuna's own trial loop calls.
    warnings.filterwarnings(
        "ignore",
        message=r".*(RetryHeartbeatStaleTrialCallback|heartbeat_interval|grace_period|"
        r"heartbeat_stale_trial_callback|fail_stale_trials).* (is )?(an )?experimental",
    )
    # src.export, sweeps and tests build the CLI from Python on purpose (args=...).
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended to run from within Python")
