"""The gencli command line: ``build_app()`` adds one module per command, then plugin commands.

Nothing here imports torch: `gencli --help`, `gencli models` and `gencli plugins` stay fast.
Plugins are loaded only when a command needs them: `gencli --version` loads none, and plugin
commands are looked up only when the name is not a core command (or when help lists them).
A ``UserError`` anywhere ends the command with one line on stderr and exit code 2 (``--debug``
shows the traceback instead).
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Annotated, Optional


import typer
from typer.core import TyperGroup

from gencli import __version__
from gencli.cli.common import state

CORE_COMMANDS = ("train", "sample", "interpolate", "eval", "translate", "models", "datasets", "plugins")


class GencliGroup(TyperGroup):
    """The top-level group: core commands first; plugin commands found lazily, never over a core one."""

    def list_commands(self, ctx) -> list[str]:
        core = super().list_commands(ctx)
        return core + sorted(n for n in plugin_commands() if n not in core)

    def get_command(self, ctx, name: str):
        return super().get_command(ctx, name) or plugin_commands().get(name)


@functools.lru_cache(maxsize=1)
def plugin_commands() -> dict:
    """Return the commands plugins add; one that clashes with a core or an earlier plugin's is refused."""
    from gencli.plugins import registry
    from gencli.ui.console import warn

    reg = registry()
    found: dict = {}
    for info in reg.plugins:
        if info.error:
            continue
        sub = typer.Typer()
        for impl in reg.manager.hook.gencli_register_commands.get_hookimpls():
            if impl.plugin_name != info.name:
                continue
            try:
                impl.function(sub)
                group = typer.main.get_group(sub) if sub.registered_commands or sub.registered_groups else None
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - a plugin's broken command breaks only that plugin
                info.error = f"gencli_register_commands raised {type(exc).__name__}: {exc}"
                group = None
            for name, command in (group.commands.items() if group is not None else ()):
                if name in CORE_COMMANDS:
                    warn(f"plugin {info.name!r} command {name!r} clashes with the core command {name!r}; not registered")
                    info.shadowed.append(f"command {name!r} (a core command)")
                elif name in found:
                    warn(f"plugin {info.name!r} command {name!r} clashes with plugin {found[name][0]!r}'s; not registered")
                    info.shadowed.append(f"command {name!r} (kept from plugin {found[name][0]!r})")
                else:
                    found[name] = (info.name, command)
                    info.commands.append(name)
    return {name: command for name, (_, command) in found.items()}


def _version(value: bool) -> None:
    if value:
        print(f"gencli {__version__}")
        raise typer.Exit()


def main_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only results and errors.")] = False,
    threads: Annotated[Optional[int], typer.Option(
        "--threads", min=1, metavar="N", show_default=False,
        help="CPU threads for torch's operators, fixed (default: training takes one per free core and follows the load).")] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")] = False,
) -> None:
    """Train and use generative image models: VAEs, GANs, image translation and diffusion."""
    state["debug"] = debug or bool(os.environ.get("GENCLI_DEBUG"))
    state["quiet"] = quiet
    from gencli.ui import console

    console.quiet = quiet  # progress bars obey it wherever they are drawn
    if threads:
        # read by torch when it starts its thread pools, and inherited by torchrun's workers
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)


def build_app() -> typer.Typer:
    """Return the Typer app: the core commands, each from its own module; plugin commands join lazily."""
    from gencli.cli import datasets, eval, interpolate, models, plugins, sample, train, translate

    app = typer.Typer(
        name="gencli",
        cls=GencliGroup,
        help="Train and use generative image models: VAEs, GANs, image translation and diffusion.",
        no_args_is_help=True,
        add_completion=True,
        pretty_exceptions_enable=False,
        rich_markup_mode="rich",
    )
    app.callback()(main_options)
    app.command(epilog=train.EPILOG)(train.train)
    app.command(epilog=sample.EPILOG)(sample.sample)
    app.command(epilog=interpolate.EPILOG)(interpolate.interpolate)
    app.command("eval", epilog=eval.EPILOG)(eval.eval_)
    app.command(epilog=translate.EPILOG)(translate.translate)
    app.command(epilog=models.EPILOG)(models.models)
    app.command(epilog=datasets.EPILOG)(datasets.datasets)
    app.add_typer(plugins.app, name="plugins")
    return app


app = build_app()


def main() -> None:
    """Run the CLI; usage errors (unknown option, missing argument) also end in one line and exit 2."""
    command = typer.main.get_command(app)
    try:
        code = command.main(prog_name="gencli", standalone_mode=False)
    except Exception as exc:
        format_message = getattr(exc, "format_message", None)
        if format_message is None or state["debug"]:
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()
            sys.exit(0)
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        print(f"error: {format_message()}{hint}", file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", 2))
    sys.exit(code if isinstance(code, int) else 0)
