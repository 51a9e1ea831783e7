"""Evaluating a trained run: compute its metrics, write its figures, record the results.

Which metrics run by default depends on what the model can do, read from each metric's declared
properties (``gencli.metrics.choose``): reconstruction MSE, PSNR and SSIM for models that
reconstruct (with an originals-over-reconstructions grid and, on labelled data, a latent scatter
plot); FID and KID for models that sample (per-class FID as well for conditional models, class
accuracy when a ``--classifier`` is given). A model that translates between two domains is
judged on its translations of the held-out split, per direction: FID and KID against the real
images of the target domain and, on paired data, L1, PSNR and SSIM against the ground truth,
with a grid of input | output | target rows. Any metric registered through
``gencli_register_metrics`` can be named with ``--metrics``.

Without the Inception weights (and no ``--features``), the metrics that need features are left
out with one warning line and the others are still computed; only when none is left is it an
error.

Results are appended to the run's ``metrics.jsonl`` as one line ``{"eval": {...}, "settings":
{...}}``, holding the file's lock (so two evaluations, or an evaluation and a resumed training,
never lose a line); ``gencli.metrics.compare`` reads those lines back to put several runs in one
table. Figures go to ``RUN/eval/`` under unique temporary names: a link there is refused, never
followed.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from gencli.errors import UserError
from gencli.metrics import figures
from gencli.metrics.choose import (
    check_declared_needs,
    default_metrics,
    drop_unavailable_features,
    feature_metric_names,
    resolve_metrics,
)

EVAL_DIR = "eval"
# Below this many real images FID is strongly biased upwards and KID noisy: 2048, the feature
# size of the Inception pool3 layer, is the usual advice for a full-rank covariance.
FEW_REAL_IMAGES = 2048


def evaluate(
    run_dir: Path | Any,
    metrics: list[str] | None = None,
    n: int = 10_000,
    data_spec: str | None = None,
    split: str = "test",
    batch_size: int = 100,
    device: str = "cpu",
    fid_weights: str | None = None,
    features: str | None = None,
    classifier: str | None = None,
    label: int | None = None,
    seed: int = 0,
    sample_options: dict[str, Any] | None = None,
    progress: bool = True,
    record: bool = True,
) -> dict[str, Any]:
    """Return the results of evaluating a run, after logging them and writing its figures.

    ``run_dir`` is a run directory (or checkpoint, or model name), or the ``gencli.runs.Run`` a
    command already opened, so the run is opened once. The result holds ``run``, ``model``, ``step``, ``eval`` (metric name -> value), ``settings``
    (what produced them), ``applied`` (the keys of ``settings`` that shaped these numbers) and
    ``figures`` (paths written). ``label`` is a class index and ``sample_options`` the model's
    checked eval options (`gencli eval --set`). ``record=False`` leaves the results out of
    ``metrics.jsonl`` and the run's loggers (the figures are still written).
    """
    from gencli.data.resolve import load_dataset
    from gencli.metrics.context import EvalContext
    from gencli.runs import Run
    from gencli.runs.values import check_flag
    from gencli.ui.console import warn

    if split not in ("train", "test"):
        raise UserError(f"--split must be train or test, not {split!r}")
    check_flag("seed", seed)
    run = run_dir if isinstance(run_dir, Run) else Run.open(run_dir)  # a command that opened it passes it on
    model = run.load_model(device=device)
    run_dir = run.dir
    options = dict(sample_options or {})

    names = list(metrics) if metrics is not None else default_metrics(model, classifier)
    chosen = resolve_metrics(model, names)
    if not features:
        chosen = drop_unavailable_features(chosen, fid_weights, warn)

    spec = data_spec or run.data_spec
    if not spec:
        raise UserError(f"run {str(run_dir)!r} does not say which data it trained on; pass --data")
    request = run.data_request(split)
    data_seed, channels, size = request.seed, request.channels, request.image_size
    data = load_dataset(spec, request)
    if tuple(data.shape) != tuple(model.image_shape):
        raise UserError(f"--data {spec!r} gives images of shape {list(data.shape)}, "
                        f"the model makes {list(model.image_shape)}")

    ctx = EvalContext(
        model=model, data=data, n=n, batch_size=batch_size, device=model.device, seed=seed, label=label,
        features=features, fid_weights=fid_weights, classifier=classifier,
        data_key={"data": spec, "split": split, "image_size": size, "channels": channels, "seed": data_seed},
        sample_options=options, progress=progress,
    )
    results = compute_metrics(ctx, chosen, classifier)
    warn_few_real_images(ctx, feature_metric_names(chosen), warn)

    written: list[Path] = []
    per_class: list[dict[str, Any]] = []
    from gencli.fileio import sealed

    folder = sealed(run_dir, EVAL_DIR, "folder", create=True)  # a link or a file there: one line, nothing written
    if any(spec.properties.needs_classifier for _, spec in chosen):
        per_class, confusion = figures.write_confusion_figure(ctx, folder)
        written.append(confusion)
    if ctx.translating:
        written += figures.write_translation_figures(ctx, folder)
    elif any("reconstructive" in spec.properties.default_for for _, spec in chosen):
        written += figures.write_autoencoder_figures(ctx, folder)
    written += [Path(p) for p in model.report(run) or []]

    settings = {
        "data": spec, "split": split, "metrics": [name for name, _ in chosen], "step": model.step,
        **ctx.settings(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if record:
        append_eval_line(run, results, settings)
        from gencli.loggers import send_eval

        send_eval(run_dir, run.info, model.step, results)  # to the loggers the run trained with (run.json)
    out = {"run": str(run_dir), "model": model.name, "step": model.step, "eval": results, "settings": settings,
           "applied": ctx.applied_settings(), "figures": [str(p) for p in written]}
    if per_class:
        out["per_class"] = per_class
    return out


def compute_metrics(ctx, chosen, classifier=None) -> dict[str, float]:
    """Check every chosen metric, then compute them all on the shared context; return name -> value.

    Every mistake (a metric's own ``check``, then its declared needs) surfaces before any
    expensive work.
    """
    import torch

    metrics_to_run = [(name, metric_spec.load()()) for name, metric_spec in chosen]
    for _, metric in metrics_to_run:
        check = getattr(metric, "check", None)
        if callable(check):
            check(ctx)
    check_declared_needs(chosen, ctx.data, classifier)
    results: dict[str, float] = {}
    with torch.no_grad():
        for _, metric in metrics_to_run:
            results.update({k: float(v) for k, v in metric.compute(ctx).items()})
    return results


def warn_few_real_images(ctx, names: list[str], warn) -> None:
    """Say in one line when feature metrics rest on too few real images to be compared with published values."""
    count = ctx.real_feature_count()
    if count is None or not names or count >= FEW_REAL_IMAGES:
        return
    warn(f"{', '.join(names)} computed on only {count} real images (per side); values below {FEW_REAL_IMAGES} are "
         "biased and comparable only between evaluations with the same --n and data")


def append_eval_line(run, results: dict[str, float], settings: dict[str, Any]) -> None:
    """Append one ``{"eval": ..., "settings": ...}`` line to the run's metrics (non-finite values as null)."""
    clean = {k: (v if math.isfinite(v) else None) for k, v in results.items()}
    run.append_metrics({"eval": clean, "settings": settings})
