"""The one image reader behind datasets and `gencli translate`: every image file a user hands us
is opened here, under one pixel cap, so an oversized file (a decompression bomb, or a photo too
large to decode) is refused in the same one line wherever it comes from.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

from gencli.errors import UserError

_header_lock = threading.Lock()


class UnreadableImage(UserError):
    """An image file that cannot be decoded (empty, truncated, not really an image, too large)."""


def max_pixels() -> int:
    """Return the most pixels gencli decodes in one image: PIL's decompression-bomb limit."""
    from PIL import Image

    # None only while another thread reads a header past the cap (``_header_size``)
    return Image.MAX_IMAGE_PIXELS if Image.MAX_IMAGE_PIXELS is not None else _LIMIT


def _too_large(path: Path, size: tuple[int, int]) -> UnreadableImage:
    w, h = size
    return UnreadableImage(f"image {str(path)!r} is {w:,}x{h:,} pixels, more than the {max_pixels():,} pixels "
                           "gencli decodes (a decompression bomb, or a photo to scale down first)")


def _header_size(path: Path) -> tuple[int, int]:
    """Return the size the file's header states, past PIL's cap (nothing is decoded)."""
    from PIL import Image

    with _header_lock:
        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            with Image.open(path) as img:
                return img.size
        finally:
            Image.MAX_IMAGE_PIXELS = limit


def open_image(path: str | Path):
    """Return ``path`` opened by PIL (lazily: use it in a ``with``), or raise ``UnreadableImage`` in
    one line for an image over the pixel cap; PIL's other errors (``UnidentifiedImageError``,
    ``OSError``, ...) pass through for the caller to word.

    PIL warns between its limit and twice that and refuses beyond; both are refused here alike.
    """
    from PIL import Image

    path = Path(path)
    with warnings.catch_warnings():  # PIL's warning is part of the one line, whatever filters are set
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_large(path, _header_size(path)) from None
    if img.size[0] * img.size[1] > max_pixels():
        img.close()
        raise _too_large(path, img.size)
    return img


def _quiet_bomb_warnings() -> int | None:
    """Silence PIL's decompression-bomb warning (``open_image`` refuses those images itself) and
    return the limit in force now, so that a header read on another thread cannot lift it."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        return None
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    return Image.MAX_IMAGE_PIXELS


_LIMIT = _quiet_bomb_warnings()
