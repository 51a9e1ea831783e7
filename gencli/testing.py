"""The conformance kit: checks that a model honours the gencli model contract.

A plugin author runs it in their own test suite::

    from gencli.testing import check_model

    def test_my_model_honours_the_contract(tmp_path):
        check_model("mymodel", workdir=tmp_path)

``check_model`` runs every check below in turn; each is also a function of its own, so a suite
can give every check its own test. A check raises ``ConformanceError`` (an ``AssertionError``,
so pytest shows it as a failed assertion) with one paragraph saying what the model did and what
the contract expects. The checks:

- ``check_declarations``: name, summary, data kind, defaults, capability hints, a typed
  hyperparameter dataclass whose every field has a help text and a default that ``--set`` can
  write back; a model whose spec names light declarations inherits them unchanged and offers
  the capabilities they list.
- ``check_hyperparameters``: an unknown key and a wrongly typed value are refused with a
  ``UserError`` naming the key, through the same path as ``gencli train --set``.
- ``check_builds``: at a few candidate sizes, and with 1 and 3 channels, the model either builds
  and takes one training step, or refuses with a ``UserError``; it builds at one size at least.
- ``check_per_example_noise``: a train step as process 2 of 2 on half a batch advances torch's
  generator exactly as one process on the whole batch (per-example noise through ``self.randn``).
- ``check_training``: ``gencli.training.engine.train`` runs a few steps on built-in shapes written
  to an image folder; every logged loss is finite; samples, GIF, loss plot and checkpoint exist.
- ``check_checkpoint``: ``gencli.load_run`` gives back exactly the saved weights, in eval mode,
  and two loads behave identically (nothing the model needs lives outside its checkpoint).
- ``check_resume``: K steps then ``--resume`` to N gives the same weights as N straight steps.
- ``check_capabilities``: every capability the model offers returns finite float images of the
  right shape in [-1, 1] (or latent codes with one row per image); sampling with a seeded
  generator repeats; special figures and the progress preview draw.
- ``check_plugin``: a plugin module (and each model's light declarations) imports without torch,
  declares an API version this gencli speaks, and registers specs whose name and data kind match
  the classes they load.

Everything runs on the CPU at the smallest size the model accepts (16 px where it can), on a
batch of 4, for 3 steps, with the hyperparameters of the model's ``test_overrides`` class
attribute (narrow widths, small latents) so that the kit takes seconds per model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gencli.errors import UserError

# Image sizes tried by ``check_builds``: the sizes the built-in architectures care about
# (powers of two, MNIST's 28, a multiple of 16 that is not a power of two).
CANDIDATE_SIZES: tuple[int, ...] = (8, 16, 28, 32, 48, 64)
CHANNELS: tuple[int, ...] = (1, 3)
# Training uses the first of these sizes the model accepts: 16 px where it can, as small as it goes.
PREFERRED_SIZES: tuple[int, ...] = (16, 32, 28, 48, 64, 8)
RANGE_TOLERANCE = 1e-4
DATA_IMAGES = 48  # training images in the kit's dataset folder (a quarter as many more for testing)
SAMPLE_COUNT = 4  # images in the progress grid of the kit's runs

# The built-in dataset drawn into an image folder for each kind of data a model trains on.
_SOURCE = {"images": "shapes", "labelled": "shapes", "paired": "shapes-paired", "unpaired": "shapes-unpaired"}


class ConformanceError(AssertionError):
    """A model does not honour the gencli model contract; the message says where and how."""


@dataclass
class Settings:
    """How the kit exercises a model: sizes, steps, batch, hyperparameters, where to write."""

    image_size: int | None = None  # None: the smallest accepted of PREFERRED_SIZES
    channels: int | None = None  # None: the model's default channel count
    steps: int = 3
    resume_at: int = 1
    batch_size: int = 4
    seed: int = 0
    device: str = "cpu"
    overrides: dict[str, Any] = field(default_factory=dict)  # on top of the class's test_overrides
    workdir: Path | None = None


@dataclass
class Report:
    """What ``check_model`` found: sizes built or refused, the runs it trained, time per check."""

    model: str
    image_size: int = 0
    channels: int = 0
    built: list[tuple[int, int]] = field(default_factory=list)
    refused: dict[tuple[int, int], str] = field(default_factory=dict)
    capabilities: list[str] = field(default_factory=list)
    run_dir: Path | None = None
    resumed_run_dir: Path | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        timing = ", ".join(f"{k} {v:.1f}s" for k, v in self.seconds.items())
        return (f"{self.model}: trained at {self.channels}x{self.image_size}x{self.image_size}; "
                f"builds at {len(self.built)} size/channel pairs, refuses {len(self.refused)}; "
                f"capabilities {', '.join(self.capabilities) or 'none'}; {timing}")


def fail(model: str, message: str) -> typing.NoReturn:
    raise ConformanceError(f"{model}: {message}")


def _where(exc: BaseException) -> str:
    """Return 'file:line in function' of the innermost frame of ``exc`` outside the kit, or ''."""
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).name != "testing.py"]
    if not frames:
        return ""
    f = frames[-1]
    return f" (at {Path(f.filename).name}:{f.lineno} in {f.name})"


def contained(check):
    """Make ``check`` raise nothing but ``ConformanceError``: a crash in plugin code says which check met it."""
    import functools

    @functools.wraps(check)
    def wrapper(*args, **kwargs):
        try:
            return check(*args, **kwargs)
        except (ConformanceError, KeyboardInterrupt):
            raise
        except UserError as exc:
            model = args[0] if args and isinstance(args[0], str) else getattr(args[0], "__name__", "?") if args else "?"
            raise ConformanceError(f"{model}: {check.__name__} was refused: {exc}") from exc
        except BaseException as exc:  # noqa: BLE001 - sys.exit in plugin code is a failed check too
            model = args[0] if args and isinstance(args[0], (str, Path)) else getattr(args[0], "__name__", "?") if args else "?"
            raise ConformanceError(
                f"{model}: {check.__name__} met {type(exc).__name__}: {exc}{_where(exc)}; the contract expects model "
                "code to return what docs/plugins.md describes and to refuse what it cannot do with gencli.UserError"
            ) from exc

    return wrapper


def _contract_call(name: str, call: str, contract: str, method, *args, **kwargs):
    """Call a model method; a TypeError (a signature the core does not use) becomes a ConformanceError."""
    try:
        return method(*args, **kwargs)
    except TypeError as exc:
        fail(name, f"{call} raised TypeError: {exc}{_where(exc)}; the contract: {contract}")


# --------------------------------------------------------------------------- the model under test
def _owner_check(model: str, plugin: str | None) -> None:
    """Refuse a plain name two plugins register, and (with ``plugin``) a model ``plugin`` does not own."""
    from gencli.plugins import registry

    reg = registry()
    if ":" not in model:
        for clash in reg.clashes:
            if clash.kind == "model" and clash.name == model:
                raise ConformanceError(
                    f"{model}: the name is registered by plugins {clash.kept!r} and {clash.other!r}, and the plain name "
                    f"means {clash.kept!r}'s; the rule: a model's name is unique among installed plugins. Rename "
                    f"yours, or test it by its qualified name, '{clash.other}:{model}' or '{clash.kept}:{model}'")
    if plugin is not None:
        spec = reg.model(model)
        info = reg.plugin(spec.plugin)
        owners = {spec.plugin} | ({info.distribution, info.module.split(":")[0].split(".")[0]} if info else set())
        if plugin not in owners and plugin.split(".")[0] not in owners:
            raise ConformanceError(
                f"{model}: registered by plugin {spec.plugin!r}"
                f"{f' ({info.distribution})' if info and info.distribution else ''}, not by {plugin!r}; "
                "the rule: the kit tests only models of the plugin under test")


def model_class(model: str | type, plugin: str | None = None) -> type:
    """Return the Model subclass for a registered model name, or ``model`` itself when it is a class.

    A plain name that two plugins register is refused (the kit does not guess which one is meant);
    with ``plugin`` (an entry-point, distribution or package name), so is a model of another plugin.
    """
    from gencli.models.base import Model
    from gencli.plugins import registry

    if isinstance(model, str):
        try:
            spec = registry().model(model)
        except UserError as exc:
            raise ConformanceError(f"{model}: not a registered model: {exc}") from None
        _owner_check(model, plugin)
        try:
            cls = spec.load()
        except Exception as exc:
            fail(model, f"importing its target {spec.target!r} raised {type(exc).__name__}: {exc}{_where(exc)}")
        if isinstance(cls, type) and issubclass(cls, Model):
            try:
                cls = registry().model_class(model)  # with the summary and data kind its spec gives
            except UserError as exc:
                fail(model, str(exc))
    else:
        cls = model
    if not (isinstance(cls, type) and issubclass(cls, Model)):
        fail(str(model), f"the registered target is {cls!r}, not a subclass of gencli.models.base.Model")
    return cls


@contextlib.contextmanager
def registered(model: str | type) -> Iterator[tuple[str, type]]:
    """Yield (name, class), with the class reachable by name from the engine while inside.

    A class that is not registered (a model still being written) is added to the process-wide
    registry for the duration, so the engine, ``load_run`` and resume find it as they would find
    an installed plugin's model; a registered name is used as it is.
    """
    from gencli.plugins import registry
    from gencli.registry import ModelSpec

    cls = model_class(model)
    name = model if isinstance(model, str) else cls.name
    if not name:
        fail(cls.__name__, "declares no `name`")
    models = registry().models
    present = models.get(name)
    if present is not None and present.load() is cls:
        yield name, cls
        return

    class _ClassSpec(ModelSpec):
        def load(self):
            return cls

    models[name] = _ClassSpec(name, cls.summary, f"{cls.__module__}:{cls.__qualname__}", cls.data, plugin="gencli.testing")
    try:
        yield name, cls
    finally:
        if present is None:
            models.pop(name, None)
        else:
            models[name] = present


def overrides_for(cls: type, settings: Settings) -> dict[str, Any]:
    """Return the hyperparameters the kit trains with: the class's ``test_overrides``, then the caller's."""
    return {**dict(getattr(cls, "test_overrides", {}) or {}), **settings.overrides}


def hyperparameters(cls: type, values: dict[str, Any]):
    from gencli.models import hparams

    return hparams.build(cls.Hyperparameters, values, source="the conformance kit's overrides")


# --------------------------------------------------------------------------- declarations and --set
def cli_text(value: Any) -> str:
    """Return ``value`` written as a user would write it after ``--set key=``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return ",".join(cli_text(v) for v in value)
    return str(value)


