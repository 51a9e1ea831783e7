"""What the DDPM model declares, apart from its networks: no torch here.

Its hyperparameter dataclass, the options of `gencli sample` and `gencli interpolate`, the
forward-noising figure, and ``DDPMDeclarations`` (training defaults, options, figures and
capabilities), which ``gencli_diffusion.ddpm.DDPM`` inherits. `gencli models --info` and shell
completion read these without importing the networks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import ClassVar, Literal

from gencli.models.declarations import Figure, Hyperparameters, ModelDeclarations, Options, TrainDefaults
from gencli.models.hparams import require


@dataclasses.dataclass
class DDPMHyperparameters(Hyperparameters):
    """DDPM's CIFAR-10 settings (Ho et al. 2020, appendix B) except the network size, which is
    small by default so a CPU trains it in minutes; ``examples/ddpm-cifar10.toml`` restores it."""

    lr: float = field(default=2e-4, metadata={"help": "Adam learning rate (Ho et al. 2020: 2e-4)"})
    timesteps: int = field(default=1000, metadata={"help": "diffusion steps T (Ho et al. 2020: 1000)"})
    schedule: Literal["linear", "cosine"] = field(
        default="linear", metadata={"help": "noise schedule: linear (Ho et al.) or cosine (Nichol & Dhariwal 2021)"})
    beta_start: float = field(
        default=1e-4, metadata={"help": "first beta of the linear schedule at T = 1000 (scaled by 1000 / T)"})
    beta_end: float = field(
        default=0.02, metadata={"help": "last beta of the linear schedule at T = 1000 (scaled by 1000 / T)"})
    prediction: Literal["epsilon", "v"] = field(
        default="epsilon", metadata={"help": "training target: the noise (Ho et al.) or v (Salimans & Ho 2022)"})
    base_width: int = field(default=32, metadata={"help": "channels of the first U-Net level (Ho et al.: 128)"})
    channel_mults: tuple[int, ...] = field(
        default=(1, 2), metadata={"help": "width multiplier per U-Net level (Ho et al. at 32 px: 1,2,2,2)"})
    res_blocks: int = field(default=1, metadata={"help": "residual blocks per level (Ho et al.: 2)"})
    attention_levels: tuple[int, ...] = field(
        default=(1,), metadata={"help": "levels (0 = full resolution) with self-attention; the middle block always "
                                        "has it (Ho et al.: 1, the 16 px level at 32 px)"})
    attention_heads: int = field(default=1, metadata={"help": "heads of each self-attention layer (Ho et al.: 1)"})
    dropout: float = field(default=0.1, metadata={"help": "dropout in residual blocks (Ho et al. on CIFAR-10: 0.1)"})
    label_dropout: float = field(
        default=0.1, metadata={"help": "fraction of labels replaced by the null label (Ho & Salimans 2022: 0.1)"})
    ema_decay: float = field(
        default=0.9999, metadata={"help": "EMA decay of the sampling weights (Ho et al.: 0.9999), ramped up early"})
    grad_clip: float = field(
        default=1.0, metadata={"help": "clip the gradient's global norm to this; 0 turns clipping off (Ho et al.: 1)"})
    warmup_steps: int = field(
        default=0, metadata={"help": "steps of linear learning-rate warmup (Ho et al.: 5000)"})
    sampling_steps: int = field(
        default=50, metadata={"help": "sampling steps when `sample --set steps=N` does not say (DDIM below T, DDPM at T)"})
    eta: float = field(
        default=0.0, metadata={"help": "DDIM noise: 0 deterministic, 1 ancestral (Song et al. 2021)"})
    guidance: float = field(
        default=2.0, metadata={"help": "guidance scale w when a label is given: 0 unconditional, 1 conditional, "
                                       ">1 guided (Ho & Salimans's w is this minus 1)"})
    clip_denoised: bool = field(
        default=True, metadata={"help": "clamp each predicted clean image to [-1, 1] while sampling"})

    def validate(self) -> None:
        require(self.lr > 0, f"lr must be positive, got {self.lr}")
        require(self.timesteps >= 1, f"timesteps must be at least 1, got {self.timesteps}")
        require(0 < self.beta_start < self.beta_end < 1,
                f"need 0 < beta_start < beta_end < 1, got {self.beta_start} and {self.beta_end}")
        require(self.base_width >= 1, f"base_width must be at least 1, got {self.base_width}")
        require(len(self.channel_mults) >= 1 and all(m >= 1 for m in self.channel_mults),
                f"channel_mults must be one or more positive integers, got {self.channel_mults}")
        require(self.res_blocks >= 1, f"res_blocks must be at least 1, got {self.res_blocks}")
        levels = len(self.channel_mults)
        bad = [level for level in self.attention_levels if not 0 <= level < levels]
        require(not bad, f"attention_levels {bad} do not exist: the U-Net has levels 0..{levels - 1}")
        require(self.attention_heads >= 1, f"attention_heads must be at least 1, got {self.attention_heads}")
        widths = {self.base_width * self.channel_mults[level] for level in (*self.attention_levels, levels - 1)}
        require(all(w % self.attention_heads == 0 for w in widths),
                f"attention_heads {self.attention_heads} must divide the attention widths {sorted(widths)}")
        require(0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}")
        require(0 <= self.label_dropout <= 1, f"label_dropout must be in [0, 1], got {self.label_dropout}")
        require(0 <= self.ema_decay < 1, f"ema_decay must be in [0, 1), got {self.ema_decay}")
        require(self.grad_clip >= 0, f"grad_clip must be 0 or more, got {self.grad_clip}")
        require(self.warmup_steps >= 0, f"warmup_steps must be 0 or more, got {self.warmup_steps}")
        require(1 <= self.sampling_steps <= self.timesteps,
                f"sampling_steps must be between 1 and timesteps ({self.timesteps}), got {self.sampling_steps}")
        require(0 <= self.eta <= 1, f"eta must be in [0, 1], got {self.eta}")
        require(self.guidance >= 0, f"guidance must be 0 or more, got {self.guidance}")


@dataclasses.dataclass
class DDPMSampleOptions(Options):
    """`gencli sample RUN --set key=value` (and `gencli eval`)."""

    steps: int | None = field(default=None, metadata={"help": "sampling steps (default: sampling_steps; all T with sampler=ddpm)"})
    guidance: float | None = field(default=None, metadata={"help": "classifier-free guidance w (default: the guidance hyperparameter; 1 = none)"})
    eta: float | None = field(default=None, metadata={"help": "DDIM noise: 0 deterministic, 1 like DDPM (default: the eta hyperparameter)"})
    sampler: Literal["ddim", "ddpm"] | None = field(default=None, metadata={"help": "ddim, or ddpm over all T steps (default: ddim)"})

    def validate(self) -> None:
        require(self.guidance is None or self.guidance >= 0, f"guidance must be 0 or more, got {self.guidance}")
        require(self.eta is None or 0 <= self.eta <= 1, f"eta must be between 0 and 1, got {self.eta}")


@dataclasses.dataclass
class DDPMInterpolateOptions(Options):
    """`gencli interpolate RUN --set key=value`: deterministic DDIM from each interpolated noise."""

    steps: int | None = field(default=None, metadata={"help": "DDIM steps per image (default: sampling_steps)"})
    guidance: float | None = field(default=None, metadata={"help": "classifier-free guidance w (default: the guidance hyperparameter)"})

    def validate(self) -> None:
        require(self.guidance is None or self.guidance >= 0, f"guidance must be 0 or more, got {self.guidance}")


@dataclasses.dataclass
class ForwardNoiseOptions(Options):
    """`gencli sample RUN --figure forward-noise --set key=value`."""

    timesteps: tuple[int, ...] = field(default=(), metadata={"help": "the columns: steps t from 0 (clean) to T (default: 8 from 0 to T)"})


class DDPMDeclarations(ModelDeclarations):
    Hyperparameters: ClassVar[type] = DDPMHyperparameters
    # About a minute on two CPU cores; diffusion needs far longer to draw clean shapes.
    defaults: ClassVar[TrainDefaults] = TrainDefaults(
        image_size=32, channels=3, batch_size=16, steps=150, sample_every=75, checkpoint_every=150)
    # Conditional whenever it was trained on labelled data; ``num_classes == 0`` means unconditional.
    conditional: ClassVar[bool] = True
    SampleOptions: ClassVar[type] = DDPMSampleOptions
    InterpolateOptions: ClassVar[type] = DDPMInterpolateOptions
    figures: ClassVar[dict[str, Figure]] = {
        "forward-noise": Figure("held-out images noised by the forward process at several steps t (one row each)",
                                ForwardNoiseOptions, needs_data=True),
    }
    offers = ("sample", "interpolate")
