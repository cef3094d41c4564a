"""SGD with momentum in the exercise's convention, as a torch Optimizer (so Lightning checkpoints its state)."""

import torch


class ManualSGD(torch.optim.Optimizer):
    """delta_w <- dC/dw + momentum * delta_w;   w <- w - lr * delta_w   (delta_w = 0 before the first step).

    momentum = 0 is plain SGD. The same update as torch.optim.SGD(momentum=m, dampening=0); weight decay
    is not here because ManualMLP puts its L2 term (2 * reg * W) into the gradient itself.
    The gradients are whatever the caller put in p.grad: ManualClassifier writes ManualMLP's hand-computed ones.
    """

    def __init__(self, params, lr: float = 0.02, momentum: float = 0.9):
        if lr <= 0 or not 0 <= momentum < 1:
            raise ValueError(f"need lr > 0 and 0 <= momentum < 1, got lr={lr}, momentum={momentum}")
        super().__init__(params, {"lr": lr, "momentum": momentum})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "delta" not in state:
                    state["delta"] = torch.zeros_like(p)
                delta = state["delta"].mul_(group["momentum"]).add_(p.grad)  # saved in checkpoints: resumable
                p.sub_(delta, alpha=group["lr"])
