"""The noise-prediction U-Net of DDPM (Ho et al. 2020, appendix B), with a class embedding.

Residual blocks with group norm receive the timestep through a sinusoidal embedding and an MLP;
a learned label embedding is added to it (Ho & Salimans 2022), with one extra "null" label that
stands for "no label" so one network predicts both conditionally and unconditionally.
Self-attention runs at the chosen levels and always in the middle block. The paper's CIFAR-10
network is ``UNet(3, 128, (1, 2, 2, 2), 2, attention_levels=(1,), dropout=0.1)``: 35.7M parameters.

Any image size works: each downsampling halves (rounding up) and each upsampling returns to the
exact size of its skip connection, so 28 px images pass through 14, 7 and 4 and back.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Return sinusoidal embeddings [N, dim] of timesteps ``t`` [N] (as in the Transformer)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    return F.pad(emb, (0, dim % 2))


def group_norm(channels: int, groups: int = 32) -> nn.GroupNorm:
    """Return GroupNorm with the paper's 32 groups, or the largest divisor of ``channels`` below it."""
    return nn.GroupNorm(math.gcd(groups, channels), channels)


def zero_init(module: nn.Module) -> nn.Module:
    """Return ``module`` with zeroed parameters: residual branches then start as the identity."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """Two 3x3 convolutions with group norm and SiLU; the embedding scales and shifts the second norm.

    The embedding acts after ``norm2`` (the scale-shift norm of Nichol & Dhariwal 2021) rather than
    as a shift before it: with few channels a group is a single channel, and a group norm would
    remove a per-channel shift entirely, leaving the network blind to the timestep and label.
    """

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = group_norm(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * out_ch)
        self.norm2 = group_norm(out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = zero_init(nn.Conv2d(out_ch, out_ch, 3, padding=1))
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Multi-head self-attention over all pixels, as a residual branch."""

    def __init__(self, channels: int, heads: int = 1) -> None:
        super().__init__()
        self.heads = heads
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, channels * 3, 1)
        self.out = zero_init(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, self.heads, c // self.heads, h * w).transpose(-1, -2).unbind(1)
        y = F.scaled_dot_product_attention(q, k, v)  # [n, heads, hw, c / heads]
        return x + self.out(y.transpose(-1, -2).reshape(n, c, h, w))


class Downsample(nn.Module):
    """Halve the resolution with a strided 3x3 convolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest-neighbour upsampling to ``size`` followed by a 3x3 convolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, size: torch.Size) -> torch.Tensor:
        return self.conv(F.interpolate(x, size=size, mode="nearest"))


class TimeBlock(nn.Module):
    """A residual block, optionally followed by self-attention and (on the way up) an upsampling."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, dropout: float, attention: bool, heads: int,
                 upsample: bool = False) -> None:
        super().__init__()
        self.res = ResBlock(in_ch, out_ch, emb_dim, dropout)
        self.attn = SelfAttention(out_ch, heads) if attention else None
        self.upsample = Upsample(out_ch) if upsample else None

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        x = self.res(x, emb)
        return self.attn(x) if self.attn is not None else x


class UNet(nn.Module):
    """Predicts the noise (or velocity) in ``x_t`` given the timestep and an optional label."""

    def __init__(
        self,
        channels: int,
        base_width: int = 128,
        channel_mults: tuple[int, ...] = (1, 2, 2, 2),
        res_blocks: int = 2,
        attention_levels: tuple[int, ...] = (1,),
        dropout: float = 0.1,
        num_classes: int = 0,
        heads: int = 1,
    ) -> None:
        super().__init__()
        emb_dim = base_width * 4
        self.base_width = base_width
        self.num_classes = num_classes
        self.time_mlp = nn.Sequential(nn.Linear(base_width, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        # Index ``num_classes`` is the null label of classifier-free guidance.
        self.label_embedding = nn.Embedding(num_classes + 1, emb_dim) if num_classes else None
        self.stem = nn.Conv2d(channels, base_width, 3, padding=1)

        self.down = nn.ModuleList()
        skip_channels = [base_width]
        ch = base_width
        levels = len(channel_mults)
        for level, mult in enumerate(channel_mults):
            for _ in range(res_blocks):
                self.down.append(TimeBlock(ch, base_width * mult, emb_dim, dropout, level in attention_levels, heads))
                ch = base_width * mult
                skip_channels.append(ch)
            if level < levels - 1:
                self.down.append(Downsample(ch))
                skip_channels.append(ch)

        self.mid1 = TimeBlock(ch, ch, emb_dim, dropout, True, heads)
        self.mid2 = TimeBlock(ch, ch, emb_dim, dropout, False, heads)

        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mults))):
            for i in range(res_blocks + 1):
                last_of_level = i == res_blocks and level > 0
                self.up.append(TimeBlock(ch + skip_channels.pop(), base_width * mult, emb_dim, dropout,
                                         level in attention_levels, heads, upsample=last_of_level))
                ch = base_width * mult

        self.head = nn.Sequential(group_norm(ch), nn.SiLU(), zero_init(nn.Conv2d(ch, channels, 3, padding=1)))

    @property
    def null_label(self) -> int:
        """The label index that means "unconditional"."""
        return self.num_classes

    def embed(self, t: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Return the conditioning vector [N, 4 * base_width]: time MLP plus label embedding."""
        emb = self.time_mlp(timestep_embedding(t, self.base_width))
        if self.label_embedding is not None:
            if labels is None:
                labels = torch.full_like(t, self.null_label)
            emb = emb + self.label_embedding(labels)
        return emb

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.embed(t, labels)
        h = self.stem(x)
        skips = [h]
        for block in self.down:
            h = block(h, emb)
            skips.append(h)
        h = self.mid2(self.mid1(h, emb), emb)
        for block in self.up:
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
            if block.upsample is not None:
                h = block.upsample(h, skips[-1].shape[-2:])
        return self.head(h)
