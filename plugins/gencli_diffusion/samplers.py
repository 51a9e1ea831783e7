"""Reverse-process samplers that work with any noise predictor.

A noise predictor is any callable ``(x_t, t) -> eps`` with ``t`` a long tensor of timestep
indices (see ``schedules``); it may wrap a U-Net, a guided pair of predictions, or an oracle in a
test. The samplers know the schedule and nothing about networks, labels or guidance.

- ``ddpm_sample``: ancestral sampling over all T steps (Ho et al. 2020, Algorithm 2), with the
  posterior variance beta-tilde.
- ``ddim_sample``: DDIM over a chosen number of evenly spaced steps (Song et al. 2021, eq. 12);
  ``eta = 0`` is deterministic, ``eta = 1`` over all steps is the DDPM sampler again.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from gencli.ui.progress import progress_bar
from gencli_diffusion.schedules import NoiseSchedule, extract

NoisePredictor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def guided(eps_cond: torch.Tensor, eps_uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Return the classifier-free guided prediction eps_u + w (eps_c - eps_u) (Ho & Salimans 2022).

    ``scale`` 0 is the unconditional prediction, 1 the conditional one, above 1 guided further.
    """
    return eps_uncond + scale * (eps_cond - eps_uncond)


def ddim_timesteps(timesteps: int, steps: int) -> list[int]:
    """Return ``steps`` timestep indices from T-1 down to 0, evenly spaced.

    Starting at T-1 (rather than DDIM's original ``range(0, T, T // steps)``) makes the first step
    see pure noise, whatever the number of steps.
    """
    if not 1 <= steps <= timesteps:
        raise ValueError(f"steps must be in 1..{timesteps}, got {steps}")
    if steps == 1:
        return [timesteps - 1]
    return torch.linspace(timesteps - 1, 0, steps, dtype=torch.float64).round().long().tolist()


def standard_normal(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Return N(0, 1) noise shaped like ``like``, drawn from ``generator`` (on its own device) or
    from torch's global generator when it is None."""
    if generator is None:
        return torch.randn_like(like)
    return torch.randn(like.shape, generator=generator, device=generator.device, dtype=like.dtype).to(like.device)


@torch.no_grad()
def ddim_sample(
    predict_eps: NoisePredictor,
    schedule: NoiseSchedule,
    x_T: torch.Tensor,
    steps: int,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    clip: bool = True,
    progress: bool = False,
) -> torch.Tensor:
    """Return x_0 reached from noise ``x_T`` by DDIM over ``steps`` steps.

    ``clip`` clamps each predicted x_0 to the data range [-1, 1] and re-derives the noise from
    it, so the update stays consistent with the clamped image.
    """
    times = ddim_timesteps(schedule.timesteps, steps)
    x = x_T
    with progress_bar(f"DDIM {len(times)} steps", len(times), progress) as advance:
        for i, t_now in enumerate(times):
            t = torch.full((len(x),), t_now, device=x.device, dtype=torch.long)
            eps = predict_eps(x, t).to(x.dtype)
            x0 = schedule.x0_from_eps(x, t, eps)
            if clip:
                x0 = x0.clamp(-1, 1)
                eps = schedule.eps_from_x0(x, t, x0)
            a = extract(schedule.alpha_bar, t, x)
            if i + 1 < len(times):
                a_prev = extract(schedule.alpha_bar, torch.full_like(t, times[i + 1]), x)
            else:  # the last step lands on the clean image
                a_prev = torch.ones_like(a)
            sigma = eta * ((1 - a_prev) / (1 - a) * (1 - a / a_prev)).sqrt()
            x = a_prev.sqrt() * x0 + (1 - a_prev - sigma**2).clamp(min=0).sqrt() * eps
            # No draw when sigma is zero, so eta = 0 consumes no randomness at all.
            if eta > 0 and i + 1 < len(times):
                x = x + sigma * standard_normal(x, generator)
            advance()
    return x


@torch.no_grad()
def ddpm_sample(
    predict_eps: NoisePredictor,
    schedule: NoiseSchedule,
    x_T: torch.Tensor,
    generator: torch.Generator | None = None,
    clip: bool = True,
    progress: bool = False,
) -> torch.Tensor:
    """Return x_0 reached from noise ``x_T`` by ancestral sampling over all T steps."""
    x = x_T
    T = schedule.timesteps
    with progress_bar(f"DDPM {T} steps", T, progress) as advance:
        for t_now in reversed(range(T)):
            t = torch.full((len(x),), t_now, device=x.device, dtype=torch.long)
            x0 = schedule.x0_from_eps(x, t, predict_eps(x, t).to(x.dtype))
            if clip:
                x0 = x0.clamp(-1, 1)
            mean, variance = schedule.posterior(x0, x, t)
            x = mean
            if t_now > 0:  # the last step returns the posterior mean, without noise
                x = x + variance.sqrt() * standard_normal(x, generator)
            advance()
    return x
