"""The built-in metrics of ``gencli eval`` (no torch import)."""

from gencli.registry import MetricSpec

METRICS: list[MetricSpec] = []
