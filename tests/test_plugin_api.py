"""Plugin API v2: model-declared options and figures, plugin commands, plugin selection, the contract."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PLUGIN = '''
"""A third party's model with its own sampling option, figure and commands."""
from gencli import ModelSpec, hookimpl

GENCLI_API = 2


@hookimpl
def gencli_register_models():
    return [ModelSpec("knobby", "a third-party model with its own knobs", "gencli_knobby_model:Knobby", "images")]


@hookimpl
def gencli_register_commands(app):
    @app.command("models")
    def impostor():
        print("IMPOSTOR")

    @app.command("knobby-hello")
    def hello():
        print("hello from knobby")

    @app.command("knobby-fail")
    def fail():
        from gencli import UserError

        raise UserError("knobby cannot do that")
'''

MODEL = '''
from dataclasses import dataclass, field

import torch
from torch import nn

from gencli import Figure, Model, Options, TrainDefaults, UserError


@dataclass
class KnobbyOptions(Options):
    brightness: int = field(default=0, metadata={"help": "added to every pixel, in 1/10ths"})


@dataclass
class StripeOptions(Options):
    stripes: int = field(default=2, metadata={"help": "how many stripes"})

    def validate(self):
        if self.stripes < 1:
            raise UserError(f"stripes must be at least 1, got {self.stripes}")


class Knobby(Model):
    name = "knobby"
    SampleOptions = KnobbyOptions
    figures = {"stripes": Figure("vertical stripes, one image per stripe count", StripeOptions)}
    defaults = TrainDefaults(image_size=8, channels=3, batch_size=8, steps=2, sample_every=2, checkpoint_every=2)

    def build_networks(self):
        return {"g": nn.Linear(4, 3 * 8 * 8)}

    def build_optimizers(self):
        return {"g": torch.optim.SGD(self.nets["g"].parameters(), lr=0.01)}

    def train_step(self, batch):
        loss = self.nets["g"](torch.zeros(len(batch.images), 4)).pow(2).mean()
        self.optimize("g", loss)
        return {"loss": loss.detach()}

    def sample(self, n, labels=None, generator=None, brightness=0):
        base = torch.tanh(self.nets["g"](torch.randn(n, 4, generator=generator))).view(n, 3, 8, 8)
        return (base * 0 + brightness / 10).clamp(-1, 1)

    def figure(self, kind, n, generator=None, stripes=2):
        x = torch.full((stripes, 3, 8, 8), -1.0)
        for i in range(stripes):
            x[i, :, :, i % 8] = 1.0
        return x, stripes
