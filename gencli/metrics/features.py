"""Feature extractors for FID-style metrics, and feature extraction in batches on the device.

A feature extractor takes a batch of uint8 NCHW images already on the device and returns float
features [N, D]. Two kinds:
- ``InceptionFeatures``: pytorch-fid's Inception pool3 (2048-d), images scaled to [0, 1], grey
  repeated to RGB, resized to 299 inside, exactly as pytorch-fid does for PNG files.
- ``UserFeatures``: a user's network (``--features model.pt``) saved as TorchScript
  (``torch.jit.script(net).save(path)`` or ``torch.jit.trace``), the usual choice for MNIST-like
  data. It receives float images in [-1, 1] at the dataset's size and channels (what models see)
  and returns [N, D] (or [N, D, 1, 1], flattened).

Only TorchScript is accepted, because loading it never runs Python code: its pickles are read by
torch's own restricted unpickler, and gencli checks first that they name nothing but torch's
types. A ``torch.export`` program is refused: ``torch.export.load`` unpickles some weights and
sample inputs with Python's pickle, which can run anything. TorchScript is code all the same, so
before the network is called every graph it can run is checked against an allow-list of pure
tensor operators (``gencli.metrics.script_screen``): one that could read or write a file, or
anything else outside its tensors, is refused by name, and so is code that would run while the
file loads.
"""

from __future__ import annotations

import os
import pickletools
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import torch

from gencli.data.base import to_float
from gencli.errors import UserError
from gencli.metrics.inception import FEATURE_DIMS, file_hash, find_weights, load_fid_inception
from gencli.metrics.script_screen import forbidden_op, load_time_code
from gencli.ui.progress import progress_bar


class FeatureExtractor:
    """Maps uint8 images on the device to float features [N, D]."""

    name: str = ""
    # Identifies the exact network (weights included): part of every cache key and of the settings.
    hash: str = ""

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def to(self, device: torch.device | str) -> "FeatureExtractor":
        raise NotImplementedError


