"""The built-in metrics of ``gencli eval`` (no torch import)."""

from gencli.registry import MetricSpec

METRICS: list[MetricSpec] = [
    MetricSpec("fid", "Frechet Inception Distance to the real images (of translations: to the target domain; lower is better)",
               "gencli.metrics.fid:FID", ("sample", "translate")),
    MetricSpec("kid", "Kernel Inception Distance, unbiased, mean and std over subsets (lower is better)",
               "gencli.metrics.kid:KID", ("sample", "translate")),
    MetricSpec("prdc", "precision, recall, density and coverage of generated images (k = 5 neighbours)",
               "gencli.metrics.prdc:PRDC", ("sample", "translate")),
    MetricSpec("fid-class", "FID per class of a conditional model, and their mean", "gencli.metrics.fid:ClassFID", "sample"),
    MetricSpec("accuracy", "class accuracy of a conditional model's images by your --classifier",
               "gencli.metrics.accuracy:ClassAccuracy", "sample"),
    MetricSpec("l1", "mean absolute error to the ground truth, [0, 1] scale (lower is better)",
               "gencli.metrics.recon:L1", ("reconstruct", "translate")),
    MetricSpec("mse", "mean squared error of reconstructions (or paired translations) on held-out images, [0, 1] scale (lower is better)",
               "gencli.metrics.recon:MSE", ("reconstruct", "translate")),
    MetricSpec("psnr", "peak signal-to-noise ratio of reconstructions (or paired translations) in dB (higher is better)",
               "gencli.metrics.recon:PSNR", ("reconstruct", "translate")),
    MetricSpec("ssim", "structural similarity of reconstructions (or paired translations), 1 = identical (higher is better)",
               "gencli.metrics.recon:SSIM", ("reconstruct", "translate")),
]
