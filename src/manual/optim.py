"""SGD with momentum in the exercise's convention, as a torch Optimizer (so Lightning checkpoints its state)."""

import torch


class ManualSGD(torch.optim.Optimizer):
    """delta_w <- momentum * delta_w + (1 - dampening) * dC/dw;   w <- w - lr * delta_w   (delta_w = 0 before the
    first step).

    momentum = 0 is plain SGD. dampening = 0 (seed 002's form) is the update of torch.optim.SGD(momentum=m,
    dampening=0); dampening = momentum is seed 003's form, m_n = mu m_(n-1) + (1 - mu) dL/dw, an average of past
    gradients (torch's SGD differs there on the first step only: it starts its buffer at the whole gradient). Weight
    decay is not here because ManualMLP puts its L2 term (2 * reg * W) into the gradient itself.
    The gradients are whatever the caller put in p.grad: ManualClassifier writes ManualMLP's hand-computed ones.
    """

    def __init__(self, params, lr: float = 0.02, momentum: float = 0.9, dampening: float = 0.0):
        if lr <= 0 or not 0 <= momentum < 1 or not 0 <= dampening < 1:
            raise ValueError(
                f"need lr > 0, 0 <= momentum < 1 and 0 <= dampening < 1, got lr={lr}, momentum={momentum}, "
                f"dampening={dampening}"
            )
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening})

    def __setstate__(self, state):
        """Also what load_state_dict calls: checkpoints written before dampening existed train on undamped (as torch's
        own optimizers default a newer option)."""
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("dampening", 0.0)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "delta" not in state:
                    state["delta"] = torch.zeros_like(p)
                # saved in checkpoints: resumable
                delta = state["delta"].mul_(group["momentum"]).add_(p.grad, alpha=1 - group["dampening"])
                p.sub_(delta, alpha=group["lr"])
