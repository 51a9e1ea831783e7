"""Every built-in model honours the model contract, checked with the kit plugin authors use.

One test per model and check (declarations and --set, sizes, train/load/capabilities, resume),
so a failure names both. A model whose plugin cannot be imported is skipped with the plugin's
error; one listed here but registered by nobody is skipped saying so.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from torch import nn

from gencli import testing
from gencli.errors import UserError
from gencli.models.base import Hyperparameters, Model, TrainDefaults
from gencli.plugins import registry

# The models the built-in plugins provide, by plugin. Models a built-in plugin registers beyond
# these are checked too (see ``_builtin_models``).
BUILTIN = {
    "vae": ["vae", "cvae", "beta-vae", "controlvae", "vqvae", "vqvae-prior"],
    "gan": ["gan", "dcgan", "wgan", "wgan-gp", "ssgan", "cgan"],
    "stylegan": ["stylegan"],
    "translation": ["cyclegan", "pix2pix"],
    "diffusion": ["ddpm"],
}

# Small hyperparameters for models whose class does not declare ``test_overrides`` yet; the
# class's own ``test_overrides`` always wins.
SMALL = {
    "cyclegan": {"ngf": 8, "ndf": 8, "blocks": 1},
    "pix2pix": {"ngf": 8, "ndf": 8},
    "ddpm": {"base_width": 8, "timesteps": 50, "sampling_steps": 4},
}

# Two-stage models train from another model's run (`gencli train vqvae-prior --from RUN`).
SOURCE_MODEL = {"vqvae-prior": "vqvae"}

# Contract breaches reported to the model's owner; strict, so a fix makes the test say so.
KNOWN_BREACHES: dict[str, str] = {}

IMAGE_SIZE = 16


def _builtin_models() -> list[str]:
    names = [name for family in BUILTIN.values() for name in family]
    for name, spec in registry().models.items():
        plugin = next((p for p in registry().plugins if p.name == spec.plugin), None)
        if ":" not in name and plugin is not None and plugin.builtin and name not in names:
            names.append(name)
    return names


MODELS = _builtin_models()


def _require(name: str) -> type:
    """Return the model's class, or skip saying why it is not available."""
    reg = registry()
    family = next((f for f, names in BUILTIN.items() if name in names), None)
    plugin = next((p for p in reg.plugins if p.name == family), None)
    if plugin is not None and plugin.error:
        pytest.skip(f"model {name!r}: its plugin {family!r} is not importable yet ({plugin.error})")
    if name not in reg.models:
        pytest.skip(f"model {name!r} is not registered by plugin {family!r} yet")
    try:
        return reg.models[name].load()
    except Exception as exc:  # the plugin registers it, but its module does not import
        pytest.skip(f"model {name!r}: {reg.models[name].target} does not import yet ({type(exc).__name__}: {exc})")


class Runs:
    """Runs trained once per session and shared by the tests that need them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.trained: dict[str, Path] = {}

    def settings(self, name: str) -> testing.Settings:
        cls = _require(name)
        overrides = {} if getattr(cls, "test_overrides", None) else dict(SMALL.get(name, {}))
        if name in SOURCE_MODEL:
            overrides["from_run"] = str(self.run(SOURCE_MODEL[name]))
        return testing.Settings(image_size=IMAGE_SIZE, overrides=overrides, workdir=self.root / name)

    def run(self, name: str) -> Path:
        if name not in self.trained:
            self.trained[name] = testing.check_training(name, self.settings(name))
        return self.trained[name]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Runs:
    return Runs(tmp_path_factory.mktemp("conformance"))


def _known(name: str):
    if name in KNOWN_BREACHES:
        return pytest.param(name, marks=pytest.mark.xfail(raises=testing.ConformanceError, strict=True,
                                                          reason=KNOWN_BREACHES[name]))
    return name


def test_builtin_plugin_modules_import_without_torch_and_match_their_classes():
    modules = [p.module for p in registry().plugins if p.builtin and not p.error]
    assert modules, "no built-in plugin loaded"
    testing.check_plugin(*modules)


@pytest.mark.parametrize("name", MODELS)
def test_declarations_and_set_validation(name, runs):
    settings = runs.settings(name)
    testing.check_declarations(name)
    testing.check_hyperparameters(name, settings)


@pytest.mark.parametrize("name", MODELS)
def test_builds_at_declared_sizes_or_refuses_them(name, runs):
    report = testing.check_builds(name, runs.settings(name))
    assert (IMAGE_SIZE, _require(name).defaults.channels) in report.built


@pytest.mark.parametrize("name", [_known(n) for n in MODELS])
def test_trains_loads_and_offers_its_capabilities(name, runs):
    run_dir = runs.run(name)
    testing.check_checkpoint(run_dir)
    testing.check_capabilities(run_dir)


@pytest.mark.parametrize("name", MODELS)
def test_draws_per_example_noise_as_one_process_would(name, runs):
    testing.check_per_example_noise(name, runs.settings(name))


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_resume_is_exact(name, runs):
    testing.check_resume(name, runs.run(name), runs.settings(name))


# --------------------------------------------------------------------------- the kit catches breaches
# A tiny model that honours the contract, and variants that each break one rule: the kit must
# pass the first and name the broken rule of each of the others.

@dataclasses.dataclass
class TinyHyperparameters(Hyperparameters):
    width: int = dataclasses.field(default=4, metadata={"help": "code size"})


class Tiny(Model):
    name = "kit-tiny"
    summary = "a linear autoencoder that samples codes from N(0, I)"
    Hyperparameters = TinyHyperparameters
    defaults = TrainDefaults(image_size=8, channels=3, batch_size=4, steps=3, sample_every=3, checkpoint_every=3)

    def build_networks(self):
        c, s, w = self.channels, self.image_size, self.hp.width
        return {"encoder": nn.Sequential(nn.Flatten(), nn.Linear(c * s * s, w)),
                "decoder": nn.Sequential(nn.Linear(w, c * s * s), nn.Tanh())}

    def build_optimizers(self):
        params = [p for net in self.nets.values() for p in net.parameters()]
        return {"ae": torch.optim.Adam(params, lr=self.hp.lr)}

    def train_step(self, batch):
        with self.autocast():
            loss = (self.reconstruct(batch.images) - batch.images).pow(2).mean()
        self.optimize("ae", loss)
        return {"loss": loss.detach()}

    def encode(self, x, labels=None):
        return self.nets["encoder"](x)

    def decode(self, z, labels=None):
        return self.nets["decoder"](z).view(len(z), *self.image_shape)

    def reconstruct(self, x, labels=None):
        return self.decode(self.encode(x))

    def latents(self, n, generator=None):
        return torch.randn(n, self.hp.width, generator=generator)

    def generate(self, z, labels=None):
        return self.decode(z)

    def sample(self, n, labels=None, generator=None):
        return self.decode(self.latents(n, generator))


class IgnoresTheGenerator(Tiny):
    def sample(self, n, labels=None, generator=None):
        return self.decode(torch.randn(n, self.hp.width))


class OutOfRange(Tiny):
    def reconstruct(self, x, labels=None):
        return 3 * super().reconstruct(x)


class ForgetsItsCounter(Tiny):
    """Nudges its weights by a step counter it does not save: a resumed run drifts."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.updates = 0

    def train_step(self, batch):
        losses = super().train_step(batch)
        self.updates += 1
        with torch.no_grad():
            self.nets["decoder"][0].bias.add_(1e-3 * self.updates)
        return losses


