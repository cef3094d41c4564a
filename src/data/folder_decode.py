"""Decoding a list of image files into one uint8 tensor, in parallel processes, each bad file named in one line.

PIL decodes one file at a time in C; a pool of processes decodes chunks of files side by side and sends back one
uint8 array per chunk. Below SERIAL files the pool's start-up costs more than it saves.
"""

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from src.data.images import open_image, resized
from src.errors import UsageError

CHUNK = 256  # files per task: large enough that sending the result back is cheap next to decoding it
SERIAL = 2 * CHUNK  # fewer files than this decode in this process


def image_size_of(path: str) -> tuple[int, int]:
    """(H, W) from the file's header, without decoding it."""
    try:
        with Image.open(path) as img:
            return img.height, img.width
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise UsageError(
            f"cannot read the image {path} ({type(err).__name__}); remove or replace it, or set "
            "--data.init_args.image_size [H, W] and --data.init_args.skip_bad true"
        ) from err


def decode_one(path: str, channels: int, size: tuple[int, int], fixed: bool, max_pixels: int) -> np.ndarray | str:
    """-> uint8 [C, H, W], or the reason the file is bad (unreadable, too large). An image of another size than the
    first one's, when no size was asked for, is an error of the settings, not of the file: raised at once."""
    img = open_image(path, channels, max_pixels)
    if isinstance(img, str):
        return img
    if not fixed and (img.height, img.width) != tuple(size):
        raise UsageError(
            f"{path} is {img.height}x{img.width} (HxW) but the first image is {size[0]}x{size[1]}: "
            "set --data.init_args.image_size [H, W] to resize them all"
        )
    x = np.asarray(resized(img, size), dtype=np.uint8)
    return x[None] if x.ndim == 2 else x.transpose(2, 0, 1)  # [H, W] or [H, W, 3] -> [C, H, W]


def decode_chunk(args) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """A pool task: files -> (uint8 [n_good, C, H, W], [(position in the chunk, reason)] of the bad ones)."""
    files, channels, size, fixed, max_pixels = args
    good, bad = [], []
    for i, path in enumerate(files):
        x = decode_one(path, channels, size, fixed, max_pixels)
        if isinstance(x, str):
            bad.append((i, x))
        else:
            good.append(x)
    return np.stack(good) if good else np.zeros((0, channels, *size), np.uint8), bad


def decode_all(
    files: list[str], channels: int, size: tuple[int, int], fixed: bool, skip_bad: bool, max_pixels: int, workers: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (uint8 [N_good, C, H, W], bool [N]: which files were kept). A bad file stops it (naming the file) unless
    skip_bad, which skips it and says how many were skipped. A progress bar appears when it takes over a second."""
    chunks = [(files[i : i + CHUNK], channels, size, fixed, max_pixels) for i in range(0, len(files), CHUNK)]
    bar = tqdm(
        total=len(files), desc=f"decoding {len(files):,} images", unit="img", delay=1.0, file=sys.stderr, disable=None
    )  # disable=None: no bar where stderr is not a terminal (a log file)
    parallel = len(files) >= SERIAL and workers > 1
    # fork: the children need only PIL and numpy, and start without importing anything again
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    pool = ProcessPoolExecutor(min(workers, len(chunks)), mp_context=context) if parallel else None
    parts = []
    with bar:
        try:
            for (chunk, *_), part in zip(chunks, pool.map(decode_chunk, chunks) if pool else map(decode_chunk, chunks)):
                parts.append(part)
                bar.update(len(chunk))
        finally:
            if pool:
                pool.shutdown(cancel_futures=True)
    keep = torch.ones(len(files), dtype=torch.bool)
    bad = [(n * CHUNK + i, reason) for n, (_, b) in enumerate(parts) for i, reason in b]
    if bad and not skip_bad:
        index, reason = bad[0]
        raise UsageError(
            f"cannot use the image {files[index]} ({reason}); remove or replace it, or pass "
            f"--data.init_args.skip_bad true to skip such files ({len(bad)} of {len(files):,} here)"
        )
    for index, _ in bad:
        keep[index] = False
    if bad:
        print(
            f"skipped {len(bad)} of {len(files):,} images that could not be used (the first: {files[bad[0][0]]}, "
            f"{bad[0][1]})",
            file=sys.stderr,
        )
    if not keep.any():
        raise UsageError(
            f"none of the {len(files):,} images could be used (the first: {files[bad[0][0]]}, {bad[0][1]})"
        )
    return torch.from_numpy(np.concatenate([p for p, _ in parts])), keep
