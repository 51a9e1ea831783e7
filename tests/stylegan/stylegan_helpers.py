"""Tiny StyleGAN configurations for fast CPU tests."""

from __future__ import annotations

import torch

from gencli.models import hparams


def tiny_values(**overrides) -> dict:
    """Return hyperparameter values for a tiny model: the class's test overrides, then ``overrides``."""
    from gencli_stylegan.stylegan import StyleGAN

    return {**StyleGAN.test_overrides, **overrides}


def tiny_model(size: int = 16, channels: int = 3, seed: int = 0, **overrides):
    """Return a freshly initialised tiny StyleGAN at ``size`` px."""
    from gencli_stylegan.stylegan import StyleGAN

    hp = hparams.build(StyleGAN.Hyperparameters, tiny_values(**overrides))
    torch.manual_seed(seed)
    return StyleGAN(hp, (channels, size, size))


def set_noise_strength(model, value: float) -> None:
    """Give every noise input of every generator a non-zero strength (they start at zero)."""
    from gencli_stylegan.stylegan import NoiseInput

    with torch.no_grad():
        for net in (model.nets["G"], model.nets["G_ema"]):
            for module in net.modules():
                if isinstance(module, NoiseInput):
                    module.strength.fill_(value)


def shapes_data(size: int = 16, count: int = 512):
    """Return the built-in labelled shapes at ``size`` px."""
    from gencli.data.base import DataRequest
    from gencli.data.synthetic import build_shapes

    return build_shapes(DataRequest(image_size=size, channels=3, options={"size": count}))
