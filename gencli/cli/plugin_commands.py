"""Commands that plugins add: found lazily, and never over a core command or another plugin's."""

from __future__ import annotations

import functools

import typer
from typer.core import TyperGroup

from gencli.cli.common import handle_errors

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
    """Return the commands plugins add; one that clashes with a core or an earlier plugin's is refused.

    A command refused because an earlier plugin has its name stays reachable as ``plugin:command``.
    """
    from gencli.plugins import Clash, describe_error, registry, running_plugin
    from gencli.ui.console import warn

    reg = registry()
    found: dict = {}
    qualified: dict = {}
    for info in reg.plugins:
        if info.error:
            continue
        sub = typer.Typer()
        for impl in reg.manager.hook.gencli_register_commands.get_hookimpls():
            if impl.plugin_name != info.name:
                continue
            try:
                with running_plugin(info, "calling gencli_register_commands of"):
                    impl.function(sub)
                    group = typer.main.get_group(sub) if sub.registered_commands or sub.registered_groups else None
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - a plugin's broken command breaks only that plugin
                info.error = f"gencli_register_commands raised {describe_error(exc)}"
                group = None
            for name, command in (group.commands.items() if group is not None else ()):
                if command.callback is not None:  # a plugin command's UserError is one line too
                    command.callback = handle_errors(command.callback)
                if name in CORE_COMMANDS:
                    warn(f"plugin {info.name!r} command {name!r} clashes with the core command {name!r}; not registered")
                    info.shadowed.append(f"command {name!r} (a core command)")
                elif name in found:
                    clash = Clash("command", name, found[name][0], info.name)
                    reg.clashes.append(clash)
                    reg.warn_clashes("command", name)
                    info.shadowed.append(f"command {name!r} (kept from plugin {found[name][0]!r}; use '{info.name}:{name}')")
                    qualified[f"{info.name}:{name}"] = (info.name, command)
                else:
                    found[name] = (info.name, command)
                    info.commands.append(name)
    return {name: command for name, (_, command) in {**found, **qualified}.items()}
