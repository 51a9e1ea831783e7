"""Class accuracy of a conditional model's images, judged by the user's classifier.

The classifier is a TorchScript module (``--classifier model.pt``) taking float images in
[-1, 1] at the dataset's size and channels and returning logits [N, K], K at least the model's
class count, in the model's class order. With ``--label 8`` every image is generated as class 8,
so the accuracy says how often the model draws an eight when asked for one.

``confusion_matrix`` counts, for each class asked for (rows), the classes the classifier read
(columns): where the accuracy of sevens is low, its row says whether they came out as nines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from gencli.errors import UserError

if TYPE_CHECKING:
    from gencli.metrics.context import EvalContext


class ClassAccuracy:
    """Share of generated images the classifier assigns to the class they were generated for."""

    def check(self, ctx: "EvalContext") -> None:
        if not getattr(ctx.model, "conditional", False):
            raise UserError(f"class accuracy needs a conditional model; {ctx.model.name!r} is not")
        ctx.classifier_network()  # a missing or unreadable file fails now, not after generating

    def compute(self, ctx: "EvalContext") -> dict[str, float]:
        model = ctx.model
        predicted, labels = ctx.classifications()
        hits = (predicted == labels).float()
        out = {"accuracy": float(hits.mean())}
        if ctx.label is None:
            for c, name in enumerate(model.classes):
                mine = labels == c
                if mine.any():
                    out[f"accuracy/{name}"] = float(hits[mine].mean())
        return out


def confusion_matrix(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Return counts [K, K]: row = class asked for, column = class read (predictions past K land in no column)."""
    keep = (predicted >= 0) & (predicted < num_classes) & (labels >= 0) & (labels < num_classes)
    flat = labels[keep].long() * num_classes + predicted[keep].long()
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def per_class_rows(counts: torch.Tensor, classes: list[str]) -> list[dict]:
    """One row per class asked for: images, share read right, and the class most often read instead."""
    rows = []
    for c, name in enumerate(classes):
        row = counts[c]
        total = int(row.sum())
        if not total:
            continue
        others = row.clone()
        others[c] = 0
        wrong = int(others.argmax())
        rows.append({"class": name, "n": total, "accuracy": float(row[c]) / total,
                     "confused_with": classes[wrong] if int(others[wrong]) else None,
                     "confused_share": float(others[wrong]) / total})
    return rows