@contained
def check_declarations(model: str | type) -> None:
    """Check the class attributes the core reads and the hyperparameter dataclass."""
    from gencli.models.base import Hyperparameters, TrainDefaults
    from gencli.registry import DATA_KINDS

    cls = model_class(model)
    who = cls.name or cls.__name__
    if not cls.name or cls.name != cls.name.strip() or " " in cls.name or ":" in cls.name:
        fail(who, f"`name` must be a non-empty command-line word without spaces or ':', got {cls.name!r}")
    if isinstance(model, str) and model != cls.name and not model.endswith(f":{cls.name}"):
        fail(who, f"is registered as {model!r} but its class says name = {cls.name!r}; use one name")
    if not cls.summary.strip():
        fail(who, "`summary` is empty; `gencli models` shows it")
    if cls.data not in DATA_KINDS:
        fail(who, f"`data` is {cls.data!r}; it must be one of {', '.join(DATA_KINDS)}")
    if not isinstance(cls.defaults, TrainDefaults):
        fail(who, "`defaults` must be a gencli.models.base.TrainDefaults")
    from gencli.models.base import Figure, Options

    option_classes = {"SampleOptions": cls.SampleOptions, "InterpolateOptions": cls.InterpolateOptions}
    if cls.EvalOptions is not None:
        option_classes["EvalOptions"] = cls.EvalOptions
    if not isinstance(cls.figures, dict):
        fail(who, f"`figures` must be a dict of figure name -> gencli.models.base.Figure, got {type(cls.figures).__name__}")
    for fig_name, fig in cls.figures.items():
        if not isinstance(fig, Figure):
            fail(who, f"figure {fig_name!r} must be declared as gencli.models.base.Figure(help=...), got {type(fig).__name__}")
        if not fig.help.strip():
            fail(who, f"figure {fig_name!r} has no help text; `gencli models --info` shows it")
        option_classes[f"figure {fig_name!r} Options"] = fig.Options
    for what, opt_cls in option_classes.items():
        if not (dataclasses.is_dataclass(opt_cls) and isinstance(opt_cls, type) and issubclass(opt_cls, Options)):
            fail(who, f"`{what}` must be a dataclass subclassing gencli.models.base.Options")
        _check_fields(who, opt_cls, "option")
    if not isinstance(getattr(cls, "test_overrides", {}), dict):
        fail(who, "`test_overrides` must be a dict of hyperparameter values")
    from gencli.models.base import CAPABILITIES, can_export, has_capability

    hintable = (*CAPABILITIES, "export")  # export is offered by export_module, not by a sampling method
    for capability in getattr(cls, "capability_hints", {}) or {}:
        if capability not in hintable:
            fail(who, f"`capability_hints` names {capability!r}, which is no capability ({', '.join(hintable)})")
        if can_export(cls) if capability == "export" else has_capability(cls, capability):
            fail(who, f"`capability_hints` explains how to get {capability!r}, but the model already offers it")
    _check_light_declarations(model, cls, who)
    hp_cls = cls.Hyperparameters
    if not (dataclasses.is_dataclass(hp_cls) and isinstance(hp_cls, type) and issubclass(hp_cls, Hyperparameters)):
        fail(who, "`Hyperparameters` must be a dataclass subclassing gencli.models.base.Hyperparameters")
    _check_fields(who, hp_cls, "hyperparameter")


