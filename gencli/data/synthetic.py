"""Built-in synthetic datasets: coloured shapes drawn on the fly, offline and deterministic.

- ``shapes``: labelled; six shape classes with random colour, position, scale and background.
- ``shapes-paired``: A is a filled shape, B the same shape as an outline (paired translation).
- ``shapes-unpaired``: A are shapes on light backgrounds, B on dark ones, drawn independently.

Shapes are rasterised for a whole batch at once with coordinate grids at twice the target
resolution and averaged down, so edges are anti-aliased and 10,000 images take well under a
second.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gencli.data.base import DataRequest, ImageData, convert_channels

CLASSES = ["circle", "square", "triangle", "diamond", "ring", "cross"]
TRAIN_SIZE, TEST_SIZE = 10_000, 1_000
_SPLIT_SALT = {"train": 0, "test": 1_000_003}


def _count(request: DataRequest) -> int:
    return int(request.options.get("size", TEST_SIZE if request.split == "test" else TRAIN_SIZE))


def _generator(request: DataRequest, salt: int = 0) -> torch.Generator:
    # kept below 2**63 whatever the run's seed; the same seeds as before for every seed that fitted
    return torch.Generator().manual_seed((request.seed * 7_919 + _SPLIT_SALT.get(request.split, 7) + salt) % 2**63)


def _check_memory(request: DataRequest, sets: int) -> None:
    """Refuse a set too large to draw here: its uint8 images plus one chunk of float working masks."""
    from gencli.data.base import check_fits_in_memory

    n, size = _count(request), request.stored_size
    working = min(n, 2048) * 4 * size * size * 4 * 3  # distances, masks and composites at twice the size
    check_fits_in_memory(sets * n * 3 * size * size + working, f"{n:,} synthetic images of {size} px",
                         "use a smaller --image-size")


def shape_masks(labels: torch.Tensor, cx, cy, r, size: int, outline: float = 0.0) -> torch.Tensor:
    """Return float masks [N, 1, size, size] in [0, 1] of shapes ``labels`` (anti-aliased).

    ``cx``, ``cy`` and ``r`` are in units of the image width; ``outline`` > 0 draws a band of
    that relative width around the edge instead of the filled shape.
    """
    s = size * 2
    coords = (torch.arange(s, dtype=torch.float32) + 0.5) / s
    y, x = coords.view(1, s, 1), coords.view(1, 1, s)
    dx, dy = x - cx.view(-1, 1, 1), y - cy.view(-1, 1, 1)
    r = r.view(-1, 1, 1)
    # A scaled "distance" per class, < 1 inside the shape, so outlines share one rule.
    distances = {
        0: lambda dx, dy, r: (dx**2 + dy**2).sqrt() / r,  # circle
        1: lambda dx, dy, r: torch.maximum(dx.abs(), dy.abs()) / (0.8 * r),  # square
        2: lambda dx, dy, r: torch.maximum(-dy / (0.5 * r), (dy / r) * 0.5 + dx.abs() / r) / 0.75,  # triangle
        3: lambda dx, dy, r: (dx.abs() + dy.abs()) / (1.2 * r),  # diamond
        4: lambda dx, dy, r: ((dx**2 + dy**2).sqrt() / r - 0.75).abs() / 0.25,  # ring
        5: lambda dx, dy, r: torch.minimum(  # cross
            torch.maximum(dx.abs() / (0.3 * r), dy.abs() / r),
            torch.maximum(dy.abs() / (0.3 * r), dx.abs() / r),
        ),
    }
    d = torch.empty(len(labels), 1, s, s)
    for c, fn in distances.items():
        idx = (labels == c).nonzero().flatten()
        if len(idx):
            d[idx, 0] = fn(dx[idx], dy[idx], r[idx])
    if outline > 0:
        inside = ((d < 1.0) & (d > 1.0 - outline * 3)).float()
    else:
        inside = (d < 1.0).float()
    return F.avg_pool2d(inside, 2)


def _random_geometry(n: int, g: torch.Generator):
    """Radius and centre of each shape: large, near the middle, jittered by up to 12% of the width.

    Small jitter keeps the set varied while letting a model learn shapes in a CPU minute.
    """
    r = 0.22 + 0.16 * torch.rand(n, generator=g)
    cx = 0.5 + 0.24 * (torch.rand(n, generator=g) - 0.5)
    cy = 0.5 + 0.24 * (torch.rand(n, generator=g) - 0.5)
    return cx, cy, r


def _colours(n: int, g: torch.Generator, low: float, high: float) -> torch.Tensor:
    return (low + (high - low) * torch.rand(n, 3, 1, 1, generator=g))


def _compose(mask: torch.Tensor, fg: torch.Tensor, bg: torch.Tensor) -> torch.Tensor:
    img = bg * (1 - mask) + fg * mask
    return (img * 255).round().clamp(0, 255).to(torch.uint8)


def draw_shapes(n: int, size: int, g: torch.Generator, background: str = "any", chunk: int = 2048):
    """Return (uint8 images [n, 3, size, size], labels [n]) of random shapes."""
    labels = torch.randint(0, len(CLASSES), (n,), generator=g)
    cx, cy, r = _random_geometry(n, g)
    if background == "light":
        bg, fg = _colours(n, g, 0.75, 1.0), _colours(n, g, 0.0, 0.6)
    elif background == "dark":
        bg, fg = _colours(n, g, 0.0, 0.25), _colours(n, g, 0.4, 1.0)
    else:
        bg = _colours(n, g, 0.0, 0.35)
        fg = _colours(n, g, 0.45, 1.0)
    parts = []
    for i in range(0, n, chunk):
        sl = slice(i, i + chunk)
        parts.append(_compose(shape_masks(labels[sl], cx[sl], cy[sl], r[sl], size), fg[sl], bg[sl]))
    return torch.cat(parts), labels


def build_shapes(request: DataRequest) -> ImageData:
    _check_memory(request, 1)
    g = _generator(request)
    images, labels = draw_shapes(_count(request), request.stored_size, g)
    return ImageData("shapes", "labelled", convert_channels(images, request.channels), labels, classes=list(CLASSES))


def build_shapes_paired(request: DataRequest) -> ImageData:
    """A: filled shape; B: the same shape, same colours, drawn as an outline."""
    _check_memory(request, 2)
    n, size = _count(request), request.stored_size
    g = _generator(request, salt=11)
    labels = torch.randint(0, len(CLASSES), (n,), generator=g)
    cx, cy, r = _random_geometry(n, g)
    bg, fg = _colours(n, g, 0.0, 0.35), _colours(n, g, 0.45, 1.0)
    a, b = [], []
    for i in range(0, n, 2048):
        sl = slice(i, i + 2048)
        a.append(_compose(shape_masks(labels[sl], cx[sl], cy[sl], r[sl], size), fg[sl], bg[sl]))
        b.append(_compose(shape_masks(labels[sl], cx[sl], cy[sl], r[sl], size, outline=0.12), fg[sl], bg[sl]))
    images = convert_channels(torch.cat(a), request.channels)
    targets = convert_channels(torch.cat(b), request.channels)
    return ImageData("shapes-paired", "paired", images, targets=targets)


def build_shapes_unpaired(request: DataRequest) -> ImageData:
    """A: shapes on light backgrounds; B: independent shapes on dark backgrounds."""
    _check_memory(request, 2)
    n, size = _count(request), request.stored_size
    a, _ = draw_shapes(n, size, _generator(request, salt=21), background="light")
    b, _ = draw_shapes(n, size, _generator(request, salt=22), background="dark")
    return ImageData(
        "shapes-unpaired", "unpaired", convert_channels(a, request.channels), targets=convert_channels(b, request.channels)
    )
