"""Convolution, max pooling and flattening with hand-written backward passes (cs231n style, as layers.py).

    forward(x, ...)       -> (out, cache)
    backward(dout, cache) -> (dx, grads)

Images are [N, C, H, W] (channels first, as in PyTorch); conv weights are [F, C, k, k], PyTorch's Conv2d layout,
so a manual net and an nn.Module net can share weights without transposes.
"""

import torch

CHUNK = 16  # images per im2col block; see Conv2d


def padded(x: torch.Tensor, pad: int) -> torch.Tensor:
    """x: [N, C, H, W] -> channels-last with `pad` zeros on every side, [N, H + 2 pad, W + 2 pad, C], contiguous: the
    layout `patches` reads in place."""
    return torch.nn.functional.pad(x.permute(0, 2, 3, 1), (0, 0, pad, pad, pad, pad)).contiguous()


def patches(xp: torch.Tensor, k: int) -> torch.Tensor:
    """im2col of padded channels-last images xp: [n, Hp, Wp, C] -> [n*H'*W', k*k*C], one k x k patch per row.

    The patch whose top-left corner is (y, x) is xp[i, y:y+k, x:x+k, :]; its row dy starts at element
    ((i Hp + y + dy) Wp + x) C and runs k*C contiguous elements (C channels of k pixels). as_strided reads every
    patch of every image in place as [n, H', W', k, k*C] with strides (Hp Wp C, Wp C, C, Wp C, 1); the reshape
    is the one copy, leaving each row's entries in (dy, dx, c) order."""
    n, hp, wp, c = xp.shape
    h_out, w_out = hp - k + 1, wp - k + 1
    view = xp.as_strided((n, h_out, w_out, k, k * c), (hp * wp * c, wp * c, c, wp * c, 1), xp.storage_offset())
    return view.reshape(n * h_out * w_out, k * k * c)


def patches_t(xp: torch.Tensor, k: int) -> torch.Tensor:
    """The transposed im2col of padded single-channel images xp: [n, Hp, Wp, 1] -> [k*k, n*H'*W'].

    With one channel a patch row is only k pixels, and `patches` copies runs of k floats (slow: 5 at a time on
    MNIST). Row (dy, dx) of the transpose holds pixel (y + dy, x + dx) of every output position (n, y, x): for each
    (n, y) a run of W' adjacent pixels starting at ((i Hp + y + dy) Wp + dx), so as_strided reads it as
    [k, k, n, H', W'] with strides (Wp, 1, Hp Wp, Wp, 1) and the copy moves whole rows of the image."""
    n, hp, wp, _ = xp.shape
    h_out, w_out = hp - k + 1, wp - k + 1
    view = xp.as_strided((k, k, n, h_out, w_out), (wp, 1, hp * wp, wp, 1), xp.storage_offset())
    return view.reshape(k * k, n * h_out * w_out)


def patch_blocks(xp: torch.Tensor, k: int):
    """The patch matrix of padded channels-last images xp: [N, Hp, Wp, C] in blocks of images: yields (i, j,
    patches of images i..j-1 as [(j - i)*H'*W', k*k*C]). CHUNK images at a time (see Conv2d); one-channel images all
    at once, as the transpose of `patches_t` (k*k times a one-channel input is small enough)."""
    n, c = xp.shape[0], xp.shape[3]
    if c == 1:
        yield 0, n, patches_t(xp, k).T
        return
    for i in range(0, n, CHUNK):
        yield i, min(i + CHUNK, n), patches(xp[i : i + CHUNK], k)


