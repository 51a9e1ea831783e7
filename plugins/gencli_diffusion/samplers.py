"""Reverse-process samplers that work with any noise predictor.

A noise predictor is any callable ``(x_t, t) -> eps`` with ``t`` a long tensor of timestep
indices (see ``schedules``); it may wrap a U-Net, a guided pair of predictions, or an oracle in a
test. The samplers know the schedule and nothing about networks, labels or guidance.

A sampler is a ``Sampler``: the timesteps it visits (``timesteps``) and one step from ``x_t`` to
the next timestep (``step``); ``run_sampler`` is the one loop over any of them, and ``SAMPLERS``
names them for `gencli sample RUN --set sampler=NAME`:

- ``ddpm``: ancestral sampling over all T steps (Ho et al. 2020, Algorithm 2), with the
  posterior variance beta-tilde.
- ``ddim``: DDIM over a chosen number of evenly spaced steps (Song et al. 2021, eq. 12);
  ``eta = 0`` is deterministic, ``eta = 1`` over all steps is the DDPM sampler again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

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


class Sampler:
    """One way of walking the reverse process: the timesteps it visits and one step between them.

    A subclass sets ``name`` (what users type: ``--set sampler=NAME``) and implements
    ``timesteps`` and ``step``; ``register`` adds it to ``SAMPLERS``. ``all_steps`` says it always
    visits all T steps (so ``steps`` defaults to T and no other number is accepted); ``takes_eta``
    says it reads ``eta``. Randomness comes only from the ``generator`` handed to ``step``.
    """

    name: ClassVar[str]
    all_steps: ClassVar[bool] = False
    takes_eta: ClassVar[bool] = False

    def __init__(self, schedule: NoiseSchedule, clip: bool = True, eta: float = 0.0) -> None:
        self.schedule, self.clip, self.eta = schedule, clip, eta

    def timesteps(self, steps: int) -> list[int]:
        """Return the timestep indices visited, from noisiest to cleanest."""
        raise NotImplementedError

    def step(self, eps: torch.Tensor, x_t: torch.Tensor, t: int, t_next: int | None,
             generator: torch.Generator | None) -> torch.Tensor:
        """Return the images at ``t_next`` (None: the clean image) from ``x_t`` and its predicted noise ``eps``."""
        raise NotImplementedError

    def x0(self, eps: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Return the clean image ``eps`` implies at ``x_t``, clamped to [-1, 1] when ``clip``."""
        x0 = self.schedule.x0_from_eps(x_t, t, eps)
        return x0.clamp(-1, 1) if self.clip else x0


SAMPLERS: dict[str, type[Sampler]] = {}


def register(cls: type[Sampler]) -> type[Sampler]:
    """Class decorator: make ``cls`` available as ``--set sampler=<cls.name>``."""
    SAMPLERS[cls.name] = cls
    return cls


def _batch_t(t: int, x: torch.Tensor) -> torch.Tensor:
    return torch.full((len(x),), t, device=x.device, dtype=torch.long)


@register
class DDIMSampler(Sampler):
    """DDIM (Song et al. 2021, eq. 12) over evenly spaced steps; ``eta`` scales the fresh noise."""

    name = "ddim"
    takes_eta = True

    def timesteps(self, steps: int) -> list[int]:
        return ddim_timesteps(self.schedule.timesteps, steps)

    def step(self, eps, x_t, t, t_next, generator):
        t_batch = _batch_t(t, x_t)
        x0 = self.x0(eps, x_t, t_batch)
        if self.clip:  # re-derive the noise, so the update stays consistent with the clamped image
            eps = self.schedule.eps_from_x0(x_t, t_batch, x0)
        a = extract(self.schedule.alpha_bar, t_batch, x_t)
        if t_next is not None:
            a_prev = extract(self.schedule.alpha_bar, torch.full_like(t_batch, t_next), x_t)
        else:  # the last step lands on the clean image
            a_prev = torch.ones_like(a)
        sigma = self.eta * ((1 - a_prev) / (1 - a) * (1 - a / a_prev)).sqrt()
        x = a_prev.sqrt() * x0 + (1 - a_prev - sigma**2).clamp(min=0).sqrt() * eps
        # No draw when sigma is zero, so eta = 0 consumes no randomness at all.
        if self.eta > 0 and t_next is not None:
            x = x + sigma * standard_normal(x, generator)
        return x


@register
class DDPMSampler(Sampler):
    """Ancestral sampling over all T steps (Ho et al. 2020, Algorithm 2), variance beta-tilde."""

    name = "ddpm"
    all_steps = True

    def timesteps(self, steps: int) -> list[int]:
        return list(reversed(range(self.schedule.timesteps)))

    def step(self, eps, x_t, t, t_next, generator):
        t_batch = _batch_t(t, x_t)
        mean, variance = self.schedule.posterior(self.x0(eps, x_t, t_batch), x_t, t_batch)
        if t_next is None:  # the last step returns the posterior mean, without noise
            return mean
        return mean + variance.sqrt() * standard_normal(mean, generator)


@torch.no_grad()
def run_sampler(sampler: Sampler, predict_eps: NoisePredictor, x_T: torch.Tensor, steps: int,
                generator: torch.Generator | None = None, progress: bool = False) -> torch.Tensor:
    """Return x_0 reached from noise ``x_T`` by ``sampler`` over ``steps`` steps: the one sampling loop."""
    times = sampler.timesteps(steps)
    x = x_T
    with progress_bar(f"{sampler.name.upper()} {len(times)} steps", len(times), progress) as advance:
        for i, t_now in enumerate(times):
            eps = predict_eps(x, _batch_t(t_now, x)).to(x.dtype)
            x = sampler.step(eps, x, t_now, times[i + 1] if i + 1 < len(times) else None, generator)
            advance()
    return x


def ddim_sample(predict_eps: NoisePredictor, schedule: NoiseSchedule, x_T: torch.Tensor, steps: int,
                eta: float = 0.0, generator: torch.Generator | None = None, clip: bool = True,
                progress: bool = False) -> torch.Tensor:
    """Return x_0 reached from noise ``x_T`` by DDIM over ``steps`` steps.

    ``clip`` clamps each predicted x_0 to the data range [-1, 1] and re-derives the noise from
    it, so the update stays consistent with the clamped image.
    """
    return run_sampler(DDIMSampler(schedule, clip, eta), predict_eps, x_T, steps, generator, progress)


def ddpm_sample(predict_eps: NoisePredictor, schedule: NoiseSchedule, x_T: torch.Tensor,
                generator: torch.Generator | None = None, clip: bool = True, progress: bool = False) -> torch.Tensor:
    """Return x_0 reached from noise ``x_T`` by ancestral sampling over all T steps."""
    return run_sampler(DDPMSampler(schedule, clip), predict_eps, x_T, schedule.timesteps, generator, progress)
