"""Write docs/cli.md, the command-line reference, from the Typer app itself.

    python scripts/cli_reference.py          # regenerate docs/cli.md
    python scripts/cli_reference.py --check  # exit 1 when docs/cli.md differs from the app

Every command, argument and option is listed with its help text, grouped by the help panels
`gencli COMMAND --help` shows. Commands that installed third-party plugins add are left out, so
the page describes gencli itself whatever is installed where it is generated.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "cli.md"

HEADER = """\
# Command-line reference

Generated from the command line itself by `python scripts/cli_reference.py`; do not edit by
hand. `gencli COMMAND --help` shows the same text in the terminal. Commands that installed
plugins add appear in `gencli --help` but not here.
"""

# Pictures shown under a command's section: (path from docs/, alt text); scripts/make_figures.sh makes them.
FIGURES = {"report": ("figures/report.png", "The page gencli report writes for two runs: the settings that differ highlighted")}


def _cell(text: str) -> str:
    """Return ``text`` fit for a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _own_packages() -> set[str]:
    """Return the top-level packages of gencli and of its built-in plugins."""
    from gencli.plugins import registry

    return {"gencli"} | {p.module.split(".")[0] for p in registry().plugins if p.builtin}


def _argument_name(param) -> str:
    name = param.name.upper()
    if param.nargs == -1:
        name += "..."
    return name if param.required else f"[{name}]"


def _usage(command, ctx) -> str:
    """Return the usage line with argument names in capitals, as the help screens write them."""
    pieces = [ctx.command_path]
    if any(p.param_type_name == "option" for p in command.params):
        pieces.append("[OPTIONS]")
    if hasattr(command, "commands"):
        pieces.append("COMMAND [ARGS]...")
    pieces += [_argument_name(p) for p in command.params if p.param_type_name == "argument"]
    return " ".join(pieces)


def _options_table(rows: list[tuple[str, str]]) -> list[str]:
    lines = ["| Option | Description |", "| --- | --- |"]
    lines += [f"| `{_cell(opts)}` | {_cell(text)} |" for opts, text in rows]
    return lines


def _command_section(command, ctx, level: str) -> list[str]:
    lines = [f"{level} {ctx.command_path}", "", "```", _usage(command, ctx), "```", ""]
    if command.help:
        lines += [command.help.strip(), ""]
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    if arguments:
        lines += ["| Argument | Description |", "| --- | --- |"]
        for p in arguments:
            lines.append(f"| `{_argument_name(p)}` | {_cell(p.help or '')}{'' if p.required else ' (optional)'} |")
        lines.append("")
    panels: dict[str, list[tuple[str, str]]] = {}
    for p in command.params:
        if p.param_type_name != "option" or p.hidden:
            continue
        record = p.get_help_record(ctx)
        if record is not None:
            panels.setdefault(p.rich_help_panel or "Options", []).append(record)
    for panel in sorted(panels, key=lambda name: name != "Options"):  # the unnamed panel first, as --help does
        lines += [f"**{panel}**", ""] + _options_table(panels[panel]) + [""]
    examples = [line.strip() for line in (command.epilog or "").splitlines()[1:] if line.strip()]
    if examples:  # the epilog: a "[bold]Examples[/]" line, then one command per line
        lines += ["Examples:", "", "```bash", *examples, "```", ""]
    return lines


def render() -> str:
    """Return the Markdown reference of the gencli command line."""
    import typer.main

    from gencli.cli import app

    root = typer.main.get_command(app)
    ctx = root.context_class(root, info_name="gencli")
    own = _own_packages()
    commands = [(name, cmd) for name, cmd in root.commands.items()
                if not cmd.hidden and cmd.callback.__module__.split(".")[0] in own]
    lines = [HEADER, "## Commands", "", "| Command | What it does |", "| --- | --- |"]
    for name, cmd in commands:
        summary = (cmd.short_help or cmd.help or "").strip().splitlines()[0] if (cmd.short_help or cmd.help) else ""
        lines.append(f"| [`gencli {name}`](#gencli-{name}) | {_cell(summary)} |")
    lines.append("")
    lines += _command_section(root, ctx, "##")
    for name, cmd in commands:
        sub_ctx = cmd.context_class(cmd, info_name=name, parent=ctx)
        lines += _command_section(cmd, sub_ctx, "##")
        if name in FIGURES:
            path, alt = FIGURES[name]
            lines += [f"![{alt}]({path})", ""]
        for sub_name, sub in getattr(cmd, "commands", {}).items():  # a group's own commands, e.g. plugins new
            lines += _command_section(sub, sub.context_class(sub, info_name=sub_name, parent=sub_ctx), "##")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT.relative_to(ROOT)} is out of date: run python scripts/cli_reference.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
    print(OUTPUT.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
