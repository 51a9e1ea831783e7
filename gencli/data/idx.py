"""Folders of IDX files (the MNIST format) as labelled datasets.

An IDX file is a 4-byte magic number (two zero bytes, a type byte, the number of dimensions),
each dimension as a big-endian 32-bit count, then the data. MNIST-like sets ship four of them:
``train-images-idx3-ubyte`` (N x H x W unsigned bytes), ``train-labels-idx1-ubyte`` (N unsigned
bytes) and the ``t10k-`` pair for the test split, each plain or gzipped. The dotted spelling
(``train-images.idx3-ubyte``) and a ``test-`` prefix are accepted too.

The files may come from anyone, so they are read with suspicion: the magic number, type and
dimensions are checked, exactly as many bytes as the header announces are read (a truncated
file, or one with bytes after its data, is refused) and never more (a gzip bomb decompresses no
further than the header's promise, which must fit in memory), image and label counts must agree
and labels must lie within the class count. Any fault is one ``UserError`` naming the file.

A folder is read through the prepared cache (``gencli.data.cache``), so only the first run pays
for decompressing and resizing.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from gencli.errors import UserError

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
UBYTE = 0x08
MAX_SIDE = 8192  # no IDX image set has larger images; a bigger header is a damaged file
MAX_CLASSES = 256  # labels are single unsigned bytes
_CHUNK = 1 << 22

# The file-name prefixes of each split, in the order they are looked for.
SPLIT_PREFIXES = {"train": ("train",), "test": ("t10k", "test")}


# ----------------------------------------------------------------------------- finding files


def _candidates(prefix: str, what: str) -> list[str]:
    """File names for one split's images (``what="images"``, idx3) or labels (idx1), plain first."""
    dims = "idx3" if what == "images" else "idx1"
    names = [f"{prefix}-{what}-{dims}-ubyte", f"{prefix}-{what}.{dims}-ubyte"]
    return [n + gz for n in names for gz in ("", ".gz")]


def _first_file(folder: Path, names: list[str]) -> Path | None:
    for name in names:
        path = folder / name
        if path.is_file():
            return path
    return None


def find_idx_split(folder: str | Path, split: str) -> tuple[Path, Path]:
    """Return (images file, labels file) of ``split`` ("train" or "test") in ``folder``.

    Raises ``UserError`` when the folder has no images file for the split, or has one without
    its labels file beside it.
    """
    if split not in SPLIT_PREFIXES:
        raise UserError(f"unknown split {split!r}: IDX folders have 'train' and 'test'")
    folder = Path(folder)
    for prefix in SPLIT_PREFIXES[split]:
        images = _first_file(folder, _candidates(prefix, "images"))
        if images is None:
            continue
        expected = images.name.replace("-images", "-labels").replace("idx3", "idx1")
        plain = expected.removesuffix(".gz")
        labels = _first_file(folder, [plain, plain + ".gz"])
        if labels is None:
            raise UserError(f"IDX images file {str(images)!r} has no labels file beside it "
                            f"(expected {plain} or {plain}.gz)")
        return images, labels
    wanted = SPLIT_PREFIXES[split][0]
    raise UserError(f"IDX folder {str(folder)!r} has no {split} images "
                    f"(expected {wanted}-images-idx3-ubyte or {wanted}-images-idx3-ubyte.gz)")


def has_idx_split(folder: str | Path, split: str) -> bool:
    """Whether ``folder`` holds an IDX images file for ``split`` (its labels are checked on loading)."""
    folder = Path(folder)
    return folder.is_dir() and any(_first_file(folder, _candidates(p, "images")) is not None
                                   for p in SPLIT_PREFIXES[split])


def is_idx_folder(folder: str | Path) -> bool:
    """Whether ``folder`` holds an IDX images file of either split (its labels are checked on loading)."""
    return any(has_idx_split(folder, split) for split in SPLIT_PREFIXES)


# ----------------------------------------------------------------------------- reading files


def _bad(path: Path, problem: str) -> UserError:
    return UserError(f"IDX file {str(path)!r} {problem}")


def _read_array(path: str | Path, magic: int, what: str) -> np.ndarray:
    """Read one IDX file of unsigned bytes whose magic number is ``magic``; return its array."""
    from gencli.data.base import check_fits_in_memory

    path = Path(path)
    try:
        raw = open(path, "rb")
    except OSError as exc:
        raise _bad(path, f"cannot be opened: {exc.strerror or exc}") from None
    with raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
        try:
            head = stream.read(4)
            if len(head) < 4:
                raise _bad(path, "is too short to be an IDX file (no magic number)")
            found = int.from_bytes(head, "big")
            if found != magic:
                if head[:2] == b"\0\0" and head[2] != UBYTE:
                    raise _bad(path, f"holds data of type 0x{head[2]:02x}; only unsigned bytes (0x08) are read")
                raise _bad(path, f"is not an IDX {what} file: its magic number is 0x{found:08x}, not 0x{magic:08x}")
            ndim = magic & 0xFF
            dims_raw = stream.read(4 * ndim)
            if len(dims_raw) < 4 * ndim:
                raise _bad(path, "is truncated inside its header")
            dims = [int.from_bytes(dims_raw[4 * i : 4 * i + 4], "big") for i in range(ndim)]
            if dims[0] == 0:
                raise _bad(path, f"holds no {what}")
            if any(not 1 <= d <= MAX_SIDE for d in dims[1:]):
                raise _bad(path, f"announces images of {' x '.join(map(str, dims[1:]))} pixels; "
                                 f"each side must be 1 to {MAX_SIDE}")
            nbytes = int(np.prod(dims, dtype=np.int64))
            if not gzipped:
                have = path.stat().st_size - 4 - 4 * ndim
                if have != nbytes:
                    raise _bad(path, _length_problem(have, nbytes, dims[0], what))
            check_fits_in_memory(nbytes, f"reading {str(path)!r}", "its header may be damaged")
            data = np.empty(nbytes, dtype=np.uint8)
            view, filled = memoryview(data), 0
            while filled < nbytes:
                got = stream.readinto(view[filled : filled + _CHUNK])
                if not got:
                    raise _bad(path, _length_problem(filled, nbytes, dims[0], what))
                filled += got
            if stream.read(1):  # never decompress beyond that one byte past the announced end
                raise _bad(path, f"has data after the {dims[0]:,} {what} its header announces")
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise _bad(path, f"is a damaged gzip file ({exc or type(exc).__name__})") from None
        except OSError as exc:
            raise _bad(path, f"cannot be read: {exc.strerror or exc}") from None
    return data.reshape(dims)


