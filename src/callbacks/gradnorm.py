"""GradNorms: each layer's gradient norm in TensorBoard, the way to see why a deep sigmoid net learns slowly."""

from lightning.pytorch import Callback
from lightning.pytorch.utilities import grad_norm


class GradNorms(Callback):
    """Logs the 2-norm of every weight's gradient as grad_norm/<parameter> (and the total), on the steps the trainer
    logs scalars (log_every_n_steps), before the optimizer step. Gradients that shrink layer by layer towards the
    input (vanishing gradients) show as an ordered fan of curves. Autograd nets only: a manual-backprop net keeps
    its gradients outside .grad."""

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if trainer.global_step % trainer.log_every_n_steps == 0:
            norms = grad_norm(pl_module.net, norm_type=2)  # {"grad_2.0_norm/<name>": tensor, ..., "..._total": tensor}
            pl_module.log_dict(
                {k.replace("grad_2.0_norm", "grad_norm"): v for k, v in norms.items() if "bias" not in k}
            )
