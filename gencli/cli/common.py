"""What several commands share: error handling, option types, runs, labels and model options.

No torch at import time: command modules import the layers below inside their bodies.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from gencli import completion
from gencli.errors import Interrupted, UserError
from gencli.training.threads import inference_device

if TYPE_CHECKING:
    from gencli.runs import Run

state = {"debug": False, "quiet": False}


def handle_errors(fn):
    """Turn ``UserError`` into one stderr line and exit code 2; KeyboardInterrupt into 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            if state["debug"]:
                raise
            from gencli.ui.console import error

            error(str(exc))
            raise typer.Exit(2) from None
        except KeyboardInterrupt as exc:
            if state["debug"]:
                raise
            # a clean stop says where the run stands and how to go on; a bare Ctrl-C only that it stopped
            print(str(exc) if isinstance(exc, Interrupted) and str(exc) else "interrupted", file=sys.stderr)
            raise typer.Exit(130) from None

    return wrapper


def examples(*lines: str) -> str:
    """Return a help epilog listing example command lines (Rich keeps the line breaks of a \\b block)."""
    body = "\n".join(f"  {line}" for line in lines)
    return f"[bold]Examples[/]\n\n{body}"


# ------------------------------------------------------------------ completion
# The values come from gencli.completion, which also answers the shell before Typer is imported.
def complete_models(incomplete: str) -> list[str]:
    return completion.models(incomplete)


def complete_datasets(incomplete: str) -> list[str]:
    return completion.datasets(incomplete)


def complete_runs(incomplete: str) -> list[str]:
    """Run directories under the runs root (and any typed path), then model names."""
    return completion.runs(incomplete)


def _line_params(ctx: typer.Context) -> dict[str, Any]:
    """Return the values of the command's parameters given on the line so far.

    While the option being completed still waits for its value, click leaves ``ctx.params``
    unparsed; the command's words (which its parent context keeps) are parsed again here, without
    that last option, leniently as completion does.
    """
    words = list(ctx.parent.args) if ctx.parent is not None else []
    if words and words[-1].startswith("-"):
        words = words[:-1]
    try:
        return ctx.command.make_context(ctx.info_name, words, parent=ctx.parent, resilient_parsing=True).params
    except Exception:  # noqa: BLE001 - a line that does not parse completes nothing, it never fails
        return dict(ctx.params)


def complete_hyperparameters(ctx: typer.Context, incomplete: str) -> list[str]:
    """`gencli train MODEL --set <TAB>`: the model's hyperparameters (with --resume RUN: its run's model's)."""
    return completion.hyperparameters(_line_params(ctx), incomplete)


def complete_options(ctx: typer.Context, incomplete: str) -> list[str]:
    """`gencli sample|interpolate|eval RUN --set <TAB>`: the options the run's model declares for that command."""
    return completion.options(ctx.info_name or "", _line_params(ctx), incomplete)


def complete_figures(ctx: typer.Context, incomplete: str) -> list[str]:
    """`gencli sample RUN --figure <TAB>`: the figures the run's model declares."""
    return completion.figures(_line_params(ctx), incomplete)


# ------------------------------------------------------------------ shared option types
RunArg = Annotated[str, typer.Argument(metavar="RUN", help="Run directory, checkpoint folder, or model name (its latest run).",
                                       autocompletion=complete_runs, show_default=False)]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or mps.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed: same seed, same images.")]
SetOpt = Annotated[Optional[list[str]], typer.Option(
    "--set", metavar="KEY=VALUE", autocompletion=complete_options,
    help="A model option (repeatable); `gencli models --info MODEL` lists them.", show_default=False)]
LabelOpt = Annotated[Optional[str], typer.Option(
    "--label", "-l", help="Class index or name (conditional models); sample also takes a comma list or all.",
    show_default=False)]


# ------------------------------------------------------------------ runs and outputs
def open_run(ref: str, device: str = "auto") -> tuple["Run", Any]:
    """Return (run, its trained model on ``device``); a model name picks its latest run, which is named
    in one line (with its status and step when it did not finish)."""
    from gencli.runs import Run

    by_name = not os.path.lexists(Path(ref).expanduser()) and "/" not in ref and not ref.startswith(".")
    run = Run.open(ref)
    if by_name:
        from gencli.ui.console import info

        info(f"note: {ref}: latest run {run.dir}{run_standing(run)}", quiet=state["quiet"])
    return run, run.load_model(device=inference_device(device))


