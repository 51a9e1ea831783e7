"""Crash-safe file writes shared by checkpoints, run files, caches and downloads (no torch)."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Errors only a write can raise, each something the user can remedy: what happened, and the way out.
WRITE_FAILURES = {
    errno.ENOSPC: ("no space left on the device", "free some space"),
    errno.EFBIG: ("the file would exceed the file-size limit", "raise the limit (ulimit -f)"),
    errno.EROFS: ("the file system is read-only", "make it writable"),
}
if hasattr(errno, "EDQUOT"):  # not on every platform
    WRITE_FAILURES[errno.EDQUOT] = ("the disk quota is exhausted", "free some space")


def write_failure(exc: BaseException) -> tuple[str, str] | None:
    """Return (what went wrong, the way out) when ``exc`` is a write failure the user can remedy; else None."""
    if isinstance(exc, OSError) and exc.errno in WRITE_FAILURES:
        return WRITE_FAILURES[exc.errno]
    return None


@contextmanager
def naming(path: Path | str) -> Iterator[None]:
    """Attach ``path`` to an OSError raised without one (a failed ``write``), so an error line can name it."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            exc.filename = str(path)
        raise


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file and flush it to disk (for files renamed into place afterwards)."""
    with naming(path), open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file, fsync and a rename: never half-written."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write_file(tmp, data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        # a full disk must not also keep the half-written copy
        try:
            tmp.unlink()
        except OSError:
            pass
        raise


def append_line(path: Path, line: str) -> None:
    """Append one line; a reader skips a line cut short by a crash (it is not valid JSON)."""
    with naming(path), open(path, "a") as fh:
        fh.write(line + "\n")


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (a rename into it) to disk, where the platform allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
