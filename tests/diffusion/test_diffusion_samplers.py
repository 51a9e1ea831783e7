"""DDPM and DDIM samplers on noise predictors whose answers are known exactly."""

import io

import pytest
import torch
from rich.console import Console
from rich.live import Live

from gencli.ui import console
from gencli.ui.progress import progress_bar
from gencli_diffusion.samplers import ddim_sample, ddim_timesteps, ddpm_sample, guided
from gencli_diffusion.schedules import NoiseSchedule

SCHEDULE = NoiseSchedule.named("linear", 200)
# A known tiny dataset: four 2x2 RGB images.
POINTS = torch.tensor([-0.8, -0.2, 0.3, 0.9]).view(4, 1, 1, 1) * torch.tensor([1.0, -1.0, 0.5]).view(1, 3, 1, 1)
POINTS = POINTS.expand(4, 3, 2, 2)


def ideal_denoiser(points: torch.Tensor, schedule: NoiseSchedule):
    """The exact noise prediction for data made of ``points`` only: E[eps | x_t] under the mixture."""

    def predict(x, t):
        a = schedule.alpha_bar[t].view(-1, 1)
        flat, data = x.flatten(1), points.flatten(1)
        d2 = ((flat[:, None] - a.sqrt()[:, None] * data[None]) ** 2).sum(-1)
        weights = torch.softmax(-d2 / (2 * (1 - a)), dim=1)
        x0 = (weights @ data).view_as(x)
        return schedule.eps_from_x0(x, t, x0)

    return predict


def nearest_distance(x: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    return torch.cdist(x.flatten(1), points.flatten(1)).min(1).values


@pytest.mark.parametrize("steps", [1, 10, 50, 200])
@pytest.mark.parametrize("clip", [True, False])
def test_ddim_with_an_oracle_of_the_true_noise_reconstructs_the_data_point(steps, clip):
    torch.manual_seed(0)
    x0 = POINTS
    x_T = SCHEDULE.q_sample(x0, torch.full((4,), 199), torch.randn_like(x0))
    oracle = lambda x, t: SCHEDULE.eps_from_x0(x, t, x0)  # noqa: E731  (knows the data point)
    out = ddim_sample(oracle, SCHEDULE, x_T, steps, eta=0.0, clip=clip)
    assert torch.allclose(out, x0, atol=1e-4)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_samplers_with_the_ideal_denoiser_land_on_the_dataset_and_cover_it(sampler):
    torch.manual_seed(0)
    predict = ideal_denoiser(POINTS, SCHEDULE)
    x_T = torch.randn(64, 3, 2, 2)
    if sampler == "ddim":
        out = ddim_sample(predict, SCHEDULE, x_T, 50)
    else:
        out = ddpm_sample(predict, SCHEDULE, x_T, torch.Generator().manual_seed(0))
    # within 2e-3 of a data point (the points lie at least 0.5 apart); the ancestral sampler ends 1.2e-3
    # away on some CPUs, from float32 rounding in the last steps, and under 1e-3 on others
    assert nearest_distance(out, POINTS).max() < 2e-3
    hit = torch.cdist(out.flatten(1), POINTS.flatten(1)).argmin(1)
    assert set(hit.tolist()) == {0, 1, 2, 3}


def test_ddim_with_eta_zero_is_deterministic_and_draws_no_randomness():
    predict = ideal_denoiser(POINTS, SCHEDULE)
    x_T = torch.randn(8, 3, 2, 2, generator=torch.Generator().manual_seed(3))
    state = torch.get_rng_state()
    a = ddim_sample(predict, SCHEDULE, x_T, 20, eta=0.0)
    assert torch.equal(torch.get_rng_state(), state)
    b = ddim_sample(predict, SCHEDULE, x_T.clone(), 20, eta=0.0)
    assert torch.equal(a, b)


def test_ddim_with_eta_one_over_all_steps_is_the_ddpm_sampler():
    torch.manual_seed(0)
    predict = lambda x, t: 0.5 * x + 0.1 * torch.sin(t.float()).view(-1, 1, 1, 1)  # noqa: E731  any predictor
    x_T = torch.randn(4, 3, 2, 2)
    ddim = ddim_sample(predict, SCHEDULE, x_T, SCHEDULE.timesteps, eta=1.0, generator=torch.Generator().manual_seed(5))
    ddpm = ddpm_sample(predict, SCHEDULE, x_T, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(ddim, ddpm, atol=1e-4)
    other = ddpm_sample(predict, SCHEDULE, x_T, generator=torch.Generator().manual_seed(6))
    assert not torch.allclose(ddpm, other, atol=1e-2)


def test_ddim_timesteps_start_at_pure_noise_end_clean_and_never_repeat():
    for steps in (1, 2, 7, 50, 999, 1000):
        times = ddim_timesteps(1000, steps)
        assert len(times) == steps == len(set(times))
        assert times[0] == 999 and times == sorted(times, reverse=True)
        assert steps == 1 or times[-1] == 0
    for bad in (0, 1001):
        with pytest.raises(ValueError, match="steps"):
            ddim_timesteps(1000, bad)


def test_guidance_zero_is_unconditional_one_is_conditional_and_more_extrapolates():
    cond, uncond = torch.randn(2, 3), torch.randn(2, 3)
    assert torch.equal(guided(cond, uncond, 0.0), uncond)
    assert torch.allclose(guided(cond, uncond, 1.0), cond)
    assert torch.allclose(guided(cond, uncond, 3.0) - cond, 2 * (cond - uncond), atol=1e-6)


def test_the_progress_bar_draws_on_a_terminal_and_stays_quiet_elsewhere(capsys, monkeypatch):
    predict = ideal_denoiser(POINTS, SCHEDULE)
    x_T = torch.randn(2, 3, 2, 2)
    quiet = ddim_sample(predict, SCHEDULE, x_T, 5)
    piped = ddim_sample(predict, SCHEDULE, x_T, 5, progress=True)  # pytest's capture is no terminal
    assert torch.equal(quiet, piped)
    assert capsys.readouterr() == ("", "")
    screen = io.StringIO()
    monkeypatch.setattr(console, "err", Console(file=screen, force_terminal=True, width=80))
    on_screen = ddim_sample(predict, SCHEDULE, x_T, 5, progress=True)
    assert torch.equal(on_screen, quiet)
    assert "DDIM 5 steps" in screen.getvalue()


def test_sampling_inside_another_live_display_goes_on_without_a_bar():
    predict = ideal_denoiser(POINTS, SCHEDULE)
    terminal = Console(file=io.StringIO(), force_terminal=True)
    with Live("training table", console=terminal):
        with progress_bar("DDPM", 3, console=terminal) as advance:
            advance()
        x_T = torch.randn(2, 3, 2, 2)
        inside = ddpm_sample(predict, SCHEDULE, x_T, torch.Generator().manual_seed(0), progress=True)
    assert inside.shape == (2, 3, 2, 2)