def run_standing(run: "Run") -> str:
    """Return `` (STATUS at step N of M)`` for a run that did not finish, else an empty string."""
    status = run.status or "unknown"
    if status == "finished":
        return ""
    total = run.total_steps
    return f" ({status} at step {run.step:,}" + (f" of {total:,})" if isinstance(total, int) and total else ")")


def output_file(out: Path | None, run: "Run", kind: str, suffix: str = ".png") -> Path:
    """Return where a command writes one file: ``--out`` checked, or a new path in the run's ``generated/``."""
    if out is None:
        return run.output_path(kind, suffix)
    out = Path(out)
    if out.is_dir():
        raise UserError(f"--out {str(out)!r} is a folder; give a file name such as {str(out / (kind + suffix))!r}")
    if out.exists() and not out.is_file():
        raise UserError(f"--out {str(out)!r} is not a regular file; give a new file name")
    if out.exists():
        raise UserError(f"--out {str(out)!r} already exists; choose a new name (nothing is overwritten)")
    _check_parent(out)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp", ".gif"):
        raise UserError(f"--out {str(out)!r} needs an image suffix such as .png")
    return out


def output_folder(out: Path | None, run: "Run", kind: str) -> Path:
    """Return a folder to write many files into: ``--out`` (new or empty) or a new one in the run."""
    if out is None:
        return run.output_path(kind, "")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {str(out)!r} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()):
        raise UserError(f"--out {str(out)!r} is not empty; choose a new folder (nothing is overwritten)")
    _check_parent(out)
    return out


def _check_parent(out: Path) -> None:
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"--out {str(out)!r} lies under {str(parent)!r}, which is a file")
            if not os.access(parent, os.W_OK):
                raise UserError(f"--out {str(out)!r}: cannot write in {str(parent)!r} (permission denied)")
            return


# ------------------------------------------------------------------ results
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the files written as JSON.")]


@contextlib.contextmanager
def results_only(json_out: bool):
    """Under ``--json``, send whatever the work prints on stdout to stderr, so stdout holds the JSON alone."""
    if not json_out:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


def print_result(json_out: bool, lines: list[Any], payload: dict[str, Any]) -> None:
    """Print a command's result: each of ``lines`` on stdout, or with ``--json`` ``payload`` as one JSON object."""
    import json

    from gencli.ui.console import result

    if json_out:
        result(json.dumps(payload, indent=2, default=str))
        return
    for line in lines:
        result(str(line))


# ------------------------------------------------------------------ labels
def parse_labels(model, text: str | None) -> list[int] | None:
    """Return the class indices ``--label`` names: one index or name, a comma list, or ``all``."""
    if text is None:
        return None
    from gencli.models.labels import parse_labels as parse

    return parse(model, text)


def one_label(model, text: str | None) -> int | None:
    """Return the one class ``--label`` names (commands that draw a single class)."""
    labels = parse_labels(model, text)
    if labels is None:
        return None
    if len(labels) != 1:
        raise UserError(f"--label names {len(labels)} classes here; this command takes one")
    return labels[0]


def drawn_labels(run: "Run", model, n: int, seed: int):
    """Return the classes of ``n`` images of a conditional model sampled without ``--label`` (None for
    a model that is not conditional): drawn in the proportions of the run's training data, uniformly
    for a run that records no counts, as one line says."""
    if not (model.conditional and model.num_classes):
        return None
    from gencli.models.labels import labels_in_proportion
    from gencli.ui.console import info

    labels, note = labels_in_proportion(run, model, n, seed)
    info(f"note: {note}", quiet=state["quiet"])
    return labels


def models_that(test) -> list[str]:
    """Return the names of the installed models whose class passes ``test`` (ones that fail to load are left out)."""
    from gencli.plugins import registry

    able = []
    for name in registry().models:
        if ":" in name:
            continue
        try:
            if test(registry().model_class(name)):
                able.append(name)
        except UserError:
            continue
    return sorted(able)


def conditional_models() -> list[str]:
    return models_that(lambda cls: cls.conditional)


# ------------------------------------------------------------------ model-declared options
def model_options(model, options_cls: type, pairs: list[str] | None, command: str) -> dict[str, Any]:
    """Return the ``--set`` options of ``command`` parsed and checked by ``options_cls``, as keyword arguments."""
    from gencli.models import hparams

    values = hparams.parse_assignments(pairs or [])
    if values and not dataclasses.fields(options_cls):
        raise UserError(f"model {model.name!r} takes no {command} options (--set {next(iter(values))}=...)")
    options = hparams.build(options_cls, values, source=f"--set for {model.name} {command}", what="option")
    return {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}
