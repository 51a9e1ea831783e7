"""pix2pix (Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial
Networks"): a U-Net generator G: A -> B and a conditional PatchGAN D that judges (input, output)
pairs, trained on aligned pairs.

Loss: G minimises the GAN loss plus lambda * |G(a) - b| (lambda 100); D sees the input
concatenated with either the real target or G's output. Dropout in the decoder is the only noise
source. Adam 2e-4, betas (0.5, 0.999). ``direction`` BtoA trains the mapping B -> A instead.

``translate`` runs the network as set by the caller; in eval mode (how gencli calls it) batch
norm uses its running statistics and dropout is off, so translations are deterministic. The
paper instead kept dropout and batch statistics at test time.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gencli.data.base import Batch, ImageData
from gencli.errors import UserError
from gencli.models.base import ExportSpec
from gencli.nn.optim import adam
from gencli_translation.common import (
    PREVIEW_EXAMPLES,
    TranslationModel,
    adversarial_d_loss,
    adversarial_g_loss,
    default_width,
    triptychs,
)
from gencli_translation.declarations import (  # noqa: F401 - declared apart from the networks
    Pix2PixDeclarations,
    Pix2PixHyperparameters,
)
from gencli_translation.networks import PatchDiscriminator, UnetGenerator, init_weights, unet_depth


class Pix2Pix(Pix2PixDeclarations, TranslationModel):
    """Paired translation with a U-Net generator, a conditional PatchGAN and an L1 loss."""

    name = "pix2pix"
    summary = "paired image-to-image translation: U-Net + conditional PatchGAN (Isola et al. 2017)"
    data = "paired"
    cpu_channels_last_training = False  # 0.90x on the CPU (64 px, batch 1); sampling stays channels-last (1.10x)

    @classmethod
    def check_shape(cls, image_size: int, channels: int) -> None:
        super().check_shape(image_size, channels)
        if image_size < 16 or image_size % 16:
            raise UserError(
                f"pix2pix needs an image size that is a multiple of 16 (e.g. 16, 32, 64, 128, 256), not {image_size}"
            )

    def build_networks(self) -> dict[str, nn.Module]:
        hp, c, size = self.hp, self.channels, self.image_size
        ngf = hp.ngf or default_width(size)
        ndf = hp.ndf or hp.ngf or default_width(size)
        depth = hp.depth or unet_depth(size)
        if size % 2**depth:
            raise UserError(
                f"depth {depth} needs an image size divisible by {2**depth}; "
                f"{size} px allows at most {unet_depth(size, 10)}"
            )
        d_layers = self.discriminator_layers()
        return {
            "G": init_weights(UnetGenerator(c, c, depth, ngf, hp.norm, hp.dropout, hp.dropout_layers)),
            # Conditional: D sees the input and the (real or generated) output stacked as channels.
            "D": init_weights(PatchDiscriminator(2 * c, ndf, d_layers, hp.norm)),
        }

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        betas = (self.hp.beta1, self.hp.beta2)
        return {name: adam(self.nets[name].parameters(), lr=self.hp.lr, betas=betas) for name in ("G", "D")}

    @property
    def directions(self) -> tuple[str, ...]:
        """Return the one direction this model was trained for, in the dataset's terms."""
        return ("a2b",) if self.hp.direction == "AtoB" else ("b2a",)

    def pair(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (input, target) of a paired batch, in the trained direction."""
        if batch.targets is None:
            raise UserError("pix2pix trains on paired data (aligned A and B images)")
        a, b = batch.images, batch.targets
        return (a, b) if self.hp.direction == "AtoB" else (b, a)

    # ------------------------------------------------------------------ losses
    def discriminator_loss(self, source: torch.Tensor, target: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Return D's loss on a real (input, target) pair and a detached (input, G(input)) pair."""
        D = self.nets["D"]
        real_out = D(torch.cat([source, target], 1))
        fake_out = D(torch.cat([source, fake.detach()], 1))
        return adversarial_d_loss(self.hp.gan_mode, real_out, fake_out)

    def generator_losses(
        self, source: torch.Tensor, target: torch.Tensor, fake: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (G's adversarial term, the L1 distance of its output to the target)."""
        gan = adversarial_g_loss(self.hp.gan_mode, self.nets["D"](torch.cat([source, fake], 1)))
        return gan, F.l1_loss(fake.float(), target)

    # ------------------------------------------------------------------ train step
    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        source, target = self.pair(batch)
        with self.autocast():
            fake = self.nets["G"](source)
            loss_d = self.discriminator_loss(source, target, fake)
        self.optimize("D", loss_d)
        with self.autocast(), self.frozen("D"):
            gan, l1 = self.generator_losses(source, target, fake)
        self.optimize("G", gan + self.hp.lambda_l1 * l1)
        return {"g_gan": gan.detach(), "l1": l1.detach(), "d": loss_d.detach()}

    # ------------------------------------------------------------------ capabilities
    def translate(self, x: torch.Tensor, direction: str = "a2b") -> torch.Tensor:
        """Return ``x`` translated by the generator; only the trained direction is offered."""
        self.check_direction(direction)
        return self.nets["G"](x)

    def preview_inputs(self, data: ImageData, n: int, seed: int) -> dict[str, Any]:
        """Return fixed held-out pairs, as (input, target) in the trained direction."""
        if data.targets is None or len(data.targets) != len(data.images):
            raise UserError(f"pix2pix previews need paired data; {data.name!r} is {data.kind}")
        n = min(n, PREVIEW_EXAMPLES)
        # The same generator seed picks the same indices from both sides of the pairs.
        a = self.fixed_images(data.images, n, torch.Generator().manual_seed(seed))
        b = self.fixed_images(data.targets, n, torch.Generator().manual_seed(seed))
        return {"images": a, "targets": b} if self.hp.direction == "AtoB" else {"images": b, "targets": a}

    def preview(self, inputs: dict[str, Any]) -> tuple[torch.Tensor, int]:
        """Return triptychs input | output | target, and images per grid row."""
        x = inputs["images"]
        return triptychs(x, self.nets["G"](x), inputs["targets"])

    # ------------------------------------------------------------------ export
    def export_module(self, direction: str | None = None) -> tuple[nn.Module, ExportSpec]:
        """Return the generator of ``direction`` (default: the trained one) for `gencli export`."""
        direction = direction or self.directions[0]
        self.check_direction(direction)
        return self.export_translator(self.nets["G"], direction)
