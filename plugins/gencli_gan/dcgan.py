"""DCGAN: the deep convolutional GAN of Radford, Metz & Chintala (ICLR 2016).

The generator projects z to a 4x4 (or 7x7) map and doubles it with upsampling convolutions,
batch norm and ReLU, ending in tanh; the discriminator mirrors it with strided convolutions and
LeakyReLU(0.2), no batch norm on its input layer. Weights start from N(0, 0.02); Adam 2e-4 with
beta1 0.5. One image size fixes the number of doublings: 28 px starts at 7x7, 32 and 64 px at
4x4 (every size of the form 4 * 2^k or 7 * 2^k up to 256 works).

These two networks also serve WGAN, WGAN-GP (``d_norm``: batch norm for WGAN's critic, layer norm
for WGAN-GP's) and the conditional GAN (``num_classes``: the one-hot label joins z, and the
discriminator adds a projection term).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gencli.nn.ema import ema_copy
from gencli.nn.layers import init_normal, sn_conv2d, sn_embedding, sn_linear
from gencli_gan.base import (
    GAN,
    check_doubling_size,
    discriminator_norm,
    resolution_plan,
)
from gencli_gan.declarations import (  # noqa: F401 - declared apart from the networks
    DCGANArchitecture,
    DCGANDeclarations,
    DCGANHyperparameters,
    DiscriminatorNorm,
    Upsample,
)


# ---------------------------------------------------------------------------------- networks
def upsampling(c_in: int, c_out: int, mode: str, bias: bool) -> nn.Module:
    """Return a layer doubling the spatial size: transposed conv, nearest + conv, or sub-pixel conv."""
    if mode == "transpose":
        return nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=bias)
    if mode == "nearest":  # avoids the checkerboard artefacts of strided transposed convolutions
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, padding=1, bias=bias))
    # PixelShuffle (Shi et al. 2016): a conv to 4x the channels, rearranged into a 2x larger map
    return nn.Sequential(nn.Conv2d(c_in, 4 * c_out, 3, padding=1, bias=bias), nn.PixelShuffle(2))


class ClassBatchNorm2d(nn.BatchNorm2d):
    """Batch norm whose gain and bias belong to each image's class (conditional batch norm).

    The statistics are shared; the affine part is looked up per label, starting at gain 1 and
    bias 0 for every class, so at initialisation it equals plain batch norm.
    """

    def __init__(self, channels: int, num_classes: int):
        super().__init__(channels, affine=False)
        # Plain parameters rather than embeddings, which a DCGAN initialisation would set near 0.
        self.class_gain = nn.Parameter(torch.ones(num_classes, channels))
        self.class_bias = nn.Parameter(torch.zeros(num_classes, channels))

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        h = super().forward(x)
        gain, bias = self.class_gain[labels], self.class_bias[labels]
        return h * gain[:, :, None, None].to(h.dtype) + bias[:, :, None, None].to(h.dtype)


class DCGANGenerator(nn.Module):
    """z (+ one-hot label) -> image in [-1, 1]; width halves at each doubling, ending at ``width``.

    A conditional generator reads the one-hot label joined to z; with ``class_norm`` every batch
    norm also takes the class's own gain and bias (Miyato & Koyama 2018 pair this with the
    projection discriminator), so the label reaches every layer instead of the input only.
    """

    def __init__(self, z_dim: int, channels: int, image_size: int, width: int = 64, depth: int = 0,
                 upsample: str = "transpose", num_classes: int = 0, class_norm: bool = False):
        super().__init__()
        base, doublings = resolution_plan(image_size)
        self.num_classes = num_classes
        self.class_norm = bool(class_norm and num_classes)
        widths = [width * 2 ** (doublings - 1 - i) for i in range(doublings)]

        def norm(c: int) -> nn.Module:
            return ClassBatchNorm2d(c, num_classes) if self.class_norm else nn.BatchNorm2d(c)

        # "Project and reshape": a transposed conv from 1x1 to base x base is a linear layer.
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim + num_classes, widths[0], base, bias=False), norm(widths[0]), nn.ReLU(True),
        ]
        for i, c_in in enumerate(widths):
            for _ in range(depth):  # extra same-size layers: a deeper generator at equal width
                layers += [nn.Conv2d(c_in, c_in, 3, padding=1, bias=False), norm(c_in), nn.ReLU(True)]
            last = i == doublings - 1
            c_out = channels if last else widths[i + 1]
            layers.append(upsampling(c_in, c_out, upsample, bias=last))
            layers += [nn.Tanh()] if last else [norm(c_out), nn.ReLU(True)]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:
            z = torch.cat([z, F.one_hot(labels.long(), self.num_classes).to(z.dtype)], dim=1)
        h = z.view(*z.shape, 1, 1)
        if not self.class_norm:
            return self.body(h)
        labels = labels.long()
        for layer in self.body:
            h = layer(h, labels) if isinstance(layer, ClassBatchNorm2d) else layer(h)
        return h


class DCGANDiscriminator(nn.Module):
    """Image (+ label) -> one logit per image; width doubles at each halving, starting at ``width``.

    With ``num_classes`` it is a projection discriminator (Miyato & Koyama 2018): the logit gains
    <embed(y), sum-pooled features>, which scores how well the image matches its label.
    """

    def __init__(self, channels: int, image_size: int, width: int = 64, depth: int = 0, norm: str = "batch",
                 dropout: float = 0.0, num_classes: int = 0):
        super().__init__()
        base, halvings = resolution_plan(image_size)
        spectral = norm == "spectral"
        conv = sn_conv2d if spectral else nn.Conv2d
        linear = sn_linear if spectral else nn.Linear

        def activation() -> list[nn.Module]:
            return [nn.LeakyReLU(0.2, True)] + ([nn.Dropout(dropout)] if dropout > 0 else [])

        layers: list[nn.Module] = []
        c_in = channels
        for i in range(halvings):
            c_out = width * 2**i
            normed = i > 0 and norm in ("batch", "layer")  # never normalise the raw image (DCGAN)
            layers += [conv(c_in, c_out, 4, stride=2, padding=1, bias=not normed)]
            layers += [discriminator_norm(norm, c_out)] if normed else []
            layers += activation()
            for _ in range(depth):
                layers += [conv(c_out, c_out, 3, padding=1, bias=norm not in ("batch", "layer"))]
                layers += [discriminator_norm(norm, c_out)] + activation()
            c_in = c_out
        self.features = nn.Sequential(*layers)
        # DCGAN's last layer is a base x base convolution to one value: a linear layer on the map.
        self.head = linear(c_in * base * base, 1)
        self.embed = (sn_embedding if spectral else nn.Embedding)(num_classes, c_in) if num_classes else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x)
        out = self.head(h.flatten(1)).squeeze(1)
        if self.embed is not None:
            out = out + (self.embed(labels.long()) * h.sum(dim=(2, 3))).sum(dim=1)
        return out


# ---------------------------------------------------------------------------------- model
# Below this many training images the paper's recipe does poorly; a new dcgan run takes two
# changes instead, each measured on 1,437 handwritten digits at 28 px (benchmarks/bench_quality.py):
# - the discriminator: the paper's batch-norm D overfits the real set and its feedback turns poor;
#   a spectrally normalised one with the hinge loss (Miyato et al. 2018), learning twice as fast as
#   G (two time-scale rates, Heusel et al. 2017), stays useful: FID 39.8 against 56.7 after 1,320
#   steps (60 epochs);
# - the depth: one extra 3x3 convolution per resolution in both networks (at 28 px the paper's
#   networks have two layers each): FID 9.4 against 30.5 after 4,000 steps (10.4 with another seed),
#   at about 2.5 times the time per step. Neither network deepened alone came close (G alone: 36.0
#   after 3,000 steps; D alone: 33.4 after 2,000).
# Each part is taken only where the user set none of its settings. Larger sets keep the paper's recipe,
# and a note says so (Fashion-MNIST's 60,000 images: benchmarks/RESULTS.md, the league).
SMALL_DATA = 10_000
SMALL_DATA_DISCRIMINATOR = {"d_norm": "spectral", "loss": "hinge", "lr_d": 2.0}  # lr_d: a multiple of lr
SMALL_DATA_DEPTH = {"depth": 1}  # g_depth and d_depth follow depth unless set


class DCGAN(DCGANDeclarations, GAN):
    name = "dcgan"
    summary = "deep convolutional GAN (Radford et al. 2016)"
    data = "images"
    test_overrides = {"g_width": 8, "d_width": 8, "z_dim": 16}

    @classmethod
    def check_shape(cls, image_size: int, channels: int) -> None:
        check_doubling_size(cls.name, image_size, channels)

    @classmethod
    def fit_to_data(cls, hp, data, given: frozenset[str]):
        """On fewer than SMALL_DATA images, the unconditional DCGAN takes the small-data recipe.

        Each part (the discriminator, the depth) only where the user set none of its settings (any
        one of them means they chose), and only for ``dcgan`` itself: the conditional GAN already
        reaches its targets with the paper's recipe, and the WGANs fix their own loss and critic.
        """
        if cls.name != "dcgan":
            return hp, []
        if len(data) >= SMALL_DATA:
            if given & {*SMALL_DATA_DISCRIMINATOR, *SMALL_DATA_DEPTH, "g_depth", "d_depth"}:
                return hp, []
            return hp, [f"{len(data):,} training images ({SMALL_DATA:,} or more): the paper's recipe (d_norm={hp.d_norm}, "
                        f"loss={hp.loss}, depth={hp.depth}); the small-data recipe (a spectrally normalised hinge "
                        "discriminator, one more convolution per resolution) was chosen on smaller sets; set any of "
                        "them with --set to choose yourself"]
        chosen, why = [], []
        if not given & SMALL_DATA_DISCRIMINATOR.keys():
            hp.d_norm, hp.loss = SMALL_DATA_DISCRIMINATOR["d_norm"], SMALL_DATA_DISCRIMINATOR["loss"]
            hp.lr_d = SMALL_DATA_DISCRIMINATOR["lr_d"] * hp.lr
            chosen.append(f"d_norm={hp.d_norm}, loss={hp.loss}, lr_d={hp.lr_d:g}")
            why.append("a spectrally normalised hinge discriminator at twice G's rate")
        if not given & {*SMALL_DATA_DEPTH, "g_depth", "d_depth"}:
            hp.depth = SMALL_DATA_DEPTH["depth"]
            chosen.append(f"depth={hp.depth}")
            why.append("an extra convolution per resolution in G and D")
        if not chosen:
            return hp, []
        return hp, [f"{len(data):,} training images (fewer than {SMALL_DATA:,}): {', '.join(chosen)} "
                    f"({' and '.join(why)}), which does better than the paper's recipe on small data; "
                    "set any of them with --set to choose yourself"]

    @property
    def class_norm(self) -> bool:
        """Whether the generator's batch norms take a gain and bias per class (cgan's choice)."""
        return False

    @property
    def label_count(self) -> int:
        """Classes the networks are conditioned on (0: unconditional)."""
        return self.num_classes if self.conditional else 0

    def build_networks(self) -> dict[str, nn.Module]:
        hp, c, s = self.hp, self.channels, self.image_size
        # A deeper-but-narrower generator against an unchanged discriminator needs the two apart.
        g_depth = hp.depth if hp.g_depth is None else hp.g_depth
        d_depth = hp.depth if hp.d_depth is None else hp.d_depth
        G = init_normal(DCGANGenerator(hp.z_dim, c, s, hp.g_width, g_depth, hp.upsample, self.label_count,
                                       self.class_norm))
        D = init_normal(DCGANDiscriminator(c, s, hp.d_width, d_depth, hp.d_norm, hp.d_dropout, self.label_count))
        return {"G": G, "D": D, "G_ema": ema_copy(G)}
