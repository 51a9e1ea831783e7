"""Frechet Inception Distance (Heusel et al. 2017), overall and per class.

FID = ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)) on pool3 features of pytorch-fid's
Inception (or the user's ``--features`` network). Means and covariances are computed exactly as
pytorch-fid computes them (float64, ``np.cov``).

Only the trace of the matrix square root is needed, and it is the sum of the square roots of the
eigenvalues of S_r S_g, all real and non-negative. Two ways to get them, both symmetric
eigenproblems (never complex, unlike scipy's general ``sqrtm``, and several times faster):
- in feature space: the eigenvalues of S_r^(1/2) S_g S_r^(1/2) (D x D);
- in sample space, when one side has fewer images than features (per-class FID, small ``--n``):
  with X the centred features of that side (n x D), S_r S_g has the nonzero eigenvalues of
  X S_g X^T / (n - 1) (n x n), a much smaller problem.
Either equals pytorch-fid's value to about 1e-7 relative.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from gencli.errors import UserError
from gencli.metrics.featureset import FeatureSet, statistics

if TYPE_CHECKING:
    from gencli.metrics.context import EvalContext

__all__ = ["FID", "ClassFID", "FeatureSet", "fid_from_features", "frechet_distance", "statistics"]


def _psd_sqrt(a: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh(a)
    return (v * w.clamp(min=0).sqrt()) @ v.T


def _as64(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x), dtype=torch.float64)


def _trace_sqrt_product(s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
    """Return Tr((s1 s2)^(1/2)) for covariance matrices, through S1^(1/2) S2 S1^(1/2)."""
    root = _psd_sqrt(s1)
    m = root @ s2 @ root
    return torch.linalg.eigvalsh((m + m.T) / 2).clamp(min=0).sqrt().sum()  # symmetrised against rounding


def _trace_sqrt_product_low_rank(centred: torch.Tensor, s_other: torch.Tensor) -> torch.Tensor:
    """Return Tr((S S_other)^(1/2)) where S is the covariance of ``centred`` features [n, D], n <= D."""
    g = centred @ s_other @ centred.T / (len(centred) - 1)
    return torch.linalg.eigvalsh((g + g.T) / 2).clamp(min=0).sqrt().sum()


def _distance(mu1: torch.Tensor, s1: torch.Tensor, mu2: torch.Tensor, s2: torch.Tensor, trace_sqrt: torch.Tensor) -> float:
    diff = mu1 - mu2
    value = float(diff @ diff + torch.trace(s1) + torch.trace(s2) - 2 * trace_sqrt)
    return max(value, 0.0)  # a distance: below zero is only rounding, for a set against itself


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Return the Frechet distance between Gaussians N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = _as64(np.atleast_1d(mu1)), _as64(np.atleast_1d(mu2))
    s1, s2 = _as64(np.atleast_2d(sigma1)), _as64(np.atleast_2d(sigma2))
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise ValueError(f"feature sizes differ: {tuple(mu1.shape)} vs {tuple(mu2.shape)}")
    return _distance(mu1, s1, mu2, s2, _trace_sqrt_product(s1, s2))


def fid_from_features(real: torch.Tensor | np.ndarray, fake: torch.Tensor | np.ndarray) -> float:
    """Return the FID between two sets of features [N, D]."""
    return _fid(FeatureSet(torch.as_tensor(np.asarray(real))), FeatureSet(torch.as_tensor(np.asarray(fake))))


def _fid(real: FeatureSet, fake: FeatureSet) -> float:
    (mu1, s1), (mu2, s2) = real.statistics(), fake.statistics()
    mu1, s1, mu2, s2 = _as64(mu1), _as64(s1), _as64(mu2), _as64(s2)
    if mu1.shape != mu2.shape:
        raise UserError(f"feature sizes differ: {mu1.shape[0]} vs {mu2.shape[0]}")
    small, mu_small, s_other = (real, mu1, s2) if len(real) <= len(fake) else (fake, mu2, s1)
    if len(small) <= mu1.shape[0]:
        centred = small.features.to(torch.float64) - mu_small
        return _distance(mu1, s1, mu2, s2, _trace_sqrt_product_low_rank(centred, s_other))
    return _distance(mu1, s1, mu2, s2, _trace_sqrt_product(s1, s2))


class FID:
    """FID of ``n`` generated images against the real images of the split."""

    def check(self, ctx: "EvalContext") -> None:
        ctx.feature_extractor()  # missing weights or a broken --features file fail before any generation

    def compute(self, ctx: "EvalContext") -> dict[str, float]:
        if ctx.translating:  # translations of each direction against the real images of its target domain
            return {f"fid/{d}": _fid(ctx.domain_features(d), ctx.translated_features(d)) for d in ctx.directions()}
        fake = ctx.generated_features()
        return {"fid": _fid(ctx.real_features(), fake)}


class ClassFID:
    """FID per class of a conditional model: images generated for class c against real class c."""

    def check(self, ctx: "EvalContext") -> None:
        if not getattr(ctx.model, "conditional", False) or not ctx.model.num_classes:
            raise UserError(f"per-class FID needs a conditional model; {ctx.model.name!r} is not")
        if ctx.data.labels is None:
            raise UserError(f"per-class FID needs labelled data; {ctx.data.name!r} has no labels")
        ctx.feature_extractor()

    def compute(self, ctx: "EvalContext") -> dict[str, float]:
        model = ctx.model
        fake, real = ctx.generated_features(), ctx.real_features()
        out: dict[str, float] = {}
        for c, name in enumerate(model.classes):
            r, g = real.labels == c, fake.labels == c
            if int(r.sum()) < 2 or int(g.sum()) < 2:
                continue  # a class absent from the split, or outside --label
            out[f"fid/{name}"] = _fid(FeatureSet(real.features[r]), FeatureSet(fake.features[g]))
        if not out:
            raise UserError("per-class FID found no class with at least 2 real and 2 generated images; raise --n")
        out["fid/class-mean"] = float(np.mean(list(out.values())))
        return out
