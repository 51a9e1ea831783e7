"""Write ``gencli/completion_table.json``: the core commands' parameters, as the fast completer reads them.

    python -m gencli.cli.completion_table          # rewrite the table from the Typer app
    python -m gencli.cli.completion_table --check  # exit 1 if the table differs from the app

The table is data derived from the Typer app (tests/test_fast_completion.py fails while it is
stale), so that ``gencli.completion`` can read a command line without importing Typer.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from gencli.completion import COMPLETERS, TABLE_FILE

# the completion functions of the command modules, by the completer name the table gives them
_NAMES = {"complete_models": "models", "complete_datasets": "datasets", "complete_runs": "runs",
          "complete_hyperparameters": "hyperparameters", "complete_options": "options", "complete_figures": "figures"}


def _completer(param) -> str | None:
    """The name of the completer a Typer parameter was given (``autocompletion=``), or None."""
    wrapper = getattr(param, "_custom_shell_complete", None)
    for cell in getattr(wrapper, "__closure__", None) or ():
        name = getattr(cell.cell_contents, "__name__", "")
        if name in _NAMES:
            return _NAMES[name]
        if callable(cell.cell_contents) and name:
            return "other"  # a completer the fast path does not know: the Typer path answers
    return None


def _param(param) -> dict[str, Any]:
    from typer.core import choice_as_str

    desc = param.type_descriptor
    choices = [choice_as_str(c) for c in desc.choices] if desc.is_choice and desc.choices is not None else None
    entry: dict[str, Any] = {"name": param.name, "complete": _completer(param), "choices": choices,
                             "case_sensitive": bool(desc.case_sensitive) if choices is not None else None,
                             "file": bool(desc.is_file)}
    if param.param_type_name == "argument":
        return {"kind": "argument", "nargs": param.nargs, **entry}
    flag = bool(param.is_flag or param.count)
    return {"kind": "option", "opts": [*param.opts, *param.secondary_opts], "flag": flag,
            "multiple": bool(param.multiple), "nargs": param.nargs, **entry}


def build() -> dict[str, Any]:
    """The table of the app's main options and of each core command that is not a group."""
    from gencli.cli import app

    group = typer.main.get_command(app)
    ctx = group.make_context("gencli", [], resilient_parsing=True)
    commands = {}
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or hasattr(command, "commands"):
            continue  # plugin commands (listed lazily) and groups stay with the Typer path
        params = [_param(p) for p in command.get_params(ctx)]
        if any(p["nargs"] not in (1, -1) for p in params) or any(p["complete"] not in (None, *COMPLETERS)
                                                                    for p in params):
            continue
        commands[name] = params
    return {"root": [_param(p) for p in group.get_params(ctx)], "commands": commands}


def render(table: dict[str, Any]) -> str:
    return json.dumps(table, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = render(build())
    if "--check" in argv:
        if not TABLE_FILE.is_file() or TABLE_FILE.read_text() != text:
            print(f"{TABLE_FILE.name} is stale: run `python -m gencli.cli.completion_table`", file=sys.stderr)
            return 1
        return 0
    TABLE_FILE.write_text(text)
    print(f"wrote {TABLE_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
