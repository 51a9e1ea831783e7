"""The built-in metrics of ``gencli eval`` (no torch import)."""

from gencli.registry import MetricSpec

METRICS: list[MetricSpec] = [
    MetricSpec("fid", "Frechet Inception Distance to the real images (pytorch-fid's Inception, lower is better)",
               "gencli.metrics.fid:FID", "sample"),
    MetricSpec("kid", "Kernel Inception Distance, unbiased, mean and std over subsets (lower is better)",
               "gencli.metrics.kid:KID", "sample"),
    MetricSpec("prdc", "precision, recall, density and coverage of generated images (k = 5 neighbours)",
               "gencli.metrics.prdc:PRDC", "sample"),
    MetricSpec("fid-class", "FID per class of a conditional model, and their mean", "gencli.metrics.fid:ClassFID", "sample"),
    MetricSpec("accuracy", "class accuracy of a conditional model's images by your --classifier",
               "gencli.metrics.accuracy:ClassAccuracy", "sample"),
    MetricSpec("mse", "reconstruction mean squared error on held-out images, [0, 1] scale (lower is better)",
               "gencli.metrics.recon:MSE", "reconstruct"),
    MetricSpec("psnr", "reconstruction peak signal-to-noise ratio in dB (higher is better)",
               "gencli.metrics.recon:PSNR", "reconstruct"),
    MetricSpec("ssim", "reconstruction structural similarity, 1 = identical (higher is better)",
               "gencli.metrics.recon:SSIM", "reconstruct"),
]
