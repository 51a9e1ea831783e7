"""Image files: grids of samples, strips, single images, and progress GIFs (imageio)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gencli.data.base import to_uint8


def grid(images: torch.Tensor, nrow: int, padding: int = 2, pad_value: int = 255) -> np.ndarray:
    """Return images in [-1, 1] (NCHW) tiled ``nrow`` per row as an HxWxC uint8 array."""
    x = to_uint8(images).cpu()
    n, c, h, w = x.shape
    nrow = max(1, min(nrow, n))
    rows = (n + nrow - 1) // nrow
    canvas = torch.full((c, rows * (h + padding) + padding, nrow * (w + padding) + padding), pad_value, dtype=torch.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        canvas[:, top : top + h, left : left + w] = x[i]
    arr = canvas.permute(1, 2, 0).numpy()
    return arr[:, :, 0] if c == 1 else arr


def save_png(array: np.ndarray, path: Path) -> Path:
    """Write an HxW or HxWxC uint8 array as PNG, through a temporary file and a rename."""
    import imageio.v3 as iio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    iio.imwrite(tmp, array, extension=".png")
    tmp.replace(path)
    return path


def save_grid(images: torch.Tensor, path: Path, nrow: int) -> Path:
    return save_png(grid(images, nrow), path)


def save_images(images: torch.Tensor, folder: Path, prefix: str = "sample") -> list[Path]:
    """Write each image in [-1, 1] as its own PNG; return the paths."""
    x = to_uint8(images).cpu()
    paths = []
    for i, img in enumerate(x):
        arr = img.permute(1, 2, 0).numpy()
        paths.append(save_png(arr[:, :, 0] if arr.shape[2] == 1 else arr, Path(folder) / f"{prefix}-{i:04d}.png"))
    return paths


def save_gif(frames: list[np.ndarray], path: Path, duration_ms: int = 400) -> Path:
    """Write frames (uint8 arrays of one shape) as a looping GIF."""
    import imageio.v3 as iio

    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp.gif")
    iio.imwrite(tmp, np.stack(frames), extension=".gif", duration=duration_ms, loop=0)
    tmp.replace(path)
    return path


def gif_from_pngs(pngs: list[Path], path: Path, duration_ms: int = 400) -> Path | None:
    """Build a GIF from PNG files (one frame each, in order); None when there are none."""
    import imageio.v3 as iio

    frames = [iio.imread(p) for p in pngs]
    if not frames:
        return None
    return save_gif(frames, path, duration_ms)
