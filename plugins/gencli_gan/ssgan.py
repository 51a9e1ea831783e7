"""SS-GAN: the self-supervised GAN of Chen, Zhai, Ritter, Lucic & Houlsby (CVPR 2019).

An unconditional ResNet GAN (the SNGAN architecture of Miyato et al. 2018) whose spectrally
normalised discriminator has a second head that predicts the rotation (0, 90, 180 or 270
degrees) of its input. The rotation task keeps D learning features that do not depend on the
ever-changing fakes, against the forgetting that destabilises GAN training:

    L_D = adversarial loss + beta  * CE(rotation of rotated reals)
    L_G = adversarial loss + alpha * CE(rotation of rotated fakes)

with beta = 1 and alpha = 0.2 as in the authors' code. The rotated batch is a quarter of the
batch in all four rotations, so the rotation task costs one extra batch per network pass.

Generator: z (128) -> 4x4 (or 7x7) map -> one upsampling residual block per doubling ->
BN, ReLU, 3x3 conv, tanh. Discriminator: residual blocks halving down to 8x8 (7x7 for 28/56 px)
then two more at that size, ReLU, global sum pooling, two linear heads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gencli.nn.ema import ema_copy
from gencli.nn.layers import sn_conv2d, sn_linear
from gencli.nn.losses import discriminator_loss, discriminator_score, generator_loss
from gencli_gan.base import (
    GAN,
    check_doubling_size,
    resolution_plan,
)
from gencli_gan.declarations import (  # noqa: F401 - declared apart from the networks
    SSGANArchitecture,
    SSGANDeclarations,
    SSGANHyperparameters,
)

ROTATIONS = 4  # 0, 90, 180 and 270 degrees


# ---------------------------------------------------------------------------------- networks
class UpBlock(nn.Module):
    """Residual block doubling the size: BN-ReLU-up-conv-BN-ReLU-conv, plus up-1x1conv shortcut."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.residual = nn.Sequential(
            nn.BatchNorm2d(c_in), nn.ReLU(True), nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(True), nn.Conv2d(c_out, c_out, 3, padding=1),
        )
        self.shortcut = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x) + self.shortcut(x)


class DownBlock(nn.Module):
    """Spectrally normalised residual block, optionally halving the size with average pooling.

    The first block of the discriminator (``first``) sees raw pixels, so it starts with a conv
    rather than a ReLU and pools its input before the shortcut's 1x1 conv.
    """

    def __init__(self, c_in: int, c_out: int, down: bool, first: bool = False):
        super().__init__()
        pool = [nn.AvgPool2d(2)] if down else []
        pre = [] if first else [nn.ReLU()]
        self.residual = nn.Sequential(
            *pre, sn_conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), sn_conv2d(c_out, c_out, 3, padding=1), *pool,
        )
        if first:
            self.shortcut = nn.Sequential(*pool, sn_conv2d(c_in, c_out, 1))
        elif down or c_in != c_out:
            self.shortcut = nn.Sequential(sn_conv2d(c_in, c_out, 1), *pool)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x) + self.shortcut(x)


class ResNetGenerator(nn.Module):
    """z -> image in [-1, 1]: a linear map to base x base x width, then upsampling residual blocks."""

    def __init__(self, z_dim: int, channels: int, image_size: int, width: int = 256):
        super().__init__()
        self.base, doublings = resolution_plan(image_size)
        self.width = width
        self.project = nn.Linear(z_dim, self.base * self.base * width)
        self.blocks = nn.Sequential(*[UpBlock(width, width) for _ in range(doublings)])
        self.out = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU(True), nn.Conv2d(width, channels, 3, padding=1), nn.Tanh())

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.project(z).view(-1, self.width, self.base, self.base)
        return self.out(self.blocks(h))


