"""`gencli report`: one self-contained HTML page of a run, or of several runs side by side.

The page carries everything inline: images as ``data:`` URIs, its CSS, and one small script that
says when an image could not be shown. A Content-Security-Policy lets it load nothing else and
run no other script, so the page makes no request wherever it is opened.

A run is a stranger's folder: every string read from it is escaped into the page, nothing in it is
reached through a link (the run is sealed, ``gencli.runs.check_sealed``), each image is read with a
size cap and decoded once before it is inlined, and nothing is written but the page. No torch:
the page needs no model.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gencli.errors import UserError
from gencli.runs import RUN_FILE, Run

MAX_RUNS = 20
MAX_IMAGE_BYTES = 16 << 20  # one sample grid or progress GIF; the engine writes far smaller ones
MAX_IMAGE_PIXELS = 40_000_000
MAX_SAMPLE_GRIDS = 12  # a long run saves hundreds: the page shows this many, first and last included
MAX_PANELS = 9
MAX_TEXT = 300  # characters of one table cell
MAX_ITEMS = 20  # items of a list shown in one cell (a run's class names, say)
SAMPLE_NAME = re.compile(r"step-(\d{1,12})\.png")
DISPLAY_WIDTH = 200  # tiny sample grids are shown enlarged (sharp pixels) to at least this width


@dataclass
class RunReport:
    """What the page shows of one run: its description, metrics and images, read and checked."""

    run: Run
    rows: list[dict[str, Any]]  # training lines: losses, and quality lines (``eval_every``)
    evaluations: list[dict[str, Any]]  # `gencli eval` lines, oldest first
    samples: list[tuple[int, bytes, tuple[int, int]]] = field(default_factory=list)  # (step, PNG, size)
    sample_total: int = 0
    progress: tuple[bytes, tuple[int, int]] | None = None

    @property
    def name(self) -> str:
        return self.run.dir.name or self.run.dir.resolve().name


# ------------------------------------------------------------------ reading runs
def open_run(ref: str) -> Run:
    """Return the run ``ref`` names; a run folder opens without torch (no checkpoint is needed)."""
    path = Path(ref).expanduser()
    if path.is_dir() and os.path.lexists(path / RUN_FILE):
        return Run.open_dir(path)
    return Run.open(ref)  # a checkpoint folder, a model name (its latest run), or the one line refusing it


def read_report(run: Run) -> RunReport:
    """Return the report of one run; a run without metrics, or with an unreadable image, is refused."""
    rows, evaluations = run.metrics(), run.evaluations()
    if not rows and not evaluations:
        raise UserError(f"run {str(run.dir)!r} has no metrics yet (its {run.metrics_path.name} holds no line); "
                        "train it for a few steps first")
    report = RunReport(run, rows, evaluations)
    grids = sample_grids(run.dir)
    report.sample_total = len(grids)
    for step, name in spread(grids, MAX_SAMPLE_GRIDS):
        report.samples.append((step, *read_image(run.dir, f"samples/{name}", "PNG")))
    gif = read_image(run.dir, "progress.gif", "GIF", missing_ok=True)
    report.progress = gif if gif[0] else None
    return report


def sample_grids(run_dir: Path) -> list[tuple[int, str]]:
    """Return (step, file name) of the run's ``samples/step-N.png`` grids, oldest first."""
    from gencli.fileio import sealed

    folder = sealed(run_dir, "samples", "folder")
    try:
        names = [entry.name for entry in os.scandir(folder)]
    except FileNotFoundError:
        return []
    return sorted((int(m.group(1)), name) for name in names if (m := SAMPLE_NAME.fullmatch(name)))


def spread(items: list, most: int) -> list:
    """Return at most ``most`` of ``items``, evenly spaced, the first and the last always among them."""
    if len(items) <= most:
        return list(items)
    picks = sorted({round(i * (len(items) - 1) / (most - 1)) for i in range(most)})
    return [items[i] for i in picks]


