"""Entry point of the GAN family: light model descriptions only (no torch import)."""

from gencli.hookspecs import hookimpl
from gencli.registry import ModelSpec

GENCLI_API = 2


@hookimpl
def gencli_register_models():
    return [
        ModelSpec("gan", "fully connected GAN, the FC-GAN baseline (Goodfellow et al. 2014)", "gencli_gan.mlp:MLPGAN", "images",
                  declarations="gencli_gan.declarations:MLPGANDeclarations"),
        ModelSpec("dcgan", "deep convolutional GAN (Radford et al. 2016)", "gencli_gan.dcgan:DCGAN", "images",
                  declarations="gencli_gan.declarations:DCGANDeclarations"),
        ModelSpec("wgan", "Wasserstein GAN, critic with weight clipping (Arjovsky et al. 2017)", "gencli_gan.wgan:WGAN", "images",
                  declarations="gencli_gan.declarations:WGANDeclarations"),
        ModelSpec("wgan-gp", "Wasserstein GAN with gradient penalty (Gulrajani et al. 2017)", "gencli_gan.wgan:WGANGP", "images",
                  declarations="gencli_gan.declarations:WGANGPDeclarations"),
        ModelSpec("ssgan", "self-supervised GAN: ResNet GAN with a rotation-predicting discriminator (Chen et al. 2019)",
                  "gencli_gan.ssgan:SSGAN", "images",
                  declarations="gencli_gan.declarations:SSGANDeclarations"),
        ModelSpec("cgan", "class-conditional DCGAN with a projection discriminator (Mirza & Osindero 2014; Miyato & Koyama 2018)",
                  "gencli_gan.cgan:CGAN", "labelled",
                  declarations="gencli_gan.declarations:CGANDeclarations"),
    ]
