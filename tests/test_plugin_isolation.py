"""A plugin's failure stays with it: whatever breaks, the built-in models keep training and sampling.

Each test installs one third-party plugin (a module and its .dist-info, found through the real
``gencli`` entry-point group) on ``sys.path``, rediscovers plugins in this process, and then
trains and samples the built-in ``vae`` beside it, in the same process.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from cli_helpers import TINY_VAE

TINY_MODEL = '''
import torch
from torch import nn

from gencli import Model, TrainDefaults


class Tiny(Model):
    name = "{name}"
    defaults = TrainDefaults(image_size=8, channels=3, batch_size=8, steps=2, sample_every=2, checkpoint_every=2)
    test_overrides = {{}}

    def build_networks(self):
        c, s = self.channels, self.image_size
        return {{"ae": nn.Sequential(nn.Flatten(), nn.Linear(c * s * s, 4), nn.Linear(4, c * s * s), nn.Tanh())}}

    def build_optimizers(self):
        return {{"ae": torch.optim.Adam(self.nets["ae"].parameters(), lr=self.hp.lr)}}

    def train_step(self, batch):
        with self.autocast():
            loss = (self.reconstruct(batch.images) - batch.images).pow(2).mean()
        self.optimize("ae", loss)
        return {{"loss": loss.detach()}}

    def reconstruct(self, x, labels=None):
        return self.nets["ae"](x).view_as(x)
'''


def _forget_plugins() -> None:
    from gencli import plugins
    from gencli.cli.plugin_commands import plugin_commands

    plugins.registry.cache_clear()
    plugin_commands.cache_clear()
    plugins._warned.clear()


@pytest.fixture
def install(tmp_path, monkeypatch):
    """install(entry_point, source, model=None) -> module name: a plugin discovered by this process."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    modules: list[str] = []

    def _install(entry_point: str, source: str, model_name: str | None = None) -> str:
        module = "gencli_iso_" + entry_point.replace("-", "_")
        (site / f"{module}.py").write_text(textwrap.dedent(source).replace("MODULE", module))
        if model_name is not None:
            (site / f"{module}_model.py").write_text(TINY_MODEL.format(name=model_name))
        dist = f"gencli-iso-{entry_point}"
        info = site / f"{dist.replace('-', '_')}-0.1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
        (info / "entry_points.txt").write_text(f"[gencli]\n{entry_point} = {module}\n")
        modules.extend([module, f"{module}_model"])
        chosen = set(filter(None, __import__("os").environ["GENCLI_LOAD_PLUGINS"].split(",")))
        monkeypatch.setenv("GENCLI_LOAD_PLUGINS", ",".join(sorted(chosen | {"core", "vae", entry_point})))
        _forget_plugins()
        return module

    monkeypatch.setenv("GENCLI_LOAD_PLUGINS", "core,vae")
    yield _install
    _forget_plugins()
    for module in modules:
        sys.modules.pop(module, None)


def plugin_rows(cli) -> dict[str, dict]:
    result = cli("plugins", "--json")
    assert result.exit_code == 0, result.output
    return {p["name"]: p for p in json.loads(result.stdout)}


def assert_vae_trains_and_samples(cli, tmp_path: Path) -> None:
    """The built-in vae trains two tiny steps and samples, in this process, beside the broken plugin."""
    run = tmp_path / "vae-run"
    trained = cli("-q", "train", "vae", "--steps", "2", "--out", run, *TINY_VAE)
    assert trained.exit_code == 0, trained.output
    grid = tmp_path / "samples.png"
    sampled = cli("sample", run, "--n", "2", "--out", grid)
    assert sampled.exit_code == 0, sampled.output
    assert grid.is_file()
    models = {m["name"] for m in json.loads(cli("models", "--json").stdout)}
    assert {"vae", "beta-vae"} <= models
    datasets = {d["name"] for d in json.loads(cli("datasets", "--json").stdout)}
    assert "shapes" in datasets, "the core's datasets keep working"


GOOD = '''
from gencli import ModelSpec, hookimpl
GENCLI_API = 2

@hookimpl
def gencli_register_models():
    return [ModelSpec("isogood", "a neighbour that works", "MODULE_model:Tiny")]
'''

