"""Entry point of the VAE family: light model descriptions only (no torch import)."""

from gencli.hookspecs import hookimpl
from gencli.registry import ModelSpec

GENCLI_API = 2


@hookimpl
def gencli_register_models():
    return [
        ModelSpec("vae", "convolutional VAE (BCE or MSE reconstruction, KL weight beta)", "gencli_vae.vae:VAE", "images"),
        ModelSpec("cvae", "conditional VAE: encoder and decoder see the one-hot label", "gencli_vae.vae:CVAE", "labelled"),
        ModelSpec("beta-vae", "VAE with a KL weight beta > 1 for disentangled latents (Higgins et al. 2017)",
                  "gencli_vae.vae:BetaVAE", "images"),
        ModelSpec("controlvae", "VAE whose KL weight a PI controller sets to hold a KL target (Shao et al. 2020)",
                  "gencli_vae.controlvae:ControlVAE", "images"),
        ModelSpec("vqvae", "vector-quantised VAE with a codebook (van den Oord et al. 2017)", "gencli_vae.vqvae:VQVAE", "images"),
        ModelSpec("vqvae-prior", "autoregressive prior over a trained VQ-VAE's codes (train with --from RUN)",
                  "gencli_vae.vqvae:VQVAEPrior", "images"),
    ]
