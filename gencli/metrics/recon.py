"""Per-pixel agreement with ground truth: reconstructions of autoencoders, translations of paired data.

An autoencoder is judged on its reconstructions of held-out images; a translation model on
paired data on its translations against the aligned targets, per direction (``ssim/a2b``).
All are computed per image on the [0, 1] scale and averaged over images.
- L1: mean absolute pixel error (the paired translation training loss, on this scale).
- MSE: mean squared pixel error.
- PSNR: 10 log10(1 / MSE) in dB, the per-image MSE floored at 1e-10 so a perfect reconstruction
  reads 100 dB instead of infinity.
- SSIM (Wang et al. 2004): an 11x11 Gaussian window of sigma 1.5, K1 = 0.01, K2 = 0.03, computed
  over valid window positions and averaged over channels, as scikit-image does with
  ``gaussian_weights=True, use_sample_covariance=False``. Images smaller than 11 pixels use the
  largest odd window that fits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from gencli.errors import UserError

if TYPE_CHECKING:
    from gencli.metrics.context import EvalContext

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


class _Reconstruction:
    key = ""

    def check(self, ctx: "EvalContext") -> None:
        if ctx.translating and not ctx.paired:
            raise UserError(f"{self.key} compares translations with their ground truth, which {ctx.data.name!r} "
                            f"({ctx.data.kind}) lacks; use fid or kid, or pass --data with paired images")
        if not ctx.translating and self.key == "l1" and not ctx.model.can("reconstruct"):
            raise UserError(f"l1 needs a model that reconstructs or translates; {ctx.model.name!r} does neither")

    def compute(self, ctx: "EvalContext") -> dict[str, float]:
        if ctx.translating:
            return {f"{self.key}/{d}": float(getattr(ctx.translations(d), self.key).mean()) for d in ctx.directions()}
        return {self.key: float(getattr(ctx.reconstructions(), self.key).mean())}


class L1(_Reconstruction):
    """Mean absolute error on the [0, 1] scale (lower is better)."""

    key = "l1"


class MSE(_Reconstruction):
    """Mean squared error of reconstructions on the [0, 1] scale (lower is better)."""

    key = "mse"


class PSNR(_Reconstruction):
    """Peak signal-to-noise ratio of reconstructions in dB (higher is better)."""

    key = "psnr"


class SSIM(_Reconstruction):
    """Structural similarity of reconstructions, 1 for identical images (higher is better)."""

    key = "ssim"
