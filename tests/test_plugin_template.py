"""`gencli plugins new NAME`: the package it writes installs, is discovered and passes the conformance kit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import run_cli


def _env(site: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    env.pop("GENCLI_LOAD_PLUGINS", None)
    return env


@pytest.mark.slow
def test_a_generated_plugin_installs_is_discovered_and_passes_the_conformance_kit(tmp_path):
    r = run_cli("plugins", "new", "toy-ae", "--out", str(tmp_path / "gencli-toy-ae"))
    assert r.returncode == 0, r.stderr
    package = tmp_path / "gencli-toy-ae"
    assert (package / "src" / "gencli_toy_ae" / "model.py").is_file()
    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                              "--target", str(site), str(package)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    env = _env(site)
    models = subprocess.run([sys.executable, "-m", "gencli", "models", "--info", "toy-ae", "--json"], capture_output=True,
                            text=True, env=env, cwd=tmp_path, timeout=120)
    assert models.returncode == 0, models.stderr
    info = json.loads(models.stdout)
    assert info["plugin"] == "toy-ae" and [o["name"] for o in info["options"]["sample"]] == ["temperature"]
    assert info["figures"][0]["name"] == "reconstructions"
    kit = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package / "tests")],
                         capture_output=True, text=True, env=env, cwd=package, timeout=600)
    assert kit.returncode == 0, kit.stdout[-3000:] + kit.stderr[-2000:]
    assert "2 passed" in kit.stdout


@pytest.mark.parametrize("name, message", [
    ("Bad_Name", "use lower-case letters, digits and hyphens"),
    ("9lives", "starting with a letter"),
])
def test_bad_plugin_names_are_refused_in_one_line(tmp_path, name, message):
    r = run_cli("plugins", "new", name, cwd=tmp_path)
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1
    assert not any(tmp_path.iterdir())


def test_an_existing_folder_is_never_overwritten(tmp_path):
    target = tmp_path / "gencli-x"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    r = run_cli("plugins", "new", "x", "--out", str(target))
    assert r.returncode == 2 and "already exists" in r.stderr
    assert [p.name for p in target.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize("name, taken", [
    ("vae", "the plugin 'vae' of gencli has that entry-point name"),  # a built-in plugin's entry point and package
    ("core", "the plugin 'core' of gencli has that entry-point name"),
    ("beta-vae", "plugin 'vae' already has a model named 'beta-vae'"),
    ("autoencoder", "the plugin 'autoencoder' of gencli-plugin-autoencoder has that entry-point name"),
])
def test_a_name_already_in_use_is_refused_and_nothing_is_written(tmp_path, monkeypatch, cli, name, taken):
    monkeypatch.chdir(tmp_path)
    r = cli("plugins", "new", name)
    assert r.exit_code == 2 and f"plugin name {name!r} is taken: {taken}" in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and not any(tmp_path.iterdir())


def test_the_name_check_sees_an_import_package_and_a_distribution():
    from gencli.cli.plugins import name_in_use

    assert "lives in the import package 'gencli_vae'" in name_in_use("zz-unused", "gencli_vae", "gencli-zz-unused")
    assert "import package 'pluggy' is already installed" in name_in_use("zz-unused", "pluggy", "gencli-zz-unused")
    assert "installed distribution 'gencli'" in name_in_use("zz-unused", "gencli_zz_unused", "gencli")
    assert name_in_use("zz-unused", "gencli_zz_unused", "gencli-zz-unused") is None