def _length_problem(have: int, want: int, count: int, what: str) -> str:
    if have < want:
        return f"is truncated: it holds {max(have, 0):,} of the {want:,} data bytes its header announces ({count:,} {what})"
    return f"has {have - want:,} bytes after the {count:,} {what} its header announces"


def read_idx_images(path: str | Path) -> np.ndarray:
    """Return the images of an IDX images file (plain or gzipped) as uint8 ``[N, H, W]``."""
    return _read_array(path, IMAGES_MAGIC, "images")


def read_idx_labels(path: str | Path, num_classes: int | None = None) -> np.ndarray:
    """Return the labels of an IDX labels file (plain or gzipped) as int64 ``[N]``.

    With ``num_classes`` every label must be below it.
    """
    labels = _read_array(path, LABELS_MAGIC, "labels").astype(np.int64)
    if num_classes is not None and len(labels) and int(labels.max()) >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise _bad(Path(path), f"has label {int(labels[bad])} at item {bad:,}, outside the {num_classes} classes 0..{num_classes - 1}")
    return labels


def read_idx_split(folder: str | Path, split: str, num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (images uint8 [N, H, W], labels int64 [N]) of one split of an IDX folder."""
    images_path, labels_path = find_idx_split(folder, split)
    labels = read_idx_labels(labels_path, num_classes)
    images = read_idx_images(images_path)
    if len(images) != len(labels):
        raise _bad(labels_path, f"holds {len(labels):,} labels but {images_path.name} holds {len(images):,} images")
    return images, labels


def _folder_classes(folder: Path) -> int:
    """Classes of a folder no dataset card describes: 1 + the largest label of any split."""
    largest = 0
    for split in SPLIT_PREFIXES:
        try:
            _, labels_path = find_idx_split(folder, split)
        except UserError:
            continue
        labels = read_idx_labels(labels_path)
        largest = max(largest, int(labels.max()) if len(labels) else 0)
    return largest + 1


# ----------------------------------------------------------------------------- loading


def load_idx_folder(folder: str | Path, request, *, dataset: str, name: str | None = None,
                    classes: list[str] | None = None, cache: bool = True):
    """Return one split of an IDX folder as labelled ``ImageData`` at the request's size and channels.

    ``dataset`` keys the prepared cache (a registered name, or the folder's resolved path);
    ``classes`` are the class names of a known dataset, else they are ``0..K-1``, K being one
    more than the largest label in the folder.
    """
    import torch

    from gencli.data.base import ImageData, fit_images
    from gencli.data.cache import CacheKey, fingerprint, prepared

    folder = Path(folder)
    name = name or folder.name
    images_path, labels_path = find_idx_split(folder, request.split)
    size, channels = request.stored_size, request.channels
    files = [images_path, labels_path]
    if classes is None:  # the class count reads every labels file, so each is part of the key
        files += [p for s in SPLIT_PREFIXES if s != request.split for p in _split_files(folder, s)]

    def build(append) -> dict:
        names = list(classes) if classes is not None else [str(k) for k in range(_folder_classes(folder))]
        images, labels = read_idx_split(folder, request.split, len(names))
        for start in range(0, len(images), 4096):
            chunk = torch.from_numpy(images[start : start + 4096]).unsqueeze(1)
            append("images", fit_images(chunk, size, channels).numpy())
        append("labels", labels)
        return {"name": name, "kind": "labelled", "classes": names, "images": len(images), "summary": ""}

    if not cache:
        parts: dict[str, list[np.ndarray]] = {}
        meta = build(lambda key, rows: parts.setdefault(key, []).append(rows))
        tensors = {k: torch.from_numpy(np.concatenate(v)) for k, v in parts.items()}
    else:
        key = CacheKey(dataset, request.split, size, channels, fingerprint(files), "idx")
        entry = prepared(key, lambda writer: build(writer.append))
        meta, tensors = entry.meta, {k: entry.tensor(k) for k in entry.arrays}
    return ImageData(name, "labelled", tensors["images"], labels=tensors["labels"], classes=meta["classes"])


def _split_files(folder: Path, split: str) -> list[Path]:
    try:
        return list(find_idx_split(folder, split))
    except UserError:
        return []
