"""Study 1: LeCun's tricks of the trade (Efficient BackProp 4.1-4.7) on MNIST, added one at a time to the
784-64-10 sigmoid network (batch 32, shuffling, early stopping with patience 5 validation checks), both with
ImageClassifier (autograd) and with the manual-backprop network:
  baseline (U[-1,1] init, logistic sigmoid, plain SGD lr 0.1) -> + fan-in normal init -> + improved sigmoid
  -> + momentum 0.9 with lr 0.02.

    python scripts/study_tricks.py --out study_results/tricks [--epochs 30] [--limit-batches 1.0]
"""

from pathlib import Path

from study import parser, run, write_results

STEPS = [  # (label, activation, init, lr, momentum): each adds one trick to the previous
    ("1 baseline", "sigmoid", "uniform", 0.1, 0.0),
    ("2 +lecun_init", "sigmoid", "lecun_normal", 0.1, 0.0),
    ("3 +improved_sigmoid", "improved_sigmoid", "lecun_normal", 0.1, 0.0),
    ("4 +momentum", "improved_sigmoid", "lecun_normal", 0.02, 0.9),
]


def autograd(activation: str, init: str, lr: float, momentum: float, hidden: str = "[64]") -> list[str]:
    return ["--model.init_args.net.init_args.hidden", hidden, "--model.init_args.net.init_args.batchnorm", "false",
            "--model.init_args.net.init_args.activation", activation, "--model.init_args.net.init_args.init", init,
            "--model.init_args.optimizer", "torch.optim.SGD", "--model.init_args.optimizer.init_args.lr", str(lr),
            "--model.init_args.optimizer.init_args.momentum", str(momentum), "--model.init_args.scheduler", "null",
            "--data.init_args.batch_size", "32"]


def manual(activation: str, init: str, lr: float, momentum: float) -> list[str]:
    return ["--model.init_args.net.init_args.sizes", "[784,64,10]", "--model.init_args.net.init_args.activation", activation,
            "--model.init_args.net.init_args.init", init, "--model.init_args.optimizer.init_args.lr", str(lr),
            "--model.init_args.optimizer.init_args.momentum", str(momentum), "--data.init_args.batch_size", "32"]


def main() -> None:
    args = parser(__doc__).parse_args()
    rows = [run(f"{label} (autograd)", "configs/mnist_mlp.yaml", autograd(*step), args) for label, *step in STEPS]
    rows += [run(f"{label} (manual)", "configs/mnist_manual.yaml", manual(*step), args) for label, *step in STEPS]
    write_results("Study 1: tricks of the trade on MNIST, 784-64-10", rows, Path(args.out),
                  f"{args.epochs} max epochs, {args.limit_batches:g} of the batches per epoch, batch 32, seed 0.")


if __name__ == "__main__":
    main()
