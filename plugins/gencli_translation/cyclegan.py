"""CycleGAN (Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks"): two generators G_AB: A -> B and G_BA: B -> A, two PatchGAN
discriminators D_A and D_B, trained on unpaired images of the two domains.

Losses: least-squares GAN loss for each direction, cycle consistency
lambda * (|G_BA(G_AB(a)) - a| + |G_AB(G_BA(b)) - b|), and the identity loss
0.5 * lambda * (|G_AB(b) - b| + |G_BA(a) - a|) that keeps colours when no change is needed. The
discriminators see a history of 50 generated images. Adam 2e-4, betas (0.5, 0.999); the learning
rate is constant, then decays linearly to zero.
"""

from __future__ import annotations

from typing import Any, Callable

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
    CycleGANDeclarations,
    CycleGANHyperparameters,
)
from gencli_translation.networks import ImagePool, PatchDiscriminator, ResnetGenerator, init_weights


# ---------------------------------------------------------------------------------------- schedule
def linear_decay(constant_steps: int, decay_steps: int) -> Callable[[int], float]:
    """Return the learning-rate factor per step: 1 for ``constant_steps``, then linearly to 0."""

    def factor(step: int) -> float:
        if step < constant_steps:
            return 1.0
        if decay_steps == 0:
            return 1.0  # no decay phase: the rate stays constant
        return max(0.0, 1.0 - (step - constant_steps) / decay_steps)

    return factor


