"""pytorch-fid's FID Inception (pool3, 2048-d), built from local weights without a hidden download.

pytorch-fid's own ``InceptionV3`` fetches its weights from GitHub inside its constructor. We
assemble the same network from pytorch-fid's own patched blocks and load the state dict from a
file we found first, so FID agrees with the community's tool and works on offline machines.

Where the weights are looked up, in order:
1. ``--fid-weights PATH`` (the ``path`` argument);
2. the environment variable ``GENCLI_FID_WEIGHTS``;
3. torch's checkpoint cache, ``torch.hub.get_dir()/checkpoints/pt_inception-2015-12-05-6726825d.pth``,
   where pytorch-fid itself downloads them (so a machine that ever ran pytorch-fid has them);
4. a download into that cache; when it fails, one error line says which file to put where.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gencli.errors import UserError

WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{WEIGHTS_FILE}"
WEIGHTS_ENV = "GENCLI_FID_WEIGHTS"
FEATURE_DIMS = 2048


def cached_weights_path() -> Path:
    """Return where torch keeps downloaded weights for this file (it may not exist)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


def download_weights(dest: Path) -> None:
    """Download the FID Inception weights to ``dest``, checking the hash in their file name."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    # The file name carries the first 8 hex digits of its sha256; torch checks them.
    from gencli.ui.progress import bars_hidden

    torch.hub.download_url_to_file(WEIGHTS_URL, str(dest), hash_prefix="6726825d", progress=not bars_hidden())


def find_weights(path: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Return the path of the FID Inception weights, or raise ``UserError`` saying where to put them."""
    given = path or os.environ.get(WEIGHTS_ENV)
    if given:
        p = Path(given).expanduser()
        if not p.is_file():
            source = "--fid-weights" if path else WEIGHTS_ENV
            raise UserError(f"{source} {str(p)!r} does not exist; it should be {WEIGHTS_FILE} from {WEIGHTS_URL}, "
                            "or pass --features NET.pt, a TorchScript feature network of your own")
        return p
    cached = cached_weights_path()
    if cached.is_file():
        return cached
    if download:
        try:
            download_weights(cached)
            return cached
        except Exception:  # offline, proxy, wrong hash: all end in the same advice
            cached.unlink(missing_ok=True)
    raise UserError(missing_weights_message())


def missing_weights_message(metrics: list[str] | None = None) -> str:
    """Return the one line saying which metrics need the Inception weights and the two ways to provide features."""
    what = ", ".join(metrics) if metrics else "FID-style metrics"
    verb = "needs" if metrics and len(metrics) == 1 else "need"
    return (f"{what} {verb} the Inception weights {WEIGHTS_FILE}, which are not here and could not be downloaded: "
            f"put {WEIGHTS_URL} at {cached_weights_path()} or pass --fid-weights FILE (or set {WEIGHTS_ENV}), "
            "or pass --features NET.pt, a TorchScript feature network of your own")


_HASHES: dict[tuple[str, int, int], str] = {}


