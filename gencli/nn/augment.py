"""Differentiable augmentation of the discriminator's inputs (DiffAugment, Zhao et al. 2020).

``diff_augment(x, policy, noise)`` applies random colour, translation and cutout to every image
D sees, real and fake, with a fresh draw per image; gradients flow through each operation back
to the generator. ``parse_augment_policy`` checks a policy string.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from gencli.nn.noise import Noise, noise_for

AUGMENTATIONS = ("color", "translation", "cutout")


def parse_augment_policy(policy: str | Sequence[str]) -> tuple[str, ...]:
    """Return the augmentations named in ``policy`` ("color,translation,cutout"; "" for none).

    Raises ``ValueError`` naming the unknown ones; models turn it into a ``UserError``.
    """
    names = policy.split(",") if isinstance(policy, str) else list(policy)
    names = tuple(n.strip() for n in names if n.strip() and n.strip() != "none")
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"unknown augmentation {', '.join(map(repr, unknown))}; choose from {', '.join(AUGMENTATIONS)}")
    return names


def diff_augment(x: torch.Tensor, policy: str | Sequence[str] = AUGMENTATIONS, noise: Noise | None = None) -> torch.Tensor:
    """Return ``x`` with differentiable random augmentations, a fresh draw for every image.

    Apply the same policy to every image D sees, real and fake (Zhao et al. 2020): gradients flow
    through each operation back to the generator. Images are NCHW in [-1, 1]. The draws come from
    ``noise`` (pass the model: ``gencli.nn.noise``).
    """
    draw = noise_for(x, noise)
    for name in parse_augment_policy(policy):
        x = _AUGMENT[name](x, draw)
    return x


def _rand(x: torch.Tensor, noise: Noise, *shape: int) -> torch.Tensor:
    return noise.rand(*shape, dtype=x.dtype)


def _augment_color(x: torch.Tensor, noise: Noise) -> torch.Tensor:
    """Random brightness (+-0.5), saturation (x0..2) and contrast (x0.5..1.5) per image."""
    n = x.shape[0]
    x = x + (_rand(x, noise, n, 1, 1, 1) - 0.5)
    mean_c = x.mean(dim=1, keepdim=True)
    x = (x - mean_c) * (_rand(x, noise, n, 1, 1, 1) * 2.0) + mean_c
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(x, noise, n, 1, 1, 1) + 0.5) + mean


def _augment_translation(x: torch.Tensor, noise: Noise, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size, filling with zeros (mid-grey)."""
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = noise.randint(-sy, sy + 1, (n, 1, 1))
    dx = noise.randint(-sx, sx + 1, (n, 1, 1))
    # Read every output pixel from (y - dy, x - dx) of a one-pixel zero-padded copy; sources
    # outside the image land on the padding.
    rows = (torch.arange(h, device=x.device).view(1, h, 1) - dy).clamp(-1, h) + 1
    cols = (torch.arange(w, device=x.device).view(1, 1, w) - dx).clamp(-1, w) + 1
    padded = F.pad(x, (1, 1, 1, 1)).permute(0, 2, 3, 1)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    return padded[batch, rows, cols].permute(0, 3, 1, 2).contiguous()


def _augment_cutout(x: torch.Tensor, noise: Noise, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of ``ratio`` times the image size at a random centre in each image."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = noise.randint(0, h + (1 - ch % 2), (n, 1, 1))
    cx = noise.randint(0, w + (1 - cw % 2), (n, 1, 1))
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    inside = ((ys - cy + ch // 2) >= 0) & ((ys - cy + ch // 2) < ch) & ((xs - cx + cw // 2) >= 0) & ((xs - cx + cw // 2) < cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


_AUGMENT = {"color": _augment_color, "translation": _augment_translation, "cutout": _augment_cutout}
