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

from gencli.errors import UserError
from gencli.metrics.pixels import PSNR_FLOOR, SSIM_K1, SSIM_K2, SSIM_SIGMA, SSIM_WINDOW, gaussian_window, l1, mse, psnr, ssim

if TYPE_CHECKING:
    from gencli.metrics.context import EvalContext

__all__ = ["L1", "MSE", "PSNR", "SSIM", "PSNR_FLOOR", "SSIM_K1", "SSIM_K2", "SSIM_SIGMA", "SSIM_WINDOW",
           "gaussian_window", "l1", "mse", "psnr", "ssim"]


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