DECLARED = ("Hyperparameters", "defaults", "conditional", "SampleOptions", "InterpolateOptions", "EvalOptions", "figures")


def _check_light_declarations(model: str | type, cls: type, who: str) -> None:
    """A model whose spec names light declarations inherits them unchanged, and offers what they say it offers."""
    from gencli.models.base import capabilities
    from gencli.models.declarations import ModelDeclarations
    from gencli.plugins import registry

    spec = registry().models.get(model) if isinstance(model, str) else None
    if spec is None or not spec.declarations:
        return
    try:
        declared = spec.load_declarations()
    except Exception as exc:
        fail(who, f"importing its declarations {spec.declarations!r} raised {type(exc).__name__}: {exc}{_where(exc)}")
    if not (isinstance(declared, type) and issubclass(declared, ModelDeclarations)):
        fail(who, f"its declarations {spec.declarations!r} must be a subclass of gencli.models.declarations.ModelDeclarations")
    if not issubclass(cls, declared):
        fail(who, f"the model class does not inherit its declarations {spec.declarations!r}; "
                  f"write class {cls.__name__}({declared.__name__}, ...)")
    for attr in DECLARED:
        if getattr(cls, attr) != getattr(declared, attr):
            fail(who, f"the model class sets `{attr}` itself, unlike its declarations {spec.declarations!r} "
                      "(which `gencli models --info` shows); declare it there only")
    offered = capabilities(cls)
    if declared.offers is None or sorted(declared.offers) != sorted(offered):
        fail(who, f"its declarations say it offers {list(declared.offers or [])}, but the class offers {offered}; "
                  f"set offers = {tuple(offered)!r} in {declared.__name__}")


def _check_fields(who: str, cls: type, what: str) -> None:
    """Every field of a hyperparameter or option dataclass has help, a default, and a --set spelling."""
    from gencli.models import hparams

    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.metadata.get("help"):
            fail(who, f"{what} {f.name!r} has no help text: field(default=..., metadata={{'help': '...'}})")
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            fail(who, f"{what} {f.name!r} has no default" + (" (give the paper's value)" if what == "hyperparameter" else ""))
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if default is None:
            continue  # "the model's own choice": nothing to spell
        try:
            parsed = hparams.coerce(cli_text(default), hints[f.name], f.name)
        except UserError as exc:
            fail(who, f"the default of {f.name!r} cannot be written with --set: {exc}")
        if parsed != default and not (isinstance(default, list) and list(parsed) == default):
            fail(who, f"--set {f.name}={cli_text(default)} gives {parsed!r}, not the default {default!r}")


@contained
def check_hyperparameters(model: str | type, settings: Settings | None = None) -> None:
    """Check that ``--set`` refuses an unknown key and a wrongly typed value with a ``UserError``."""
    from gencli.training.engine import TrainConfig, train

    settings = settings or Settings()
    with registered(model) as (name, cls):
        base = overrides_for(cls, settings)
        hyperparameters(cls, base)  # the kit's own values must be accepted
        typed = _typed_field(cls)
        cases = [("no_such_hyperparameter", "1", "unknown hyperparameter 'no_such_hyperparameter'")]
        if typed is not None:
            cases.append((typed, "not-a-value", f"bad value 'not-a-value' for {typed!r}"))
        for key, value, expected in cases:
            config = TrainConfig(model=name, steps=1, device=settings.device, quiet=True, overrides={**base, key: value})
            try:
                train(config)
            except UserError as exc:
                if expected not in str(exc):
                    fail(name, f"--set {key}={value} was refused, but the message {str(exc)!r} does not say {expected!r}")
                continue
            except Exception as exc:
                fail(name, f"--set {key}={value} raised {type(exc).__name__}: {exc}; it must be a UserError")
            fail(name, f"--set {key}={value} was accepted; it must be refused")


def _typed_field(cls: type) -> str | None:
    """Return a hyperparameter whose type refuses the text 'not-a-value' (lr always qualifies)."""
    hints = typing.get_type_hints(cls.Hyperparameters)
    for f in dataclasses.fields(cls.Hyperparameters):
        if hints[f.name] in (int, float, bool) or typing.get_origin(hints[f.name]) is typing.Literal:
            return f.name
    return None


# --------------------------------------------------------------------------- sizes and channels
def random_batch(cls: type, image_size: int, channels: int, n: int = 2, classes: int = 2, device: str = "cpu"):
    """Return a Batch of random images (and labels or targets) shaped for ``cls``'s data kind."""
    import torch

    from gencli.data.base import Batch

    shape = (n, channels, image_size, image_size)
    labels = torch.arange(n, device=device) % classes if cls.data == "labelled" or cls.conditional else None
    targets = torch.rand(shape, device=device) * 2 - 1 if cls.data in ("paired", "unpaired") else None
    return Batch(images=torch.rand(shape, device=device) * 2 - 1, labels=labels, targets=targets)