FAULTS = {
    "unknown-hook": ('''
        from gencli import ModelSpec, hookimpl
        GENCLI_API = 2

        @hookimpl
        def gencli_register_model():
            return [ModelSpec("btcvae", "misspelt hook", "MODULE_model:Tiny")]
     ''', "implements gencli_register_model, which is no gencli hook; did you mean 'gencli_register_models'?"),
    "wrong-signature": ('''
        from gencli import ModelSpec, hookimpl
        GENCLI_API = 2

        @hookimpl
        def gencli_register_models(app):
            return [ModelSpec("btcvae", "takes an argument its spec does not give", "MODULE_model:Tiny")]
     ''', "gencli_register_models takes arguments its spec does not give"),
    "import-error": ('''
        import gencli_no_such_dependency
     ''', "ModuleNotFoundError: No module named 'gencli_no_such_dependency'"),
    "api-version": ('''
        from gencli import ModelSpec, hookimpl
        GENCLI_API = 1

        @hookimpl
        def gencli_register_models():
            return [ModelSpec("btcvae", "written for API 1", "MODULE_model:Tiny")]
     ''', "plugin speaks API (1,) but this gencli speaks 2: upgrade the plugin"),
    "hook-raises": ('''
        from gencli import hookimpl
        GENCLI_API = 2

        @hookimpl
        def gencli_register_models():
            raise ValueError("first line of a long story\\nsecond line\\nthird line")
     ''', "gencli_register_models raised ValueError: first line of a long story second line third line"),
    "hook-exits": ('''
        import sys
        from gencli import hookimpl
        GENCLI_API = 2

        @hookimpl
        def gencli_register_datasets():
            sys.exit(4)
     ''', "gencli_register_datasets called sys.exit(4)"),
    "wrong-type": ('''
        from gencli import ModelSpec, hookimpl
        GENCLI_API = 2

        @hookimpl
        def gencli_register_models():
            return ModelSpec("btcvae", "not in a list", "MODULE_model:Tiny")
     ''', "gencli_register_models returned ModelSpec, expected a list of ModelSpec"),
    "wrong-item-type": ('''
        from gencli import DatasetSpec, ModelSpec, hookimpl
        GENCLI_API = 2

        @hookimpl
        def gencli_register_models():
            return [ModelSpec("btcvae", "fine", "MODULE_model:Tiny"), DatasetSpec("x", "wrong kind of spec", "a:b")]
     ''', "gencli_register_models returned a list holding DatasetSpec, expected a list of ModelSpec"),
    "unmarked-hook": ('''
        from gencli import ModelSpec
        GENCLI_API = 2

        def gencli_register_models():
            return [ModelSpec("btcvae", "forgot @hookimpl", "MODULE_model:Tiny")]
     ''', "gencli_register_models is not marked as a hook implementation: decorate it with @hookimpl"),
}


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_a_broken_plugin_is_listed_in_one_line_and_everything_else_keeps_working(kind, install, cli, tmp_path):
    source, message = FAULTS[kind]
    install("isobroken", source, model_name="btcvae")
    install("isogood", GOOD, model_name="isogood")
    plugins = plugin_rows(cli)
    broken = plugins["isobroken"]
    assert broken["status"] == "broken" and message in broken["error"], broken["error"]
    assert "\n" not in broken["error"] and not broken["models"] and not broken["datasets"]
    assert plugins["vae"]["status"] == "ok" and "vae" in plugins["vae"]["models"]
    assert plugins["core"]["status"] == "ok" and "shapes" in plugins["core"]["datasets"]
    assert plugins["isogood"]["status"] == "ok" and plugins["isogood"]["models"] == ["isogood"]
    unknown = cli("train", "nosuchmodel")
    assert unknown.exit_code == 2 and unknown.stderr.count("\n") == 1, unknown.stderr
    assert "plugin 'isobroken' (gencli-iso-isobroken) failed to load" in unknown.stderr
    assert_vae_trains_and_samples(cli, tmp_path)


def test_a_broken_plugin_contributes_nothing_even_what_it_registered_before_failing(install, cli):
    install("isohalf", '''
        from gencli import ModelSpec, hookimpl
        GENCLI_API = 2

        @hookimpl
        def gencli_register_models():
            return [ModelSpec("halfway", "registered before the plugin broke", "MODULE_model:Tiny")]

        @hookimpl
        def gencli_register_datasets():
            return "not a list"
    ''', model_name="halfway")
    from gencli.plugins import registry

    assert "halfway" not in registry().models and "isohalf:halfway" not in registry().models
    assert "gencli_register_datasets returned str" in registry().plugin("isohalf").error


