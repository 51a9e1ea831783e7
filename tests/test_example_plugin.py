"""The example third-party plugin (examples/gencli-plugin-autoencoder) installs, is listed and passes its tests.

When the distribution is installed (``pip install -e examples/gencli-plugin-autoencoder``) it is
used as installed. Otherwise it is installed the way pip would lay it out, without pip: its
``src`` folder and a ``.dist-info`` holding the metadata and entry points read from its own
pyproject.toml go on the ``PYTHONPATH`` of fresh interpreters. Either way the plugin is found
only through the ``gencli`` entry-point group, as any published plugin is.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gencli.models.hparams import tomllib

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "gencli-plugin-autoencoder"
PYPROJECT = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]


def _installed() -> bool:
    try:
        metadata.distribution(PYPROJECT["name"])
        return True
    except metadata.PackageNotFoundError:
        return False


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory) -> dict[str, str]:
    """Return the environment of an interpreter that has the example plugin installed."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if _installed():
        return env
    site = tmp_path_factory.mktemp("site")
    name = PYPROJECT["name"].replace("-", "_")
    info = site / f"{name}-{PYPROJECT['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {PYPROJECT['name']}\nVersion: {PYPROJECT['version']}\n")
    points = PYPROJECT["entry-points"]["gencli"]
    (info / "entry_points.txt").write_text("[gencli]\n" + "".join(f"{k} = {v}\n" for k, v in points.items()))
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(EXAMPLE / "src"), env.get("PYTHONPATH", "")])
    return env


def gencli(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gencli", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300)


def test_the_example_declares_a_gencli_entry_point_and_the_api_it_speaks():
    assert PYPROJECT["entry-points"]["gencli"] == {"autoencoder": "gencli_autoencoder.plugin"}
    assert any(dep.startswith("gencli") for dep in PYPROJECT["dependencies"]), "it must say which gencli it needs"
    plugin_source = (EXAMPLE / "src" / "gencli_autoencoder" / "plugin.py").read_text()
    assert "GENCLI_API = 2" in plugin_source and "import torch" not in plugin_source


def test_the_installed_plugin_is_listed_with_its_distribution_and_model(plugin_env, tmp_path):
    r = gencli(plugin_env, "models", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    models = {m["name"]: m for m in json.loads(r.stdout)}
    assert models["ae"]["plugin"] == "autoencoder" and models["ae"]["data"] == "images"
    assert "vae" in models, "the built-in models are still there"

    plugins = {p["name"]: p for p in json.loads(gencli(plugin_env, "plugins", "--json", cwd=tmp_path).stdout)}
    ae = plugins["autoencoder"]
    assert ae["status"] == "ok" and ae["models"] == ["ae"] and not ae["shadowed"]
    assert ae["distribution"] == PYPROJECT["name"] and ae["version"] == PYPROJECT["version"]

    info = json.loads(gencli(plugin_env, "models", "--info", "ae", "--json", cwd=tmp_path).stdout)
    assert set(info["capabilities"]) == {"sample", "encode", "decode", "reconstruct", "interpolate"}
    assert {h["name"] for h in info["hyperparameters"]} >= {"lr", "latent_dim", "widths", "prior_decay"}


def test_a_mistake_with_the_plugin_model_is_one_line_and_exit_code_2(plugin_env, tmp_path):
    r = gencli(plugin_env, "train", "ae", "--set", "prior_decay=1.5", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.strip() == "error: prior_decay must be in [0, 1), got 1.5", r.stderr


def test_the_example_passes_its_own_tests_and_the_conformance_kit(plugin_env):
    """Runs the example's test suite as its CI would: it calls gencli.testing.check_model("ae")."""
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                       capture_output=True, text=True, env=plugin_env, cwd=EXAMPLE, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert " passed" in r.stdout and "skipped" not in r.stdout and "failed" not in r.stdout
