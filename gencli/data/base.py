"""What a dataset hands the engine: images as uint8 tensors, and batches drawn from them.

Every dataset, however it is stored, resolves to an ``ImageData``: uint8 NCHW tensors at the
requested size and channel count (in memory, or memory-mapped from a prepared cache), plus
labels or a second image set. The engine then draws batches by index with ``BatchStream``:
no per-item Python work, the whole set optionally kept on the device, and an order that is a
pure function of (seed, epoch), so a resumed or distributed run sees exactly the same batches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F

from gencli.data.roots import data_root  # noqa: F401 - defined without torch, for the dataset listing
from gencli.errors import UserError
from gencli.registry import DataKind


def available_memory() -> int | None:
    """Bytes of memory this machine can still give (Linux's MemAvailable), or None when unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_fits_in_memory(nbytes: int, what: str, way_out: str) -> None:
    """Refuse to allocate ``nbytes`` for ``what`` when the machine does not have them free.

    Asking first turns what would be an allocator traceback, or the kernel killing the process
    half-way, into one line.
    """
    free = available_memory()
    if free is not None and nbytes > free:
        raise UserError(f"{what} would need {_gib(nbytes)} of memory, more than the {_gib(free)} available; {way_out}")


def _gib(nbytes: int) -> str:
    return f"{nbytes / 2**30:,.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:,.1f} MiB"


@dataclass(frozen=True)
class DataRequest:
    """What the engine asks a dataset builder for."""

    image_size: int
    channels: int
    split: str = "train"  # "train" or "test" (the held-out split)
    seed: int = 0
    # Translation models train on random crops of a larger load size (286 for 256, as in the
    # unpaired translation paper of Zhu et al. 2017); builders resize to ``load_size`` and the stream crops to ``image_size``.
    load_size: int | None = None
    # Free-form options a builder may read, e.g. {"direction": "BtoA"} for paired folders.
    options: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def stored_size(self) -> int:
        return self.load_size or self.image_size

    def with_split(self, split: str) -> "DataRequest":
        return replace(self, split=split)


@dataclass
class ImageData:
    """A dataset resolved to tensors.

    ``images`` is uint8 [N, C, H, W]. For ``labelled`` data ``labels`` is int64 [N] and
    ``classes`` names them. For ``paired`` data ``targets`` is aligned with ``images`` (A -> B);
    for ``unpaired`` data ``targets`` is domain B, of its own length M.
    """

    name: str
    kind: DataKind
    images: torch.Tensor
    labels: torch.Tensor | None = None
    targets: torch.Tensor | None = None
    classes: list[str] | None = None

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError("ImageData.images must be a uint8 tensor [N, C, H, W]")
        if len(self.images) == 0:
            raise UserError(f"dataset {self.name!r} has no images")
        if self.kind == "labelled" and (self.labels is None or not self.classes):
            raise ValueError("labelled ImageData needs labels and classes")
        if self.kind in ("paired", "unpaired"):
            if self.targets is None or len(self.targets) == 0:
                raise UserError(f"dataset {self.name!r} has no images in its second domain (B)")
            if self.kind == "paired" and len(self.targets) != len(self.images):
                raise ValueError("paired ImageData needs as many targets as images")

    def __len__(self) -> int:
        if self.kind == "unpaired":
            return max(len(self.images), len(self.targets))
        return len(self.images)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.classes) if self.classes else 0

    def to(self, device: torch.device | str) -> "ImageData":
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return replace(self, images=move(self.images), labels=move(self.labels), targets=move(self.targets))


@dataclass
class Batch:
    """One training batch on the model's device, images as float in [-1, 1]."""

    images: torch.Tensor
    labels: torch.Tensor | None = None
    targets: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.images)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255] (clamped), on the same device."""
    return images.detach().float().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


def convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Convert uint8 or float NCHW images to 1 or 3 channels (luminance for grey)."""
    have = images.shape[1]
    if have == channels:
        return images
    if have == 4:  # drop alpha
        images, have = images[:, :3], 3
        if channels == 3:
            return images
    if have == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    if have == 3 and channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114], device=images.device).view(1, 3, 1, 1)
        grey = (images.float() * weights).sum(1, keepdim=True)
        return grey.round().clamp(0, 255).to(images.dtype) if images.dtype == torch.uint8 else grey
    raise UserError(f"cannot convert images with {have} channels to {channels}")


