"""`gencli eval`: compute metrics of a trained run, write its figures, log and print the results.

Which metrics run by default depends on what the model can do: reconstruction MSE, PSNR and
SSIM for models that reconstruct (with an originals-over-reconstructions grid and, on labelled
data, a latent scatter plot); FID and KID for models that sample (per-class FID as well for
conditional models, class accuracy when a ``--classifier`` is given). A model that translates
between two domains is judged on its translations of the held-out split, per direction: FID and
KID against the real images of the target domain and, on paired data, L1, PSNR and SSIM against
the ground truth, with a grid of input | output | target rows. Any metric registered through
``gencli_register_metrics`` can be named with ``--metrics``.

Without the Inception weights (and no ``--features``), the FID-style metrics are left out with
one warning line and the others are still computed; only when none is left is it an error.

Results are appended to the run's ``metrics.jsonl`` as one line ``{"eval": {...}, "settings":
{...}}``, holding the file's lock (so two evaluations, or an evaluation and a resumed training,
never lose a line); ``compare`` reads those lines back to put several runs in one table. Figures
go to ``RUN/eval/`` under unique temporary names: a link there is refused, never followed.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from gencli.errors import UserError

EVAL_DIR = "eval"
# Metrics computed on features of generated images: they share one extraction.
FEATURE_METRICS = ("fid", "kid", "prdc", "fid-class")
RECONSTRUCTION_METRICS = ("mse", "psnr", "ssim")
# Agreement with ground truth of a translation model on paired data.
PAIRED_TRANSLATION_METRICS = ("l1", "psnr", "ssim")
# How to read a column when picking the best run: a key starting with one of these is better low.
LOWER_IS_BETTER = ("fid", "kid", "mse", "l1")
NOT_RANKED = ("kid_std",)
SCATTER_POINTS = 5000
# Below this many real images FID is strongly biased upwards and KID noisy: 2048, the feature
# size of the Inception pool3 layer, is the usual advice for a full-rank covariance.
FEW_REAL_IMAGES = 2048
TRANSLATION_FIGURE_ROWS = 8


def default_metrics(model, classifier: str | None = None) -> list[str]:
    """Return the metrics that fit what ``model`` can do."""
    from gencli.metrics.context import is_translation_model

    names: list[str] = []
    if is_translation_model(model):
        names += ["fid", "kid"]
        if model.data == "paired":
            names += list(PAIRED_TRANSLATION_METRICS)
        return names
    if model.can("reconstruct"):
        names += list(RECONSTRUCTION_METRICS)
    if model.can("sample"):
        names += ["fid", "kid"]
        if model.conditional and model.num_classes:
            names.append("fid-class")
            if classifier:
                names.append("accuracy")
    if not names:
        raise UserError(f"model {model.name!r} can neither sample, reconstruct nor translate, so no metric applies by "
                        "default; name one with --metrics")
    return names


def resolve_metrics(model, names: list[str]) -> list[tuple[str, Any]]:
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


def evaluate(
    run_dir: Path,
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
) -> dict[str, Any]:
    """Return the results of evaluating a run, after logging them and writing its figures.

    The result holds ``run``, ``model``, ``step``, ``eval`` (metric name -> value), ``settings``
    (what produced them) and ``figures`` (paths written). ``label`` is a class index and
    ``sample_options`` the model's checked eval options (`gencli eval --set`).
    """
    import torch

    from gencli.data.base import DataRequest
    from gencli.data.resolve import load_dataset
    from gencli.metrics.context import EvalContext
    from gencli.ui.console import warn

    if split not in ("train", "test"):
        raise UserError(f"--split must be train or test, not {split!r}")
    from gencli.runs import Run
    from gencli.training.settings import check_flag

    check_flag("seed", seed)
    run = Run.open(run_dir)
    model = run.load_model(device=device)
    run_dir, info = run.dir, run.info
    index = label
    options = dict(sample_options or {})

    explicit = metrics is not None
    names = list(metrics) if explicit else default_metrics(model, classifier)
    chosen = resolve_metrics(model, names)
    if not features:
        chosen = _drop_unavailable_features(chosen, fid_weights, warn)

    spec = data_spec or info.get("data", {}).get("spec")
    if not spec:
        raise UserError(f"run {str(run_dir)!r} does not say which data it trained on; pass --data")
    data_seed = int(info.get("training", {}).get("seed", 0))
    channels, size = model.image_shape[0], model.image_shape[1]
    data = load_dataset(spec, DataRequest(size, channels, split, data_seed))
    if tuple(data.shape) != tuple(model.image_shape):
        raise UserError(f"--data {spec!r} gives images of shape {list(data.shape)}, "
                        f"the model makes {list(model.image_shape)}")

    ctx = EvalContext(
        model=model, data=data, n=n, batch_size=batch_size, device=model.device, seed=seed, label=index,
        features=features, fid_weights=fid_weights, classifier=classifier,
        data_key={"data": spec, "split": split, "image_size": size, "channels": channels, "seed": data_seed},
        sample_options=options, progress=progress,
    )
    metrics_to_run = [(name, metric_spec.load()()) for name, metric_spec in chosen]
    for _, metric in metrics_to_run:  # every mistake surfaces before any expensive work
        check = getattr(metric, "check", None)
        if callable(check):
            check(ctx)
    results: dict[str, float] = {}
    with torch.no_grad():
        for _, metric in metrics_to_run:
            results.update({k: float(v) for k, v in metric.compute(ctx).items()})
    _warn_few_real_images(ctx, [name for name, _ in chosen], warn)

    figures: list[Path] = []
    per_class: list[dict[str, Any]] = []
    from gencli.fileio import sealed

    folder = sealed(run_dir, EVAL_DIR, "folder", create=True)  # a link or a file there: one line, nothing written
    if any(name == "accuracy" for name, _ in chosen):
        per_class, confusion = write_confusion_figure(ctx, folder)
        figures.append(confusion)
    if ctx.translating:
        figures += write_translation_figures(ctx, folder)
    elif any(name in RECONSTRUCTION_METRICS for name, _ in chosen):
        figures += write_autoencoder_figures(ctx, folder)
    figures += [Path(p) for p in model.report(run) or []]

    settings = {
        "data": spec, "split": split, "metrics": [name for name, _ in chosen], "step": model.step,
        **ctx.settings(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    append_eval_line(run, results, settings)
    out = {"run": str(run_dir), "model": model.name, "step": model.step, "eval": results, "settings": settings,
           "figures": [str(p) for p in figures]}
    if per_class:
        out["per_class"] = per_class
    return out


def write_confusion_figure(ctx, folder: Path) -> tuple[list[dict[str, Any]], Path]:
    """Write the classifier's confusion matrix of the generated images; return the per-class rows and its path.

    Rows are the classes asked for, so the figure says not only that sevens fail but what they
    become. With ``--label`` only that class's row is filled.
    """
    from gencli.media.plots import confusion_plot
    from gencli.metrics.accuracy import confusion_matrix, per_class_rows

    model = ctx.model
    predicted, labels = ctx.classifications()
    counts = confusion_matrix(predicted, labels, model.num_classes)
    judge = getattr(ctx.classifier, "path", None)
    title = f"{model.name} at step {model.step}: {len(labels):,} images" + (f", read by {judge.name}" if judge else "")
    path = confusion_plot(counts.numpy(), model.classes, folder / "confusion.png", title)
    return per_class_rows(counts, model.classes), path


def _drop_unavailable_features(chosen, fid_weights, warn):
    """Without the Inception weights, FID-style metrics are skipped with one warning, the rest computed.

    Only when nothing is left to compute is it an error. Weights named with --fid-weights (or
    the environment) that do not exist are always an error: the user asked for that file.
    """
    import os

    from gencli.metrics.inception import WEIGHTS_ENV, find_weights, missing_weights_message

    skipped = [name for name, _ in chosen if name in FEATURE_METRICS]
    if not skipped:
        return chosen
    if fid_weights or os.environ.get(WEIGHTS_ENV):
        find_weights(fid_weights)
        return chosen
    try:
        find_weights(None)
        return chosen
    except UserError:
        kept = [(name, spec) for name, spec in chosen if name not in FEATURE_METRICS]
        message = missing_weights_message(skipped)
        if not kept:
            raise UserError(message) from None
        warn(f"skipping {', '.join(skipped)}: {message}")
        return kept


def _warn_few_real_images(ctx, names: list[str], warn) -> None:
    """Say in one line when FID or KID rest on too few real images to be compared with published values."""
    count = ctx.real_feature_count()
    used = [name for name in names if name in ("fid", "kid", "fid-class")]
    if count is None or not used or count >= FEW_REAL_IMAGES:
        return
    warn(f"{', '.join(used)} computed on only {count} real images (per side); values below {FEW_REAL_IMAGES} are "
         "biased and comparable only between evaluations with the same --n and data")


def write_autoencoder_figures(ctx, folder: Path) -> list[Path]:
    """Write originals over reconstructions and, for labelled data, a latent scatter plot."""
    import torch

    from gencli.media.images import save_grid

    recon = ctx.reconstructions()
    cols = len(recon.originals)
    paths = [save_grid(torch.cat([recon.originals, recon.reconstructed]), folder / "reconstructions.png", cols)]
    model = ctx.model
    images, labels = ctx.real_images()
    if model.can("encode") and labels is not None:
        from gencli.data.base import to_float
        from gencli.media.plots import latent_scatter

        codes = []
        with torch.no_grad():
            for lo in range(0, min(len(images), SCATTER_POINTS), ctx.batch_size):
                hi = min(lo + ctx.batch_size, SCATTER_POINTS)
                x = to_float(images[lo:hi].to(ctx.device))
                lab = labels[lo:hi].to(ctx.device) if model.conditional else None
                codes.append(model.encode(x, lab).float().flatten(1).cpu())
        z = torch.cat(codes).numpy()
        title = f"{model.name}: latent codes of {ctx.data.name} ({len(z)} images)"
        paths.append(latent_scatter(z, labels[: len(z)].numpy(), ctx.data.classes, folder / "latents.png", title))
    return paths


def write_translation_figures(ctx, folder: Path, rows: int = TRANSLATION_FIGURE_ROWS) -> list[Path]:
    """Write, per direction, a grid of held-out examples: one row per example, input | output | target.

    The target is the ground truth on paired data; on unpaired data, the translation back
    (input | output | cycled), the usual picture of a cycle-consistent model.
    """
    import torch

    from gencli.data.base import to_float
    from gencli.media.images import save_labelled_grid

    model, paths = ctx.model, []
    for direction in ctx.directions():
        t = ctx.translations(direction)
        x, y = to_float(t.inputs[:rows].clone()), to_float(t.outputs[:rows].clone())
        source, target = direction[0].upper(), direction[-1].upper()
        columns, headings = [x, y], [f"input {source}", f"output {target}"]
        back = "b2a" if direction == "a2b" else "a2b"
        if t.targets is not None:
            columns.append(to_float(t.targets[:rows].clone()))
            headings.append(f"true {target}")
        elif back in model.directions:
            with torch.no_grad():
                columns.append(model.translate(y.to(ctx.device), back).float().clamp(-1, 1).cpu())
            headings.append(f"back to {source}")
        images = torch.stack(columns, dim=1).flatten(0, 1)
        paths.append(save_labelled_grid(images, folder / f"translations-{direction}.png", len(columns), headings))
    return paths


def append_eval_line(run, results: dict[str, float], settings: dict[str, Any]) -> None:
    """Append one ``{"eval": ..., "settings": ...}`` line to the run's metrics (non-finite values as null)."""
    clean = {k: (v if math.isfinite(v) else None) for k, v in results.items()}
    run.append_metrics({"eval": clean, "settings": settings})


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
            "run": str(run.dir), "model": run.info.get("model", "?"), "data": run.info.get("data", {}).get("spec"),
            "step": settings.get("step", run.info.get("step")), "n": settings.get("n"), "split": settings.get("split"),
            "eval": values, "settings": _run_settings(run.info),
        })
    differing = settings_that_differ([r["settings"] for r in rows])
    for r in rows:
        r["differs"] = {k: r["settings"].get(k) for k in differing}
    return rows


