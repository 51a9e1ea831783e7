"""Class accuracy of a conditional model's images, judged by the user's classifier.

The classifier is a TorchScript module (``--classifier model.pt``) taking float images in
[-1, 1] at the dataset's size and channels and returning logits [N, K], K at least the model's
class count, in the model's class order. With ``--label 8`` every image is generated as class 8,
so the accuracy says how often the model draws an eight when asked for one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
        images, labels = ctx.generated_images()
        logits = ctx.classify(images)
        if logits.shape[1] < model.num_classes:
            raise UserError(f"--classifier gives {logits.shape[1]} outputs but the model has {model.num_classes} classes")
        hits = (logits.argmax(1) == labels).float()
        out = {"accuracy": float(hits.mean())}
        if ctx.label is None:
            for c, name in enumerate(model.classes):
                mine = labels == c
                if mine.any():
                    out[f"accuracy/{name}"] = float(hits[mine].mean())
        return out
