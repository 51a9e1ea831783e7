"""Entry point of the StyleGAN family: a light model description only (no torch import)."""

from gencli.hookspecs import hookimpl
from gencli.registry import ModelSpec

GENCLI_API = 2


@hookimpl
def gencli_register_models():
    return [
        ModelSpec(
            "stylegan",
            "StyleGAN2-style generator: mapping network, modulated convs, noise inputs, style mixing, truncation",
            "gencli_stylegan.stylegan:StyleGAN",
            "images",
            declarations="gencli_stylegan.declarations:StyleGANDeclarations",
        ),
    ]