def read_image(run_dir: Path, rel: str, kind: str, missing_ok: bool = False) -> tuple[bytes, tuple[int, int]]:
    """Return (bytes, (width, height)) of the run's image ``rel``, a ``kind`` ('PNG' or 'GIF') that
    decodes; (b'', (0, 0)) when it is missing and ``missing_ok``. Larger than the caps, a link, or
    not an image that decodes: one ``UserError`` line."""
    from PIL import Image, UnidentifiedImageError

    from gencli.fileio import read_nofollow, sealed

    path = sealed(run_dir, rel, "file")
    data = read_nofollow(path, MAX_IMAGE_BYTES + 1)
    if data is None:
        if missing_ok:
            return b"", (0, 0)
        raise UserError(f"{str(path)!r} vanished while the report was read; run the report again")
    if len(data) > MAX_IMAGE_BYTES:
        raise UserError(f"{str(path)!r} is larger than {MAX_IMAGE_BYTES >> 20} MiB, more than a report inlines; "
                        "move it out of the run")
    try:
        with Image.open(io.BytesIO(data), formats=[kind]) as image:
            size = image.size
            if size[0] * size[1] > MAX_IMAGE_PIXELS:
                raise UserError(f"{str(path)!r} is {size[0]:,} x {size[1]:,} pixels, more than a report inlines; "
                                "move it out of the run")
            image.load()  # decodes the pixels: a cut or forged file fails here, not in the browser
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError, EOFError):
        raise UserError(f"{str(path)!r} is not a readable {kind} image; move it out of the run "
                        "(or train again to rewrite it)") from None
    return data, size


# ------------------------------------------------------------------ where the page goes
def report_path(runs: list[Run], out: Path | None) -> Path:
    """Return where the page is written: ``--out`` (a new .html file), else a new ``report.html``
    (``report-2.html``, ...) in the run folder for one run, in the current folder for several.
    Nothing is ever overwritten."""
    if out is not None:
        out = Path(out)
        if out.is_dir():
            raise UserError(f"--out {str(out)!r} is a folder; give a file name such as {str(out / 'report.html')!r}")
        if os.path.lexists(out):
            raise UserError(f"--out {str(out)!r} already exists; choose a new name (nothing is overwritten)")
        if out.suffix.lower() not in (".html", ".htm"):
            raise UserError(f"--out {str(out)!r} needs the suffix .html")
        _check_writable(out, "--out")
        return out
    folder = runs[0].dir if len(runs) == 1 else Path(".")
    path, i = folder / "report.html", 1
    while os.path.lexists(path):  # a link there counts as taken: it is never written through
        i += 1
        path = folder / f"report-{i}.html"
    _check_writable(path, "the report")
    return path


def _check_writable(path: Path, what: str) -> None:
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{what} {str(path)!r} lies under {str(parent)!r}, which is a file")
            if not os.access(parent, os.W_OK):
                raise UserError(f"cannot write {what} {str(path)!r}: {str(parent)!r} is not writable (permission denied)")
            return


def write_report(refs: list[str], out: Path | None = None) -> Path:
    """Write the page of the runs ``refs`` (one run, or several side by side); return its path."""
    from gencli.fileio import write_atomic, write_failure

    if not refs:
        raise UserError("give at least one run folder")
    if len(refs) > MAX_RUNS:
        raise UserError(f"{len(refs)} runs are more than one report compares ({MAX_RUNS}); make several reports")
    runs = [open_run(ref) for ref in refs]
    path = report_path(runs, out)  # checked before the slow part: a wrong --out fails at once
    page = build_page([read_report(run) for run in runs])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, page.encode())
    except OSError as exc:
        failure = write_failure(exc)
        why = f"{failure[0]}; {failure[1]}" if failure else (exc.strerror or str(exc))
        raise UserError(f"cannot write the report {str(path)!r}: {why}") from None
    return path


