"""One trainer per run directory: an exclusive lock held for as long as a process trains the run.

Two processes training one run would both append to ``metrics.jsonl``, save the same steps and
prune each other's checkpoints. The lock is an ``flock`` on ``RUN/.lock``: the kernel releases it
when its holder dies, however it dies, so a killed trainer never leaves a run locked; the file
only records the holder's process id for the refusal message.

A command that takes the lock and is then refused (a setting that cannot change, a run already
finished) puts the file back as it was (``restore``): a refusal changes nothing. ``RUN/.lock``
is opened without following a link, and anything but a plain file there is refused in one line.
"""

from __future__ import annotations

import os
from pathlib import Path

from gencli.errors import UserError
from gencli.fileio import naming, open_nofollow

try:
    import fcntl
except ImportError:  # Windows: runs are not locked there
    fcntl = None

LOCK_FILE = ".lock"


class RunLock:
    """The exclusive right to train one run; ``release()`` (or process exit) gives it up."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self._fd: int | None = None
        self._before: tuple[bytes, int, int] | None = None  # contents, atime_ns, mtime_ns when taken
        self.kept = False

    def acquire(self) -> "RunLock":
        if fcntl is None:
            return self
        try:
            with naming(self.path):
                fd = open_nofollow(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except PermissionError:
            raise UserError(f"cannot train run {str(self.path.parent)!r}: no permission to write in it; "
                            "train a copy of it that you own") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            who = f"process {holder}" if holder.isdigit() else "another process"
            run = str(self.path.parent)
            raise UserError(f"run {run!r} is being trained by {who}; wait for it to end "
                            f"(or stop it), then continue with: gencli train --resume {run}") from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        try:
            with naming(self.path):
                st = os.fstat(fd)
                self._before = (os.read(fd, 64), st.st_atime_ns, st.st_mtime_ns)
                os.lseek(fd, 0, os.SEEK_SET)
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
        except BaseException:
            self.release()
            raise
        return self

    def keep(self) -> None:
        """Say the run is being trained now: the file keeps this process's id after ``release``."""
        self.kept = True

    def restore(self) -> None:
        """Put the file back as it was before ``acquire`` (its id and times): for a refused command."""
        if self._fd is None or self._before is None:
            return
        data, atime, mtime = self._before
        try:
            os.lseek(self._fd, 0, os.SEEK_SET)
            os.ftruncate(self._fd, 0)
            os.write(self._fd, data)
            os.utime(self._fd, ns=(atime, mtime))
        except OSError:
            pass  # the lock is released all the same; a stale id only names a process that ended

    def release(self) -> None:
        if self._fd is not None:
            # the file stays: unlinking it would let a waiter lock a file no longer in the folder
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        if not self.kept:
            self.restore()
        self.release()
