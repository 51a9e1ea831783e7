"""One trainer per run directory: an exclusive lock held for as long as a process trains the run.

Two processes training one run would both append to ``metrics.jsonl``, save the same steps and
prune each other's checkpoints. The lock is an ``flock`` on ``RUN/.lock``: the kernel releases it
when its holder dies, however it dies, so a killed trainer never leaves a run locked; the file
only records the holder's process id for the refusal message.
"""

from __future__ import annotations

import os
from pathlib import Path

from gencli.errors import UserError
from gencli.fileio import naming

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

    def acquire(self) -> "RunLock":
        if fcntl is None:
            return self
        try:
            with naming(self.path):
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
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
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
        except BaseException:
            self.release()
            raise
        return self

    def release(self) -> None:
        if self._fd is not None:
            # the file stays: unlinking it would let a waiter lock a file no longer in the folder
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