def latest_results(run) -> tuple[dict[str, float | None], dict[str, Any]]:
    """Return a run's latest value of every metric it was evaluated on, and the settings of its last evaluation."""
    values: dict[str, float | None] = {}
    settings: dict[str, Any] = {}
    classes = run.info.get("data", {}).get("classes") or []
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
_IGNORED_TRAINING = ("sample_every", "checkpoint_every", "log_every", "keep_checkpoints", "sample_count", "devices",
                     "device", "resume", "out")


def _run_settings(info: dict[str, Any]) -> dict[str, Any]:
    """Return a run's hyperparameters and training settings as one flat dict (training ones prefixed)."""
    flat = dict(info.get("hyperparameters") or {})
    for key, value in (info.get("training") or {}).items():
        if key not in _IGNORED_TRAINING and not isinstance(value, (dict, list)):
            flat[f"training.{key}"] = value
    return flat


def settings_that_differ(settings: list[dict[str, Any]]) -> list[str]:
    """Return the keys whose values are not the same in every one of ``settings`` (in first-seen order)."""
    keys = list(dict.fromkeys(k for s in settings for k in s))
    return [k for k in keys if len({json.dumps(s[k], default=str) if k in s else "<absent>" for s in settings}) > 1]


# ------------------------------------------------------------------ rendering
def _fmt(value: float | None) -> str:
    from gencli.ui.live import format_value

    return "-" if value is None else format_value(float(value))