@contained
def check_builds(model: str | type, settings: Settings | None = None,
                 sizes: tuple[int, ...] = CANDIDATE_SIZES, channels: tuple[int, ...] = CHANNELS) -> Report:
    """Build at each size, and each channel count at the training size: each must build and train
    one step on a random batch, or raise ``UserError``.

    Returns a report listing the (size, channels) pairs built and those refused with their message.
    """
    import torch

    settings = settings or Settings()
    cls = model_class(model)
    report = Report(cls.name)
    hp_values = overrides_for(cls, settings)
    classes = [f"class{i}" for i in range(2)] if cls.data == "labelled" or cls.conditional else None
    size, default_channels = training_size(cls, settings)
    pairs = [(s, default_channels) for s in sizes] + [(size, c) for c in channels if c != default_channels]
    for s, c in pairs:
        try:
            cls.check_shape(s, c)
            model_obj = cls(hyperparameters(cls, hp_values), (c, s, s), classes, device=settings.device)
        except UserError as exc:
            report.refused[(s, c)] = str(exc)
            continue
        except Exception as exc:
            fail(cls.name, f"building at {c}x{s}x{s} raised {type(exc).__name__}: {exc}; "
                           "refuse sizes you do not support with a UserError from check_shape")
        torch.manual_seed(settings.seed)
        model_obj.train()
        try:
            losses = model_obj.train_step(random_batch(cls, s, c, classes=2, device=settings.device))
        except UserError as exc:
            fail(cls.name, f"built at {c}x{s}x{s} but its train step refused: {exc}; "
                           "refuse the size in check_shape instead")
        except Exception as exc:
            fail(cls.name, f"built at {c}x{s}x{s} but a train step failed with {type(exc).__name__}: {exc}")
        _check_losses(cls.name, losses, f"a train step at {c}x{s}x{s}")
        report.built.append((s, c))
    if not report.built:
        fail(cls.name, "built at none of the sizes " + ", ".join(map(str, sizes)) + "; "
             + "; ".join(sorted(set(report.refused.values()))))
    return report


