"""Layers with hand-written backward passes: plain tensor algebra, no autograd.

Each layer is a pair of functions, as in cs231n:
    forward(x, ...)      -> (out, cache)   cache holds what backward needs
    backward(dout, cache) -> (dx, grads)   dout = dL/dout; grads maps parameter names to dL/dparam
Everything runs under torch.no_grad() on whatever device and dtype the inputs have (float64 for the
gradient checks, float32 for training). Batch-major: x is [N, D], one row per example.
"""

import torch

no_grad = torch.no_grad()  # shared decorator: these functions never build an autograd graph


class Linear:
    """z = x W + b.  x: [N, D], W: [D, M], b: [M] -> z: [N, M]."""

    @staticmethod
    @no_grad
    def forward(x, W, b):
        return x @ W + b, (x, W)

    @staticmethod
    @no_grad
    def backward(dz, cache):
        """dz: [N, M] -> dx: [N, D]; dW = x^T dz: [D, M]; db = column sums of dz: [M]."""
        x, W = cache
        return dz @ W.T, {"W": x.T @ dz, "b": dz.sum(dim=0)}


class ReLU:
    """max(0, x), elementwise; the derivative is 1 where x > 0, else 0 (0 at the kink itself)."""

    @staticmethod
    @no_grad
    def forward(x):
        return x.clamp(min=0), x

    @staticmethod
    @no_grad
    def backward(dout, x):
        return dout * (x > 0), {}


class LeakyReLU:
    """x if x > 0 else 0.01 x (the slope of torch.nn.LeakyReLU's default)."""

    slope = 0.01

    @staticmethod
    @no_grad
    def forward(x):
        return torch.where(x > 0, x, LeakyReLU.slope * x), x

    @staticmethod
    @no_grad
    def backward(dout, x):
        return dout * torch.where(x > 0, 1.0, LeakyReLU.slope).to(x), {}


class Sigmoid:
    """s = 1 / (1 + e^-x); ds/dx = s (1 - s), so the cache is the output itself."""

    @staticmethod
    @no_grad
    def forward(x):
        s = torch.sigmoid(x)  # exp of a large negative x overflows in 1 / (1 + e^-x); torch's form does not
        return s, s

    @staticmethod
    @no_grad
    def backward(dout, s):
        return dout * s * (1 - s), {}


class Tanh:
    """t = tanh(x); dt/dx = 1 - t^2."""

    @staticmethod
    @no_grad
    def forward(x):
        t = torch.tanh(x)
        return t, t

    @staticmethod
    @no_grad
    def backward(dout, t):
        return dout * (1 - t * t), {}


class ImprovedSigmoid:
    """f(x) = A tanh(B x), A = 1.7159, B = 2/3 (LeCun, Efficient BackProp 4.4).
    f'(x) = A B (1 - tanh^2(B x)) = B (A - f(x)^2 / A); f'(0) = 1.14393."""

    A, B = 1.7159, 2.0 / 3.0

    @staticmethod
    @no_grad
    def forward(x):
        t = torch.tanh(ImprovedSigmoid.B * x)
        return ImprovedSigmoid.A * t, t

    @staticmethod
    @no_grad
    def backward(dout, t):
        return dout * (ImprovedSigmoid.A * ImprovedSigmoid.B) * (1 - t * t), {}


ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "sigmoid": Sigmoid, "tanh": Tanh, "improved_sigmoid": ImprovedSigmoid}


@no_grad
def softmax_cross_entropy(z, y):
    """Fused softmax + mean cross-entropy, computed stably.

    z: [N, C] logits, y: [N] class indices -> (loss: scalar, dz: [N, C]).
    log softmax(z)_k = z_k - logsumexp(z), with the row max subtracted first so exp never overflows.
    dL/dz = (softmax(z) - onehot(y)) / N.
    """
    n = z.shape[0]
    shifted = z - z.max(dim=1, keepdim=True).values
    log_probs = shifted - shifted.exp().sum(dim=1, keepdim=True).log()  # [N, C]
    loss = -log_probs[torch.arange(n, device=z.device), y].mean()
    dz = log_probs.exp()
    dz[torch.arange(n, device=z.device), y] -= 1
    return loss, dz / n


class Softmax:
    """The unfused path of the exercises: p = softmax(z) row by row; z, p: [N, C]."""

    @staticmethod
    @no_grad
    def forward(z):
        e = (z - z.max(dim=1, keepdim=True).values).exp()
        p = e / e.sum(dim=1, keepdim=True)
        return p, p

    @staticmethod
    @no_grad
    def backward(dp, p):
        """Applies each sample's Jacobian dp_i/dz_j = diag(p) - p p^T: [N, C, C] to dp: [N, C]."""
        jacobian = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
        return (jacobian @ dp[:, :, None]).squeeze(2), {}


@no_grad
def cross_entropy_on_probs(p, y):
    """Mean cross-entropy of probabilities p: [N, C] against one-hot targets Y built from y: [N].
    L = -sum(Y log p) / N;  dL/dp = -Y / (N p)  (zero outside the target class)."""
    n = p.shape[0]
    Y = torch.zeros_like(p)
    Y[torch.arange(n, device=p.device), y] = 1
    return -(Y * p.log()).sum() / n, -Y / (n * p)
