"""Helpers for tests that run the CLI in a fresh process (a module name no test folder reuses)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TINY_VAE = ["--set", "widths=8,16", "--image-size", "16", "--batch-size", "16"]


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``python -m gencli ARGS`` in a fresh process; return the completed process."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "gencli", *args], capture_output=True, text=True,
                          cwd=cwd, env=full_env, timeout=timeout)
