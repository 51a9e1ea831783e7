"""The gencli command line: ``build_app()`` adds one module per command, then plugin commands.

Nothing here imports torch: `gencli --help`, `gencli models` and `gencli plugins` stay fast.
Plugins are loaded only when a command needs them: `gencli --version` loads none, and plugin
commands are looked up only when the name is not a core command (or when help lists them).
A ``UserError`` anywhere ends the command with one line on stderr and exit code 2 (``--debug``
shows the traceback instead).
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer

from gencli import __version__
from gencli.cli.common import state
from gencli.cli.plugin_commands import GencliGroup, plugin_commands  # noqa: F401 - plugin_commands: this package's API
from gencli.errors import UserError
from gencli.training.threads import MAX_THREADS


def _version(value: bool) -> None:
    if value:
        print(f"gencli {__version__}")
        raise typer.Exit()


def main_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only results and errors.")] = False,
    threads: Annotated[Optional[int], typer.Option(
        "--threads", min=1, max=MAX_THREADS, metavar="N", show_default=False,
        help="CPU threads for torch's operators, fixed (default: one per free core; training also follows the load).")] = None,
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


def _flags_without_metavar() -> None:
    """Show no value type beside on/off flags in help (Typer's rich help writes ``--debug <bool>``,
    as if the flag took a value); options that take a value keep theirs."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich
    if getattr(shown, "flags_plain", False):
        return

    def display_type_rich(self, ctx):
        return None if self.is_flag and self.metavar is None else shown(self, ctx)

    display_type_rich.flags_plain = True
    TyperOption.display_type_rich = display_type_rich


def build_app() -> typer.Typer:
    """Return the Typer app: the core commands, each from its own module; plugin commands join lazily."""
    _flags_without_metavar()
    from gencli.cli import datasets, eval, export, interpolate, models, plugins, report, sample, train, translate

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
    app.command(epilog=export.EPILOG)(export.export)
    app.command(epilog=models.EPILOG)(models.models)
    app.command(epilog=datasets.EPILOG)(datasets.datasets)
    app.command(epilog=report.EPILOG)(report.report)
    app.add_typer(plugins.app, name="plugins")
    return app


app = build_app()


def main() -> None:
    """Run the CLI; usage errors (unknown option, missing argument) also end in one line and exit 2."""
    command = typer.main.get_command(app)
    try:
        code = command.main(prog_name="gencli", standalone_mode=False)
    except UserError as exc:  # raised outside a command body (a plugin's group callback, say)
        if state["debug"]:
            raise
        from gencli.ui.console import error

        error(str(exc))
        sys.exit(2)
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
