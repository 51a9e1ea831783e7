"""The Fashion-MNIST commands the model pages show run as written, on a stand-in of the Debian package's folder.

Each ``gencli train`` line of a page's "Fashion-MNIST" section runs for one step on tiny IDX files
placed where `dataset-fashion-mnist` puts the real ones (``GENCLI_SYSTEM_DATASETS``), with the
model's test sizes added: the names, the lookup and the options are the page's.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import pytest
from cli_helpers import run_cli

sys.path.insert(0, str(Path(__file__).resolve().parent / "data"))
from idx_helpers import write_idx_folder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SECTION = re.compile(r"^## Fashion-MNIST.*?(?=^## |\Z)", re.S | re.M)
BLOCK = re.compile(r"```bash\n(.*?)```", re.S)


def page_commands() -> list[tuple[str, str]]:
    found = []
    for page in sorted((ROOT / "docs" / "models").glob("*.md")):
        for section in SECTION.findall(page.read_text()):
            for block in BLOCK.findall(section):
                found += [(page.name, line.strip()) for line in block.splitlines() if line.startswith("gencli train")]
    return found


COMMANDS = page_commands()


def test_the_pages_show_fashion_mnist_commands():
    assert {page for page, _ in COMMANDS} >= {"vae.md", "gan.md", "diffusion.md"}


@pytest.mark.parametrize("page,line", COMMANDS, ids=[f"{p}: {c}" for p, c in COMMANDS])
def test_a_fashion_mnist_command_of_a_page_trains(page, line, tmp_path):
    from gencli.plugins import registry

    system = tmp_path / "system"
    write_idx_folder(system / "fashion-mnist", n_train=40, n_test=20, size=12, classes=10)
    args = shlex.split(line)[1:]
    model = args[1]
    tiny = [a for k, v in registry().model_class(model).test_overrides.items()
            for a in ("--set", f"{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}")]
    out = tmp_path / "run"
    done = run_cli(*args, "--steps", "1", "--image-size", "16", "--batch-size", "4", "--out", str(out), "--device",
                   "cpu", *tiny, env={"GENCLI_SYSTEM_DATASETS": str(system), "GENCLI_DATASET_PATH": "",
                                      "GENCLI_DATA_DIR": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "finished" and info["data"]["size"] == 40
    assert info["data"]["image_shape"] == [1, 16, 16]
