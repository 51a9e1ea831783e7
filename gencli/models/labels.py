"""Class labels for a conditional model asked for images without a class.

A model trained on a class folder is conditional, yet most users sample it without ``--label``.
Such a model is never handed "no label" (which a model may read as a branch it trained less): the
core draws the classes itself, in the proportions of the training
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


def parse_labels(model, text: str | None) -> list[int] | None:
    """Return the class indices ``text`` names (``--label``): one index or name, a comma list, or ``all``.

    ``model`` needs ``name``, ``conditional``, ``classes`` and ``num_classes`` (a model, or what a
    command knows of one before building it). The command line and ``gencli.sample`` both call it.
    """
    from gencli.errors import UserError, did_you_mean

    if text is None:
        return None
    if not model.conditional or model.num_classes == 0:
        why = "was trained without labels" if model.conditional else "is not conditional"
        able = _conditional_models()
        raise UserError(f"--label given, but model {model.name!r} {why}"
                        + (f"; conditional models: {', '.join(able)}" if able else ""))
    classes = model.classes
    if text.strip().lower() == "all":
        return list(range(len(classes)))
    out = []
    for item in (text.split(",") if text not in classes else [text]):
        item = item.strip()
        if item in classes:
            out.append(classes.index(item))
            continue
        try:
            index = int(item)
        except ValueError:
            raise UserError(f"unknown class {item!r}{did_you_mean(item, classes)}; classes: {', '.join(classes)}") from None
        if not 0 <= index < len(classes):
            raise UserError(f"label {index} is out of range: this model has {len(classes)} classes (0-{len(classes) - 1})")
        out.append(index)
    if not out:
        raise UserError("--label is empty; give a class index or name, a comma list, or all")
    return out


def _conditional_models() -> list[str]:
    """The installed models that take class labels (ones that fail to load are left out)."""
    from gencli.errors import UserError
    from gencli.plugins import registry

    able = []
    for name in registry().models:
        if ":" in name:
            continue
        try:
            if registry().model_class(name).conditional:
                able.append(name)
        except UserError:
            continue
    return sorted(able)


def labels_in_proportion(run, model, n: int, seed: int) -> tuple[torch.Tensor | None, str | None]:
    """Return (the classes of ``n`` images of ``model`` sampled without a label, a note saying how
    they were drawn): in the proportions of the run's training data, uniformly for a run that
    records no counts; (None, None) for a model that is not conditional."""
    if not (model.conditional and model.num_classes):
        return None, None
    counts = run.class_counts
    note = ("no --label: classes drawn in the data's proportions" if counts else
            "no --label: classes drawn uniformly (the run records no class counts)")
    return draw_labels(n, model.num_classes, counts, torch.Generator().manual_seed(seed)).to(model.device), note


class LabelProbe:
    """What the label parser reads of a model, known before the model is built."""

    def __init__(self, cls: type, classes: list[str]) -> None:
        self.name, self.conditional, self.classes, self.num_classes = cls.name, cls.conditional, classes, len(classes)
