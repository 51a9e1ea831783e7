"""Entry point of the VAE family: light model descriptions only (no torch import).

Each spec names the model class (imported when a model is built) and its declarations in
``gencli_vae.declarations`` (read by `gencli models --info` and completion, without torch).
"""

from gencli.hookspecs import hookimpl
from gencli.registry import ModelSpec

GENCLI_API = 2


@hookimpl
def gencli_register_models():
    return [
        ModelSpec("vae", "convolutional VAE (BCE or MSE reconstruction, KL weight beta)", "gencli_vae.vae:VAE", "images",
                  declarations="gencli_vae.declarations:VAEDeclarations"),
        ModelSpec("cvae", "conditional VAE: encoder and decoder see the one-hot label", "gencli_vae.vae:CVAE", "labelled",
                  declarations="gencli_vae.declarations:CVAEDeclarations"),
        ModelSpec("beta-vae", "VAE with a KL weight beta > 1 for disentangled latents (Higgins et al. 2017)",
                  "gencli_vae.vae:BetaVAE", "images",
                  declarations="gencli_vae.declarations:BetaVAEDeclarations"),
        ModelSpec("controlvae", "VAE whose KL weight a PI controller sets to hold a KL target (Shao et al. 2020)",
                  "gencli_vae.controlvae:ControlVAE", "images",
                  declarations="gencli_vae.declarations:ControlVAEDeclarations"),
        ModelSpec("vqvae", "vector-quantised VAE with a codebook (van den Oord et al. 2017)", "gencli_vae.vqvae:VQVAE", "images",
                  declarations="gencli_vae.declarations:VQVAEDeclarations"),
        ModelSpec("vqvae-prior", "autoregressive prior over a trained VQ-VAE's codes (train with --from RUN)",
                  "gencli_vae.vqvae:VQVAEPrior", "images",
                  declarations="gencli_vae.declarations:VQVAEPriorDeclarations"),
    ]
