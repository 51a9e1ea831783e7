"""Reading evaluations back: a run's latest results, one row per run for ``gencli eval --compare``, and ranking.

How a value ranks comes from the declaration of the metric that produced it
(``MetricProperties.lower_is_better`` and ``not_ranked``): a key belongs to the metric whose
name is the key, or the key's part before ``/`` or `` [`` (``fid/a2b``, ``mse [cat]``). Keys of
no registered metric (``precision``) rank higher-is-better. No torch at import time: ``gencli
report`` reads these too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gencli.errors import UserError
from gencli.metrics.choose import registered_metrics
from gencli.registry import MetricSpec


def compare(run_dirs: list[Path]) -> list[dict[str, Any]]:
    """Return one row per run: its latest value of every metric it was evaluated on, and settings."""
    from gencli.runs import Run

    if not run_dirs:
        raise UserError("--compare needs at least one run")
    rows = []
    for ref in run_dirs:
        run = Run.open(ref)
        values, settings = latest_results(run)
        rows.append({
            "run": str(run.dir), "model": run.model_name, "data": run.data_spec or None,
            "step": settings.get("step", run.step), "n": settings.get("n"), "split": settings.get("split"),
            "eval": values, "settings": run_settings(run),
        })
    differing = settings_that_differ([r["settings"] for r in rows])
    for r in rows:
        r["differs"] = {k: r["settings"].get(k) for k in differing}
    return rows


def latest_results(run) -> tuple[dict[str, float | None], dict[str, Any]]:
    """Return a run's latest value of every metric it was evaluated on, and the settings of its last evaluation."""
    values: dict[str, float | None] = {}
    settings: dict[str, Any] = {}
    classes = run.classes
    for line in run.evaluations():
        settings = line.get("settings", {})
        label = settings.get("label")
        if label is not None:  # one class's numbers are not the model's: keep them apart
            name = classes[label] if isinstance(label, int) and 0 <= label < len(classes) else label
            values.update({f"{k} [{name}]": v for k, v in line["eval"].items()})
        else:
            values.update(line["eval"])  # later evaluations overwrite earlier ones
    return values, settings


# Training settings that say nothing about the model (where it ran, how often it logged).
IGNORED_TRAINING = ("sample_every", "checkpoint_every", "log_every", "keep_checkpoints", "sample_count", "devices",
                    "device", "resume", "out")


def run_settings(run) -> dict[str, Any]:
    """Return a run's hyperparameters and training settings as one flat dict (training ones prefixed)."""
    flat = run.hyperparameters
    for key, value in run.training_settings.items():
        if key not in IGNORED_TRAINING and not isinstance(value, (dict, list)):
            flat[f"training.{key}"] = value
    return flat


def settings_that_differ(settings: list[dict[str, Any]]) -> list[str]:
    """Return the keys whose values are not the same in every one of ``settings`` (in first-seen order)."""
    keys = list(dict.fromkeys(k for s in settings for k in s))
    return [k for k in keys if len({json.dumps(s[k], default=str) if k in s else "<absent>" for s in settings}) > 1]


# ------------------------------------------------------------------ ranking
def _metric_part(key: str) -> str:
    return key.split(" [", 1)[0].split("/", 1)[0]


def ranking(key: str, specs: dict[str, MetricSpec] | None = None) -> str | None:
    """Return how values of result ``key`` rank: "lower" or "higher" is better, or None (never ranked)."""
    specs = registered_metrics() if specs is None else specs
    part = _metric_part(key)
    if any(part in spec.properties.not_ranked for spec in specs.values()):
        return None
    spec = specs.get(part)
    return "lower" if spec is not None and spec.properties.lower_is_better else "higher"


def best_value(values: list[float | None], key: str) -> float | None:
    """Return the best of ``values`` for result ``key`` (None: fewer than two values, or not ranked)."""
    present = [v for v in values if isinstance(v, (int, float))]
    how = ranking(key)
    if len(present) < 2 or how is None:
        return None
    return min(present) if how == "lower" else max(present)


def _declared(attribute: str) -> tuple[str, ...]:
    specs = registered_metrics().values()
    if attribute == "LOWER_IS_BETTER":
        return tuple(name for name, s in registered_metrics().items() if s.properties.lower_is_better)
    return tuple(dict.fromkeys(k for s in specs for k in s.properties.not_ranked))


def __getattr__(name: str):
    """``LOWER_IS_BETTER`` (prefixes of keys better low) and ``NOT_RANKED`` (keys never ranked), from the declarations."""
    if name in ("LOWER_IS_BETTER", "NOT_RANKED"):
        return _declared(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
