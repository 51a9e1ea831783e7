"""Samplers behind one protocol: every registered sampler gives, for a fixed seed, exactly what
its paper's formula gives when written out by hand, through `DDPM.sample` as users reach it."""

import typing

import pytest
import torch
from diffusion_helpers import make_model, randomise

from gencli_diffusion.declarations import DDPMSampleOptions
from gencli_diffusion.samplers import SAMPLERS, Sampler, register, run_sampler

TIMESTEPS = 12


def tiny_model():
    model = make_model(None, size=8, timesteps=TIMESTEPS, sampling_steps=4).eval()
    randomise(model.nets["ema"], 0.05)  # an untrained, non-zero noise predictor
    return model


def gaussian(generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    return torch.randn(like.shape, generator=generator, dtype=like.dtype)


def reference_ddim(model, n: int, steps: int, eta: float, seed: int) -> torch.Tensor:
    """DDIM (Song et al. 2021, eq. 12) written out step by step, from the model's own noise and network."""
    g = torch.Generator().manual_seed(seed)
    predict = model.noise_predictor(None, 0.0)
    alpha_bar = model.schedule.alpha_bar
    x = torch.randn((n, *model.image_shape), generator=g)
    times = torch.linspace(TIMESTEPS - 1, 0, steps, dtype=torch.float64).round().long().tolist()
    for i, now in enumerate(times):
        eps = predict(x, torch.full((n,), now, dtype=torch.long))
        a = alpha_bar[now]
        a_prev = alpha_bar[times[i + 1]] if i + 1 < len(times) else torch.tensor(1.0)
        x0 = ((x - (1 - a).sqrt() * eps) / a.sqrt()).clamp(-1, 1)
        eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
        sigma = eta * ((1 - a_prev) / (1 - a) * (1 - a / a_prev)).sqrt()
        x = a_prev.sqrt() * x0 + (1 - a_prev - sigma**2).clamp(min=0).sqrt() * eps
        if eta > 0 and i + 1 < len(times):
            x = x + sigma * gaussian(g, x)
    return x


def reference_ddpm(model, n: int, seed: int) -> torch.Tensor:
    """Ancestral sampling (Ho et al. 2020, Algorithm 2 with the posterior of eqs. 6-7) written out."""
    g = torch.Generator().manual_seed(seed)
    predict = model.noise_predictor(None, 0.0)
    s = model.schedule
    x = torch.randn((n, *model.image_shape), generator=g)
    for now in reversed(range(TIMESTEPS)):
        eps = predict(x, torch.full((n,), now, dtype=torch.long))
        a_bar, a_bar_prev, alpha, beta = s.alpha_bar[now], s.alpha_bar_prev[now], s.alphas[now], s.betas[now]
        x0 = ((x - (1 - a_bar).sqrt() * eps) / a_bar.sqrt()).clamp(-1, 1)
        mean = (a_bar_prev.sqrt() * beta * x0 + alpha.sqrt() * (1 - a_bar_prev) * x) / (1 - a_bar)
        x = mean + (s.posterior_variance[now].sqrt() * gaussian(g, x) if now > 0 else 0)
    return x


@pytest.mark.parametrize("sampler, options, reference", [
    ("ddim", {"steps": 4}, lambda m: reference_ddim(m, 3, 4, 0.0, 11)),
    ("ddim", {"steps": 5, "eta": 0.6}, lambda m: reference_ddim(m, 3, 5, 0.6, 11)),
    ("ddim", {"steps": TIMESTEPS, "eta": 1.0}, lambda m: reference_ddim(m, 3, TIMESTEPS, 1.0, 11)),
    ("ddpm", {}, lambda m: reference_ddpm(m, 3, 11)),
])
def test_every_sampler_gives_its_formula_for_a_fixed_seed(sampler, options, reference):
    model = tiny_model()
    with torch.no_grad():
        expected = reference(model)
    out = model.sample(3, generator=torch.Generator().manual_seed(11), sampler=sampler, **options)
    assert out.abs().max() > 0.01  # not a trivial all-zero comparison
    assert torch.allclose(out, expected, atol=1e-5), (out - expected).abs().max()


def test_the_names_users_type_are_the_registered_samplers():
    hint = typing.get_type_hints(DDPMSampleOptions)["sampler"]  # Literal[...] | None
    literal = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    assert set(typing.get_args(literal)) == set(SAMPLERS) == {"ddim", "ddpm"}


def test_a_new_sampler_is_one_registered_class_and_the_loop_visits_its_timesteps():
    seen = []

    class Halving(Sampler):
        name = "halving-test"

        def timesteps(self, steps):
            return list(range(steps - 1, -1, -1))

        def step(self, eps, x_t, t, t_next, generator):
            seen.append((t, t_next))
            return x_t / 2

    register(Halving)
    try:
        model = tiny_model()
        x_T = torch.ones(2, *model.image_shape)
        out = run_sampler(SAMPLERS["halving-test"](model.schedule), model.noise_predictor(None, 0.0), x_T, 3)
        assert seen == [(2, 1), (1, 0), (0, None)] and torch.allclose(out, x_T / 8)
        seen.clear()
        model.sample(1, generator=torch.Generator().manual_seed(0), sampler="halving-test", steps=4)
        assert [t for t, _ in seen] == [3, 2, 1, 0]
    finally:
        SAMPLERS.pop("halving-test")
