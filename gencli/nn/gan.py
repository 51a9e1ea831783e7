"""Building blocks shared by every GAN in gencli: losses, penalties, stabilisers, layers, init.

All losses take raw discriminator outputs (logits, or critic values for the Wasserstein loss)
and return a scalar to minimise. Randomness comes from torch's global generator of the input's
device, so a checkpoint that restores the RNG state resumes the same trajectory.

- Adversarial losses: ``discriminator_loss(kind, ...)`` / ``generator_loss(kind, ...)`` over
  ``LOSSES``: non-saturating ("ns", Goodfellow et al. 2014), hinge (Lim & Ye 2017; Miyato et al.
  2018), least-squares ("lsgan", Mao et al. 2017) and Wasserstein (Arjovsky et al. 2017).
- Penalties: ``gradient_penalty`` on random interpolates (Gulrajani et al. 2017) and
  ``r1_penalty`` on real images (Mescheder et al. 2018).
- Stabilisers: instance noise with a linear decay (Sønderby et al. 2017), one-sided label
  smoothing (Salimans et al. 2016, through ``real_target``), differentiable augmentation of D's
  inputs (Zhao et al. 2020, ``diff_augment``), a frozen EMA copy of the generator
  (``ema_copy`` + ``ema_decay_at`` + ``gencli.models.base.ema_update``).
- Layers and init: spectrally normalised ``sn_conv2d`` / ``sn_linear`` / ``sn_embedding``
  (Miyato et al. 2018) and the initialisation ``init_normal`` of Radford et al. 2016.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

LOSSES = ("ns", "hinge", "lsgan", "wasserstein")


# ---------------------------------------------------------------------------------- losses
def nonsaturating_d_loss(real: torch.Tensor, fake: torch.Tensor, real_target: float = 1.0) -> torch.Tensor:
    """Return the discriminator's binary cross-entropy: reals towards ``real_target``, fakes to 0."""
    real = real.float()
    fake = fake.float()
    loss_real = F.binary_cross_entropy_with_logits(real, torch.full_like(real, real_target))
    return loss_real + F.softplus(fake).mean()


def nonsaturating_g_loss(fake: torch.Tensor) -> torch.Tensor:
    """Return the non-saturating generator loss -log D(G(z)) = softplus(-logits)."""
    return F.softplus(-fake.float()).mean()


def hinge_d_loss(real: torch.Tensor, fake: torch.Tensor, real_target: float = 1.0) -> torch.Tensor:
    """Return the hinge loss of the discriminator: relu(1 - D(x)) + relu(1 + D(G(z)))."""
    return F.relu(real_target - real.float()).mean() + F.relu(1.0 + fake.float()).mean()


def hinge_g_loss(fake: torch.Tensor) -> torch.Tensor:
    """Return the hinge generator loss -D(G(z))."""
    return -fake.float().mean()


def lsgan_d_loss(real: torch.Tensor, fake: torch.Tensor, real_target: float = 1.0) -> torch.Tensor:
    """Return the least-squares discriminator loss: (D(x) - target)^2 / 2 + D(G(z))^2 / 2."""
    return 0.5 * (real.float() - real_target).pow(2).mean() + 0.5 * fake.float().pow(2).mean()


def lsgan_g_loss(fake: torch.Tensor) -> torch.Tensor:
    """Return the least-squares generator loss (D(G(z)) - 1)^2 / 2."""
    return 0.5 * (fake.float() - 1.0).pow(2).mean()


def wasserstein_d_loss(real: torch.Tensor, fake: torch.Tensor, real_target: float = 1.0) -> torch.Tensor:
    """Return the critic loss E[D(G(z))] - E[D(x)], the negated Wasserstein estimate.

    ``real_target`` is accepted for a uniform signature and ignored: a critic has no targets.
    """
    return fake.float().mean() - real.float().mean()


def wasserstein_g_loss(fake: torch.Tensor) -> torch.Tensor:
    """Return the Wasserstein generator loss -E[D(G(z))]."""
    return -fake.float().mean()


_D_LOSSES = {"ns": nonsaturating_d_loss, "hinge": hinge_d_loss, "lsgan": lsgan_d_loss, "wasserstein": wasserstein_d_loss}
_G_LOSSES = {"ns": nonsaturating_g_loss, "hinge": hinge_g_loss, "lsgan": lsgan_g_loss, "wasserstein": wasserstein_g_loss}


