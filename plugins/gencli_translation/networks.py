"""Shared building blocks of the image-to-image translation networks.

The pieces CycleGAN (Zhu et al. 2017) and pix2pix (Isola et al. 2017) are made of, written once:
- ``ResnetBlock`` and ``ResnetGenerator``: reflection padding, instance norm, two stride-2
  downsamplings, residual blocks at a quarter of the resolution, two transposed-conv upsamplings;
- ``UnetGenerator``: an encoder-decoder whose mirrored layers are joined by skip connections,
  built recursively from ``UnetSkipBlock`` (innermost block first);
- ``PatchDiscriminator``: the N-layer PatchGAN that classifies overlapping patches (70x70 with
  three layers, a 30x30 map of decisions for a 256 px image);
- ``ImagePool``: the history of generated images the CycleGAN discriminators train on;
- ``norm_layer``, and ``init_weights`` (N(0, 0.02) as in both papers; the one DCGAN
  initialisation every GAN in gencli uses, from ``gencli.nn.layers``).

The adversarial losses are those of ``gencli.nn.losses``.

Every network takes and returns float NCHW images in [-1, 1] (tanh outputs).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from gencli.nn.layers import init_normal as init_weights
from gencli_translation.declarations import NormKind  # noqa: F401 - declared apart from the networks

__all__ = [
    "ImagePool", "NormKind", "PatchDiscriminator", "ResnetBlock", "ResnetGenerator", "UnetGenerator",
    "UnetSkipBlock", "conv_bias", "init_weights", "norm_layer", "unet_depth",
]


# ---------------------------------------------------------------------------------------- helpers
def norm_layer(kind: NormKind) -> Callable[[int], nn.Module]:
    """Return a factory ``channels -> normalisation module`` for ``kind``.

    Instance norm has no affine parameters and no running statistics, as in the CycleGAN code:
    each image is normalised by its own statistics at training and test time alike.
    """
    if kind == "batch":
        return lambda channels: nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if kind == "instance":
        return lambda channels: nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "none":
        return lambda channels: nn.Identity()
    raise ValueError(f"unknown normalisation {kind!r}")


def conv_bias(kind: NormKind) -> bool:
    """Return whether a conv followed by ``kind`` normalisation needs its own bias.

    Batch norm's shift makes a bias redundant; instance norm without affine parameters and no
    norm at all do need one.
    """
    return kind != "batch"


# ---------------------------------------------------------------------------------------- ResNet
class ResnetBlock(nn.Module):
    """Two 3x3 convs with reflection padding; returns ``x + block(x)`` at the same shape."""

    def __init__(self, channels: int, norm: NormKind = "instance", dropout: float = 0.0) -> None:
        super().__init__()
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            make_norm(channels),
            nn.ReLU(True),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), make_norm(channels)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """The CycleGAN generator: returns an image of the input's size with ``out_channels`` channels.

    c7s1-ngf, d(2 ngf), d(4 ngf), R(4 ngf) x ``blocks``, u(2 ngf), u(ngf), c7s1-out, tanh
    (Johnson et al. 2016, as used by Zhu et al. 2017). Image sides must be multiples of 4.
    """

    downsamplings = 2

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        ngf: int = 64,
        blocks: int = 9,
        norm: NormKind = "instance",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, 7, bias=bias),
            make_norm(ngf),
            nn.ReLU(True),
        ]
        width = ngf
        for _ in range(self.downsamplings):
            layers += [
                nn.Conv2d(width, width * 2, 3, stride=2, padding=1, bias=bias),
                make_norm(width * 2),
                nn.ReLU(True),
            ]
            width *= 2
        layers += [ResnetBlock(width, norm, dropout) for _ in range(blocks)]
        for _ in range(self.downsamplings):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                make_norm(width // 2),
                nn.ReLU(True),
            ]
            width //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


# ---------------------------------------------------------------------------------------- U-Net
class UnetSkipBlock(nn.Module):
    """One level of the U-Net: returns ``cat(x, up(sub(down(x))))``, or just the image at the top.

    Down: LeakyReLU(0.2), 4x4 stride-2 conv, norm (no activation before the first conv, no norm
    after the innermost one, whose output is 1x1 at the deepest setting). Up: ReLU, 4x4 stride-2
    transposed conv, norm, optional dropout (tanh instead of norm at the top).
    """

    def __init__(
        self,
        outer: int,
        inner: int,
        submodule: nn.Module | None = None,
        in_channels: int | None = None,
        outermost: bool = False,
        norm: NormKind = "batch",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        innermost = submodule is None
        self.outermost = outermost
        down_conv = nn.Conv2d(in_channels or outer, inner, 4, stride=2, padding=1, bias=bias)
        # Below the innermost level nothing is concatenated, so its transposed conv sees `inner`.
        up_in = inner if innermost else inner * 2
        if outermost:
            down = [down_conv]
            up = [nn.ReLU(True), nn.ConvTranspose2d(up_in, outer, 4, stride=2, padding=1), nn.Tanh()]
        elif innermost:
            down = [nn.LeakyReLU(0.2), down_conv]
            up = [nn.ReLU(True), nn.ConvTranspose2d(up_in, outer, 4, stride=2, padding=1, bias=bias), make_norm(outer)]
        else:
            down = [nn.LeakyReLU(0.2), down_conv, make_norm(inner)]
            up = [nn.ReLU(True), nn.ConvTranspose2d(up_in, outer, 4, stride=2, padding=1, bias=bias), make_norm(outer)]
        if dropout > 0 and not outermost:
            up.append(nn.Dropout(dropout))
        middle = [] if innermost else [submodule]
        self.model = nn.Sequential(*down, *middle, *up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        # The skip carries x itself: the LeakyReLU opening `model` is not in place.
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """The pix2pix generator: returns an image of the input's size with ``out_channels`` channels.

    ``depth`` stride-2 downsamplings (8 at 256 px, reaching 1x1), widths ngf, 2 ngf, 4 ngf, 8 ngf,
    8 ngf, ... and the mirrored decoder. Dropout, the generator's only noise source, is applied in
    the ``dropout_layers`` decoder layers right after the bottleneck (three in the paper:
    CD512-CD512-CD512-C512-C256-C128-C64). Image sides must be multiples of ``2 ** depth``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        depth: int = 8,
        ngf: int = 64,
        norm: NormKind = "batch",
        dropout: float = 0.5,
        dropout_layers: int = 3,
    ) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError("a U-Net needs at least 2 downsamplings")
        self.depth = depth
        widths = [ngf * min(2**level, 8) for level in range(depth)]  # inner width of each level
        block: nn.Module | None = None
        for level in reversed(range(1, depth)):  # innermost first, then outwards
            # Levels just above the bottleneck (depth - 2, depth - 3, ...) get dropout.
            drop = dropout if depth - 1 - level <= dropout_layers and level < depth - 1 else 0.0
            block = UnetSkipBlock(widths[level - 1], widths[level], block, norm=norm, dropout=drop)
        self.model = UnetSkipBlock(out_channels, widths[0], block, in_channels=in_channels, outermost=True, norm=norm)

    @property
    def downsamplings(self) -> int:
        """Return the stride-2 downsamplings (``depth``): image sides must be multiples of 2 ** this."""
        return self.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def unet_depth(image_size: int, cap: int = 8) -> int:
    """Return the U-Net depth for ``image_size``: how often it halves evenly, at most ``cap``.

    For powers of two this is log2 of the size capped at 8, the paper's 8 at 256 px.
    """
    depth, size = 0, image_size
    while size % 2 == 0 and size > 1 and depth < cap:
        size //= 2
        depth += 1
    return depth


