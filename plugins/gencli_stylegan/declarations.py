"""What the StyleGAN model declares, apart from its networks: no torch here.

Its hyperparameter dataclass, the options of `gencli sample` and `gencli interpolate`, the
style-mixing figure, and ``StyleGANDeclarations`` (training defaults, options, figures and
capabilities), which ``gencli_stylegan.stylegan.StyleGAN`` inherits. `gencli models --info` and
shell completion read these without importing the networks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gencli.models.declarations import Figure, Hyperparameters, ModelDeclarations, Options, TrainDefaults
from gencli.models.hparams import require


@dataclass
class StyleGANHyperparameters(Hyperparameters):
    lr: float = field(default=0.002, metadata={"help": "Adam learning rate of G and D (StyleGAN2: 0.002)"})
    beta1: float = field(default=0.0, metadata={"help": "Adam beta1 (StyleGAN2: 0)"})
    beta2: float = field(default=0.99, metadata={"help": "Adam beta2 (StyleGAN2: 0.99)"})
    z_dim: int = field(default=512, metadata={"help": "size of the input latent z (StyleGAN: 512)"})
    w_dim: int = field(default=512, metadata={"help": "size of the intermediate latent w (StyleGAN: 512)"})
    mapping_layers: int = field(default=8, metadata={"help": "dense layers of the mapping network (StyleGAN: 8)"})
    mapping_lr_mul: float = field(default=0.01, metadata={
        "help": "learning-rate multiplier of the mapping network (StyleGAN: 0.01)"})
    channels_base: int | None = field(default=None, metadata={
        "help": "feature channels at resolution r are channels_base / r (capped by channels_max); "
                "none = 16 x image size (16 channels at the output resolution, doubling per coarser block), "
                "sized for CPU; the papers use 16384 up to 256 px and 32768 at 1024 px"})
    channels_max: int = field(default=512, metadata={"help": "most feature channels of any layer (StyleGAN2: 512)"})
    style_mixing_prob: float = field(default=0.9, metadata={
        "help": "share of batches trained with two mixed ws (StyleGAN: 0.9)"})
    r1_gamma: float | None = field(default=None, metadata={
        "help": "R1 weight gamma (StyleGAN2: 10 at 1024 px); none = 0.0002 x size^2 / batch (StyleGAN2-ADA); 0 = off"})
    d_reg_every: int = field(default=16, metadata={
        "help": "apply R1 every this many steps, scaled up to match (StyleGAN2: 16)"})
    pl_weight: float = field(default=2.0, metadata={
        "help": "path length regularisation weight (StyleGAN2: 2); 0 = off"})
    pl_decay: float = field(default=0.01, metadata={
        "help": "decay of the running path length target (StyleGAN2: 0.01)"})
    pl_batch_shrink: int = field(default=2, metadata={"help": "path length is measured on batch / this (StyleGAN2: 2)"})
    g_reg_every: int = field(default=4, metadata={
        "help": "apply path length regularisation every this many steps (StyleGAN2: 4)"})
    ema_kimg: float = field(default=10.0, metadata={
        "help": "half-life of the EMA generator, in thousands of images (StyleGAN2: 10)"})
    ema_rampup: float | None = field(default=0.05, metadata={
        "help": "cap the EMA half-life at this share of the images seen so far (StyleGAN2-ADA: 0.05); none = off"})
    w_avg_beta: float = field(default=0.995, metadata={
        "help": "decay of the running average of w used by truncation (StyleGAN2: 0.995)"})
    mbstd_group: int = field(default=4, metadata={"help": "minibatch standard deviation group size (StyleGAN2: 4)"})

    def validate(self) -> None:
        require(self.lr > 0, f"lr must be > 0, got {self.lr}")
        require(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1,
                f"beta1 and beta2 must be in [0, 1), got {self.beta1} and {self.beta2}")
        require(self.z_dim >= 1 and self.w_dim >= 1, f"z_dim and w_dim must be >= 1, got {self.z_dim} and {self.w_dim}")
        require(self.mapping_layers >= 1, f"mapping_layers must be >= 1, got {self.mapping_layers}")
        require(self.mapping_lr_mul > 0, f"mapping_lr_mul must be > 0, got {self.mapping_lr_mul}")
        require(self.channels_base is None or self.channels_base >= 1,
                f"channels_base must be >= 1, got {self.channels_base}")
        require(self.channels_max >= 1, f"channels_max must be >= 1, got {self.channels_max}")
        require(0 <= self.style_mixing_prob <= 1, f"style_mixing_prob must be in [0, 1], got {self.style_mixing_prob}")
        require(self.r1_gamma is None or self.r1_gamma >= 0, f"r1_gamma must be >= 0, got {self.r1_gamma}")
        require(self.d_reg_every >= 1 and self.g_reg_every >= 1,
                f"d_reg_every and g_reg_every must be >= 1, got {self.d_reg_every} and {self.g_reg_every}")
        require(self.pl_weight >= 0, f"pl_weight must be >= 0, got {self.pl_weight}")
        require(0 < self.pl_decay <= 1, f"pl_decay must be in (0, 1], got {self.pl_decay}")
        require(self.pl_batch_shrink >= 1, f"pl_batch_shrink must be >= 1, got {self.pl_batch_shrink}")
        require(self.ema_kimg >= 0, f"ema_kimg must be >= 0, got {self.ema_kimg}")
        require(self.ema_rampup is None or self.ema_rampup > 0,
                f"ema_rampup must be > 0 or none, got {self.ema_rampup}")
        require(0 <= self.w_avg_beta < 1, f"w_avg_beta must be in [0, 1), got {self.w_avg_beta}")
        require(self.mbstd_group >= 1, f"mbstd_group must be >= 1, got {self.mbstd_group}")


def check_truncation(psi: float) -> None:
    """Refuse a truncation psi outside [0, 1] (1 = off, 0 = the average image): the options' one check."""
    require(0 <= psi <= 1, f"truncation must be between 0 (the average image) and 1 (off), got {psi}")


