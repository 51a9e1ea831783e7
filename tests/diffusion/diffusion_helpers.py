"""Tiny diffusion models for the diffusion tests: 16 px, a few channels, short schedules."""

from __future__ import annotations

import torch

from gencli.models import hparams
from gencli_diffusion.ddpm import DDPM, DDPMHyperparameters

# A U-Net small enough for a CPU test: 8 channels, two levels, attention at the lower one.
TINY = {"base_width": 8, "channel_mults": (1, 2), "res_blocks": 1, "timesteps": 50, "sampling_steps": 10}


def make_model(classes: list[str] | None = None, size: int = 16, channels: int = 3, **overrides) -> DDPM:
    """Return a tiny DDPM built through the hyperparameter checks, seeded."""
    torch.manual_seed(0)
    hp = hparams.build(DDPMHyperparameters, {**TINY, **overrides})
    return DDPM(hp, (channels, size, size), classes)


def randomise(net: torch.nn.Module, scale: float = 0.1) -> None:
    """Give every parameter small random values, so zero-initialised outputs stop being zero."""
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, scale)
