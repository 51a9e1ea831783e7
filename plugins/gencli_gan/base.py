"""What every model of the GAN family shares: stabiliser hyperparameters and the train step.

A GAN here is a generator ``G``, a discriminator (or critic) ``D`` and an exponential moving
average of the generator, ``G_ema``, which ``sample`` and ``generate`` use. One ``train_step``
makes ``n_critic`` discriminator updates, each on a fresh real batch (the model asks the engine
for ``n_critic`` batches a step, as Algorithm 1 of the WGAN paper draws them), and then
``g_steps`` generator updates, each against fresh noise; at the usual 1 : 1 ratio the two updates
share one batch of fakes, so the generator runs forward once per step. An epoch is still one
pass over the data: with ``n_critic`` 5 it takes a fifth of the steps. The stabilisers of the family apply to every model:

- instance noise: Gaussian noise of strength ``instance_noise`` added to every image D sees,
  decaying linearly to zero over ``instance_noise_steps`` (Sønderby et al. 2017);
- one-sided label smoothing: real targets ``1 - label_smoothing`` (Salimans et al. 2016);
- differentiable augmentation of D's inputs, real and fake alike (Zhao et al. 2020);
- the update ratio ``n_critic`` : ``g_steps``;
- the EMA generator, with decay ``ema_decay`` warmed up over the first steps.

Subclasses provide the networks (``G(z, labels)`` -> images, ``D(x, labels)`` -> one value per
image) and may override ``discriminator_step`` / ``generator_step`` (SS-GAN adds its rotation
task), ``after_discriminator_step`` (WGAN clips) and ``discriminator_penalty`` (WGAN-GP).
"""

from __future__ import annotations

import torch
from torch import nn

from gencli.data.base import Batch
from gencli.errors import UserError
from gencli.models.base import ExportedNetwork, ExportSpec, Model, TensorSpec
from gencli.nn.augment import diff_augment
from gencli.nn.ema import ema_decay_at, ema_update
from gencli.nn.losses import (
    add_instance_noise,
    discriminator_loss,
    discriminator_score,
    generator_loss,
    instance_noise_std,
    smoothed_target,
)
from gencli.nn.optim import adam
from gencli_gan.declarations import (  # noqa: F401 - declared apart from the networks
    AdversarialHyperparameters,
    LossSettings,
    OptimizerSettings,
    validate_next,
)

# Sizes a generator that starts at 4x4 or 7x7 and doubles reaches (7x7 serves 28 px and 56 px).
BASE_SIZES = (4, 7)
MAX_SIZE = 256


def resolution_plan(image_size: int) -> tuple[int, int] | None:
    """Return (starting size, number of doublings) that reaches ``image_size``, or None."""
    for base in BASE_SIZES:
        size, doublings = image_size, 0
        while size > base and size % 2 == 0:
            size, doublings = size // 2, doublings + 1
        if size == base and doublings >= 1 and image_size <= MAX_SIZE:
            return base, doublings
    return None


def supported_sizes() -> list[int]:
    """Return every image size ``resolution_plan`` accepts, smallest first."""
    return sorted(b * 2**k for b in BASE_SIZES for k in range(1, 8) if b * 2**k <= MAX_SIZE)


def check_doubling_size(name: str, image_size: int, channels: int) -> None:
    """Raise ``UserError`` unless a 4x4/7x7-doubling architecture can produce this shape."""
    if channels not in (1, 3):
        raise UserError(f"{name} works with 1 or 3 channels, not {channels}")
    if resolution_plan(image_size) is None:
        sizes = ", ".join(map(str, supported_sizes()))
        raise UserError(f"{name} cannot produce {image_size} px images; it works at {sizes} px")