@contained
def check_per_example_noise(model: str | type, settings: Settings | None = None, batch_size: int = 8) -> None:
    """A train step as process 2 of 2 on half a batch must advance torch's generator exactly as
    one process on the whole batch does.

    The contract draws per-example noise through ``Model.randn`` / ``randn_like`` / ``rand`` /
    ``randint`` (or ``noise=self`` in ``gencli.nn``'s blocks): each process draws the whole
    global batch's noise and keeps its rows, so every process stays in step with the one a
    single-process run would have. A ``torch.randn(n, ...)`` of the local batch draws half as
    much on each of two processes and the generators drift apart, which this catches without
    starting any process. Dropout draws its masks per element inside torch and cannot be split
    so; the check sets dropout rates to 0 (a model with dropout is not data-parallel exact).
    """
    import torch
    from torch import nn

    from gencli.data.base import Batch

    settings = settings or Settings()
    cls = model_class(model)
    size, channels = training_size(cls, settings)
    classes = [f"class{i}" for i in range(2)] if cls.data == "labelled" or cls.conditional else None
    batch = random_batch(cls, size, channels, n=batch_size, classes=2, device=settings.device)
    half = Batch(*(None if t is None else t[: batch_size // 2] for t in (batch.images, batch.labels, batch.targets)))
    states = []
    for world_size, rank, data in ((1, 0, batch), (2, 1, half)):
        torch.manual_seed(settings.seed)
        model_obj = cls(hyperparameters(cls, overrides_for(cls, settings)), (channels, size, size), classes,
                        device=settings.device)
        model_obj.rank, model_obj.world_size = rank, world_size
        for net in model_obj.nets.values():
            for module in net.modules():
                if isinstance(module, nn.modules.dropout._DropoutNd):
                    module.p = 0.0
        model_obj.train()
        torch.manual_seed(settings.seed + 1)
        steps = model_obj.batches_per_step
        _contract_call(cls.name, "train_step", "takes a step as process 2 of 2", model_obj.train_step,
                       [data] * steps if steps > 1 else data)
        cuda = [torch.cuda.get_rng_state()] if torch.device(settings.device).type == "cuda" else []
        states.append([torch.get_rng_state(), *cuda])
    if not all(torch.equal(a, b) for a, b in zip(*states)):
        fail(cls.name, "a train step as process 2 of 2 on half the batch drew a different amount of randomness "
                       "from torch's generator than one process on the whole batch, so data-parallel runs drift "
                       "from single-process ones; draw per-example noise through self.randn / self.randn_like / "
                       "self.rand / self.randint (and pass noise=self to gencli.nn's losses and augmentations)")


def _check_losses(name: str, losses: Any, where: str) -> None:
    import torch

    if not isinstance(losses, dict) or not losses:
        fail(name, f"{where} returned {type(losses).__name__}; train_step must return a non-empty dict of scalar tensors")
    for key, value in losses.items():
        if not torch.is_tensor(value) or value.numel() != 1:
            fail(name, f"{where}: loss {key!r} is {type(value).__name__}, not a scalar tensor "
                       "(no .item(): the engine syncs when it logs)")
        if value.requires_grad:
            fail(name, f"{where}: loss {key!r} still requires grad; return it detached")
        if not torch.isfinite(value).all():
            fail(name, f"{where}: loss {key!r} is {float(value)}")


def training_size(cls: type, settings: Settings) -> tuple[int, int]:
    """Return (image size, channels) the kit trains at."""
    c = settings.channels or cls.defaults.channels
    if settings.image_size is not None:
        return settings.image_size, c
    for s in PREFERRED_SIZES:
        try:
            cls.check_shape(s, c)
            return s, c
        except UserError:
            continue
    fail(cls.name, f"refuses every size in {PREFERRED_SIZES} at {c} channels; pass image_size=")


# --------------------------------------------------------------------------- data
def write_dataset(kind: str, root: Path, images: int = DATA_IMAGES, size: int = 16, seed: int = 0) -> Path:
    """Write built-in shapes as an image folder of ``kind`` data under ``root``; return the folder.

    ``images`` and ``labelled`` become ``train/`` and ``test/`` with class sub-folders,
    ``paired`` side-by-side A|B images in ``train/`` and ``test/``, ``unpaired`` the ``trainA/``,
    ``trainB/``, ``testA/``, ``testB/`` folders: the layouts ``--data FOLDER`` reads, so the kit
    trains through the same data path a user does.
    """
    import torch
    from PIL import Image

    from gencli.data.base import DataRequest
    from gencli.data.resolve import load_dataset

    folder = root / f"shapes-{kind}-{size}px"
    if (folder / ".complete").exists():
        return folder

    def save(t: torch.Tensor, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(t.permute(1, 2, 0).numpy()).save(path)

    for split, count in (("train", images), ("test", max(8, images // 4))):
        data = load_dataset(_SOURCE[kind], DataRequest(size, 3, split, seed, options={"size": count}))
        for i in range(len(data.images)):
            if kind == "paired":
                save(torch.cat([data.images[i], data.targets[i]], dim=2), folder / split / f"{i:04d}.png")
            elif kind == "unpaired":
                save(data.images[i], folder / f"{split}A" / f"{i:04d}.png")
                save(data.targets[i % len(data.targets)], folder / f"{split}B" / f"{i:04d}.png")
            else:
                save(data.images[i], folder / split / data.classes[int(data.labels[i])] / f"{i:04d}.png")
    (folder / ".complete").write_text("")
    return folder


def load_split(folder: Path, image_size: int, channels: int, split: str = "test", seed: int = 0):
    from gencli.data.base import DataRequest
    from gencli.data.resolve import load_dataset

    return load_dataset(str(folder), DataRequest(image_size, channels, split, seed))


@contextlib.contextmanager
def _workspace(settings: Settings) -> Iterator[Path]:
    """Yield the working folder; the dataset cache lives inside it while the kit runs."""
    with contextlib.ExitStack() as stack:
        if settings.workdir:
            root = Path(settings.workdir)
        else:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gencli-kit-")))
        root.mkdir(parents=True, exist_ok=True)
        previous = os.environ.get("GENCLI_DATA_DIR")
        os.environ["GENCLI_DATA_DIR"] = str(root / "data-cache")
        try:
            yield root
        finally:
            if previous is None:
                os.environ.pop("GENCLI_DATA_DIR", None)
            else:
                os.environ["GENCLI_DATA_DIR"] = previous


# --------------------------------------------------------------------------- training, checkpoints, resume
def _train(name: str, cls: type, settings: Settings, root: Path, out: Path, steps: int):
    from gencli.training.engine import TrainConfig, train

    size, channels = training_size(cls, settings)
    folder = write_dataset(cls.data, root / "data", size=size, seed=settings.seed)
    config = TrainConfig(
        model=name, data=str(folder), steps=steps, batch_size=settings.batch_size, image_size=size,
        channels=channels, device=settings.device, seed=settings.seed, overrides=overrides_for(cls, settings),
        out=out, sample_every=settings.steps, checkpoint_every=settings.steps, log_every=1, quiet=True,
        sample_count=SAMPLE_COUNT,
    )
    try:
        return train(config)
    except UserError as exc:
        fail(name, f"training {steps} step(s) at {channels}x{size}x{size} refused: {exc}")


@contained
def check_training(model: str | type, settings: Settings | None = None) -> Path:
    """Train ``settings.steps`` steps through the engine; check the run it writes. Returns the run directory."""
    settings = settings or Settings()
    with _workspace(settings) as root, registered(model) as (name, cls):
        run_dir = _train(name, cls, settings, root, _fresh(root / "run"), settings.steps)
        from gencli.runs import Run

        run = Run.open_dir(run_dir)
        if run.status != "finished" or run.step != settings.steps:
            fail(name, f"the run ended with status {run.status!r} at step {run.step}, "
                       f"not finished at {settings.steps}")
        rows = run.metrics()
        steps = [r["step"] for r in rows]
        if steps != list(range(1, settings.steps + 1)):
            fail(name, f"logged steps {steps}, expected 1..{settings.steps} (model.step is the engine's to increment)")
        for row in rows:
            for key, value in row.items():
                finite = isinstance(value, (int, float)) and math.isfinite(value)
                if key not in ("step", "epoch", "images_per_s") and not finite:
                    fail(name, f"loss {key!r} logged {value!r} at step {row.get('step')}")
        for path in (f"samples/step-{settings.steps:08d}.png", "progress.gif", "losses.png", "checkpoints/latest"):
            if not (run_dir / path).exists():
                fail(name, f"the run has no {path}")
        return run_dir


def _fresh(path: Path) -> Path:
    """Return ``path``, or ``path-2``, ``path-3``... when it is taken (the engine wants a new folder)."""
    candidate, i = path, 1
    while candidate.exists():
        i += 1
        candidate = path.with_name(f"{path.name}-{i}")
    return candidate


def _weights(run_dir: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    from gencli.runs.checkpoints import latest_checkpoint

    return load_file(str(latest_checkpoint(run_dir) / "weights.safetensors"))


@contained
def check_checkpoint(run_dir: str | Path, settings: Settings | None = None, model: str | type | None = None) -> None:
    """Check that ``gencli.load_run`` restores the saved weights exactly and nothing else is needed.

    The model is loaded twice, with the global RNG in different states: samples, reconstructions
    or translations must agree, so no state (a random projection, a buffer kept outside
    ``nets``) is rebuilt at random instead of coming from the checkpoint. ``model`` (a class not
    registered yet) is registered for the check.
    """
    import torch

    import gencli
    from gencli.runs import Run
    from gencli.runs.checkpoints import network_tensors

    settings = settings or Settings()
    run_dir = Path(run_dir)
    run = Run.open_dir(run_dir)
    name = run.model_name
    with registered(model or name):
        saved = _weights(run_dir)
        torch.manual_seed(1)
        first = gencli.load_run(run_dir, device=settings.device)
        loaded = network_tensors(first.nets)
        if set(loaded) != set(saved):
            odd = sorted(set(loaded) ^ set(saved))[:5]
            fail(name, f"the loaded networks and the checkpoint differ in tensors {odd}")
        for key, value in saved.items():
            if not torch.equal(loaded[key], value):
                fail(name, f"{key} differs after load_run; every parameter and buffer must round-trip")
        if first.step != run.step:
            fail(name, f"load_run gave step {first.step}, the run says {run.step}")
        if any(net.training for net in first.nets.values()):
            fail(name, "load_run returned networks in training mode")
        torch.manual_seed(2)
        second = gencli.load_run(run_dir, device=settings.device)
        channels, size, _ = run.image_shape
        data = load_split(Path(run.data_spec), size, channels)
        a, b = _probe(first, data), _probe(second, data)
        if a is not None and not torch.allclose(a, b, atol=1e-5):
            fail(name, "two loads of the same checkpoint give different outputs; some state is rebuilt at random "
                       "instead of saved (keep it in nets as a parameter or buffer, or in extra_state)")


def _probe(model, data):
    """Return one output of ``model`` (generation, reconstruction or translation), or None.

    The global RNG is seeded first: a capability may draw from it (noise inputs, say); what must
    not differ between two loads is the state the checkpoint restores.
    """
    import torch

    from gencli.data.base import to_float

    x = to_float(data.images[:2]).to(model.device)
    labels = _labels(model, 2)
    torch.manual_seed(0)
    with torch.no_grad():
        if model.can("interpolate"):
            return model.generate(model.latents(2, torch.Generator().manual_seed(0)), labels).float().cpu()
        if model.can("reconstruct"):
            return model.reconstruct(x, labels).float().cpu()
        if model.can("translate"):
            return model.translate(x, "a2b").float().cpu()
        if model.can("sample"):
            return model.sample(2, labels, torch.Generator().manual_seed(0)).float().cpu()
    return None


@contained
def check_resume(model: str | type, straight_run: str | Path | None = None, settings: Settings | None = None) -> Path:
    """Train K steps, resume to N, and compare with N straight steps: every weight must be identical.

    ``straight_run`` is a run of ``settings.steps`` steps from ``check_training`` (trained here when
    not given). Returns the resumed run directory.
    """
    import torch

    settings = settings or Settings()
    if not 1 <= settings.resume_at < settings.steps:
        raise ValueError("settings.resume_at must be between 1 and settings.steps - 1")
    with _workspace(settings) as root, registered(model) as (name, cls):
        if straight_run is None:
            straight_run = _train(name, cls, settings, root, _fresh(root / "straight"), settings.steps)
        run_dir = _train(name, cls, settings, root, _fresh(root / "resumed"), settings.resume_at)
        from gencli.training.engine import TrainConfig, train

        try:
            train(TrainConfig(model="", resume=run_dir, steps=settings.steps, device=settings.device, quiet=True,
                              sample_count=SAMPLE_COUNT))
        except UserError as exc:
            fail(name, f"resuming from step {settings.resume_at} refused: {exc}")
        straight, resumed = _weights(Path(straight_run)), _weights(run_dir)
        differ = [k for k in straight if k not in resumed or not torch.equal(straight[k], resumed[k])]
        if differ:
            k = differ[0]
            gap = (straight[k].float() - resumed[k].float()).abs().max().item() if k in resumed else "missing"
            fail(name, f"{settings.resume_at} steps + resume to {settings.steps} differ from {settings.steps} straight "
                       f"steps in {len(differ)} tensor(s), first {k} (max difference {gap}); put all training state "
                       "(counters, pools, averages) in extra_state and draw randomness from torch's global generator")
        return run_dir


# --------------------------------------------------------------------------- capabilities
def _labels(model, n: int):
    import torch

    if model.conditional and model.num_classes:
        return (torch.arange(n) % model.num_classes).to(model.device)
    return None


def _check_images(name: str, what: str, images: Any, shape: tuple[int, ...]) -> None:
    import torch

    if not torch.is_tensor(images):
        fail(name, f"{what} returned {type(images).__name__}, not a tensor")
    if tuple(images.shape) != tuple(shape):
        fail(name, f"{what} returned shape {tuple(images.shape)}, expected {tuple(shape)} (NCHW)")
    if not images.is_floating_point():
        fail(name, f"{what} returned {images.dtype}; images are float in [-1, 1]")
    if not torch.isfinite(images).all():
        fail(name, f"{what} returned non-finite values")
    lo, hi = images.min().item(), images.max().item()
    if lo < -1 - RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
        fail(name, f"{what} returned values in [{lo:.3f}, {hi:.3f}]; images are in [-1, 1]")


def _offered(name: str, capability: str, method, *args):
    """Call a capability method; a UserError from it means the model claims what it cannot do."""
    try:
        return method(*args)
    except UserError as exc:
        fail(name, f"overrides {capability}, so it is listed as able to {capability}, but {capability} refused: {exc}; "
                   "leave a capability you do not have to the base class (the core then says what the model can do)")


@contained
def check_capabilities(run_dir: str | Path, settings: Settings | None = None, n: int = 4,
                       model: str | type | None = None) -> list[str]:
    """Call every capability the trained model offers and check what comes back. Returns their names.

    ``model`` (a class not registered yet) is registered for the check.
    """
    import torch

    import gencli
    from gencli.data.base import to_float
    from gencli.models.base import capabilities

    settings = settings or Settings()
    run_dir = Path(run_dir)
    from gencli.runs import Run

    run = Run.open_dir(run_dir)
    name = run.model_name
    with registered(model or name):
        model = gencli.load_run(run_dir, device=settings.device)
        c, s, _ = model.image_shape
        image = (n, c, s, s)
        data = load_split(Path(run.data_spec), s, c)
        labels = _labels(model, n)
        x = to_float(data.images[:n]).to(model.device)
        offered = capabilities(type(model))
        with torch.no_grad():
            if "sample" in offered:
                first = _offered(name, "sample", model.sample, n, labels, torch.Generator().manual_seed(0))
                _check_images(name, "sample", first, image)
                again = model.sample(n, labels, torch.Generator().manual_seed(0))
                if not torch.allclose(first, again, atol=1e-5):
                    fail(name, "sample with two generators of the same seed gave different images; draw from `generator` "
                               "so that `gencli sample --seed` repeats")
                for what in ("SampleOptions", "EvalOptions"):
                    options = _defaults(getattr(type(model), what) or type(model).SampleOptions)
                    if options:  # what `gencli sample` / `gencli eval` pass: every declared option, at its default
                        _check_images(name, f"sample(**{what}())", _contract_call(
                            name, f"sample(n, labels, generator, {', '.join(options)})",
                            f"sample(n, labels=None, generator=None, **options) takes every field of {what} as a "
                            "keyword argument, with the same default",
                            model.sample, n, labels, torch.Generator().manual_seed(0), **options), image)
            if "interpolate" in offered:
                z = _offered(name, "interpolate", model.latents, n, torch.Generator().manual_seed(0))
                if not torch.is_tensor(z) or len(z) != n:
                    fail(name, f"latents({n}) must return a tensor with {n} rows")
                if not torch.equal(z, model.latents(n, torch.Generator().manual_seed(0))):
                    fail(name, "latents with two generators of the same seed differ; draw from `generator`")
                _check_images(name, "generate(latents)", _offered(name, "interpolate", model.generate, z, labels), image)
                options = _defaults(type(model).InterpolateOptions)
                ends = model.latents(2, torch.Generator().manual_seed(0), **options)  # as `gencli interpolate` asks
                path = model.interpolation_path(ends[:1], ends[1:2], torch.linspace(0, 1, 3), **options)
                _check_images(name, "generate(interpolation_path(...), **InterpolateOptions())",
                              model.generate(path, labels[:3] if labels is not None else None, **options), (3, c, s, s))
                between = torch.lerp(z[:1], z[1:2], 0.5)
                one_label = labels[:1] if labels is not None else None
                _check_images(name, "generate(a point between two latents)", model.generate(between, one_label), (1, c, s, s))
            if "encode" in offered:
                codes = _offered(name, "encode", model.encode, x, labels)
                if not torch.is_tensor(codes) or len(codes) != n or not torch.isfinite(codes).all():
                    fail(name, f"encode of {n} images must return finite codes with {n} rows")
                if "decode" in offered:
                    _check_images(name, "decode(encode(x))", _offered(name, "decode", model.decode, codes, labels), image)
            elif "decode" in offered:
                fail(name, "offers decode without encode: decode needs codes that only encode can give")
            if "reconstruct" in offered:
                _check_images(name, "reconstruct", _offered(name, "reconstruct", model.reconstruct, x, labels), image)
            if "translate" in offered:
                _check_images(name, "translate(x, 'a2b')", _offered(name, "translate", model.translate, x, "a2b"), image)
                if data.targets is not None:
                    y = to_float(data.targets[:n]).to(model.device)
                    try:
                        _check_images(name, "translate(y, 'b2a')", model.translate(y, "b2a"), image)
                    except UserError:
                        pass  # a one-way model may refuse b2a, with a clear line
            for kind, fig in sorted(model.figures.items()):
                extra = {"data": data} if fig.needs_data else {}
                keywords = ", ".join([*_defaults(fig.Options), *extra]) or "no options"
                drawn = _contract_call(
                    name, f"figure({kind!r}, n, generator, {keywords})",
                    "figure(kind, n, generator=None, **options) takes every field of the figure's Options as a keyword "
                    "argument, plus data= (the held-out ImageData) when the figure needs_data, and returns (images, "
                    "images per row)",
                    model.figure, kind, n, torch.Generator().manual_seed(0), **_defaults(fig.Options), **extra)
                if not (isinstance(drawn, tuple) and len(drawn) == 2):
                    fail(name, f"figure({kind!r}) returned {type(drawn).__name__}; it must return (images, images per row)")
                images, nrow = drawn
                _check_images(name, f"figure({kind!r})", images, (len(images), c, s, s))
                if not (isinstance(nrow, int) and nrow >= 1):
                    fail(name, f"figure({kind!r}) must return (images, images per row >= 1)")
                captions = _contract_call(
                    name, f"figure_captions({kind!r}, n, {keywords})",
                    "figure_captions(kind, n=None, **options) receives the same keyword arguments as figure: every "
                    "field of the figure's Options, plus data= when the figure needs_data (accept **options to "
                    "ignore those it does not use), and returns (column headings or None, row names or None)",
                    model.figure_captions, kind, n, **_defaults(fig.Options), **extra)
                if not (isinstance(captions, tuple) and len(captions) == 2):
                    fail(name, f"figure_captions({kind!r}) returned {type(captions).__name__}; it must return "
                               "(column headings or None, row names or None)")
                columns, rows = captions
                if columns is not None and len(columns) != nrow:
                    fail(name, f"figure_captions({kind!r}) gives {len(columns)} column headings for {nrow} columns")
                if rows is not None and len(rows) != -(-len(images) // nrow):
                    fail(name, f"figure_captions({kind!r}) gives {len(rows)} row names for "
                               f"{-(-len(images) // nrow)} rows")
            from gencli.runs import Run

            figures = model.report(Run.open(run_dir))  # what `gencli eval` draws from the run's metrics
            if not isinstance(figures, list) or not all(Path(p).is_file() for p in figures):
                fail(name, "report(run) must return a list of the figure files it wrote")
            images, nrow = model.preview(model.preview_inputs(data, n, settings.seed))
            _check_images(name, "preview", images, (len(images), c, s, s))
            if not (isinstance(nrow, int) and nrow >= 1) or len(images) == 0:
                fail(name, "preview must return (non-empty images, images per row >= 1)")
        return offered


def _defaults(options_cls: type) -> dict[str, Any]:
    """Return an options class's defaults as the keyword arguments the core passes."""
    return {f.name: getattr(options_cls(), f.name) for f in dataclasses.fields(options_cls)}


# --------------------------------------------------------------------------- plugin modules
_PLUGIN_PROBE = textwrap.dedent("""
    import importlib, json, sys
    import pluggy
    from gencli import hookspecs
    from gencli.plugins import GROUP, HOOKS, PluginFault, PluginInfo, _call_hook, _fill_from_spec, describe_error, register
    from gencli.registry import ModelSpec
    out, specs = {}, {}
    # Every module is imported, registered as the core registers a plugin, and asked for its specs
    # before any model class is loaded, so that torch in sys.modules can only come from the
    # plugin modules themselves.
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    for name in sys.argv[1:]:
        errors = out[name] = []
        specs[name] = {}
        try:
            module = importlib.import_module(name)
        except BaseException as exc:
            errors.append("importing it failed: " + describe_error(exc))
            continue
        if "torch" in sys.modules:
            errors.append("importing it imports torch; import heavy modules inside your model module only")
        try:
            register(pm, module, name)
            info = PluginInfo(name=name, module=name)
            specs[name] = {table: _call_hook(pm, info, hook, spec_type) for table, (hook, spec_type, _) in HOOKS.items()}
        except PluginFault as exc:
            errors.append(str(exc))
            continue
        if "torch" in sys.modules and not errors:
            errors.append("its hooks import torch; return specs (descriptions) only")
    # Light declarations (ModelSpec.declarations) are read by `gencli models --info` and completion:
    # they must import without torch too, before any model class is loaded.
    for name, found in specs.items():
        for spec in found.get("models", []):
            if not spec.declarations:
                continue
            try:
                spec.load_declarations()
            except BaseException as exc:
                out[name].append(f"ModelSpec {spec.name!r}: importing its declarations {spec.declarations!r} failed: "
                                 + describe_error(exc))
                continue
            if "torch" in sys.modules:
                out[name].append(f"ModelSpec {spec.name!r}: importing its declarations {spec.declarations!r} imports "
                                 "torch; keep them in a module without networks")
    for name, found in specs.items():
        for spec in found.get("models", []):
            try:
                cls = spec.load()
            except BaseException as exc:
                out[name].append(f"ModelSpec {spec.name!r}: importing {spec.target!r} failed: {describe_error(exc)}")
                continue
            _fill_from_spec(cls, spec)
            if getattr(cls, "name", None) != spec.name:
                out[name].append(f"ModelSpec {spec.name!r} loads a class named {getattr(cls, 'name', None)!r}")
            if getattr(cls, "data", None) != spec.data:
                out[name].append(f"ModelSpec {spec.name!r} says data={spec.data!r}, "
                                 f"its class says {getattr(cls, 'data', None)!r}")
    # Names are unique among installed plugins: compare with every other plugin gencli loads here.
    from gencli.plugins import load_registry
    others = [p for p in load_registry().plugins if p.module.split(":")[0] not in out and not p.error]
    for name, found in specs.items():
        for table, (_, _, kind) in HOOKS.items():
            for spec in found.get(table, []):
                for other in others:
                    if spec.name in getattr(other, table):
                        dist = f" ({other.distribution})" if other.distribution else ""
                        out[name].append(f"{kind} {spec.name!r} is also registered by plugin {other.name!r}{dist}; "
                                         "names are unique among installed plugins: choose another")
    print(json.dumps(out))
""")


@contained
def check_plugin(*modules: str) -> None:
    """Check plugin modules (e.g. ``"gencli_mymodel.plugin"``) in a fresh interpreter.

    Each must import without importing torch (so ``gencli --help`` and ``gencli models`` stay
    fast), be accepted as the core accepts a plugin (a ``GENCLI_API`` this gencli speaks, hooks
    marked with ``@hookimpl`` that exist and take the arguments their specs give, hooks that
    return lists of specs), register ``ModelSpec``s whose name and data kind match the classes
    they load, and register no model, dataset or metric name another installed plugin has.
    """
    result = subprocess.run([sys.executable, "-c", _PLUGIN_PROBE, *modules], capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise ConformanceError(f"{', '.join(modules)}: checking the plugin failed: {last}")
    problems = [f"{m}: {e}" for m, errors in json.loads(result.stdout.strip().splitlines()[-1]).items() for e in errors]
    if problems:
        raise ConformanceError("; ".join(problems))


# --------------------------------------------------------------------------- everything
@contained
def check_model(model: str | type, image_size: int | None = None, channels: int | None = None, *,
                workdir: str | Path | None = None, overrides: dict[str, Any] | None = None,
                steps: int = 3, resume_at: int = 1, batch_size: int = 4, device: str = "cpu",
                sizes: tuple[int, ...] = CANDIDATE_SIZES, plugin: str | None = None) -> Report:
    """Run every check on ``model`` (a registered name or a Model class); return what was found.

    ``image_size`` and ``channels`` fix the training shape (default: the smallest size the model
    accepts, its default channels); ``overrides`` adds hyperparameters to the class's
    ``test_overrides`` (a two-stage model gets its source run here, e.g. ``{"from_run": RUN}``).
    ``plugin`` (the plugin under test: its entry-point, distribution or package name) makes the kit
    refuse a model name that plugin does not own. A plain name two installed plugins register is
    always refused: test ``"plugin:name"``. Raises ``ConformanceError`` at the first check that
    fails, and never any other exception.
    """
    if isinstance(model, str):
        model_class(model, plugin)  # the name is registered, unambiguous, and (with plugin) the plugin's own
    settings = Settings(image_size, channels, steps, resume_at, batch_size, device=device,
                        overrides=dict(overrides or {}), workdir=Path(workdir) if workdir else None)
    with _workspace(settings) as root, registered(model) as (name, cls):
        settings.workdir = root
        report = Report(name)
        report.image_size, report.channels = training_size(cls, settings)

        def timed(label: str, fn, *args):
            start = time.perf_counter()
            try:
                return fn(*args)
            finally:
                report.seconds[label] = time.perf_counter() - start

        timed("declarations", check_declarations, name)
        timed("hyperparameters", check_hyperparameters, name, settings)
        built = timed("builds", check_builds, name, settings, sizes)
        report.built, report.refused = built.built, built.refused
        timed("noise", check_per_example_noise, name, settings)
        report.run_dir = timed("training", check_training, name, settings)
        timed("checkpoint", check_checkpoint, report.run_dir, settings)
        report.capabilities = timed("capabilities", check_capabilities, report.run_dir, settings)
        report.resumed_run_dir = timed("resume", check_resume, name, report.run_dir, settings)
        return report


__all__ = [
    "CANDIDATE_SIZES", "ConformanceError", "Report", "Settings", "check_builds", "check_capabilities",
    "check_checkpoint", "check_declarations", "check_hyperparameters", "check_model", "check_per_example_noise",
    "check_plugin",
    "check_resume", "check_training", "registered", "write_dataset",
]
