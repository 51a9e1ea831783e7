"""Local image folders as datasets.

Layouts, decided by what the folder holds:
- ``trainA/`` and ``trainB/`` (and ``testA/``, ``testB/``) -> unpaired domains A and B;
- ``train/`` (and ``val/`` or ``test/``) holding images about twice as wide as tall -> paired,
  each image being A (left half) beside B (right half);
- class sub-folders (``root/cat/*.png``, ``root/dog/*.png``) -> labelled, classes in sorted order;
- images directly in the folder -> unlabelled;
- MNIST-like IDX files (``train-images-idx3-ubyte.gz`` ...) -> labelled, read by ``gencli.data.idx``.
A ``train/`` folder with ``test/`` (or ``val/``) beside it selects the split; without a held-out
folder every tenth image (by sorted name) is held out as the test split. A folder that holds
nothing but one other folder (``images/``, ``PetImages/``) is looked through.

Files that are not images by their extension are skipped and counted; a file with an image
extension that cannot be decoded is an error naming the file (``skip_corrupt`` turns that into
a skip and a count, for archives known to hold broken files).

Decoded folders are prepared once into a memory-mapped cache (``gencli.data.cache``) keyed by
the folder, split, size, channels and a fingerprint of the files; later runs map it instead of
decoding every image again.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from gencli.data.base import DataRequest, ImageData
from gencli.data.cache import CacheKey, fingerprint, prepared
from gencli.data.download import say, stderr_console, unwrap
from gencli.data.images import UnreadableImage, open_image
from gencli.errors import UserError
from gencli.registry import DataKind

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
# Width / height of a side-by-side AB image is 2; this band decides that a folder is paired.
PAIRED_RATIO = (1.8, 2.2)
DECODE_CHUNK = 256



@dataclass
class ScanReport:
    """What a folder scan skipped, for one summary line."""

    skipped: list[str] = field(default_factory=list)  # files that are not images
    corrupt: list[str] = field(default_factory=list)  # images that cannot be decoded
    broken_links: list[str] = field(default_factory=list)  # links to files that do not exist

    @property
    def not_images(self) -> int:
        return len(self.skipped)

    def summary(self) -> str:
        parts = []
        if self.not_images:
            parts.append(f"{self.not_images:,} non-image file(s)")
        if self.corrupt:
            parts.append(f"{len(self.corrupt):,} unreadable image(s)")
        if self.broken_links:
            first = self.broken_links[0]
            parts.append(f"{len(self.broken_links):,} link(s) to missing files or in a loop ({first}"
                         + (", ..." if len(self.broken_links) > 1 else "") + ")")
        return "skipped " + " and ".join(parts) if parts else ""


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: Path, report: ScanReport | None = None, ignore: tuple[str, ...] = ()) -> list[Path]:
    """Return the image files directly in ``folder``, sorted; count the others in ``report``.

    Files whose suffix is in ``ignore`` (e.g. an archive's ``.csv`` attribute files) are left
    out without being counted.
    """
    with os.scandir(folder) as it:  # file types come with the listing: no stat per file
        entries = [e for e in it if not e.name.startswith(".")]
    names = [e.name for e in entries if _entry_is(e, "file")]
    # A link to a file that is gone (or a link in a loop) is skipped and reported: the other files
    # still make a dataset.
    broken = sorted(e.path for e in entries if e.is_symlink() and not _entry_is(e, "file") and not _entry_is(e, "dir"))
    files = [folder / n for n in sorted(names) if os.path.splitext(n)[1].lower() not in ignore]
    images = [p for p in files if is_image(p)]
    if report is not None:
        report.skipped += [str(p) for p in files if not is_image(p)]
        report.broken_links += broken
    return images


def _entry_is(entry: os.DirEntry, kind: str) -> bool:
    """Whether a listed entry is a file (``kind="file"``) or a folder, following links; a link in
    a loop is neither (``DirEntry`` raises where ``Path`` answers False)."""
    try:
        return entry.is_file() if kind == "file" else entry.is_dir()
    except OSError:
        return False


# ----------------------------------------------------------------------------- decoding


def _open(path: Path, channels: int, need: Callable[[int, int], tuple[int, int]]):
    """Return (decoded PIL image in 'L' or 'RGB', the file's full (width, height)).

    The image is at least ``need(width, height)`` where the file allows: JPEG decodes at 1/2,
    1/4 or 1/8 scale directly, much faster when shrinking a lot.
    """
    mode = "L" if channels == 1 else "RGB"
    with open_image(path) as img:
        full = img.size
        img.draft(mode, need(*full))
        return img.convert(mode), full


def _fit(img, size: int):
    """Return ``img`` resized so its shorter side is ``size`` and centre-cropped to a square."""
    from PIL import Image

    w, h = img.size
    scale = size / min(w, h)
    img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.BILINEAR)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    return img.crop((left, top, left + size, top + size))


def _to_chw(img) -> np.ndarray:
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


def _read(path: Path, work: Callable):
    from PIL import UnidentifiedImageError

    try:
        return work()  # an image over the pixel cap is refused by open_image in its own words
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise UnreadableImage(f"cannot read image {str(path)!r}: {exc}") from None


def decode_array(path: Path, size: int, channels: int, crop: int | None = None) -> np.ndarray:
    """Return one image as a uint8 array [C, size, size], or raise ``UnreadableImage``.

    ``crop`` first takes the central ``crop`` x ``crop`` pixels of the original (CelebA's faces).
    """

    def work():
        def need(w: int, h: int) -> tuple[int, int]:
            if crop is None:
                return size, size
            c = min(crop, w, h)  # the crop must still cover ``size`` pixels after drafting
            return math.ceil(w * size / c), math.ceil(h * size / c)

        img, full = _open(path, channels, need)
        if crop is not None:  # ``crop`` is in the file's pixels; the decoded image may be smaller
            w, h = img.size
            c = min(round(crop * w / full[0]), w, h)
            left, top = (w - c) // 2, (h - c) // 2
            img = img.crop((left, top, left + c, top + c))
        return _to_chw(_fit(img, size))

    return _read(path, work)


def decode_image(path: Path, size: int, channels: int, *, crop: int | None = None) -> torch.Tensor:
    """Return one image as uint8 [C, size, size], or raise ``UserError`` naming the file."""
    return torch.from_numpy(decode_array(path, size, channels, crop))


def decode_pair(path: Path, size: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the left (A) and right (B) halves of a side-by-side image, each [C, size, size]."""

    def work():
        img, (full_w, full_h) = _open(path, channels, lambda w, h: (2 * size, size))
        if full_w % 2:
            raise UserError(
                f"{str(path)!r} is not a side-by-side pair: its width {full_w} is odd "
                f"(paired folders hold A and B halves of equal width in one image)"
            )
        if full_w < full_h:
            raise UserError(f"{str(path)!r} is not a side-by-side pair: it is {full_w}x{full_h}, narrower than tall")
        w, h = img.size
        half = round(w / 2)  # the decoded image may be a scaled-down draft of the file
        return _to_chw(_fit(img.crop((0, 0, half, h)), size)), _to_chw(_fit(img.crop((half, 0, w, h)), size))

    return _read(path, work)


def _workers() -> int:
    """Decoding threads: the cores this process may run on (a container's or taskset's limit), at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


def _decode_into(paths: list[Path], decode: Callable[[Path], tuple[np.ndarray, ...]],
                 sink: Callable[[int, np.ndarray], None], skip_corrupt: bool, report: ScanReport,
                 label: str = "") -> list[int]:
    """Decode ``paths`` on a thread pool, in order, handing chunks of rows to ``sink(output, rows)``.

    Returns the indices of the paths kept. PIL releases the GIL while decoding, so threads
    give a near-linear speed-up without the cost of processes.
    """
    from rich.progress import Progress

    from gencli.ui.progress import bars_hidden

    def attempt(path: Path):
        try:
            return decode(path)
        except UnreadableImage as exc:
            if not skip_corrupt:
                raise
            return exc

    kept: list[int] = []
    # Broken files in scraped sets (cats vs dogs) warn about their EXIF data on every read.
    warnings.filterwarnings("ignore", message=".*(EXIF|Truncated File Read).*", category=UserWarning)
    show = len(paths) >= 2000 and bool(label) and not bars_hidden()
    with ThreadPoolExecutor(_workers()) as pool, Progress(console=stderr_console(), transient=True,
                                                          disable=not show) as progress:
        task = progress.add_task(label or "decoding", total=len(paths))
        for start in range(0, len(paths), DECODE_CHUNK):
            chunk = paths[start : start + DECODE_CHUNK]
            outputs: list[list[np.ndarray]] = []
            for offset, result in enumerate(pool.map(attempt, chunk)):
                if isinstance(result, UnreadableImage):
                    report.corrupt.append(str(chunk[offset]))
                    continue
                kept.append(start + offset)
                for k, array in enumerate(result):
                    if len(outputs) <= k:
                        outputs.append([])
                    outputs[k].append(array)
            for k, arrays in enumerate(outputs):
                sink(k, np.stack(arrays))
            progress.advance(task, len(chunk))
    return kept


# ----------------------------------------------------------------------------- layouts


@dataclass
class FolderScan:
    """The files of one split of a dataset folder, and what kind of dataset they make."""

    name: str
    kind: DataKind
    files: list[Path]  # the images (domain A; side-by-side files when paired)
    labels: list[int] | None = None
    classes: list[str] | None = None
    files_b: list[Path] | None = None  # domain B of an unpaired dataset
    report: ScanReport = field(default_factory=ScanReport)
    variant: str = ""  # how the folder was read, part of the cache key


def _holdout(files: list[Path], split: str) -> list[Path]:
    """Every tenth file is the test split, the rest train (all of them when fewer than ten)."""
    held_out = [f for i, f in enumerate(files) if i % 10 == 9]
    if split == "test":
        return held_out
    return [f for i, f in enumerate(files) if i % 10 != 9] if len(files) >= 10 else files


def _subdirs(folder: Path) -> list[Path]:
    """Sub-folders of ``folder``, except hidden ones and gencli's own data directory."""
    from gencli.data.base import data_root

    own = os.path.realpath(data_root())
    return sorted(p for p in folder.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and os.path.realpath(p) != own)


def _image_size(path: Path) -> tuple[int, int] | None:
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.size
    except Exception:  # any unreadable file simply does not decide the layout
        return None


def _looks_paired(folder: Path) -> bool:
    """True when the first readable images of ``folder`` are side-by-side pairs (about 2:1)."""
    for path in list_images(folder)[:3]:
        size = _image_size(path)
        if size:
            w, h = size
            return PAIRED_RATIO[0] <= w / h <= PAIRED_RATIO[1]
    return False


def _no_images_error(folder: Path, report: ScanReport) -> UserError:
    what = f"no images (skipped {report.not_images:,} non-image file(s))" if report.not_images else "no images"
    return UserError(f"dataset folder {str(folder)!r} has {what}")


def _scan_plain(name: str, folder: Path, split: str | None, ignore: tuple[str, ...]) -> FolderScan:
    """Class sub-folders (labelled) or images directly in ``folder`` (unlabelled)."""
    report = ScanReport()
    subdirs = _subdirs(folder)
    direct = list_images(folder, report, ignore)
    if subdirs and not direct:
        classes, files, labels = [], [], []
        for label, sub in enumerate(subdirs):
            found = list_images(sub, report, ignore)
            found = _holdout(found, split) if split else found
            classes.append(sub.name)
            files += found
            labels += [label] * len(found)
        scan = FolderScan(name, "labelled", files, labels, classes, report=report, variant="classes")
    else:
        scan = FolderScan(name, "images", _holdout(direct, split) if split else direct, report=report, variant="flat")
    if not scan.files:
        raise _no_images_error(folder, report)
    return scan


def _scan_paired(name: str, base: Path, split: str, ignore: tuple[str, ...]) -> FolderScan:
    report = ScanReport()
    held = next((base / d for d in ("test", "val") if (base / d).is_dir()), None)
    if split == "train" or held is None:
        files = list_images(base / "train", report, ignore)
        files = files if held is not None else _holdout(files, split)
        folder = base / "train"
    else:
        folder = held
        files = list_images(held, report, ignore)
    if not files:
        raise _no_images_error(folder, report)
    return FolderScan(name, "paired", files, report=report, variant="paired")


def _scan_unpaired(name: str, base: Path, split: str, ignore: tuple[str, ...]) -> FolderScan:
    report = ScanReport()
    for a, b in (("trainA", "trainB"), ("testA", "testB")):
        for have, missing in ((a, b), (b, a)):
            if (base / have).is_dir() and not (base / missing).is_dir():
                raise UserError(f"unpaired dataset folder {str(base)!r} has {have}/ but no {missing}/")
    if not (base / "trainA").is_dir():
        raise UserError(f"unpaired dataset folder {str(base)!r} has testA/ and testB/ but no trainA/ and trainB/")
    explicit = (base / "testA").is_dir()
    sub_a, sub_b = ("testA", "testB") if split == "test" and explicit else ("trainA", "trainB")
    files_a = list_images(base / sub_a, report, ignore)
    files_b = list_images(base / sub_b, report, ignore)
    if not explicit:
        files_a, files_b = _holdout(files_a, split), _holdout(files_b, split)
    for sub, files in ((sub_a, files_a), (sub_b, files_b)):
        if not files:
            raise UserError(f"unpaired dataset folder {str(base)!r} has no images in {sub}/")
    return FolderScan(name, "unpaired", files_a, files_b=files_b, report=report, variant="unpaired")


def scan_folder(root: str | Path, split: str = "train", ignore: tuple[str, ...] = (),
                recursive: bool = False, name: str | None = None) -> FolderScan:
    """Return the files of ``split`` in a dataset folder and the kind of dataset they make.

    ``recursive`` gathers every image under the folder as one unlabelled set, whatever the
    sub-folders (archives that shard their images into numbered folders).
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise UserError(f"dataset folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise UserError(f"dataset path {str(root)!r} is not a folder")
    name = name or root.name
    base = unwrap(root)
    if recursive:
        report = ScanReport()
        folders, stack, seen = [], [base], set()
        while stack:
            folder = stack.pop()
            real = os.path.realpath(folder)
            if real in seen:  # a link back up the tree: each folder is read once
                continue
            seen.add(real)
            folders.append(folder)
            stack.extend(_subdirs(folder))
        files = sorted(p for d in folders for p in list_images(d, report, ignore))
        if not files:
            raise _no_images_error(base, report)
        return FolderScan(name, "images", _holdout(files, split), report=report, variant="recursive")
    if any((base / d).is_dir() for d in ("trainA", "trainB", "testA", "testB")):
        return _scan_unpaired(name, base, split, ignore)
    if (base / "train").is_dir():
        if _looks_paired(base / "train"):
            return _scan_paired(name, base, split, ignore)
        held = next((base / d for d in ("test", "val") if (base / d).is_dir()), None)
        if held is None:
            return _scan_plain(name, base / "train", split, ignore)
        return _scan_plain(name, base / "train" if split == "train" else held, None, ignore)
    return _scan_plain(name, base, split, ignore)


# ----------------------------------------------------------------------------- loading


def _decode_scan(scan: FolderScan, size: int, channels: int, crop: int | None, skip_corrupt: bool,
                 append: Callable[[str, np.ndarray], None], label: str) -> dict:
    """Decode every file of ``scan`` into ``append(array name, rows)``; return the entry's meta."""
    report = scan.report
    if scan.kind == "paired":
        names = ("images", "targets")
        kept = _decode_into(scan.files, lambda p: decode_pair(p, size, channels),
                            lambda k, rows: append(names[k], rows), skip_corrupt, report, label)
    else:
        kept = _decode_into(scan.files, lambda p: (decode_array(p, size, channels, crop),),
                            lambda k, rows: append("images", rows), skip_corrupt, report, label)
    if not kept:
        raise UserError(f"dataset {scan.name!r} has no readable images ({report.summary()})")
    if scan.kind == "labelled":
        append("labels", np.asarray([scan.labels[i] for i in kept], dtype=np.int64))
    if scan.kind == "unpaired":
        kept_b = _decode_into(scan.files_b, lambda p: (decode_array(p, size, channels, crop),),
                              lambda k, rows: append("targets", rows), skip_corrupt, report, label)
        if not kept_b:
            raise UserError(f"dataset {scan.name!r} has no readable images in domain B ({report.summary()})")
    return {"name": scan.name, "kind": scan.kind, "classes": scan.classes, "not_image_files": report.skipped,
            "corrupt_files": report.corrupt, "summary": report.summary()}


def _image_data(meta: dict, tensors: dict[str, torch.Tensor | None]) -> ImageData:
    return ImageData(meta["name"], meta["kind"], tensors["images"], labels=tensors.get("labels"),
                     targets=tensors.get("targets"), classes=meta.get("classes"))


def load_scan(scan: FolderScan | Callable[[], FolderScan], request: DataRequest, *, dataset: str, source: str,
              variant: str = "", skip_corrupt: bool = False, crop: int | None = None,
              cache: bool = True) -> tuple[ImageData, dict]:
    """Return the decoded images of a scan and what preparing them skipped.

    With ``cache`` the images come memory-mapped from a prepared entry keyed by ``dataset``,
    the split, size and channels, ``source`` (a fingerprint of the files) and ``variant`` (how
    the folder is read); the entry is built on first use and whenever any of those changes. A
    callable ``scan`` is only called when the entry has to be built, so a prepared dataset loads
    without listing its folder.
    """
    size, channels = request.stored_size, request.channels

    def decode(append: Callable[[str, np.ndarray], None]) -> dict:
        found = scan() if callable(scan) else scan
        counts: dict[str, int] = {}

        def counted(name: str, rows: np.ndarray) -> None:
            append(name, rows)
            counts[name] = counts.get(name, 0) + len(rows)

        label = f"preparing {found.name} ({request.split}, {size} px)"
        meta = _decode_scan(found, size, channels, crop, skip_corrupt, counted, label)
        meta["images"] = counts["images"]
        if meta["summary"]:
            say(f"{found.name} ({request.split}): {meta['images']:,} images; {meta['summary']}")
        return meta

    if not cache:
        parts: dict[str, list[np.ndarray]] = {}
        meta = decode(lambda name, rows: parts.setdefault(name, []).append(rows))
        return _image_data(meta, {n: torch.from_numpy(np.concatenate(rows)) for n, rows in parts.items()}), meta

    key = CacheKey(dataset, request.split, size, channels, source, f"{variant}|crop={crop}|skip={skip_corrupt}")
    entry = prepared(key, lambda writer: decode(writer.append))
    tensors = {name: entry.tensor(name) for name in entry.arrays}
    return _image_data(entry.meta, tensors), entry.meta


def load_folder(root: str | Path, request: DataRequest, skip_corrupt: bool = False, cache: bool = True) -> ImageData:
    """Return the images of a local folder (see module docstring for layouts)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        scan_folder(root, request.split)  # raises the error that says what is wrong
    resolved = root.resolve()
    from gencli.data.base import data_root
    from gencli.data.idx import is_idx_folder

    if is_idx_folder(resolved):  # MNIST-like IDX files: a labelled set with its own train/test split
        from gencli.data.idx import load_idx_folder
        from gencli.data.local import known_idx_dataset

        known = known_idx_dataset(resolved)
        classes = known.info.get("classes") if known is not None else None
        return load_idx_folder(resolved, request, dataset=str(resolved), name=resolved.name,
                               classes=list(classes) if isinstance(classes, list) else None, cache=cache)

    return load_scan(lambda: scan_folder(root, request.split), request, dataset=str(resolved),
                     source=fingerprint(resolved, exclude=data_root()), variant="folder",
                     skip_corrupt=skip_corrupt, cache=cache)[0]