def render_result(result: dict[str, Any], console=None) -> None:
    """Print one run's results as a Rich table, then its settings and figures."""
    from rich.markup import escape
    from rich.table import Table

    from gencli.ui.console import out

    console = console or out
    s = result["settings"]
    title = f"{result['model']} at step {result['step']}: {s.get('data')} ({s.get('split')})"
    table = Table(title=escape(title), title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result["eval"].items():
        table.add_row(escape(key), _fmt(value))
    console.print(table)
    if result.get("per_class"):
        console.print(per_class_table(result["per_class"]))
    used = [f"n={s.get('n')}"] + [f"{k}={s[k]}" for k in ("n_real", "features", "label", "seed") if k in s]
    console.print("settings: " + ", ".join(used), highlight=False, markup=False)
    for path in result.get("figures", []):
        console.print(f"figure: {path}", highlight=False, markup=False)


def per_class_table(rows: list[dict[str, Any]]):
    """The per-class accuracy of a conditional model's images as a Rich table, worst class first."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="class accuracy (classifier's reading of images asked for each class)", title_justify="left")
    for name, justify in (("class", "left"), ("images", "right"), ("accuracy", "right"), ("most often read as", "left")):
        table.add_column(name, justify=justify)
    for row in sorted(rows, key=lambda r: r["accuracy"]):
        wrong = f"{escape(str(row['confused_with']))} ({row['confused_share']:.0%})" if row["confused_with"] else "-"
        table.add_row(escape(str(row["class"])), f"{row['n']:,}", f"{row['accuracy']:.1%}", wrong)
    return table


def _best(rows: list[dict[str, Any]], key: str) -> float | None:
    if key in NOT_RANKED:
        return None
    values = [r["eval"][key] for r in rows if r["eval"].get(key) is not None]
    if len(values) < 2:
        return None
    return min(values) if key.startswith(LOWER_IS_BETTER) else max(values)


def render_compare(rows: list[dict[str, Any]], console=None) -> None:
    """Print one table across runs (a column per run, a row per metric), the best value in bold."""
    from rich.markup import escape
    from rich.table import Table

    from gencli.ui.console import out

    console = console or out
    keys = list(dict.fromkeys(k for r in rows for k in r["eval"]))
    table = Table(title="evaluations", title_justify="left")
    table.add_column("")
    for r in rows:
        table.add_column(escape(Path(r["run"]).name), justify="right")
    for field in ("model", "data", "step", "n", "split"):
        table.add_row(field, *[escape(str(r[field])) if r.get(field) is not None else "-" for r in rows], style="dim")
    # What sets the runs apart: without it two runs of one model with different targets look alike.
    differing = list(dict.fromkeys(k for r in rows for k in r.get("differs", {})))
    for key in differing:
        cells = [r.get("differs", {}).get(key) for r in rows]
        table.add_row(escape(key), *[escape(str(c)) if c is not None else "-" for c in cells], style="cyan")
    for key in keys:
        best = _best(rows, key)
        cells = []
        for r in rows:
            v = r["eval"].get(key)
            text = _fmt(v)
            cells.append(f"[bold]{text}[/]" if v is not None and v == best else text)
        table.add_row(escape(key), *cells)
    console.print(table)
    if not keys:
        console.print("no run has been evaluated yet: run `gencli eval RUN` first", highlight=False)
