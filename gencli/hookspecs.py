"""The whole public extension surface of gencli. A plugin implements any of these hooks.

Each hook is called with no torch imported; return light specs (see ``gencli.registry``) whose
``target`` names the heavy module, imported only when that thing is used. Mark each
implementation with ``@hookimpl`` and give it exactly the arguments its spec has: a plugin that
implements a name not defined here, or takes other arguments, is listed as broken (alone).
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("gencli")
hookimpl = pluggy.HookimplMarker("gencli")


@hookspec
def gencli_register_models():
    """Return a list of ``ModelSpec`` for the models this plugin adds."""


@hookspec
def gencli_register_datasets():
    """Return a list of ``DatasetSpec`` for the datasets this plugin adds."""


@hookspec
def gencli_register_metrics():
    """Return a list of ``MetricSpec`` for the metrics ``gencli eval`` can compute."""


@hookspec
def gencli_register_loggers():
    """Return a list of ``LoggerSpec`` for the experiment trackers ``gencli train --log`` can send a run to."""


@hookspec
def gencli_register_commands(app):
    """Add commands to the Typer ``app`` (decorate functions with ``@app.command()``).

    Each plugin gets an app of its own; its commands join gencli's unless a name is taken by a core
    command or an earlier plugin's, which is then refused with one warning line naming both (a
    command another plugin already has stays reachable as ``plugin:command``).
    """
