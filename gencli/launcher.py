"""The ``gencli`` program's entry point.

A shell asking for Tab completion is answered here, before the Typer app is built, whenever
``gencli.completion`` can answer; everything else (and any completion it leaves) runs the CLI.
"""

from __future__ import annotations

import os


def main() -> None:
    if os.environ.get("_GENCLI_COMPLETE"):
        from gencli.completion import answer

        if answer():
            return
    from gencli.cli import main as cli_main

    cli_main()
