"""What CycleGAN and pix2pix share beyond their networks: sizes, augmentation, losses, previews."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from gencli.data.base import resize_square, to_float
from gencli.errors import UserError
from gencli.models.base import ExportedNetwork, ExportSpec, Model, TensorSpec
from gencli.nn.losses import discriminator_loss, generator_loss
from gencli_translation.declarations import GanMode  # noqa: F401 - declared apart from the networks
from gencli_translation.networks import PatchDiscriminator

DIRECTIONS = ("a2b", "b2a")
# Progress grids show at most this many examples, two triptychs to a row, so every frame of the
# run's GIF stays legible.
PREVIEW_EXAMPLES = 12
TRIPTYCHS_PER_ROW = 2


def default_width(image_size: int) -> int:
    """Return the base channel width used when ``ngf``/``ndf`` are not set.

    64, the papers' width, from 128 px up; narrower below, where a 64-wide network is far more
    capacity than the images need and too slow to train on a CPU.
    """
    if image_size >= 128:
        return 64
    return 32 if image_size >= 64 else 16


def adversarial_d_loss(mode: GanMode, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Return the discriminator loss of both papers: half the real term plus half the fake term."""
    # gencli.nn.losses' least-squares loss already halves each term; its logistic one does not.
    scale = 1.0 if mode == "lsgan" else 0.5
    return scale * discriminator_loss(mode, real, fake)


def adversarial_g_loss(mode: GanMode, fake: torch.Tensor) -> torch.Tensor:
    """Return the generator's adversarial term of both papers: mean (D - 1)^2, or BCE to "real"."""
    # gencli.nn.losses halves the least-squares loss; the papers weigh the full square against
    # their cycle / L1 lambdas.
    scale = 2.0 if mode == "lsgan" else 1.0
    return scale * generator_loss(mode, fake)


def triptychs(*columns: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Return (images, images per row) showing each example's ``columns`` side by side.

    ``TRIPTYCHS_PER_ROW`` examples share a grid row.
    """
    return torch.stack(columns, dim=1).flatten(0, 1), len(columns) * TRIPTYCHS_PER_ROW


class TranslationModel(Model):
    """A model mapping images between two domains A and B, trained as in the pix2pix/CycleGAN code.

    Training batches are loaded at ``load_size`` (286 for 256 px) and randomly cropped to the
    image size and flipped by the core's batch stream.
    """

    augment_flip: ClassVar[bool] = True

    @classmethod
    def load_size(cls, hp: Any, image_size: int) -> int | None:
        """Return ``hp.load_size``, or the papers' 286/256 of ``image_size`` when it is unset."""
        size = hp.load_size if hp.load_size is not None else image_size * 286 // 256
        if size < image_size:
            raise UserError(
                f"load_size {size} is smaller than the image size {image_size}; random crops need it at least as large"
            )
        return size if size > image_size else None

    @property
    def directions(self) -> tuple[str, ...]:
        """Return the directions ``translate`` accepts ("a2b", "b2a")."""
        return DIRECTIONS

    @property
    def domains(self) -> tuple[str, str] | None:
        """Return the names of domains A and B when the model was built with two class names."""
        return (self.classes[0], self.classes[1]) if len(self.classes) == 2 else None

    @property
    def size_multiple(self) -> int:
        """Return 2 ** the most stride-2 downsamplings of the generators: fully convolutional, they
        translate images of any size that is a multiple of it."""
        return 2 ** max(net.downsamplings for net in self.nets.values() if hasattr(net, "downsamplings"))

    def discriminator_layers(self) -> int:
        """Return the PatchGAN depth: ``hp.d_layers``, or 3 reduced until tiny images fit."""
        size, wanted = self.image_size, self.hp.d_layers
        if wanted is None:
            return PatchDiscriminator.max_layers(size)
        if PatchDiscriminator.output_size(size, wanted) < 1:
            most = PatchDiscriminator.max_layers(size, wanted)
            raise UserError(f"d_layers {wanted} is too many for {size} px images; use at most {most}")
        return wanted

    def check_direction(self, direction: str) -> None:
        """Raise ``UserError`` unless ``translate`` supports ``direction``."""
        if direction not in self.directions:
            can = " or ".join(self.directions)
            raise UserError(f"{self.name} translates {can}, not {direction!r}")

    def fixed_images(self, images: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        """Return ``n`` images drawn with ``generator``, as float at the network's size, on the device."""
        idx = torch.randperm(len(images), generator=generator)[:n]
        picked = images[idx.to(images.device)]
        size = self.image_size
        h, w = picked.shape[-2:]
        if h >= size and w >= size:  # held-out images at the load size: the centre crop
            top, left = (h - size) // 2, (w - size) // 2
            picked = picked[..., top : top + size, left : left + size]
        else:
            picked = resize_square(picked, size)
        return to_float(picked.to(self.device))

    def export_translator(self, net: torch.nn.Module, direction: str) -> tuple[torch.nn.Module, ExportSpec]:
        """Return (``net`` as an exported module, its spec): images of one domain -> the other's, in [-1, 1]."""
        source, target = self.domains or ("A", "B")
        if direction == "b2a":
            source, target = target, source
        shape = ("N", *self.image_shape)
        inputs = [TensorSpec("images", shape, range=(-1, 1), help=f"images of domain {source}")]
        output = TensorSpec("translated", shape, range=(-1, 1), help=f"the images translated to domain {target}")
        notes = [f"direction {direction} ({source} -> {target}), trained at {self.image_size} px: give images of that size"]
        if len(self.directions) > 1:
            notes.append("the other direction is exported with --direction")
        example = (torch.rand(2, *self.image_shape, device=self.device) * 2 - 1,)
        module = ExportedNetwork(lambda x: net(x).float().clamp(-1, 1), translator=net)
        return module, ExportSpec(f"the {direction} generator: {source} images -> {target} images", inputs, output,
                                  example, notes)
