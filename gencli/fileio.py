"""Crash-safe file writes shared by checkpoints, run files, caches and downloads (no torch).

It also keeps a run a sealed folder: ``sealed`` confirms a path inside a run (no link, folders
are folders) before it is touched, files are opened without following links (``O_NOFOLLOW``),
temporary names are unique, and writers of one file (``metrics.jsonl``) take turns through an
advisory lock (``locked``).
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from gencli.errors import UserError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, writers are not serialised there
    fcntl = None

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO planted in a run must not hang the open

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
    with naming(path):
        fd = open_nofollow(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)


def temporary_name(path: Path) -> Path:
    """Return a hidden name beside ``path`` no other writer uses: ``.NAME.tmp-PID-RANDOM``."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file, fsync and a rename: never half-written.

    The temporary file is created new (never an existing name or a link), and the rename replaces
    a link at ``path`` rather than writing where it leads.
    """
    path = Path(path)
    tmp = temporary_name(path)
    try:
        with naming(tmp):
            fd = open_nofollow(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            try:
                _write_all(fd, data.encode() if isinstance(data, str) else data)
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        # a full disk must not also keep the half-written copy
        try:
            tmp.unlink()
        except OSError:
            pass
        raise


def append_line(path: Path, line: str) -> None:
    """Append one line, in one write, holding the file's lock (``locked``): concurrent writers never
    lose a line; a reader skips a line cut short by a crash (it is not valid JSON)."""
    with naming(path), locked(path) as fd:
        _write_all(fd, (line + "\n").encode())


def rewrite_locked(path: Path, change: Callable[[bytes], bytes]) -> None:
    """Replace ``path`` (atomically) by ``change`` of its bytes, holding its lock throughout, so a
    line appended meanwhile is neither lost nor kept twice. Nothing happens when it does not exist."""
    path = Path(path)
    try:
        os.lstat(path)
    except FileNotFoundError:
        return
    with naming(path), locked(path) as fd:
        os.lseek(fd, 0, os.SEEK_SET)
        write_atomic(path, change(_read_all(fd)))


@contextmanager
def locked(path: Path) -> Iterator[int]:
    """Hold an exclusive advisory lock (``flock``) on the file at ``path``, created when missing;
    yield its descriptor, open for appending.

    A writer that waited while another replaced the file (``rewrite_locked``) locked the old copy:
    it sees the name now leads to another file, and locks that one instead.
    """
    path = Path(path)
    while True:
        fd = open_nofollow(path, os.O_RDWR | os.O_CREAT | os.O_APPEND)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.path.samestat(os.fstat(fd), os.lstat(path))
            except FileNotFoundError:
                current = False
        except BaseException:
            os.close(fd)
            raise
        if current:
            break
        os.close(fd)
    try:
        yield fd
    finally:
        os.close(fd)  # which releases the lock


# ------------------------------------------------------------------ a run is a sealed folder
def _what(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a plain file"


def link_refused(path: Path, kind: str = "file") -> UserError:
    """The one line for a link where a run keeps its own ``kind`` ('file' or 'folder')."""
    return UserError(f"{str(path)!r} is a link, which leads outside the run's own files; refusing to follow it "
                     f"(make it a real {kind} of the run)")


def wrong_kind(path: Path, kind: str, mode: int) -> UserError:
    return UserError(f"{str(path)!r} should be a {kind} of the run but is {_what(mode)}; "
                     f"refusing to use it (move it away or make it a {kind})")


def sealed(run_dir: Path, rel: str | Path, kind: str = "file", create: bool = False) -> Path:
    """Return ``run_dir/rel`` once every part of it below ``run_dir`` is confirmed: no link, the
    folders on the way folders, the last part a ``kind`` ('file' or 'folder') or absent.

    ``create`` makes the missing folders (``rel`` itself too for a folder), each made new in a
    confirmed parent. ``run_dir`` itself may be reached through a link: it is the user's to name.
    A refusal is one ``UserError`` line naming the part that is wrong.
    """
    run_dir, rel = Path(run_dir), Path(rel)
    parts = rel.parts
    if not parts or rel.is_absolute() or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"not a path inside a run: {str(rel)!r}")
    current = run_dir
    for i, part in enumerate(parts):
        current = current / part
        want = kind if i == len(parts) - 1 else "folder"
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            if not (create and want == "folder"):
                return run_dir / rel  # nothing below a missing part exists, so nothing to follow
            try:
                os.mkdir(current)
                continue
            except FileExistsError:  # made meanwhile: confirm what it is
                mode = os.lstat(current).st_mode
        if stat.S_ISLNK(mode):
            raise link_refused(current, want)
        if (want == "folder" and not stat.S_ISDIR(mode)) or (want == "file" and not stat.S_ISREG(mode)):
            raise wrong_kind(current, want, mode)
    return run_dir / rel


def open_nofollow(path: Path, flags: int, mode: int = 0o644) -> int:
    """``os.open`` that refuses a link at ``path`` (and anything but a plain file) in one line."""
    try:
        fd = os.open(path, flags | NOFOLLOW | NONBLOCK, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP or (exc.errno == errno.EMLINK and NOFOLLOW):  # EMLINK: the BSDs
            raise link_refused(Path(path)) from None
        if exc.errno == errno.EISDIR:
            raise wrong_kind(Path(path), "file", stat.S_IFDIR) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise wrong_kind(Path(path), "file", st.st_mode)
        if NONBLOCK:
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_nofollow(path: Path, limit: int | None = None) -> bytes | None:
    """Return the bytes of the plain file at ``path`` (at most ``limit``), None when there is none;
    a link or anything but a plain file is refused in one line."""
    try:
        fd = open_nofollow(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        return _read_all(fd, limit)
    finally:
        os.close(fd)


def _read_all(fd: int, limit: int | None = None) -> bytes:
    chunks, size = [], 0
    while limit is None or size < limit:
        chunk = os.read(fd, 1 << 20 if limit is None else min(1 << 20, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


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
