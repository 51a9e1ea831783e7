"""The exponential moving average of a network's weights, for every family that samples from one.

A generator's or a denoiser's weights (Karras et al. 2018; Yazıcı et al. 2019; Ho et al. 2020) are
averaged the same way: ``ema_copy`` makes the frozen copy once, and after each
optimizer step ``ema_update(copy, net, decay)`` moves it towards the trained network with a decay
from ``ema_decay_at`` (a schedule in steps) or ``ema_decay_for_half_life`` (a half-life in images seen).
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def ema_copy(net: nn.Module) -> nn.Module:
    """Return a deep copy of ``net`` for exponential averaging: no gradients, never optimised."""
    ema = copy.deepcopy(net)
    for p in ema.parameters():
        p.requires_grad_(False)
    return ema


def ema_decay_at(step: int, decay: float) -> float:
    """Return the EMA decay to use after ``step`` completed steps: ``decay``, warmed up early on.

    min(decay, (1 + step) / (10 + step)) lets the average follow the fast-moving early network
    instead of remembering its random initialisation for ~1/(1 - decay) steps, so short runs
    already sample from trained weights.
    """
    return min(decay, (1.0 + step) / (10.0 + step))


def ema_decay_for_half_life(batch_size: int, half_life: float) -> float:
    """Return the decay per step of ``batch_size`` images that halves old weights' share every
    ``half_life`` images; 0 (copy the network) for a half-life of 0."""
    return 0.5 ** (batch_size / half_life) if half_life > 0 else 0.0


def ema_update(target: nn.Module, source: nn.Module, decay: float) -> None:
    """target <- decay * target + (1 - decay) * source for parameters; buffers are copied."""
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters()):
            t.lerp_(s.detach(), 1.0 - decay)
        for t, s in zip(target.buffers(), source.buffers()):
            t.copy_(s)