def resize_square(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize uint8 NCHW images so the shorter side is ``size``, then centre-crop to a square."""
    _, _, h, w = images.shape
    if h == w == size:
        return images
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    out = F.interpolate(images.float(), size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    top, left = (nh - size) // 2, (nw - size) // 2
    out = out[:, :, top : top + size, left : left + size]
    return out.round().clamp(0, 255).to(torch.uint8)


def fit_images(images: torch.Tensor, size: int, channels: int, chunk: int = 2048) -> torch.Tensor:
    """Return uint8 images at ``size`` x ``size`` with ``channels`` channels, converted in chunks."""
    parts = [convert_channels(resize_square(images[i : i + chunk], size), channels) for i in range(0, len(images), chunk)]
    return torch.cat(parts) if parts else images


class BatchStream:
    """Draws batches of an ``ImageData`` by index, deterministically per (seed, epoch).

    With ``world_size > 1`` each rank takes its own contiguous slice of every global batch, so a
    distributed run sees exactly the batches of a single-process run with the same global batch.
    """

    def __init__(
        self,
        data: ImageData,
        batch_size: int,
        device: torch.device | str = "cpu",
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        crop_size: int | None = None,
        flip: bool = False,
        keep_on_device: bool | None = None,
    ) -> None:
        if batch_size < 1:
            raise UserError("--batch-size must be at least 1")
        if batch_size % world_size:
            raise UserError(f"--batch-size {batch_size} must be divisible by the {world_size} processes")
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.seed = seed
        self.rank, self.world_size = rank, world_size
        self.crop_size, self.flip = crop_size, flip
        size_bytes = data.images.numel() + (data.targets.numel() if data.targets is not None else 0)
        if keep_on_device is None:  # small sets live on the device; large ones stream from host
            keep_on_device = size_bytes <= 1 << 30
        self.data = data.to(self.device) if keep_on_device else data
        self.pin = not keep_on_device and self.device.type == "cuda"
        self.n = len(data)
        if self.n < batch_size:
            raise UserError(
                f"dataset {data.name!r} has {self.n} images, fewer than --batch-size {batch_size}"
            )

    def __len__(self) -> int:
        """Batches per epoch (the last incomplete batch is dropped)."""
        return self.n // self.batch_size

    def _permutation(self, epoch: int, n: int, salt: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch * 7919 + salt) % (2**63))
        return torch.randperm(n, generator=g)

    def epoch(self, epoch: int, start: int = 0):
        """Yield the batches of ``epoch``, skipping the first ``start`` (for resume)."""
        data = self.data
        order = self._permutation(epoch, len(data.images) if data.kind != "unpaired" else self.n)
        if data.kind == "unpaired":  # each domain in its own order, wrapped to the longer one
            order_a = self._permutation(epoch, len(data.images), 1).repeat(self.n // len(data.images) + 1)[: self.n]
            order_b = self._permutation(epoch, len(data.targets), 2).repeat(self.n // len(data.targets) + 1)[: self.n]
        aug = torch.Generator().manual_seed((self.seed * 31 + epoch) % (2**63))
        per_rank = self.batch_size // self.world_size
        for b in range(len(self)):
            lo = b * self.batch_size + self.rank * per_rank
            # Augmentation draws are made for the whole global batch so every rank stays in step.
            crops = self._draw_augmentation(aug)
            if b < start:
                continue
            if data.kind == "unpaired":
                ia, ib = order_a[lo : lo + per_rank], order_b[lo : lo + per_rank]
                images, targets, labels = data.images[ia.to(data.images.device)], data.targets[ib.to(data.targets.device)], None
            else:
                idx = order[lo : lo + per_rank].to(data.images.device)
                images = data.images[idx]
                targets = data.targets[idx] if data.targets is not None else None
                labels = data.labels[idx] if data.labels is not None else None
            batch = self._finish(images, labels, targets, crops, self.rank * per_rank, per_rank)
            yield batch

    def _draw_augmentation(self, g: torch.Generator):
        if not (self.crop_size or self.flip):
            return None
        h = self.data.images.shape[-1]
        size = self.crop_size or h
        top = torch.randint(0, h - size + 1, (self.batch_size,), generator=g)
        left = torch.randint(0, h - size + 1, (self.batch_size,), generator=g)
        flip = torch.rand(self.batch_size, generator=g) < 0.5 if self.flip else torch.zeros(self.batch_size, dtype=torch.bool)
        return top, left, flip, size

    def _move(self, t: torch.Tensor | None) -> torch.Tensor | None:
        if t is None:
            return None
        if t.device != self.device:
            t = t.pin_memory() if self.pin else t
            t = t.to(self.device, non_blocking=True)
        return t

    def _finish(self, images, labels, targets, crops, offset: int, count: int) -> Batch:
        images, labels, targets = self._move(images), self._move(labels), self._move(targets)
        images = to_float(images)
        targets = to_float(targets) if targets is not None else None
        if crops is not None:
            top, left, flip, size = (c[offset : offset + count] if torch.is_tensor(c) else c for c in crops)
            images = _crop_flip(images, top, left, flip, size)
            # Paired images share one crop and flip; unpaired domains do too (harmless, simpler).
            targets = _crop_flip(targets, top, left, flip, size) if targets is not None else None
        return Batch(images=images, labels=labels, targets=targets)


def _crop_flip(x: torch.Tensor, top, left, flip, size: int) -> torch.Tensor:
    out = torch.stack([x[i, :, t : t + size, l : l + size] for i, (t, l) in enumerate(zip(top.tolist(), left.tolist()))])  # noqa: E741 - top, left
    if flip.any():
        out[flip.to(out.device)] = out[flip.to(out.device)].flip(-1)
    return out