class Conv2d:
    """Stride 1, zero padding `pad` on every side (pad <= k - 1), computed as matrix products over image patches.

    x: [N, C, H, W], W: [F, C, k, k], b: [F] or None -> out: [N, F, H', W'], H' = H + 2 pad - k + 1 (same for W').

    Internally images are channels-last, xp: [N, Hp, Wp, C] after padding, so that a patch row's k*C values are
    adjacent in memory (see `patches`). W permuted to [F, k, k, C] and flattened has the patches' (dy, dx, c)
    order, so
        out[(n, y, x), f] = sum_j cols[(n, y, x), j] W[f, j] + b[f]     (cols = patches(xp): [N*H'*W', kkC])
    and out comes out channels-last, [N, H', W', F], returned as its [N, F, H', W'] view.
    The patch matrix is k*k times the input (40 MB for MNIST's second conv at batch 128): built for all images
    at once it is written to memory, then read back by the product, then again by the backward pass. Built
    CHUNK images at a time it stays in the CPU's cache between the copy and the product (Caffe loops over the
    batch one image at a time for the same reason); backward builds its own patch matrices rather than storing it.
    Backward: below a first layer, both gradients come from one patch matrix, that of dout (_input_and_weight_grad);
    the first layer, whose input is data, needs only dW, from its input's patches (_weight_grad).
    """

    @staticmethod
    def forward(x, W, b, pad):
        n, c, h, w = x.shape
        f, _, k, _ = W.shape
        xp = padded(x, pad)  # [N, Hp, Wp, C]
        h_out, w_out = h + 2 * pad - k + 1, w + 2 * pad - k + 1
        W_cols = W.permute(0, 2, 3, 1).reshape(f, k * k * c)  # [F, kkC] in (dy, dx, c) order
        out = torch.empty(n * h_out * w_out, f, dtype=x.dtype, device=x.device)  # [N*L, F]
        rows = h_out * w_out
        for i, j, cols in patch_blocks(xp, k):
            block = out[i * rows : j * rows]
            torch.mm(cols, W_cols.T, out=block) if b is None else torch.addmm(b, cols, W_cols.T, out=block)
        return out.view(n, h_out, w_out, f).permute(0, 3, 1, 2), (xp, W, pad, b is not None)

    @staticmethod
    def backward(dout, cache, input_grad=True):
        """dout: [N, F, H', W'] -> dx: [N, C, H, W] (None with input_grad=False: the first layer's input is data),
        grads {"W": [F, C, k, k], "b": [F] (absent without a bias)}."""
        xp, W, pad, has_bias = cache
        f, c, k, _ = W.shape
        d = dout.permute(0, 2, 3, 1).reshape(len(xp), -1, f)  # [N, L, F]; a view when dout is channels-last
        if input_grad:
            dx, dW = Conv2d._input_and_weight_grad(dout, xp, W, pad)
        else:
            dx, dW = None, Conv2d._weight_grad(xp, d, k)
        grads = {"W": dW, "b": d.sum(dim=(0, 1))} if has_bias else {"W": dW}
        return dx, grads

    @staticmethod
    def _weight_grad(xp, d, k):
        """dW from the input's patches: dW_cols = sum over blocks of cols^T d. xp: [N, Hp, Wp, C], d: [N, L, F] ->
        [F, C, k, k]. For the first layer, whose input has few channels, so its patch rows are short (k*k*C)."""
        c, f = xp.shape[3], d.shape[2]
        dW_cols = torch.zeros(k * k * c, f, dtype=d.dtype, device=d.device)  # [kkC, F] in (dy, dx, c) order
        for i, j, cols in patch_blocks(xp, k):
            dW_cols.addmm_(cols.T, d[i:j].reshape(-1, f))
        return dW_cols.T.reshape(f, k, k, c).permute(0, 3, 1, 2).contiguous()

    @staticmethod
    def _input_and_weight_grad(dout, xp, W, pad):
        """Both gradients from one patch matrix, that of the output gradient (padded by q = k - 1 - pad): D, rows
        (n, i, j) over the input's positions, columns (a, b, f). Input pixel (i, j) fed output (y, x) through weight
        (dy, dx) = (i - y + pad, j - x + pad); row (i, j) of D holds dout[i + a - q, j + b - q] =
        dout[i - dy + pad, ...] at a = k - 1 - dy, b = k - 1 - dx. So
            dx[(n, i, j), c] = sum_(a, b, f) D[(n, i, j), (a, b, f)] W[f, c, k-1-a, k-1-b]   (dx = D Wt^T)
            dW[f, c, dy, dx] = sum_(n, i, j) D[(n, i, j), (k-1-dy, k-1-dx, f)] x[n, i, j, c]   (dWt = D^T X)
        i.e. dx is dout convolved with the kernel flipped in both spatial axes and its channel axes swapped, and dW
        is the same matrix read the other way against the unpadded input X. Building D once, a block of images at a
        time (see Conv2d), serves both products while the block is in the CPU's cache; scattering the k*k copies of
        every pixel back instead (col2im) is slower. -> dx [N, C, H, W] (channels-last), dW [F, C, k, k]."""
        f, c, k, _ = W.shape
        n, hp, wp, _ = xp.shape
        h, w, q = hp - 2 * pad, wp - 2 * pad, k - 1 - pad
        dp = padded(dout, q)  # [N, H+2q, W+2q, F]
        Wt_cols = W.flip(2, 3).permute(1, 2, 3, 0).reshape(c, k * k * f)  # [C, kkF] in (a, b, f) order
        x = xp[:, pad : pad + h, pad : pad + w, :]  # [N, H, W, C], the unpadded input (a view)
        dx = torch.empty(n * h * w, c, dtype=dout.dtype, device=dout.device)  # [N*H*W, C]
        dWt = torch.zeros(k * k * f, c, dtype=dout.dtype, device=dout.device)  # [kkF, C] in (a, b, f) order
        rows = h * w
        for i, j, cols in patch_blocks(dp, k):
            torch.mm(cols, Wt_cols.T, out=dx[i * rows : j * rows])
            dWt.addmm_(cols.T, x[i:j].reshape(-1, c))
        dW = dWt.view(k, k, f, c).flip(0, 1).permute(2, 3, 0, 1).contiguous()
        return dx.view(n, h, w, c).permute(0, 3, 1, 2), dW


