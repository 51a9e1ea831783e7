"""StyleGAN2-style GAN: mapping network, modulated convolutions, noise inputs, style mixing, truncation.

Karras et al. 2019, "A Style-Based Generator Architecture for Generative Adversarial Networks"
(StyleGAN: mapping network, styles, noise inputs, style mixing, truncation trick);
Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN" (StyleGAN2: weight
demodulation, skip generator, residual discriminator, lazy R1, path length regularisation);
Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data" (StyleGAN2-ADA:
the EMA ramp-up and the R1 weight heuristic used when ``r1_gamma`` is not set).

Generator: z -> mapping MLP -> w, broadcast to one w per layer (``num_ws`` of them). The
synthesis network starts from a learned 4x4 constant; each resolution block doubles the size,
applies two modulated 3x3 convolutions (styles from w, weights demodulated), adds per-pixel
noise with a learned strength, and emits an RGB image that is added to the upsampled RGB of
the block before (skip architecture). The 4x4 block reads ``ws[0:2]`` (its convolution and its
RGB layer); the block at 2**k > 4 reads ``ws[2k-5 : 2k-2]`` (two convolutions and the RGB
layer), each RGB layer sharing its w with the next block's first convolution, so an image of
size 2**L uses ``2L - 2`` ws.

Discriminator: 1x1 from-RGB, residual blocks that halve the size, and at 4x4 a minibatch
standard-deviation feature, a 3x3 convolution and two dense layers.

Every layer uses the equalised learning rate: weights are stored with unit variance and scaled
by He's constant at run time, so Adam's per-parameter steps are alike across layers.

Where this departs from the papers, for simplicity at 8-256 px: upsampling is bilinear (the
paper's [1, 3, 3, 1] FIR filter, except at the border) followed by the convolution, and
downsampling is 2x2 average pooling before the convolution, instead of transposed and strided
convolutions with FIR filters. Modulation scales the activations (scale the input by the style,
convolve with the shared weight, scale the output by the demodulation coefficient), which is the
same arithmetic as modulating the weights, batched as one ordinary convolution.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gencli.data.base import Batch, ImageData
from gencli.errors import UserError
from gencli.models.base import (
    ExportedNetwork,
    ExportSpec,
    Model,
    TensorSpec,
)
from gencli.nn.ema import ema_copy, ema_decay_for_half_life, ema_update
from gencli.nn.losses import nonsaturating_d_loss, nonsaturating_g_loss, r1_penalty
from gencli.nn.noise import Noise, noise_for
from gencli.nn.optim import adam
from gencli_stylegan.declarations import (  # noqa: F401 - declared apart from the networks
    StyleGANDeclarations,
    StyleGANHyperparameters,
    StyleGANInterpolateOptions,
    StyleGANSampleOptions,
    StyleMixOptions,
)

SIZES = (8, 16, 32, 64, 128, 256)
NOISE_MODES = ("random", "const")
SPACES = ("w", "z")
# The "coarse" styles of the style-mixing figure are those of the 4x4 and 8x8 layers (StyleGAN,
# section 3.1): the first four ws, the last of which the 8x8 RGB layer shares with the first
# 16x16 convolution. Images of 16 px or less split their ws in half instead.
COARSE_WS = 4
# With channels_base unset, channels_base = this x image size: every image size gets the same
# 16 channels at its output resolution, cheap enough to train on a CPU.
AUTO_CHANNELS_PER_PIXEL = 16


# ---------------------------------------------------------------- networks
def lrelu(x: torch.Tensor) -> torch.Tensor:
    """Return leaky ReLU (slope 0.2) of ``x`` times sqrt(2), which keeps unit variance."""
    return F.leaky_relu(x, 0.2) * math.sqrt(2.0)


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Return ``x`` scaled so each row has unit mean square (StyleGAN's pixel norm of z)."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class EqualLinear(nn.Module):
    """Dense layer with an equalised learning rate (and an optional learning-rate multiplier)."""

    def __init__(self, in_features: int, out_features: int, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activate: bool = False) -> None:
        super().__init__()
        # Stored as N(0, 1/lr_mul^2) and scaled by lr_mul at run time: Adam then moves the
        # effective weight lr_mul times slower (the mapping network uses 0.01).
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_mul))
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_mul)
        return lrelu(x) if self.activate else x


class EqualConv2d(nn.Module):
    """Convolution (stride 1, same padding) with an equalised learning rate."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activate: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.padding = kernel_size // 2
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.weight * self.weight_gain, self.bias, padding=self.padding)
        return lrelu(x) if self.activate else x


