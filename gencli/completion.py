"""Tab completion that answers before Typer is imported.

The shell asks for completions by running ``gencli`` with ``_GENCLI_COMPLETE`` set (the protocol of
the script ``gencli --install-completion`` installs). Building the Typer app costs more than the
answer itself (Typer, its pydantic adapters and every command module), so the entry point
(``gencli.launcher``) first asks :func:`answer` here. It reads the command line with the table
of the core commands' parameters (``completion_table.json``, written from the Typer app by
``python -m gencli.cli.completion_table``; a test keeps it equal to the app) and answers the
value completions a person types most: model names, datasets, runs, the ``--set`` keys of the
model or run on the line, figure names and fixed choices. Anything else (option names, command
names, plugin commands, paths, other shells) returns None, and the full Typer path answers, as
before. Both paths call the same completers below, so they cannot disagree on a value.

No torch, no Typer: only the registry (whose declarations are torch-free) and the run files.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import sys
import typing
from pathlib import Path
from typing import Any

TABLE_FILE = Path(__file__).with_name("completion_table.json")
_SHELLS = ("bash", "zsh", "fish")


# ------------------------------------------------------------------ the completers (both paths)
def models(incomplete: str) -> list[str]:
    from gencli.plugins import registry

    return sorted(k for k in registry().models if ":" not in k and k.startswith(incomplete))


def _paths(incomplete: str) -> list[Path]:
    """Return the paths that start with ``incomplete`` (a path typed so far, relative or absolute)."""
    typed = Path(incomplete or ".")
    folder, stem = (typed, "") if incomplete.endswith("/") or not incomplete else (typed.parent, typed.name)
    try:
        return sorted(p for p in folder.iterdir() if p.name.startswith(stem))
    except OSError:
        return []


def datasets(incomplete: str) -> list[str]:
    from gencli.plugins import registry

    names = sorted(k for k in registry().datasets if ":" not in k and k.startswith(incomplete))
    return names or [str(p) + "/" for p in _paths(incomplete) if p.is_dir()]


def runs(incomplete: str) -> list[str]:
    """Run directories under the runs root (and any typed path), then model names."""
    from gencli.runs import RUN_FILE, runs_root

    found = [str(p.parent) for p in runs_root().glob(f"*/{RUN_FILE}") if str(p.parent).startswith(incomplete)]
    found += [str(p) for p in _paths(incomplete) if (p / RUN_FILE).is_file() and str(p) not in found]
    return sorted(found) + models(incomplete)


def _declarations(model: str | None):
    """Return the declarations of model ``model`` for completion, or None (unknown, or failing to load)."""
    from gencli.errors import UserError
    from gencli.plugins import registry

    if not model:
        return None
    try:
        return registry().model_declarations(model)
    except UserError:
        return None


def _run_model(ref: str | None) -> str | None:
    """Return the model name of the run ``ref`` names (a run folder, one of its checkpoints, or a model name)."""
    from gencli.errors import UserError
    from gencli.runs import RUN_FILE, RunInfo, read_run_info

    if not ref:
        return None
    path = Path(ref).expanduser()
    if path.is_dir() and path.parent.name == "checkpoints":
        path = path.parent.parent
    if not (path / RUN_FILE).is_file():
        return ref if "/" not in ref else None  # a model name: its latest run
    try:
        return RunInfo(read_run_info(path)).model_name
    except UserError:
        return None


def _set_keys(options_cls: type | None, given: list[str] | None, incomplete: str) -> list[str]:
    """Return ``key=`` for each field of ``options_cls`` that starts with ``incomplete`` and is not set yet;
    after ``key=``, the values of a field with a few choices (a Literal or a bool)."""
    if options_cls is None or not dataclasses.is_dataclass(options_cls):
        return []
    fields = {f.name: f for f in dataclasses.fields(options_cls)}
    key, eq, typed = incomplete.partition("=")
    if eq:
        if key.replace("-", "_") not in fields:
            return []
        hint = typing.get_type_hints(options_cls).get(key.replace("-", "_"))
        args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        choices = ["true", "false"] if bool in args else [str(c) for a in args if typing.get_origin(a) is typing.Literal
                                                          for c in typing.get_args(a)]
        choices += [str(c) for c in args if isinstance(c, str)]  # a field typed by a Literal alone
        return [f"{key}={c}" for c in choices if c.startswith(typed)]
    taken = {pair.partition("=")[0].strip().replace("-", "_") for pair in given or []}
    return [f"{name}=" for name in fields if name.startswith(incomplete) and name not in taken]


def hyperparameters(params: dict[str, Any], incomplete: str) -> list[str]:
    """`gencli train MODEL --set <TAB>`: the model's hyperparameters (with --resume RUN: its run's model's)."""
    model = params.get("model") or _run_model(str(params.get("resume") or "") or None)
    declared = _declarations(model)
    return _set_keys(declared.Hyperparameters if declared else None, params.get("set_"), incomplete)