class MaxPool2d:
    """2 x 2 windows, stride 2 (nn.MaxPool2d(2)): x: [N, C, H, W] -> [N, C, H // 2, W // 2]. An odd last row or
    column belongs to no window and is dropped, as in PyTorch; its gradient is 0."""

    @staticmethod
    def forward(x):
        a, b, c, d = windows(x)
        # Of tied values the first in reading order wins (a strictly larger later value is needed to replace
        # it), which is the one PyTorch's max_pool2d picks: it scans the window row by row the same way.
        # Three comparisons say which one won; kept as booleans (torch.where on them is far slower than the bitwise
        # operations backward uses instead).
        right_top, right_bottom = b > a, d > c
        top, bottom = torch.maximum(a, b), torch.maximum(c, d)
        down = bottom > top
        return torch.maximum(top, bottom), (right_top, right_bottom, down, x.shape)

    @staticmethod
    def backward(dout, cache):
        """dout: [N, C, H/2, W/2] -> dx: [N, C, H, W], each window's gradient routed to its arg-max, 0 elsewhere."""
        right_top, right_bottom, down, shape = cache
        up = ~down
        winners = (up & ~right_top, up & right_top, down & ~right_bottom, down & right_bottom)  # reading order
        dx = torch.empty(shape, dtype=dout.dtype, device=dout.device, memory_format=dout_format(dout))
        if shape[2] % 2 or shape[3] % 2:  # a dropped row or column, which no window writes below, reads 0
            dx.zero_()
        for won, position in zip(winners, windows(dx)):  # the four positions cover every pixel of every window
            torch.mul(dout, won, out=position)
        return dx, {}


def windows(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The four values of every 2 x 2 window of x: [N, C, H, W] as strided views [N, C, H/2, W/2] (no copy), in
    reading order: top-left, top-right, bottom-left, bottom-right."""
    h, w = x.shape[2] // 2 * 2, x.shape[3] // 2 * 2
    return x[:, :, 0:h:2, 0:w:2], x[:, :, 0:h:2, 1:w:2], x[:, :, 1:h:2, 0:w:2], x[:, :, 1:h:2, 1:w:2]


def dout_format(t: torch.Tensor) -> torch.memory_format:
    """Keep a gradient in the memory layout its layer's output had (channels-last inside ManualCNN)."""
    return (
        torch.channels_last
        if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last)
        else torch.contiguous_format
    )


class Flatten:
    """x: [N, C, H, W] -> [N, C*H*W] in (c, h, w) order, as nn.Flatten; backward restores the shape."""

    @staticmethod
    def forward(x):
        return x.reshape(len(x), -1), x.shape

    @staticmethod
    def backward(dout, shape):
        return dout.reshape(shape), {}
