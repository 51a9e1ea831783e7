"""Figures `gencli sample` draws beyond plain sample grids: a model's declared figures, with their
text, and class-conditional grids with one labelled row per class.

Both are enlarged with nearest neighbour to a readable width and carry their text (column
headings, class names) drawn in the image, so they read on their own in a report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gencli.errors import UserError


def draw_model_figure(model, kind: str, n: int | None, generator: torch.Generator | None, options: dict[str, Any],
                      out: Path) -> Path:
    """Draw the model's figure ``kind`` (``n`` None: the figure's default size) with its captions; return the PNG."""
    from gencli.media.images import save_labelled_grid

    if kind not in model.figures:
        can = ", ".join(sorted(model.figures)) or "none"
        raise UserError(f"model {model.name!r} cannot draw the figure {kind!r}; it draws: {can}")
    with torch.no_grad():
        images, nrow = model.figure(kind, n, generator, **options)
    columns, rows = model.figure_captions(kind, n, **options)
    return save_labelled_grid(images.float(), out, nrow, columns, rows)


def parse_classes(model, labels: str) -> list[int]:
    """Return the class indices of ``labels``: "all", or comma-separated indices or class names."""
    if not getattr(model, "conditional", False) or not model.num_classes:
        raise UserError(f"--label given, but model {model.name!r} is not conditional")
    if labels.strip() == "all":
        return list(range(model.num_classes))
    from gencli.commands.evaluate import parse_label

    picked = [parse_label(model, item.strip()) for item in labels.split(",") if item.strip()]
    if not picked:
        raise UserError("--label names no class; give indices or names separated by commas, or 'all'")
    return list(dict.fromkeys(picked))


@torch.no_grad()
def sample_by_class(model, classes: list[int], per_class: int, generator: torch.Generator | None = None,
                    **options) -> torch.Tensor:
    """Return ``per_class`` samples of each class in ``classes``, class by class ([len(classes) * per_class, C, H, W])."""
    if per_class < 1:
        raise UserError(f"--n must be at least 1 per class, got {per_class}")
    labels = torch.tensor(classes, dtype=torch.long).repeat_interleave(per_class).to(model.device)
    return model.sample(len(labels), labels, generator, **options).float()


def save_class_grid(model, classes: list[int], per_class: int, out: Path, generator: torch.Generator | None = None,
                    **options) -> Path:
    """Write one row of ``per_class`` samples per class, the class name left of each row; return the PNG."""
    from gencli.media.images import save_labelled_grid

    images = sample_by_class(model, classes, per_class, generator, **options)
    names = [model.classes[c] if c < len(model.classes) else str(c) for c in classes]
    return save_labelled_grid(images, out, per_class, rows=names)


def save_class_folders(model, classes: list[int], per_class: int, out: Path, generator: torch.Generator | None = None,
                       **options) -> list[Path]:
    """Write each class's samples as single PNGs into a folder named after the class; return the folders."""
    import re

    from gencli.media.images import save_images

    images = sample_by_class(model, classes, per_class, generator, **options)
    folders = []
    for i, c in enumerate(classes):
        name = model.classes[c] if c < len(model.classes) else str(c)
        folder = Path(out) / (re.sub(r"[^\w.-]+", "_", name).strip("._") or str(c))
        save_images(images[i * per_class : (i + 1) * per_class], folder)
        folders.append(folder)
    return folders
