"""Prepared datasets: images decoded once into uint8 arrays that later runs memory-map.

A prepared entry is a folder under ``GENCLI_DATA_DIR/prepared/`` holding one raw array file per
tensor (``images.u8``, ``labels.i64``, ``targets.u8``) and ``header.json``: the format version,
the key (dataset, split, size, channels, a fingerprint of the source files, and anything else
that changes the pixels), each array's dtype and shape, the classes, the skip counts, and
``"complete": true``. The entry is built in a temporary folder, every file is fsynced, and the
folder is renamed into place last, so an entry that exists is complete. An entry whose header
is missing, unreadable, from another format version, for another key, or whose array files do
not have the sizes the header promises is deleted and rebuilt, never read.

Nothing here imports torch; ``tensor()`` does, when asked for one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from gencli.fileio import fsync_dir

FORMAT_VERSION = 1
HEADER = "header.json"
_SUFFIX = {"uint8": "u8", "int64": "i64"}


def prepared_root() -> Path:
    """Return the folder that holds prepared entries (``GENCLI_DATA_DIR/prepared``)."""
    from gencli.data.roots import data_root

    return data_root() / "prepared"


@dataclass(frozen=True)
class CacheKey:
    """Everything a prepared entry depends on; any change means a rebuild."""

    dataset: str  # a registered name, or the resolved path of a folder
    split: str
    size: int
    channels: int
    source: str  # fingerprint of the source files (see ``fingerprint``)
    variant: str = ""  # anything else that changes the pixels (crop, pairing, layout)

    def slot(self) -> str:
        """Return the entry's folder name: one per (dataset, split, size, channels, variant)."""
        label = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(self.dataset).name if "/" in self.dataset else self.dataset)
        ident = hashlib.sha256(f"{self.dataset}\0{self.variant}".encode()).hexdigest()[:10]
        return f"{label.strip('-') or 'data'}-{self.split}-{self.size}px-{self.channels}c-{ident}"

    def as_dict(self) -> dict:
        return asdict(self)


def fingerprint(paths: list[Path] | Path, exclude: Path | None = None) -> str:
    """Return a fingerprint of source files: their count and a digest of every file's path,
    size and modification time.

    A folder stands for every file under it (paths relative to it), except the folder
    ``exclude`` (the data directory, when a dataset folder holds it). Cheap (one ``stat`` per
    file) and changed by any added, removed, renamed, moved, resized or rewritten file.
    """
    skip = os.path.realpath(exclude) if exclude is not None else None
    roots = [paths] if isinstance(paths, Path) else list(paths)
    digest = hashlib.sha256()
    count = 0
    for root in roots:
        root = Path(root)
        stack = [root]
        records = []
        seen = set()  # real paths of folders walked: a link back up the tree is walked once
        while stack:
            path = stack.pop()
            if not path.is_dir():
                st = path.stat()
                records.append(f"{path.relative_to(root) if path != root else path.name}\0{st.st_size}\0{st.st_mtime_ns}")
                continue
            real = os.path.realpath(path)
            if real in seen:
                continue
            seen.add(real)
            with os.scandir(path) as it:
                for e in it:
                    try:
                        is_dir = e.is_dir()
                    except OSError:  # a link in a loop: not a folder; recorded by its target below
                        is_dir = False
                    if is_dir:
                        if skip is None or os.path.realpath(e.path) != skip:
                            stack.append(Path(e.path))
                        continue
                    try:
                        st = e.stat()
                    except OSError:  # a link to nothing (or a loop): its target is what can change
                        records.append(f"{Path(e.path).relative_to(root)}\0->{_link_target(e.path)}")
                        continue
                    records.append(f"{Path(e.path).relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}")
        count += len(records)
        digest.update("\n".join(sorted(records)).encode("utf-8", "surrogateescape"))
    return f"{count}:{digest.hexdigest()[:32]}"


