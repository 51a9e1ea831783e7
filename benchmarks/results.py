"""Writing a benchmark's section into benchmarks/RESULTS.md (shared by the benchmark scripts)."""

from __future__ import annotations

import re
from pathlib import Path


def write_section(path: Path, section: str) -> None:
    """Put ``section`` (starting with its ``## `` heading) into ``path``: replacing its earlier version, else appended."""
    heading = section.splitlines()[0]
    text = path.read_text() if path.exists() else "# Benchmark results\n\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n")


def publish(section: str, path: Path | None) -> None:
    """Print a benchmark's section, and write it into ``path`` (RESULTS.md) when one is given."""
    print(section)
    if path:
        write_section(path, section)
