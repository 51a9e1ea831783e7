"""gencli: train and use generative image models from the command line.

The plugin author's API is importable from here::

    from gencli import Model, Hyperparameters, Options, Figure, TrainDefaults, ModelSpec, hookimpl, UserError

Names that need torch (``Model`` and friends) are imported on first use, so that importing
gencli for its command line or a plugin's entry point stays light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# The plugin API version this core speaks. A plugin declares the versions it supports with a
# module-level ``GENCLI_API = 2`` (or a tuple of versions); the core refuses one that does not
# list this version, with a line saying which side to upgrade.
API_VERSION = 2

# name -> module that defines it; imported when first asked for
_LAZY = {
    "Model": "gencli.models.base",
    # the declarations need no torch: a plugin's light declarations module imports them from here
    "Hyperparameters": "gencli.models.declarations",
    "Options": "gencli.models.declarations",
    "Figure": "gencli.models.declarations",
    "TrainDefaults": "gencli.models.declarations",
    "ModelDeclarations": "gencli.models.declarations",
    "Batch": "gencli.data.base",
    "ImageData": "gencli.data.base",
    "ModelSpec": "gencli.registry",
    "DatasetSpec": "gencli.registry",
    "MetricSpec": "gencli.registry",
    "MetricProperties": "gencli.registry",
    "hookimpl": "gencli.hookspecs",
    "UserError": "gencli.errors",
    "Run": "gencli.runs",
    "load_run": "gencli.api",
    # the Python API beside the command line (docs/api.md)
    "train": "gencli.api",
    "sample": "gencli.api",
    "evaluate": "gencli.api",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gencli' has no attribute {name!r}")


__all__ = ["__version__", "API_VERSION", *_LAZY]
