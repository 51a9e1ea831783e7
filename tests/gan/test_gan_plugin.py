"""The GAN family is registered like any third-party plugin, without importing torch."""

from __future__ import annotations

import subprocess
import sys


def test_plugin_module_registers_light_specs_without_torch():
    code = ("import sys, gencli_gan.plugin as p; specs = p.gencli_register_models(); "
            "print(p.GENCLI_API, sorted(s.name for s in specs), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "2" and out[-1] == "False"


def test_every_spec_loads_its_model_class_with_matching_description():
    from gencli.models.base import capabilities
    from gencli_gan.plugin import gencli_register_models

    specs = {s.name: s for s in gencli_register_models()}
    assert set(specs) == {"gan", "dcgan", "wgan", "wgan-gp", "ssgan", "cgan"}
    for name, spec in specs.items():
        cls = spec.load()
        assert (cls.name, cls.summary, cls.data) == (name, spec.summary, spec.data)
        assert {"sample", "interpolate"} <= set(capabilities(cls))
    assert specs["cgan"].load().conditional and not specs["dcgan"].load().conditional


def test_models_appear_in_the_registry_under_the_gan_plugin():
    from gencli.plugins import registry

    reg = registry()
    for name in ("gan", "dcgan", "wgan", "wgan-gp", "ssgan", "cgan"):
        assert reg.model(name).plugin == "gan"
