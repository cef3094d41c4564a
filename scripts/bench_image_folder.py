"""How long ImageFolderDataModule's setup takes on a folder of images: the first run (decoding every file in
parallel processes, then caching), a cached run, and the built-in FashionMNISTDataModule reading its IDX files.

    python scripts/bench_image_folder.py [--kind fashion|photo] [--images 20000] [--reps 3] [--json out.json]

The folder is written first, into a temporary directory. fashion: real Fashion-MNIST images from DATA_DIR, the same
number of each class, as 28x28 grey PNG files in root/train/<class>/, and 1,000 test images in root/test/<class>/.
photo: as many 96x96 RGB JPEG files (quality 90) of smooth random colour fields, read at image_size [32, 32], the
size of a user's photos shrunk for a small CNN: there decoding and resizing, which the cache saves, cost more per
image than for a 28x28 PNG. Each repetition times a cold setup (a new, empty cache folder) and a cached one,
alternating; figures are medians in seconds, the ratio is taken within each repetition.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from src import provenance  # noqa: E402
from src.data.folder import ImageFolderDataModule  # noqa: E402
from src.data.mnist import FashionMNISTDataModule  # noqa: E402


def write_photos(root: Path, images: int) -> None:
    generator = torch.Generator().manual_seed(0)
    for split, n in (("train", images), ("test", 1000)):
        for c in range(10):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(n // 10):
                small = torch.randint(0, 256, (3, 6, 6), dtype=torch.uint8, generator=generator)  # upsampled: smooth
                x = torch.nn.functional.interpolate(small[None].float(), size=(96, 96), mode="bilinear")[0]
                Image.fromarray(x.round().byte().permute(1, 2, 0).numpy()).save(folder / f"{i:05d}.jpg", quality=90)


def write_folder(root: Path, source: FashionMNISTDataModule, images: int) -> None:
    for split, train, n in (("train", True, images), ("test", False, 1000)):
        x, y = source.read_split(train)
        for c, name in enumerate(source.classes):
            folder = root / split / name.replace("/", "-")
            folder.mkdir(parents=True)
            for i in (y == c).nonzero().flatten()[: n // len(source.classes)].tolist():
                Image.fromarray(x[i, 0].numpy()).save(folder / f"{i:05d}.png")


def timed(make) -> float:
    start = time.perf_counter()
    make().setup("fit")
    return time.perf_counter() - start


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=("fashion", "photo"), default="fashion")
    parser.add_argument("--images", type=int, default=20000, help="training images in the folder (a multiple of 10)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    data_dir = os.environ.get("DATA_DIR") or "data"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        if args.kind == "fashion":
            write_folder(root, FashionMNISTDataModule(data_dir=data_dir), args.images)
        else:
            write_photos(root, args.images)
        settings = {"channels": 1} if args.kind == "fashion" else {"channels": 3, "image_size": [32, 32]}

        def folder(cache: Path):
            return lambda: ImageFolderDataModule(root=str(root), cache_dir=str(cache), **settings)

        runs = []
        for rep in range(args.reps):
            cache = Path(tmp) / f"cache{rep}"
            cold, warm = timed(folder(cache)), timed(folder(cache))
            builtin = timed(lambda: FashionMNISTDataModule(data_dir=data_dir))
            runs.append({"first_s": cold, "cached_s": warm, "builtin_idx_s": builtin, "first/cached": cold / warm})
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    report = {
        "kind": args.kind,
        "images": args.images + 1000,
        "reps": args.reps,
        "median": median,
        "runs": runs,
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    files = "28x28 grey PNG" if args.kind == "fashion" else "96x96 RGB JPEG, read at 32x32,"
    print(f"ImageFolderDataModule setup, {args.images:,} train + 1,000 test {files} files, medians of {args.reps}:")
    print(f"first run (decode + cache)  {median['first_s']:.2f} s")
    print(f"cached run                  {median['cached_s']:.2f} s")
    print(f"FashionMNIST from IDX files {median['builtin_idx_s']:.2f} s (all 70,000 images)")
    print(f"first/cached = {median['first/cached']:.1f}x")
    if args.json:
        report["provenance"] = provenance.collect(provenance.command())
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
