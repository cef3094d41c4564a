"""Studies 3 and 4: depth.

3 (MNIST, the final network of study 1): one hidden layer of 64, two equal hidden layers with about the same
  parameter count (the width is solved for and both counts printed), and ten hidden layers of 64.
4 (CIFAR-10 by default; --dataset mnist or fashion_mnist runs the same grid where CIFAR-10 is absent): MLPs
  with hidden sizes [50], [50,25], [100,50,25], [250,100,50,25] (2 to 5 layers), with and without batchnorm,
  with ReLU, LeakyReLU and sigmoid: 24 runs of the dataset's MLP config (Adam + one-cycle).

    python scripts/study_depth.py --out study_results/depth [--part 3|4] [--dataset cifar10]
"""

from pathlib import Path

from study import parser, run, write_results
from study_tricks import STEPS, autograd

FINAL = STEPS[-1][1:]
DEPTHS = ["[50]", "[50,25]", "[100,50,25]", "[250,100,50,25]"]


def mlp_params(hidden: list[int], n_in: int = 784, n_out: int = 10) -> int:
    sizes = [n_in, *hidden, n_out]
    return sum(a * b + b for a, b in zip(sizes, sizes[1:]))


def equal_width_for(target: int) -> int:
    """The width w of two equal hidden layers whose 784-w-w-10 net is closest to `target` parameters."""
    return min(range(1, 512), key=lambda w: abs(mlp_params([w, w]) - target))


def part3(args) -> list[dict]:
    target = mlp_params([64])
    w = equal_width_for(target)
    print(f"784-64-10: {target:,} parameters; 784-{w}-{w}-10: {mlp_params([w, w]):,}")
    grid = [("1x64", "[64]"), (f"2x{w}", f"[{w},{w}]"), ("10x64", "[" + ",".join(["64"] * 10) + "]")]
    return [run(label, "configs/mnist_mlp.yaml", autograd(*FINAL, hidden=hidden), args) for label, hidden in grid]


def part4(args) -> list[dict]:
    rows = []
    for hidden in DEPTHS:
        for bn in ("false", "true"):
            for act in ("relu", "leaky_relu", "sigmoid"):
                overrides = ["--model.init_args.net.init_args.hidden", hidden, "--model.init_args.net.init_args.batchnorm", bn,
                             "--model.init_args.net.init_args.activation", act]
                label = f"{hidden.count(',') + 2} layers {hidden} {act}{' bn' if bn == 'true' else ''}"
                rows.append(run(label, f"configs/{args.dataset}_mlp.yaml", overrides, args))
    return rows


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--part", choices=["3", "4", "both"], default="both")
    p.add_argument("--dataset", choices=["mnist", "fashion_mnist", "cifar10"], default="cifar10", help="for part 4")
    args = p.parse_args()
    note = f"{args.epochs} max epochs, {args.limit_batches:g} of the batches per epoch, seed 0."
    out = lambda part: Path(args.out) / (f"part{part}" if args.part == "both" else "")  # noqa: E731
    if args.part in ("3", "both"):
        write_results("Study 3: one wide vs two equal vs ten hidden layers, MNIST", part3(args), out(3), note)
    if args.part in ("4", "both"):
        write_results(f"Study 4: depth x batchnorm x activation, {args.dataset}", part4(args), out(4), note)


if __name__ == "__main__":
    main()
