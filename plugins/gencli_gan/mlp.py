"""The fully connected GAN ("FC-GAN") of Goodfellow et al. (NeurIPS 2014), the baseline of the family.

The generator is an MLP whose hidden widths double up to ``width`` (256-512-1024 for depth 3),
with batch norm and LeakyReLU, ending in tanh; the discriminator mirrors it (1024-512-256)
with LeakyReLU and optional dropout. Adam 2e-4 with beta1 0.5, as for DCGAN. Any image size from
8 to 128 px works, since nothing is convolutional.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gencli.errors import UserError
from gencli.nn.ema import ema_copy
from gencli_gan.base import GAN
from gencli_gan.declarations import (  # noqa: F401 - declared apart from the networks
    MLPArchitecture,
    MLPGANDeclarations,
    MLPGANHyperparameters,
)

MIN_SIZE, MAX_SIZE = 8, 128


# ---------------------------------------------------------------------------------- networks
def hidden_widths(width: int, depth: int) -> list[int]:
    """Return the generator's hidden widths, doubling up to ``width`` (the discriminator reverses them)."""
    return [max(8, width >> (depth - 1 - i)) for i in range(depth)]


class MLPGenerator(nn.Module):
    """z -> image in [-1, 1] through fully connected layers."""

    def __init__(self, z_dim: int, image_shape: tuple[int, int, int], width: int = 1024, depth: int = 3):
        super().__init__()
        self.image_shape = tuple(image_shape)
        layers: list[nn.Module] = []
        c_in = z_dim
        for i, c_out in enumerate(hidden_widths(width, depth)):
            layers.append(nn.Linear(c_in, c_out))
            if i > 0:  # the first layer sees z directly; normalising it only rescales the noise
                layers.append(nn.BatchNorm1d(c_out))
            layers.append(nn.LeakyReLU(0.2, True))
            c_in = c_out
        layers += [nn.Linear(c_in, math.prod(self.image_shape)), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.body(z).view(-1, *self.image_shape)


class MLPDiscriminator(nn.Module):
    """Image -> one logit, through fully connected layers narrowing from ``width``."""

    def __init__(self, image_shape: tuple[int, int, int], width: int = 1024, depth: int = 3, dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = math.prod(image_shape)
        for c_out in reversed(hidden_widths(width, depth)):
            layers += [nn.Linear(c_in, c_out), nn.LeakyReLU(0.2, True)]
            layers += [nn.Dropout(dropout)] if dropout > 0 else []
            c_in = c_out
        layers.append(nn.Linear(c_in, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.body(x.flatten(1)).squeeze(1)


# ---------------------------------------------------------------------------------- model
class MLPGAN(MLPGANDeclarations, GAN):
    name = "gan"
    summary = "fully connected GAN, the FC-GAN baseline (Goodfellow et al. 2014)"
    data = "images"
    test_overrides = {"width": 64, "z_dim": 16}

    @classmethod
    def check_shape(cls, image_size: int, channels: int) -> None:
        super().check_shape(image_size, channels)
        if not MIN_SIZE <= image_size <= MAX_SIZE:
            raise UserError(f"{cls.name} works from {MIN_SIZE} to {MAX_SIZE} px, not {image_size}")

    def build_networks(self) -> dict[str, nn.Module]:
        hp = self.hp
        G = MLPGenerator(hp.z_dim, self.image_shape, hp.width, hp.g_depth)
        D = MLPDiscriminator(self.image_shape, hp.width, hp.d_depth, hp.d_dropout)
        return {"G": G, "D": D, "G_ema": ema_copy(G)}
