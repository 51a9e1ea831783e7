"""Sample quality measured while a model trains (the engine's ``eval_every``).

Every ``eval_every`` steps the engine hands the model to a ``QualityProbe``, which generates the
same ``n`` images each time (a fixed seed, classes in turn for a conditional model) and scores
them on the held-out split: FID on the features of the user's small TorchScript network
(``eval_features``) and, for a conditional model, the share of images a TorchScript classifier
(``eval_classifier``) assigns to the class they were asked for, overall and per class. The
numbers are those of ``gencli eval --features/--classifier`` with the same ``--n`` and seed: the
probe runs the same metric code on the same ``EvalContext``.

Inception is deliberately not offered here: on a CPU one Inception pass over a thousand images
costs more than hundreds of training steps of a small model, so a probe every few hundred steps
would dominate the run. A network sized for the data costs milliseconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gencli.errors import UserError
from gencli.metrics.features import UserFeatures


class QualityProbe:
    """FID and per-class accuracy of a model's samples against held-out images, reusable across steps."""

    def __init__(self, data, n: int, batch_size: int = 250, features: str | Path | None = None,
                 classifier: str | Path | None = None, seed: int = 0, conditional: bool = False,
                 num_classes: int = 0) -> None:
        if features is None and classifier is None:
            raise UserError("eval_every needs eval_features (a TorchScript feature network for FID) "
                            "or eval_classifier (a TorchScript classifier for class accuracy)")
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise UserError(f"eval_n must be a whole number of at least 2, got {n!r}")
        if classifier is not None and not (conditional and num_classes):
            raise UserError("eval_classifier needs a conditional model trained on labelled data; "
                            "give eval_features alone for FID")
        # Loaded now, so that a missing or unsafe file stops the run before its first step.
        self.features = UserFeatures(features, what="eval_features") if features is not None else None
        self.classifier = UserFeatures(classifier, what="eval_classifier") if classifier is not None else None
        self.data, self.n, self.batch_size, self.seed = data, n, batch_size, seed
        self._real = None  # held-out features: computed once, the same every probe

    def settings(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n": self.n, "n_real": min(self.n, len(self.data)), "seed": self.seed}
        if self.features is not None:
            out["features"] = self.features.name
        if self.classifier is not None:
            out["classifier"] = self.classifier.name
        return out

    @torch.no_grad()
    def __call__(self, model) -> dict[str, float]:
        """Return the quality of ``model``'s samples now; leaves it in eval mode (the caller restores)."""
        from gencli.metrics.accuracy import ClassAccuracy
        from gencli.metrics.context import EvalContext
        from gencli.metrics.fid import FID

        ctx = EvalContext(model=model, data=self.data, n=self.n, batch_size=self.batch_size, device=model.device,
                          seed=self.seed, extractor=self.features, classifier=self.classifier, progress=False)
        out: dict[str, float] = {}
        if self.features is not None:
            if self._real is not None:
                ctx._real = self._real
            out.update(FID().compute(ctx))
            self._real = ctx.real_features()
        if self.classifier is not None:
            out.update(ClassAccuracy().compute(ctx))
        return {k: float(v) for k, v in out.items()}


def summary(values: dict[str, float]) -> str:
    """One line for the training display: FID, accuracy and the worst class."""
    parts = []
    if "fid" in values:
        parts.append(f"FID {values['fid']:.2f}")
    if "accuracy" in values:
        parts.append(f"accuracy {values['accuracy']:.1%}")
        per_class = {k.split("/", 1)[1]: v for k, v in values.items() if k.startswith("accuracy/")}
        if per_class:
            worst = min(per_class, key=per_class.get)
            parts.append(f"worst class {worst} {per_class[worst]:.1%}")
    return ", ".join(parts)
