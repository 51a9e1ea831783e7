"""What the translation family's models declare, apart from their networks: no torch here.

The hyperparameter dataclasses of CycleGAN and pix2pix, and one ``ModelDeclarations`` class per
model (training defaults and capabilities), which the model class inherits. `gencli models
--info` and shell completion read these without importing the networks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import ClassVar, Literal

from gencli.models.declarations import Hyperparameters, ModelDeclarations, TrainDefaults
from gencli.models.hparams import require

GanMode = Literal["lsgan", "ns"]

NormKind = Literal["batch", "instance", "none"]


@dataclasses.dataclass
class CycleGANHyperparameters(Hyperparameters):
    """CycleGAN's hyperparameters; defaults from Zhu et al. 2017 and its reference code."""

    lr: float = field(default=2e-4, metadata={"help": "Adam learning rate of all four networks (paper: 0.0002)"})
    beta1: float = field(default=0.5, metadata={"help": "Adam beta1 (paper: 0.5)"})
    beta2: float = field(default=0.999, metadata={"help": "Adam beta2 (paper: 0.999)"})
    lambda_cycle: float = field(default=10.0, metadata={
        "help": "weight of the cycle-consistency L1 losses (paper: 10)"})
    lambda_identity: float = field(default=0.5, metadata={
        "help": "weight of the identity L1 losses, as a fraction of lambda_cycle (paper: 0.5; 0 turns them off)"})
    gan_mode: GanMode = field(default="lsgan", metadata={
        "help": "adversarial loss: 'lsgan' least squares (paper) or 'ns' logistic"})
    pool_size: int = field(default=50, metadata={
        "help": "generated images kept for the discriminators (paper: 50; 0 turns the pool off)"})
    ngf: int | None = field(default=None, metadata={
        "help": "generator base width (paper: 64; unset: 64 from 128 px, 32 at 64 px, 16 below)"})
    ndf: int | None = field(default=None, metadata={
        "help": "discriminator base width (paper: 64; unset: as ngf)"})
    blocks: int | None = field(default=None, metadata={
        "help": "residual blocks per generator (paper: 9 at 256 px, 6 at 128 px and below; unset: by size)"})
    d_layers: int | None = field(default=None, metadata={
        "help": "PatchGAN stride-2 layers (paper: 3, 70x70 patches; unset: 3, fewer below 32 px)"})
    norm: NormKind = field(default="instance", metadata={
        "help": "normalisation layers: 'instance' (paper), 'batch' or 'none'"})
    dropout: float = field(default=0.0, metadata={"help": "dropout inside the residual blocks (paper: none)"})
    load_size: int | None = field(default=None, metadata={
        "help": "size images are loaded at before random crops (paper: 286 for 256; unset: image size * 286/256)"})
    constant_steps: int = field(default=100_000, metadata={
        "help": "steps at the initial learning rate (paper: 100 epochs, about 100k steps at batch 1 on ~1k images)"})
    decay_steps: int = field(default=100_000, metadata={
        "help": "steps of linear decay of the learning rate to zero after the constant phase (paper: 100 epochs)"})

    def validate(self) -> None:
        require(self.lr > 0, f"lr must be positive, got {self.lr}")
        require(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, "Adam betas beta1 and beta2 must be in [0, 1)")
        require(self.lambda_cycle >= 0, f"lambda_cycle must be at least 0, got {self.lambda_cycle}")
        require(self.lambda_identity >= 0, f"lambda_identity must be at least 0, got {self.lambda_identity}")
        require(self.pool_size >= 0, f"pool_size must be at least 0, got {self.pool_size}")
        for key in ("ngf", "ndf", "d_layers"):
            value = getattr(self, key)
            require(value is None or value >= 1, f"{key} must be at least 1, got {value}")
        require(self.blocks is None or self.blocks >= 0, f"blocks must be at least 0, got {self.blocks}")
        require(0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}")
        require(self.constant_steps >= 0, f"constant_steps must be at least 0, got {self.constant_steps}")
        require(self.decay_steps >= 0, f"decay_steps must be at least 0, got {self.decay_steps}")


class CycleGANDeclarations(ModelDeclarations):
    Hyperparameters: ClassVar[type] = CycleGANHyperparameters
    defaults = TrainDefaults(image_size=32, channels=3, batch_size=4, steps=300, sample_every=50, checkpoint_every=100)
    offers = ("translate",)


@dataclasses.dataclass
class Pix2PixHyperparameters(Hyperparameters):
    """pix2pix's hyperparameters; defaults from Isola et al. 2017 and its reference code."""

    lr: float = field(default=2e-4, metadata={"help": "Adam learning rate of G and D (paper: 0.0002)"})
    beta1: float = field(default=0.5, metadata={"help": "Adam beta1 (paper: 0.5)"})
    beta2: float = field(default=0.999, metadata={"help": "Adam beta2 (paper: 0.999)"})
    lambda_l1: float = field(default=100.0, metadata={"help": "weight of the L1 loss to the target (paper: 100)"})
    gan_mode: GanMode = field(default="ns", metadata={
        "help": "adversarial loss: 'ns' logistic (paper) or 'lsgan' least squares"})
    direction: Literal["AtoB", "BtoA"] = field(default="AtoB", metadata={
        "help": "which side of each pair is the input: 'AtoB' (A -> B) or 'BtoA' (B -> A)"})
    ngf: int | None = field(default=None, metadata={
        "help": "generator base width (paper: 64; unset: 64 from 128 px, 32 at 64 px, 16 below)"})
    ndf: int | None = field(default=None, metadata={"help": "discriminator base width (paper: 64; unset: as ngf)"})
    depth: int | None = field(default=None, metadata={
        "help": "U-Net downsamplings (paper: 8 at 256 px; unset: log2 of the image size, at most 8)"})
    d_layers: int | None = field(default=None, metadata={
        "help": "PatchGAN stride-2 layers (paper: 3, 70x70 patches; unset: 3, fewer below 32 px)"})
    norm: NormKind = field(default="batch", metadata={
        "help": "normalisation layers: 'batch' (paper), 'instance' or 'none'"})
    dropout: float = field(default=0.5, metadata={
        "help": "dropout rate in the decoder layers after the bottleneck (paper: 0.5)"})
    dropout_layers: int = field(default=3, metadata={"help": "decoder layers with dropout (paper: 3)"})
    load_size: int | None = field(default=None, metadata={
        "help": "size images are loaded at before random crops (paper: 286 for 256; unset: image size * 286/256)"})

    def validate(self) -> None:
        require(self.lr > 0, f"lr must be positive, got {self.lr}")
        require(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, "Adam betas beta1 and beta2 must be in [0, 1)")
        require(self.lambda_l1 >= 0, f"lambda_l1 must be at least 0, got {self.lambda_l1}")
        for key in ("ngf", "ndf", "d_layers"):
            value = getattr(self, key)
            require(value is None or value >= 1, f"{key} must be at least 1, got {value}")
        require(self.depth is None or 2 <= self.depth <= 10, f"depth must be between 2 and 10, got {self.depth}")
        require(0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}")
        require(self.dropout_layers >= 0, f"dropout_layers must be at least 0, got {self.dropout_layers}")


class Pix2PixDeclarations(ModelDeclarations):
    Hyperparameters: ClassVar[type] = Pix2PixHyperparameters
    defaults = TrainDefaults(image_size=32, channels=3, batch_size=16, steps=500, sample_every=50, checkpoint_every=250)
    offers = ("translate",)
