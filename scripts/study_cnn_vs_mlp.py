"""Study 5: the small CNN against the MLP on each data set (each config's defaults).

    python scripts/study_cnn_vs_mlp.py --out study_results/cnn_vs_mlp [--datasets mnist,fashion_mnist,cifar10]
A data set that is absent (and cannot be downloaded) gets a "not run" row rather than a number.
"""

from pathlib import Path

from study import parser, run, write_results


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--datasets", default="mnist,fashion_mnist,cifar10")
    args = p.parse_args()
    rows = [run(f"{d} {m}", f"configs/{d}_{m}.yaml", [], args) for d in args.datasets.split(",") for m in ("mlp", "cnn")]
    write_results("Study 5: small CNN vs MLP", rows, Path(args.out),
                  f"{args.epochs} max epochs, {args.limit_batches:g} of the batches per epoch, seed 0, each config's defaults.")


if __name__ == "__main__":
    main()
