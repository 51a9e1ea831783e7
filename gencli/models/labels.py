"""Class labels for a conditional model asked for images without a class.

A model trained on a class folder is conditional, yet most users sample it without ``--label``.
Such a model is never handed "no label" (which a guided diffusion model, say, reads as its
unconditional branch): the core draws the classes itself, in the proportions of the training
data (the per-class counts a run records in run.json), or uniformly for a run without counts.
"""

from __future__ import annotations

import torch


def class_counts(labels: torch.Tensor | None, num_classes: int) -> list[int] | None:
    """Return how many of ``labels`` fall in each of ``num_classes`` classes (None: no labels)."""
    if labels is None or not num_classes:
        return None
    return torch.bincount(labels.flatten().long().cpu(), minlength=num_classes)[:num_classes].tolist()


def class_quota(n: int, num_classes: int, counts: list[int] | None = None) -> list[int]:
    """Return how many of ``n`` images each class gets: ``n`` split in the proportions of ``counts``
    (largest remainders, ties to the lower class), or evenly when ``counts`` is None or all zero."""
    weights = [float(c) for c in counts] if counts and len(counts) == num_classes and sum(counts) > 0 else [1.0] * num_classes
    total = sum(weights)
    shares = [n * w / total for w in weights]
    quota = [int(s) for s in shares]
    by_remainder = sorted(range(num_classes), key=lambda c: (-(shares[c] - quota[c]), c))
    for c in by_remainder[: n - sum(quota)]:
        quota[c] += 1
    return quota


def draw_labels(n: int, num_classes: int, counts: list[int] | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Return ``n`` class indices (int64) whose histogram is ``class_quota(n, num_classes, counts)``,
    in an order shuffled by ``generator``, so a grid mixes the classes."""
    quota = class_quota(n, num_classes, counts)
    labels = torch.repeat_interleave(torch.arange(num_classes), torch.tensor(quota, dtype=torch.long))
    return labels[torch.randperm(n, generator=generator)]
