"""Precision, recall, density and coverage (Naeem et al. 2020, after Kynkaanniemi et al. 2019).

Each sample gets a ball reaching its k-th nearest neighbour within its own set. Precision is the
share of generated samples inside some real ball (fidelity), recall the share of real samples
inside some generated ball (diversity). Density counts how many real balls hold each generated
sample (divided by k), coverage is the share of real balls that hold at least one generated
sample; both are more robust to outliers than precision and recall.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from gencli.errors import UserError

if TYPE_CHECKING:
    from gencli.metrics.context import EvalContext

NEAREST_K = 5  # the paper's choice
CHUNK = 1024  # rows of the distance matrix held at once


def kth_neighbour_radii(x: torch.Tensor, k: int, chunk: int = CHUNK) -> torch.Tensor:
    """Return each row's distance to its k-th nearest other row of ``x``."""
    radii = []
    for lo in range(0, len(x), chunk):
        d = torch.cdist(x[lo : lo + chunk], x)
        # k + 1: each point is its own nearest neighbour, at distance 0.
        radii.append(d.kthvalue(k + 1, dim=1).values)
    return torch.cat(radii)


def prdc(real: torch.Tensor, fake: torch.Tensor, k: int = NEAREST_K, device: torch.device | str = "cpu",
         chunk: int = CHUNK) -> dict[str, float]:
    """Return precision, recall, density and coverage of features ``fake`` against ``real``."""
    if len(real) <= k or len(fake) <= k:
        raise UserError(f"precision/recall need more than k={k} images on each side")
    real, fake = real.to(device, torch.float32), fake.to(device, torch.float32)
    r_real, r_fake = kth_neighbour_radii(real, k, chunk), kth_neighbour_radii(fake, k, chunk)
    in_real_ball = torch.zeros(len(fake), dtype=torch.bool, device=real.device)
    real_balls_holding = torch.zeros(len(fake), device=real.device)
    real_in_fake_ball = torch.zeros(len(real), dtype=torch.bool, device=real.device)
    nearest_fake = torch.full((len(real),), float("inf"), device=real.device)
    # One pass over the generated samples in chunks: every statistic reads the same distances.
    for lo in range(0, len(fake), chunk):
        d = torch.cdist(fake[lo : lo + chunk], real)  # [chunk, n_real]
        inside = d < r_real[None, :]
        in_real_ball[lo : lo + chunk] = inside.any(dim=1)
        real_balls_holding[lo : lo + chunk] = inside.sum(dim=1).float()
        real_in_fake_ball |= (d < r_fake[lo : lo + chunk, None]).any(dim=0)
        nearest_fake = torch.minimum(nearest_fake, d.min(dim=0).values)
    return {
        "precision": float(in_real_ball.float().mean()),
        "recall": float(real_in_fake_ball.float().mean()),
        "density": float(real_balls_holding.mean() / k),
        "coverage": float((nearest_fake < r_real).float().mean()),
    }


class PRDC:
    """Precision, recall, density and coverage on the same features as FID."""

    def check(self, ctx: "EvalContext") -> None:
        ctx.feature_extractor()  # missing weights or a broken --features file fail before any generation

    def compute(self, ctx: "EvalContext") -> dict[str, float]:
        if ctx.translating:
            out: dict[str, float] = {}
            for d in ctx.directions():
                values = prdc(ctx.domain_features(d).features, ctx.translated_features(d).features, device=ctx.device)
                out.update({f"{k}/{d}": v for k, v in values.items()})
            return out
        fake = ctx.generated_features()
        return prdc(ctx.real_features().features, fake.features, device=ctx.device)
