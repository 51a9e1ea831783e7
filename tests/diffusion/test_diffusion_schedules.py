"""Noise schedules: alpha-bar's shape, and the closed-form forward process against the Markov chain."""

import pytest
import torch

from gencli_diffusion.schedules import NoiseSchedule, cosine_betas, linear_betas


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("timesteps", [10, 1000, 4000])
def test_alpha_bar_falls_monotonically_inside_the_unit_interval(kind, timesteps):
    s = NoiseSchedule.named(kind, timesteps)
    a = s.alpha_bar
    assert len(a) == timesteps
    assert (a > 0).all() and (a < 1).all()
    assert (a[1:] < a[:-1]).all()
    # The last step is (nearly) pure noise, the first (nearly) clean.
    assert a[-1] < 0.01 and a[0] > 0.9


def test_linear_schedule_runs_from_1e4_to_002_at_1000_steps_and_keeps_total_noise_at_other_lengths():
    betas = linear_betas(1000)
    assert betas[0].item() == pytest.approx(1e-4) and betas[-1].item() == pytest.approx(0.02)
    assert (betas[1:] > betas[:-1]).all()
    # Scaled by 1000 / T, a shorter schedule ends about as noisy as the paper's.
    full = NoiseSchedule(linear_betas(1000)).alpha_bar[-1]
    short = NoiseSchedule(linear_betas(250)).alpha_bar[-1]
    assert short.log().item() == pytest.approx(full.log().item(), rel=0.05)


def test_cosine_schedule_adds_noise_more_slowly_than_linear_early_on():
    linear, cosine = NoiseSchedule.named("linear", 1000), NoiseSchedule.named("cosine", 1000)
    assert (cosine.alpha_bar[100:600] > linear.alpha_bar[100:600]).all()
    assert (cosine_betas(1000) <= 0.999).all()


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_closed_form_noising_matches_iterating_the_one_step_process(kind):
    torch.manual_seed(0)
    s = NoiseSchedule.named(kind, 1000)
    x0 = torch.tensor([-1.0, -0.3, 0.0, 0.5, 1.0])
    n = 10_000
    x = x0.expand(n, -1).clone()
    checkpoints = {0, 20, 200, 600, 999}
    for t in range(1000):
        x = s.q_step(x, torch.full((n,), t), torch.randn_like(x))
        if t not in checkpoints:
            continue
        a = s.alpha_bar[t]
        closed = s.q_sample(x0.expand(n, -1), torch.full((n,), t), torch.randn(n, 5))
        for sample in (x, closed):
            std = (1 - a).sqrt()
            # Five standard errors of the mean and of the standard deviation.
            assert torch.allclose(sample.mean(0), a.sqrt() * x0, atol=5 * std / n**0.5 + 1e-6), t
            assert torch.allclose(sample.std(0), std.expand(5), rtol=5 / (2 * n) ** 0.5, atol=1e-6), t


def test_eps_x0_and_v_parameterisations_invert_each_other():
    torch.manual_seed(0)
    s = NoiseSchedule.named("cosine", 1000)
    x0, eps = torch.rand(8, 3, 4, 4) * 2 - 1, torch.randn(8, 3, 4, 4)
    t = torch.randint(0, 1000, (8,))
    x_t = s.q_sample(x0, t, eps)
    assert torch.allclose(s.x0_from_eps(x_t, t, eps), x0, atol=1e-3)
    assert torch.allclose(s.eps_from_x0(x_t, t, x0), eps, atol=1e-3)
    assert torch.allclose(s.eps_from_v(x_t, t, s.v_target(x0, t, eps)), eps, atol=1e-4)


def test_bad_betas_are_refused():
    with pytest.raises(ValueError, match="betas"):
        NoiseSchedule(torch.tensor([0.1, 1.5]))
    with pytest.raises(ValueError, match="unknown noise schedule"):
        NoiseSchedule.named("quadratic", 10)
