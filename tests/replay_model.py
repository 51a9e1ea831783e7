"""A stand-in model for metric tests whose samples are given images (a module name no test folder reuses)."""

from __future__ import annotations

import torch

from gencli.data.base import to_float


class Replay:
    """A stand-in model whose samples are given images, in order."""

    name, conditional, num_classes, classes = "replay", False, 0, []

    def __init__(self, images: torch.Tensor) -> None:
        self.images, self.at = to_float(images), 0
        self.image_shape = tuple(images.shape[1:])
        self.device = torch.device("cpu")

    def eval(self):
        return self

    def sample(self, n, labels=None, generator=None):
        out = self.images[self.at : self.at + n]
        self.at += n
        return out