def _link_target(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


@dataclass
class Prepared:
    """A complete prepared entry, its arrays memory-mapped copy-on-write."""

    path: Path
    header: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def meta(self) -> dict:
        return self.header.get("meta", {})

    def tensor(self, name: str):
        """Return array ``name`` as a torch tensor sharing the mapped memory, or None."""
        import torch

        array = self.arrays.get(name)
        return None if array is None else torch.from_numpy(array)


class EntryWriter:
    """Streams arrays into a temporary entry folder; ``finish`` makes the entry visible."""

    def __init__(self, key: CacheKey, root: Path) -> None:
        self.key, self.root = key, root
        self.tmp = root / f".{key.slot()}.tmp-{os.getpid()}"
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        self._files: dict[str, list] = {}  # name -> [file object, dtype, tail shape, rows]

    def append(self, name: str, rows: np.ndarray) -> None:
        """Append ``rows`` (first axis = items) to array ``name``, creating it on first use."""
        if name not in self._files:
            dtype = str(rows.dtype)
            f = open(self.tmp / f"{name}.{_SUFFIX[dtype]}", "wb")
            self._files[name] = [f, dtype, tuple(rows.shape[1:]), 0]
        entry = self._files[name]
        if str(rows.dtype) != entry[1] or tuple(rows.shape[1:]) != entry[2]:
            raise ValueError(f"rows for {name!r} must be {entry[1]} {entry[2]}, got {rows.dtype} {rows.shape[1:]}")
        entry[0].write(np.ascontiguousarray(rows).tobytes())
        entry[3] += len(rows)

    def finish(self, meta: dict) -> Path:
        """Write the header last, fsync everything and rename the entry into place."""
        arrays = {}
        for name, (f, dtype, tail, rows) in self._files.items():
            f.flush()
            os.fsync(f.fileno())
            f.close()
            arrays[name] = {"file": Path(f.name).name, "dtype": dtype, "shape": [rows, *tail]}
        header = {"format": FORMAT_VERSION, "key": self.key.as_dict(), "arrays": arrays, "meta": meta,
                  "created": time.time(), "complete": True}
        with open(self.tmp / HEADER, "w") as f:
            json.dump(header, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        final = self.root / self.key.slot()
        if read_entry(final, self.key) is not None:  # another process (a distributed rank) finished first
            shutil.rmtree(self.tmp, ignore_errors=True)
            return final
        shutil.rmtree(final, ignore_errors=True)
        try:
            os.rename(self.tmp, final)
        except OSError:
            if read_entry(final, self.key) is None:
                raise
            shutil.rmtree(self.tmp, ignore_errors=True)
        fsync_dir(self.root)
        return final

    def abort(self) -> None:
        for f, *_ in self._files.values():
            f.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def read_entry(path: Path, key: CacheKey | None = None) -> Prepared | None:
    """Return the entry at ``path`` memory-mapped, or None when it is incomplete or stale."""
    try:
        header = json.loads((path / HEADER).read_text())
    except (OSError, ValueError):
        return None
    if header.get("format") != FORMAT_VERSION or header.get("complete") is not True:
        return None
    if key is not None and header.get("key") != key.as_dict():
        return None
    arrays = {}
    try:
        for name, spec in header["arrays"].items():
            file = path / spec["file"]
            dtype = np.dtype(spec["dtype"])
            shape = tuple(int(s) for s in spec["shape"])
            if file.stat().st_size != int(np.prod(shape)) * dtype.itemsize:
                return None  # truncated or overwritten since
            arrays[name] = np.memmap(file, dtype=dtype, mode="c", shape=shape) if shape[0] else np.zeros(shape, dtype)
    except (OSError, KeyError, TypeError, ValueError):
        return None
    return Prepared(path, header, arrays)


def _remove_stale_builds(root: Path, slot: str) -> None:
    """Delete temporary folders of builds for ``slot`` whose process is gone."""
    for tmp in root.glob(f".{slot}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        alive = False
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                os.kill(int(pid), 0)
                alive = True
            except (OSError, ValueError):
                alive = False
        if not alive:
            shutil.rmtree(tmp, ignore_errors=True)


def prepared(key: CacheKey, build: Callable[[EntryWriter], dict], root: Path | None = None) -> Prepared:
    """Return the entry for ``key``, building it with ``build(writer) -> meta`` when needed.

    Falls back to building in a temporary folder and reading it from there when the cache
    folder cannot be written (read-only data directory), so the data still loads.
    """
    root = root or prepared_root()
    path = root / key.slot()
    entry = read_entry(path, key)
    if entry is not None:
        return entry
    shutil.rmtree(path, ignore_errors=True)  # stale, foreign or damaged: never read
    scratch = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        _remove_stale_builds(root, key.slot())
        writer = EntryWriter(key, root)
    except OSError:
        scratch = root = Path(tempfile.mkdtemp(prefix="gencli-prepared-"))
        writer = EntryWriter(key, root)
    try:
        meta = build(writer)
        final = writer.finish(meta)
    except BaseException:
        writer.abort()
        raise
    entry = read_entry(final, key)
    if entry is None:
        raise RuntimeError(f"prepared entry {final} did not read back")
    if scratch is not None:  # the mapping outlives the files on POSIX; elsewhere they stay in tmp
        shutil.rmtree(scratch, ignore_errors=True)
    return entry


def list_entries(root: Path | None = None) -> list[dict]:
    """Return a summary of every complete entry: dataset, split, size, channels, images, bytes, path."""
    root = root or prepared_root()
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.iterdir()):
        if path.name.startswith(".") or not path.is_dir():
            continue
        entry = read_entry(path)
        if entry is None:
            continue
        key = entry.header["key"]
        found.append({"dataset": key["dataset"], "split": key["split"], "size": key["size"],
                      "channels": key["channels"], "images": entry.header["arrays"]["images"]["shape"][0],
                      "bytes": sum(f.stat().st_size for f in path.iterdir() if f.is_file()), "path": str(path)})
    return found
