"""Tiny GAN-family configurations and a sample statistic for fast CPU tests."""

from __future__ import annotations

import torch

from gencli.data.base import BatchStream, DataRequest, ImageData
from gencli.data.synthetic import build_shapes
from gencli.models import hparams
from gencli.registry import load_target

TARGETS = {
    "gan": "gencli_gan.mlp:MLPGAN",
    "dcgan": "gencli_gan.dcgan:DCGAN",
    "wgan": "gencli_gan.wgan:WGAN",
    "wgan-gp": "gencli_gan.wgan:WGANGP",
    "cgan": "gencli_gan.cgan:CGAN",
    "ssgan": "gencli_gan.ssgan:SSGAN",
}
# Each architecture at toy scale; the training settings stay the models' own.
TINY = {
    "gan": {"width": 128, "z_dim": 32},
    "dcgan": {"g_width": 16, "d_width": 16, "z_dim": 32},
    "wgan": {"g_width": 16, "d_width": 16, "z_dim": 32},
    "wgan-gp": {"g_width": 16, "d_width": 16, "z_dim": 32},
    "cgan": {"g_width": 16, "d_width": 16, "z_dim": 32},
    "ssgan": {"g_width": 16, "d_width": 16, "z_dim": 32},
}


def model_class(name: str):
    return load_target(TARGETS[name])


def tiny_model(name: str, size: int = 16, channels: int = 3, seed: int = 0, classes=None, **overrides):
    """Return a freshly initialised tiny model ``name``, its hyperparameters checked as from --set."""
    cls = model_class(name)
    hp = hparams.build(cls.Hyperparameters, {**TINY[name], **overrides})
    torch.manual_seed(seed)
    if classes is None and cls.conditional:
        classes = ["circle", "square", "triangle", "diamond", "ring", "cross"]
    return cls(hp, (channels, size, size), classes)


def shapes(size: int = 16, channels: int = 3, count: int = 512) -> ImageData:
    return build_shapes(DataRequest(image_size=size, channels=channels, options={"size": count}))


def train_steps(model, data: ImageData, steps: int, batch_size: int = 32) -> dict:
    """Run ``steps`` train steps the way the engine does; return the last logs."""
    stream = BatchStream(data, batch_size)
    logs, epoch = {}, 0
    while model.step < steps:
        for batch in stream.epoch(epoch):
            logs = model.train_step(batch)
            model.step += 1
            if model.step >= steps:
                break
        epoch += 1
    return logs


def pixel_distance(fake: torch.Tensor, real: torch.Tensor, points: int = 1000) -> float:
    """Return the 1-D Wasserstein distance between the pixel values of two image sets, per channel.

    It compares colour and brightness distributions (background, foreground, their proportions)
    regardless of layout: a generator whose samples still look like its initial grey scores high.
    """
    q = torch.linspace(0, 1, points)
    fq = torch.quantile(fake.transpose(0, 1).flatten(1).float(), q, dim=1)
    rq = torch.quantile(real.transpose(0, 1).flatten(1).float(), q, dim=1)
    return (fq - rq).abs().mean().item()


def samples(model, n: int = 256, labels=None, seed: int = 0) -> torch.Tensor:
    """Return ``n`` samples the way the core asks for them: eval mode, no gradients."""
    model.eval()
    with torch.no_grad():
        out = model.sample(n, labels, torch.Generator().manual_seed(seed))
    model.train()
    return out