# ---------------------------------------------------------------------------------------- PatchGAN
class PatchDiscriminator(nn.Module):
    """The N-layer PatchGAN: returns a map [N, 1, h, w] of real/fake logits, one per patch.

    ``layers`` stride-2 4x4 convs (C64-C128-C256 with three), one stride-1 conv (C512), then a
    stride-1 conv to one channel. Three layers see 70x70 patches and give 30x30 at 256 px. The
    first layer has no norm.
    """

    def __init__(self, in_channels: int, ndf: int = 64, layers: int = 3, norm: NormKind = "instance") -> None:
        super().__init__()
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        seq: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        width = ndf
        for n in range(1, layers + 1):
            out = ndf * min(2**n, 8)
            stride = 2 if n < layers else 1  # the last widening conv keeps the resolution
            seq += [
                nn.Conv2d(width, out, 4, stride=stride, padding=1, bias=bias),
                make_norm(out),
                nn.LeakyReLU(0.2, True),
            ]
            width = out
        seq.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*seq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    @staticmethod
    def output_size(image_size: int, layers: int) -> int:
        """Return the side of the decision map for a square ``image_size`` input."""
        size = image_size
        for _ in range(layers):
            size = size // 2  # 4x4, stride 2, padding 1
        return size - 2  # two 4x4, stride-1, padding-1 convs each remove one pixel

    @staticmethod
    def receptive_field(layers: int) -> int:
        """Return the side of the input patch one output decision sees (70 for three layers)."""
        # Walk back from one output pixel: stride-1 k4 convs add 3, stride-2 k4 convs double + 2.
        field = 1 + 3 + 3
        for _ in range(layers):
            field = 2 * field + 2
        return field

    @staticmethod
    def max_layers(image_size: int, wanted: int = 3) -> int:
        """Return ``wanted`` or fewer layers, so the decision map is at least 2x2 at ``image_size``."""
        layers = wanted
        while layers > 1 and PatchDiscriminator.output_size(image_size, layers) < 2:
            layers -= 1
        return layers


