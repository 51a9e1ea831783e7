"""The model contract: what every gencli model, built-in or third-party, implements.

A model is its networks, its optimizers and ``train_step``. The core never knows which model it
runs: it builds one from a hyperparameter dataclass and the data's shape, calls ``train_step``
on batches, saves ``nets``/``optimizers``/``extra_state()``, and asks for capabilities
(``sample``, ``encode``/``decode``/``reconstruct``, ``translate``, ``latents`` + ``generate``)
only after checking the model has them.

Images enter and leave models as float NCHW tensors in [-1, 1].

Rules a ``train_step`` follows so it runs unchanged on CPU or GPU, in fp32 or autocast, on one
process or many:
- update through ``self.optimize(name, loss)``: it zeroes, backpropagates (scaled for fp16),
  averages gradients across processes and steps that optimizer;
- draw randomness from torch's global generator (the checkpoint saves and restores it), and
  per-example noise through ``self.randn(n, ...)`` / ``self.randn_like(x)`` / ``self.rand`` /
  ``self.randint`` (or pass ``noise=self`` to the shared blocks of ``gencli.nn``), so a
  data-parallel run draws exactly the noise a single process would for the same global batch
  (``gencli.testing`` checks it);
- return a dict of scalar tensors, detached; the engine reads them only when it logs.

A model whose update consumes several real batches (a Wasserstein critic that sees a fresh batch for
each of its ``n_critic`` updates, as in Algorithm 1 of Arjovsky et al.) says so with
``batches_per_step`` = k: the engine then hands ``train_step`` a list of k consecutive batches
of the data stream instead of one batch. An epoch stays one pass over the data (it takes 1/k as
many steps), a step may span the end of an epoch, and checkpoints record the stream position
just past the last whole step, so a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from gencli.data.base import Batch, ImageData
from gencli.errors import UserError
from gencli.models.declarations import (  # noqa: F401 - the model contract's declarations, importable from here too
    CAPABILITIES,
    Figure,
    Hyperparameters,
    ModelDeclarations,
    Options,
    TrainDefaults,
)
from gencli.registry import DataKind


class RunView(Protocol):
    """What a model reads of a run (a ``gencli.runs.Run`` is one): ``train_from`` and ``report`` take it.

    Declared here so the model contract needs nothing from the runs layer, which builds models.
    """

    dir: Path

    @property
    def model_name(self) -> str: ...

    @property
    def image_shape(self) -> tuple[int, int, int]: ...

    @property
    def data_spec(self) -> str: ...

    @property
    def classes(self) -> list[str]: ...

    def metrics(self) -> list[dict[str, Any]]: ...

    def evaluations(self) -> list[dict[str, Any]]: ...


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """One input or the output of an exported network, as its JSON contract states it.

    ``shape`` holds numbers and "N" (the batch: any size); ``range`` the values it takes, e.g.
    [-1, 1] for images or [0, K-1] for class indices (None: unbounded, such as a Gaussian code).
    """

    name: str
    shape: tuple[int | str, ...]
    dtype: str = "float32"
    range: tuple[float, float] | None = None
    help: str = ""


@dataclasses.dataclass
class ExportSpec:
    """What ``Model.export_module`` returns beside the module: example inputs and the contract.

    ``example`` are inputs the module is traced with (one tensor per ``inputs`` entry, in order);
    ``notes`` say in a line each what a caller must know (a setting fixed at export, a part not
    exported); ``constants`` are values a caller needs beside the inputs (a noise schedule), written
    into the contract; ``example_script`` is the body of a runnable Python example beside the file,
    using only torch and the exported network: the core puts before it a ``load_network()`` for the
    format written and ``CONTRACT``, the contract as a dict.
    """

    what: str
    inputs: list[TensorSpec]
    output: TensorSpec
    example: tuple[torch.Tensor, ...]
    notes: list[str] = dataclasses.field(default_factory=list)
    constants: dict[str, Any] = dataclasses.field(default_factory=dict)
    example_script: str | None = None


class ExportedNetwork(nn.Module):
    """A module for ``Model.export_module``: ``forward(*inputs)`` is ``fn(*inputs)``.

    ``networks`` are registered as submodules, so tracing records their weights as weights; ``fn``
    may combine them freely (a generator with a final clamp, a mapping and a synthesis network).
    """

    def __init__(self, fn, **networks: nn.Module) -> None:
        super().__init__()
        self.networks = nn.ModuleDict(networks)
        self.fn = fn

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.fn(*inputs)


class Model(ModelDeclarations):
    """Base class of every model. See the module docstring for the contract.

    Its declarations (``Hyperparameters``, ``defaults``, ``conditional``, the options classes,
    ``figures``) come from ``ModelDeclarations``; a model may take them from a light class of its
    own, declared apart from its networks (``gencli.models.declarations``).
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    data: ClassVar[DataKind] = "images"
    # Data augmentation as in the translation papers: random flips of training batches.
    augment_flip: ClassVar[bool] = False
    # What to tell a user who asks for a capability the model lacks, e.g. how to get it.
    capability_hints: ClassVar[dict[str, str]] = {}
    # Hyperparameters that make the model tiny for tests (the conformance kit applies them).
    test_overrides: ClassVar[dict[str, Any]] = {}
    # Whether a trained model loaded on the CPU keeps its networks channels-last: oneDNN's
    # convolutions work in that layout and reorder NCHW tensors on every call
    # (benchmarks/bench_inference.py). A family whose networks run slower so sets it False.
    cpu_channels_last: ClassVar[bool] = True
    # The same for training on the CPU (the engine lays the networks out before step 1): faster
    # for most families, slower for the translation networks (benchmarks/bench_cpu_training.py).
    cpu_channels_last_training: ClassVar[bool] = True
    # The most pixels (images x height x width) one inference call should hold on the CPU, for
    # networks whose activations outgrow the cache in larger batches and run slower per image
    # (benchmarks/bench_translate.py); `gencli translate` batches by it unless --batch-size is
    # given. None: no limit.
    cpu_batch_pixels: ClassVar[int | None] = None

    @classmethod
    def train_from(cls, hp: Any, source: RunView) -> Any:
        """Return the hyperparameters for training on top of a finished run (`train MODEL --from RUN`).

        Two-stage models (a prior over a trained autoencoder's codes, say) override this: they
        check ``source`` and record in ``hp`` what they need of it. The new run then defaults to
        the source's data, image size and channels. The base refuses.
        """
        raise UserError(f"model {cls.name!r} does not train from another run; drop --from")

    @classmethod
    def fit_to_data(cls, hp: Any, data: ImageData, given: frozenset[str]) -> tuple[Any, list[str]]:
        """Return (hyperparameters, notes) fitted to a new run's training data; the base changes nothing.

        ``given`` names the hyperparameters the user set, which stay as they are. Each note says in
        one line what was chosen and why ("1,437 images: a spectrally normalised discriminator");
        the engine prints them and keeps them in run.json. Only new runs are fitted, and the values
        chosen are recorded like any other, so a resumed or loaded run is rebuilt exactly.
        """
        return hp, []

    @classmethod
    def load_size(cls, hp: Any, image_size: int) -> int | None:
        """Return the size to load images at before random crops to ``image_size`` (None: no crop)."""
        return None

    def __init__(
        self,
        hp: Any,
        image_shape: tuple[int, int, int],
        classes: list[str] | None = None,
        device: torch.device | str = "cpu",
        precision: str = "fp32",
    ) -> None:
        self.hp = hp
        self.channels, self.image_size, _ = image_shape
        self.image_shape = tuple(image_shape)
        self.classes = list(classes or [])
        self.num_classes = len(self.classes)
        self.device = torch.device(device)
        self.precision = precision
        self.check_shape(self.image_size, self.channels)
        self.nets: dict[str, nn.Module] = {k: v.to(self.device) for k, v in self.build_networks().items()}
        self.optimizers: dict[str, torch.optim.Optimizer] = self.build_optimizers()
        self.schedulers: dict[str, Any] = self.build_schedulers()
        # fp16 gradients underflow without loss scaling; each optimizer gets its own scaler so that an
        # overflow in one network's backward pass skips that network's step only
        fp16 = precision == "fp16"
        self.scalers = {name: torch.amp.GradScaler(self.device.type, enabled=fp16) for name in self.optimizers}
        self.process_group = None  # set by the engine for data-parallel training
        self.rank, self.world_size = 0, 1
        self.step = 0  # optimizer steps taken (``train_step`` calls completed), kept by the engine

    # ------------------------------------------------------------------ to implement
    @classmethod
    def check_shape(cls, image_size: int, channels: int) -> None:
        """Raise ``UserError`` if the architecture cannot work at this size or channel count."""
        if channels not in (1, 3):
            raise UserError(f"{cls.name} works with 1 or 3 channels, not {channels}")

    def build_networks(self) -> dict[str, nn.Module]:
        """Return the model's networks by name (EMA copies included)."""
        raise NotImplementedError

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Return the optimizers by name."""
        raise NotImplementedError

    def build_schedulers(self) -> dict[str, Any]:
        """Return learning-rate schedulers by name; stepped by the model itself."""
        return {}

    @property
    def batches_per_step(self) -> int:
        """Return how many real batches one ``train_step`` consumes; above 1, it receives them as a list."""
        return 1

    def train_step(self, batch: Batch | list[Batch]) -> dict[str, torch.Tensor]:
        """Perform one full update and return its losses as detached scalar tensors.

        ``batch`` is one ``Batch``, or a list of ``batches_per_step`` batches when that is above 1.
        """
        raise NotImplementedError

    def extra_state(self) -> dict[str, Any]:
        """Return state beyond weights and optimizers needed to resume exactly (tensors, numbers)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what ``extra_state`` returned."""

    # ------------------------------------------------------------------ capabilities
    # Override any of these to offer the capability; the base versions mean "not offered".
    def sample(self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Return ``n`` generated images in [-1, 1]."""
        raise NotImplementedError

    def latents(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Return ``n`` latent codes from the prior (for interpolation)."""
        raise NotImplementedError

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Return the images for latent codes ``z``."""
        raise NotImplementedError

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Return the latent code (the mean, for a VAE) of images ``x``."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Return images decoded from latent codes ``z``."""
        raise NotImplementedError

    def reconstruct(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Return reconstructions of images ``x``."""
        raise NotImplementedError

    def translate(self, x: torch.Tensor, direction: str = "a2b") -> torch.Tensor:
        """Return images ``x`` translated to the other domain (``a2b`` or ``b2a``)."""
        raise NotImplementedError

    def figure(self, kind: str, n: int | None, generator: torch.Generator | None = None,
               **options) -> tuple[torch.Tensor, int]:
        """Return (images in [-1, 1], images per row) of a special figure listed in ``figures``.

        ``n`` is how many examples (rows, for most figures); None means the figure's own default,
        a handful that keeps it legible.
        """
        raise NotImplementedError

    def figure_captions(self, kind: str, n: int | None = None, **options) -> tuple[list[str] | None, list[str] | None]:
        """Return (column headings, row names) to draw around figure ``kind`` made with the same
        ``options``, e.g. each column's timestep; None for either means no text there."""
        return None, None

    # ------------------------------------------------------------------ what commands read
    @property
    def directions(self) -> tuple[str, ...]:
        """Return the directions ``translate`` accepts, the default first ("a2b", "b2a")."""
        return ("a2b", "b2a") if self.can("translate") else ()

    @property
    def domains(self) -> tuple[str, str] | None:
        """Return the names of domains A and B (for `translate --to NAME`), or None when unnamed."""
        return None

    @property
    def size_multiple(self) -> int | None:
        """Return the number image sides must be a multiple of for ``translate`` to work at any size (a
        fully convolutional network: 2 ** its stride-2 downsamplings), or None when the model works at
        its square training size only, the default. `gencli translate --native-size` reads it."""
        return None

    def interpolation_path(self, a: torch.Tensor, b: torch.Tensor, t: torch.Tensor, **options) -> torch.Tensor:
        """Return the codes between latents ``a`` and ``b`` at fractions ``t`` (one row per t).

        Gaussian codes are walked on the sphere, so every frame has a typical norm; a model whose
        latents live in a learned space (a style-based generator's W) overrides this with a straight line.
        """
        from gencli.models.paths import slerp

        return slerp(a, b, t)

    def report(self, run: RunView) -> list[Path]:
        """Write the model's own evaluation figures of ``run`` (from its metrics); return their paths."""
        return []

    def export_module(self, direction: str | None = None) -> tuple[nn.Module, ExportSpec]:
        """Return (a module wrapping the network that generates, its ``ExportSpec``) for `gencli export`.

        The module takes tensors only (the spec's inputs, in order) and returns one tensor, so it
        can be traced to TorchScript and ONNX; settings that are not tensors are fixed at export and
        named in ``notes``. ``direction`` is one of ``directions`` for models that translate (None:
        the default). The base offers no export.
        """
        raise NotImplementedError

    # ------------------------------------------------------------------ previews
    def preview_inputs(self, data: ImageData, n: int, seed: int) -> dict[str, Any]:
        """Return the fixed inputs of the training-progress grid (same at every interval)."""
        g = torch.Generator().manual_seed(seed)
        inputs: dict[str, Any] = {}
        if self.can("interpolate"):
            inputs["z"] = self.latents(n, generator=g).to(self.device)
        if self.conditional and self.num_classes:
            inputs["labels"] = (torch.arange(n) % self.num_classes).to(self.device)
        if self.can("translate") or (not inputs and self.can("reconstruct")):
            idx = torch.randperm(len(data.images), generator=g)[:n]
            inputs["images"] = data.images[idx].to(self.device)
            if data.targets is not None and data.kind == "paired":
                inputs["targets"] = data.targets[idx].to(self.device)
        return inputs

    def preview(self, inputs: dict[str, Any]) -> tuple[torch.Tensor, int]:
        """Return (images in [-1, 1], images per row) for the progress grid at this point."""
        from gencli.data.base import to_float

        if "z" in inputs:
            images = self.generate(inputs["z"], inputs.get("labels"))
            nrow = self.num_classes if self.conditional and self.num_classes else _square_row(len(images))
            return images, nrow
        if "images" in inputs and self.can("translate"):
            x = to_float(inputs["images"])
            y = self.translate(x, "a2b")
            rows = [x, y]
            if "targets" in inputs:
                rows.append(to_float(inputs["targets"]))
            elif self.data == "unpaired":
                rows.append(self.translate(y, "b2a"))
            return _interleave(rows), len(rows)
        if "images" in inputs:
            x = to_float(inputs["images"])
            return _interleave([x, self.reconstruct(x, inputs.get("labels"))]), 2
        return self.sample(len(inputs.get("labels", [])) or 16, inputs.get("labels")), 4

    def preview_captions(self, inputs: dict[str, Any]) -> tuple[list[str] | None, list[str] | None]:
        """Return (column headings, row names) to draw around the progress grid ``preview(inputs)``
        makes; None for either means no text there. The base names the class of each column of the
        grids its ``preview_inputs`` lay out one class a column; a model whose ``preview`` lays its
        grid out otherwise overrides this too."""
        if "z" in inputs and inputs.get("labels") is not None and self.conditional and self.num_classes:
            return list(self.classes), None
        return None, None

    # ------------------------------------------------------------------ helpers for train_step
    def optimize(self, name: str, loss: torch.Tensor, retain_graph: bool = False,
                 clip_grad_norm: float | None = None) -> None:
        """Zero, backpropagate ``loss``, average gradients across processes, and step ``name``.

        ``clip_grad_norm`` scales the averaged, unscaled gradients of optimizer ``name`` down to that
        global norm where it is larger, so every process clips alike; a step whose fp16 gradients
        overflowed is still skipped by its scaler.
        """
        opt, scaler = self.optimizers[name], self.scalers[name]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward(retain_graph=retain_graph)
        if self.process_group is not None:
            average_gradients(opt, self.process_group)
        if clip_grad_norm:
            scaler.unscale_(opt)
            params = [p for group in opt.param_groups for p in group["params"] if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(params, clip_grad_norm)
        scaler.step(opt)
        scaler.update()

    @contextlib.contextmanager
    def frozen(self, *names: str):
        """Forward passes for another network's loss that leave networks ``names`` out of its backward.

        Their parameters stop requiring gradients while the graph is built, so the backward pass
        still carries gradients through them to their inputs but computes no weight gradients for
        them: a generator update that goes through the discriminator does not pay for D's.
        """
        params = [p for name in names for p in self.nets[name].parameters() if p.requires_grad]
        for p in params:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in params:
                p.requires_grad_(True)

    def randn(self, *shape: int, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Standard normal noise for this process's share of a global batch (``shape[0]`` local rows).

        Every process draws the noise of the whole global batch from the same generator state and
        keeps its own rows, so training on N processes matches training on one.
        """
        return self._per_example(lambda n: torch.randn(n, *shape[1:], device=self.device, dtype=dtype), shape[0])

    def randn_like(self, x: torch.Tensor) -> torch.Tensor:
        return self.randn(*x.shape, dtype=x.dtype)

    def rand(self, *shape: int, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Uniform noise in [0, 1) for this process's share of a global batch, as ``randn`` draws it."""
        return self._per_example(lambda n: torch.rand(n, *shape[1:], device=self.device, dtype=dtype), shape[0])

    def randint(self, low: int, high: int, shape: tuple[int, ...]) -> torch.Tensor:
        """Integers in [low, high) for this process's share of a global batch, as ``randn`` draws them."""
        return self._per_example(lambda n: torch.randint(low, high, (n, *shape[1:]), device=self.device), shape[0])

    def mean_across_processes(self, value: torch.Tensor) -> torch.Tensor:
        """Return ``value`` averaged over every process (itself on one): a statistic of the global
        batch, such as a running mean the model keeps, that every process must agree on."""
        if self.process_group is None:
            return value
        import torch.distributed as dist

        total = value.detach().clone()
        dist.all_reduce(total, group=self.process_group)
        return total / self.world_size

    def _per_example(self, draw, n: int) -> torch.Tensor:
        """Return this process's ``n`` rows of ``draw(n * world_size)``, the global batch's draw."""
        if self.world_size == 1:
            return draw(n)
        return draw(n * self.world_size)[self.rank * n : (self.rank + 1) * n]

    def autocast(self):
        """Context for forward passes: autocast in bf16/fp16 when asked, else nothing."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def can(self, capability: str) -> bool:
        return has_capability(type(self), capability)

    def train(self, mode: bool = True) -> "Model":
        for net in self.nets.values():
            net.train(mode)
        return self

    def eval(self) -> "Model":
        return self.train(False)

    def eager_networks(self) -> set[str]:
        """Return the networks ``--compile`` must leave eager: those whose training loss is built from
        their own gradients (gradient penalties, R1, path-length regularisation). torch.compile's
        autograd cannot differentiate twice, so such a network compiled would fail at its first
        penalty step. The default: none."""
        return set()

    def prepare_inference(self) -> "Model":
        """Lay the networks out for generating on their device; called when a trained model is loaded.

        Only the memory layout changes, so outputs differ from the training layout's by float
        rounding at most; checkpoints are written contiguous whatever the layout.
        """
        if self.device.type == "cpu" and self.cpu_channels_last:
            for net in self.nets.values():
                net.to(memory_format=torch.channels_last)
        return self

    def inference_batch(self, largest: int, height: int, width: int) -> int:
        """Return how many images of ``height`` x ``width`` one inference call takes: at most ``largest``,
        and on the CPU within ``cpu_batch_pixels`` (never fewer than one)."""
        if self.device.type != "cpu" or not self.cpu_batch_pixels:
            return largest
        return max(1, min(largest, self.cpu_batch_pixels // max(1, height * width)))

    def parameter_count(self) -> dict[str, int]:
        return {k: sum(p.numel() for p in v.parameters()) for k, v in self.nets.items()}


def has_capability(cls: type, capability: str) -> bool:
    """Whether model class ``cls`` overrides the methods behind ``capability``."""
    methods = CAPABILITIES[capability]
    return all(getattr(cls, m, None) is not getattr(Model, m) for m in methods)


def can_export(cls: type) -> bool:
    """Whether model class ``cls`` offers `gencli export` (overrides ``export_module``)."""
    return getattr(cls, "export_module", None) is not Model.export_module


def capabilities(cls: type) -> list[str]:
    return [c for c in CAPABILITIES if has_capability(cls, c)]


def require_capability(cls: type, capability: str, verb: str | None = None) -> None:
    """Raise ``UserError`` naming what the model can do when it lacks ``capability``."""
    if has_capability(cls, capability):
        return
    can = ", ".join(capabilities(cls)) or "nothing beyond training"
    hint = getattr(cls, "capability_hints", {}).get(capability)
    raise UserError(f"model {cls.name!r} cannot {verb or capability}; it can: {can}" + (f"; {hint}" if hint else ""))


def _square_row(n: int) -> int:
    return max(1, int(round(n**0.5)))


def _interleave(rows: list[torch.Tensor]) -> torch.Tensor:
    """Stack [x1, y1, z1, x2, y2, z2, ...] so each grid row is one example's triptych."""
    return torch.stack(rows, dim=1).flatten(0, 1)


def average_gradients(optimizer: torch.optim.Optimizer, group=None) -> None:
    """Average the gradients of ``optimizer``'s parameters across all processes, in one all-reduce."""
    grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
    if not grads:
        return
    import torch.distributed as dist

    world = dist.get_world_size(group)
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, group=group)
    flat.div_(world)
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset : offset + n].view_as(g))
        offset += n
