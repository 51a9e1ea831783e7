"""The Rich consoles: results on stdout, messages and errors on stderr, styled in one place."""

from __future__ import annotations

import sys

from rich.console import Console

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
quiet = False  # `gencli --quiet`: no progress bars (results and errors are printed all the same)


def error(message: str) -> None:
    """Print one error line on stderr."""
    if err.is_terminal:
        err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    else:  # one write, so lines from several processes sharing the stream never interleave
        sys.stderr.write(f"error: {message}\n")
        sys.stderr.flush()


def warn(message: str) -> None:
    if err.is_terminal:
        err.print(f"[yellow]warning:[/] {message}")
    else:
        print(f"warning: {message}", file=sys.stderr)


def info(message: str, quiet: bool = False) -> None:
    if not quiet:
        err.print(message)
