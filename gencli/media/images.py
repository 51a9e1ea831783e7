"""Image files: grids of samples, strips, single images, and progress GIFs (imageio).

Every picture written for a person (sample grids, strips, GIF frames, evaluation figures) is
enlarged with nearest neighbour (pixels stay sharp squares) by one whole factor until both its
sides are at least ``READABLE_SIDE`` and each image in a grid at least ``READABLE_IMAGE`` (a long
strip stops where its long side would pass ``LARGEST_SIDE``), so a grid of 28 px digits is not a
sheet of thumbnails, and carries its text (a frame's
step, a column's t or class, a row's name) drawn with PIL's built-in font: no font file is needed
and the same input always gives the same pixels. ``grid`` alone gives the raw tiling (TensorBoard)."""

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


READABLE_SIDE = 256
READABLE_WIDTH = READABLE_SIDE
READABLE_IMAGE = 64
LARGEST_SIDE = 4096
TEXT_PADDING = 3


def upscale_factor(width: int, min_width: int = READABLE_SIDE) -> int:
    """Return the smallest whole factor that makes ``width`` at least ``min_width`` (1 if it already is)."""
    return max(1, -(-min_width // max(1, width)))


def readable_factor(height: int, width: int, min_side: int = READABLE_SIDE, max_side: int = LARGEST_SIDE,
                    image_side: int | None = None) -> int:
    """Return the smallest whole factor that makes both sides at least ``min_side`` (and images of
    ``image_side`` px, when given, at least ``READABLE_IMAGE``), held down so the longer side stays
    within ``max_side`` (never below 1)."""
    wanted = upscale_factor(min(height, width), min_side)
    if image_side:
        wanted = max(wanted, upscale_factor(image_side, READABLE_IMAGE))
    room = max_side // max(1, height, width)
    return max(1, min(wanted, room))


def enlarge(array: np.ndarray, factor: int) -> np.ndarray:
    """Return an HxW[xC] array enlarged ``factor`` times with nearest neighbour."""
    if factor <= 1:
        return array
    return np.repeat(np.repeat(array, factor, axis=0), factor, axis=1)


def _font():
    from PIL import ImageFont

    return ImageFont.load_default()


def text_size(text: str) -> tuple[int, int]:
    """Return (width, height) in pixels of ``text`` in the built-in font."""
    from PIL import Image, ImageDraw

    left, top, right, bottom = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=_font())
    return right - left, bottom


def _draw_text(array: np.ndarray, texts: list[tuple[float, float, str]], anchor: str = "mm") -> np.ndarray:
    """Return ``array`` with each (x, y, text) drawn in black at (x, y) with PIL anchor ``anchor``."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(array)
    draw = ImageDraw.Draw(image)
    ink = 0 if image.mode == "L" else (0, 0, 0)
    for x, y, text in texts:
        draw.text((x, y), text, fill=ink, font=_font(), anchor=anchor)
    return np.asarray(image)


def _blank(height: int, width: int, like: np.ndarray) -> np.ndarray:
    return np.full((height, width, *like.shape[2:]), 255, dtype=np.uint8)


def caption(array: np.ndarray, text: str) -> np.ndarray:
    """Return ``array`` with a white band above it holding ``text``, centred."""
    height = text_size(text)[1] + 2 * TEXT_PADDING
    band = _draw_text(_blank(height, array.shape[1], array), [(array.shape[1] / 2, height / 2, text)])
    return np.concatenate([band, array], axis=0)


def labelled_grid(images: torch.Tensor, nrow: int, columns: list[str] | None = None, rows: list[str] | None = None,
                  padding: int = 2, min_side: int = READABLE_SIDE) -> np.ndarray:
    """Return a grid (as ``grid``) enlarged to at least ``min_side`` a side (``readable_factor``), with a
    heading above each column and a name left of each row, when given."""
    base = grid(images, nrow, padding)
    factor = readable_factor(base.shape[0], base.shape[1], min_side, image_side=min(images.shape[-2:]))
    out = enlarge(base, factor)
    n, _, h, w = images.shape
    nrow = max(1, min(nrow, n))
    cell_w, cell_h = (w + padding) * factor, (h + padding) * factor
    if columns:
        height = max(text_size(t)[1] for t in columns) + 2 * TEXT_PADDING
        centres = _apart([(padding * factor + i * cell_w + w * factor / 2, height / 2, t)
                          for i, t in enumerate(columns[:nrow])])
        out = np.concatenate([_draw_text(_blank(height, out.shape[1], out), centres), out], axis=0)
    if rows:
        top = out.shape[0] - base.shape[0] * factor
        width = max(text_size(t)[0] for t in rows) + 2 * TEXT_PADDING
        middles = [(width - TEXT_PADDING, top + padding * factor + i * cell_h + h * factor / 2, t)
                   for i, t in enumerate(rows)]
        out = np.concatenate([_draw_text(_blank(out.shape[0], width, out), middles, anchor="rm"), out], axis=1)
    return out


def _apart(texts: list[tuple[float, float, str]], gap: int = 4) -> list[tuple[float, float, str]]:
    """Return the centred headings, left to right, that keep ``gap`` pixels clear of the one before:
    columns too narrow for every heading (a long strip) show every few."""
    kept, right = [], -float("inf")
    for x, y, text in texts:
        half = text_size(text)[0] / 2
        if x - half >= right + gap:
            kept.append((x, y, text))
            right = x + half
    return kept


def save_labelled_grid(images: torch.Tensor, path: Path, nrow: int, columns: list[str] | None = None,
                       rows: list[str] | None = None) -> Path:
    """Write ``labelled_grid`` as a PNG."""
    return save_png(labelled_grid(images, nrow, columns, rows), path)


def save_png(array: np.ndarray, path: Path) -> Path:
    """Write an HxW or HxWxC uint8 array as PNG, through a new temporary file and a rename."""
    import imageio.v3 as iio

    from gencli.fileio import write_atomic

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, iio.imwrite("<bytes>", array, extension=".png"))
    return path


def save_grid(images: torch.Tensor, path: Path, nrow: int, columns: list[str] | None = None,
              rows: list[str] | None = None) -> Path:
    """Write images in [-1, 1] as a readable grid PNG (``labelled_grid``): enlarged, with column
    headings and row names when given."""
    return save_labelled_grid(images, path, nrow, columns, rows)


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

    from gencli.fileio import write_atomic

    path = Path(path)
    write_atomic(path, iio.imwrite("<bytes>", np.stack(frames), extension=".gif", duration=duration_ms, loop=0))
    return path


def readable_frames(frames: list[np.ndarray], captions: list[str] | None = None,
                    min_side: int = READABLE_SIDE) -> list[np.ndarray]:
    """Return frames enlarged (one factor for all, ``readable_factor``), each with its caption above."""
    if not frames:
        return []
    factor = readable_factor(max(f.shape[0] for f in frames), max(f.shape[1] for f in frames), min_side)
    out = [enlarge(f, factor) for f in frames]
    if captions:
        out = [caption(f, text) for f, text in zip(out, captions)]
    return out


def gif_from_pngs(pngs: list[Path], path: Path, duration_ms: int = 400, captions: list[str] | None = None,
                  min_side: int = READABLE_SIDE) -> Path | None:
    """Build a GIF from PNG files (one frame each, in order), enlarged and captioned; None when there are none."""
    import imageio.v3 as iio

    from gencli.fileio import read_nofollow

    frames = [iio.imread(read_nofollow(p) or b"", extension=".png") for p in pngs]
    if not frames:
        return None
    return save_gif(readable_frames(frames, captions, min_side), path, duration_ms)


def progress_caption(step: int, steps_per_epoch: float | None = None) -> str:
    """Return the caption of a progress frame: its step and, when known, the epochs it has seen."""
    if not steps_per_epoch:
        return f"step {step}"
    return f"step {step}, epoch {step / steps_per_epoch:.{0 if step % steps_per_epoch == 0 else 1}f}"


def progress_gif(pngs: list[Path], path: Path, steps_per_epoch: float | None = None,
                 duration_ms: int = 400) -> Path | None:
    """Build a run's progress GIF from its ``step-NNNNNNNN.png`` grids, each frame captioned with its step."""
    steps = [int(Path(p).stem.split("-")[-1]) for p in pngs]
    return gif_from_pngs(pngs, path, duration_ms, [progress_caption(s, steps_per_epoch) for s in steps])
