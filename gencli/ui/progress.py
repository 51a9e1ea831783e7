"""The one progress bar of long loops (sampling steps, feature extraction, translation), and
whether ``--quiet`` hides the bars drawn elsewhere (downloads, extraction, decoding).

It goes to stderr, is transient, and is drawn only on a terminal and never under ``--quiet``, so
logs, pipes and scripted runs stay clean. When another live display (the training table) is
already on screen, the loop goes on without a bar rather than failing.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator


def _ignore(k: int = 1) -> None:
    return None


def bars_hidden() -> bool:
    """Whether ``--quiet`` hides progress bars: every bar gencli draws (downloads, extraction, image
    decoding, weights) asks this."""
    from gencli.ui import console

    return console.quiet


@contextlib.contextmanager
def progress_bar(description: str, total: int, enabled: bool = True, console=None) -> Iterator[Callable[..., None]]:
    """Yield ``advance(k=1)`` for a bar over ``total`` units of work."""
    from gencli.ui import console as consoles

    console = console if console is not None else consoles.err
    if not enabled or consoles.quiet or not console.is_terminal:
        yield _ignore
        return
    from rich.errors import LiveError
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=console, transient=True, redirect_stdout=False, redirect_stderr=False)
    try:
        bar.start()
    except LiveError:
        yield _ignore
        return
    try:
        task = bar.add_task(description, total=total)
        yield lambda k=1: bar.advance(task, k)
    finally:
        bar.stop()
