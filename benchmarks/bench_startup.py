"""Startup time of the interactive commands: help, listings, model info, dataset cards and Tab completion.

    python benchmarks/bench_startup.py [--runs 7] [--write benchmarks/RESULTS.md]

Each command runs ``--runs`` times as a whole fresh process (interpreter start-up included), the
way a user or the shell starts it; min, median and max wall times are reported, next to a bare
``python -c pass``. Completion is asked for the way the installed bash completion script asks:
``_GENCLI_COMPLETE=complete_bash COMP_WORDS=... COMP_CWORD=... gencli``. None of these commands
imports torch (tests/test_no_torch_paths.py checks it); value completions are answered before
Typer is imported (gencli.completion), option names by Typer. The children run without
``PYTHONDONTWRITEBYTECODE``, as an installed package runs: its compiled bytecode is kept (the
warm-up run writes it). Run it on an idle machine: the load average at the end is printed with
the figures.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from results import machine, publish, section_head  # benchmarks/results.py, beside this script


def completion(line: str) -> dict[str, str]:
    """The environment bash's completion script gives gencli to complete ``line`` (last word: the one typed)."""
    words = line.split(" ")
    return {"_GENCLI_COMPLETE": "complete_bash", "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)}


# the installed console script, as a shell runs it (python -m gencli where there is none)
_SCRIPT = Path(sys.executable).parent / "gencli"
GENCLI = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "gencli"]
# (label, command, extra environment)
COMMANDS: list[tuple[str, list[str], dict[str, str]]] = [
    ("`python -c pass`", [sys.executable, "-c", "pass"], {}),
    ("`gencli --help`", [*GENCLI, "--help"], {}),
    ("Tab: `gencli train v<TAB>`", GENCLI, completion("gencli train v")),
    ("Tab: `gencli train vae --set <TAB>`", GENCLI, completion("gencli train vae --set ")),
    ("Tab: `gencli train vae --data m<TAB>`", GENCLI, completion("gencli train vae --data m")),
    ("Tab: `gencli sample ddpm --set <TAB>`", GENCLI, completion("gencli sample ddpm --set ")),
    ("Tab: `gencli train vae --s<TAB>` (option names: Typer)", GENCLI, completion("gencli train vae --s")),
    # the same value completion through Typer, as every completion ran before gencli.completion: before/after
    ("Tab: `gencli train vae --set <TAB>` through Typer (the path before)",
     [sys.executable, "-c", "from gencli.cli import main; main()"], completion("gencli train vae --set ")),
    ("`gencli models`", [*GENCLI, "models"], {}),
    ("`gencli models --info vae`", [*GENCLI, "models", "--info", "vae"], {}),
    ("`gencli datasets`", [*GENCLI, "datasets"], {}),
    ("`gencli datasets --info mnist`", [*GENCLI, "datasets", "--info", "mnist"], {}),
    ("`gencli plugins`", [*GENCLI, "plugins"], {}),
]


def wall(cmd: list[str], env: dict[str, str], runs: int) -> tuple[float, float, float]:
    """Return (min, median, max) wall seconds of ``runs`` fresh processes of ``cmd`` (after one warm-up)."""
    full_env = {k: v for k, v in {**os.environ, **env}.items() if k != "PYTHONDONTWRITEBYTECODE"}
    times = []
    for i in range(runs + 1):
        t = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, env=full_env)
        elapsed = time.perf_counter() - t
        if done.returncode != 0:
            raise SystemExit(f"{shlex.join(cmd)} failed: {done.stderr.decode()[-500:]}")
        if i:  # the first run warms the file cache
            times.append(elapsed)
    return min(times), statistics.median(times), max(times)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--write", type=Path, default=None, help="also write the section into this Markdown file")
    args = parser.parse_args(argv)
    rows = [(label, *wall(cmd, env, args.runs)) for label, cmd, env in COMMANDS]
    lines = section_head("CLI startup", "bench_startup.py", [shlex.quote(a) for a in argv], machine())
    lines += [f"Wall time of each command as a whole fresh process, {args.runs} runs after one warm-up. "
              "Completion is asked for as the bash completion script asks. None of these imports torch "
              "(tests/test_no_torch_paths.py checks it).", "",
              "| command | min (s) | median (s) | max (s) |", "|---|---:|---:|---:|"]
    lines += [f"| {label} | {low:.3f} | {median:.3f} | {high:.3f} |" for label, low, median, high in rows]
    publish("\n".join(lines) + "\n", args.write)


if __name__ == "__main__":
    main()
