"""What the GAN family's models declare, apart from their networks: no torch here.

The hyperparameter dataclasses (the stabilisers every GAN shares, the optimizer and loss
settings, each model's architecture), and one ``ModelDeclarations`` class per model (its training
defaults, options and capabilities), which the model class inherits. `gencli models --info` and
shell completion read these without importing the networks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gencli.errors import UserError
from gencli.models.declarations import Hyperparameters, ModelDeclarations, Options, TrainDefaults
from gencli.models.hparams import require


# ---------------------------------------------------------------------------------- shared by the family
# Mixins of fields; a model's hyperparameter class combines the ones that mean something for it.
# Each ``validate`` checks its own fields, then hands over to the next class in the MRO.
def validate_next(cls, self) -> None:
    parent = getattr(super(cls, self), "validate", None)
    if parent is not None:
        parent()


@dataclass
class AdversarialHyperparameters(Hyperparameters):
    """Fields every GAN of the family has: learning rates, latent size, update ratio, stabilisers."""

    lr: float = field(default=2e-4, metadata={"help": "generator learning rate (2e-4: Radford et al. 2016)"})
    lr_d: float | None = field(default=None, metadata={"help": "discriminator learning rate (none: same as lr)"})
    z_dim: int = field(default=100, metadata={"help": "size of the latent vector z ~ N(0, I) (100 in DCGAN)"})
    n_critic: int = field(default=1, metadata={"help": "discriminator (critic) updates per generator update"})
    g_steps: int = field(default=1, metadata={"help": "generator updates per training step"})
    instance_noise: float = field(
        default=0.0, metadata={"help": "std of Gaussian noise added to D's inputs at step 0 (0 = off; ~0.1 helps)"})
    instance_noise_steps: int = field(
        default=2000, metadata={"help": "steps over which the instance noise decays linearly to zero"})
    augment: tuple[str, ...] = field(
        default=(), metadata={"help": "differentiable augmentation of D's inputs: any of color,translation,cutout"})
    ema_decay: float = field(
        default=0.999, metadata={"help": "decay of the generator's moving average used for sampling (0 = raw G)"})

    def validate(self) -> None:
        require(self.lr > 0, f"lr must be > 0, got {self.lr}")
        require(self.lr_d is None or self.lr_d > 0, f"lr_d must be > 0, got {self.lr_d}")
        require(self.z_dim >= 1, f"z_dim must be at least 1, got {self.z_dim}")
        require(self.n_critic >= 1, f"n_critic must be at least 1 (discriminator updates per generator update), got {self.n_critic}")
        require(self.g_steps >= 1, f"g_steps must be at least 1, got {self.g_steps}")
        require(self.instance_noise >= 0, f"instance_noise must be >= 0, got {self.instance_noise}")
        require(self.instance_noise_steps >= 1, f"instance_noise_steps must be at least 1, got {self.instance_noise_steps}")
        require(0 <= self.ema_decay < 1, f"ema_decay must be in [0, 1), got {self.ema_decay}")
        from gencli.nn.augment import parse_augment_policy  # checked when a run is set up, never for a listing

        try:
            parse_augment_policy(self.augment)
        except ValueError as exc:
            raise UserError(f"augment: {exc}") from None
        validate_next(AdversarialHyperparameters, self)


@dataclass
class OptimizerSettings:
    """The optimizer: Adam with DCGAN's beta1 of 0.5 (0.9 oscillated), or RMSprop."""

    optimizer: Literal["adam", "rmsprop"] = field(default="adam", metadata={"help": "optimizer of both networks"})
    beta1: float = field(default=0.5, metadata={"help": "Adam beta1 (0.5: Radford et al. 2016)"})
    beta2: float = field(default=0.999, metadata={"help": "Adam beta2"})

    def validate(self) -> None:
        require(0 <= self.beta1 < 1, f"beta1 must be in [0, 1), got {self.beta1}")
        require(0 <= self.beta2 < 1, f"beta2 must be in [0, 1), got {self.beta2}")
        validate_next(OptimizerSettings, self)