class InceptionFeatures(FeatureExtractor):
    """pytorch-fid's Inception pool3 features (2048-d) from local weights."""

    dims = FEATURE_DIMS
    # Images per Inception pass on the CPU. One image's activations at 299 px are several MB, so
    # a pass over many images streams every layer's output through memory. On an idle 2-core
    # machine passes of 4 to 16 images were within 3% of each other per image, 24 was 6% slower
    # and one pass of 48 14% slower (benchmarks/bench_inception.py --passes 4,8,16,24).
    cpu_batch = 16

    def __init__(self, weights: str | os.PathLike | None = None) -> None:
        path = find_weights(weights)
        self.weights = path
        self.name = "inception-pool3"
        self.hash = file_hash(path)
        self.net = load_fid_inception(path)
        self.device = torch.device("cpu")
        self._optimised = False

    def to(self, device):
        self.device = torch.device(device)
        self.net.to(self.device)
        if self.device.type == "cpu" and not self._optimised:
            self.net.optimise_for_cpu()
            self._optimised = True
        return self

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if not self._optimised and images.device.type == "cpu":
            self.to("cpu")
        step = self.cpu_batch if images.device.type == "cpu" else max(len(images), 1)
        with torch.inference_mode():
            if len(images) <= step:
                return self._features(images)
            # even passes: 50 images go as 13, 13, 12, 12, not 16, 16, 16 and an inefficient 2
            return torch.cat([self._features(part) for part in images.tensor_split(-(-len(images) // step))])

    def _features(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255.0  # the same scaling as torchvision's ToTensor on a PNG
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.net(x)


class UserFeatures(FeatureExtractor):
    """A user's feature network (TorchScript); images arrive in [-1, 1]."""

    def __init__(self, path: str | os.PathLike, what: str = "--features") -> None:
        self.module = load_user_network(path, what)
        self.path = Path(path)
        self.name = f"user:{self.path.name}"
        self.hash = file_hash(self.path)
        self.what = what

    def to(self, device):
        self.module.to(device)
        return self

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        try:
            out = self.module(to_float(images))
        except Exception as exc:
            raise UserError(f"{self.what} {str(self.path)!r} failed on images of shape {list(images.shape[1:])} "
                            f"in [-1, 1]: {_last_line(exc)}") from None
        if not torch.is_tensor(out) or out.dim() < 2 or len(out) != len(images):
            raise UserError(f"{self.what} {str(self.path)!r} must return a tensor [N, D] for N images")
        out = out.float().flatten(1)
        if not bool(torch.isfinite(out).all()):
            # a NaN would pass silently through every statistic and come out as FID nan
            bad = "NaN" if bool(out.isnan().any()) else "infinite"
            raise UserError(f"{self.what} {str(self.path)!r} returned {bad} features for images of shape "
                            f"{list(images.shape[1:])} in [-1, 1]; check the network (its weights, or a division "
                            "or log inside it)")
        return out


def _last_line(exc: Exception) -> str:
    """Return the line of an exception that says what went wrong (TorchScript puts it last)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


# A TorchScript archive's pickles name classes compiled into the archive ("__torch__...") and a
# few of torch's own rebuild functions; anything else is not something torch.jit.save writes.
_TORCHSCRIPT_MODULES = ("__torch__", "torch._utils", "torch.jit._pickle")
_TORCHSCRIPT_NAMES = ("collections.OrderedDict", "builtins.complex", "torch.device", "torch.Size")
_CUSTOM_CLASSES = "__torch__.torch.classes"
_PICKLE_LIMIT = 256 << 20  # a network's structure pickles are small; tensors live in other members


def load_user_network(path: str | os.PathLike, what: str) -> torch.nn.Module:
    """Return the TorchScript network saved in ``path``, on the CPU, checked to run nothing but tensor maths.

    No Python code from the file runs, nothing in it runs while it loads, and the network is
    refused before its first call if any of its graphs holds an operator outside the allow-list.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        raise UserError(f"{what} {str(p)!r} is a folder; give the TorchScript file (torch.jit.save) itself")
    if not p.is_file():
        raise UserError(f"{what} {str(p)!r} does not exist")
    check_torchscript_archive(p, what)
    with warnings.catch_warnings():
        # torch marks TorchScript as deprecated; the files still load, and users should not see the noise.
        warnings.simplefilter("ignore", FutureWarning)
        try:
            module = torch.jit.load(str(p), map_location="cpu")
        except Exception:
            raise UserError(_not_torchscript(what, p)) from None
    try:
        op = forbidden_op(module)
    except Exception as exc:  # a module the screen cannot read is not run either
        raise UserError(f"{what} {str(p)!r} could not be checked before running it: {_last_line(exc)}") from None
    if op is not None:
        raise UserError(f"{what} {str(p)!r} calls {op}, which is not a pure tensor operation; gencli runs only "
                        "networks made of tensor maths, so it refuses this one before running it")
    return module.eval()


def _not_torchscript(what: str, p: Path) -> str:
    return (f"{what} {str(p)!r} is not a TorchScript file; gencli loads only networks saved with "
            "torch.jit.script(net).save(path) (or torch.jit.trace), which cannot run code when loaded")


def check_torchscript_archive(p: Path, what: str) -> None:
    """Refuse ``p`` unless it is a zip archive laid out as TorchScript whose pickles name only torch types.

    torch.jit.load reads these pickles with its own unpickler, which cannot call Python; this check
    refuses a crafted file before any loader sees it, whatever that unpickler accepts.
    """
    try:
        with zipfile.ZipFile(p) as zf:
            infos = zf.infolist()
            names = [i.filename for i in infos]
            if any(_export_member(n) for n in names):
                raise UserError(f"{what} {str(p)!r} is a torch.export program, which can run code when loaded; "
                                "gencli loads only TorchScript: save the network with torch.jit.script(net).save(path)")
            if not any(n.endswith("/data.pkl") for n in names) or not any("/code/" in n for n in names):
                raise UserError(_not_torchscript(what, p))
            for info in infos:
                if not info.filename.endswith(("pkl", ".py")):
                    continue
                if info.file_size > _PICKLE_LIMIT:
                    raise UserError(f"{what} {str(p)!r}: {info.filename} is {info.file_size:,} bytes, far larger than "
                                    "TorchScript writes; refusing to load it")
                data = zf.read(info)
                if info.filename.endswith(".py"):
                    runs = load_time_code(info.filename, data)
                    if runs:
                        raise UserError(f"{what} {str(p)!r} is refused: its code ({info.filename}) uses {runs}")
                    continue
                bad = _foreign_global(data)
                if bad:
                    raise UserError(f"{what} {str(p)!r} is not a plain TorchScript file: {info.filename} refers to "
                                    f"{bad!r}, which could run code; refusing to load it (TorchScript is required)")
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError):
        raise UserError(_not_torchscript(what, p)) from None


def _export_member(name: str) -> bool:
    """Whether an archive member is one torch.export.save writes and TorchScript never does."""
    parts = name.split("/")
    return (len(parts) == 2 and parts[1] == "archive_format") or (
        len(parts) == 3 and parts[1] == "models" and parts[2].endswith(".json"))


def _foreign_global(data: bytes) -> str | None:
    """Return the first class or function a pickle names outside torch's own, or None."""
    strings: list[str] = []  # recent string pushes, the operands of STACK_GLOBAL
    try:
        for op, arg, _ in pickletools.genops(data):
            if op.name in ("GLOBAL", "INST"):
                module, _, name = str(arg).partition(" ")
            elif op.name == "STACK_GLOBAL":
                if len(strings) < 2:
                    return "a name it builds at load time"
                module, name = strings[-2], strings[-1]
            else:
                if "UNICODE" in op.name or op.name.endswith("STRING"):
                    strings.append(str(arg))
                elif op.name not in ("MEMOIZE", "BINPUT", "LONG_BINPUT", "PUT"):
                    strings.clear()
                continue
            if not _torchscript_global(module, name):
                return f"{module}.{name}"
    except Exception:  # a pickle that cannot even be parsed is not one torch wrote
        return "an unreadable pickle"
    return None


def _torchscript_global(module: str, name: str) -> bool:
    if module == _CUSTOM_CLASSES or module.startswith(_CUSTOM_CLASSES + "."):
        return False  # torch's C++ classes run their own loading code, which gencli cannot check
    if any(module == ok or module.startswith(ok + ".") for ok in _TORCHSCRIPT_MODULES):
        return True
    if module == "torch" and name.endswith("Storage"):  # torch.FloatStorage and kin hold the tensors
        return True
    return f"{module}.{name}" in _TORCHSCRIPT_NAMES


def build_extractor(features: str | None = None, fid_weights: str | None = None) -> FeatureExtractor:
    """Return the user's feature network when given, else pytorch-fid's Inception."""
    return UserFeatures(features) if features else InceptionFeatures(fid_weights)


def extract(
    extractor: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    batch_size: int,
    device: torch.device | str,
    description: str = "features",
    progress: bool = True,
) -> torch.Tensor:
    """Return features [N, D] (float32, CPU) of uint8 ``images``, computed in batches on ``device``."""
    batches = extract_batches(extractor, _chunks(images, batch_size), len(images), device, description, progress)
    return torch.cat(list(batches))


def extract_batches(
    extractor: Callable[[torch.Tensor], torch.Tensor],
    batches: Iterable[torch.Tensor],
    total: int,
    device: torch.device | str,
    description: str = "features",
    progress: bool = True,
) -> Iterator[torch.Tensor]:
    """Yield the features (float32, CPU) of each uint8 batch, moved to ``device`` first."""
    with progress_bar(description, total, progress) as advance:
        for batch in batches:
            yield extractor(batch.to(device, non_blocking=True)).float().cpu()
            advance(len(batch))


def _chunks(images: torch.Tensor, size: int) -> Iterator[torch.Tensor]:
    for i in range(0, len(images), size):
        yield images[i : i + size]
