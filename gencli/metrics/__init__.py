"""Metrics for ``gencli eval``: FID, KID, precision/recall, reconstruction and class accuracy.

Importing this package does not import torch (``gencli.metrics.catalog`` is read at discovery).
``evaluate`` evaluates a run, ``choose`` picks its metrics, ``compare`` reads results back and
ranks them, ``folders`` scores two image folders; ``cli/eval.py`` only parses and prints.

How a metric plugs in
---------------------
A plugin registers metrics through the ``gencli_register_metrics`` hook, returning light specs::

    from gencli.registry import MetricProperties, MetricSpec

    @hookimpl
    def gencli_register_metrics():
        return [MetricSpec("sharpness", "mean Laplacian variance of samples", "gencli_foo.metrics:Sharpness",
                           needs="sample", properties=MetricProperties(default_for=("generative",)))]

``target`` names a class (or any factory) that ``gencli eval`` calls with no arguments. The object
it returns follows the ``Metric`` protocol: ``compute(ctx) -> dict[str, float]``, where ``ctx`` is
a ``gencli.metrics.context.EvalContext``. ``needs`` is the model capability the metric requires
("sample", "reconstruct", "encode", "translate", ...): ``gencli eval`` refuses a metric whose
capability the model lacks, naming what it can do. ``properties`` (a ``MetricProperties``, all
fields optional) declares the rest: whether it needs features, labels or a classifier, whether
lower is better (for tables across runs), the kinds of run it is a default for, and the fewest
images it can be computed on. Raise ``gencli.errors.UserError`` for any
other mistake (e.g. a metric that needs labels on unlabelled data), preferably from an optional
``check(ctx) -> None``, which ``gencli eval`` calls for every chosen metric before any of them
computes, so a mistake costs no generation time.

What the context offers (each piece of work is done once and shared between metrics):
- ``ctx.model`` (eval mode, on ``ctx.device``), ``ctx.data`` (the real ``ImageData`` of the
  chosen split), ``ctx.n``, ``ctx.batch_size``, ``ctx.seed``, ``ctx.label``;
- ``ctx.real_images()`` / ``ctx.generated_images()``: uint8 images and labels;
- ``ctx.real_features()`` / ``ctx.generated_features()``: a ``FeatureSet`` (features [N, D],
  labels, ``statistics()`` for mean and covariance) from the feature extractor in use, real ones
  cached on disk;
- ``ctx.reconstructions()``: per-image L1, MSE, PSNR and SSIM of the real images' reconstructions;
- for a translation model (``ctx.translating``: it translates and trains on paired or unpaired
  data), ``ctx.directions()``, ``ctx.translations(direction)`` (inputs, outputs, ground truth
  and per-image errors on paired data), ``ctx.translated_features(direction)`` and
  ``ctx.domain_features(direction)`` (the real images of the target domain);
- ``ctx.classify(images)``: logits of the user's ``--classifier``.

Keys of the returned dict become the columns of the results table and of ``metrics.jsonl``;
use ``name/part`` for families of values (``fid/cat``, ``fid/dog``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from gencli.metrics.context import EvalContext


class Metric(Protocol):
    """What ``gencli eval`` calls: ``compute(ctx)`` returns named values (``check(ctx)`` is optional)."""

    def compute(self, ctx: "EvalContext") -> dict[str, float]: ...


__all__ = ["Metric"]