# ------------------------------------------------------------------ figures
def _label(text: str) -> str:
    """A metric name as a figure shows it: short, and never read as matplotlib's $math$."""
    text = str(text)
    return (text if len(text) <= 60 else text[:57] + "...").replace("$", r"\$")


def _loss_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{_label(k): v for k, v in r.items()} for r in rows if "quality" not in r]


def loss_png(report: RunReport) -> bytes | None:
    """The loss curves of a run (``gencli.media.loss_curves``), drawn in memory."""
    from gencli.media.loss_curves import loss_figure

    return loss_figure(_loss_rows(report.rows))


def quality_panels(report: RunReport) -> dict[str, list[tuple[str, list[int], list[float]]]]:
    """{panel title: [(label, steps, values)]} of a run's quality over training: the training
    probe's lines (``eval_every``) and each `gencli eval` line that recorded its step."""
    from gencli.media.loss_curves import quality_series

    panels = {_label(name): [("training probe", steps, values)] for name, (steps, values) in quality_series(report.rows).items()}
    evals: dict[str, tuple[list[int], list[float]]] = {}
    for line in report.evaluations:
        settings = line.get("settings") or {}
        step = settings.get("step")
        if settings.get("label") is not None or not isinstance(step, int) or isinstance(step, bool):
            continue  # one class's numbers are not the model's
        for key, value in line["eval"].items():
            if isinstance(value, (int, float)):
                steps, values = evals.setdefault(key, ([], []))
                steps.append(step)
                values.append(float(value))
    for key, (steps, values) in evals.items():
        order = sorted(range(len(steps)), key=steps.__getitem__)
        panels[_label(f"{key} (gencli eval)")] = [("gencli eval", [steps[i] for i in order], [values[i] for i in order])]
    return dict(list(panels.items())[:MAX_PANELS])


def comparison_panels(reports: list[RunReport]) -> dict[str, list[tuple[str, list[int], list[float]]]]:
    """{loss: [(run number, steps, values)]} for every loss more than one of the runs logged."""
    from gencli.media.plots import read_series

    skip = {"step", "epoch", "images_per_s", "time", "lr"}
    keys: dict[str, int] = {}  # in the order the runs logged them
    for report in reports:
        logged = dict.fromkeys(k for r in report.rows if "quality" not in r for k, v in r.items()
                               if k not in skip and isinstance(v, (int, float)) and not isinstance(v, bool))
        for k in logged:
            keys[k] = keys.get(k, 0) + 1
    panels = {}
    for key in [k for k, count in keys.items() if count > 1][:MAX_PANELS]:
        lines = []
        for number, report in enumerate(reports, 1):
            steps, values = read_series([r for r in report.rows if "quality" not in r], [key])[key]
            if steps:
                lines.append((f"run {number}", steps, values))
        panels[_label(key)] = lines
    return panels


def series_png(panels: dict[str, list[tuple[str, list[int], list[float]]]]) -> bytes | None:
    """Draw one panel per title, a line per (label, steps, values), against the step; None when empty."""
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(panels))
    nrows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 2.8 * nrows), squeeze=False)
    for ax, (title, lines) in zip(axes.flat, panels.items()):
        for label, steps, values in lines:
            ax.plot(steps, values, lw=1.2, marker="o" if len(steps) <= 50 else None, markersize=3, label=_label(label))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.grid(alpha=0.3)
        if len(lines) > 1:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=90, format="png")
    plt.close(fig)
    return buffer.getvalue()


