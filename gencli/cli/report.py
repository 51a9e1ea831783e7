"""`gencli report`: one self-contained HTML page of a run, or of several runs side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from gencli.cli.common import complete_runs, examples, handle_errors

EPILOG = examples(
    "gencli report RUN                              # RUN/report.html",
    "gencli report RUN_A RUN_B --out compare.html   # side by side, what differs highlighted",
    "gencli report vae                              # the latest run of a model",
)


@handle_errors
def report(
    runs: Annotated[list[str], typer.Argument(help="Run directory (several: a side-by-side comparison).",
                                              autocompletion=complete_runs, show_default=False)],
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="A new .html file to write (nothing is ever overwritten).",
        show_default="RUN/report.html, ./report.html for several runs; report-2.html, ... when taken")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the file written as JSON.")] = False,
) -> None:
    """Write one self-contained HTML page of runs: loss and quality curves, samples, metrics, settings."""
    from gencli.report import write_report

    path = write_report(runs, out)
    print(json.dumps({"report": str(path)}) if json_out else path)
