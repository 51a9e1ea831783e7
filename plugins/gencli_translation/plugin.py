"""Entry point of the translation family: light model descriptions only (no torch import)."""

from gencli.hookspecs import hookimpl
from gencli.registry import ModelSpec

GENCLI_API = 2


@hookimpl
def gencli_register_models():
    return [
        ModelSpec("cyclegan", "unpaired image-to-image translation with cycle consistency (Zhu et al. 2017)",
                  "gencli_translation.cyclegan:CycleGAN", "unpaired",
                  declarations="gencli_translation.declarations:CycleGANDeclarations"),
        ModelSpec("pix2pix", "paired image-to-image translation: U-Net + conditional PatchGAN (Isola et al. 2017)",
                  "gencli_translation.pix2pix:Pix2Pix", "paired",
                  declarations="gencli_translation.declarations:Pix2PixDeclarations"),
    ]
