"""Local image folders as datasets.

Layouts, decided by what the folder holds:
- class sub-folders (``root/cat/*.png``, ``root/dog/*.png``) -> labelled, classes in sorted order;
- images directly in the folder -> unlabelled.
A ``train/`` and ``test/`` sub-folder pair selects the split; otherwise every tenth image (by
sorted name) is held out as the test split.

Files that are not images by their extension are skipped and counted; a file with an image
extension that cannot be decoded is an error naming the file (``skip_corrupt`` turns that into
a skip and a count, for archives known to hold broken files).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from gencli.data.base import DataRequest, ImageData, fit_images
from gencli.errors import UserError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


@dataclass
class ScanReport:
    """What a folder scan skipped, for one summary line."""

    not_images: int = 0
    corrupt: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = []
        if self.not_images:
            parts.append(f"{self.not_images} non-image file(s)")
        if self.corrupt:
            parts.append(f"{len(self.corrupt)} unreadable image(s)")
        return "skipped " + " and ".join(parts) if parts else ""


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: Path, report: ScanReport | None = None) -> list[Path]:
    """Return the image files directly in ``folder``, sorted; count the others in ``report``."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    images = [p for p in files if is_image(p)]
    if report is not None:
        report.not_images += len(files) - len(images)
    return images


def decode_image(path: Path, size: int, channels: int) -> torch.Tensor:
    """Return one image as uint8 [C, size, size], or raise ``UserError`` naming the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            w, h = img.size
            scale = size / min(w, h)
            img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
            w, h = img.size
            left, top = (w - size) // 2, (h - size) // 2
            img = img.crop((left, top, left + size, top + size))
            arr = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise UserError(f"cannot read image {str(path)!r}: {exc}") from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


def decode_images(paths: list[Path], size: int, channels: int, skip_corrupt: bool = False,
                  report: ScanReport | None = None) -> tuple[torch.Tensor, list[int]]:
    """Decode ``paths``; return (uint8 [N, C, size, size], indices of the paths kept)."""
    out, kept = [], []
    for i, path in enumerate(paths):
        try:
            out.append(decode_image(path, size, channels))
            kept.append(i)
        except UserError:
            if not skip_corrupt:
                raise
            if report is not None:
                report.corrupt.append(str(path))
    if not out:
        return torch.empty(0, channels, size, size, dtype=torch.uint8), kept
    return torch.stack(out), kept


def _split_files(files: list[Path], split: str) -> list[Path]:
    held_out = [f for i, f in enumerate(files) if i % 10 == 9]
    if split == "test":
        return held_out
    return [f for i, f in enumerate(files) if i % 10 != 9] if len(files) >= 10 else files


def load_folder(root: str | Path, request: DataRequest, skip_corrupt: bool = False) -> ImageData:
    """Return the images of a local folder (see module docstring for layouts)."""
    root = Path(root).expanduser()
    if not root.exists():
        raise UserError(f"dataset folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise UserError(f"dataset path {str(root)!r} is not a folder")
    explicit_split = (root / "train").is_dir() and (root / request.split).is_dir() and request.split in ("train", "test")
    base = root / request.split if explicit_split else root
    report = ScanReport()
    subdirs = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    if subdirs and not list_images(base):
        classes, files, labels = [], [], []
        for label, sub in enumerate(subdirs):
            found = list_images(sub, report)
            if not explicit_split:
                found = _split_files(found, request.split)
            classes.append(sub.name)
            files += found
            labels += [label] * len(found)
    else:
        classes = None
        files = list_images(base, report)
        if not explicit_split:
            files = _split_files(files, request.split)
        labels = []
    if not files:
        what = f"no images (skipped {report.not_images} non-image file(s))" if report.not_images else "no images"
        raise UserError(f"dataset folder {str(base)!r} has {what}")
    images, kept = decode_images(files, request.stored_size, request.channels, skip_corrupt, report)
    if not kept:
        raise UserError(f"dataset folder {str(base)!r} has no readable images")
    name = root.name
    if classes:
        label_tensor = torch.tensor([labels[i] for i in kept], dtype=torch.long)
        return ImageData(name, "labelled", fit_images(images, request.stored_size, request.channels), label_tensor, classes=classes)
    return ImageData(name, "images", images)
