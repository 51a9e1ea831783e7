"""Light descriptions of what plugins contribute. Importing this module never imports torch.

A plugin's hooks return these specs; the heavy module behind ``target`` ("package.module:Name")
is imported only when the thing is actually built.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Literal

# What a model trains on, and what a dataset provides.
#   images    - plain images (labels, when present, are ignored)
#   labelled  - images with class labels
#   paired    - aligned pairs (A, B) for translation
#   unpaired  - two image domains A and B
DataKind = Literal["images", "labelled", "paired", "unpaired"]
DATA_KINDS: tuple[str, ...] = ("images", "labelled", "paired", "unpaired")


def load_target(target: str) -> Any:
    """Return the object named by ``"package.module:attr"``."""
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr) if attr else module


@dataclass(frozen=True)
class ModelSpec:
    """A model a plugin offers: ``target`` names its Model subclass."""

    name: str
    summary: str
    target: str
    data: DataKind = "images"
    # Filled in by the plugin manager: which plugin registered it.
    plugin: str = ""

    def load(self):
        return load_target(self.target)


@dataclass(frozen=True)
class DatasetSpec:
    """A named dataset. ``target`` names a callable ``build(request) -> ImageDataset``.

    ``kind`` is what the dataset provides; ``info`` holds the dataset card (source, licence,
    citation, classes, how to fetch by hand, native resolution, image count, ...).
    """

    name: str
    summary: str
    target: str
    kind: DataKind = "images"
    info: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    plugin: str = ""

    def load(self):
        return load_target(self.target)


@dataclass(frozen=True)
class MetricSpec:
    """A metric for ``gencli eval``. ``target`` names a Metric subclass or factory."""

    name: str
    summary: str
    target: str
    # Which model capability the metric needs: "sample", "reconstruct", ...; a tuple means any one
    # of them (FID serves models that sample and models that translate).
    needs: str | tuple[str, ...] = "sample"
    plugin: str = ""

    def load(self):
        return load_target(self.target)
