"""Batch normalization with its full backward formula (no autograd), in the layers.py convention.

Training normalizes with the batch's statistics and moves the running averages (PyTorch's rule:
running = (1 - momentum) running + momentum batch, the variance unbiased); evaluation normalizes with the
running averages. eps and momentum are PyTorch's defaults, so nn.BatchNorm1d/2d are exact twins.
"""

import torch

EPS, MOMENTUM = 1e-5, 0.1


class BatchNorm1d:
    """x: [N, D] -> gamma * (x - mean) / sqrt(var + eps) + beta, per feature; gamma, beta: [D].
    running_mean, running_var: [D] buffers, updated in place when training."""

    @staticmethod
    def forward(x, gamma, beta, running_mean, running_var, training: bool):
        if training:
            mean = x.mean(dim=0)
            centred = x - mean
            var = (centred * centred).mean(dim=0)  # the biased variance normalizes, as in PyTorch
            n = x.shape[0]
            running_mean.mul_(1 - MOMENTUM).add_(mean, alpha=MOMENTUM)
            running_var.mul_(1 - MOMENTUM).add_(var * (n / max(n - 1, 1)), alpha=MOMENTUM)
        else:
            centred, var = x - running_mean, running_var
        inv_std = (var + EPS).rsqrt()  # [D]
        xhat = centred * inv_std  # [N, D]
        return xhat * gamma + beta, (xhat, gamma, inv_std, training)

    @staticmethod
    def backward(dout, cache):
        """dout: [N, D] -> dx: [N, D], grads {"gamma": [D], "beta": [D]}.

        dbeta = sum_i dout_i and dgamma = sum_i dout_i xhat_i. With batch statistics every x_i also moves the
        mean and the variance; the chain rule through both collapses to
            dx = gamma * inv_std * (dout - dbeta / N - xhat * dgamma / N),
        reusing the two parameter gradients (the projections of dout on 1 and on xhat, which normalization
        removes). With running statistics (evaluation) mean and var are constants and dx = gamma * inv_std * dout."""
        xhat, gamma, inv_std, training = cache
        dbeta, dgamma = dout.sum(dim=0), (dout * xhat).sum(dim=0)
        grads = {"gamma": dgamma, "beta": dbeta}
        if not training:
            return dout * (gamma * inv_std), grads
        n = dout.shape[0]
        dx = torch.addcmul(dout - dbeta / n, xhat, dgamma / n, value=-1).mul_(gamma * inv_std)
        return dx, grads


class BatchNorm2d:
    """x: [N, C, H, W], statistics per channel over N, H and W: BatchNorm1d on the [N*H*W, C] matrix of pixels."""

    @staticmethod
    def forward(x, gamma, beta, running_mean, running_var, training: bool):
        n, c, h, w = x.shape
        rows = x.permute(0, 2, 3, 1).reshape(-1, c)  # [N*H*W, C]
        out, cache = BatchNorm1d.forward(rows, gamma, beta, running_mean, running_var, training)
        return out.view(n, h, w, c).permute(0, 3, 1, 2), (cache, x.shape)

    @staticmethod
    def backward(dout, cache):
        cache1d, (n, c, h, w) = cache
        dx, grads = BatchNorm1d.backward(dout.permute(0, 2, 3, 1).reshape(-1, c), cache1d)
        return dx.view(n, h, w, c).permute(0, 3, 1, 2), grads
