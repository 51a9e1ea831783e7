"""Convolutional VAE, conditional VAE and beta-VAE.

Kingma & Welling 2014 (VAE), Sohn et al. 2015 (CVAE), Higgins et al. 2017 (beta-VAE).

The encoder halves the image with strided convolutions once per entry of ``widths``; the
decoder mirrors it with transposed convolutions whose output padding is chosen from the
encoder's recorded sizes, so 28 px (28 -> 14 -> 7 -> 4) works as well as 32 or 64 px.
The decoder outputs logits: images are ``2 * sigmoid(logits) - 1``; the BCE loss reads the
logits directly, which is exact and stable.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gencli.data.base import Batch
from gencli.errors import UserError
from gencli.models.base import ExportedNetwork, ExportSpec, Model, TensorSpec
from gencli.nn.optim import adam
from gencli_vae.declarations import (  # noqa: F401 - declared apart from the networks
    BetaVAEDeclarations,
    BetaVAEHyperparameters,
    CVAEDeclarations,
    CVAESampleOptions,
    VAEDeclarations,
    VAEHyperparameters,
    VAESampleOptions,
)


# ---------------------------------------------------------------- networks
def conv_sizes(size: int, depth: int) -> list[int]:
    """Return the spatial size after each stride-2 conv (kernel 3, padding 1), input first."""
    sizes = [size]
    for _ in range(depth):
        sizes.append((sizes[-1] - 1) // 2 + 1)
    return sizes


def norm_layer(kind: str, channels: int) -> nn.Module:
    """Return the normalisation after a conv: batch norm, group norm (8 groups or fewer), or none."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    return nn.Identity()


def with_label_maps(h: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    """``h`` [N, C, H, W] with the one-hot label appended as K constant channels."""
    return torch.cat([h, onehot[:, :, None, None].expand(-1, -1, *h.shape[2:]).to(h.dtype)], dim=1)


def labelled_forward(layers: nn.Sequential, h: torch.Tensor, onehot: torch.Tensor, conv: type) -> torch.Tensor:
    """Run ``layers``, appending the label maps to the input of every ``conv`` layer."""
    for layer in layers:
        h = layer(with_label_maps(h, onehot) if isinstance(layer, conv) else h)
    return h


class Encoder(nn.Module):
    """Image (+ optional one-hot label) -> (mu, logvar).

    The label joins the dense head; with ``label_maps`` it also enters every convolution as
    constant channels, so each layer can read the image relative to its class.
    """

    def __init__(self, channels: int, size: int, widths: tuple[int, ...], latent_dim: int, num_classes: int = 0,
                 norm: str = "batch", label_maps: bool = False):
        super().__init__()
        self.label_maps = bool(label_maps and num_classes)
        extra = num_classes if self.label_maps else 0
        layers, c_in = [], channels
        for w in widths:
            layers += [nn.Conv2d(c_in + extra, w, 3, stride=2, padding=1), norm_layer(norm, w),
                       nn.LeakyReLU(0.2, inplace=True)]
            c_in = w
        self.features = nn.Sequential(*layers)  # one flat Sequential: the weight names of earlier runs
        last = conv_sizes(size, len(widths))[-1]
        self.head = nn.Linear(c_in * last * last + num_classes, 2 * latent_dim)

    def forward(self, x: torch.Tensor, onehot: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = labelled_forward(self.features, x, onehot, nn.Conv2d) if self.label_maps else self.features(x)
        h = h.flatten(1)
        if onehot is not None:
            h = torch.cat([h, onehot], dim=1)
        mu, logvar = self.head(h).chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)


class Decoder(nn.Module):
    """Latent (+ optional one-hot label) -> image logits, mirroring the encoder.

    The label joins z at the dense layer; with ``label_maps`` it is appended again as constant
    channels before every transposed convolution, so no layer can lose track of the class (with
    the label at the input only, samples of one class drift towards similar-looking ones).
    """

    def __init__(self, channels: int, size: int, widths: tuple[int, ...], latent_dim: int, num_classes: int = 0,
                 norm: str = "batch", label_maps: bool = False):
        super().__init__()
        sizes = conv_sizes(size, len(widths))
        self.label_maps = bool(label_maps and num_classes)
        extra = num_classes if self.label_maps else 0
        self.start = (widths[-1], sizes[-1], sizes[-1])
        self.fc = nn.Linear(latent_dim + num_classes, widths[-1] * sizes[-1] * sizes[-1])
        layers = []
        rev = list(reversed(widths))
        for i, w in enumerate(rev):
            h_in, h_out = sizes[-1 - i], sizes[-2 - i]
            out_pad = h_out - (2 * h_in - 1)
            c_out = rev[i + 1] if i + 1 < len(rev) else channels
            layers.append(nn.ConvTranspose2d(w + extra, c_out, 3, stride=2, padding=1, output_padding=out_pad))
            if i + 1 < len(rev):
                layers += [norm_layer(norm, c_out), nn.LeakyReLU(0.2, inplace=True)]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, onehot: torch.Tensor | None = None) -> torch.Tensor:
        if onehot is not None:
            z = torch.cat([z, onehot], dim=1)
        h = F.leaky_relu(self.fc(z), 0.2).view(-1, *self.start)
        return labelled_forward(self.body, h, onehot, nn.ConvTranspose2d) if self.label_maps else self.body(h)


