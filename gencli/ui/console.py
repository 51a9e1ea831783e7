"""The Rich consoles: results on stdout, messages and errors on stderr, styled in one place."""

from __future__ import annotations

import sys

from rich.console import Console

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
quiet = False  # `gencli --quiet`: no progress bars (results and errors are printed all the same)


def error(message: str) -> None:
    """Print one error line on stderr."""
    err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False) if err.is_terminal else print(
        f"error: {message}", file=sys.stderr
    )


def warn(message: str) -> None:
    if err.is_terminal:
        err.print(f"[yellow]warning:[/] {message}")
    else:
        print(f"warning: {message}", file=sys.stderr)


def info(message: str, quiet: bool = False) -> None:
    if not quiet:
        err.print(message)
