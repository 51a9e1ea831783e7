"""Per-image pixel errors: L1, MSE, PSNR and SSIM of image pairs (NCHW, values on the [0, 1] scale).

Plain functions on tensors, below both ``gencli.metrics.context`` (which computes them once per
pass of reconstructions or translations) and ``gencli.metrics.recon`` (the metrics that report
them). See ``gencli.metrics.recon`` for the definitions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SSIM_WINDOW, SSIM_SIGMA, SSIM_K1, SSIM_K2 = 11, 1.5, 0.01, 0.03
PSNR_FLOOR = 1e-10


def l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return the mean absolute error of each image pair [N]."""
    return (x.float() - y.float()).abs().flatten(1).mean(1)


def mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return the mean squared error of each image pair [N]."""
    return (x.float() - y.float()).pow(2).flatten(1).mean(1)


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Return the PSNR in dB of each image pair [N]."""
    return 10 * torch.log10(data_range**2 / mse(x, y).clamp(min=PSNR_FLOOR))


def gaussian_window(size: int, sigma: float, device=None, dtype=torch.float64) -> torch.Tensor:
    """Return a normalised 1-D Gaussian of ``size`` taps."""
    t = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    w = torch.exp(-(t**2) / (2 * sigma**2))
    return w / w.sum()


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, window: int = SSIM_WINDOW,
         sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """Return the mean SSIM of each image pair [N] (NCHW, values spanning ``data_range``)."""
    # float64: the variances are differences of near-equal means, which float32 blurs on flat images.
    x, y = x.double(), y.double()
    c = x.shape[1]
    size = min(window, x.shape[-2], x.shape[-1])
    size -= 1 - size % 2  # odd, so the window has a centre
    g = gaussian_window(size, sigma, x.device)
    # Separable filtering, one channel at a time (groups=c), valid positions only.
    gh, gv = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1), g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, gh, groups=c), gv, groups=c)

    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    ssim_map = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return ssim_map.flatten(1).mean(1).float()
