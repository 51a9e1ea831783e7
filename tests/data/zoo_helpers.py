"""Tiny images and archives built in the data tests."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def image_bytes(width: int, height: int, seed: int, fmt: str = "JPEG", colour=None) -> bytes:
    """Return an encoded image: smooth random colours (or one flat colour)."""
    rng = np.random.default_rng(seed)
    if colour is not None:
        arr = np.empty((height, width, 3), np.uint8)
        arr[:] = colour
    else:
        small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        arr = np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR))
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt)
    return buf.getvalue()


def pair_bytes(size: int, left, right, width: int | None = None) -> bytes:
    """Return a side-by-side AB PNG: flat ``left`` colour beside flat ``right`` colour."""
    width = width or 2 * size
    arr = np.empty((size, width, 3), np.uint8)
    arr[:, : width // 2] = left
    arr[:, width // 2 :] = right
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def write_files(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def make_zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def make_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def cats_vs_dogs_files(per_class: int = 6) -> dict[str, bytes]:
    """A miniature of Microsoft's archive: PetImages/Cat, PetImages/Dog, a zero-byte JPEG, a
    truncated JPEG, Thumbs.db files and a readme beside the folder."""
    files = {"readme[1].txt": b"cats and dogs", "licence.pdf": b"%PDF licence"}
    for c, cls in enumerate(("Cat", "Dog")):
        for i in range(per_class):
            files[f"PetImages/{cls}/{i}.jpg"] = image_bytes(40 + 3 * i, 32, seed=100 * c + i)
        files[f"PetImages/{cls}/Thumbs.db"] = b"\x00" * 64
    files["PetImages/Cat/666.jpg"] = b""  # zero bytes, as in the real archive
    files["PetImages/Dog/11702.jpg"] = image_bytes(64, 48, seed=7)[:300]  # truncated
    return files
