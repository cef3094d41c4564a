"""The cache of decoded image folders: one file of uint8 tensors per (file list, sizes, mtimes, settings), kept
outside the data folder, so that a second run loads in about the time the built-in data sets take.

A changed, added or removed image (its path, size or mtime) or another setting (size, channels, skip_bad) gives
another key, so a stale entry is never read; a cache that cannot be written only costs the next run its decode.
"""

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch


def cache_key(signatures: list[str], settings) -> str:
    """sha256 over the settings and each file's signature (its path relative to root, size and mtime, as the folder
    scan read them): nothing is read but the directory entries."""
    digest = hashlib.sha256(json.dumps(settings, default=str).encode())
    digest.update("\n".join(signatures).encode())
    return digest.hexdigest()[:32]


def cached(
    cache_dir: Path, key: str, make: Callable[[], tuple[torch.Tensor, torch.Tensor]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, keep) from cache_dir/<key>.pt, or from make() and then saved there (written to a temporary file in
    the same folder and renamed into place: a reader never sees half a file)."""
    path = cache_dir / f"{key}.pt"
    if path.is_file():
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
            return entry["images"], entry["keep"]
        except Exception:  # a truncated or foreign file: decode again and replace it
            pass
    images, keep = make()
    tmp = None
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}-", suffix=".tmp", dir=cache_dir)
        with os.fdopen(fd, "wb") as f:
            torch.save({"images": images, "keep": keep}, f)
        os.replace(tmp, path)
    except OSError as err:  # read-only, full: no cache this time, and no temporary file left behind
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        print(
            f"note: could not cache the decoded images in {cache_dir} ({err.strerror}); set "
            "--data.init_args.cache_dir to a writable folder to skip decoding next time",
            file=sys.stderr,
        )
    return images, keep
