"""Losses, penalties and stabilisers shared by every GAN in gencli.

All losses take raw discriminator outputs (logits, or critic values for the Wasserstein loss)
and return a scalar to minimise. Per-example randomness (interpolates, instance noise) is drawn
from the ``noise`` argument (``gencli.nn.noise``): a model passes itself, so a data-parallel run
draws what one process would.

- Adversarial losses: ``discriminator_loss(kind, ...)`` / ``generator_loss(kind, ...)`` over
  ``LOSSES``: non-saturating ("ns", Goodfellow et al. 2014), hinge (Lim & Ye 2017; Miyato et al.
  2018), least-squares ("lsgan", Mao et al. 2017) and Wasserstein (Arjovsky et al. 2017).
- Penalties: ``gradient_penalty`` on random interpolates (Gulrajani et al. 2017) and
  ``r1_penalty`` on real images (Mescheder et al. 2018).
- Stabilisers: instance noise with a linear decay (Sønderby et al. 2017) and one-sided label
  smoothing (Salimans et al. 2016, through ``real_target``). Differentiable augmentation lives in
  ``gencli.nn.augment``, the EMA generator in ``gencli.nn.ema``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from gencli.nn.noise import Noise, noise_for

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
def interpolates(real: torch.Tensor, fake: torch.Tensor, noise: Noise | None = None) -> torch.Tensor:
    """Return random points on the lines between paired reals and fakes, ready for gradients.

    The fractions are drawn from ``noise`` (pass the model: ``gencli.nn.noise``).
    """
    eps = noise_for(real, noise).rand(real.shape[0], *([1] * (real.dim() - 1)), dtype=real.dtype)
    # Under autocast the fakes may be half precision while the reals are not.
    return torch.lerp(fake.detach().to(real.dtype), real.detach(), eps).requires_grad_(True)


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     target: float = 1.0, noise: Noise | None = None) -> torch.Tensor:
    """Return E[(||grad_x D(x_hat)|| - target)^2] over random interpolates x_hat of reals and fakes.

    The graph is kept (``create_graph``) so the penalty backpropagates into the critic. Multiply
    by lambda (10 in Gulrajani et al. 2017) yourself. ``critic`` maps images to one value per image;
    wrap conditional critics, e.g. ``lambda x: D(x, labels)``.
    """
    x_hat = interpolates(real, fake, noise)
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


def add_instance_noise(x: torch.Tensor, std: float, noise: Noise | None = None) -> torch.Tensor:
    """Return ``x`` plus Gaussian noise of standard deviation ``std`` (``x`` itself when 0), drawn from ``noise``."""
    if std <= 0:
        return x
    return x + std * noise_for(x, noise).randn_like(x)


def smoothed_target(smoothing: float) -> float:
    """Return the real-label target under one-sided label smoothing (1 - smoothing; fakes stay 0)."""
    return 1.0 - smoothing
