"""`gencli eval`: metrics and figures of trained runs, a table across runs, and scores of two image folders.

Argument parsing and rendering only: the evaluation itself lives in ``gencli.metrics``
(``evaluate`` for a run, ``compare`` for several, ``folders`` for ``--real A --fake B``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from gencli.cli.common import (
    DeviceOpt,
    LabelOpt,
    SeedOpt,
    SetOpt,
    complete_runs,
    examples,
    handle_errors,
    inference_device,
    model_options,
    one_label,
)
from gencli.errors import UserError

EPILOG = examples(
    "gencli eval RUN",
    "gencli eval RUN --metrics fid,kid --n 5000 --set KEY=VALUE   # KEY: one of the model's eval options",
    "gencli eval RUN_A RUN_B --compare",
    "gencli eval --real REAL_DIR --fake FAKE_DIR --fid-weights pt_inception.pth   # two image folders",
)


@handle_errors
def eval_(
    runs: Annotated[Optional[list[str]], typer.Argument(help="Run directory (or several with --compare).",
                                                        autocompletion=complete_runs, show_default=False)] = None,
    metrics: Annotated[Optional[str], typer.Option(
        "--metrics", help="Comma-separated: fid, kid, prdc, fid-class, accuracy, mse, psnr, ssim, or a plugin's.",
        show_default="what fits the model")] = None,
    n: Annotated[Optional[int], typer.Option("--n", help="Generated images for FID-style metrics.", show_default="10000")] = None,
    data: Annotated[Optional[str], typer.Option("--data", help="Real data to compare with.", show_default="the run's")] = None,
    split: Annotated[Optional[str], typer.Option("--split", help="Real-data split: train or test.", show_default="test")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Batch size for generation and features.")] = 100,
    fid_weights: Annotated[Optional[str], typer.Option("--fid-weights", help="Local FID Inception weights (pt_inception-2015-12-05-6726825d.pth).",
                                                       show_default=False)] = None,
    features: Annotated[Optional[str], typer.Option("--features", help="TorchScript feature network instead of Inception.",
                                                    show_default=False)] = None,
    classifier: Annotated[Optional[str], typer.Option("--classifier", help="TorchScript classifier for class accuracy.",
                                                      show_default=False)] = None,
    label: LabelOpt = None,
    set_: SetOpt = None,
    compare: Annotated[bool, typer.Option("--compare", help="Print one table of the stored results of several runs.")] = False,
    real: Annotated[Optional[str], typer.Option("--real", help="Folder of real images: score --fake against it (no run).",
                                                show_default=False)] = None,
    fake: Annotated[Optional[str], typer.Option("--fake", help="Folder of generated images to score against --real.",
                                                show_default=False)] = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
) -> None:
    """Evaluate trained models: FID, KID, precision/recall, reconstruction metrics and figures."""
    names = [m.strip() for m in metrics.split(",")] if metrics else None
    runs = runs or []
    if real is not None or fake is not None:
        _score_folders(runs, real, fake, names, n=n, data=data, split=split, classifier=classifier, label=label,
                       set_=set_, compare=compare, batch_size=batch_size, device=device, fid_weights=fid_weights,
                       features=features, seed=seed, json_out=json_out)
        return
    from gencli.metrics import compare as cmp

    if compare:
        rows = cmp.compare([Path(r) for r in runs])
        if json_out:
            print(json.dumps(rows, indent=2))
        else:
            render_compare(rows)
        return
    if len(runs) != 1:
        raise UserError("give one run to evaluate, --compare with several, or --real and --fake folders")
    n = 10000 if n is None else n
    from gencli.runs.values import check_count

    check_count(n, "--n", limit=1_000_000)
    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    from gencli.metrics.evaluate import evaluate
    from gencli.runs import Run

    run = Run.open(runs[0])
    cls = run.model_class()
    options = model_options(cls, cls.eval_options(), set_, "eval")
    index = None
    if label is not None:
        from gencli.models.labels import LabelProbe

        probe = LabelProbe(cls, run.classes)
        index = one_label(probe, label)
    result = evaluate(run, names, n, data, split or "test", batch_size, inference_device(device), fid_weights,
                      features, classifier, index, seed, sample_options=options)
    if set_ and "sample_options" not in result["applied"]:
        from gencli.ui.console import warn

        warn(f"--set {', '.join(set_)} had no effect: no metric run generates images "
             f"({', '.join(result['settings']['metrics'])})")
    from gencli.media.model_card import refresh_model_card

    refresh_model_card(run)
    if json_out:
        print(json.dumps(result, indent=2, default=str))
    else:
        render_result(result)


def _score_folders(runs: list[str], real: str | None, fake: str | None, names: list[str] | None, *, n, data, split,
                   classifier, label, set_, compare, batch_size, device, fid_weights, features, seed,
                   json_out) -> None:
    """`gencli eval --real A --fake B`: refuse what does not apply to two folders, score, print."""
    if real is None or fake is None:
        raise UserError("--real and --fake go together: the folder of real images and the one to score against it")
    given = {"a run": bool(runs), "--compare": compare, "--n": n is not None, "--data": data is not None,
             "--split": split is not None, "--classifier": classifier is not None, "--label": label is not None,
             "--set": bool(set_)}
    wrong = [k for k, v in given.items() if v]
    if wrong:
        raise UserError(f"{', '.join(wrong)} cannot be used with --real and --fake, which score every image of "
                        "two folders")
    from gencli.metrics.folders import score_folders

    result = score_folders(real, fake, names, batch_size, inference_device(device), fid_weights, features, seed)
    if json_out:
        print(json.dumps(result, indent=2, default=str))
    else:
        render_result(result)


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
    if "model" in result:
        title = f"{result['model']} at step {result['step']}: {s.get('data')} ({s.get('split')})"
    else:  # two folders
        title = f"{result['fake']} against {result['real']}"
    table = Table(title=escape(title), title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result["eval"].items():
        table.add_row(escape(key), _fmt(value))
    console.print(table)
    if result.get("per_class"):
        console.print(per_class_table(result["per_class"]))
    console.print("settings: " + ", ".join(_applied(result)), highlight=False, markup=False)
    for path in result.get("figures", []):
        console.print(f"figure: {path}", highlight=False, markup=False)


def _applied(result: dict[str, Any]) -> list[str]:
    """Return ``key=value`` for each setting that shaped the numbers (all of the usual ones for older results)."""
    s = result["settings"]
    keys = result.get("applied", ["n", "n_real", "features", "label", "seed"])
    return [f"{k}={s[k]}" for k in keys if k in s]


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


def render_compare(rows: list[dict[str, Any]], console=None) -> None:
    """Print one table across runs (a column per run, a row per metric), the best value in bold."""
    from rich.markup import escape
    from rich.table import Table

    from gencli.metrics.compare import best_value
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
        best = best_value([r["eval"].get(key) for r in rows], key)
        cells = []
        for r in rows:
            v = r["eval"].get(key)
            text = _fmt(v)
            cells.append(f"[bold]{text}[/]" if v is not None and v == best else text)
        table.add_row(escape(key), *cells)
    console.print(table)
    if not keys:
        console.print("no run has been evaluated yet: run `gencli eval RUN` first", highlight=False)
