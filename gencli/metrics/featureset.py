"""Features of a set of images and their statistics: what the context hands to FID-style metrics.

Its own module, below both ``gencli.metrics.context`` (which makes feature sets) and the metrics
that read them (``fid``, ``kid``, ``prdc``), so neither has to import the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from gencli.errors import UserError


def statistics(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (mean, covariance) of features [N, D] in float64, as pytorch-fid computes them."""
    act = np.asarray(features.numpy() if torch.is_tensor(features) else features, dtype=np.float64)
    if len(act) < 2:
        raise UserError("FID needs at least 2 images on each side")
    return np.mean(act, axis=0), np.cov(act, rowvar=False)


@dataclass
class FeatureSet:
    """Features [N, D] (float32, CPU) of a set of images, with their class labels when known."""

    features: torch.Tensor
    labels: torch.Tensor | None = None
    _stats: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.features)

    def statistics(self) -> tuple[np.ndarray, np.ndarray]:
        """Return (mean, covariance) of the features in float64, as pytorch-fid computes them."""
        if self._stats is None:
            self._stats = statistics(self.features)
        return self._stats
