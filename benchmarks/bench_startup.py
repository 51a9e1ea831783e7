"""Startup time of the CLI: `gencli --help` and `gencli models` (best of N runs, wall clock).

    python benchmarks/bench_startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def wall(cmd: list[str], runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    base = wall([sys.executable, "-c", "pass"], args.runs)
    print(f"{'command':<28} {'best s':>8} {'median s':>9}")
    print(f"{'python -c pass':<28} {base[0]:>8.3f} {base[1]:>9.3f}")
    for cmd in (["--help"], ["models"], ["plugins"]):
        best, median = wall([sys.executable, "-m", "gencli", *cmd], args.runs)
        print(f"{'gencli ' + ' '.join(cmd):<28} {best:>8.3f} {median:>9.3f}")


if __name__ == "__main__":
    main()
