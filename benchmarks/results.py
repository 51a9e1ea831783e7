"""Writing a benchmark's section into benchmarks/RESULTS.md (shared by the benchmark scripts)."""

from __future__ import annotations

import datetime
import os
import platform
import re
import shlex
from pathlib import Path
from typing import Any


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


def machine(device=None) -> dict[str, Any]:
    """The facts a figure needs beside it: machine, device, cores, threads, versions, load, date."""
    import torch

    on_cuda = device is not None and torch.device(device).type == "cuda"
    return {
        "machine": f"{platform.system()} {platform.machine()}",
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(device) if on_cuda else "CPU",
        "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"),
        "date": datetime.date.today().isoformat(),
    }


def machine_line(info: dict[str, Any]) -> str:
    """``machine()``'s facts as the sentence under a section's command line."""
    return (f"{info['machine']}, {info['device']}, {info['cpus']} CPU cores, {info['threads']} torch threads, "
            f"Python {info['python']}, torch {info['torch']}; load average {info['load']:.1f} at the end of the run; "
            f"{info['date']}.")


def section_head(title: str, script: str, argv: list[str], info: dict[str, Any]) -> list[str]:
    """A section's first lines: its heading, the command that wrote it, and ``machine_line(info)``."""
    command = shlex.join([f"benchmarks/{script}", *argv])
    return [f"## {title}", "", f"`python {command}`", "", machine_line(info), ""]


def selected_configs(configs: list[tuple], models: str) -> list[tuple]:
    """The configurations ``--models`` names (by configuration or model name; all when empty) whose
    model is installed; the others are skipped with a printed line."""
    from gencli.plugins import registry

    wanted = set(filter(None, models.split(",")))
    out = []
    for config in configs:
        if wanted and config[0] not in wanted and config[1] not in wanted:
            continue
        if config[1] not in registry().models:
            print(f"{config[0]} skipped: model {config[1]!r} is not installed")
            continue
        out.append(config)
    return out
