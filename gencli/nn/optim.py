"""Optimizers built the way the machine runs them fastest, for the built-in models and any plugin.

``adam`` is ``torch.optim.Adam`` with torch's fused kernel wherever every parameter can take it
(floating point, on the CPU or a CUDA device): one pass over each parameter for the whole update,
where the default CPU path runs about ten elementwise operations per tensor, each a pass over
memory. ``benchmarks/bench_roofline.py`` measures it against the default loop for every family
in one run. A checkpoint keeps the choice with the optimizer's state, so a resumed run goes on
with the implementation it started with.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

FUSED_DEVICES = ("cpu", "cuda")


def _parameters(params: list[Any]) -> list[torch.Tensor]:
    return [p for group in params for p in (group["params"] if isinstance(group, dict) else [group])]


def can_fuse(params: Iterable[Any]) -> bool:
    """Whether torch's fused Adam takes every one of these parameters (or parameter groups)."""
    flat = _parameters(list(params))
    return bool(flat) and all(p.is_floating_point() and p.device.type in FUSED_DEVICES for p in flat)


def adam(params: Iterable[Any], lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
         weight_decay: float = 0.0, fused: bool | None = None) -> torch.optim.Adam:
    """``torch.optim.Adam``, fused where it can be (``fused=False``: torch's default path)."""
    params = list(params)
    if fused is None:
        fused = can_fuse(params)
    return torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, fused=fused or None)
