"""Which metrics ``gencli eval`` computes: the defaults a run's kind calls for, and checks of those named.

Every decision reads the metric's declared ``MetricProperties`` (built-in and plugin metrics
alike): the kinds of run it is a default for, whether it needs features, labels or a classifier.
No torch at import time.
"""

from __future__ import annotations

import os
from typing import Any

from gencli.errors import UserError
from gencli.registry import RUN_KINDS, MetricSpec


def is_translation_model(model) -> bool:
    """Whether ``model`` is evaluated as a translator: it translates and trains on two domains."""
    can = getattr(model, "can", None)
    return bool(callable(can) and can("translate") and getattr(model, "data", "") in ("paired", "unpaired"))


def registered_metrics() -> dict[str, MetricSpec]:
    """Return the metrics by the names users type (a shadowed one's ``plugin:name`` left out)."""
    from gencli.plugins import registry

    return {name: spec for name, spec in registry().metrics.items() if ":" not in name}


def run_kinds(model) -> list[str]:
    """Return the kinds of run ``model`` is (``gencli.registry.RUN_KINDS``), in the order defaults are listed.

    A translator is judged on its translations only; other models on what they can do.
    """
    if is_translation_model(model):
        return ["translation"] + (["paired-translation"] if model.data == "paired" else [])
    kinds = []
    if model.can("reconstruct"):
        kinds.append("reconstructive")
    if model.can("sample"):
        kinds.append("generative")
        if model.conditional and model.num_classes:
            kinds.append("conditional")
    return kinds


def default_metrics(model, classifier: str | None = None, specs: dict[str, MetricSpec] | None = None) -> list[str]:
    """Return the metrics that fit what ``model`` can do: those declaring its run kinds as their default.

    Within a kind they come in registration order (the built-in ones first).
    """
    specs = registered_metrics() if specs is None else specs
    kinds = run_kinds(model)
    names: list[str] = []
    for kind in (k for k in RUN_KINDS if k in kinds):
        names += [name for name, s in specs.items()
                  if kind in s.properties.default_for and (classifier or not s.properties.needs_classifier)]
    if not names:
        raise UserError(f"model {model.name!r} can neither sample, reconstruct nor translate, so no metric applies by "
                        "default; name one with --metrics")
    return list(dict.fromkeys(names))


def resolve_metrics(model, names: list[str]) -> list[tuple[str, MetricSpec]]:
    """Return (name, spec) for each named metric, refusing unknown ones and ones the model cannot serve."""
    from gencli.models.base import CAPABILITIES, capabilities, has_capability
    from gencli.plugins import registry

    reg = registry()
    out = []
    for name in dict.fromkeys(n for n in names if n):  # keep order, drop repeats
        spec = reg.metric(name)
        needs = (spec.needs,) if isinstance(spec.needs, str) else tuple(spec.needs)
        known = [c for c in needs if c in CAPABILITIES]
        if known and not any(has_capability(type(model), c) for c in known):
            can = ", ".join(capabilities(type(model))) or "nothing beyond training"
            raise UserError(f"metric {name!r} needs a model that can {' or '.join(known)}; "
                            f"model {model.name!r} can: {can}")
        out.append((name, spec))
    if not out:
        raise UserError("--metrics names no metric")
    return out


def check_declared_needs(chosen: list[tuple[str, MetricSpec]], data, classifier) -> None:
    """Refuse, in one line, a metric whose declared needs (labels, a classifier) this evaluation lacks."""
    for name, spec in chosen:
        if spec.properties.needs_labels and getattr(data, "labels", None) is None:
            raise UserError(f"metric {name!r} needs labelled data; {data.name!r} has no labels")
        if spec.properties.needs_classifier and not classifier:
            raise UserError(f"metric {name!r} needs --classifier, a TorchScript classifier of the images")


def drop_unavailable_features(chosen: list[tuple[str, MetricSpec]], fid_weights: str | None,
                              warn) -> list[tuple[str, MetricSpec]]:
    """Without the Inception weights, metrics that need features are skipped with one warning, the rest computed.

    Only when nothing is left to compute is it an error. Weights named with --fid-weights (or
    the environment) that do not exist are always an error: the user asked for that file.
    """
    from gencli.metrics.inception import WEIGHTS_ENV, find_weights, missing_weights_message

    skipped = [name for name, spec in chosen if spec.properties.needs_features]
    if not skipped:
        return chosen
    if fid_weights or os.environ.get(WEIGHTS_ENV):
        find_weights(fid_weights)
        return chosen
    try:
        find_weights(None)
        return chosen
    except UserError:
        kept = [(name, spec) for name, spec in chosen if not spec.properties.needs_features]
        message = missing_weights_message(skipped)
        if not kept:
            raise UserError(message) from None
        warn(f"skipping {', '.join(skipped)}: {message}")
        return kept


def feature_metric_names(chosen: list[tuple[str, Any]]) -> list[str]:
    """Return the names of the chosen metrics that are computed on features."""
    return [name for name, spec in chosen if spec.properties.needs_features]