def discriminator_loss(kind: str, real: torch.Tensor, fake: torch.Tensor, real_target: float = 1.0) -> torch.Tensor:
    """Return the discriminator loss ``kind`` (one of ``LOSSES``) for outputs on reals and fakes.

    ``real_target`` below 1 is one-sided label smoothing (for "ns", "hinge" and "lsgan").
    """
    return _D_LOSSES[kind](real, fake, real_target)


def generator_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    """Return the generator loss ``kind`` (one of ``LOSSES``) for D's outputs on fakes."""
    return _G_LOSSES[kind](fake)


def discriminator_score(kind: str, logits: torch.Tensor) -> torch.Tensor:
    """Return the mean of D's outputs as logged: a probability for "ns", the raw value otherwise."""
    logits = logits.detach().float()
    return torch.sigmoid(logits).mean() if kind == "ns" else logits.mean()


# ---------------------------------------------------------------------------------- penalties
def interpolates(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Return random points on the lines between paired reals and fakes, ready for gradients."""
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    # Under autocast the fakes may be half precision while the reals are not.
    return torch.lerp(fake.detach().to(real.dtype), real.detach(), eps).requires_grad_(True)


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     target: float = 1.0) -> torch.Tensor:
    """Return E[(||grad_x D(x_hat)|| - target)^2] over random interpolates x_hat of reals and fakes.

    The graph is kept (``create_graph``) so the penalty backpropagates into the critic. Multiply
    by lambda (10 in Gulrajani et al. 2017) yourself. ``critic`` maps images to one value per image;
    wrap conditional critics, e.g. ``lambda x: D(x, labels)``.
    """
    x_hat = interpolates(real, fake)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.float().sum(), x_hat, create_graph=True)
    return (grad.float().flatten(1).norm(2, dim=1) - target).pow(2).mean()


def r1_penalty(real_out: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Return E[||grad_x D(x)||^2] on reals; multiply by gamma / 2 yourself (R1, Mescheder et al.).

    ``real`` must have had ``requires_grad_(True)`` before the forward pass producing
    ``real_out``. The graph is kept so the penalty trains D.
    """
    (grad,) = torch.autograd.grad(real_out.float().sum(), real, create_graph=True, allow_unused=True)
    if grad is None:  # D ignores its input entirely: its gradient, and so the penalty, is zero
        return real_out.float().sum() * 0.0
    return grad.float().pow(2).flatten(1).sum(1).mean()


# ---------------------------------------------------------------------------------- stabilisers
def instance_noise_std(step: int, start: float, decay_steps: int) -> float:
    """Return the instance-noise strength at ``step``: ``start`` decaying linearly to 0 at ``decay_steps``."""
    if start <= 0 or decay_steps <= 0:
        return 0.0
    return start * max(0.0, 1.0 - step / decay_steps)


def add_instance_noise(x: torch.Tensor, std: float) -> torch.Tensor:
    """Return ``x`` plus Gaussian noise of standard deviation ``std`` (``x`` itself when 0)."""
    if std <= 0:
        return x
    return x + std * torch.randn_like(x)


def smoothed_target(smoothing: float) -> float:
    """Return the real-label target under one-sided label smoothing (1 - smoothing; fakes stay 0)."""
    return 1.0 - smoothing


AUGMENTATIONS = ("color", "translation", "cutout")


def parse_augment_policy(policy: str | Sequence[str]) -> tuple[str, ...]:
    """Return the augmentations named in ``policy`` ("color,translation,cutout"; "" for none).

    Raises ``ValueError`` naming the unknown ones; models turn it into a ``UserError``.
    """
    names = policy.split(",") if isinstance(policy, str) else list(policy)
    names = tuple(n.strip() for n in names if n.strip() and n.strip() != "none")
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"unknown augmentation {', '.join(map(repr, unknown))}; choose from {', '.join(AUGMENTATIONS)}")
    return names


def diff_augment(x: torch.Tensor, policy: str | Sequence[str] = AUGMENTATIONS) -> torch.Tensor:
    """Return ``x`` with differentiable random augmentations, a fresh draw for every image.

    Apply the same policy to every image D sees, real and fake (Zhao et al. 2020): gradients flow
    through each operation back to the generator. Images are NCHW in [-1, 1].
    """
    for name in parse_augment_policy(policy):
        x = _AUGMENT[name](x)
    return x


