"""Helpers shared by the metric tests."""

from __future__ import annotations

import warnings

import torch
from torch import nn


def save_torchscript(module: nn.Module, path):
    """Save ``module`` as TorchScript (deprecated by torch, still what most users have)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(module), str(path))
    return path


class ConvFeatures(nn.Module):
    """A fixed random conv net: float images in [-1, 1] -> 48 pooled features (mean and max)."""

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(16, 24, 3, stride=2, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        return torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1)
