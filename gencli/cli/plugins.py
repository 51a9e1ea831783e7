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
    "gencli plugins new mymodel",
    "gencli plugins install gencli-mymodel",
    "GENCLI_LOAD_PLUGINS=vae,gan gencli models",
)

app = typer.Typer(help="List installed plugins and what each contributes; install, uninstall or start one.")


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
    reg.warn_clashes()
    rows = [{"name": p.name, "distribution": p.distribution, "version": p.version, "module": p.module,
             "status": "broken" if p.error else "ok", "error": p.error, "models": p.models,
             "datasets": p.datasets, "metrics": p.metrics, "commands": p.commands, "shadowed": p.shadowed,
             "loggers": p.loggers}
            for p in reg.plugins]
    if json_out:
        print(json.dumps(rows, indent=2))
        return
    from rich.markup import escape
    from rich.table import Table

    from gencli.ui.console import out

    table = Table(title="plugins", title_justify="left")
    # names are never broken mid-word: the distribution sits under the plugin's name, and the
    # contributions wrap between names only
    table.add_column("plugin (distribution)", no_wrap=True)
    table.add_column("version", no_wrap=True)
    table.add_column("status", overflow="fold")
    longest = max((len(x) + 1 for r in rows for k in ("models", "datasets", "metrics", "loggers", "commands")
                   for x in r[k]), default=8)
    table.add_column("contributes", overflow="fold", min_width=min(longest, 40), ratio=1)
    for r in rows:
        parts = [f"{k}: {', '.join(r[k])}" for k in ("models", "datasets", "metrics", "loggers", "commands") if r[k]]
        if r["shadowed"]:
            parts.append("shadowed: " + "; ".join(r["shadowed"]))
        status = f"[red]broken[/]: {escape(r['error'])}" if r["error"] else "[green]ok[/]"
        name = escape(r["name"]) + (f"\n[dim]{escape(r['distribution'])}[/]" if r["distribution"] != r["name"] else "")
        table.add_row(name, escape(r["version"]), status, escape("\n".join(parts)))
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


@app.command("install", epilog=examples("gencli plugins install gencli-mymodel",
                                         "gencli plugins install ./gencli-mymodel",
                                         "gencli plugins install -e ./gencli-mymodel",
                                         "gencli plugins install 'gencli-mymodel @ git+https://example.org/you/gencli-mymodel'"))
@handle_errors
def install(
    packages: Annotated[list[str], typer.Argument(metavar="PACKAGE", show_default=False,
                                                  help="What pip installs: a name from the package index, a folder, a wheel or a URL.")],
    upgrade: Annotated[bool, typer.Option("--upgrade", "-U", help="Upgrade to the newest version.")] = False,
    editable: Annotated[bool, typer.Option("--editable", "-e", help="Install a folder in editable mode (for plugin authors).")] = False,
) -> None:
    """Install plugins with pip into the Python environment gencli runs in; `gencli plugins` then lists them."""
    args = ["install", *(["--upgrade"] if upgrade else [])]
    for package in packages:
        args += ["--editable", package] if editable else [package]
    _pip(args, f"installing {' '.join(packages)}")
    _report_plugins()


@app.command("uninstall", epilog=examples("gencli plugins uninstall gencli-mymodel", "gencli plugins uninstall mymodel"))
@handle_errors
def uninstall(
    names: Annotated[list[str], typer.Argument(metavar="NAME", show_default=False,
                                               help="A plugin's distribution or entry-point name (`gencli plugins` lists both).")],
) -> None:
    """Uninstall plugins with pip from the Python environment gencli runs in."""
    import importlib.metadata as metadata

    from gencli.plugins import CORE_DISTRIBUTION, GROUP

    dists = []
    for name in names:
        owner = next((ep.dist.metadata["Name"] for ep in metadata.entry_points(group=GROUP)
                      if ep.name == name and getattr(ep, "dist", None)), None)
        try:
            dist = owner or metadata.distribution(name).metadata["Name"]
        except metadata.PackageNotFoundError:
            raise UserError(f"no plugin or distribution {name!r} is installed; `gencli plugins` lists them") from None
        if _canonical(dist) == CORE_DISTRIBUTION:
            raise UserError(f"{name!r} is part of gencli itself, not a plugin that can be uninstalled; "
                            "leave it out with GENCLI_LOAD_PLUGINS instead")
        dists.append(dist)
    _pip(["uninstall", "--yes", *dists], f"uninstalling {' '.join(dists)}")
    _report_plugins()


def _pip(args: list[str], doing: str) -> None:
    """Run pip of gencli's own interpreter; its output goes to stderr, a failure is one line."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "pip", *args], stdout=sys.stderr, stderr=sys.stderr)
    if result.returncode != 0:
        raise UserError(f"pip failed {doing} (exit code {result.returncode}); its messages are above")


def _report_plugins() -> None:
    """Print the installed plugins, found afresh (pip has just changed them)."""
    import importlib

    from gencli.plugins import registry

    importlib.invalidate_caches()
    registry.cache_clear()
    for info in registry().plugins:
        status = f"broken: {info.error}" if info.error else "ok"
        print(f"{info.name}\t{info.distribution}\t{info.version}\t{status}")


def write_plugin(name: str, out: Path | None = None) -> list[Path]:
    """Render the plugin template for model ``name`` into ``out``; return the files written."""
    import gencli

    if not re.fullmatch(r"[a-z][a-z0-9-]*[a-z0-9]|[a-z]", name):
        raise UserError(f"plugin name {name!r}: use lower-case letters, digits and hyphens, starting with a letter")
    package = "gencli_" + name.replace("-", "_")
    if keyword.iskeyword(package):
        raise UserError(f"plugin name {name!r} gives the package name {package!r}, a Python keyword")
    dist = f"gencli-{name}"
    taken = name_in_use(name, package, dist)
    if taken:
        raise UserError(f"plugin name {name!r} is taken: {taken}; choose another name "
                        "(the built-in plugins' names are reserved: `gencli plugins` lists them)")
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


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def name_in_use(name: str, package: str, dist: str) -> str | None:
    """Say what already uses a new plugin's names (entry point, model, distribution, import package), or None.

    The built-in plugins' names are taken this way too: their entry points and import packages
    are installed with gencli.
    """
    import importlib.metadata as metadata
    import importlib.util

    for ep in metadata.entry_points(group="gencli"):
        owner = ep.dist.metadata["Name"] if getattr(ep, "dist", None) else "an unknown distribution"
        if ep.name == name:
            return f"the plugin {ep.name!r} of {owner} has that entry-point name"
        if ep.value.split(":")[0].split(".")[0] == package:
            return f"the plugin {ep.name!r} of {owner} lives in the import package {package!r}"
    for found in metadata.distributions():
        if _canonical(found.metadata["Name"] or "") == _canonical(dist):
            return f"the installed distribution {found.metadata['Name']!r} has the name {dist!r} would get"
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        return f"the import package {package!r} is already installed"
    from gencli.plugins import registry

    model = registry().models.get(name)
    if model is not None:
        return f"plugin {model.plugin!r} already has a model named {name!r}"
    return None
