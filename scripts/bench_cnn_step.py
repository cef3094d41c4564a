"""One SmallCNN training step in each memory layout and precision: same weights, same batch, alternating.

    python scripts/bench_cnn_step.py [--batch 128] [--reps 60] [--device cpu]

Variants: NCHW fp32 (PyTorch's default layout), NHWC fp32 (SmallCNN's default, channels_last=True) and
NHWC under bf16 autocast (what `--trainer.precision bf16-mixed` does). Shapes: MNIST 1x28x28 and
CIFAR-10 3x32x32, batchnorm on, fused Adam. Prints the median ms per step and the speed-up over NCHW fp32.
bf16 pays only where the hardware has bf16 arithmetic (AVX512-BF16/AMX CPUs, Ampere+ GPUs); elsewhere it
is emulated and slower, which is why it is not a config default.
"""

import statistics

import torch
import torch.nn.functional as F
from bench_manual_step import step_args, timed

from src.models.cnn import SmallCNN

VARIANTS = {"NCHW fp32": (False, False), "NHWC fp32": (True, False), "NHWC bf16-mixed": (True, True)}


def step_fn(in_shape: tuple[int, int, int], channels_last: bool, bf16: bool, batch: int, device: str):
    torch.manual_seed(0)  # the same weights and batch for every variant
    net = SmallCNN(in_shape=in_shape, batchnorm=True, channels_last=channels_last).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
    x, y = torch.randn(batch, *in_shape, device=device), torch.randint(0, 10, (batch,), device=device)

    def step():
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main() -> None:
    args = step_args(__doc__, reps=60)
    for name, shape in (("MNIST", (1, 28, 28)), ("CIFAR-10", (3, 32, 32))):
        steps = {v: step_fn(shape, *flags, args.batch, args.device) for v, flags in VARIANTS.items()}
        for _ in range(5):  # warm-up: oneDNN picks and caches its kernels
            for step in steps.values():
                step()
        times = {v: [] for v in steps}
        for _ in range(args.reps):  # alternate, so drift in machine speed hits all alike
            for v, step in steps.items():
                times[v].append(timed(step, args.device))
        base = times["NCHW fp32"]
        print(
            f"{name:>9}: "
            + "   ".join(
                f"{v} {statistics.median(t) * 1e3:.2f} ms ({statistics.median(b / s for b, s in zip(base, t)):.2f}x)"
                for v, t in times.items()
            )
        )


if __name__ == "__main__":
    main()
