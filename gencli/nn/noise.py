"""Where the shared building blocks draw per-example randomness from.

A model passes itself (``gencli.models.base.Model`` has these methods): each process then draws
the noise of the whole global batch and keeps its own rows, so a data-parallel run matches one
process. Without a model, ``GLOBAL_NOISE`` draws from torch's global generator directly.
"""

from __future__ import annotations

from typing import Protocol

import torch


class Noise(Protocol):
    """Per-example random draws: ``shape[0]`` is the local batch."""

    def randn(self, *shape: int, dtype: torch.dtype | None = None) -> torch.Tensor: ...

    def randn_like(self, x: torch.Tensor) -> torch.Tensor: ...

    def rand(self, *shape: int, dtype: torch.dtype | None = None) -> torch.Tensor: ...

    def randint(self, low: int, high: int, shape: tuple[int, ...]) -> torch.Tensor: ...


class GlobalNoise:
    """``Noise`` from torch's global generator on ``device``, for use outside a model."""

    def __init__(self, device: torch.device | str | None = None) -> None:
        self.device = device

    def randn(self, *shape: int, dtype: torch.dtype | None = None) -> torch.Tensor:
        return torch.randn(*shape, device=self.device, dtype=dtype)

    def randn_like(self, x: torch.Tensor) -> torch.Tensor:
        return torch.randn_like(x)

    def rand(self, *shape: int, dtype: torch.dtype | None = None) -> torch.Tensor:
        return torch.rand(*shape, device=self.device, dtype=dtype)

    def randint(self, low: int, high: int, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.randint(low, high, shape, device=self.device)


def noise_for(x: torch.Tensor, noise: Noise | None) -> Noise:
    """Return ``noise``, or draws from torch's global generator on ``x``'s device when None."""
    return noise if noise is not None else GlobalNoise(x.device)
