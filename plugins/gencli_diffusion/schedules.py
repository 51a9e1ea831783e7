"""Noise schedules and the closed-form forward process of a diffusion model.

Timesteps are indices ``t`` in ``0 .. T-1``: ``x_t`` is the data after ``t + 1`` noising steps,
``x_t = sqrt(alpha_bar[t]) * x_0 + sqrt(1 - alpha_bar[t]) * eps`` (Ho et al. 2020, eq. 4).
Nothing here knows about networks: a schedule converts between the quantities a network may
predict (noise ``eps``, clean image ``x_0``, velocity ``v``) and the noisy image.
"""

from __future__ import annotations

import math

import torch


def linear_betas(timesteps: int, start: float = 1e-4, end: float = 0.02) -> torch.Tensor:
    """Return the linear beta schedule of Ho et al. (2020), float64 [T].

    ``start`` and ``end`` are the paper's values for T = 1000; for another T they are scaled by
    1000 / T (as Nichol & Dhariwal do), so the total noise added stays the same.
    """
    scale = 1000.0 / timesteps
    return torch.linspace(start * scale, min(end * scale, 0.999), timesteps, dtype=torch.float64)


def cosine_betas(timesteps: int, offset: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Return the cosine schedule of Nichol & Dhariwal (2021, eq. 17), float64 [T].

    alpha_bar(t) = cos^2(((t / T + s) / (1 + s)) * pi / 2); betas are clipped at ``max_beta`` to
    avoid the singularity at t = T.
    """
    steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((steps + offset) / (1 + offset) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=max_beta)


def extract(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Return ``values[t]`` shaped [N, 1, 1, 1] to broadcast against the batch ``like``."""
    out = values.to(like.device)[t.to(like.device)]
    return out.view(-1, *([1] * (like.dim() - 1))).to(like.dtype)


class NoiseSchedule:
    """A discrete noise schedule: betas, alphas and their cumulative products, plus the closed-form
    forward process and the conversions between eps, x_0 and v predictions.
    """

    def __init__(self, betas: torch.Tensor) -> None:
        betas = betas.to(torch.float64)
        if betas.dim() != 1 or not ((betas > 0) & (betas < 1)).all():
            raise ValueError("betas must be a 1-D tensor with values in (0, 1)")
        self.timesteps = len(betas)
        alphas = 1.0 - betas
        alpha_bar = torch.cumprod(alphas, 0)
        alpha_bar_prev = torch.cat([alpha_bar.new_ones(1), alpha_bar[:-1]])
        # Computed in float64, kept in float32: the products underflow float32 precision otherwise.
        self.betas = betas.float()
        self.alphas = alphas.float()
        self.alpha_bar = alpha_bar.float()
        self.alpha_bar_prev = alpha_bar_prev.float()
        # Variance of q(x_{t-1} | x_t, x_0) (Ho et al. eq. 7), the "beta tilde" of the paper.
        self.posterior_variance = (betas * (1 - alpha_bar_prev) / (1 - alpha_bar)).float()

    @classmethod
    def named(cls, kind: str, timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> "NoiseSchedule":
        """Return the ``"linear"`` or ``"cosine"`` schedule with ``timesteps`` steps."""
        if kind == "linear":
            return cls(linear_betas(timesteps, beta_start, beta_end))
        if kind == "cosine":
            return cls(cosine_betas(timesteps))
        raise ValueError(f"unknown noise schedule {kind!r}")

    def to(self, device: torch.device | str) -> "NoiseSchedule":
        """Move the schedule's tensors to ``device`` (in place) and return it."""
        for name in ("betas", "alphas", "alpha_bar", "alpha_bar_prev", "posterior_variance"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    # ------------------------------------------------------------------ forward process
    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Return x_t drawn from q(x_t | x_0) in closed form, with the given standard ``noise``."""
        a = extract(self.alpha_bar, t, x0)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def q_step(self, x_prev: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Return x_t drawn from the one-step process q(x_t | x_{t-1}) = N(sqrt(1-b_t) x_{t-1}, b_t)."""
        b = extract(self.betas, t, x_prev)
        return (1 - b).sqrt() * x_prev + b.sqrt() * noise

    # ------------------------------------------------------------------ parameterisations
    def x0_from_eps(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Return the clean image implied by noise ``eps`` at ``x_t``."""
        a = extract(self.alpha_bar, t, x_t)
        return (x_t - (1 - a).sqrt() * eps) / a.sqrt()

    def eps_from_x0(self, x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """Return the noise implied by clean image ``x0`` at ``x_t``."""
        a = extract(self.alpha_bar, t, x_t)
        return (x_t - a.sqrt() * x0) / (1 - a).sqrt()

    def v_target(self, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Return the velocity v = sqrt(a) eps - sqrt(1-a) x_0 (Salimans & Ho 2022)."""
        a = extract(self.alpha_bar, t, x0)
        return a.sqrt() * eps - (1 - a).sqrt() * x0

    def eps_from_v(self, x_t: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Return the noise implied by a velocity prediction ``v`` at ``x_t``."""
        a = extract(self.alpha_bar, t, x_t)
        return (1 - a).sqrt() * x_t + a.sqrt() * v

    def posterior(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (mean, variance) of q(x_{t-1} | x_t, x_0) (Ho et al. eqs. 6-7)."""
        a_bar, a_bar_prev = extract(self.alpha_bar, t, x_t), extract(self.alpha_bar_prev, t, x_t)
        alpha, beta = extract(self.alphas, t, x_t), extract(self.betas, t, x_t)
        mean = (a_bar_prev.sqrt() * beta * x0 + alpha.sqrt() * (1 - a_bar_prev) * x_t) / (1 - a_bar)
        return mean, extract(self.posterior_variance, t, x_t)
