"""Paths between two latent codes, for interpolation: spherical for Gaussian codes, straight otherwise."""

from __future__ import annotations

import torch


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Return the spherical interpolation between rows ``a`` and ``b`` (flattened) at fractions ``t``."""
    shape = a.shape
    a, b = a.reshape(1, -1).float(), b.reshape(1, -1).float()
    t = t.reshape(-1, 1).float().to(a.device)
    cos = (a / a.norm()) @ (b / b.norm()).T
    omega = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7))
    if omega.abs().item() < 1e-4:  # nearly parallel: slerp degenerates to lerp
        return torch.lerp(a, b, t).reshape(-1, *shape[1:])
    so = torch.sin(omega)
    out = torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b
    return out.reshape(-1, *shape[1:])


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Return the points of the straight line from ``a`` to ``b`` at fractions ``t``."""
    t = t.reshape(-1, *([1] * (a.dim() - 1))).to(a.device)
    return a + (b - a) * t