class MappingNetwork(nn.Module):
    """z -> w through an MLP; keeps the running average of w that the truncation trick pulls toward."""

    def __init__(self, z_dim: int, w_dim: int, num_layers: int, lr_mul: float, w_avg_beta: float) -> None:
        super().__init__()
        dims = [z_dim] + [w_dim] * num_layers
        self.layers = nn.ModuleList(
            EqualLinear(dims[i], dims[i + 1], lr_mul=lr_mul, activate=True) for i in range(num_layers)
        )
        self.w_avg_beta = w_avg_beta
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, truncation: float = 1.0, track_w_avg: bool = False) -> torch.Tensor:
        """Return w [N, w_dim], pulled toward the average w by ``1 - truncation``."""
        w = normalize_2nd_moment(z.float())
        for layer in self.layers:
            w = layer(w)
        w = w.float()
        if track_w_avg:
            self.track_w_avg(w.detach().mean(0))
        if truncation != 1.0:
            w = self.w_avg + truncation * (w - self.w_avg)
        return w

    @torch.no_grad()
    def track_w_avg(self, w_mean: torch.Tensor) -> None:
        """Move the running average of w toward ``w_mean``, a batch's mean w."""
        self.w_avg.copy_(w_mean.lerp(self.w_avg, self.w_avg_beta))


class ModulatedConv2d(nn.Module):
    """Convolution whose input is scaled per sample by a style from w, output demodulated (StyleGAN2 eq. 1-3)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int,
                 demodulate: bool = True, upsample: bool = False) -> None:
        super().__init__()
        # Styles start at 1 so the initial network is an ordinary convolution.
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.padding = kernel_size // 2
        self.demodulate = demodulate
        self.upsample = upsample

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w)  # [N, in_channels]
        weight = self.weight * self.weight_gain
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = x * styles.to(x.dtype)[:, :, None, None]
        x = F.conv2d(x, weight.to(x.dtype), padding=self.padding)
        if self.demodulate:
            # Output j of a modulated conv has std sqrt(sum_ik (w_jik s_i)^2) for unit-variance
            # input; dividing by it restores unit variance without normalising the activations.
            sigma_sq = styles.float().square() @ weight.float().square().sum(dim=(2, 3)).t()  # [N, out]
            x = x * (sigma_sq + 1e-8).rsqrt().to(x.dtype)[:, :, None, None]
        return x


class NoiseInput(nn.Module):
    """Adds per-pixel Gaussian noise scaled by a learned strength (zero at the start)."""

    def __init__(self, resolution: int) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros([]))
        # The frozen noise of ``noise="const"``, saved with the weights.
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))

    def forward(self, x: torch.Tensor, noise_mode: str, generator: torch.Generator | Noise | None = None) -> torch.Tensor:
        """Add noise drawn from ``generator``: a ``torch.Generator`` when sampling, the model when
        training (per-example noise, drawn as one process would: ``gencli.nn.noise``)."""
        if noise_mode == "const":
            noise = self.noise_const
        elif generator is not None and not isinstance(generator, torch.Generator):
            n, _, h, w = x.shape
            noise = generator.randn(n, 1, h, w).to(x.device)
        else:
            n, _, h, w = x.shape
            device = generator.device if generator is not None else x.device
            noise = torch.randn(n, 1, h, w, generator=generator, device=device).to(x.device)
        return x + noise.to(x.dtype) * self.strength.to(x.dtype)


class StyleLayer(nn.Module):
    """Modulated 3x3 conv (optionally upsampling first), noise input, bias and leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 upsample: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim, demodulate=True, upsample=upsample)
        self.noise = NoiseInput(resolution)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str,
                generator: torch.Generator | None) -> torch.Tensor:
        x = self.noise(self.conv(x, w), noise_mode, generator)
        return lrelu(x + self.bias.to(x.dtype)[:, None, None])