def file_hash(path: str | os.PathLike) -> str:
    """Return the first 16 hex digits of the file's sha256 (memoised by path, size and mtime)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _HASHES[key] = h.hexdigest()[:16]
    return _HASHES[key]


def fid_inception_architecture() -> nn.Module:
    """Return torchvision's Inception v3 patched into pytorch-fid's FID variant, weights untouched."""
    from pytorch_fid import inception as pf

    net = pf._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    # The blocks where TensorFlow's graph differs from torchvision's (pooling without padding, a
    # max pool in the last block), as pytorch-fid patches them.
    net.Mixed_5b = pf.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = pf.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = pf.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = pf.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = pf.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = pf.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = pf.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = pf.FIDInceptionE_1(1280)
    net.Mixed_7c = pf.FIDInceptionE_2(2048)
    return net


def randomise(net: nn.Module, seed: int = 0, batch_norms: bool = False) -> nn.Module:
    """Give ``net`` random weights in place, for where pytorch-fid's cannot be fetched (tests, benchmarks).

    He-initialised convolutions keep the activations alive through the Inception's 90-odd
    layers; ``batch_norms`` also draws batch-norm statistics and affine terms away from the
    identity, so folding them into the convolutions is exercised. Scores from such weights are
    comparable only with each other.
    """
    torch.manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        elif batch_norms and isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.8, 1.25)
            m.weight.data.uniform_(0.8, 1.2)
            m.bias.data.uniform_(-0.1, 0.1)
    return net


class FIDInception(nn.Module):
    """pytorch-fid's ``InceptionV3`` up to pool3: images in [0, 1], any size, 3 channels -> [N, 2048]."""

    def __init__(self, inception: nn.Module) -> None:
        super().__init__()
        i = inception
        # The same four blocks as pytorch-fid, so the state dicts and the arithmetic match.
        self.blocks = nn.ModuleList([
            nn.Sequential(i.Conv2d_1a_3x3, i.Conv2d_2a_3x3, i.Conv2d_2b_3x3, nn.MaxPool2d(kernel_size=3, stride=2)),
            nn.Sequential(i.Conv2d_3b_1x1, i.Conv2d_4a_3x3, nn.MaxPool2d(kernel_size=3, stride=2)),
            nn.Sequential(i.Mixed_5b, i.Mixed_5c, i.Mixed_5d, i.Mixed_6a, i.Mixed_6b, i.Mixed_6c, i.Mixed_6d, i.Mixed_6e),
            nn.Sequential(i.Mixed_7a, i.Mixed_7b, i.Mixed_7c, nn.AdaptiveAvgPool2d(output_size=(1, 1))),
        ])
        for p in self.parameters():
            p.requires_grad_(False)
        self.memory_format = torch.contiguous_format

    def optimise_for_cpu(self) -> "FIDInception":
        """Fold the batch norms and keep activations channels-last: about 1.5x faster CPU inference.

        oneDNN's convolutions work on channels-last data; given NCHW tensors they reorder every
        input and output, which cost a third of the time. Features change only by float rounding.
        """
        fold_batchnorm(self)
        self.to(memory_format=torch.channels_last)
        self.memory_format = torch.channels_last
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # channels-last before the resize, so the 299 px tensor is made in the layout the convolutions want
        x = x.contiguous(memory_format=self.memory_format)
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        for block in self.blocks:
            x = block(x)
        return x.flatten(1)


def fold_batchnorm(net: nn.Module) -> nn.Module:
    """Fold every frozen batch norm into the convolution before it, in place; return ``net``.

    Each of the Inception's 94 convolutions is followed by a batch norm with running statistics:
    an affine map per channel, which folds into the convolution's weights and a bias, so inference
    skips one pass over every activation. Only for inference: the folded network has other
    parameters (and state dict keys) than the one that was trained.
    """
    for module in net.modules():
        conv, bn = getattr(module, "conv", None), getattr(module, "bn", None)
        # torchvision's BasicConv2d: conv -> bn -> relu, the only pattern in this network
        if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)) or bn.training:
            continue
        module.conv, module.bn = _folded(conv, bn), nn.Identity()
    return net


@torch.no_grad()
def _folded(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    # in float64, so the folded weights round once, not twice
    scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode,
                      device=conv.weight.device, dtype=conv.weight.dtype)
    fused.weight.copy_(conv.weight.double() * scale.reshape(-1, 1, 1, 1))
    fused.bias.copy_((bias - bn.running_mean.double()) * scale + bn.bias.double())
    fused.requires_grad_(False)
    return fused


def load_fid_inception(weights: str | os.PathLike) -> FIDInception:
    """Return the FID Inception with the weights of file ``weights``, in eval mode on the CPU."""
    way_out = (f"it should be {WEIGHTS_FILE} from {WEIGHTS_URL} (download it again), "
               "or pass --features NET.pt, a TorchScript feature network of your own")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:
        # torch's own message for a damaged archive is often a bare key or offset: name the file instead.
        raise UserError(f"FID Inception weights {str(weights)!r} are damaged or not a weights file "
                        f"({type(exc).__name__}); {way_out}") from None
    # Built on the meta device: random initialisation of 24M parameters that the file replaces
    # anyway took most of a second; assign=True then adopts the loaded tensors as they are.
    with torch.device("meta"):
        net = fid_inception_architecture()
    try:
        net.load_state_dict(state, assign=True)
    except (RuntimeError, TypeError, AttributeError):
        raise UserError(f"{str(weights)!r} does not hold the FID Inception weights; {way_out}") from None
    return FIDInception(net).eval()