@dataclass
class LossSettings:
    """The adversarial loss of a classic (non-Wasserstein) GAN and its label smoothing."""

    loss: Literal["ns", "hinge", "lsgan"] = field(
        default="ns", metadata={"help": "adversarial loss: ns (non-saturating), hinge or lsgan (least squares)"})
    label_smoothing: float = field(
        default=0.0, metadata={"help": "one-sided label smoothing: real targets 1 - value (0.1 in Salimans et al.)"})

    def validate(self) -> None:
        require(0 <= self.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        validate_next(LossSettings, self)


@dataclass
class GANSampleOptions(Options):
    """`gencli sample RUN --set key=value` (and `gencli eval`)."""

    truncation: float = field(default=1.0, metadata={
        "help": "scale of z ~ N(0, I) when sampling: pulls z toward its average (1 = off; below 1: surer, less varied)"})

    def validate(self) -> None:
        require(0 < self.truncation <= 1, f"truncation must be above 0 and at most 1 (off), got {self.truncation}")


@dataclass
class CGANSampleOptions(GANSampleOptions):
    """`gencli sample RUN --set key=value` (and `gencli eval`) for the conditional GAN."""

    # 0.8, measured on Fashion-MNIST after 10 minutes (benchmarks/RESULTS.md, the league): pullovers,
    # sandals, shirts and sneakers read as their class more often (85 -> 94%, 97 -> 99%, 54 -> 58%,
    # 96 -> 100%), for an FD 12% higher (13.0 against 11.6).
    truncation: float = field(default=0.8, metadata={
        "help": "scale of z ~ N(0, I) when sampling: pulls z toward its average (1 = off; below 1: images that "
                "fit their label more surely, less varied)"})


# ---------------------------------------------------------------------------------- dcgan, wgan, wgan-gp, cgan
Upsample = Literal["transpose", "nearest", "pixelshuffle"]
DiscriminatorNorm = Literal["batch", "layer", "spectral", "none"]


@dataclass
class DCGANArchitecture:
    """Widths and depth of the DCGAN networks, shared by dcgan, wgan, wgan-gp and cgan."""

    g_width: int = field(default=64, metadata={"help": "generator channels at its last hidden layer (doubling inwards)"})
    d_width: int = field(default=64, metadata={"help": "discriminator channels at its first layer (doubling inwards)"})
    depth: int = field(default=0, metadata={
        "help": "extra 3x3 conv layers per resolution in both networks, where g_depth / d_depth are unset"})
    g_depth: int | None = field(default=None, metadata={
        "help": "extra 3x3 conv layers per resolution in the generator (unset: depth)"})
    d_depth: int | None = field(default=None, metadata={
        "help": "extra 3x3 conv layers per resolution in the discriminator (unset: depth)"})
    upsample: Upsample = field(
        default="transpose", metadata={"help": "generator upsampling: transpose, nearest (+conv) or pixelshuffle"})
    d_norm: DiscriminatorNorm = field(default="batch", metadata={"help": "discriminator normalisation"})
    d_dropout: float = field(default=0.0, metadata={"help": "dropout after each discriminator activation"})

    def validate(self) -> None:
        require(self.g_width >= 1, f"g_width must be at least 1, got {self.g_width}")
        require(self.d_width >= 1, f"d_width must be at least 1, got {self.d_width}")
        for key in ("depth", "g_depth", "d_depth"):
            value = getattr(self, key)
            require(value is None or value >= 0, f"{key} must be >= 0, got {value}")
        require(0 <= self.d_dropout < 1, f"d_dropout must be in [0, 1), got {self.d_dropout}")
        validate_next(DCGANArchitecture, self)


@dataclass
class DCGANHyperparameters(DCGANArchitecture, LossSettings, OptimizerSettings, AdversarialHyperparameters):
    """DCGAN (Radford et al. 2016): Adam 2e-4, beta1 0.5, z of 100, batch 128 in the paper."""


class DCGANDeclarations(ModelDeclarations):
    Hyperparameters = DCGANHyperparameters
    SampleOptions = GANSampleOptions
    defaults = TrainDefaults(image_size=32, channels=3, batch_size=64, steps=200, sample_every=20, checkpoint_every=100)
    offers = ("sample", "interpolate")


# ---------------------------------------------------------------------------------- gan
@dataclass
class MLPArchitecture:
    width: int = field(default=1024, metadata={"help": "widest hidden layer (G: 256-512-1024, D: 1024-512-256)"})
    g_depth: int = field(default=3, metadata={"help": "generator hidden layers, widths doubling up to width"})
    d_depth: int = field(default=3, metadata={"help": "discriminator hidden layers, widths halving from width"})
    d_dropout: float = field(default=0.0, metadata={"help": "dropout after each discriminator hidden layer"})

    def validate(self) -> None:
        require(self.width >= 8, f"width must be at least 8, got {self.width}")
        require(self.g_depth >= 1, f"g_depth must be at least 1, got {self.g_depth}")
        require(self.d_depth >= 1, f"d_depth must be at least 1, got {self.d_depth}")
        require(0 <= self.d_dropout < 1, f"d_dropout must be in [0, 1), got {self.d_dropout}")
        validate_next(MLPArchitecture, self)


@dataclass
class MLPGANHyperparameters(MLPArchitecture, LossSettings, OptimizerSettings, AdversarialHyperparameters):
    """FC-GAN: MLP generator 256-512-1024 and discriminator 1024-512-256, Adam 2e-4 beta1 0.5."""


class MLPGANDeclarations(ModelDeclarations):
    Hyperparameters = MLPGANHyperparameters
    SampleOptions = GANSampleOptions
    defaults = TrainDefaults(image_size=32, channels=3, batch_size=64, steps=800, sample_every=40, checkpoint_every=200)
    offers = ("sample", "interpolate")


# ---------------------------------------------------------------------------------- ssgan
@dataclass
class SSGANArchitecture:
    g_width: int = field(default=256, metadata={"help": "generator channels in every residual block (256 in SNGAN/SS-GAN)"})
    d_width: int = field(default=128, metadata={"help": "discriminator channels in every residual block (128 in SNGAN/SS-GAN)"})
    alpha: float = field(default=0.2, metadata={"help": "weight of the rotation loss on fakes in G's loss (0.2)"})
    beta: float = field(default=1.0, metadata={"help": "weight of the rotation loss on reals in D's loss (1.0)"})

    def validate(self) -> None:
        require(self.g_width >= 1, f"g_width must be at least 1, got {self.g_width}")
        require(self.d_width >= 1, f"d_width must be at least 1, got {self.d_width}")
        require(self.alpha >= 0, f"alpha must be >= 0, got {self.alpha}")
        require(self.beta >= 0, f"beta must be >= 0, got {self.beta}")
        validate_next(SSGANArchitecture, self)


@dataclass
class SSGANHyperparameters(SSGANArchitecture, LossSettings, OptimizerSettings, AdversarialHyperparameters):
    """SS-GAN (Chen et al. 2019): non-saturating loss, SN ResNet D, z of 128, rotation weights 0.2 / 1."""

    z_dim: int = field(default=128, metadata={"help": "size of the latent vector z ~ N(0, I) (128 in SS-GAN)"})


class SSGANDeclarations(ModelDeclarations):
    Hyperparameters = SSGANHyperparameters
    SampleOptions = GANSampleOptions
    defaults = TrainDefaults(image_size=32, channels=3, batch_size=16, steps=25, sample_every=5, checkpoint_every=25)
    offers = ("sample", "interpolate")


@dataclass
class WGANHyperparameters(DCGANArchitecture, AdversarialHyperparameters):
    """WGAN (Arjovsky et al. 2017, Algorithm 1): RMSprop 5e-5, clip 0.01, n_critic 5."""

    lr: float = field(default=5e-5, metadata={"help": "RMSprop learning rate of both networks (5e-5 in the paper)"})
    n_critic: int = field(default=5, metadata={"help": "critic updates per generator update (5 in the paper)"})
    clip: float = field(default=0.01, metadata={"help": "critic weights are clipped to [-clip, clip] after each update"})

    def validate(self) -> None:
        require(self.clip > 0, f"clip must be > 0 (the critic's weights are clipped to [-clip, clip]), got {self.clip}")
        validate_next(WGANHyperparameters, self)


class WGANDeclarations(DCGANDeclarations):
    Hyperparameters = WGANHyperparameters
    defaults = TrainDefaults(image_size=32, channels=3, batch_size=32, steps=120, sample_every=10, checkpoint_every=40)


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


class WGANGPDeclarations(DCGANDeclarations):
    Hyperparameters = WGANGPHyperparameters
    defaults = TrainDefaults(image_size=32, channels=3, batch_size=32, steps=80, sample_every=10, checkpoint_every=40)


@dataclass
class CGANHyperparameters(DCGANHyperparameters):
    """DCGAN's, and how the generator reads the label."""

    # Unset means the layout of runs recorded before this option existed, so they still load.
    g_labels: Literal["input", "batchnorm"] | None = field(default=None, metadata={
        "help": "how the generator reads the label: input (one-hot joined to z) or batchnorm (also a class's own "
                "batch-norm gain and bias in every layer; Miyato & Koyama 2018) (unset: input, as earlier runs)"})


class CGANDeclarations(DCGANDeclarations):
    conditional = True
    Hyperparameters = CGANHyperparameters
    SampleOptions = CGANSampleOptions
