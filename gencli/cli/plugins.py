"""`gencli plugins`: what is installed and what each plugin contributes; `plugins new` starts one."""

from __future__ import annotations

import json
import keyword
import re
from pathlib import Path
from typing import Annotated, Optional

import typer

from gencli.cli.common import examples, handle_errors
from gencli.errors import UserError

TEMPLATE = Path(__file__).resolve().parents[1] / "plugin_template"

EPILOG = examples(
    "gencli plugins",
    "gencli plugins --json",
    "gencli plugins new mymodel",
    "GENCLI_LOAD_PLUGINS=vae,gan gencli models",
)

app = typer.Typer(help="List installed plugins and what each contributes; start a new plugin.")


@app.callback(invoke_without_command=True, epilog=EPILOG)
@handle_errors
def plugins(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List installed plugins, their versions and what each contributes; broken ones with their error."""
    if ctx.invoked_subcommand is not None:
        return
    from gencli.cli.plugin_commands import plugin_commands
    from gencli.plugins import registry

    reg = registry()
    plugin_commands()  # credits each plugin with the commands it adds (or was refused)
    rows = [{"name": p.name, "distribution": p.distribution, "version": p.version, "module": p.module,
             "status": "broken" if p.error else "ok", "error": p.error, "models": p.models,
             "datasets": p.datasets, "metrics": p.metrics, "commands": p.commands, "shadowed": p.shadowed}
            for p in reg.plugins]
    if json_out:
        print(json.dumps(rows, indent=2))
        return
    from rich.markup import escape
    from rich.table import Table

    from gencli.ui.console import out

    table = Table(title="plugins", title_justify="left")
    for col in ("name", "distribution", "version", "status", "contributes"):
        table.add_column(col, overflow="fold")
    for r in rows:
        parts = [f"{k}: {', '.join(r[k])}" for k in ("models", "datasets", "metrics", "commands") if r[k]]
        if r["shadowed"]:
            parts.append("shadowed: " + "; ".join(r["shadowed"]))
        status = f"[red]broken[/]: {escape(r['error'])}" if r["error"] else "[green]ok[/]"
        table.add_row(escape(r["name"]), escape(r["distribution"]), escape(r["version"]), status, escape("\n".join(parts)))
    out.print(table)


@app.command("new", epilog=examples("gencli plugins new mymodel && pip install -e ./gencli-mymodel && gencli models --info mymodel"))
@handle_errors
def new(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The model's name: lower-case letters, digits and hyphens.", show_default=False)],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder to create.", show_default="./gencli-NAME")] = None,
) -> None:
    """Write a new model plugin package: installable, discovered, and passing the conformance kit as generated."""
    for path in write_plugin(name, out):
        print(path)


def write_plugin(name: str, out: Path | None = None) -> list[Path]:
    """Render the plugin template for model ``name`` into ``out``; return the files written."""
    import gencli

    if not re.fullmatch(r"[a-z][a-z0-9-]*[a-z0-9]|[a-z]", name):
        raise UserError(f"plugin name {name!r}: use lower-case letters, digits and hyphens, starting with a letter")
    package = "gencli_" + name.replace("-", "_")
    if keyword.iskeyword(package):
        raise UserError(f"plugin name {name!r} gives the package name {package!r}, a Python keyword")
    dist = f"gencli-{name}"
    target = Path(out) if out is not None else Path(dist)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UserError(f"{str(target)!r} already exists and is not an empty folder; choose another --out")
    major, minor = (int(p) for p in gencli.__version__.split(".")[:2])
    values = {"model": name, "dist": dist, "package": package, "api": gencli.API_VERSION,
              "cls": "".join(part.capitalize() for part in re.split(r"[-_]", name)),
              "gencli_version": f"{major}.{minor}", "gencli_next": f"{major}.{minor + 1}"}
    written = []
    for source in sorted(TEMPLATE.rglob("*.tmpl")):
        relative = source.relative_to(TEMPLATE).with_suffix("")
        relative = Path(*(part.replace("gencli_NAME", package).replace("NAME", package.removeprefix("gencli_"))
                          for part in relative.parts))
        dest = target / relative
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(source.read_text().format(**values))
        written.append(dest)
    return written