def _rand(x: torch.Tensor, *shape: int) -> torch.Tensor:
    return torch.rand(*shape, device=x.device, dtype=x.dtype)


def _augment_color(x: torch.Tensor) -> torch.Tensor:
    """Random brightness (+-0.5), saturation (x0..2) and contrast (x0.5..1.5) per image."""
    n = x.shape[0]
    x = x + (_rand(x, n, 1, 1, 1) - 0.5)
    mean_c = x.mean(dim=1, keepdim=True)
    x = (x - mean_c) * (_rand(x, n, 1, 1, 1) * 2.0) + mean_c
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(x, n, 1, 1, 1) + 0.5) + mean


def _augment_translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size, filling with zeros (mid-grey)."""
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sy, sy + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-sx, sx + 1, (n, 1, 1), device=x.device)
    # Read every output pixel from (y - dy, x - dx) of a one-pixel zero-padded copy; sources
    # outside the image land on the padding.
    rows = (torch.arange(h, device=x.device).view(1, h, 1) - dy).clamp(-1, h) + 1
    cols = (torch.arange(w, device=x.device).view(1, 1, w) - dx).clamp(-1, w) + 1
    padded = F.pad(x, (1, 1, 1, 1)).permute(0, 2, 3, 1)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    return padded[batch, rows, cols].permute(0, 3, 1, 2).contiguous()


def _augment_cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of ``ratio`` times the image size at a random centre in each image."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    inside = ((ys - cy + ch // 2) >= 0) & ((ys - cy + ch // 2) < ch) & ((xs - cx + cw // 2) >= 0) & ((xs - cx + cw // 2) < cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


_AUGMENT = {"color": _augment_color, "translation": _augment_translation, "cutout": _augment_cutout}


def ema_copy(net: nn.Module) -> nn.Module:
    """Return a deep copy of ``net`` for exponential averaging: no gradients, never optimised."""
    ema = copy.deepcopy(net)
    for p in ema.parameters():
        p.requires_grad_(False)
    return ema


def ema_decay_at(step: int, decay: float) -> float:
    """Return the EMA decay to use after ``step`` completed steps: ``decay``, warmed up early on.

    min(decay, (1 + step) / (10 + step)) lets the average follow the fast-moving early
    generator instead of remembering its random initialisation for ~1/(1 - decay) steps.
    """
    return min(decay, (1.0 + step) / (10.0 + step))


# ---------------------------------------------------------------------------------- layers, init
def sn_conv2d(*args, **kwargs) -> nn.Conv2d:
    """Return ``nn.Conv2d(*args, **kwargs)`` under spectral normalisation (one power iteration per call)."""
    return spectral_norm(nn.Conv2d(*args, **kwargs))


def sn_linear(*args, **kwargs) -> nn.Linear:
    """Return ``nn.Linear(*args, **kwargs)`` under spectral normalisation."""
    return spectral_norm(nn.Linear(*args, **kwargs))


def sn_embedding(*args, **kwargs) -> nn.Embedding:
    """Return ``nn.Embedding(*args, **kwargs)`` under spectral normalisation (projection discriminators)."""
    return spectral_norm(nn.Embedding(*args, **kwargs))


def weight_of(module: nn.Module) -> torch.Tensor | None:
    """Return the trainable weight of ``module``: the raw one under spectral normalisation."""
    if parametrize.is_parametrized(module, "weight"):
        return module.parametrizations.weight.original
    return getattr(module, "weight", None)


def init_normal(net: nn.Module, std: float = 0.02) -> nn.Module:
    """Return ``net`` initialised as Radford et al. 2016 did: conv/linear weights N(0, std), norm scales N(1, std), biases 0."""
    with torch.no_grad():
        for module in net.modules():
            weight = weight_of(module)
            bias = getattr(module, "bias", None)
            if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
                weight.normal_(0.0, std)
            elif isinstance(module, nn.modules.batchnorm._BatchNorm | nn.GroupNorm | nn.LayerNorm) and weight is not None:
                weight.normal_(1.0, std)
            else:
                continue
            if isinstance(bias, torch.Tensor):
                bias.zero_()
    return net