@dataclass
class StyleGANSampleOptions(Options):
    """`gencli sample RUN --set key=value` (and `gencli eval`)."""

    truncation: float = field(default=1.0, metadata={"help": "truncation psi: pulls w toward its average (1 = off, 0 = the average image)"})
    noise: Literal["random", "const"] = field(default="random", metadata={"help": "noise inputs: random, or the frozen const maps"})

    def validate(self) -> None:
        check_truncation(self.truncation)


@dataclass
class StyleGANInterpolateOptions(Options):
    """`gencli interpolate RUN --set key=value`."""

    space: Literal["w", "z"] = field(default="w", metadata={"help": "walk W in a straight line, or Z on the sphere"})
    truncation: float = field(default=1.0, metadata={"help": "truncation psi (1 = off)"})

    def validate(self) -> None:
        check_truncation(self.truncation)


@dataclass
class StyleMixOptions(Options):
    """`gencli sample RUN --figure style-mix --set key=value`."""

    truncation: float = field(default=1.0, metadata={"help": "truncation psi (1 = off)"})
    noise: Literal["random", "const"] = field(default="const", metadata={"help": "noise inputs (const: cells differ only by style)"})

    def validate(self) -> None:
        check_truncation(self.truncation)


class StyleGANDeclarations(ModelDeclarations):
    Hyperparameters = StyleGANHyperparameters
    defaults = TrainDefaults(image_size=32, channels=3, batch_size=16, steps=300, sample_every=25, checkpoint_every=100)
    SampleOptions = StyleGANSampleOptions
    InterpolateOptions = StyleGANInterpolateOptions
    figures = {"style-mix": Figure("coarse styles of row seeds mixed with fine styles of column seeds (StyleGAN fig. 3)",
                                   StyleMixOptions)}
    offers = ("sample", "interpolate")
