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

import torch

from gencli.nn.losses import gradient_penalty
from gencli_gan.dcgan import DCGAN
from gencli_gan.declarations import (  # noqa: F401 - declared apart from the networks
    WGANDeclarations,
    WGANGPDeclarations,
    WGANGPHyperparameters,
    WGANHyperparameters,
)


# ---------------------------------------------------------------------------------- WGAN
class WGAN(WGANDeclarations, DCGAN):
    name = "wgan"
    summary = "Wasserstein GAN, critic with weight clipping (Arjovsky et al. 2017)"

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
class WGANGP(WGANGPDeclarations, DCGAN):
    name = "wgan-gp"
    summary = "Wasserstein GAN with gradient penalty (Gulrajani et al. 2017)"

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
        gp = gradient_penalty(lambda x: D(x, labels), real_in, fake_in, noise=self)
        logs["gp"] = gp.detach()
        return self.hp.lambda_gp * gp