def test_what_a_plugin_prints_while_loading_never_reaches_json_output(install, cli, tmp_path):
    install("isochatty", '''
        from gencli import ModelSpec, hookimpl
        print("hello from the plugin's import")
        GENCLI_API = 2

        @hookimpl
        def gencli_register_models():
            print("hello from the plugin's hook")
            return [ModelSpec("chatty", "prints while it loads", "MODULE_model:Tiny")]
    ''', model_name="chatty")
    first = cli("models", "--json")  # discovers the plugins: the prints go to stderr
    assert "hello from the plugin's import" in first.stderr and "hello from the plugin's hook" in first.stderr
    for args in (["models", "--json"], ["plugins", "--json"], ["datasets", "--json"]):
        result = first if args == ["models", "--json"] else cli(*args)
        assert result.exit_code == 0, result.output
        json.loads(result.stdout)  # nothing but JSON on stdout
    assert "chatty" in {m["name"] for m in json.loads(cli("models", "--json").stdout)}


def test_a_plugin_that_blocks_while_loading_is_named_on_stderr(install, cli, monkeypatch):
    from gencli import plugins

    monkeypatch.setattr(plugins, "SLOW_SECONDS", 0.2)
    install("isosleepy", '''
        import time
        from gencli import ModelSpec, hookimpl
        time.sleep(0.8)
        GENCLI_API = 2

        @hookimpl
        def gencli_register_models():
            return [ModelSpec("sleepy", "slow to import", "MODULE_model:Tiny")]
    ''', model_name="sleepy")
    result = cli("models", "--json")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if "isosleepy" in line]
    assert len(lines) == 1 and "still importing plugin 'isosleepy' (gencli-iso-isosleepy)" in lines[0]
    assert "GENCLI_LOAD_PLUGINS" in lines[0]
    fast = cli("models", "--json")  # discovered once per process: nothing more to say
    assert "still importing" not in fast.stderr


CLASH = '''
from gencli import DatasetSpec, ModelSpec, hookimpl
GENCLI_API = 2

@hookimpl
def gencli_register_models():
    return [ModelSpec("beta-vae", "a third party's beta-TCVAE under a built-in's name", "MODULE_model:Tiny")]

@hookimpl
def gencli_register_datasets():
    return [DatasetSpec("shapes", "a third party's shapes", "gencli.data.builtin:no_such_builder")]
'''


def test_a_name_clash_warns_on_every_listing_and_resolution_and_the_qualified_name_resolves(install, cli, tmp_path):
    install("isoclash", CLASH, model_name="beta-vae")
    listing = cli("models", "--json")
    assert listing.exit_code == 0
    expected = ("model 'beta-vae' is registered by plugins 'vae' and 'isoclash'; 'beta-vae' means plugin 'vae''s, "
                "use 'isoclash:beta-vae' for the other")
    assert expected in listing.stderr
    assert {m["name"]: m["plugin"] for m in json.loads(listing.stdout)}["beta-vae"] == "vae"
    from gencli.plugins import _warned

    _warned.clear()
    datasets = cli("datasets", "--json")
    assert "dataset 'shapes' is registered by plugins 'core' and 'isoclash'" in datasets.stderr
    assert "use 'isoclash:shapes'" in datasets.stderr
    _warned.clear()
    listed = cli("plugins", "--json")
    assert expected in listed.stderr
    shadowed = {p["name"]: p["shadowed"] for p in json.loads(listed.stdout)}["isoclash"]
    assert any("use 'isoclash:beta-vae'" in s for s in shadowed)
    _warned.clear()
    ours = cli("-q", "train", "isoclash:beta-vae", "--steps", "2", "--out", tmp_path / "ours")
    assert ours.exit_code == 0, ours.output
    info = json.loads((tmp_path / "ours" / "run.json").read_text())
    assert info["plugin"] == "isoclash"
    builtin = cli("-q", "train", "beta-vae", "--steps", "2", "--out", tmp_path / "builtin", *TINY_VAE)
    assert builtin.exit_code == 0, builtin.output
    assert expected in builtin.stderr
    assert json.loads((tmp_path / "builtin" / "run.json").read_text())["plugin"] == "vae"


# --------------------------------------------------------------------------- the kit fails on every such fault
def _kit_env(monkeypatch, site: Path) -> None:
    """check_plugin probes in a fresh interpreter: it must find the test's site folder too."""
    import os

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH", "")])))