def _command_run(params: dict[str, Any]) -> str | None:
    run = params.get("run")
    if run is None and params.get("runs"):  # `gencli eval RUN...`
        run = params["runs"][0]
    return run


def options(command: str, params: dict[str, Any], incomplete: str) -> list[str]:
    """`gencli sample|interpolate|eval RUN --set <TAB>`: the options the run's model declares for that command
    (for `sample --figure NAME`: the figure's)."""
    declared = _declarations(_run_model(_command_run(params)))
    if declared is None:
        return []
    figure = params.get("figure")
    if figure:
        chosen = declared.figures[figure].Options if figure in declared.figures else None
    elif command == "interpolate":
        chosen = declared.InterpolateOptions
    elif command == "eval":
        chosen = declared.eval_options()
    else:
        chosen = declared.SampleOptions
    return _set_keys(chosen, params.get("set_"), incomplete)


def figures(params: dict[str, Any], incomplete: str) -> list[str]:
    """`gencli sample RUN --figure <TAB>`: the figures the run's model declares."""
    declared = _declarations(_run_model(_command_run(params)))
    return sorted(name for name in (declared.figures if declared else {}) if name.startswith(incomplete))


# the completer each parameter names in the table: (command, params, incomplete) -> values
COMPLETERS = {
    "models": lambda command, params, incomplete: models(incomplete),
    "datasets": lambda command, params, incomplete: datasets(incomplete),
    "runs": lambda command, params, incomplete: runs(incomplete),
    "hyperparameters": lambda command, params, incomplete: hyperparameters(params, incomplete),
    "options": options,
    "figures": lambda command, params, incomplete: figures(params, incomplete),
}


# ------------------------------------------------------------------ reading the line
def split_words(line: str) -> list[str]:
    """Split a command line as the shell wrote it; an unclosed quote keeps its partial word."""
    lex = shlex.shlex(line, posix=True)
    lex.whitespace_split = True
    lex.commenters = ""
    out: list[str] = []
    try:
        out.extend(lex)
    except ValueError:
        out.append(lex.token)
    return out


def shell_words(shell: str, environ: dict[str, str]) -> tuple[list[str], str] | None:
    """Return (the words before the cursor's word, without the program; the cursor's word)."""
    if shell == "bash":
        words = split_words(environ.get("COMP_WORDS", ""))
        try:
            cword = int(environ.get("COMP_CWORD", ""))
        except ValueError:
            return None
        return words[1:cword], (words[cword] if cword < len(words) else "")
    line = environ.get("_TYPER_COMPLETE_ARGS", "")
    args = split_words(line)[1:]
    if args and not line.endswith(" "):
        return args[:-1], args[-1]
    return args, ""


class _Unsure(Exception):
    """The line holds something this reader does not model: the Typer path answers."""


def _option(params: list[dict], word: str) -> dict | None:
    return next((p for p in params if p["kind"] == "option" and word in p["opts"]), None)


