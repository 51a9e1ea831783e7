"""Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs").

KID is the unbiased estimate of the squared MMD between real and generated features with the
cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets of equal size;
its standard deviation over those subsets says how much to trust a difference. Unlike FID it
is unbiased, so values from different sample counts can be compared. With fewer images than
the subset size, subsets take half of the smaller set, so that they differ from each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from gencli.errors import UserError

if TYPE_CHECKING:
    from gencli.metrics.context import EvalContext

# torch-fidelity's defaults: 100 subsets of 1000 images.
SUBSETS = 100
SUBSET_SIZE = 1000


def polynomial_mmd2(x: torch.Tensor, y: torch.Tensor, degree: int = 3, gamma: float | None = None,
                    coef: float = 1.0) -> torch.Tensor:
    """Return the unbiased squared MMD between samples ``x`` [m, d] and ``y`` [m', d]."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma

    def kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        # Dot products in float32 (the costly part, fast on any device), kernel and sums in float64:
        # the estimate is a small difference of large sums.
        return ((a.float() @ b.float().T).double() * gamma + coef) ** degree

    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    m, n = len(x), len(y)
    # The diagonal (each sample with itself) is left out: that is what makes the estimate unbiased.
    xx = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    yy = (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    return xx + yy - 2 * kxy.mean()


def kid(
    real: torch.Tensor,
    fake: torch.Tensor,
    subsets: int = SUBSETS,
    subset_size: int = SUBSET_SIZE,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> tuple[float, float]:
    """Return (mean, std) of the KID over ``subsets`` random subsets of both feature sets."""
    smaller = min(len(real), len(fake))
    if smaller < 2:
        raise UserError("KID needs at least 2 images on each side")
    # Subsets as large as a whole set would all be that set, and their spread would say nothing.
    m = subset_size if smaller > subset_size else smaller // 2 if smaller >= 4 else smaller
    g = torch.Generator().manual_seed(seed)
    real, fake = real.to(device, torch.float32), fake.to(device, torch.float32)
    values = []
    for _ in range(subsets):
        r = real[torch.randperm(len(real), generator=g)[:m].to(device)]
        f = fake[torch.randperm(len(fake), generator=g)[:m].to(device)]
        values.append(polynomial_mmd2(r, f))
    v = torch.stack(values)
    return float(v.mean()), float(v.std(unbiased=False))


class KID:
    """KID mean and standard deviation over subsets, on the same features as FID."""

    def check(self, ctx: "EvalContext") -> None:
        ctx.feature_extractor()  # missing weights or a broken --features file fail before any generation

    def compute(self, ctx: "EvalContext") -> dict[str, float]:
        if ctx.translating:
            out: dict[str, float] = {}
            for d in ctx.directions():
                mean, std = kid(ctx.domain_features(d).features, ctx.translated_features(d).features, seed=ctx.seed,
                                device=ctx.device)
                out.update({f"kid/{d}": mean, f"kid_std/{d}": std})
            return out
        fake = ctx.generated_features()
        mean, std = kid(ctx.real_features().features, fake.features, seed=ctx.seed, device=ctx.device)
        return {"kid": mean, "kid_std": std}
