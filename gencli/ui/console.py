"""The Rich consoles: results on stdout, messages and errors on stderr, styled in one place.

A stream closed by its reader (``gencli train | head -1``, a terminal that went away) silences
what is shown on it, never the work behind it: the consoles here go quiet instead of ending the
program as Rich's do, and the stream's file descriptor is pointed at the null device so that
nothing fails again, not even Python's flush at exit.
"""

from __future__ import annotations

import errno
import os
import sys

from rich.console import Console as RichConsole


def closed_output(exc: BaseException) -> bool:
    """Whether ``exc`` says the stream written to was closed by its reader (not a full disk, say)."""
    if isinstance(exc, BrokenPipeError):
        return True
    if isinstance(exc, OSError):
        return exc.errno in (errno.EPIPE, errno.EBADF)
    return isinstance(exc, ValueError) and "closed file" in str(exc)


def silence(stream) -> None:
    """Send whatever is still written to ``stream`` to the null device."""
    try:
        fd = stream.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
    except (OSError, ValueError, AttributeError):
        return
    try:
        os.dup2(devnull, fd)
    except OSError:
        pass
    finally:
        os.close(devnull)


class Console(RichConsole):
    """A Rich console that goes quiet when its stream is closed, rather than exiting as Rich's does."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        silence(self.file)


out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
quiet = False  # `gencli --quiet`: no progress bars (results and errors are printed all the same)


def _write(stream, text: str) -> None:
    """Write ``text`` to ``stream`` in one go; a stream its reader closed swallows it."""
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError) as exc:
        if not closed_output(exc):
            raise
        silence(stream)


def result(text: str) -> None:
    """Print one result line on stdout (a run's folder, a file written)."""
    _write(sys.stdout, f"{text}\n")


def error(message: str) -> None:
    """Print one error line on stderr."""
    if err.is_terminal:
        err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    else:  # one write, so lines from several processes sharing the stream never interleave
        _write(sys.stderr, f"error: {message}\n")


def warn(message: str) -> None:
    if err.is_terminal:
        err.print(f"[yellow]warning:[/] {message}")
    else:
        _write(sys.stderr, f"warning: {message}\n")


def info(message: str, quiet: bool = False) -> None:
    if not quiet:
        err.print(message)
