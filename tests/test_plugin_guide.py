"""The plugin guide is executed: its tutorial's files become a package that installs, passes its tests and runs.

Every code block of the tutorial in ``docs/plugins.md`` that names a file in its info string
(``python title="src/gencli_btcvae/model.py"`` after the fence) is part of that file; blocks with the
same title are concatenated in order. The package is installed with ``gencli plugins install``
into a fresh environment that sees this one's packages, offline, then tested and used.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest

import gencli

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "plugins.md"
TITLED = re.compile(r'^```\w+ title="([^"]+)"\n(.*?)^```$', re.M | re.S)


def tutorial_files(text: str) -> dict[str, str]:
    """Return {path: source} from the guide's titled code blocks."""
    files: dict[str, str] = {}
    for title, body in TITLED.findall(text):
        files[title] = files.get(title, "") + body
    return files


def child_environment(where: Path) -> Path:
    """Make a virtual environment that also sees this interpreter's packages; return its python."""
    venv.EnvBuilder(with_pip=False).create(where)
    python = where / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    parent = sysconfig.get_paths()["purelib"]
    # addsitedir also runs the parent's .pth files, so editable installs (gencli's own) are seen
    Path(purelib, "parent_site.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    return python


def test_every_api_version_the_docs_mention_is_the_one_gencli_speaks():
    pages = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md",
             ROOT / "examples" / "gencli-plugin-autoencoder" / "README.md"]
    patterns = [r"GENCLI_API\s*=\s*\(?\s*(\d+)", r"API_VERSION`?\s*\(now (\d+)\)", r"this gencli speaks (\d+)"]
    found = [(page.relative_to(ROOT).as_posix(), int(m.group(1)))
             for page in pages for pattern in patterns for m in re.finditer(pattern, page.read_text())]
    assert len(found) >= 6, found
    wrong = [(page, version) for page, version in found if version != gencli.API_VERSION]
    assert not wrong, f"these mention an API version other than gencli.API_VERSION = {gencli.API_VERSION}: {wrong}"


def test_the_tutorial_names_every_file_of_a_plugin():
    files = tutorial_files(GUIDE.read_text())
    assert {"pyproject.toml", "src/gencli_btcvae/__init__.py", "src/gencli_btcvae/plugin.py",
            "src/gencli_btcvae/model.py", "tests/test_btcvae.py"} <= set(files)
    assert "title=" in GUIDE.read_text().split("## Tutorial")[1].split("###")[0], "the convention is stated up front"


@pytest.mark.slow
def test_the_tutorial_plugin_installs_passes_its_tests_and_trains_samples_and_draws(tmp_path):
    package = tmp_path / "gencli-btcvae"
    for path, source in tutorial_files(GUIDE.read_text()).items():
        (package / path).parent.mkdir(parents=True, exist_ok=True)
        (package / path).write_text(source)
    python = child_environment(tmp_path / "env")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GENCLI_LOAD_PLUGINS": "core,vae,btcvae",
           "PIP_NO_INDEX": "1", "PIP_NO_DEPS": "1", "PIP_NO_BUILD_ISOLATION": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)

    def gencli_(*args: str, cwd: Path = tmp_path) -> subprocess.CompletedProcess:
        return subprocess.run([str(python), "-m", "gencli", *args], capture_output=True, text=True, env=env, cwd=cwd,
                              timeout=300)

    installed = gencli_("plugins", "install", str(package))
    assert installed.returncode == 0, installed.stderr[-3000:]
    assert re.search(r"^btcvae\tgencli-btcvae\t0\.1\.0\tok$", installed.stdout, re.M), installed.stdout
    plugins = {p["name"]: p for p in json.loads(gencli_("plugins", "--json").stdout)}
    assert plugins["btcvae"]["status"] == "ok" and plugins["btcvae"]["models"] == ["btcvae"], plugins.get("btcvae")

    tests = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], capture_output=True,
                           text=True, env=env, cwd=package, timeout=600)
    assert tests.returncode == 0 and "2 passed" in tests.stdout, tests.stdout[-3000:] + tests.stderr[-2000:]

    trained = gencli_("-q", "train", "btcvae", "--steps", "2", "--image-size", "8", "--batch-size", "8", "--out", "run",
                      "--set", "hidden=16", "--set", "latent_dim=3")
    assert trained.returncode == 0, trained.stderr[-3000:]
    sampled = gencli_("sample", "run", "--n", "4", "--set", "temperature=0.5", "--out", "cool.png")
    assert sampled.returncode == 0 and (tmp_path / "cool.png").is_file(), sampled.stderr[-3000:]
    drawn = gencli_("sample", "run", "--figure", "traversals", "--set", "span=3", "--out", "traversals.png")
    assert drawn.returncode == 0 and (tmp_path / "traversals.png").is_file(), drawn.stderr[-3000:]

    removed = gencli_("plugins", "uninstall", "btcvae")
    assert removed.returncode == 0, removed.stderr[-3000:]
    assert "btcvae" not in {p["name"] for p in json.loads(gencli_("plugins", "--json").stdout)}
    refused = gencli_("plugins", "uninstall", "vae")
    assert refused.returncode == 2 and "part of gencli itself" in refused.stderr and refused.stderr.count("\n") == 1