class RotationDiscriminator(nn.Module):
    """Image -> (real/fake logit, rotation logits over 4 classes), spectrally normalised ResNet."""

    def __init__(self, channels: int, image_size: int, width: int = 128):
        super().__init__()
        _, doublings = resolution_plan(image_size)
        halvings = max(1, doublings - 1)  # down to 8x8 from 4-based sizes, as SNGAN's CIFAR critic
        blocks = [DownBlock(channels, width, down=True, first=True)]
        blocks += [DownBlock(width, width, down=True) for _ in range(halvings - 1)]
        blocks += [DownBlock(width, width, down=False) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks, nn.ReLU())
        self.adversarial = sn_linear(width, 1)
        self.rotation = sn_linear(width, ROTATIONS)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.blocks(x).sum(dim=(2, 3))
        return self.adversarial(h).squeeze(1), self.rotation(h)


# ---------------------------------------------------------------------------------- rotation task
def rotate_batch(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (every image of ``x`` rotated by 0, 90, 180 and 270 degrees, the rotation labels 0-3).

    Rotation k turns the image by k * 90 degrees counter-clockwise; the output holds all of ``x``
    at rotation 0, then all at rotation 1, and so on.
    """
    rotated = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(ROTATIONS)])
    labels = torch.arange(ROTATIONS, device=x.device).repeat_interleave(len(x))
    return rotated, labels


def rotation_subset(n: int) -> int:
    """Return how many images of a batch of ``n`` are rotated (a quarter, at least one)."""
    return max(1, n // ROTATIONS)


# ---------------------------------------------------------------------------------- model
class SSGAN(SSGANDeclarations, GAN):
    name = "ssgan"
    summary = "self-supervised GAN: ResNet GAN with a rotation-predicting discriminator (Chen et al. 2019)"
    data = "images"
    test_overrides = {"g_width": 16, "d_width": 16, "z_dim": 16}

    @classmethod
    def check_shape(cls, image_size: int, channels: int) -> None:
        check_doubling_size(cls.name, image_size, channels)

    def build_networks(self) -> dict[str, nn.Module]:
        hp = self.hp
        G = ResNetGenerator(hp.z_dim, self.channels, self.image_size, hp.g_width)
        D = RotationDiscriminator(self.channels, self.image_size, hp.d_width)
        return {"G": G, "D": D, "G_ema": ema_copy(G)}

    def discriminator_step(self, real, labels, noise_std, fake=None):
        G, D, kind = self.nets["G"], self.nets["D"], self.loss_kind()
        n = len(real)
        if fake is None:
            with torch.no_grad(), self.autocast():
                fake = G(self.draw_z(n))
        with self.autocast():
            real_in, fake_in = self.d_input(real, noise_std), self.d_input(fake, noise_std)
            rotated, rotations = rotate_batch(real_in[: rotation_subset(n)])
            # One pass over reals, fakes and rotated reals (D has no batch statistics to mix).
            logits, rot_logits = D(torch.cat([real_in, fake_in, rotated]))
            real_out, fake_out = logits[:n], logits[n : 2 * n]
            rot_real = F.cross_entropy(rot_logits[2 * n :].float(), rotations)
            loss = discriminator_loss(kind, real_out, fake_out, self.real_target()) + self.hp.beta * rot_real
        self.optimize("D", loss)
        return {
            "loss_d": loss.detach(),
            "d_real": discriminator_score(kind, real_out),
            "d_fake": discriminator_score(kind, fake_out),
            "rot_real": rot_real.detach(),
        }

    def generator_step(self, n, labels, noise_std, fake=None):
        G, D = self.nets["G"], self.nets["D"]
        with self.autocast(), self.frozen("D"):
            fake_in = self.d_input(G(self.draw_z(n)) if fake is None else fake, noise_std)
            rotated, rotations = rotate_batch(fake_in[: rotation_subset(n)])
            logits, rot_logits = D(torch.cat([fake_in, rotated]))
            rot_fake = F.cross_entropy(rot_logits[n:].float(), rotations)
            loss = generator_loss(self.loss_kind(), logits[:n]) + self.hp.alpha * rot_fake
        self.optimize("G", loss)
        return {"loss_g": loss.detach(), "rot_fake": rot_fake.detach()}
