"""Wasserstein GANs on the DCGAN networks: weight clipping (WGAN) and gradient penalty (WGAN-GP).

WGAN (Arjovsky, Chintala & Bottou, ICML 2017): the critic estimates the Wasserstein-1 distance
E[D(x)] - E[D(G(z))] and is kept roughly 1-Lipschitz by clipping every weight to [-c, c] after
each update; RMSprop 5e-5, c = 0.01, five critic updates per generator update.

WGAN-GP (Gulrajani et al., NeurIPS 2017): instead of clipping, the critic's gradient norm is
pushed towards 1 on random interpolates of real and fake images, weighted by lambda = 10; Adam
1e-4 with betas (0, 0.9), five critic updates; no batch norm in the critic (the penalty is per
image), layer norm instead.

The live table shows ``wasserstein``, the critic's current estimate of the distance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from gencli.models.base import TrainDefaults
from gencli.models.hparams import require
from gencli.nn.gan import gradient_penalty
from gencli_gan.base import AdversarialHyperparameters, OptimizerSettings, validate_next
from gencli_gan.dcgan import DCGAN, DCGANArchitecture, DiscriminatorNorm


# ---------------------------------------------------------------------------------- WGAN
@dataclass
class WGANHyperparameters(DCGANArchitecture, AdversarialHyperparameters):
    """WGAN (Arjovsky et al. 2017, Algorithm 1): RMSprop 5e-5, clip 0.01, n_critic 5."""

    lr: float = field(default=5e-5, metadata={"help": "RMSprop learning rate of both networks (5e-5 in the paper)"})
    n_critic: int = field(default=5, metadata={"help": "critic updates per generator update (5 in the paper)"})
    clip: float = field(default=0.01, metadata={"help": "critic weights are clipped to [-clip, clip] after each update"})

    def validate(self) -> None:
        require(self.clip > 0, f"clip must be > 0 (the critic's weights are clipped to [-clip, clip]), got {self.clip}")
        validate_next(WGANHyperparameters, self)


class WGAN(DCGAN):
    name = "wgan"
    summary = "Wasserstein GAN, critic with weight clipping (Arjovsky et al. 2017)"
    Hyperparameters = WGANHyperparameters
    defaults = TrainDefaults(image_size=32, channels=3, batch_size=32, steps=120, sample_every=10, checkpoint_every=40)

    def loss_kind(self) -> str:
        return "wasserstein"

    def real_target(self) -> float:
        return 1.0

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        hp = self.hp
        # The paper avoids momentum-based optimisers: Adam made the critic's training unstable.
        return {
            "G": torch.optim.RMSprop(self.nets["G"].parameters(), lr=hp.lr),
            "D": torch.optim.RMSprop(self.nets["D"].parameters(), lr=hp.lr_d or hp.lr),
        }

    def after_discriminator_step(self) -> None:
        with torch.no_grad():
            for p in self.nets["D"].parameters():
                p.clamp_(-self.hp.clip, self.hp.clip)


# ---------------------------------------------------------------------------------- WGAN-GP
@dataclass
class WGANGPHyperparameters(DCGANArchitecture, OptimizerSettings, AdversarialHyperparameters):
    """WGAN-GP (Gulrajani et al. 2017, Algorithm 1): lambda 10, Adam 1e-4 betas (0, 0.9), n_critic 5."""

    lr: float = field(default=1e-4, metadata={"help": "Adam learning rate of both networks (1e-4 in the paper)"})
    beta1: float = field(default=0.0, metadata={"help": "Adam beta1 (0 in the paper)"})
    beta2: float = field(default=0.9, metadata={"help": "Adam beta2 (0.9 in the paper)"})
    n_critic: int = field(default=5, metadata={"help": "critic updates per generator update (5 in the paper)"})
    d_norm: DiscriminatorNorm = field(
        default="layer", metadata={"help": "critic normalisation: layer (the paper's advice), spectral or none"})
    lambda_gp: float = field(default=10.0, metadata={"help": "weight of the gradient penalty (10 in the paper)"})

    def validate(self) -> None:
        require(self.lambda_gp >= 0, f"lambda_gp must be >= 0, got {self.lambda_gp}")
        require(self.d_norm != "batch",
                "wgan-gp's critic cannot use batch norm (the gradient penalty is per image); use d_norm=layer, spectral or none")
        validate_next(WGANGPHyperparameters, self)


class WGANGP(DCGAN):
    name = "wgan-gp"
    summary = "Wasserstein GAN with gradient penalty (Gulrajani et al. 2017)"
    Hyperparameters = WGANGPHyperparameters
    defaults = TrainDefaults(image_size=32, channels=3, batch_size=32, steps=80, sample_every=10, checkpoint_every=40)

    def loss_kind(self) -> str:
        return "wasserstein"

    def real_target(self) -> float:
        return 1.0

    def eager_networks(self) -> set[str]:
        """The critic's gradient penalty differentiates through its gradients: it stays eager under --compile."""
        return {"D"} if self.hp.lambda_gp > 0 else set()

    def discriminator_penalty(self, real_in, fake_in, labels, logs: dict) -> torch.Tensor | None:
        if self.hp.lambda_gp == 0:
            return None
        D = self.nets["D"]
        gp = gradient_penalty(lambda x: D(x, labels), real_in, fake_in)
        logs["gp"] = gp.detach()
        return self.hp.lambda_gp * gp
