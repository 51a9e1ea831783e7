"""A deterministic convolutional autoencoder that samples from a Gaussian fitted to its codes.

The encoder maps an image to a code with stride-2 convolutions and a linear layer; the decoder
maps the code back with a linear layer, nearest-neighbour upsampling and convolutions. Training
minimises the reconstruction error plus a small penalty on the squared norm of the codes, which
keeps them near the origin (the regularised autoencoder of Ghosh et al. 2020, "From Variational
to Deterministic Autoencoders", ICLR).

An autoencoder has no prior to sample from. As Ghosh et al. do after training, this one fits a
Gaussian to the codes of the training images and samples by decoding draws from it; here the fit
is a moving average of each batch's mean and covariance, updated at every step, so that samples
are available at any point of training. The Gaussian's mean and covariance are buffers of a
module in ``nets``: checkpoints save them with the weights and ``--resume`` restores them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from gencli import Batch, Hyperparameters, Model, Options, TrainDefaults, UserError
from gencli.models.hparams import require


# ---------------------------------------------------------------- networks
def halvings(size: int, depth: int) -> list[int]:
    """Return the side of the feature maps before and after each stride-2 convolution, input first."""
    sizes = [size]
    for _ in range(depth):
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


class Encoder(nn.Module):
    """Image -> code: one stride-2 convolution per width, then a linear layer."""

    def __init__(self, channels: int, size: int, widths: tuple[int, ...], latent_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = channels
        for width in widths:
            layers += [nn.Conv2d(c_in, width, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
            c_in = width
        self.features = nn.Sequential(*layers, nn.Flatten())
        side = halvings(size, len(widths))[-1]
        self.to_code = nn.Linear(c_in * side * side, latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_code(self.features(x))


class Decoder(nn.Module):
    """Code -> image in [-1, 1]: the encoder's steps in reverse, upsampling instead of striding."""

    def __init__(self, channels: int, size: int, widths: tuple[int, ...], latent_dim: int) -> None:
        super().__init__()
        sizes = halvings(size, len(widths))
        self.start = (widths[-1], sizes[-1], sizes[-1])
        self.from_code = nn.Linear(latent_dim, widths[-1] * sizes[-1] * sizes[-1])
        c_ins = list(reversed(widths))
        c_outs = c_ins[1:] + [channels]
        targets = list(reversed(sizes[:-1]))
        layers: list[nn.Module] = []
        for i, (c_in, c_out, side) in enumerate(zip(c_ins, c_outs, targets)):
            # Upsampling to the exact side the encoder saw also undoes odd sizes (7 -> 4 -> 7).
            layers += [nn.Upsample(size=(side, side), mode="nearest"), nn.Conv2d(c_in, c_out, 3, padding=1)]
            layers.append(nn.Tanh() if i == len(c_ins) - 1 else nn.ReLU(inplace=True))
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(F.relu(self.from_code(z)).view(-1, *self.start))


