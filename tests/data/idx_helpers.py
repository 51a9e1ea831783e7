"""Tiny IDX files (the MNIST format) written by the tests themselves: no dataset package needed."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np


def idx_bytes(array: np.ndarray, type_byte: int = 0x08) -> bytes:
    """Return ``array`` (unsigned bytes) as an IDX file: magic number, dimensions, data."""
    header = bytes([0, 0, type_byte, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def split_arrays(n: int, size: int = 12, classes: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return (images uint8 [n, size, size], labels [n]): each image's brightness tells its label."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    images = (labels[:, None, None] * (255 // max(classes - 1, 1))
              + rng.integers(0, 4, (n, size, size))).clip(0, 255).astype(np.uint8)
    return images, labels.astype(np.uint8)


def write_idx(path: Path, data: bytes, gz: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data, mtime=0))
    else:
        path.write_bytes(data)
    return path


def write_idx_folder(folder: Path, n_train: int = 40, n_test: int = 24, size: int = 12, classes: int = 4,
                     gz: bool = True, seed: int = 0) -> Path:
    """Write the four files of an MNIST-like set into ``folder``; return the folder."""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        if not n:
            continue
        images, labels = split_arrays(n, size, classes, seed + (prefix == "t10k"))
        write_idx(folder / f"{prefix}-images-idx3-ubyte", idx_bytes(images), gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", idx_bytes(labels), gz)
    return folder
