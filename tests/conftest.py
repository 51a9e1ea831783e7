"""Shared fixtures: every test runs offline, in temp folders, on the CPU, with tiny images."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Small, repeatable CPU work: one thread per test process keeps runs deterministic and lets
# the suite share two cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")

TINY_VAE = ["--set", "widths=8,16", "--image-size", "16", "--batch-size", "16"]


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Point the dataset cache and the runs folder at temp folders for every test."""
    monkeypatch.setenv("GENCLI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GENCLI_RUNS_DIR", str(tmp_path / "runs"))
    import torch

    torch.set_num_threads(1)
    yield


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``python -m gencli ARGS`` in a fresh process; return the completed process."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "gencli", *args], capture_output=True, text=True,
                          cwd=cwd, env=full_env, timeout=timeout)


@pytest.fixture
def cli():
    """In-process CLI runner: result.exit_code, result.stdout, result.stderr."""
    from typer.testing import CliRunner

    from gencli.cli import app

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args])

    return invoke