class FittedPrior(nn.Module):
    """A Gaussian per class (one for an unconditional model) over the training images' codes.

    Ex-post density estimation (Ghosh et al. 2020): the KL term pulls the codes toward N(0, I)
    but never all the way, the less so the smaller beta, and sampling N(0, I) then lands where
    few images were encoded. This keeps the mean and second moment of the encoder's means, class
    by class, as exponential moving averages over the last ``1 / rate`` codes of the class (bias
    corrected, as Adam's moments are, so that a short run's estimate is an average, not a
    shrunken one). They are buffers: they travel with the weights, and a resumed run carries on.
    Sampling maps z ~ N(0, I) through ``transform``: mean_k + A_k z, with A_k A_k^T the class's
    covariance; a class never seen keeps N(0, I).
    """

    def __init__(self, latent_dim: int, classes: int = 1, rate: float = 2e-4) -> None:
        super().__init__()
        self.rate = rate
        self.register_buffer("weight", torch.zeros(classes))
        self.register_buffer("mean", torch.zeros(classes, latent_dim))
        self.register_buffer("second", torch.zeros(classes, latent_dim, latent_dim))

    @torch.no_grad()
    def update(self, codes: torch.Tensor, labels: torch.Tensor | None) -> None:
        codes = codes.detach().double()
        k = self.weight.numel()
        onehot = F.one_hot(labels.long(), k).double() if labels is not None else codes.new_ones(len(codes), 1)
        counts = onehot.sum(0)
        keep = (1 - self.rate) ** counts  # the old estimate's share after this batch's codes of each class
        mean = onehot.T @ codes / counts.clamp(min=1)[:, None]
        second = torch.einsum("nk,ni,nj->kij", onehot, codes, codes) / counts.clamp(min=1)[:, None, None]
        new = 1 - keep
        self.weight.copy_(self.weight * keep + new)
        self.mean.copy_(self.mean * keep[:, None] + mean * new[:, None])
        self.second.copy_(self.second * keep[:, None, None] + second * new[:, None, None])

    def affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Each class's mean [K, d] and a square root A_k of its covariance [K, d, d] (float32)."""
        seen = self.weight > 0
        w = self.weight.double().clamp(min=1e-12)
        mean = self.mean.double() / w[:, None]
        cov = self.second.double() / w[:, None, None] - mean[:, :, None] * mean[:, None, :]
        values, vectors = torch.linalg.eigh(0.5 * (cov + cov.transpose(1, 2)))
        scale = vectors * values.clamp(min=1e-8).sqrt()[:, None, :]  # A_k = V_k sqrt(L_k)
        eye = torch.eye(mean.shape[1], dtype=torch.float64, device=mean.device)
        scale = torch.where(seen[:, None, None], scale, eye)
        mean = torch.where(seen[:, None], mean, torch.zeros_like(mean))
        return mean.float(), scale.float()

    def transform(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Codes of the fitted prior from z ~ N(0, I): mean_k + A_k z for each z's class k."""
        return PriorAffine(*self.affine())(z, labels)


class PriorAffine(nn.Module):
    """z -> mean_k + A_k z with fixed tensors: the fitted prior as ``gencli export`` writes it."""

    def __init__(self, mean: torch.Tensor, scale: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("scale", scale)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None:
            return self.mean[0] + z.float() @ self.scale[0].T
        index = labels.long()
        return self.mean[index] + torch.einsum("nij,nj->ni", self.scale[index], z.float())


# ---------------------------------------------------------------- losses
def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) in nats, summed over latent dimensions, averaged over the batch."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)).mean()


def reconstruction_loss(logits: torch.Tensor, x: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-image reconstruction loss summed over pixels, averaged over the batch (x in [-1, 1]).

    ``gaussian`` is the calibrated Gaussian decoder of Rybkin et al. 2021 (sigma-VAE): the
    negative log-likelihood under N(mean, sigma^2) with the one sigma that fits the batch best,
    sigma^2 = its mean squared error (kept above e^-12). Its weight against the KL term grows as the
    reconstructions improve, where BCE's or a fixed sigma's stays put and settles for blur.
    """
    target = (x + 1) / 2
    if kind == "bce":
        per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    elif kind == "gaussian":
        squared = (torch.sigmoid(logits) - target).pow(2)
        log_sigma = (0.5 * squared.mean().log()).clamp(min=-6.0)
        per_pixel = 0.5 * squared / (2 * log_sigma).exp() + log_sigma + 0.5 * math.log(2 * math.pi)
    else:
        per_pixel = (torch.sigmoid(logits) - target).pow(2)
    return per_pixel.flatten(1).sum(dim=1).mean()


# ---------------------------------------------------------------- model
class VAE(VAEDeclarations, Model):
    name = "vae"
    summary = "convolutional VAE (BCE or MSE reconstruction, KL weight beta)"
    data = "images"
    test_overrides = {"widths": (8, 16), "latent_dim": 4}

    @classmethod
    def check_shape(cls, image_size: int, channels: int) -> None:
        super().check_shape(image_size, channels)
        if image_size < 8:
            raise UserError(f"{cls.name} needs images of at least 8 px, got {image_size}")

    @classmethod
    def fit_to_data(cls, hp, data, given: frozenset[str]):
        """A new conditional run puts the label into every convolution (see ``label_maps``)."""
        if cls.conditional and "label_maps" not in given and hp.label_maps is None:
            hp.label_maps = True
        return hp, []

    @property
    def label_dim(self) -> int:
        return self.num_classes if self.conditional else 0

    def build_networks(self) -> dict[str, nn.Module]:
        hp, c, s = self.hp, self.channels, self.image_size
        nets = {
            "encoder": Encoder(c, s, tuple(hp.widths), hp.latent_dim, self.label_dim, hp.norm, bool(hp.label_maps)),
            "decoder": Decoder(c, s, tuple(hp.widths), hp.latent_dim, self.label_dim, hp.norm, bool(hp.label_maps)),
        }
        if hp.prior == "fitted":
            nets["prior"] = FittedPrior(hp.latent_dim, self.num_classes if self.conditional else 1)
        return nets

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        params = [p for net in self.nets.values() for p in net.parameters()]
        return {"vae": adam(params, lr=self.hp.lr)}

    # -- helpers
    def onehot(self, labels: torch.Tensor | None) -> torch.Tensor | None:
        if not self.conditional:
            return None
        if labels is None:
            raise UserError(f"model {self.name!r} needs labels")
        return F.one_hot(labels.long(), self.num_classes).float()

    def kl_weight(self, kl: torch.Tensor) -> torch.Tensor | float:
        """Return the weight of the KL term for this step (ControlVAE overrides this)."""
        return self.hp.beta

    def forward_losses(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Return recon, kl and the encoder's means (``codes``) for one batch (no update)."""
        onehot = self.onehot(batch.labels)
        mu, logvar = self.nets["encoder"](batch.images, onehot)
        z = mu + self.randn_like(mu) * (0.5 * logvar).exp()
        logits = self.nets["decoder"](z, onehot)
        return {
            "recon": reconstruction_loss(logits.float(), batch.images, self.hp.recon),
            "kl": kl_divergence(mu.float(), logvar.float()),
            "codes": mu.detach().float(),
        }

    # -- the train step
    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        with self.autocast():
            terms = self.forward_losses(batch)
        beta = self.kl_weight(terms["kl"].detach())
        loss = terms["recon"] + beta * terms["kl"]
        self.optimize("vae", loss)
        if "prior" in self.nets:  # prior=fitted: this batch's codes join their classes' Gaussians
            self.nets["prior"].update(terms["codes"], batch.labels if self.conditional else None)
        out = {"loss": loss.detach(), "recon": terms["recon"].detach(), "kl": terms["kl"].detach()}
        if torch.is_tensor(beta) or beta != 1.0:
            out["beta"] = torch.as_tensor(beta, dtype=torch.float32).detach()
        return out

    # -- capabilities
    def latents(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.hp.latent_dim, generator=generator).to(self.device)

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images from z ~ N(0, I): decoded as they are, or through the fitted prior (``prior=fitted``)."""
        if "prior" in self.nets:
            z = self.nets["prior"].transform(z.to(self.device), labels.to(self.device) if labels is not None else None)
        return self.decode(z, labels)

    def sample(self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None,
               temperature: float | None = None) -> torch.Tensor:
        if temperature is None:  # called without options (training previews, other code): the declared default
            temperature = self.SampleOptions().temperature
        if self.conditional and labels is None:
            labels = torch.randint(0, self.num_classes, (n,), generator=generator)
        if labels is not None:
            labels = labels.to(self.device)
        # Codes far out in the prior's tails fall where few training images were encoded: the
        # decoder's output there is a blend of classes. A temperature below 1 keeps to the core.
        return self.generate(self.latents(n, generator) * temperature, labels)

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        mu, _ = self.nets["encoder"](x.to(self.device), self.onehot(labels))
        return mu

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.nets["decoder"](z.to(self.device), self.onehot(labels))
        return torch.sigmoid(logits.float()) * 2 - 1

    def reconstruct(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.encode(x, labels), labels)

    # -- export
    def export_module(self, direction: str | None = None) -> tuple[nn.Module, ExportSpec]:
        """Return the decoder for `gencli export`: codes z ~ N(0, I) (and class indices) -> images in [-1, 1]."""
        decoder, k = self.nets["decoder"], self.num_classes if self.conditional else 0
        prior = PriorAffine(*self.nets["prior"].affine()) if "prior" in self.nets else None

        def decode(z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
            if prior is not None:
                z = prior(z, labels)
            onehot = F.one_hot(labels.long(), k).float() if k else None
            return torch.sigmoid(decoder(z, onehot).float()) * 2 - 1

        inputs = [TensorSpec("z", ("N", self.hp.latent_dim), help="latent code; the prior is z ~ N(0, I)")]
        example: tuple[torch.Tensor, ...] = (torch.randn(2, self.hp.latent_dim, device=self.device),)
        if k:
            inputs.append(TensorSpec("labels", ("N",), "int64", (0, k - 1), "class index of each image"))
            example += (torch.arange(2, device=self.device) % k,)
        notes = [f"gencli samples with z scaled by a temperature ({self.SampleOptions().temperature} by default); "
                 "scale z yourself to do the same"]
        images = TensorSpec("images", ("N", *self.image_shape), range=(-1, 1), help="decoded images")
        if prior is not None:
            notes.append("the fitted prior (prior=fitted) is part of the network: it maps z ~ N(0, I) to the "
                         "training codes' Gaussian of each image's class before decoding")
        networks = {"decoder": decoder, **({"prior": prior} if prior is not None else {})}
        return (ExportedNetwork(decode, **networks),
                ExportSpec("the decoder, with the prior z ~ N(0, I) drawn by the caller", inputs, images, example, notes))


class CVAE(CVAEDeclarations, VAE):
    name = "cvae"
    summary = "conditional VAE: encoder and decoder see the one-hot label"
    data = "labelled"


class BetaVAE(BetaVAEDeclarations, VAE):
    name = "beta-vae"
    summary = "VAE with a KL weight beta > 1 for disentangled latents (Higgins et al. 2017)"