# ---------------------------------------------------------------------------------------- model
class CycleGAN(CycleGANDeclarations, TranslationModel):
    """Unpaired translation with two generators, two PatchGANs and cycle consistency."""

    name = "cyclegan"
    summary = "unpaired image-to-image translation with cycle consistency (Zhu et al. 2017)"
    data = "unpaired"
    # Its instance norms made channels-last translation slower on the CPU (benchmarks/bench_inference.py).
    cpu_channels_last = False
    cpu_channels_last_training = False  # 0.94x on the CPU at 64 px
    # Its 9 residual blocks at a quarter of the image size outgrow the CPU's cache in big batches:
    # per image, batches of 2 at 128 px ran 1.24x faster than batches of 16, and 8 at 64 px best.
    cpu_batch_pixels = 2 * 128 * 128

    def __init__(self, hp: CycleGANHyperparameters, *args: Any, **kwargs: Any) -> None:
        # One history of generated images per discriminator; saved by ``extra_state``.
        self.pool_a, self.pool_b = ImagePool(hp.pool_size), ImagePool(hp.pool_size)
        super().__init__(hp, *args, **kwargs)

    @classmethod
    def check_shape(cls, image_size: int, channels: int) -> None:
        super().check_shape(image_size, channels)
        if image_size < 16 or image_size % 4:
            raise UserError(
                f"cyclegan needs an image size that is a multiple of 4 and at least 16 "
                f"(e.g. 32, 64, 128, 256), not {image_size}"
            )

    def build_networks(self) -> dict[str, nn.Module]:
        hp, c, size = self.hp, self.channels, self.image_size
        ngf = hp.ngf or default_width(size)
        ndf = hp.ndf or hp.ngf or default_width(size)
        blocks = hp.blocks if hp.blocks is not None else (9 if size >= 256 else 6)
        d_layers = self.discriminator_layers()
        g = lambda: ResnetGenerator(c, c, ngf, blocks, hp.norm, hp.dropout)  # noqa: E731
        d = lambda: PatchDiscriminator(c, ndf, d_layers, hp.norm)  # noqa: E731
        return {name: init_weights(make()) for name, make in (("G_AB", g), ("G_BA", g), ("D_A", d), ("D_B", d))}

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        betas = (self.hp.beta1, self.hp.beta2)
        params = lambda *names: [p for n in names for p in self.nets[n].parameters()]  # noqa: E731
        return {
            "G": adam(params("G_AB", "G_BA"), lr=self.hp.lr, betas=betas),
            "D": adam(params("D_A", "D_B"), lr=self.hp.lr, betas=betas),
        }

    def build_schedulers(self) -> dict[str, Any]:
        factor = linear_decay(self.hp.constant_steps, self.hp.decay_steps)
        return {name: torch.optim.lr_scheduler.LambdaLR(opt, factor) for name, opt in self.optimizers.items()}

    # ------------------------------------------------------------------ losses
    def generator_losses(
        self, real_a: torch.Tensor, real_b: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """Return (total generator loss, its terms, fake A, fake B) for one batch of each domain."""
        hp, G_AB, G_BA = self.hp, self.nets["G_AB"], self.nets["G_BA"]
        fake_b, fake_a = G_AB(real_a), G_BA(real_b)
        cycle_a = F.l1_loss(G_BA(fake_b).float(), real_a)
        cycle_b = F.l1_loss(G_AB(fake_a).float(), real_b)
        gan_ab = adversarial_g_loss(hp.gan_mode, self.nets["D_B"](fake_b))
        gan_ba = adversarial_g_loss(hp.gan_mode, self.nets["D_A"](fake_a))
        total = gan_ab + gan_ba + hp.lambda_cycle * (cycle_a + cycle_b)
        terms = {"g_ab": gan_ab, "g_ba": gan_ba, "cycle_a": cycle_a, "cycle_b": cycle_b}
        if hp.lambda_identity > 0:
            # A generator fed an image already in its target domain should leave it unchanged.
            idt_a = F.l1_loss(G_BA(real_a).float(), real_a)
            idt_b = F.l1_loss(G_AB(real_b).float(), real_b)
            total = total + hp.lambda_cycle * hp.lambda_identity * (idt_a + idt_b)
            terms.update(idt_a=idt_a, idt_b=idt_b)
        return total, terms, fake_a, fake_b

    def discriminator_loss(self, name: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Return discriminator ``name``'s loss on real images and (pooled, detached) fakes."""
        D = self.nets[name]
        return adversarial_d_loss(self.hp.gan_mode, D(real), D(fake.detach()))

    # ------------------------------------------------------------------ train step
    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        real_a, real_b = batch.images, batch.targets
        if real_b is None:
            raise UserError("cyclegan trains on two image domains (unpaired or paired data)")
        with self.autocast(), self.frozen("D_A", "D_B"):
            loss_g, terms, fake_a, fake_b = self.generator_losses(real_a, real_b)
        self.optimize("G", loss_g)
        past_a, past_b = self.pool_a.query(fake_a), self.pool_b.query(fake_b)
        with self.autocast():
            loss_d_a = self.discriminator_loss("D_A", real_a, past_a)
            loss_d_b = self.discriminator_loss("D_B", real_b, past_b)
        self.optimize("D", loss_d_a + loss_d_b)
        for scheduler in self.schedulers.values():
            scheduler.step()
        return {**{k: v.detach() for k, v in terms.items()}, "d_a": loss_d_a.detach(), "d_b": loss_d_b.detach()}

    def extra_state(self) -> dict[str, Any]:
        return {"pool_a": self.pool_a.state(), "pool_b": self.pool_b.state()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.pool_a.load_state(state["pool_a"], self.device)
        self.pool_b.load_state(state["pool_b"], self.device)

    # ------------------------------------------------------------------ capabilities
    def translate(self, x: torch.Tensor, direction: str = "a2b") -> torch.Tensor:
        """Return ``x`` translated by G_AB (``a2b``) or G_BA (``b2a``)."""
        self.check_direction(direction)
        return self.nets["G_AB" if direction == "a2b" else "G_BA"](x)

    def preview_inputs(self, data: ImageData, n: int, seed: int) -> dict[str, Any]:
        """Return fixed held-out images of both domains: the first half A, the rest B."""
        g = torch.Generator().manual_seed(seed)
        n = min(n, PREVIEW_EXAMPLES)
        n_a = (n + 1) // 2
        inputs = {"images": self.fixed_images(data.images, n_a, g)}
        if data.targets is not None and n > n_a:
            inputs["targets"] = self.fixed_images(data.targets, n - n_a, g)
        return inputs

    def preview(self, inputs: dict[str, Any]) -> tuple[torch.Tensor, int]:
        """Return triptychs A | A->B | A->B->A, then B | B->A | B->A->B, and images per row."""
        a = inputs["images"]
        fake_b = self.translate(a, "a2b")
        images, nrow = triptychs(a, fake_b, self.translate(fake_b, "b2a"))
        if "targets" in inputs:
            b = inputs["targets"]
            fake_a = self.translate(b, "b2a")
            images = torch.cat([images, triptychs(b, fake_a, self.translate(fake_a, "a2b"))[0]])
        return images, nrow

    # ------------------------------------------------------------------ export
    def export_module(self, direction: str | None = None) -> tuple[nn.Module, ExportSpec]:
        """Return the generator of ``direction`` (default: a2b) for `gencli export`."""
        direction = direction or self.directions[0]
        self.check_direction(direction)
        return self.export_translator(self.nets["G_AB" if direction == "a2b" else "G_BA"], direction)
