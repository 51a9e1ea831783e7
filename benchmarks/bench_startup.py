"""Startup time of the CLI: `gencli --help`, `gencli models` and `gencli plugins` (wall clock).

    python benchmarks/bench_startup.py [--runs 7] [--write benchmarks/RESULTS.md]

Each command runs ``--runs`` times in a fresh process; the best and the median are reported, next
to a bare ``python -c pass``. None of these commands imports torch (tests/test_cli.py checks it).
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from results import machine, machine_line, publish  # benchmarks/results.py, beside this script


def wall(cmd: list[str], runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--write", type=Path, default=None, help="also write the section into this Markdown file")
    args = parser.parse_args(argv)
    rows = [("`python -c pass`", *wall([sys.executable, "-c", "pass"], args.runs))]
    for cmd in (["--help"], ["models"], ["plugins"]):
        rows.append((f"`gencli {' '.join(cmd)}`", *wall([sys.executable, "-m", "gencli", *cmd], args.runs)))
    command = " ".join(["python benchmarks/bench_startup.py", *map(shlex.quote, argv)])
    lines = ["## CLI startup", "", f"`{command}`", "", machine_line(machine()), "",
             f"Wall time of each command in a fresh process, {args.runs} runs. No torch import on these paths "
             "(tests/test_cli.py checks it).", "",
             "| command | best (s) | median (s) |", "|---|---:|---:|"]
    lines += [f"| {name} | {best:.3f} | {median:.3f} |" for name, best, median in rows]
    publish("\n".join(lines) + "\n", args.write)


if __name__ == "__main__":
    main()
