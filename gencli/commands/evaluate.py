"""`gencli eval`: compute metrics of a trained run, write its figures, log and print the results.

Which metrics run by default depends on what the model can do: reconstruction MSE, PSNR and
SSIM for models that reconstruct (with an originals-over-reconstructions grid and, on labelled
data, a latent scatter plot); FID and KID for models that sample (per-class FID as well for
conditional models, class accuracy when a ``--classifier`` is given). Any metric registered
through ``gencli_register_metrics`` can be named with ``--metrics``.

Results are appended to the run's ``metrics.jsonl`` as one line ``{"eval": {...}, "settings":
{...}}``; ``compare`` reads those lines back to put several runs in one table.
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
# How to read a column when picking the best run: a key starting with one of these is better low.
LOWER_IS_BETTER = ("fid", "kid", "mse")
NOT_RANKED = ("kid_std",)
SCATTER_POINTS = 5000


def default_metrics(model, classifier: str | None = None) -> list[str]:
    """Return the metrics that fit what ``model`` can do."""
    names: list[str] = []
    if model.can("reconstruct"):
        names += list(RECONSTRUCTION_METRICS)
    if model.can("sample"):
        names += ["fid", "kid"]
        if model.conditional and model.num_classes:
            names.append("fid-class")
            if classifier:
                names.append("accuracy")
    if not names:
        raise UserError(f"model {model.name!r} can neither sample nor reconstruct, so no metric applies by default; "
                        "name one with --metrics")
    return names


def parse_label(model, label: str | int | None) -> int | None:
    """Return the class index of ``label`` (an index or a class name), or None."""
    if label is None:
        return None
    if not model.conditional or not model.num_classes:
        raise UserError(f"--label given, but model {model.name!r} is not conditional")
    if isinstance(label, str) and label in model.classes:
        return model.classes.index(label)
    try:
        index = int(label)
    except ValueError:
        from gencli.errors import did_you_mean

        raise UserError(f"unknown class {label!r}{did_you_mean(str(label), model.classes)}; "
                        f"classes: {', '.join(model.classes)}") from None
    if not 0 <= index < model.num_classes:
        raise UserError(f"--label {index} is out of range: the model has {model.num_classes} classes "
                        f"(0-{model.num_classes - 1})")
    return index


def resolve_metrics(model, names: list[str]) -> list[tuple[str, Any]]:
    """Return (name, spec) for each named metric, refusing unknown ones and ones the model cannot serve."""
    from gencli.models.base import CAPABILITIES, capabilities, has_capability
    from gencli.plugins import registry

    reg = registry()
    out = []
    for name in dict.fromkeys(n for n in names if n):  # keep order, drop repeats
        spec = reg.metric(name)
        if spec.needs in CAPABILITIES and not has_capability(type(model), spec.needs):
            can = ", ".join(capabilities(type(model))) or "nothing beyond training"
            raise UserError(f"metric {name!r} needs a model that can {spec.needs}; model {model.name!r} can: {can}")
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
    label: str | None = None,
    seed: int = 0,
    sample_options: dict[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Return the results of evaluating a run, after logging them and writing its figures.

    The result holds ``run``, ``model``, ``step``, ``eval`` (metric name -> value), ``settings``
    (what produced them) and ``figures`` (paths written).
    """
    import torch

    import gencli
    from gencli.data.base import DataRequest
    from gencli.data.resolve import load_dataset
    from gencli.metrics.context import EvalContext
    from gencli.ui.console import warn

    if split not in ("train", "test"):
        raise UserError(f"--split must be train or test, not {split!r}")
    from gencli.training.settings import check_flag

    check_flag("seed", seed)
    model = gencli.load_run(run_dir, device=device)
    run_dir = Path(getattr(model, "run_dir", run_dir))
    info = getattr(model, "run_info", {})
    index = parse_label(model, label)
    options = dict(sample_options or {})
    for key in options:
        if key not in model.sample_options:
            raise UserError(f"model {model.name!r} does not take the sampling option {key!r}")

    explicit = metrics is not None
    names = list(metrics) if explicit else default_metrics(model, classifier)
    chosen = resolve_metrics(model, names)
    if not explicit and not features:
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

    figures: list[Path] = []
    if any(name in RECONSTRUCTION_METRICS for name, _ in chosen):
        figures += write_autoencoder_figures(ctx, run_dir / EVAL_DIR)
    report = getattr(model, "report", None)
    if callable(report):
        figures += [Path(p) for p in report(run_dir) or []]

    settings = {
        "data": spec, "split": split, "metrics": [name for name, _ in chosen], "step": model.step,
        **ctx.settings(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    append_eval_line(run_dir / "metrics.jsonl", results, settings)
    return {"run": str(run_dir), "model": model.name, "step": model.step, "eval": results, "settings": settings,
            "figures": [str(p) for p in figures]}


def _drop_unavailable_features(chosen, fid_weights, warn):
    """Without the Inception weights, default FID-style metrics are skipped with a warning, not an error."""
    from gencli.metrics.inception import find_weights

    if not any(name in FEATURE_METRICS for name, _ in chosen):
        return chosen
    try:
        find_weights(fid_weights)
        return chosen
    except UserError as exc:
        skipped = [name for name, _ in chosen if name in FEATURE_METRICS]
        kept = [(name, spec) for name, spec in chosen if name not in FEATURE_METRICS]
        if not kept:
            raise
        warn(f"skipping {', '.join(skipped)}: {exc}")
        return kept


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


def append_eval_line(path: Path, results: dict[str, float], settings: dict[str, Any]) -> None:
    """Append one ``{"eval": ..., "settings": ...}`` line (non-finite values as null)."""
    clean = {k: (v if math.isfinite(v) else None) for k, v in results.items()}
    line = json.dumps({"eval": clean, "settings": settings}, default=str)
    with open(path, "a") as fh:
        fh.write(line + "\n")


def read_eval_lines(path: Path) -> list[dict[str, Any]]:
    """Return the eval lines of a metrics.jsonl, oldest first (broken lines skipped)."""
    rows = []
    if not path.is_file():
        return rows
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("eval"), dict):
            rows.append(row)
    return rows


def compare(run_dirs: list[Path]) -> list[dict[str, Any]]:
    """Return one row per run: its latest value of every metric it was evaluated on, and settings."""
    from gencli.training.runs import resolve_run

    if not run_dirs:
        raise UserError("--compare needs at least one run")
    rows = []
    for ref in run_dirs:
        run = resolve_run(str(ref))
        values: dict[str, float | None] = {}
        settings: dict[str, Any] = {}
        classes = run.info.get("data", {}).get("classes") or []
        for line in read_eval_lines(run.run_dir / "metrics.jsonl"):
            settings = line.get("settings", {})
            label = settings.get("label")
            if label is not None:  # one class's numbers are not the model's: keep them apart
                name = classes[label] if isinstance(label, int) and label < len(classes) else label
                values.update({f"{k} [{name}]": v for k, v in line["eval"].items()})
            else:
                values.update(line["eval"])  # later evaluations overwrite earlier ones
        rows.append({
            "run": str(run.run_dir), "model": run.info.get("model", "?"), "data": run.info.get("data", {}).get("spec"),
            "step": settings.get("step", run.info.get("step")), "n": settings.get("n"), "split": settings.get("split"),
            "eval": values,
        })
    return rows


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
    used = [f"n={s.get('n')}"] + [f"{k}={s[k]}" for k in ("n_real", "features", "label", "seed") if k in s]
    console.print("settings: " + ", ".join(used), highlight=False, markup=False)
    for path in result.get("figures", []):
        console.print(f"figure: {path}", highlight=False, markup=False)


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
