"""Data-parallel training across processes started by torchrun (NCCL on GPUs, gloo on CPUs).

Every process holds a full model and a slice of each global batch; after each backward pass the
gradients of the optimizer being stepped are averaged across processes before it steps, which is
what DistributedDataParallel computes. The averaging is done explicitly, in one coalesced
all-reduce per optimizer step, rather than through DDP's autograd hooks, because GAN steps break
DDP's reducer: they run several forwards per backward, differentiate twice for gradient
penalties and R1, and update one network while another's parameters receive gradients.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from gencli.models.base import average_gradients  # noqa: F401 - part of the model contract (Model.optimize)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def from_environment() -> DistInfo:
    """Read torchrun's RANK / WORLD_SIZE / LOCAL_RANK (a single process when absent)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    return DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def init(info: DistInfo, device: torch.device) -> None:
    """Join the process group torchrun set up (NCCL for CUDA devices, gloo otherwise)."""
    if not info.enabled or dist.is_initialized():
        return
    join_group("nccl" if device.type == "cuda" else "gloo")


def join_group(backend: str) -> None:
    """``init_process_group`` once the modules that capture the default group are imported.

    Some of torch's modules, imported lazily by the first optimizer or ``torch.compile``, take
    ``dist.group.WORLD`` as a default argument value when they are first imported. Imported after
    the group exists, they hold it until the interpreter is torn down, so ``shutdown`` could not
    destroy it: gloo's worker threads then outlived Python and a process could abort at exit
    ("terminate called without an active exception"). Importing them first keeps the group ours.
    """
    import torch._dynamo  # noqa: F401 - see above

    dist.init_process_group(backend=backend)


def shutdown() -> None:
    """Destroy the process group (and so join its worker threads) while Python is still alive."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_model(model, group=None) -> None:
    """Make every process start from rank 0's parameters and buffers."""
    with torch.no_grad():
        for net in model.nets.values():
            for t in list(net.parameters()) + list(net.buffers()):
                dist.broadcast(t.data, src=0, group=group)


def mean_across(values: dict[str, torch.Tensor], group=None) -> dict[str, torch.Tensor]:
    """Average a dict of scalar tensors across processes (for logging)."""
    if not values:
        return values
    keys = sorted(values)
    stacked = torch.stack([values[k].float() for k in keys])
    dist.all_reduce(stacked, group=group)
    stacked /= dist.get_world_size(group)
    return dict(zip(keys, stacked))


def broadcast_object(obj, info: DistInfo):
    """Send a picklable object from rank 0 to every process (e.g. the run directory path)."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
