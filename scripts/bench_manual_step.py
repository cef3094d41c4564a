"""One training step of ManualMLP (hand-written backward + ManualSGD) against the same MLP trained with
autograd + torch.optim.SGD: same weights, same batch, alternating repetitions in one process.

    python scripts/bench_manual_step.py [--batch 128] [--reps 200] [--device cpu]

Prints the median time per step of each and the ratio manual / autograd (target: <= 1.0 on CPU).
"""

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from src.manual import ManualMLP, ManualSGD
from src.models import MLP


def steps(sizes: list[int], batch: int, device: str):
    """Two closures doing one SGD-with-momentum step each, from identical weights on the same batch."""
    torch.manual_seed(0)
    manual = ManualMLP(sizes=sizes, activation="improved_sigmoid", init="lecun_normal").to(device)
    net = MLP(in_shape=(sizes[0],), hidden=sizes[1:-1], num_classes=sizes[-1], activation="improved_sigmoid").to(device)
    linears = [m for m in net.layers if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for l, linear in enumerate(linears, start=1):
            linear.weight.copy_(manual.params[f"W{l}"].T)
            linear.bias.copy_(manual.params[f"b{l}"])
    x, y = torch.randn(batch, sizes[0], device=device), torch.randint(0, sizes[-1], (batch,), device=device)
    ours, theirs = ManualSGD(manual.parameters(), lr=0.02, momentum=0.9), torch.optim.SGD(net.parameters(), lr=0.02, momentum=0.9)

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
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, batch {args.batch}")
    return args


def main() -> None:
    args = step_args(__doc__, reps=200)
    for sizes in ([784, 64, 10], [784, 256, 128, 10]):
        manual_step, autograd_step = steps(sizes, args.batch, args.device)
        for _ in range(20):  # warm-up: allocator, kernels, caches
            manual_step(), autograd_step()
        m, a = [], []
        for _ in range(args.reps):  # alternate, so drift in machine speed hits both alike
            m.append(timed(manual_step, args.device))
            a.append(timed(autograd_step, args.device))
        ratios = sorted(x / y for x, y in zip(m, a))
        print(f"{'-'.join(map(str, sizes)):>18}: manual {statistics.median(m) * 1e6:8.1f} us   autograd "
              f"{statistics.median(a) * 1e6:8.1f} us   manual/autograd median {statistics.median(ratios):.3f} "
              f"(pairwise ratios p10 {ratios[len(ratios) // 10]:.3f}, p90 {ratios[9 * len(ratios) // 10]:.3f})")


if __name__ == "__main__":
    main()