class CodeGaussian(nn.Module):
    """A Gaussian over codes whose mean and covariance follow the codes of the training batches."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(latent_dim))
        self.register_buffer("cov", torch.eye(latent_dim))

    @torch.no_grad()
    def update(self, mean: torch.Tensor, cov: torch.Tensor, decay: float) -> None:
        """Move the fit towards a batch's code statistics by ``1 - decay``."""
        # Averaging covariances (rather than second moments) keeps the fit positive semi-definite.
        self.mean.lerp_(mean, 1.0 - decay)
        self.cov.lerp_(cov, 1.0 - decay)

    def draw(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Return ``n`` codes drawn from the fitted Gaussian (noise from ``generator``, on the CPU)."""
        d = self.mean.numel()
        noise = torch.randn(n, d, generator=generator)
        # Cholesky in float64 with a little jitter: codes can be nearly collinear early in training.
        scale = torch.linalg.cholesky(self.cov.detach().cpu().double() + 1e-6 * torch.eye(d, dtype=torch.float64))
        return (self.mean.detach().cpu() + noise @ scale.float().T).to(self.mean.device)


# ---------------------------------------------------------------- losses
def reconstruction_loss(recon: torch.Tensor, x: torch.Tensor, kind: str) -> torch.Tensor:
    """Return the mean per-pixel reconstruction error (images in [-1, 1])."""
    return F.l1_loss(recon, x) if kind == "l1" else F.mse_loss(recon, x)


def code_penalty(codes: torch.Tensor) -> torch.Tensor:
    """Return the batch mean of half the squared norm of the codes (the RAE's L_z)."""
    return 0.5 * codes.pow(2).sum(dim=1).mean()


def batch_statistics(codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the mean and (unbiased) covariance of a batch of codes."""
    mean = codes.mean(dim=0)
    centred = codes - mean
    return mean, centred.T @ centred / max(len(codes) - 1, 1)


# ---------------------------------------------------------------- model
@dataclass
class AutoencoderHyperparameters(Hyperparameters):
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate (Adam's default, Kingma & Ba 2015)"})
    latent_dim: int = field(default=16, metadata={"help": "code size (Ghosh et al. 2020 use 16 on MNIST)"})
    widths: tuple[int, ...] = field(default=(32, 64, 128), metadata={"help": "encoder widths, one stride-2 conv each"})
    loss: Literal["mse", "l1"] = field(default="mse", metadata={"help": "reconstruction error"})
    code_penalty: float = field(
        default=1e-3, metadata={"help": "weight of half the squared code norm, keeping codes near the origin (RAE)"})
    prior_decay: float = field(
        default=0.99, metadata={"help": "decay of the moving averages that fit the sampling Gaussian to the codes"})

    def validate(self) -> None:
        require(self.lr > 0, f"lr must be > 0, got {self.lr}")
        require(self.latent_dim >= 1, f"latent_dim must be >= 1, got {self.latent_dim}")
        require(len(self.widths) >= 1 and all(w >= 1 for w in self.widths), "widths must be positive integers")
        require(self.code_penalty >= 0, f"code_penalty must be >= 0, got {self.code_penalty}")
        require(0 <= self.prior_decay < 1, f"prior_decay must be in [0, 1), got {self.prior_decay}")


@dataclass
class AutoencoderSampleOptions(Options):
    """`gencli sample RUN --set key=value`: how far samples stray from the average code."""

    temperature: float = field(default=1.0, metadata={"help": "scales each code's distance from the mean (below 1: safer samples)"})

    def validate(self) -> None:
        require(self.temperature > 0, f"temperature must be > 0, got {self.temperature}")


class Autoencoder(Model):
    name = "ae"
    summary = "deterministic convolutional autoencoder; samples from a Gaussian fitted to its codes"
    data = "images"
    Hyperparameters = AutoencoderHyperparameters
    SampleOptions = AutoencoderSampleOptions
    defaults = TrainDefaults(image_size=32, channels=3, batch_size=64, steps=600, sample_every=100, checkpoint_every=300)
    # What the conformance kit (gencli.testing) trains with: a tiny network, seconds on a CPU.
    test_overrides = {"widths": (8, 16), "latent_dim": 4}

    @classmethod
    def check_shape(cls, image_size: int, channels: int) -> None:
        super().check_shape(image_size, channels)
        if image_size < 8:
            raise UserError(f"{cls.name} needs images of at least 8 px, got {image_size}")

    def build_networks(self) -> dict[str, nn.Module]:
        hp, c, s = self.hp, self.channels, self.image_size
        return {
            "encoder": Encoder(c, s, tuple(hp.widths), hp.latent_dim),
            "decoder": Decoder(c, s, tuple(hp.widths), hp.latent_dim),
            "prior": CodeGaussian(hp.latent_dim),
        }

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        params = list(self.nets["encoder"].parameters()) + list(self.nets["decoder"].parameters())
        return {"ae": torch.optim.Adam(params, lr=self.hp.lr)}

    def fit_prior(self, codes: torch.Tensor) -> None:
        """Move the sampling Gaussian towards this batch's codes (the same on every process)."""
        mean, cov = batch_statistics(codes.detach().float())
        if self.process_group is not None:
            import torch.distributed as dist

            d = len(mean)
            stats = torch.cat([mean, cov.flatten()])
            dist.all_reduce(stats, group=self.process_group)
            stats /= dist.get_world_size(self.process_group)
            mean, cov = stats[:d], stats[d:].view(d, d)
        self.nets["prior"].update(mean, cov, self.hp.prior_decay)

    # -- the train step
    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        with self.autocast():
            codes = self.nets["encoder"](batch.images)
            recon = self.nets["decoder"](codes)
        error = reconstruction_loss(recon.float(), batch.images, self.hp.loss)
        penalty = code_penalty(codes.float())
        loss = error + self.hp.code_penalty * penalty
        self.optimize("ae", loss)
        self.fit_prior(codes)
        return {"loss": loss.detach(), "recon": error.detach(), "code_norm": penalty.detach()}

    # -- capabilities
    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.nets["encoder"](x.to(self.device))

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.nets["decoder"](z.to(self.device)).float()

    def reconstruct(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.encode(x))

    def latents(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.nets["prior"].draw(n, generator)

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(z)

    def sample(self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        mean = self.nets["prior"].mean
        return self.decode(mean + temperature * (self.latents(n, generator) - mean))
