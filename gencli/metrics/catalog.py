"""The built-in metrics of ``gencli eval`` (no torch import).

Each declares its properties (``MetricProperties``) exactly as a plugin's metric does: whether
it reads features, labels or a classifier, how its values rank, and the kinds of run it is
chosen for by default. The order here is the order of the default metrics within a run kind.
"""

from gencli.registry import MetricProperties, MetricSpec

_FEATURES = dict(needs_features=True, default_for=("generative", "translation"))

METRICS: list[MetricSpec] = [
    MetricSpec("fid", "Frechet Inception Distance to the real images (of translations: to the target domain; lower is better)",
               "gencli.metrics.fid:FID", ("sample", "translate"),
               properties=MetricProperties(**_FEATURES, lower_is_better=True)),
    MetricSpec("kid", "Kernel Inception Distance, unbiased, mean and std over subsets (lower is better)",
               "gencli.metrics.kid:KID", ("sample", "translate"),
               properties=MetricProperties(**_FEATURES, lower_is_better=True, not_ranked=("kid_std",))),
    MetricSpec("prdc", "precision, recall, density and coverage of generated images (k = 5 neighbours)",
               "gencli.metrics.prdc:PRDC", ("sample", "translate"),
               properties=MetricProperties(needs_features=True, min_images=6)),  # more than k on each side
    MetricSpec("fid-class", "FID per class of a conditional model, and their mean", "gencli.metrics.fid:ClassFID", "sample",
               properties=MetricProperties(needs_features=True, needs_labels=True, lower_is_better=True,
                                           default_for=("conditional",))),
    MetricSpec("accuracy", "class accuracy of a conditional model's images by your --classifier",
               "gencli.metrics.accuracy:ClassAccuracy", "sample",
               properties=MetricProperties(needs_classifier=True, default_for=("conditional",))),
    MetricSpec("l1", "mean absolute error to the ground truth, [0, 1] scale (lower is better)",
               "gencli.metrics.recon:L1", ("reconstruct", "translate"),
               properties=MetricProperties(lower_is_better=True, default_for=("paired-translation",))),
    MetricSpec("mse", "mean squared error of reconstructions (or paired translations) on held-out images, [0, 1] scale (lower is better)",
               "gencli.metrics.recon:MSE", ("reconstruct", "translate"),
               properties=MetricProperties(lower_is_better=True, default_for=("reconstructive",))),
    MetricSpec("psnr", "peak signal-to-noise ratio of reconstructions (or paired translations) in dB (higher is better)",
               "gencli.metrics.recon:PSNR", ("reconstruct", "translate"),
               properties=MetricProperties(default_for=("reconstructive", "paired-translation"))),
    MetricSpec("ssim", "structural similarity of reconstructions (or paired translations), 1 = identical (higher is better)",
               "gencli.metrics.recon:SSIM", ("reconstruct", "translate"),
               properties=MetricProperties(default_for=("reconstructive", "paired-translation"))),
]