def _read(params: list[dict], words: list[str]) -> tuple[dict[str, Any], dict | None, set[str]]:
    """Parse ``words`` against a command's ``params``: (values by name, the option waiting for its value or
    None, the names of the arguments given)."""
    values: dict[str, Any] = {}
    given: set[str] = set()
    arguments = [p for p in params if p["kind"] == "argument"]
    position = 0
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            raise _Unsure
        if word.startswith("-") and len(word) > 1:
            name, eq, value = word.partition("=")
            param = _option(params, name)
            if param is None:
                raise _Unsure
            if param["flag"]:
                if eq:
                    raise _Unsure
                i += 1
                continue
            if not eq:
                if i + 1 == len(words):
                    return values, param, given
                value = words[i + 1]
                i += 1
            _store(values, param, value)
            i += 1
            continue
        if position >= len(arguments):
            raise _Unsure  # more words than arguments: click's own rules apply
        param = arguments[position]
        _store(values, param, word)
        given.add(param["name"])
        if param["nargs"] != -1:
            position += 1
        i += 1
    return values, None, given


def _store(values: dict[str, Any], param: dict, value: str) -> None:
    if param.get("multiple") or param.get("nargs") == -1:
        values.setdefault(param["name"], []).append(value)
    else:
        values[param["name"]] = value


def candidates(table: dict, args: list[str], incomplete: str) -> list[str] | None:
    """The completions of ``incomplete`` after ``args``, or None where the Typer path must answer."""
    if incomplete.startswith("-") or incomplete == "=":
        return None  # option names, --opt=value: Typer's
    root = table["root"]
    i = 0
    while i < len(args) and args[i].startswith("-"):  # the main options before the command
        name, eq, _ = args[i].partition("=")
        param = _option(root, name)
        if param is None or (param["flag"] and eq):
            return None
        i += 1 if param["flag"] or eq else 2
    if i >= len(args) or args[i] not in table["commands"]:
        return None  # a command name, a plugin's command, or a group
    command = args[i]
    params = table["commands"][command]
    try:
        values, waiting, given = _read(params, args[i + 1:])
    except _Unsure:
        return None
    if waiting is None:
        waiting = next((p for p in params if p["kind"] == "argument" and (p["name"] not in given or p["nargs"] == -1)),
                       None)
    if waiting is None:
        # every argument given, no option waiting: click completes only option names, and those start with "-"
        return [] if not incomplete or incomplete[0].isalnum() else None
    # as Typer's parameters answer: their completer, else their choices, else the word itself for a file
    # (the shell then offers files), else nothing
    kind = waiting.get("complete")
    if kind is not None:
        completer = COMPLETERS.get(kind)
        return None if completer is None else list(completer(command, values, incomplete))
    if waiting.get("choices") is not None:
        if waiting.get("case_sensitive"):
            return [c for c in waiting["choices"] if c.startswith(incomplete)]
        return [c for c in waiting["choices"] if c.lower().startswith(incomplete.lower())]
    return [incomplete] if waiting.get("file") else []


# ------------------------------------------------------------------ answering
def _format(shell: str, values: list[str], environ: dict[str, str]) -> str:
    """What the completion script expects to read (as Typer formats it)."""
    if shell == "bash":
        return "\n".join(values)
    if shell == "zsh":
        if not values:
            return "_files"

        def escape(s: str) -> str:
            return (s.replace('"', '""').replace("'", "''").replace("$", "\\$").replace("`", "\\`")
                    .replace(":", r"\\:"))

        body = "\n".join(f'"{escape(v)}"' for v in values)
        return f"_arguments '*: :(({body}))'"
    action = environ.get("_TYPER_COMPLETE_FISH_ACTION", "")
    return "\n".join(values) if action == "get-args" and values else ""


def answer(environ: dict[str, str] | None = None) -> bool:
    """Answer the completion the environment asks for and return True; False where the Typer path must.

    Never raises: anything unexpected leaves the answer to the full path."""
    environ = os.environ if environ is None else environ
    instruction, _, shell = environ.get("_GENCLI_COMPLETE", "").partition("_")
    if instruction != "complete" or shell not in _SHELLS:
        return False
    try:
        table = json.loads(TABLE_FILE.read_text())
        line = shell_words(shell, environ)
        values = None if line is None else candidates(table, *line)
    except Exception:  # noqa: BLE001 - completion never fails a keystroke: the full path answers instead
        return False
    if values is None:
        return False
    if shell == "fish" and environ.get("_TYPER_COMPLETE_FISH_ACTION", "") == "is-args":
        sys.exit(0 if values else 1)  # fish asks only whether there are values (no: it offers files)
    print(_format(shell, values, environ))
    return True
