"""MSE, PSNR and SSIM against values known in closed form on constructed images."""

import math

import numpy as np
import pytest
import torch

from gencli.metrics.recon import SSIM_K1, SSIM_K2, gaussian_window, mse, psnr, ssim


def test_psnr_of_a_constant_offset_is_known():
    x = torch.full((2, 3, 16, 16), 0.5)
    assert mse(x, x + 0.1) == pytest.approx(torch.tensor([0.01, 0.01]))
    assert psnr(x, x + 0.1).tolist() == pytest.approx([20.0, 20.0], abs=1e-4)  # 10 log10(1 / 0.01)
    assert psnr(x, x + 0.01)[0].item() == pytest.approx(40.0, abs=1e-3)
    # On the [0, 255] scale the same error reads the same.
    assert psnr(x * 255, (x + 0.1) * 255, data_range=255.0)[0].item() == pytest.approx(20.0, abs=1e-3)


def test_psnr_of_a_perfect_reconstruction_is_capped_not_infinite():
    x = torch.rand(1, 1, 8, 8)
    assert psnr(x, x).item() == pytest.approx(100.0)


def test_ssim_of_identical_images_is_one():
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert ssim(x, x).tolist() == pytest.approx([1.0, 1.0, 1.0], abs=1e-5)


def test_ssim_of_two_flat_images_is_the_luminance_term():
    a, b = 0.3, 0.7
    c1 = SSIM_K1**2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)  # no contrast or structure to compare
    value = ssim(torch.full((1, 1, 16, 16), a), torch.full((1, 1, 16, 16), b)).item()
    assert value == pytest.approx(expected, abs=1e-5)


def test_ssim_on_one_window_equals_the_formula_of_wang_et_al():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(1, 1, 11, 11, generator=g)
    y = (x + 0.2 * torch.randn(1, 1, 11, 11, generator=g)).clamp(0, 1)
    w1 = gaussian_window(11, 1.5)
    w = torch.outer(w1, w1).numpy()
    xs, ys = x[0, 0].double().numpy(), y[0, 0].double().numpy()
    mx, my = (w * xs).sum(), (w * ys).sum()
    vx, vy = (w * (xs - mx) ** 2).sum(), (w * (ys - my) ** 2).sum()
    cov = (w * (xs - mx) * (ys - my)).sum()
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    expected = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    assert ssim(x, y).item() == pytest.approx(expected, abs=1e-5)
    assert math.isclose(w1.sum().item(), 1.0, abs_tol=1e-9)


def test_ssim_of_an_inverted_pattern_is_negative_and_noise_lowers_ssim():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 1, 32, 32, generator=g)
    assert ssim(x, 1 - x).item() < -0.5  # anti-correlated structure
    values = [ssim(x, (x + s * torch.randn(1, 1, 32, 32, generator=g)).clamp(0, 1)).item() for s in (0.02, 0.1, 0.3)]
    assert values[0] > values[1] > values[2]


def test_ssim_works_on_images_smaller_than_the_window():
    x = torch.rand(2, 3, 6, 6)
    assert ssim(x, x).tolist() == pytest.approx([1.0, 1.0], abs=1e-5)
    assert np.isfinite(ssim(x, torch.rand(2, 3, 6, 6)).numpy()).all()
