"""The dataset zoo's registrations (no torch import): every downloadable dataset and its card."""

from gencli.registry import DatasetSpec

DATASETS: list[DatasetSpec] = []
