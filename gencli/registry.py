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
    """A model a plugin offers: ``target`` names its Model subclass.

    ``declarations`` ("package.module:Name", optional) names the model's light declarations: a
    ``gencli.models.declarations.ModelDeclarations`` subclass in a module that imports no torch,
    which the Model subclass inherits. `gencli models --info` and shell completion then read it
    instead of importing the model's networks; without it they import ``target``.
    """

    name: str
    summary: str
    target: str
    data: DataKind = "images"
    # Filled in by the plugin manager: which plugin registered it.
    plugin: str = ""
    declarations: str = ""

    def load(self):
        return load_target(self.target)

    def load_declarations(self):
        """Return the model's declarations class: the light one when declared, else the model class."""
        return load_target(self.declarations or self.target)


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


# The kinds of run a metric can be chosen for by default (``MetricProperties.default_for``).
#   generative          - the model samples
#   conditional         - the model samples per class (conditional, with classes)
#   reconstructive      - the model reconstructs its inputs
#   translation         - the model translates between two domains
#   paired-translation  - ... and trains on aligned pairs, so its outputs have ground truth
RUN_KINDS: tuple[str, ...] = ("translation", "paired-translation", "reconstructive", "generative", "conditional")


@dataclass(frozen=True)
class MetricProperties:
    """What ``gencli eval`` needs to know about a metric before computing it.

    The defaults describe a metric that reads pixels, is never chosen by default and whose
    values are better high, so a spec written without properties keeps working.
    """

    # Computed on features of a feature network (Inception, or --features): without the Inception
    # weights it is skipped with one warning; it can score two image folders.
    needs_features: bool = False
    needs_labels: bool = False  # needs labelled real data (class labels)
    needs_classifier: bool = False  # needs --classifier; chosen by default only when one is given
    # How a value is ranked in tables across runs: lower is better, else higher is better. A
    # value is the metric's when its key is the metric's name, or starts with "name/" or "name [".
    lower_is_better: bool = False
    not_ranked: tuple[str, ...] = ()  # keys the metric returns that are never ranked (a spread)
    default_for: tuple[str, ...] = ()  # RUN_KINDS on which it runs when --metrics is not given
    min_images: int = 2  # the fewest images on each side it can be computed on

    def __post_init__(self) -> None:
        unknown = [k for k in self.default_for if k not in RUN_KINDS]
        if unknown:
            raise ValueError(f"default_for names unknown run kinds {unknown}; known: {', '.join(RUN_KINDS)}")


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
    properties: MetricProperties = field(default_factory=MetricProperties)

    def __post_init__(self) -> None:
        if not isinstance(self.properties, MetricProperties):  # raised in the plugin's hook: the plugin is reported
            raise TypeError(f"metric {self.name!r}: properties must be a MetricProperties, "
                            f"not {type(self.properties).__name__}")

    def load(self):
        return load_target(self.target)


@dataclass(frozen=True)
class LoggerSpec:
    """An experiment tracker for ``gencli train --log NAME``. ``target`` names a ``gencli.loggers.Logger``
    subclass (or a factory taking the same arguments), imported only when the logger is chosen.

    ``requires`` names the modules it imports (checked, not imported, before any data is loaded) and
    ``install`` says how to get them: a missing one ends the command in one line with that advice.
    """

    name: str
    summary: str
    target: str
    requires: tuple[str, ...] = ()
    install: str = ""
    plugin: str = ""

    def load(self):
        return load_target(self.target)