class ToRGB(nn.Module):
    """Modulated 1x1 conv to image channels, without demodulation (the output is an image, not a feature)."""

    def __init__(self, in_channels: int, image_channels: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, image_channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(image_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = self.conv(x, w)
        return x + self.bias.to(x.dtype)[:, None, None]


class SynthesisBlock(nn.Module):
    """One resolution: two style layers (the first upsamples; at 4x4 one layer on the constant) and an RGB output."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, image_channels: int) -> None:
        super().__init__()
        self.resolution = resolution
        if resolution == 4:
            self.const = nn.Parameter(torch.randn(out_channels, 4, 4))
            self.layers = nn.ModuleList([StyleLayer(out_channels, out_channels, w_dim, 4)])
        else:
            self.layers = nn.ModuleList([
                StyleLayer(in_channels, out_channels, w_dim, resolution, upsample=True),
                StyleLayer(out_channels, out_channels, w_dim, resolution),
            ])
        self.torgb = ToRGB(out_channels, image_channels, w_dim)

    @property
    def num_conv(self) -> int:
        return len(self.layers)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor, noise_mode: str,
                generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (features, image) at this resolution; ``ws`` holds ``num_conv + 1`` styles."""
        if x is None:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)  # a traced size: exports take any batch
        for i, layer in enumerate(self.layers):
            x = layer(x, ws[:, i], noise_mode, generator)
        rgb = self.torgb(x, ws[:, self.num_conv])
        if img is not None:
            rgb = rgb + F.interpolate(img, scale_factor=2, mode="bilinear", align_corners=False).to(rgb.dtype)
        return x, rgb


def channels_at(resolution: int, channels_base: int, channels_max: int) -> int:
    """Return the feature channels at ``resolution``: ``channels_base / resolution``, capped (StyleGAN2-ADA)."""
    return min(channels_base // resolution, channels_max)


def resolutions_up_to(size: int) -> list[int]:
    """Return [4, 8, ..., size]."""
    return [2**k for k in range(2, int(math.log2(size)) + 1)]


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> image: a learned constant, a block per resolution, RGB outputs summed."""

    def __init__(self, w_dim: int, image_size: int, image_channels: int, channels_base: int, channels_max: int) -> None:
        super().__init__()
        blocks, in_channels = [], 0
        for res in resolutions_up_to(image_size):
            out_channels = channels_at(res, channels_base, channels_max)
            blocks.append(SynthesisBlock(in_channels, out_channels, w_dim, res, image_channels))
            in_channels = out_channels
        self.blocks = nn.ModuleList(blocks)
        self.num_ws = sum(b.num_conv for b in blocks) + 1

    def forward(self, ws: torch.Tensor, noise_mode: str = "random",
                generator: torch.Generator | None = None) -> torch.Tensor:
        x = img = None
        start = 0
        for block in self.blocks:
            x, img = block(x, img, ws[:, start : start + block.num_conv + 1], noise_mode, generator)
            start += block.num_conv  # the RGB layer's w is the next block's first
        return img


class Generator(nn.Module):
    """z -> image: the mapping network and the synthesis network."""

    def __init__(self, z_dim: int, w_dim: int, mapping_layers: int, mapping_lr_mul: float, w_avg_beta: float,
                 image_size: int, image_channels: int, channels_base: int, channels_max: int) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers, mapping_lr_mul, w_avg_beta)
        self.synthesis = SynthesisNetwork(w_dim, image_size, image_channels, channels_base, channels_max)
        self.num_ws = self.synthesis.num_ws

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """Return ws [N, num_ws, w_dim]: the same w for every layer."""
        return w.unsqueeze(1).expand(-1, self.num_ws, -1)

    def forward(self, z: torch.Tensor, truncation: float = 1.0, noise_mode: str = "random",
                generator: torch.Generator | None = None) -> torch.Tensor:
        return self.synthesis(self.broadcast(self.mapping(z, truncation)), noise_mode, generator)


def minibatch_stddev(x: torch.Tensor, group_size: int) -> torch.Tensor:
    """Return ``x`` with one more channel: the feature std across each group of samples, averaged.

    It lets the discriminator see the variety of a batch and so penalise a collapsed generator
    (Karras et al. 2018). Sample i falls in group i mod (N / G), as in the official code.
    """
    n, c, h, w = x.shape
    g = max(d for d in range(1, min(group_size, n) + 1) if n % d == 0)
    y = x.float().reshape(g, -1, c, h, w)
    y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # [N / G]
    y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w).to(x.dtype)
    return torch.cat([x, y], dim=1)


class DiscriminatorBlock(nn.Module):
    """Residual block: 3x3 conv, halve, 3x3 conv; the skip is halved and projected by a 1x1 conv."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3, activate=True)
        self.conv1 = EqualConv2d(in_channels, out_channels, 3, activate=True)
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.skip(F.avg_pool2d(x, 2))
        x = self.conv1(F.avg_pool2d(self.conv0(x), 2))
        # Dividing the sum by sqrt(2) keeps the variance of a branch (StyleGAN2, appendix B).
        return (x + y) * math.sqrt(0.5)


class Discriminator(nn.Module):
    """image -> logit [N]: from-RGB, residual blocks down to 4x4, minibatch std, conv, two dense layers."""

    def __init__(self, image_size: int, image_channels: int, channels_base: int, channels_max: int,
                 mbstd_group: int) -> None:
        super().__init__()
        ch = lambda res: channels_at(res, channels_base, channels_max)  # noqa: E731
        self.from_rgb = EqualConv2d(image_channels, ch(image_size), 1, activate=True)
        self.blocks = nn.Sequential(*[
            DiscriminatorBlock(ch(res), ch(res // 2)) for res in reversed(resolutions_up_to(image_size)[1:])
        ])
        self.mbstd_group = mbstd_group
        self.conv = EqualConv2d(ch(4) + 1, ch(4), 3, activate=True)
        self.fc = EqualLinear(ch(4) * 16, ch(4), activate=True)
        self.out = EqualLinear(ch(4), 1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.from_rgb(img))
        x = self.conv(minibatch_stddev(x, self.mbstd_group))
        return self.out(self.fc(x.flatten(1))).squeeze(1)


# ---------------------------------------------------------------- losses
# The logistic losses and R1 are the shared ones of ``gencli.nn.losses``; path length is StyleGAN2's own.
def path_lengths(images: torch.Tensor, ws: torch.Tensor, noise: Noise | None = None) -> torch.Tensor:
    """Return |J_w^T y| per sample [N] for random image-space directions y (StyleGAN2 eq. 4), differentiable.

    y is Gaussian (drawn from ``noise``: the model when training) scaled by 1/sqrt(pixels), so the
    lengths do not depend on the image size.
    """
    h, w = images.shape[2:]
    y = noise_for(images, noise).randn_like(images) / math.sqrt(h * w)
    (grad,) = torch.autograd.grad((images * y).sum(), ws, create_graph=True)
    return grad.float().square().sum(2).mean(1).sqrt()


# ---------------------------------------------------------------- model
def _choice(value, choices: tuple[str, ...], option: str) -> str:
    if value not in choices:
        raise UserError(f"{option} must be {' or '.join(choices)}, got {value!r}")
    return value


class StyleGAN(StyleGANDeclarations, Model):
    """StyleGAN2-style GAN on plain images; ``G_ema`` draws every image the model hands out.

    - ``sample(n, truncation=psi, noise="random"|"const")``: psi 1 is off, 0 the average-w image.
    - ``figure("style-mix", n)``: the style-mixing grid (coarse styles from rows, fine from columns).
    - ``latents(n, space="w"|"z", truncation=psi)`` and ``generate(codes, space=...)``: in W the
      codes are mapped (and truncated) ws that ``generate`` synthesises as they are; in Z they are
      zs that ``generate`` maps and truncates.
    """

    name = "stylegan"
    summary = "StyleGAN2-style generator: mapping network, modulated convs, noise inputs, style mixing, truncation"
    data = "images"
    # The architecture at toy scale, for conformance tests.
    test_overrides = {"z_dim": 32, "w_dim": 32, "mapping_layers": 2, "channels_max": 32}

    @classmethod
    def check_shape(cls, image_size: int, channels: int) -> None:
        if image_size not in SIZES:
            raise UserError(
                f"stylegan works at image sizes {', '.join(map(str, SIZES))} (powers of two), not {image_size}"
            )
        super().check_shape(image_size, channels)

    def build_networks(self) -> dict[str, nn.Module]:
        hp = self.hp
        base = hp.channels_base if hp.channels_base is not None else AUTO_CHANNELS_PER_PIXEL * self.image_size
        if base // self.image_size < 1:
            raise UserError(
                f"channels_base {base} leaves no channels at {self.image_size} px "
                f"(channels = channels_base / resolution): use at least {self.image_size}"
            )
        G = Generator(hp.z_dim, hp.w_dim, hp.mapping_layers, hp.mapping_lr_mul, hp.w_avg_beta,
                      self.image_size, self.channels, base, hp.channels_max)
        D = Discriminator(self.image_size, self.channels, base, hp.channels_max, hp.mbstd_group)
        G_ema = ema_copy(G).eval()
        # Regularisation state beyond the networks, saved by ``extra_state``.
        self.pl_mean = torch.zeros([], device=self.device)
        self.images_seen = 0
        self.last_r1 = torch.zeros([], device=self.device)
        self.last_pl = torch.zeros([], device=self.device)
        return {"G": G, "D": D, "G_ema": G_ema}

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            "G": self._adam(self.nets["G"], self.hp.g_reg_every),
            "D": self._adam(self.nets["D"], self.hp.d_reg_every),
        }

    def _adam(self, net: nn.Module, reg_every: int) -> torch.optim.Optimizer:
        # Lazy regularisation takes one extra step every reg_every; shrinking lr and betas keeps
        # the optimiser's time scale as if there were none (StyleGAN2, appendix B).
        ratio = reg_every / (reg_every + 1)
        betas = (self.hp.beta1**ratio, self.hp.beta2**ratio)
        return adam(net.parameters(), lr=self.hp.lr * ratio, betas=betas, eps=1e-8)

    # ------------------------------------------------------------------ training
    def _prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        device = generator.device if generator is not None else self.device
        return torch.randn(n, self.hp.z_dim, generator=generator, device=device).to(self.device)

    def _training_z(self, n: int) -> torch.Tensor:
        """Return this process's ``n`` rows of the global batch's zs."""
        return self.randn(n, self.hp.z_dim)

    def _training_ws(self, n: int, track_w_avg: bool = False) -> torch.Tensor:
        """Return ws [n, num_ws, w_dim] from G, with the styles of two zs mixed at a random layer.

        The running average of w follows the global batch's mean w, the same in every process.
        """
        G = self.nets["G"]
        w = G.mapping(self._training_z(n))
        if track_w_avg:
            G.mapping.track_w_avg(self.mean_across_processes(w.detach().mean(0)))
        ws = G.broadcast(w)
        # One draw for the whole global batch (not per example): every process draws the same.
        if self.hp.style_mixing_prob > 0 and torch.rand(()) < self.hp.style_mixing_prob:
            cutoff = int(torch.randint(1, G.num_ws, ()))
            mixed = G.broadcast(G.mapping(self._training_z(n)))
            ws = torch.cat([ws[:, :cutoff], mixed[:, cutoff:]], dim=1)
        return ws

    def eager_networks(self) -> set[str]:
        """R1 differentiates through D's gradients and path-length regularisation through G's: those
        stay eager under --compile (the EMA generator only samples, so it compiles)."""
        eager = {"D"} if self.hp.r1_gamma != 0 else set()
        return eager | ({"G"} if self.hp.pl_weight > 0 else set())

    def _r1_gamma(self, batch_size: int) -> float:
        if self.hp.r1_gamma is not None:
            return self.hp.r1_gamma
        return 0.0002 * self.image_size**2 / batch_size

    def _ema_decay(self, batch_size: int) -> float:
        half_life = self.hp.ema_kimg * 1000
        if self.hp.ema_rampup is not None:
            half_life = min(half_life, self.images_seen * self.hp.ema_rampup)
        return ema_decay_for_half_life(batch_size, half_life)

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        hp = self.hp
        G, D = self.nets["G"], self.nets["D"]
        real = batch.images
        n = len(real)
        global_n = n * self.world_size  # the batch every process's step stands for

        # Discriminator: logistic loss on real images and fakes from mixed styles.
        with self.autocast():
            with torch.no_grad():
                fake = G.synthesis(self._training_ws(n), "random", self)
            fake_logits, real_logits = D(fake), D(real)
            d_loss = nonsaturating_d_loss(real_logits, fake_logits)
        self.optimize("D", d_loss)

        # Lazy R1 on reals, weighted by the interval so its average effect is unchanged.
        gamma = self._r1_gamma(global_n)
        if gamma > 0 and self.step % hp.d_reg_every == 0:
            real_ = real.detach().requires_grad_(True)
            with self.autocast():
                penalty = r1_penalty(D(real_), real_)
            self.optimize("D", penalty * (gamma / 2) * hp.d_reg_every)
            self.last_r1 = self.mean_across_processes(penalty.detach())  # logged: the global batch's

        # Generator: non-saturating loss; this pass also tracks the average w.
        with self.autocast(), self.frozen("D"):
            fake = G.synthesis(self._training_ws(n, track_w_avg=True), "random", self)
            g_loss = nonsaturating_g_loss(D(fake))
        self.optimize("G", g_loss)

        # Lazy path length regularisation on a smaller batch: |J^T y| held near its running mean.
        if hp.pl_weight > 0 and self.step % hp.g_reg_every == 0:
            with self.autocast():
                ws = self._training_ws(max(1, n // hp.pl_batch_shrink))
                lengths = path_lengths(G.synthesis(ws, "random", self), ws, self)
            self.pl_mean = self.pl_mean.lerp(self.mean_across_processes(lengths.mean().detach()), hp.pl_decay)
            penalty = (lengths - self.pl_mean).square().mean()
            self.optimize("G", penalty * hp.pl_weight * hp.g_reg_every)
            self.last_pl = self.mean_across_processes(penalty.detach())

        ema_update(self.nets["G_ema"], G, self._ema_decay(global_n))
        self.images_seen += global_n
        return {
            "d_loss": d_loss.detach(),
            "g_loss": g_loss.detach(),
            "r1": self.last_r1,
            "pl": self.last_pl,
            "d_real": real_logits.detach().float().mean(),
            "d_fake": fake_logits.detach().float().mean(),
        }

    def extra_state(self) -> dict:
        return {
            "pl_mean": self.pl_mean.detach().cpu(),
            "images_seen": self.images_seen,
            "last_r1": self.last_r1.detach().cpu(),
            "last_pl": self.last_pl.detach().cpu(),
        }

    def load_extra_state(self, state: dict) -> None:
        self.pl_mean = state["pl_mean"].to(self.device)
        self.images_seen = int(state["images_seen"])
        self.last_r1 = state["last_r1"].to(self.device)
        self.last_pl = state["last_pl"].to(self.device)

    # ------------------------------------------------------------------ capabilities
    def _synthesize(self, ws: torch.Tensor, noise: str, generator: torch.Generator | None,
                    chunk: int = 256) -> torch.Tensor:
        """Return images for ws from the EMA generator, in chunks so large requests fit in memory."""
        synthesis = self.nets["G_ema"].synthesis
        out = []
        for i in range(0, len(ws), chunk):
            with self.autocast():
                out.append(synthesis(ws[i : i + chunk], noise, generator).float().clamp(-1, 1))
        return torch.cat(out)

    @torch.no_grad()
    def sample(self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None,
               truncation: float = StyleGANSampleOptions.truncation, noise: str = "random") -> torch.Tensor:
        """Return ``n`` images; ``truncation`` psi pulls w toward its average (1 = off).

        ``noise`` is "random" (drawn from ``generator``) or "const" (the frozen noise maps).
        """
        psi, noise = truncation, _choice(noise, NOISE_MODES, "noise")
        G = self.nets["G_ema"]
        w = G.mapping(self._prior(n, generator), psi)
        return self._synthesize(G.broadcast(w), noise, generator)

    @torch.no_grad()
    def latents(self, n: int, generator: torch.Generator | None = None, space: str = "w",
                truncation: float = StyleGANInterpolateOptions.truncation) -> torch.Tensor:
        """Return ``n`` codes to interpolate between: mapped (and truncated) w [n, w_dim], or z with ``space="z"``.

        In W the truncation is applied here, so ``generate`` takes these ws as they are.
        """
        space, psi = _choice(space, SPACES, "space"), truncation
        z = self._prior(n, generator)
        return z if space == "z" else self.nets["G_ema"].mapping(z, psi)

    def interpolation_path(self, a: torch.Tensor, b: torch.Tensor, t: torch.Tensor, space: str = "w",
                           **options) -> torch.Tensor:
        """Return codes from ``a`` to ``b``: a straight line in W (a learned space), the sphere in Z."""
        from gencli.models.paths import lerp, slerp

        return lerp(a, b, t) if space == "w" else slerp(a, b, t)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None, space: str = "w",
                 truncation: float = StyleGANInterpolateOptions.truncation, noise: str = "const") -> torch.Tensor:
        """Return the images of codes from ``latents``: ws used as they are (``space="w"``), or zs mapped and truncated.

        Noise is frozen by default so that interpolation frames differ only by their codes.
        """
        space, psi = _choice(space, SPACES, "space"), truncation
        noise = _choice(noise, NOISE_MODES, "noise")
        G = self.nets["G_ema"]
        w = G.mapping(z.to(self.device), psi) if space == "z" else z.to(self.device).float()
        return self._synthesize(G.broadcast(w), noise, None)

    @torch.no_grad()
    def figure(self, kind: str, n: int, generator: torch.Generator | None = None,
               truncation: float = StyleMixOptions.truncation, noise: str = "const", **options) -> tuple[torch.Tensor, int]:
        """Return (images, nrow) of the style-mixing grid: about ``n`` mixes, k row seeds by k column seeds.

        k is the rounded square root of ``n``. The first row shows the column sources, the first
        column the row sources, the corner is blank; cell (i, j) takes the coarse styles (4x4 and
        8x8 layers) of row source i and the finer styles of column source j, as in StyleGAN's
        figure 3. Noise is frozen by default so cells differ only by their styles.
        """
        if kind != "style-mix":
            raise UserError(f"stylegan draws the figures: {', '.join(sorted(self.figures))}; not {kind!r}")
        psi, noise = truncation, _choice(noise, NOISE_MODES, "noise")
        k = max(1, round(int(n) ** 0.5))
        G = self.nets["G_ema"]
        rows_w = G.broadcast(G.mapping(self._prior(k, generator), psi))
        cols_w = G.broadcast(G.mapping(self._prior(k, generator), psi))
        coarse = self.coarse_ws
        mixed = torch.cat([
            rows_w[:, None, :coarse].expand(-1, k, -1, -1),
            cols_w[None, :, coarse:].expand(k, -1, -1, -1),
        ], dim=2).flatten(0, 1)  # row-major: (row i, column j)
        row_imgs, col_imgs, cells = self._synthesize(torch.cat([rows_w, cols_w, mixed]), noise, generator).split(
            [k, k, k * k])
        grid = [torch.ones_like(row_imgs[:1]), col_imgs]  # a white corner
        for i in range(k):
            grid += [row_imgs[i : i + 1], cells[i * k : (i + 1) * k]]
        return torch.cat(grid), k + 1

    @property
    def coarse_ws(self) -> int:
        """Return how many leading ws are "coarse" in the style-mixing figure (half of them below 32 px)."""
        return min(COARSE_WS, self.nets["G_ema"].num_ws // 2)

    # ------------------------------------------------------------------ previews
    def preview_inputs(self, data: ImageData, n: int, seed: int) -> dict:
        """Return the fixed zs of the progress grid (zs, not ws: the mapping network keeps learning)."""
        g = torch.Generator().manual_seed(seed)
        return {"z": self._prior(n, g)}

    def preview(self, inputs: dict) -> tuple[torch.Tensor, int]:
        """Return the EMA generator's images of the fixed zs, with frozen noise."""
        images = self.generate(inputs["z"], space="z", noise="const")
        return images, max(1, int(round(len(images) ** 0.5)))

    # ------------------------------------------------------------------ export
    def export_module(self, direction: str | None = None) -> tuple[nn.Module, ExportSpec]:
        """Return mapping + synthesis of the EMA generator for `gencli export`: (z, truncation psi) -> images.

        The truncation is an input (1 = off, the sampling default); the noise inputs are the frozen
        const maps, so the exported network is deterministic.
        """
        G = self.nets["G_ema"]

        def generate(z: torch.Tensor, truncation: torch.Tensor) -> torch.Tensor:
            w = G.mapping(z, 1.0)
            w = G.mapping.w_avg + truncation.to(w.dtype) * (w - G.mapping.w_avg)
            return G.synthesis(G.broadcast(w), "const", None).float().clamp(-1, 1)

        inputs = [TensorSpec("z", ("N", self.hp.z_dim), help="latent code, z ~ N(0, I)"),
                  TensorSpec("truncation", (1,), range=(0, 1), help="truncation psi: 1 = off (the default), 0 = the average image")]
        example = (torch.randn(2, self.hp.z_dim, device=self.device), torch.ones(1, device=self.device))
        images = TensorSpec("images", ("N", *self.image_shape), range=(-1, 1), help="generated images")
        notes = ["truncation is an input: pass [1.0] for the model's default (no truncation)",
                 "noise inputs are the frozen const maps (sample --set noise=const); random noise is not exported"]
        return (ExportedNetwork(generate, G_ema=G),
                ExportSpec("the EMA generator's mapping and synthesis networks: z -> w -> images", inputs, images,
                           example, notes))