# ------------------------------------------------------------------ the page
STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1240px;padding:1em 1.5em;color:#1d1d1f}
h1{font-size:1.6em;margin:.2em 0}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
h3{margin:1.2em 0 .4em}table{border-collapse:collapse;margin:.4em 0 1em}
th,td{border:1px solid #d5d5d5;padding:.25em .6em;text-align:left;vertical-align:top}
thead th{background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.differs>*{background:#ffe9a8}tr.differs>th:first-child::before{content:"\\2260  ";color:#a15c00}
td.best{font-weight:bold}.note{color:#666}.path{font-family:ui-monospace,monospace;font-size:.9em;word-break:break-all}
figure{display:inline-block;margin:.3em .6em .6em 0;vertical-align:top}figcaption{font-size:.85em;color:#555}
img{max-width:100%;height:auto}img.pixels{image-rendering:pixelated}
code{font-family:ui-monospace,monospace;background:#f4f4f4;padding:0 .2em}
#broken{background:#fdd;padding:.4em .8em}footer{margin-top:2em;color:#777;font-size:.85em}
"""
# Marks the page (``data-images-ok``) and shows a line when an image could not be shown.
SCRIPT = ("addEventListener('load',()=>{const ok=[...document.images].every(i=>i.complete&&i.naturalWidth>0);"
          "document.body.dataset.imagesOk=ok;if(!ok)document.getElementById('broken').hidden=false});")


def _digest(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def esc(value: Any) -> str:
    """Text from a run, made inert in HTML (element content and quoted attributes alike)."""
    return html.escape(str(value), quote=True)


def shown(value: Any) -> str:
    """A run.json value as a table cell shows it (before escaping): text as itself, the rest as
    JSON, long lists and long text cut."""
    if value is None:
        return "—"
    if isinstance(value, str):
        text = value
    elif isinstance(value, list) and len(value) > MAX_ITEMS:
        text = json.dumps(value[:MAX_ITEMS], default=str)[:-1] + f", ... ({len(value):,} in all)]"
    elif isinstance(value, float):
        text = repr(value)
    else:
        try:
            text = json.dumps(value, default=str)
        except (ValueError, RecursionError):
            text = "(not shown)"
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def _number(value: Any) -> str:
    from gencli.ui.live import format_value

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format_value(float(value)) if isinstance(value, float) else f"{value:,}"
    return shown(value)


def _image(data: bytes, kind: str, alt: str, size: tuple[int, int] | None = None, pixels: bool = False) -> str:
    attrs = ""
    if size and size[0] > 0:
        factor = max(1, -(-DISPLAY_WIDTH // size[0])) if pixels else 1
        attrs = f' width="{size[0] * factor}" height="{size[1] * factor}"'
    cls = ' class="pixels"' if pixels else ""
    uri = f"data:image/{kind.lower()};base64," + base64.b64encode(data).decode()
    return f'<img src="{uri}" alt="{esc(alt)}"{attrs}{cls}>'


def _table(rows: list[tuple[str, Any]], numbers: bool = False) -> str:
    if not rows:
        return '<p class="note">none recorded</p>'
    cell = '<td class="num">' if numbers else "<td>"
    body = "".join(f"<tr><th>{esc(k)}</th>{cell}{esc(_number(v) if numbers else shown(v))}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _run_summary(run: Run) -> list[tuple[str, Any]]:
    c, h, w = run.image_shape
    classes = run.classes
    plugin = run.plugin
    rows = [("folder", str(run.dir)), ("model", run.model_name),
            ("plugin", f"{plugin} {run.plugin_version or ''}".strip() if plugin else None),
            ("data", run.data_spec or None), ("images", f"{c} x {h} x {w} (channels x height x width)"),
            ("classes", f"{len(classes):,}: {', '.join(classes[:MAX_ITEMS])}{', ...' if len(classes) > MAX_ITEMS else ''}"
             if classes else None),
            ("step", f"{run.step:,}" + (f" of {run.total_steps:,}" if run.total_steps else "")),
            ("status", run.status), ("started", run.created), ("finished", run.finished),
            ("device", run.device), ("source run", run.source_run), ("gencli", run.gencli_version)]
    return [(k, v) for k, v in rows if v is not None] + [(f"data.{k}", v) for k, v in run.data_record.items()
                                                          if k not in ("spec", "image_shape", "classes")]


def _final_metrics(report: RunReport) -> str:
    from gencli.metrics.compare import latest_results

    parts = []
    values, settings = latest_results(report.run)
    if values:
        used = ", ".join(f"{k} {shown(settings[k])}" for k in ("step", "n", "split", "data") if k in settings)
        parts.append(f'<p>Latest <code>gencli eval</code> results{" (" + esc(used) + ")" if used else ""}:</p>'
                     + _table(list(values.items()), numbers=True))
    else:
        parts.append('<p class="note">No <code>gencli eval</code> results yet: run <code>gencli eval RUN</code> '
                     "to measure FID, reconstruction error and more.</p>")
    quality = [r for r in report.rows if isinstance(r.get("quality"), dict)]
    if quality:
        last = quality[-1]
        parts.append(f"<p>Last quality measurement while training (step {esc(_number(last['step']))}):</p>"
                     + _table(list(last["quality"].items()), numbers=True))
    losses = [r for r in report.rows if "quality" not in r]
    if losses:
        last = losses[-1]
        parts.append(f"<p>Last logged losses (step {esc(_number(last['step']))}):</p>"
                     + _table([(k, v) for k, v in last.items() if k not in ("step", "epoch")], numbers=True))
    return "".join(parts)


def _figure_or_note(png: bytes | None, alt: str, note: str) -> str:
    return f"<figure>{_image(png, 'PNG', alt)}</figure>" if png else f'<p class="note">{note}</p>'


def run_section(report: RunReport, number: int | None) -> str:
    """The part of the page about one run (``number`` in a comparison, None alone)."""
    run = report.run
    heading = f"<h2>Run {number}: {esc(report.name)}</h2>" if number else ""  # alone, the page's title names it
    out = [f'<section id="run-{number or 1}">{heading}<p class="path">{esc(run.dir)}</p>',
           "<h3>Loss curves</h3>",
           _figure_or_note(loss_png(report), "loss curves", "No losses logged yet."),
           "<h3>Quality over training</h3>",
           _figure_or_note(series_png(quality_panels(report)), "quality over training",
                           "No quality measurements: train with <code>--eval-every N</code>, or run "
                           "<code>gencli eval</code> at several checkpoints."),
           "<h3>Final metrics</h3>", _final_metrics(report), "<h3>Samples by step</h3>"]
    if report.samples:
        if report.sample_total > len(report.samples):
            out.append(f'<p class="note">{len(report.samples)} of the run\'s {report.sample_total:,} sample grids, '
                       "evenly spaced.</p>")
        out += [f"<figure>{_image(png, 'PNG', f'samples at step {step}', size, pixels=True)}"
                f"<figcaption>step {step:,}</figcaption></figure>" for step, png, size in report.samples]
    else:
        out.append('<p class="note">No sample grids yet (the run saves one every <code>--sample-every</code> steps).</p>')
    out.append("<h3>Progress</h3>")
    if report.progress:
        png, size = report.progress
        out.append(f"<figure>{_image(png, 'GIF', 'progress over training', size, pixels=True)}</figure>")
    else:
        out.append('<p class="note">No progress GIF yet (written when training ends or stops).</p>')
    out += ["<h3>Run</h3>", _table(_run_summary(run)),
            "<h3>Hyperparameters</h3>", _table(list(run.hyperparameters.items())),
            "<h3>Training settings</h3>", _table(list(run.training_settings.items())), "</section>"]
    return "".join(out)


def _comparable(run: Run) -> dict[str, Any]:
    from gencli.metrics.compare import run_settings

    c, h, _ = run.image_shape
    return {"model": run.model_name, "data": run.data_spec or None, "images": f"{c} x {h} x {h}",
            "step": run.step, **run_settings(run)}


ABSENT = '<span class="note">absent</span>'


def comparison_section(reports: list[RunReport]) -> str:
    """The side-by-side part of the page: settings with those that differ highlighted, metrics, losses."""
    from gencli.metrics.compare import best_value, latest_results, settings_that_differ

    head = "<thead><tr><th></th>" + "".join(f'<th>run {i}</th>' for i in range(1, len(reports) + 1)) + "</tr></thead>"
    out = ["<section id=\"comparison\"><h2>Comparison</h2><table><thead><tr><th></th><th>run</th><th>model</th>"
           "<th>step</th><th>folder</th></tr></thead>"]
    for i, r in enumerate(reports, 1):
        out.append(f'<tr><th><a href="#run-{i}">run {i}</a></th><td>{esc(r.name)}</td><td>{esc(r.run.model_name)}</td>'
                   f'<td class="num">{r.run.step:,}</td><td class="path">{esc(r.run.dir)}</td></tr>')
    out.append("</table>")
    settings = [_comparable(r.run) for r in reports]
    differing = settings_that_differ(settings)
    keys = list(dict.fromkeys(k for s in settings for k in s))
    out.append("<h3>Settings</h3>")
    out.append(f"<p>{len(differing)} of {len(keys)} settings differ" + (": " + esc(", ".join(differing)) if differing else "")
               + " (highlighted).</p>")
    out.append(f"<table>{head}")
    for key in keys:
        cls = ' class="differs"' if key in differing else ""
        cells = "".join(f"<td>{esc(shown(s[key])) if key in s else ABSENT}</td>" for s in settings)
        out.append(f"<tr{cls}><th>{esc(key)}</th>{cells}</tr>")
    out.append("</table>")
    results = [latest_results(r.run)[0] for r in reports]
    metrics = list(dict.fromkeys(k for values in results for k in values))
    out.append("<h3>Final metrics</h3>")
    if metrics:
        out.append(f'<p class="note">Latest <code>gencli eval</code> result of each run; the best in bold.</p><table>{head}')
        for key in metrics:
            values = [v.get(key) for v in results]
            best = best_value(values, key)
            cells = "".join(f'<td class="num{" best" if v is not None and v == best else ""}">{esc(_number(v))}</td>'
                            for v in values)
            out.append(f"<tr><th>{esc(key)}</th>{cells}</tr>")
        out.append("</table>")
    else:
        out.append('<p class="note">No run has <code>gencli eval</code> results yet.</p>')
    out.append("<h3>Losses side by side</h3>")
    out.append(_figure_or_note(series_png(comparison_panels(reports)), "losses of the runs side by side",
                               "The runs log no loss in common."))
    out.append("</section>")
    return "".join(out)


def build_page(reports: list[RunReport]) -> str:
    """Return the whole HTML page of ``reports``: one run, or a comparison then each run."""
    from gencli import __version__

    policy = (f"default-src 'none'; img-src data:; style-src {_digest(STYLE)}; script-src {_digest(SCRIPT)}; "
              "base-uri 'none'; form-action 'none'")
    if len(reports) == 1:
        title = f"{reports[0].name}: gencli report"
        body = [f"<h1>{esc(reports[0].name)}</h1>", f'<p class="note">A run of model {esc(reports[0].run.model_name)}.</p>',
                run_section(reports[0], None)]
    else:
        title = f"{len(reports)} runs: gencli report"
        body = [f"<h1>{len(reports)} runs compared</h1>", comparison_section(reports)]
        body += [run_section(r, i) for i, r in enumerate(reports, 1)]
    written = time.strftime("%Y-%m-%d %H:%M")
    return "".join([
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{STYLE}</style><script>{SCRIPT}</script></head><body>",
        '<p id="broken" hidden>Some images of this page could not be shown.</p>',
        *body,
        f"<footer>Written by gencli {esc(__version__)} on {esc(written)}.</footer></body></html>\n",
    ])
