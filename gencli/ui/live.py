"""The live training table: a Rich table in a terminal, periodic plain lines otherwise.

A stream its reader closed (``gencli train vae | head -1``) stops the display, not the run: the
display goes quiet and training goes on to its end.
"""

from __future__ import annotations

import math
import time

from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from gencli.ui.console import Console, closed_output, silence


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:d}:{s:02d}"


def format_value(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    a = abs(value)
    if a != 0 and (a >= 1e5 or a < 1e-3):
        return f"{value:.3e}"
    return f"{value:.4f}" if a < 10 else f"{value:.2f}"


class TrainDisplay:
    """Shows epoch, step, running-mean losses, images/s and ETA while a run trains."""

    def __init__(self, title: str, total_steps: int, console: Console | None = None, quiet: bool = False,
                 plain_every_s: float = 5.0) -> None:
        self.title = title
        self.total = total_steps
        self.console = console or Console(stderr=False)
        self.quiet = quiet
        self.live: Live | None = None
        self.plain_every_s = plain_every_s
        self._last_plain = 0.0
        self.row: dict[str, str] = {}
        self.notes: list[str] = []

    def __enter__(self) -> "TrainDisplay":
        if not self.quiet and self.console.is_terminal:
            self.live = Live(self._render(), console=self.console, refresh_per_second=4, transient=False)
            self._shown(self.live.__enter__)
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            live, self.live = self.live, None
            self._shown(lambda: live.update(self._render()))
            self._shown(lambda: live.__exit__(*exc))

    def _shown(self, show) -> None:
        """Run ``show()``; when the stream's reader has closed it, go quiet for the rest of the run."""
        if self.console.quiet:  # the console found its stream closed (``on_broken_pipe``)
            self.quiet = True
            return
        try:
            show()
        except (OSError, ValueError) as exc:
            if not closed_output(exc):
                raise
            self.quiet = True
            self.console.quiet = True
            silence(self.console.file)
        if self.console.quiet:
            self.quiet = True

    def _render(self):
        table = Table(title=self.title, title_justify="left", expand=False)
        if not self.row:
            return Text(f"{self.title}: starting...")
        for key in self.row:
            table.add_column(key, justify="right")
        table.add_row(*self.row.values())
        return Group(table, *[Text(n, style="dim") for n in self.notes[-3:]])

    def update(self, step: int, epoch: int, losses: dict[str, float], images_per_s: float, eta_s: float,
               force: bool = False) -> None:
        self.row = {"epoch": str(epoch), "step": f"{step}/{self.total}"}
        self.row.update({k: format_value(v) for k, v in losses.items()})
        self.row["img/s"] = f"{images_per_s:.0f}"
        self.row["ETA"] = format_duration(eta_s)
        if self.quiet:
            return
        if self.live is not None:
            self._shown(lambda: self.live.update(self._render()))
            return
        now = time.monotonic()
        if force or now - self._last_plain >= self.plain_every_s:
            self._last_plain = now
            line = "  ".join(f"{k} {v}" for k, v in self.row.items())
            self._shown(lambda: self.console.print(line, highlight=False, soft_wrap=True))

    def note(self, message: str) -> None:
        """A line under the table (a saved checkpoint, a sample grid, ...)."""
        if self.quiet:
            return
        if self.live is not None:
            self.notes.append(message)
            self._shown(lambda: self.live.update(self._render()))
        else:
            self._shown(lambda: self.console.print(message, highlight=False, soft_wrap=True))
