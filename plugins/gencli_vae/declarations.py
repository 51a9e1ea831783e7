"""What the VAE family's models declare, apart from their networks: no torch here.

The hyperparameter and option dataclasses, and one ``ModelDeclarations`` class per model (its
training defaults, options, figures and capabilities), which the model class in ``vae.py``,
``controlvae.py`` or ``vqvae.py`` inherits. `gencli models --info` and shell completion read
these without importing the networks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gencli.models.declarations import Hyperparameters, ModelDeclarations, Options, TrainDefaults
from gencli.models.hparams import require


# ---------------------------------------------------------------- vae, cvae, beta-vae
@dataclass
class VAEHyperparameters(Hyperparameters):
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate"})
    latent_dim: int = field(default=16, metadata={"help": "latent size (2 gives the 2-D latent figures)"})
    beta: float = field(default=1.0, metadata={"help": "KL weight (1 = the VAE bound; > 1 = beta-VAE)"})
    recon: Literal["bce", "mse", "gaussian"] = field(default="bce", metadata={
        "help": "reconstruction loss: bce, mse, or gaussian (a calibrated Gaussian decoder, Rybkin et al. 2021)"})
    widths: tuple[int, ...] = field(default=(32, 64, 128), metadata={"help": "encoder widths, one stride-2 conv each"})
    norm: Literal["batch", "group", "none"] = field(default="batch", metadata={"help": "normalisation after each conv"})
    # Unset means the layout of runs recorded before this option existed (the label in the dense
    # layers only), so they still load; `gencli train` sets it on for every new conditional run.
    label_maps: bool | None = field(default=None, metadata={
        "help": "conditional models: the one-hot label also enters every convolution as constant channels "
                "(unset: on for new runs; earlier runs: dense layers only)"})

    prior: Literal["standard", "fitted"] = field(default="standard", metadata={
        "help": "where sampling draws codes: standard = N(0, I); fitted = a Gaussian fitted to the training "
                "images' codes while training, one per class for conditional models (ex-post density "
                "estimation, Ghosh et al. 2020; best with a small beta)"})

    def validate(self) -> None:
        require(self.lr > 0, f"lr must be > 0, got {self.lr}")
        require(self.latent_dim >= 1, f"latent_dim must be >= 1, got {self.latent_dim}")
        require(self.beta >= 0, f"beta must be >= 0, got {self.beta}")
        require(len(self.widths) >= 1 and all(w >= 1 for w in self.widths), "widths must be positive integers")


@dataclass
class VAESampleOptions(Options):
    """`gencli sample RUN --set key=value` (and `gencli eval`)."""

    temperature: float = field(default=1.0, metadata={
        "help": "scale of the prior's z ~ N(0, I) when sampling (1 = the model's prior; below 1: cleaner, less varied)"})

    def validate(self) -> None:
        require(self.temperature > 0, f"temperature must be > 0, got {self.temperature}")


class VAEDeclarations(ModelDeclarations):
    Hyperparameters = VAEHyperparameters
    SampleOptions = VAESampleOptions
    defaults = TrainDefaults(image_size=32, channels=3, batch_size=64, steps=1200, sample_every=100, checkpoint_every=400)
    offers = ("sample", "encode", "decode", "reconstruct", "interpolate")


@dataclass
class CVAESampleOptions(VAESampleOptions):
    """`gencli sample RUN --set key=value` (and `gencli eval`) for the conditional VAE."""

    # 0.6, measured on 1,437 handwritten digits (benchmarks/bench_quality.py, 880 steps): every
    # class read right at least 97% of the time (worst 79% at 1.0), for an FID 5% higher (49.2 against 46.7).
    temperature: float = field(default=0.6, metadata={
        "help": "scale of the prior's z ~ N(0, I) when sampling (1 = the model's prior; below 1: images that "
                "fit their label more surely, less varied)"})


class CVAEDeclarations(VAEDeclarations):
    conditional = True
    SampleOptions = CVAESampleOptions


@dataclass
class BetaVAEHyperparameters(VAEHyperparameters):
    beta: float = field(default=4.0, metadata={"help": "KL weight; Higgins et al. 2017 use beta > 1 (4 on dSprites)"})


class BetaVAEDeclarations(VAEDeclarations):
    Hyperparameters = BetaVAEHyperparameters


# ---------------------------------------------------------------- controlvae
@dataclass
class ControlVAEHyperparameters(VAEHyperparameters):
    kl_target: float = field(
        default=14.0,
        metadata={"help": "KL set point in nats the controller holds (Shao et al. 2020; 8-14 suit MNIST-like data)"},
    )
    kp: float = field(default=0.01, metadata={"help": "proportional gain Kp (Shao et al. 2020)"})
    ki: float = field(default=0.001, metadata={"help": "integral gain Ki (Shao et al. 2020)"})
    beta_min: float = field(default=1.0, metadata={"help": "lower bound of the KL weight beta"})
    beta_max: float = field(default=50.0, metadata={"help": "upper bound of the KL weight beta"})
    beta: float = field(
        default=1.0, metadata={"help": "not used: the controller sets beta (see kl_target, beta_min, beta_max)"}
    )

    def validate(self) -> None:
        super().validate()
        require(self.kl_target > 0, f"kl_target must be > 0 nats, got {self.kl_target}")
        require(self.kp >= 0, f"kp must be >= 0, got {self.kp}")
        require(self.ki > 0, f"ki must be > 0 (the integral term drives the KL to its target), got {self.ki}")
        require(self.beta_min >= 0, f"beta_min must be >= 0, got {self.beta_min}")
        require(
            self.beta_min < self.beta_max,
            f"beta bounds are reversed or empty: beta_min={self.beta_min} must be below beta_max={self.beta_max}",
        )
        require(self.beta == 1.0, "controlvae sets beta itself each step; set kl_target, beta_min or beta_max instead")


class ControlVAEDeclarations(VAEDeclarations):
    Hyperparameters = ControlVAEHyperparameters
    defaults = TrainDefaults(image_size=32, channels=3, batch_size=64, steps=1200, sample_every=100, checkpoint_every=400)


# ---------------------------------------------------------------- vqvae
@dataclass
class VQVAEHyperparameters(Hyperparameters):
    lr: float = field(default=2e-4, metadata={"help": "Adam learning rate (van den Oord et al. 2017)"})
    codebook_size: int = field(default=512, metadata={"help": "number of codes K (van den Oord et al. 2017)"})
    code_dim: int = field(default=64, metadata={"help": "dimension D of each code (van den Oord et al. 2017)"})
    beta: float = field(default=0.25, metadata={"help": "commitment loss weight beta (van den Oord et al. 2017)"})
    hidden: int = field(
        default=64, metadata={"help": "encoder/decoder width (the paper uses 256; 64 keeps CPU runs short)"}
    )
    res_hidden: int = field(default=32, metadata={"help": "hidden width inside each residual block"})
    res_blocks: int = field(default=2, metadata={"help": "residual blocks in encoder and decoder (paper: 2)"})
    downsamples: int = field(default=2, metadata={"help": "stride-2 convolutions; the code grid is size / 2**downsamples"})
    ema: bool = field(default=False, metadata={"help": "update the codebook by moving averages instead of the codebook loss"})
    ema_decay: float = field(default=0.99, metadata={"help": "decay of the EMA codebook updates (paper appendix: 0.99)"})
    restart_after: int = field(
        default=20, metadata={"help": "re-initialise codes unused for this many steps from encoder outputs (0: never)"}
    )

    def validate(self) -> None:
        require(self.lr > 0, f"lr must be > 0, got {self.lr}")
        require(self.codebook_size >= 2, f"codebook_size must be >= 2, got {self.codebook_size}")
        require(self.code_dim >= 1, f"code_dim must be >= 1, got {self.code_dim}")
        require(self.beta >= 0, f"beta (the commitment weight) must be >= 0, got {self.beta}")
        require(self.hidden >= 2 and self.res_hidden >= 1, "hidden must be >= 2 and res_hidden >= 1")
        require(self.res_blocks >= 0, f"res_blocks must be >= 0, got {self.res_blocks}")
        require(1 <= self.downsamples <= 5, f"downsamples must be between 1 and 5, got {self.downsamples}")
        require(0 < self.ema_decay < 1, f"ema_decay must be between 0 and 1, got {self.ema_decay}")
        require(self.restart_after >= 0, f"restart_after must be >= 0, got {self.restart_after}")


class VQVAEDeclarations(ModelDeclarations):
    Hyperparameters = VQVAEHyperparameters
    defaults = TrainDefaults(image_size=32, channels=3, batch_size=32, steps=600, sample_every=100, checkpoint_every=200)
    offers = ("encode", "decode", "reconstruct")


# ---------------------------------------------------------------- vqvae-prior
@dataclass
class VQVAEPriorHyperparameters(Hyperparameters):
    from_run: str = field(default="", metadata={"help": "the trained vqvae run whose codes the prior models (--from RUN)"})
    lr: float = field(default=3e-4, metadata={"help": "Adam learning rate"})
    channels: int = field(default=32, metadata={"help": "feature maps of the gated PixelCNN (small: code grids are small)"})
    layers: int = field(
        default=6, metadata={"help": "gated layers (van den Oord et al. 2016 use 15 on 32x32 pixels)"}
    )
    kernel: int = field(default=5, metadata={"help": "odd kernel width; each layer sees kernel // 2 more rows above"})
    vqvae_settings: str = field(
        default="",
        metadata={"help": "filled in from --from RUN: the VQ-VAE's settings, so a trained prior loads on its own"},
    )

    def validate(self) -> None:
        require(
            bool(self.from_run or self.vqvae_settings),
            "vqvae-prior needs a trained vqvae: `gencli train vqvae-prior --from RUN`",
        )
        require(self.lr > 0, f"lr must be > 0, got {self.lr}")
        require(self.channels >= 1, f"channels must be >= 1, got {self.channels}")
        require(self.layers >= 1, f"layers must be >= 1, got {self.layers}")
        require(self.kernel >= 3 and self.kernel % 2 == 1, f"kernel must be odd and >= 3, got {self.kernel}")


@dataclass
class PriorSampleOptions(Options):
    """`gencli sample RUN --set key=value` (and `gencli eval`)."""

    temperature: float = field(default=1.0, metadata={"help": "softmax temperature of each code (below 1: safer, less varied)"})

    def validate(self) -> None:
        require(self.temperature > 0, f"temperature must be > 0, got {self.temperature}")


class VQVAEPriorDeclarations(ModelDeclarations):
    Hyperparameters = VQVAEPriorHyperparameters
    defaults = TrainDefaults(image_size=32, channels=3, batch_size=32, steps=600, sample_every=200, checkpoint_every=200)
    SampleOptions = PriorSampleOptions
    offers = ("sample",)