class CrashesAt28(Tiny):
    def build_networks(self):
        if self.image_size == 28:
            raise ValueError("28 does not divide")
        return super().build_networks()


class ClaimsToSample(Tiny):
    def sample(self, n, labels=None, generator=None):
        raise UserError("this model cannot sample")


def test_the_kit_passes_a_model_that_honours_the_contract(tmp_path):
    report = testing.check_model(Tiny, workdir=tmp_path)
    assert report.image_size == 16 and not report.refused
    assert set(report.capabilities) == {"sample", "encode", "decode", "reconstruct", "interpolate"}
    assert "kit-tiny" not in registry().models, "a class is registered only while the kit runs"


@pytest.mark.parametrize("cls, check, message", [
    (IgnoresTheGenerator, "capabilities", "sample with two generators of the same seed gave different images"),
    (OutOfRange, "capabilities", "reconstruct returned values in ["),
    (ClaimsToSample, "capabilities", "overrides sample, so it is listed as able to sample, but sample refused"),
    (ForgetsItsCounter, "resume", "1 steps + resume to 3 differ from 3 straight steps"),
], ids=["generator", "range", "false-capability", "resume"])
def test_the_kit_names_the_rule_a_model_breaks(tmp_path, cls, check, message):
    settings = testing.Settings(workdir=tmp_path)
    with pytest.raises(testing.ConformanceError) as caught:
        if check == "capabilities":
            run_dir = testing.check_training(cls, settings)
            testing.check_capabilities(run_dir, settings, model=cls)
        else:
            testing.check_resume(cls, settings=settings)
    assert message in str(caught.value)


class NoisyCodes(Tiny):
    """Trains on noisy codes, drawn per example as the contract asks."""

    def noise(self, codes):
        return self.randn_like(codes)

    def train_step(self, batch):
        with self.autocast():
            codes = self.encode(batch.images)
            loss = (self.decode(codes + 0.1 * self.noise(codes)) - batch.images).pow(2).mean()
        self.optimize("ae", loss)
        return {"loss": loss.detach()}


class DrawsLocalNoise(NoisyCodes):
    def noise(self, codes):
        return torch.randn_like(codes)


def test_the_kit_requires_per_example_noise_through_the_model():
    testing.check_per_example_noise(NoisyCodes)
    with pytest.raises(testing.ConformanceError, match=r"draw per-example noise through self\.randn"):
        testing.check_per_example_noise(DrawsLocalNoise)


def test_the_kit_refuses_a_crash_where_a_user_error_belongs():
    with pytest.raises(testing.ConformanceError, match=r"building at 3x28x28 raised ValueError: 28 does not divide"):
        testing.check_builds(CrashesAt28)


def test_the_kit_refuses_hyperparameters_without_help():
    @dataclasses.dataclass
    class Undocumented(Hyperparameters):
        width: int = 4

    class NoHelp(Tiny):
        Hyperparameters = Undocumented

    with pytest.raises(testing.ConformanceError, match="hyperparameter 'width' has no help text"):
        testing.check_declarations(NoHelp)
