"""Layers with hand-written backward passes: plain tensor algebra, no autograd.

Each layer is a pair of functions, as in cs231n:
    forward(x, ...)      -> (out, cache)   cache holds what backward needs
    backward(dout, cache) -> (dx, grads)   dout = dL/dout; grads maps parameter names to dL/dparam
They run on whatever device and dtype the inputs have (float64 for the gradient checks, float32 for
training). Their inputs never require grad (ManualMLP's parameters have requires_grad=False and its entry
points run under torch.no_grad()), so no autograd graph is ever built. Batch-major: x is [N, D].
"""

import torch


class Linear:
    """z = x W + b.  x: [N, D], W: [D, M], b: [M] -> z: [N, M]."""

    @staticmethod
    def forward(x, W, b):
        return torch.addmm(b, x, W), (x, W)  # b + x @ W in one kernel

    @staticmethod
    def backward(dz, cache, input_grad=True):
        """dz: [N, M] -> dx = dz W^T: [N, D]; dW = x^T dz: [D, M]; db = column sums of dz: [M].
        input_grad=False skips dx (None) for the first layer, whose input is data: autograd skips it too,
        and it costs as much as the layer's forward pass."""
        x, W = cache
        return (dz @ W.T if input_grad else None), {"W": x.T @ dz, "b": dz.sum(dim=0)}


class ReLU:
    """max(0, x), elementwise; the derivative is 1 where x > 0, else 0 (0 at the kink itself)."""

    @staticmethod
    def forward(x):
        out = x.clamp(min=0)
        return out, out

    @staticmethod
    def backward(dout, out):
        # sign(out) is that derivative as floats (out >= 0); dout * (x > 0) would first convert a boolean mask,
        # slower than the whole product.
        return dout * out.sign(), {}


class LeakyReLU:
    """x if x > 0 else 0.01 x (the slope of torch.nn.LeakyReLU's default)."""

    slope = 0.01

    @staticmethod
    def forward(x):
        return torch.where(x > 0, x, LeakyReLU.slope * x), x

    @staticmethod
    def backward(dout, x):
        return dout * torch.where(x > 0, 1.0, LeakyReLU.slope).to(x), {}


class Sigmoid:
    """s = 1 / (1 + e^-x); ds/dx = s (1 - s), so the cache is the output itself."""

    @staticmethod
    def forward(x):
        s = torch.sigmoid(x)  # exp of a large negative x overflows in 1 / (1 + e^-x); torch's form does not
        return s, s

    @staticmethod
    def backward(dout, s):
        return dout * s * (1 - s), {}


class Tanh:
    """t = tanh(x); dt/dx = 1 - t^2."""

    @staticmethod
    def forward(x):
        t = torch.tanh(x)
        return t, t

    @staticmethod
    def backward(dout, t):
        return dout * (1 - t * t), {}


class ImprovedSigmoid:
    """f(x) = A tanh(B x), A = 1.7159, B = 2/3 (LeCun, Efficient BackProp 4.4).
    f'(x) = A B (1 - tanh^2(B x)) = B (A - f(x)^2 / A); f'(0) = 1.14393."""

    A, B = 1.7159, 2.0 / 3.0

    @staticmethod
    def forward(x):
        t = torch.tanh(ImprovedSigmoid.B * x)
        return ImprovedSigmoid.A * t, t

    @staticmethod
    def backward(dout, t):
        return dout * (ImprovedSigmoid.A * ImprovedSigmoid.B) * (1 - t * t), {}


ACTIVATIONS = {
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "improved_sigmoid": ImprovedSigmoid,
}


def softmax_cross_entropy(z, y):
    """Fused softmax + mean cross-entropy, computed stably.

    z: [N, C] logits, y: [N] class indices -> (loss: scalar, dz: [N, C]).
    log softmax(z)_k = s_k - log sum_j exp(s_j) with s = z - max(z) per row, so exp never overflows.
    dL/dz = (softmax(z) - onehot(y)) / N.
    """
    n, rows = z.shape[0], torch.arange(z.shape[0], device=z.device)
    shifted = z - z.max(dim=1, keepdim=True).values
    exp = shifted.exp()
    total = exp.sum(dim=1, keepdim=True)  # [N, 1]
    loss = (total.log().squeeze(1) - shifted[rows, y]).mean()  # mean of -log softmax(z)[y]
    dz = exp.div_(total)  # softmax, reusing exp's memory
    dz[rows, y] -= 1
    return loss, dz.div_(n)


class Softmax:
    """The unfused path of the exercises: p = softmax(z) row by row; z, p: [N, C]."""

    @staticmethod
    def forward(z):
        e = (z - z.max(dim=1, keepdim=True).values).exp()
        p = e / e.sum(dim=1, keepdim=True)
        return p, p

    @staticmethod
    def backward(dp, p):
        """Applies each sample's Jacobian dp_i/dz_j = diag(p) - p p^T: [N, C, C] to dp: [N, C]."""
        jacobian = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
        return (jacobian @ dp[:, :, None]).squeeze(2), {}


def cross_entropy_on_probs(p, y):
    """Mean cross-entropy of probabilities p: [N, C] against one-hot targets Y built from y: [N].
    L = -sum(Y log p) / N;  dL/dp = -Y / (N p)  (zero outside the target class)."""
    n = p.shape[0]
    Y = torch.zeros_like(p)
    Y[torch.arange(n, device=p.device), y] = 1
    return -(Y * p.log()).sum() / n, -Y / (n * p)
