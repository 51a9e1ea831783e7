"""Where training runs and in what precision: the device, its memory, the networks' layout, compile.

``resolve_device`` is the one place a ``--device`` name becomes a torch device; sampling,
translating and evaluating use it too, without loading the training engine. Autocast and the
fp16 gradient scalers belong to the model (``Model.autocast``, ``Model.scalers``), which the
precision checked here is handed to.
"""

from __future__ import annotations

import copy
import warnings
from typing import TYPE_CHECKING, Any

import torch

from gencli.errors import UserError
from gencli.runs.values import PRECISIONS

if TYPE_CHECKING:
    from gencli.models.base import Model
    from gencli.training.distributed import DistInfo
    from gencli.training.settings import TrainSettings


def resolve_device(name: str) -> torch.device:
    """Return the device for ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but no CUDA device is available (use --device cpu or auto)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserError("--device mps asked for, but MPS is not available (use --device cpu or auto)")
    if name not in ("cpu", "mps") and not name.startswith("cuda"):
        raise UserError(f"unknown --device {name!r}: use auto, cpu, cuda or mps")
    return torch.device(name)


def check_devices(processes: int, device: torch.device) -> None:
    """Refuse more processes than GPUs on CUDA (each process takes one); on the CPU any number runs."""
    if device.type == "cuda" and processes > torch.cuda.device_count():
        raise UserError(f"--devices {processes} asks for more GPUs than the {torch.cuda.device_count()} visible; "
                        "use at most that many, or --device cpu")
    if device.type == "mps" and processes > 1:
        raise UserError("--devices above 1 needs CUDA GPUs or the CPU; MPS trains in one process")


def check_sync_bn(device: torch.device) -> None:
    if device.type != "cuda":
        raise UserError(f"--sync-bn needs CUDA devices (torch's SyncBatchNorm runs on GPUs only), not {device.type}; "
                        "without it each process normalises with its own batch statistics")


def check_precision(precision: str, device: torch.device) -> str:
    if precision not in PRECISIONS:
        raise UserError(f"unknown --precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise UserError("--precision fp16 needs a CUDA device; use bf16 on CPU")
    return precision


def build_model(cls: type, hp: Any, image_shape: tuple, classes: Any, device: torch.device, precision: str) -> Model:
    """Build ``cls`` on ``device``; hyperparameters too large for its memory end in one line, not an allocator error.

    The networks are first built on torch's "meta" device, which allocates nothing, to count their
    parameters: training holds them about four times over (weights, gradients, two optimizer moments).
    """
    way_out = f"use smaller hyperparameters (`gencli models --info {cls.name}` lists them)"
    what = f"training {cls.name!r} with these hyperparameters"
    free = _device_memory(device)
    if free is not None:
        try:
            # On a copy, and quietly: a model may record in its hyperparameters what it derives while
            # building (a prior, the settings of the run it loads), which the real build must derive
            # again; weights it loads here land on no memory, which torch would warn of.
            with torch.random.fork_rng(devices=[]), torch.device("meta"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                probe = cls(copy.deepcopy(hp), image_shape, classes, device="meta", precision="fp32")
            nbytes = sum(t.numel() * t.element_size() for net in probe.nets.values()
                         for t in (*net.parameters(), *net.buffers()))
            del probe
        except UserError:
            raise
        except Exception:  # noqa: BLE001 - a model that cannot be built on "meta" is built for real and counted then
            nbytes = 0
        if nbytes * 4 > free:
            from gencli.data.base import _gib

            raise UserError(f"{what} would need {_gib(nbytes * 4)} of memory, more than the {_gib(free)} available "
                            f"on {device.type}; {way_out}")
    try:
        return cls(hp, image_shape, classes, device=device, precision=precision)
    except (MemoryError, torch.OutOfMemoryError) as exc:
        raise UserError(f"{what} does not fit in {device.type} memory ({type(exc).__name__}); {way_out}") from None
    except RuntimeError as exc:
        if "allocate" not in str(exc):
            raise
        raise UserError(f"{what} does not fit in {device.type} memory; {way_out}") from None


def _device_memory(device: torch.device) -> int | None:
    """Free bytes where ``device``'s tensors live (None where unknown)."""
    if device.type == "cpu":
        from gencli.data.base import available_memory

        return available_memory()
    if device.type == "cuda":
        try:
            return torch.cuda.mem_get_info(device)[0]
        except RuntimeError:
            return None
    return None


def compile_networks(model: Model, quiet: bool = False) -> bool:
    """``torch.compile`` each network in place; warn in one line and stay eager where that cannot work.

    ``nn.Module.compile`` is lazy: a missing backend (no C++ compiler for CPU code, no Triton for
    CUDA) would only surface at the first forward pass, as a long traceback per compiled frame. A
    tiny function compiled and run on the model's device first finds that out before training.
    """
    import logging

    import torch._dynamo

    if model.device.type != "cuda":  # a CUDA build on a machine without CUDA says so on every compile
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    try:
        probe = torch.compile(lambda x: torch.nn.functional.silu(x) * 2 + 1, dynamic=False)
        probe(torch.ones(8, device=model.device))
    except Exception as exc:  # noqa: BLE001 - any backend failure means: train eagerly
        from gencli.ui.console import warn

        reason = (str(exc).strip().splitlines() or [""])[0]
        warn(f"--compile unavailable on {model.device.type} ({type(exc).__name__}: {reason}); training without it")
        return False
    torch._dynamo.config.suppress_errors = True  # a graph the backend cannot take runs eagerly
    eager = model.eager_networks()
    for name, net in model.nets.items():
        if name not in eager:
            net.compile()
    if eager:
        from gencli.ui.console import info

        info(f"--compile leaves {', '.join(sorted(eager))} eager: {model.name} trains {'them' if len(eager) > 1 else 'it'} "
             "through gradients of gradients, which torch.compile cannot differentiate", quiet)
    return True



def prepare_model(model: Model, settings: TrainSettings, device: torch.device, info: DistInfo) -> None:
    """Ready a built model for the loop: batch norm synchronised and weights shared across processes,
    the networks laid out channels-last where that runs fastest, compiled when asked."""
    from gencli.training import distributed as dist_util

    if settings.sync_bn:
        check_sync_bn(device)
    if settings.sync_bn and info.enabled:
        for k, net in model.nets.items():
            model.nets[k] = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
    if info.enabled:
        model.process_group = torch.distributed.group.WORLD
        model.rank, model.world_size = info.rank, info.world_size
        dist_util.broadcast_model(model)
    if device.type == "cuda" or (device.type == "cpu" and settings.model_class.cpu_channels_last_training):
        for net in model.nets.values():  # oneDNN and cuDNN convolutions run fastest channels-last
            net.to(memory_format=torch.channels_last)
    if settings.compile:
        compile_networks(model, settings.quiet)
