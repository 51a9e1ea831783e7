"""`gencli models`: the models installed plugins provide, and one model's options."""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer

from gencli.cli.common import complete_models, examples, handle_errors

EPILOG = examples(
    "gencli models",
    "gencli models --info MODEL",
    "gencli models --info MODEL --json",
)


@handle_errors
def models(
    info: Annotated[Optional[str], typer.Option("--info", help="Show a model's capabilities, hyperparameters, options and figures.",
                                                autocompletion=complete_models, show_default=False)] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the models the installed plugins provide."""
    from gencli.plugins import registry

    reg = registry()
    if info is not None:
        payload = model_info(reg, info)
        print(json.dumps(payload, indent=2)) if json_out else render_info(payload)
        return
    reg.warn_clashes("model")  # listing: every clash of model names, with the name to use
    rows = [{"name": k, "plugin": s.plugin, "data": s.data, "summary": s.summary}
            for k, s in sorted(reg.models.items()) if ":" not in k]
    if json_out:
        print(json.dumps(rows, indent=2))
        return
    from rich.markup import escape
    from rich.table import Table

    from gencli.ui.console import out

    table = Table(title="models", title_justify="left")
    for col in ("name", "plugin", "data", "summary"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(*(escape(r[c]) for c in ("name", "plugin", "data", "summary")))
    out.print(table)


def _fields(cls: type) -> list[dict[str, str]]:
    from gencli.models import hparams

    return [dict(zip(("name", "type", "default", "help"), row)) for row in hparams.describe(cls)]


def model_info(reg, name: str) -> dict[str, Any]:
    """Return what `gencli models --info NAME` shows, as plain data.

    It reads the model's declarations: without torch when its plugin declares them apart from the
    networks (``gencli.models.declarations``), else from the model class.
    """
    from gencli.models.declarations import declared_capabilities

    spec = reg.model(name)
    cls = reg.model_declarations(name)
    d = cls.defaults
    return {
        "name": spec.name, "plugin": spec.plugin, "summary": spec.summary, "data": getattr(cls, "data", None) or spec.data,
        "conditional": cls.conditional, "capabilities": declared_capabilities(cls),
        "defaults": {"image_size": d.image_size, "channels": d.channels, "batch_size": d.batch_size, "steps": d.steps},
        "hyperparameters": _fields(cls.Hyperparameters),
        "options": {"sample": _fields(cls.SampleOptions), "interpolate": _fields(cls.InterpolateOptions),
                    "eval": _fields(cls.eval_options())},
        "figures": [{"name": k, "help": f.help, "options": _fields(f.Options), "needs_data": f.needs_data}
                    for k, f in sorted(cls.figures.items())],
    }


def render_info(payload: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from gencli.ui.console import out

    out.print(f"[bold]{escape(payload['name'])}[/] ({escape(payload['plugin'])}): {escape(payload['summary'])}")
    conditional = "   conditional (--label)" if payload["conditional"] else ""
    out.print(f"data: {payload['data']}{conditional}   capabilities: {', '.join(payload['capabilities']) or 'train only'}")
    out.print("training defaults:")
    for key, value in payload["defaults"].items():
        out.print(f"  {escape(key)} = {escape(str(value))}")

    def table(title: str, rows: list[dict[str, str]]) -> None:
        t = Table(title=escape(title), title_justify="left")
        for col in ("name", "type", "default", "help"):
            t.add_column(col, overflow="fold")
        for row in rows:
            t.add_row(*(escape(str(row[c])) for c in ("name", "type", "default", "help")))
        out.print(t)

    table("hyperparameters (gencli train --set key=value)", payload["hyperparameters"])
    for command, rows in payload["options"].items():
        if rows:
            table(f"{command} options (gencli {command} RUN --set key=value)", rows)
    for fig in payload["figures"]:
        out.print(f"figure [bold]{escape(fig['name'])}[/] (gencli sample RUN --figure {escape(fig['name'])}): {escape(fig['help'])}")
        if fig["options"]:
            table(f"--figure {fig['name']} options (--set key=value)", fig["options"])