# ---------------------------------------------------------------------------------- the model
class GAN(Model):
    """Base of the GAN family. Subclasses build ``G``, ``D`` (and ``G_ema`` via ``ema_copy``)."""

    # The adversarial loss; classic GANs read it from ``hp.loss``, WGANs fix it.
    def loss_kind(self) -> str:
        return self.hp.loss

    def real_target(self) -> float:
        return smoothed_target(self.hp.label_smoothing)

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        hp = self.hp
        if hp.optimizer == "rmsprop":
            make = torch.optim.RMSprop
        else:
            def make(params, lr):
                return adam(params, lr=lr, betas=(hp.beta1, hp.beta2))
        return {"G": make(self.nets["G"].parameters(), lr=hp.lr), "D": make(self.nets["D"].parameters(), lr=hp.lr_d or hp.lr)}

    # -- pieces of the train step
    def draw_z(self, n: int) -> torch.Tensor:
        """Return latent vectors z ~ N(0, I), this process's rows of the global batch's draw."""
        return self.randn(n, self.hp.z_dim)

    def d_input(self, x: torch.Tensor, noise_std: float) -> torch.Tensor:
        """Return images as D sees them: augmented (when asked), then with instance noise."""
        if self.hp.augment:
            x = diff_augment(x, self.hp.augment, noise=self)
        return add_instance_noise(x, noise_std, noise=self)

    def discriminator_penalty(self, real_in: torch.Tensor, fake_in: torch.Tensor, labels, logs: dict) -> torch.Tensor | None:
        """Return an extra term for D's loss (WGAN-GP's penalty), logging it in ``logs``; None for none."""
        return None

    def after_discriminator_step(self) -> None:
        """Called after every D update (WGAN clips the critic's weights here)."""

    def discriminator_step(self, real: torch.Tensor, labels: torch.Tensor | None, noise_std: float,
                           fake: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Update D once against ``fake`` (detached), or a fresh batch of fakes; return its logs."""
        G, D, kind = self.nets["G"], self.nets["D"], self.loss_kind()
        if fake is None:
            with torch.no_grad(), self.autocast():
                fake = G(self.draw_z(len(real)), labels)
        with self.autocast():
            real_in, fake_in = self.d_input(real, noise_std), self.d_input(fake, noise_std)
            real_out, fake_out = D(real_in, labels), D(fake_in, labels)
            loss = discriminator_loss(kind, real_out, fake_out, self.real_target())
            logs = {}
            if kind == "wasserstein":
                logs["wasserstein"] = (real_out.float().mean() - fake_out.float().mean()).detach()
            else:
                logs["d_real"] = discriminator_score(kind, real_out)
                logs["d_fake"] = discriminator_score(kind, fake_out)
            penalty = self.discriminator_penalty(real_in, fake_in, labels, logs)
            if penalty is not None:
                loss = loss + penalty
        self.optimize("D", loss)
        self.after_discriminator_step()
        return {"loss_d": loss.detach(), **logs}

    def generator_step(self, n: int, labels: torch.Tensor | None, noise_std: float,
                       fake: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Update G once through ``fake`` (G's output, with its graph) or fresh fakes; return its logs."""
        G, D = self.nets["G"], self.nets["D"]
        with self.autocast(), self.frozen("D"):
            if fake is None:
                fake = G(self.draw_z(n), labels)
            loss = generator_loss(self.loss_kind(), D(self.d_input(fake, noise_std), labels))
        self.optimize("G", loss)
        return {"loss_g": loss.detach()}

    def update_ema(self) -> None:
        ema_update(self.nets["G_ema"], self.nets["G"], ema_decay_at(self.step, self.hp.ema_decay))

    def training_labels(self, batch: Batch) -> torch.Tensor | None:
        """Return the labels that condition G and D (None for unconditional models)."""
        return batch.labels if self.conditional else None

    # -- the train step
    @property
    def batches_per_step(self) -> int:
        """One real batch per critic update."""
        return self.hp.n_critic

    def train_step(self, batch: Batch | list[Batch]) -> dict[str, torch.Tensor]:
        hp = self.hp
        # A single batch (a caller outside the engine) serves every critic update, as before.
        batches = batch if isinstance(batch, list) else [batch]
        real, labels = batches[-1].images, self.training_labels(batches[-1])
        noise_std = instance_noise_std(self.step, hp.instance_noise, hp.instance_noise_steps)
        logs: dict[str, torch.Tensor] = {}
        if hp.n_critic == 1 and hp.g_steps == 1:
            # One batch of fakes serves both updates (as in the DCGAN paper's code): D learns on it
            # detached, then G's loss goes through the updated D; G runs forward once per step.
            with self.autocast():
                fake = self.nets["G"](self.draw_z(len(real)), labels)
            logs.update(self.discriminator_step(real, labels, noise_std, fake.detach()))
            logs.update(self.generator_step(len(real), labels, noise_std, fake))
        else:
            for i in range(hp.n_critic):
                critic_batch = batches[i % len(batches)]
                logs.update(self.discriminator_step(critic_batch.images, self.training_labels(critic_batch), noise_std))
            for _ in range(hp.g_steps):
                logs.update(self.generator_step(len(real), labels, noise_std))
        self.update_ema()
        return logs

    # -- capabilities
    def check_labels(self, labels: torch.Tensor | None, n: int) -> torch.Tensor | None:
        """Return ``labels`` on the device, checked against what the model was trained on."""
        if labels is None:
            return None
        raise UserError(f"model {self.name!r} is unconditional and takes no --label; cgan is the conditional GAN")

    def latents(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Return ``n`` latent vectors z ~ N(0, I)."""
        return torch.randn(n, self.hp.z_dim, generator=generator).to(self.device)

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Return the EMA generator's images for latent vectors ``z``."""
        labels = self.check_labels(labels, len(z))
        return self.nets["G_ema"](z.to(self.device), labels).float().clamp(-1, 1)

    def sample(self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None,
               truncation: float | None = None) -> torch.Tensor:
        """Return ``n`` images from the EMA generator, z scaled by ``truncation`` (None: the declared default)."""
        if truncation is None:  # called without options (training previews, other code)
            truncation = self.SampleOptions().truncation
        return self.generate(self.latents(n, generator) * truncation, labels)

    # -- export
    def export_module(self, direction: str | None = None) -> tuple[nn.Module, ExportSpec]:
        """Return the EMA generator for `gencli export`: z ~ N(0, I) (and class indices) -> images in [-1, 1]."""
        G = self.nets["G_ema"]
        inputs = [TensorSpec("z", ("N", self.hp.z_dim), help="latent code, z ~ N(0, I)")]
        example: tuple[torch.Tensor, ...] = (torch.randn(2, self.hp.z_dim, device=self.device),)
        if self.conditional:
            k = self.num_classes
            inputs.append(TensorSpec("labels", ("N",), "int64", (0, k - 1), "class index of each image"))
            example += (torch.arange(2, device=self.device) % k,)
        module = ExportedNetwork(lambda *x: G(*x).float().clamp(-1, 1), G_ema=G)
        images = TensorSpec("images", ("N", *self.image_shape), range=(-1, 1), help="generated images")
        return module, ExportSpec("the EMA generator: latent codes -> images", inputs, images, example)


def discriminator_norm(kind: str, channels: int) -> nn.Module:
    """Return the normalisation layer ``kind`` ("batch", "layer"; "none"/"spectral": identity)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":  # normalises each image over (C, H, W), as WGAN-GP recommends for critics
        return nn.GroupNorm(1, channels)
    return nn.Identity()
