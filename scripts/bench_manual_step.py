"""One training step of the manual-backprop nets (hand-written backward + ManualSGD) against the same nets trained
with autograd + torch.optim.SGD: same weights, same batch, alternating repetitions in one process.
ManualMLP against MLP (target manual / autograd <= 1.0 on CPU), ManualCNN against SmallCNN (oneDNN's direct
convolution, channels-last as the configs run it; target <= 2.0), with and without batchnorm.

    python scripts/bench_manual_step.py [--batch 128] [--reps 200] [--device cpu] [--profile]

Prints the median time per step of each and the ratio manual / autograd; --profile adds where the manual
CNN's step spends its time (torch.profiler, by operator) and the throughput of its largest matrix product,
by torch.mm (MKL) and by oneDNN, against oneDNN's direct convolution of the same size.
"""

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from src.frameworks import reuse_freed_memory
from src.manual.cnn import ManualCNN
from src.manual.conv import CHUNK
from src.manual.mlp import ManualMLP
from src.manual.optim import ManualSGD


def sgd_steps(manual, net, x, y, device: str):
    """Two closures doing one SGD-with-momentum step each (manual gradients / autograd) on the batch (x, y)."""
    manual, net = manual.to(device), net.to(device)
    ours, theirs = (
        ManualSGD(manual.parameters(), lr=0.02, momentum=0.9),
        torch.optim.SGD(net.parameters(), lr=0.02, momentum=0.9),
    )

    def manual_step():
        _, grads = manual.loss(x, y)
        for name, p in manual.params.items():
            p.grad = grads[name]
        ours.step()

    def autograd_step():
        theirs.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        theirs.step()

    return manual_step, autograd_step


def mlp_steps(sizes: list[int], batch: int, device: str):
    """sizes = [D, H1, ..., C] of the MLP benchmarked."""
    torch.manual_seed(0)
    manual = ManualMLP(
        in_shape=(sizes[0],),
        hidden=sizes[1:-1],
        num_classes=sizes[-1],
        activation="improved_sigmoid",
        init="lecun_normal",
    )
    net = manual.to_module()
    x, y = torch.randn(batch, sizes[0], device=device), torch.randint(0, sizes[-1], (batch,), device=device)
    return sgd_steps(manual, net, x, y, device)


def cnn_steps(batchnorm: bool, batch: int, device: str):
    torch.manual_seed(0)
    manual = ManualCNN(batchnorm=batchnorm)
    net = manual.to_module().to(memory_format=torch.channels_last)  # as SmallCNN runs by default
    x, y = torch.randn(batch, 1, 28, 28, device=device), torch.randint(0, 10, (batch,), device=device)
    return sgd_steps(manual, net, x, y, device)


def timed(step, device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    step()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def step_args(doc: str, reps: int) -> argparse.Namespace:
    """The step benchmarks' command line (--batch, --reps, --device); prints the setting the figures belong to."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--reps", type=int, default=reps)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, batch {args.batch}")
    return args


def compare(name: str, manual_step, autograd_step, reps: int, device: str) -> None:
    for _ in range(20):  # warm-up: allocator, kernels, caches
        manual_step(), autograd_step()
    m, a = [], []
    for _ in range(reps):  # alternate, so drift in machine speed hits both alike
        m.append(timed(manual_step, device))
        a.append(timed(autograd_step, device))
    ratios = sorted(x / y for x, y in zip(m, a))
    print(
        f"{name:>22}: manual {statistics.median(m) * 1e6:8.1f} us   autograd {statistics.median(a) * 1e6:8.1f} us   "
        f"manual/autograd median {statistics.median(ratios):.3f} "
        f"(pairwise ratios p10 {ratios[len(ratios) // 10]:.3f}, p90 {ratios[9 * len(ratios) // 10]:.3f})"
    )


def profile(step, reps: int = 10) -> None:
    """Where one manual CNN step spends its time, by operator (self time, summed over reps)."""
    with torch.profiler.profile() as prof:
        for _ in range(reps):
            step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


def product_throughput(batch: int, reps: int = 50) -> None:
    """The second convolution's forward FLOPs done four ways: ManualCNN's im2col product ([rows, 400] x [400, 16]) by
    torch.mm (MKL on x86) for the whole batch and for one 16-image block (CHUNK, as the layer runs it); the block's
    product by oneDNN's matrix kernels (a 1 x 1 convolution over a zero-copy view of the patch matrix: [rows, 400]
    row-major is a channels-last [1, 400, rows, 1] image); and oneDNN's direct convolution. Their GFLOP/s, with
    torch.mm's rate on a large square product (the library's ceiling), separate what the matrix-product library
    costs from what the hand-written code around it costs."""
    x = torch.randn(batch, 16, 14, 14).contiguous(memory_format=torch.channels_last)
    W, cols, square = torch.randn(16, 16, 5, 5), torch.randn(batch * 14 * 14, 400), torch.randn(1024, 1024)
    W_cols, block = W.reshape(16, 400), cols[: CHUNK * 14 * 14]
    block_image, W_1x1 = block.view(1, -1, 1, 400).permute(0, 3, 1, 2), W_cols.view(16, 400, 1, 1)
    conv2_flops = 2 * 14 * 14 * 400 * 16  # per image
    for name, op, flops in (
        ("conv2, whole batch, torch.mm", lambda: cols @ W_cols.T, batch * conv2_flops),
        (f"conv2, {CHUNK}-image block, torch.mm", lambda: block @ W_cols.T, CHUNK * conv2_flops),
        (f"conv2, {CHUNK}-image block, oneDNN 1x1", lambda: F.conv2d(block_image, W_1x1), CHUNK * conv2_flops),
        ("conv2, direct convolution (F.conv2d)", lambda: F.conv2d(x, W, padding=2), batch * conv2_flops),
        ("1024 x 1024 x 1024, torch.mm", lambda: square @ square, 2 * 1024**3),
    ):
        for _ in range(5):
            op()
        seconds = statistics.median(timed(op, "cpu") for _ in range(reps))
        print(f"{name:>38}: {flops / seconds / 1e9:5.0f} GFLOP/s")


def main() -> None:
    args = step_args(__doc__, reps=200)
    reuse_freed_memory()  # as ManualCNN does when it is built
    for sizes in ([784, 64, 10], [784, 256, 128, 10]):
        compare("-".join(map(str, sizes)), *mlp_steps(sizes, args.batch, args.device), args.reps, args.device)
    for batchnorm in (False, True):
        steps = cnn_steps(batchnorm, args.batch, args.device)
        compare("cnn" + (" batchnorm" if batchnorm else ""), *steps, max(args.reps // 4, 20), args.device)
        if args.profile:
            profile(steps[0])
    if args.profile and args.device == "cpu":
        product_throughput(args.batch)


if __name__ == "__main__":
    main()