# ---------------------------------------------------------------------------------------- image pool
class ImagePool:
    """A history of generated images for the discriminators (Shrivastava et al. 2017).

    Until ``size`` images are stored, ``query`` returns the current images and stores them. Then
    each image is, with probability 1/2, returned as is, or else swapped for a random stored image
    (which the current one replaces), so a discriminator sees half current, half past fakes.
    Random draws come from torch's global generator; ``state``/``load_state`` save the contents.
    """

    def __init__(self, size: int = 50) -> None:
        self.size = size
        self.images: torch.Tensor | None = None  # [size, C, H, W], filled up to `count`
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Return a batch of the same shape mixing ``images`` with stored past images."""
        images = images.detach()
        if self.size == 0:
            return images
        if self.images is None:
            self.images = images.new_empty((self.size, *images.shape[1:]))
        images = images.to(self.images.dtype)  # one dtype, whatever autocast produced
        out = []
        for image in images:
            if self.count < self.size:
                self.images[self.count] = image
                self.count += 1
                out.append(image)
            elif torch.rand(()) < 0.5:  # CPU draws: no device sync
                slot = int(torch.randint(self.size, ()))
                out.append(self.images[slot].clone())
                self.images[slot] = image
            else:
                out.append(image)
        return torch.stack(out)

    def state(self) -> dict[str, Any]:
        """Return the stored images (on the CPU) for a checkpoint."""
        # A compact copy: saving a view would write the whole preallocated buffer.
        stored = self.images[: self.count].to("cpu", copy=True) if self.images is not None else torch.empty(0)
        return {"images": stored, "count": self.count}

    def load_state(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        """Restore what ``state`` returned, on ``device``."""
        self.count = int(state["count"])
        stored = state["images"]
        if self.count == 0:
            self.images = None
            return
        self.images = stored.new_empty((self.size, *stored.shape[1:])).to(device)
        self.images[: self.count] = stored.to(device)
