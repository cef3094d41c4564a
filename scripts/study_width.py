"""Study 2: hidden units 32 / 64 / 128 on the final network of study 1 (improved sigmoid, LeCun init,
SGD momentum 0.9 lr 0.02, batch 32) on MNIST.

    python scripts/study_width.py --out study_results/width
"""

from pathlib import Path

from study import parser, run, write_results
from study_tricks import STEPS, autograd

FINAL = STEPS[-1][1:]  # (activation, init, lr, momentum) of study 1's last step


def main() -> None:
    args = parser(__doc__).parse_args()
    rows = [run(f"{w} hidden", "configs/mnist_mlp.yaml", autograd(*FINAL, hidden=f"[{w}]"), args) for w in (32, 64, 128)]
    write_results("Study 2: width of the hidden layer, MNIST", rows, Path(args.out),
                  f"{args.epochs} max epochs, {args.limit_batches:g} of the batches per epoch, seed 0.")


if __name__ == "__main__":
    main()
