"""Third-party plugins through real entry points: discovered, listed, trained; broken ones isolated."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

PLUGIN = '''
"""A third party's model: a tiny autoencoder, registered through the gencli entry point."""
from gencli.hookspecs import hookimpl
from gencli.registry import ModelSpec

GENCLI_API = {api}


@hookimpl
def gencli_register_models():
    return [ModelSpec("tinyae", "a third-party autoencoder", "{module}_model:TinyAE", "images")]
'''

MODEL = '''
import torch
from torch import nn
from gencli.models.base import Model, Hyperparameters, TrainDefaults


class TinyAE(Model):
    name = "tinyae"
    defaults = TrainDefaults(image_size=8, channels=3, batch_size=8, steps=5, sample_every=5, checkpoint_every=5)

    def build_networks(self):
        c, s = self.channels, self.image_size
        return {"ae": nn.Sequential(nn.Flatten(), nn.Linear(c * s * s, 4), nn.Linear(4, c * s * s), nn.Tanh())}

    def build_optimizers(self):
        return {"ae": torch.optim.Adam(self.nets["ae"].parameters(), lr=self.hp.lr)}

    def train_step(self, batch):
        with self.autocast():
            loss = (self.reconstruct(batch.images) - batch.images).pow(2).mean()
        self.optimize("ae", loss)
        return {"loss": loss.detach()}

    def reconstruct(self, x, labels=None):
        return self.nets["ae"](x).view_as(x)
'''


def make_distribution(root: Path, name: str, module: str, api: str = "2", broken: bool = False) -> None:
    """Write an installed distribution (a module and its .dist-info with entry points) under ``root``."""
    source = "raise RuntimeError('this plugin is broken')\n" if broken else PLUGIN.format(api=api, module=module)
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    (root / f"{module}_model.py").write_text(textwrap.dedent(MODEL))
    info = root / f"{name.replace('-', '_')}-1.2.3.dist-info"  # dist-info names are normalised
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[gencli]\n{module.replace('_', '-')} = {module}\n")


def gencli(root: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
    env.pop("GENCLI_LOAD_PLUGINS", None)  # these tests install third-party plugins on purpose
    return subprocess.run([sys.executable, "-m", "gencli", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def test_a_third_party_plugin_appears_trains_and_a_broken_one_is_reported(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    make_distribution(site, "gencli-tinyae", "gencli_tinyae")
    make_distribution(site, "gencli-broken", "gencli_broken", broken=True)
    make_distribution(site, "gencli-future", "gencli_future", api="(7,)")

    models = json.loads(gencli(site, "models", "--json", cwd=tmp_path).stdout)
    assert any(m["name"] == "tinyae" and m["plugin"] == "gencli-tinyae" for m in models)
    assert any(m["name"] == "vae" for m in models), "built-in models keep working"

    plugins = {p["name"]: p for p in json.loads(gencli(site, "plugins", "--json", cwd=tmp_path).stdout)}
    assert plugins["gencli-tinyae"]["status"] == "ok" and plugins["gencli-tinyae"]["version"] == "1.2.3"
    assert plugins["gencli-broken"]["status"] == "broken"
    assert "this plugin is broken" in plugins["gencli-broken"]["error"]
    assert "upgrade gencli" in plugins["gencli-future"]["error"]

    r = gencli(site, "-q", "train", "tinyae", "--out", "run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "run" / "run.json").read_text())["plugin"] == "gencli-tinyae"


def test_api_version_check():
    import types

    import pytest

    from gencli.plugins import check_api

    check_api(types.SimpleNamespace(GENCLI_API=2))
    check_api(types.SimpleNamespace(GENCLI_API=(2, 3)))
    with pytest.raises(RuntimeError, match="upgrade the plugin"):
        check_api(types.SimpleNamespace(GENCLI_API=1))  # the options-and-figures contract replaced API 1's
    with pytest.raises(RuntimeError, match="upgrade gencli"):
        check_api(types.SimpleNamespace(GENCLI_API=3))
    with pytest.raises(RuntimeError, match="declares no GENCLI_API"):
        check_api(types.SimpleNamespace())


def test_name_clashes_keep_the_builtin_and_report_the_other():
    import types

    from gencli.hookspecs import hookimpl
    from gencli.plugins import load_registry
    from gencli.registry import ModelSpec

    module = types.ModuleType("clash")
    module.GENCLI_API = 2
    module.gencli_register_models = hookimpl(lambda: [ModelSpec("vae", "impostor", "x:Y")])
    reg = load_registry(extra=[("clash", module)])
    assert reg.models["vae"].plugin == "vae"
    assert reg.models["clash:vae"].summary == "impostor"
    clash = next(p for p in reg.plugins if p.name == "clash")
    assert clash.shadowed and "kept from plugin 'vae'" in clash.shadowed[0]
