"""ImageFolderDataModule: your own images in torchvision's ImageFolder layout, decoded once and served from memory.

    <root>/train/<class>/<image>      every class a folder, its name the class name (sorted: class 0 first)
    <root>/test/<class>/<image>       optional; without it a seeded, stratified test split is carved from train/

Files are decoded in parallel processes into uint8 [N, C, H, W] (grey or RGB, one size), exactly the tensors the
built-in data sets hold, so every net, config, augmentation, DDP shard and checkpoint works unchanged. The decoded
tensors are cached outside root (src/data/folder_cache.py); nothing is ever written into root.
"""

import os
from pathlib import Path
from typing import Literal

import torch

from src.data.base import ImageDataModule
from src.data.folder_cache import cache_key, cached
from src.data.folder_decode import decode_all, image_size_of
from src.errors import UsageError
from src.provenance import cache_home

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def class_folders(split: Path) -> list[Path]:
    return sorted((p for p in split.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def list_images(folder: Path, extensions: tuple[str, ...], root: Path) -> list[tuple[str, str]]:
    """The image files in one class folder and its subfolders, sorted: (path, "relative path, size, mtime") each, from
    one os.scandir pass (its stat is what the cache key needs; a pathlib call per file is far slower)."""
    found, prefix = [], len(str(root)) + 1
    for entry in os.scandir(folder):
        if entry.is_dir() and not entry.name.startswith("."):
            found += list_images(Path(entry.path), extensions, root)
        elif entry.name.lower().endswith(extensions) and entry.is_file():
            stat = entry.stat()
            found.append((entry.path, f"{entry.path[prefix:]}\0{stat.st_size}\0{stat.st_mtime_ns}"))
    return sorted(found)


def stratified_split(labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (rest, carved): from each class, a seeded `fraction` of its images (at least one where it has two)."""
    generator = torch.Generator().manual_seed(seed)
    rest, carved = [], []
    for c in range(int(labels.max()) + 1):
        idx = (labels == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=generator)]
        k = min(max(round(fraction * len(idx)), 1), len(idx) - 1) if len(idx) > 1 else 0
        carved.append(idx[:k])
        rest.append(idx[k:])
    return torch.cat(rest).sort().values, torch.cat(carved).sort().values


class ImageFolderDataModule(ImageDataModule):
    """Any folder of class folders. `in_shape` and `classes` come from the files (the net is built to fit them);
    normalization, augmentation and loaders are ImageDataModule's; the other settings (batch_size, augment, seed,
    ...) are ImageDataModule's arguments."""

    dark_background = False  # photographs and scans: a user's pictures for predict are taken as they are

    def __init__(
        self,
        root: str,  # holds train/ (and optionally test/), each with one folder per class
        image_size: list[int]
        | None = None,  # [H, W] every image is resized to; None: the first image's size, and all must agree
        channels: Literal[1, 3] = 3,  # 1: grey (ITU-R 601 luma), 3: RGB; images of the other kind are converted
        extensions: list[str] = list(EXTENSIONS),  # which files are images (case-insensitive); others are ignored
        val_size: float = 0.1,  # below 1: that fraction of train/ (after any carved test split) validates; else a count
        test_size: float = 0.1,  # without test/: this fraction of each class is carved from train/ as the test split
        skip_bad: bool = False,  # skip unreadable or oversized images (and say how many) instead of stopping
        max_pixels: int = 50_000_000,  # larger images are refused before decoding (decompression bombs, huge scans)
        cache_dir: str
        | None = None,  # decoded tensors go here; None: $XDG_CACHE_HOME (or ~/.cache)/lightning-mnist-template
        workers: int | None = None,  # decoding processes; None: one per CPU core
        **kwargs,  # ImageDataModule's: batch_size, eval_batch_size, normalize, augment, crop_pad, seed, on_device, ...
    ):
        self.root, self.channels, self.skip_bad, self.max_pixels = Path(root), channels, skip_bad, max_pixels
        self.extensions = tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)
        self.workers = workers or os.cpu_count() or 1
        self.cache_dir = Path(cache_dir) if cache_dir else cache_home("image-folders")
        if self.cache_dir.resolve().is_relative_to(self.root.resolve()):
            raise UsageError(
                f"cache_dir {self.cache_dir} is inside root {self.root}, which is never written to: "
                "pass a cache_dir elsewhere"
            )
        if not 0 < test_size < 1:
            raise UsageError(f"test_size must be a fraction between 0 and 1, got {test_size}")
        self.test_size = test_size
        self._decoded: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # the last decode: cache key -> (images, keep)
        # Each split as files, labels and signatures (path relative to root, size, mtime: what the cache is keyed by).
        (
            (self.files, self.labels, self.signatures),
            (self.test_files, self.test_labels, self.test_signatures),
            self.classes,
        ) = self._scan()
        first = self.files[0]
        size = tuple(image_size) if image_size else image_size_of(first)
        if len(size) != 2 or min(size) <= 0:
            raise UsageError(f"image_size must be [H, W] with positive sizes, got {image_size}")
        self.image_size, self.fixed_size = size, image_size is not None
        self.in_shape = (channels, *size)
        n_train = len(self.files) - (0 if self.test_files else round(test_size * len(self.files)))
        count = int(val_size) if val_size >= 1 else max(1, round(val_size * n_train))
        super().__init__(val_size=count, **kwargs)

    def _scan(self):
        """-> (files, labels, signatures) of train/ and of test/ (empty lists without it), the class names; bad
        layouts are one line."""
        train, test = self.root / "train", self.root / "test"
        if not train.is_dir():
            raise UsageError(
                f"{train} does not exist: put your images in {self.root}/train/<class>/<image> (and "
                f"optionally {self.root}/test/<class>/<image>), or pass --data.init_args.root"
            )
        folders = class_folders(train)
        if not folders:
            raise UsageError(f"{train} holds no class folders: put each class's images in {train}/<class name>/")
        classes = tuple(f.name for f in folders)
        test_split = [], [], []
        if test.is_dir():
            unknown = [f for f in class_folders(test) if f.name not in classes]
            if unknown:
                raise UsageError(
                    f"{unknown[0]} is a class that {train} does not have; test/ may only hold classes of "
                    f"train/ ({', '.join(classes)})"
                )
            test_split = self._class_files(class_folders(test), classes)
        return self._class_files(folders, classes), test_split, classes

    def _class_files(self, folders: list[Path], classes: tuple[str, ...]) -> tuple[list[str], list[int], list[str]]:
        files, labels, signatures = [], [], []
        for folder in folders:
            images = list_images(folder, self.extensions, self.root)
            if not images:
                raise UsageError(
                    f"{folder} holds no images ({', '.join(self.extensions)}): add some, or remove the "
                    "folder if it is not a class"
                )
            files += [path for path, _ in images]  # strings: a Path per file costs more than the cached load
            signatures += [signature for _, signature in images]
            labels += [classes.index(folder.name)] * len(images)
        return files, labels, signatures

    @property
    def folder(self) -> Path:
        return self.root

    def prepare_data(self) -> None:
        """Nothing to download: the folder was checked when the module was built."""

    def read_split(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The train split (train/ less any carved test images) or the test split, as uint8 [N, C, H, W] and labels."""
        if self.test_files and not train:
            return self._decode(self.test_files, self.test_labels, self.test_signatures)[:2]
        images, labels, signatures = self._decode(self.files, self.labels, self.signatures)
        if self.test_files:
            return images, labels
        rest, carved = stratified_split(labels, self.test_size, self.seed)
        self.carved_test = [signatures[i].split("\0")[0] for i in carved.tolist()]  # relative to root
        pick = rest if train else carved
        return images[pick], labels[pick]

    def _decode(
        self, files: list[str], labels: list[int], signatures: list[str]
    ) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        """-> uint8 [N, C, H, W], labels [N] and signatures of the files kept: from the cache, else decoded (once per
        process: without test/, both splits come from train/'s one decode)."""
        key = cache_key(signatures, (self.image_size, self.fixed_size, self.channels, self.skip_bad, self.max_pixels))
        if key not in self._decoded:
            self._decoded = {
                key: cached(
                    self.cache_dir,
                    key,
                    lambda: decode_all(
                        files,
                        self.channels,
                        self.image_size,
                        self.fixed_size,
                        self.skip_bad,
                        self.max_pixels,
                        self.workers,
                    ),
                )
            }
        images, keep = self._decoded[key]
        return images, torch.tensor(labels, dtype=torch.long)[keep], [s for s, k in zip(signatures, keep.tolist()) if k]

    def state_dict(self) -> dict:
        """Saved in every checkpoint by Lightning: which images the carved test split holds (relative to root)."""
        return {"carved_test": getattr(self, "carved_test", [])}
