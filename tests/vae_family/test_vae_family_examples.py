"""The example configs of ControlVAE and VQ-VAE are valid: known settings, hyperparameters that build."""

from pathlib import Path

import pytest

from gencli.models import hparams
from gencli.plugins import registry
from gencli.training.engine import merge_config_file

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CONFIGS = sorted(EXAMPLES.glob("controlvae-*.toml")) + sorted(EXAMPLES.glob("vqvae-*.toml"))


def test_there_are_examples():
    assert {p.name for p in CONFIGS} >= {"controlvae-kl-targets.toml", "vqvae-anime-faces.toml",
                                         "vqvae-prior-anime-faces.toml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_example_config_builds(path):
    values = merge_config_file({"overrides": {"from_run": "runs/vqvae-faces"}}, path)
    cls = registry().model(values["model"]).load()
    overrides = values["overrides"]
    if "from_run" not in hparams.fields(cls.Hyperparameters):
        overrides.pop("from_run")
    hp = hparams.build(cls.Hyperparameters, overrides, source=path.name)
    cls.check_shape(values["image_size"], values["channels"])
    assert hp.lr > 0 and values["steps"] > 0
