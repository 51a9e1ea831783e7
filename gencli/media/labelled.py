"""Grids with a caption per row: one row per class, named in a left margin."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gencli.media.images import grid, save_png

MIN_CELL = 32  # tiny images are enlarged (nearest neighbour) so the names beside them stay legible


def label_rows(array: np.ndarray, names: list[str], cell: int, padding: int = 2) -> np.ndarray:
    """Return ``array`` (a grid with ``len(names)`` rows of ``cell`` px) with each row's name on its left."""
    from PIL import Image, ImageDraw

    rgb = array if array.ndim == 3 else np.repeat(array[:, :, None], 3, axis=2)
    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    width = max(draw.textlength(name) for name in names) + 8 if names else 0
    canvas = Image.new("RGB", (image.width + int(width), image.height), "white")
    canvas.paste(image, (int(width), 0))
    draw = ImageDraw.Draw(canvas)
    for i, name in enumerate(names):
        top = padding + i * (cell + padding)
        draw.text((4, top + cell // 2), name, fill="black", anchor="lm")
    return np.asarray(canvas)


def save_class_grid(images: torch.Tensor, names: list[str], per_row: int, path: Path) -> Path:
    """Write ``len(names)`` rows of ``per_row`` images (row i drawn for class ``names[i]``), labelled."""
    size = images.shape[-1]
    scale = max(1, -(-MIN_CELL // size))
    if scale > 1:
        images = torch.nn.functional.interpolate(images.float(), scale_factor=scale, mode="nearest")
    return save_png(label_rows(grid(images, per_row), names, size * scale), Path(path))