def test_check_plugin_fails_a_misspelt_hook_and_a_name_another_installed_plugin_has(install, monkeypatch, tmp_path):
    from gencli.testing import ConformanceError, check_plugin

    misspelt = install("isomisspelt", FAULTS["unknown-hook"][0], model_name="btcvae")
    clashing = install("isoclash", CLASH, model_name="beta-vae")
    _kit_env(monkeypatch, tmp_path / "site")
    with pytest.raises(ConformanceError) as caught:
        check_plugin(misspelt, clashing)  # one fresh interpreter for both
    said = str(caught.value)
    assert f"{misspelt}: implements gencli_register_model, which is no gencli hook; did you mean 'gencli_register_models'?" in said
    assert f"{clashing}: model 'beta-vae' is also registered by plugin 'vae' (gencli)" in said
    assert f"{clashing}: dataset 'shapes' is also registered by plugin 'core' (gencli)" in said


def test_check_model_refuses_a_clashing_name_and_a_model_of_another_plugin(install):
    from gencli.testing import ConformanceError, check_declarations, check_model

    install("isoclash", CLASH, model_name="beta-vae")
    install("isogood", GOOD, model_name="isogood")
    with pytest.raises(ConformanceError, match="registered by plugins 'vae' and 'isoclash'.*'isoclash:beta-vae'"):
        check_model("beta-vae")  # would otherwise test the built-in class and pass
    with pytest.raises(ConformanceError, match="registered by plugins 'vae' and 'isoclash'"):
        check_declarations("beta-vae")
    with pytest.raises(ConformanceError, match="registered by plugin 'vae' \\(gencli\\), not by 'isogood'.*plugin under test"):
        check_model("vae", plugin="isogood")
    check_declarations("isoclash:beta-vae")  # the qualified name is unambiguous


def _figure_model(captions_take_data: bool, figure_raises: bool = False):
    """A tiny autoencoder with a needs_data figure, written as a plugin author following the guide would."""
    import dataclasses

    import torch
    from torch import nn

    from gencli import Figure, Model, Options, TrainDefaults

    @dataclasses.dataclass
    class ColumnOptions(Options):
        columns: int = dataclasses.field(default=2, metadata={"help": "images per row"})

    class WithFigure(Model):
        name = "iso-figure"
        summary = "a linear autoencoder with a reconstructions figure"
        defaults = TrainDefaults(image_size=8, channels=3, batch_size=4, steps=2, sample_every=2, checkpoint_every=2)
        figures = {"reconstructions": Figure("held-out images above their reconstructions", ColumnOptions, needs_data=True)}

        def build_networks(self):
            c, s = self.channels, self.image_size
            return {"ae": nn.Sequential(nn.Flatten(), nn.Linear(c * s * s, 4), nn.Linear(4, c * s * s), nn.Tanh())}

        def build_optimizers(self):
            return {"ae": torch.optim.Adam(self.nets["ae"].parameters(), lr=self.hp.lr)}

        def train_step(self, batch):
            loss = (self.reconstruct(batch.images) - batch.images).pow(2).mean()
            self.optimize("ae", loss)
            return {"loss": loss.detach()}

        def reconstruct(self, x, labels=None):
            return self.nets["ae"](x).view_as(x)

        def figure(self, kind, n, generator=None, data=None, columns=2):
            from gencli.data.base import to_float

            if figure_raises:
                raise KeyError("columns")
            x = to_float(data.images[:columns]).to(self.device)
            return torch.cat([x, self.reconstruct(x)]), len(x)

        if captions_take_data:
            def figure_captions(self, kind, n=None, columns=2, **options):
                return None, ["original", "reconstruction"]
        else:
            def figure_captions(self, kind, n=None, columns=2):
                return None, ["original", "reconstruction"]

    return WithFigure


@pytest.mark.parametrize("captions_take_data, figure_raises, message", [
    (False, False, "figure_captions('reconstructions', n, columns, data) raised TypeError: "),
    (True, True, "check_capabilities met KeyError: 'columns' (at test_plugin_isolation.py:"),
], ids=["captions-signature", "figure-raises"])
def test_a_crash_in_model_code_leaves_the_kit_as_a_conformance_error(tmp_path, captions_take_data, figure_raises, message):
    from gencli import testing

    settings = testing.Settings(workdir=tmp_path)
    cls = _figure_model(captions_take_data, figure_raises)
    run_dir = testing.check_training(cls, settings)
    with pytest.raises(testing.ConformanceError) as caught:
        testing.check_capabilities(run_dir, settings, model=cls)
    assert message in str(caught.value)
    if not figure_raises:
        assert "plus data= when the figure needs_data" in str(caught.value)
    testing.check_capabilities(run_dir, settings, model=_figure_model(True))  # the signature the guide gives passes
