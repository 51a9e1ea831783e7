"""What a model declares, readable without torch: hyperparameters, options, figures, defaults.

`gencli models --info`, shell completion and the help of the commands read a model's
declarations; only training, loading and generating need its networks. So that the first stay
fast, a model's declarations can live apart from its networks, in a module that imports no
torch: a ``ModelDeclarations`` subclass there names the hyperparameter dataclass, the options of
each command, the figures, the training defaults and the capabilities it offers; the model's
spec names it (``ModelSpec(..., declarations="package.declarations:VAEDeclarations")``), and the
model class inherits it::

    class VAEDeclarations(ModelDeclarations):          # package/declarations.py: no torch
        Hyperparameters = VAEHyperparameters
        offers = ("sample", "interpolate")

    class VAE(VAEDeclarations, Model):                  # package/vae.py: the networks
        ...

A model without such a class (one module holding everything) works the same, only its
declarations are read by importing its module. No torch here.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

# The capabilities a command may ask for, and the methods that provide them.
CAPABILITIES: dict[str, tuple[str, ...]] = {
    "sample": ("sample",),
    "encode": ("encode",),
    "decode": ("decode",),
    "reconstruct": ("reconstruct",),
    "translate": ("translate",),
    "interpolate": ("latents", "generate"),
}


@dataclasses.dataclass
class Hyperparameters:
    """Base for a model's hyperparameters. Subclasses add fields with their paper's defaults."""

    lr: float = dataclasses.field(default=2e-4, metadata={"help": "learning rate"})


@dataclasses.dataclass
class Options:
    """Base for a model's command options: `gencli sample|interpolate|eval RUN --set key=value`.

    A subclass adds typed fields with a default and ``metadata={"help": ...}``, exactly like
    ``Hyperparameters``; values arrive parsed and checked by name, and a ``validate(self)`` method
    may refuse meaningful-but-wrong combinations. The fields reach the model's method as keyword
    arguments (``sample(n, labels, generator, **fields)``).
    """

    def validate(self) -> None:
        """Raise ``UserError`` naming the option for a value the model cannot use.

        The core calls it right after building the options from ``--set`` (or ``options=``), as it
        does for hyperparameters, so a model's methods take the values as they are.
        """


@dataclasses.dataclass(frozen=True)
class Figure:
    """A figure a model can draw beyond samples: `gencli sample RUN --figure NAME`.

    ``Options`` are the figure's own ``--set`` keys (passed to ``Model.figure`` as keyword
    arguments); with ``needs_data`` the core also passes ``data=``, held-out images of the run's
    dataset (an ``ImageData``).
    """

    help: str
    Options: type = Options
    needs_data: bool = False


@dataclasses.dataclass(frozen=True)
class TrainDefaults:
    """What ``gencli train MODEL`` uses when the user does not say (sized for a CPU minute)."""

    image_size: int = 32
    channels: int = 3
    batch_size: int = 64
    steps: int = 1000
    sample_every: int = 100
    checkpoint_every: int = 250


class ModelDeclarations:
    """The declarations of a model; ``gencli.models.base.Model`` inherits them.

    ``offers`` names the capabilities (keys of ``CAPABILITIES``) the model's class provides, so
    they can be listed without importing it; None means "not declared here": they are read from
    the model class's methods. The conformance kit checks a model class agrees with what its
    declarations say (``gencli.testing.check_declarations``).
    """

    Hyperparameters: ClassVar[type] = Hyperparameters
    defaults: ClassVar[TrainDefaults] = TrainDefaults()
    # Whether labels condition the model (the CLI then accepts --label).
    conditional: ClassVar[bool] = False
    # Options of `gencli sample`, `gencli interpolate` and `gencli eval` (`--set key=value`),
    # passed as keyword arguments to ``sample`` / ``latents`` and ``generate`` / ``sample``.
    # ``EvalOptions`` None means: evaluate with the ``SampleOptions``.
    SampleOptions: ClassVar[type] = Options
    InterpolateOptions: ClassVar[type] = Options
    EvalOptions: ClassVar[type | None] = None
    # Figures ``figure(name, ...)`` draws for `gencli sample RUN --figure NAME`.
    figures: ClassVar[dict[str, Figure]] = {}
    # The capabilities the model offers (None: read them from the model class's methods).
    offers: ClassVar[tuple[str, ...] | None] = None

    @classmethod
    def eval_options(cls) -> type:
        """Return the options class of `gencli eval` (the sampling options unless declared)."""
        return cls.EvalOptions if cls.EvalOptions is not None else cls.SampleOptions


def declared_capabilities(declarations: type) -> list[str]:
    """Return the capabilities of a model from its declarations (or, for a model class that declares
    none, from its methods), in ``CAPABILITIES`` order."""
    offers = getattr(declarations, "offers", None)
    if offers is not None:
        return [c for c in CAPABILITIES if c in offers]
    if hasattr(declarations, "train_step"):  # a Model subclass: its methods say
        return [c for c in CAPABILITIES if overrides(declarations, CAPABILITIES[c])]
    return []


def overrides(cls: type, methods: tuple[str, ...]) -> bool:
    """Whether ``cls`` overrides each of ``methods`` below the base class that first declares it
    (``Model``, whose versions only raise)."""
    def overridden(method: str) -> bool:
        defining = [k for k in cls.__mro__ if method in vars(k)]
        return len(defining) > 1 and defining[0] is not defining[-1]

    return all(overridden(m) for m in methods)
