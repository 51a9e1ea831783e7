"""Layers and initialisation shared by the GAN families: spectrally normalised ``sn_conv2d`` /
``sn_linear`` / ``sn_embedding`` (Miyato et al. 2018) and the initialisation ``init_normal`` of
Radford et al. 2016.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm


def sn_conv2d(*args, **kwargs) -> nn.Conv2d:
    """Return ``nn.Conv2d(*args, **kwargs)`` under spectral normalisation (one power iteration per call)."""
    return spectral_norm(nn.Conv2d(*args, **kwargs))


def sn_linear(*args, **kwargs) -> nn.Linear:
    """Return ``nn.Linear(*args, **kwargs)`` under spectral normalisation."""
    return spectral_norm(nn.Linear(*args, **kwargs))


def sn_embedding(*args, **kwargs) -> nn.Embedding:
    """Return ``nn.Embedding(*args, **kwargs)`` under spectral normalisation (projection discriminators)."""
    return spectral_norm(nn.Embedding(*args, **kwargs))


def weight_of(module: nn.Module) -> torch.Tensor | None:
    """Return the trainable weight of ``module``: the raw one under spectral normalisation."""
    if parametrize.is_parametrized(module, "weight"):
        return module.parametrizations.weight.original
    return getattr(module, "weight", None)


def init_normal(net: nn.Module, std: float = 0.02) -> nn.Module:
    """Return ``net`` initialised as Radford et al. 2016 did: conv/linear weights N(0, std), norm scales N(1, std), biases 0."""
    with torch.no_grad():
        for module in net.modules():
            weight = weight_of(module)
            bias = getattr(module, "bias", None)
            if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
                weight.normal_(0.0, std)
            elif isinstance(module, nn.modules.batchnorm._BatchNorm | nn.GroupNorm | nn.LayerNorm) and weight is not None:
                weight.normal_(1.0, std)
            else:
                continue
            if isinstance(bias, torch.Tensor):
                bias.zero_()
    return net
