"""Entry point of the diffusion family: light model descriptions only (no torch import)."""

from gencli.hookspecs import hookimpl
from gencli.registry import ModelSpec

GENCLI_API = 2


@hookimpl
def gencli_register_models():
    return [
        ModelSpec("ddpm", "class-conditional DDPM with DDIM sampling and classifier-free guidance (Ho et al. 2020)",
                  "gencli_diffusion.ddpm:DDPM", "images",
                  declarations="gencli_diffusion.declarations:DDPMDeclarations"),
    ]