'''


def _install(site: Path) -> None:
    (site / "gencli_knobby.py").write_text(textwrap.dedent(PLUGIN))
    (site / "gencli_knobby_model.py").write_text(textwrap.dedent(MODEL))
    info = site / "gencli_knobby-0.3.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gencli-knobby\nVersion: 0.3.0\n")
    (info / "entry_points.txt").write_text("[gencli]\nknobby = gencli_knobby\n")


def gencli(site: Path, *args: str, cwd: Path, select: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    env.pop("GENCLI_LOAD_PLUGINS", None)
    if select is not None:
        env["GENCLI_LOAD_PLUGINS"] = select
    return subprocess.run([sys.executable, "-m", "gencli", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300)


@pytest.fixture(scope="module")
def knobby(tmp_path_factory):
    """(site folder with the plugin installed, a trained knobby run, a work folder)."""
    work = tmp_path_factory.mktemp("knobby")
    site = work / "site"
    site.mkdir()
    _install(site)
    r = gencli(site, "-q", "train", "knobby", "--out", "run", cwd=work)
    assert r.returncode == 0, r.stderr
    return site, work / "run", work


def test_a_plugin_option_reaches_the_model_and_bad_ones_are_refused_by_name(knobby):
    import imageio.v3 as iio

    site, run, work = knobby
    r = gencli(site, "sample", str(run), "--set", "brightness=3", "--n", "4", "--out", "bright.png", cwd=work)
    assert r.returncode == 0, r.stderr
    pixels = iio.imread(work / "bright.png")
    inside = pixels[pixels.shape[0] // 4, pixels.shape[1] // 4, 0]  # the middle of the first image of 2 x 2
    assert abs(int(inside) - round((0.3 + 1) / 2 * 255)) <= 1  # the option changed the images
    bad = gencli(site, "sample", str(run), "--set", "nosuch=1", cwd=work)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    assert "unknown option 'nosuch'" in bad.stderr and "brightness" in bad.stderr
    typo = gencli(site, "sample", str(run), "--set", "brightnes=1", cwd=work)
    assert typo.returncode == 2 and "did you mean 'brightness'" in typo.stderr
    typed = gencli(site, "sample", str(run), "--set", "brightness=lots", cwd=work)
    assert typed.returncode == 2 and "bad value 'lots' for 'brightness'" in typed.stderr


def test_a_plugin_figure_is_drawn_named_and_saved_by_the_core(knobby):
    import imageio.v3 as iio

    site, run, work = knobby
    r = gencli(site, "sample", str(run), "--figure", "stripes", "--set", "stripes=3", "--out", "stripes.png", cwd=work)
    assert r.returncode == 0, r.stderr
    height, width = iio.imread(work / "stripes.png").shape[:2]
    factor = width // (2 + 3 * (8 + 2))  # three images in one row, enlarged by a whole factor to be read
    assert factor >= 1 and (height, width) == (factor * (2 + 8 + 2), factor * (2 + 3 * (8 + 2)))
    default = gencli(site, "sample", str(run), "--figure", "stripes", cwd=work)
    assert default.returncode == 0 and Path(default.stdout.strip()).name.startswith("stripes-")
    assert Path(default.stdout.strip()).parent == run / "generated"
    bad = gencli(site, "sample", str(run), "--figure", "stripes", "--set", "stripes=0", cwd=work)
    assert bad.returncode == 2 and "stripes must be at least 1, got 0" in bad.stderr
    none = gencli(site, "sample", str(run), "--figure", "spirals", cwd=work)
    assert none.returncode == 2 and "draws no figure 'spirals'" in none.stderr and "stripes" in none.stderr


def test_plugin_commands_join_but_never_replace_a_core_command(knobby):
    site, _, work = knobby
    core = gencli(site, "models", "--json", cwd=work)
    assert core.returncode == 0 and "IMPOSTOR" not in core.stdout
    assert any(m["name"] == "knobby" for m in json.loads(core.stdout))
    hello = gencli(site, "knobby-hello", cwd=work)
    assert hello.returncode == 0 and hello.stdout.strip() == "hello from knobby"
    failed = gencli(site, "knobby-fail", cwd=work)  # a plugin command's mistake is one line, exit 2, like ours
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert [line for line in failed.stderr.splitlines() if not line.startswith("warning:")] == ["error: knobby cannot do that"]
    listed = gencli(site, "--help", cwd=work)
    assert "knobby-hello" in listed.stdout
    warning = [line for line in listed.stderr.splitlines() if "clashes" in line]
    assert len(warning) == 1 and "'knobby'" in warning[0] and "'models'" in warning[0]
    plugins = {p["name"]: p for p in json.loads(gencli(site, "plugins", "--json", cwd=work).stdout)}
    assert plugins["knobby"]["commands"] == ["knobby-hello", "knobby-fail"] and plugins["knobby"]["models"] == ["knobby"]
    assert any("'models'" in s for s in plugins["knobby"]["shadowed"])


def test_models_info_lists_the_declared_options_and_figures(knobby):
    site, _, work = knobby
    info = json.loads(gencli(site, "models", "--info", "knobby", "--json", cwd=work).stdout)
    assert [o["name"] for o in info["options"]["sample"]] == ["brightness"]
    assert info["options"]["eval"] == info["options"]["sample"]  # eval samples as sample does
    assert info["figures"][0]["name"] == "stripes" and info["figures"][0]["options"][0]["name"] == "stripes"


def test_run_json_records_the_plugin_distribution_and_a_missing_plugin_is_named(knobby, tmp_path):
    site, run, work = knobby
    info = json.loads((run / "run.json").read_text())
    assert info["plugin"] == "knobby" and info["plugin_distribution"] == "gencli-knobby"
    assert info["plugin_version"] == "0.3.0" and info["schema"] == 1
    empty = tmp_path / "empty-site"
    empty.mkdir()
    r = gencli(empty, "sample", str(run), cwd=work)  # the plugin is not installed here
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "plugin 'knobby' (gencli-knobby 0.3.0)" in r.stderr and "not installed" in r.stderr
    left_out = gencli(site, "sample", str(run), cwd=work, select="vae")
    assert left_out.returncode == 2 and "GENCLI_LOAD_PLUGINS leaves out" in left_out.stderr


def test_gencli_load_plugins_selects_which_plugins_load(knobby):
    site, _, work = knobby
    only_vae = {m["name"] for m in json.loads(gencli(site, "models", "--json", cwd=work, select="vae").stdout)}
    assert "vae" in only_vae and "knobby" not in only_vae and "dcgan" not in only_vae
    by_distribution = json.loads(gencli(site, "models", "--json", cwd=work, select="gencli-knobby").stdout)
    assert [m["name"] for m in by_distribution] == ["knobby"]
    none = gencli(site, "plugins", "--json", cwd=work, select="")
    assert [p["name"] for p in json.loads(none.stdout)] == ["core"]  # the core's datasets and metrics only


def test_a_plugin_that_exits_or_fails_to_import_its_model_is_isolated(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "gencli_quitter.py").write_text("import sys\nsys.exit(3)\n")
    (site / "gencli_lame.py").write_text(textwrap.dedent('''
        from gencli import ModelSpec, hookimpl
        GENCLI_API = 2

        @hookimpl
        def gencli_register_models():
            return [ModelSpec("lame", "imports a module that does not exist", "gencli_no_such_module:Lame")]
    '''))
    for dist, module in (("gencli-quitter", "gencli_quitter"), ("gencli-lame", "gencli_lame")):
        meta = site / f"{dist.replace('-', '_')}-1.0.dist-info"
        meta.mkdir()
        (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        (meta / "entry_points.txt").write_text(f"[gencli]\n{module.removeprefix('gencli_')} = {module}\n")
    helped = gencli(site, "--help", cwd=tmp_path)
    assert helped.returncode == 0 and "train" in helped.stdout
    plugins = {p["name"]: p for p in json.loads(gencli(site, "plugins", "--json", cwd=tmp_path).stdout)}
    assert plugins["quitter"]["status"] == "broken" and "sys.exit(3)" in plugins["quitter"]["error"]
    for args in (["train", "lame"], ["models", "--info", "lame"]):
        r = gencli(site, *args, cwd=tmp_path)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
        assert "plugin 'lame' (gencli-lame) failed to load" in r.stderr and "gencli_no_such_module" in r.stderr
    unknown = gencli(site, "train", "nosuchmodel", cwd=tmp_path)
    assert unknown.returncode == 2 and "plugin 'quitter' (gencli-quitter) failed to load" in unknown.stderr


def test_help_imports_no_torch_and_version_loads_no_plugin():
    probe = textwrap.dedent('''
        import sys
        from unittest import mock
        import gencli.plugins
        sys.argv = ["gencli", "--version"]
        with mock.patch.object(gencli.plugins, "load_registry", side_effect=AssertionError("plugins loaded")):
            try:
                from gencli.cli import main
                main()
            except SystemExit as exit:
                assert exit.code in (0, None), exit.code
        assert "torch" not in sys.modules
        sys.argv = ["gencli", "--help"]
        try:
            main()
        except SystemExit:
            pass
        print("torch" in sys.modules)
    ''')
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("False"), r.stdout


# ------------------------------------------------------------------ the contract, checked on the source
BUILTIN_MODELS = ("vae", "cvae", "beta-vae", "controlvae", "vqvae", "vqvae-prior", "gan", "dcgan", "wgan", "wgan-gp",
                  "ssgan", "cgan", "stylegan", "cyclegan", "pix2pix", "ddpm")
# Names specific enough to mean a built-in model or its plugin package ("vae" and "gan" also name
# the kinds of model gencli is about, and the shared GAN losses).
FAMILIES = ("cvae", "beta-vae", "controlvae", "vqvae", "vqvae-prior", "dcgan", "wgan", "wgan-gp", "ssgan", "cgan",
            "stylegan", "cyclegan", "pix2pix", "ddpm", "gencli_vae", "gencli_gan", "gencli_stylegan",
            "gencli_translation", "gencli_diffusion")


def test_the_core_names_no_built_in_model_or_family():
    """Nothing under gencli/ names a built-in model: only the dataset catalogue, whose archives are published
    under those projects' names (cyclegan-maps, pix2pix's facades), may say them."""
    pattern = re.compile(r"(?<![\w-])(" + "|".join(re.escape(m) for m in FAMILIES) + r")(?![\w])", re.IGNORECASE)
    exempt = {"gencli/data/archives.py"}
    offenders = []
    for path in sorted((ROOT / "gencli").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in exempt:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{rel}:{number}: {line.strip()}")
    assert not offenders, "the core names a model family:\n" + "\n".join(offenders)


def test_every_hook_is_documented_in_the_plugin_guide():
    import inspect

    from gencli import hookspecs

    guide = (ROOT / "docs" / "plugins.md").read_text()
    hooks = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("gencli_")]
    assert hooks
    missing = [h for h in hooks if f"### `{h}" not in guide]
    assert not missing, f"hooks without a section in docs/plugins.md: {missing}"


def test_every_model_attribute_the_core_reads_is_declared_on_model_and_documented():
    from gencli.models.base import Model

    guide = (ROOT / "docs" / "plugins.md").read_text()
    for attr in ("name", "summary", "data", "Hyperparameters", "defaults", "conditional", "SampleOptions",
                 "InterpolateOptions", "EvalOptions", "figures", "directions", "domains", "interpolation_path",
                 "report", "train_from", "capability_hints", "test_overrides", "augment_flip", "load_size",
                 "check_shape", "preview_inputs", "preview", "extra_state", "load_extra_state", "fit_to_data",
                 "batches_per_step", "figure_captions", "cpu_channels_last", "cpu_channels_last_training", "cpu_batch_pixels", "inference_batch",
                 "eager_networks", "prepare_inference"):
        assert hasattr(Model, attr), attr
        assert f"`{attr}" in guide, f"Model.{attr} is read by the core but docs/plugins.md does not explain it"


def test_every_built_in_option_has_help_and_a_default():
    from gencli.plugins import registry
    from gencli.testing import check_declarations

    for name in BUILTIN_MODELS:
        registry().model_class(name)
        check_declarations(name)


def test_the_plugin_api_is_importable_from_the_package_root():
    import gencli
    from gencli.models.base import Model

    assert gencli.Model is Model
    for name in ("Hyperparameters", "Options", "Figure", "TrainDefaults", "ModelSpec", "hookimpl", "UserError", "Run"):
        assert getattr(gencli, name) is not None


def test_shell_completion_offers_models_datasets_and_runs(tmp_path, monkeypatch):
    from gencli.cli.common import complete_datasets, complete_models, complete_runs

    assert "vae" in complete_models("v") and "dcgan" not in complete_models("v")
    assert "shapes" in complete_datasets("sha")
    run = tmp_path / "runs" / "vae-shapes-1"
    run.mkdir(parents=True)
    (run / "run.json").write_text("{}")
    monkeypatch.setenv("GENCLI_RUNS_DIR", str(tmp_path / "runs"))
    assert str(run) in complete_runs(str(tmp_path / "runs" / "vae"))
