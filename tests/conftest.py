"""Shared fixtures: every test runs offline, in temp folders, on the CPU, with tiny images."""

from __future__ import annotations

import os

import pytest

# Small, repeatable CPU work: one thread per test process keeps runs deterministic and lets
# the suite share two cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Only the project's own plugins, whatever else is installed where the tests run (tests of
# third-party plugins clear it for the processes they start).
os.environ["GENCLI_LOAD_PLUGINS"] = "core,vae,gan,stylegan,translation,diffusion,autoencoder"


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Point the dataset cache, system dataset folder and runs folder at temp folders for every test; start unquiet."""
    monkeypatch.setenv("GENCLI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GENCLI_RUNS_DIR", str(tmp_path / "runs"))
    # No dataset installed on the machine running the tests (a Debian dataset package) is found.
    monkeypatch.setenv("GENCLI_SYSTEM_DATASETS", str(tmp_path / "system-datasets"))
    monkeypatch.delenv("GENCLI_DATASET_PATH", raising=False)
    import torch

    from gencli.ui import console

    monkeypatch.setattr(console, "quiet", False)  # an in-process `gencli --quiet` sets it for later calls

    torch.set_num_threads(1)
    yield


@pytest.fixture
def cli():
    """In-process CLI runner: result.exit_code, result.stdout, result.stderr."""
    from typer.testing import CliRunner

    from gencli.cli import app

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args])

    return invoke
