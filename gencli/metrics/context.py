"""What a metric sees: the model, the real images, and shared, cached work on both.

Metrics never extract features or generate images themselves: they ask the context, which does
each piece of work once per ``gencli eval`` (FID, KID and precision/recall share one set of
features; MSE, PSNR and SSIM share one pass of reconstructions) and keeps real-data features in
a cache on disk, keyed by dataset, split, size, channels, feature extractor and count.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gencli.data.base import ImageData, data_root, to_float, to_uint8
from gencli.errors import UserError
from gencli.metrics.choose import is_translation_model
from gencli.metrics.features import FeatureExtractor, UserFeatures, build_extractor, extract
from gencli.metrics.featureset import FeatureSet
from gencli.metrics.pixels import l1, mse, psnr, ssim
from gencli.ui.progress import progress_bar


def stats_dir() -> Path:
    """Return the folder of cached real-data features and FID statistics."""
    return data_root() / "fid-stats"


@dataclass
class Reconstructions:
    """Per-image reconstruction errors of the real images, and a few pairs for the grid."""

    mse: torch.Tensor
    psnr: torch.Tensor
    ssim: torch.Tensor
    l1: torch.Tensor
    originals: torch.Tensor  # float [-1, 1], the first few images
    reconstructed: torch.Tensor


@dataclass
class Translations:
    """A translation model's outputs for one direction of the held-out split.

    ``inputs`` are the source-domain images, ``outputs`` their translations and ``targets`` the
    aligned ground truth (paired data only), all uint8 on the host. The per-image errors (on the
    [0, 1] scale) exist only with ground truth.
    """

    direction: str
    inputs: torch.Tensor
    outputs: torch.Tensor
    targets: torch.Tensor | None = None
    l1: torch.Tensor | None = None
    mse: torch.Tensor | None = None
    psnr: torch.Tensor | None = None
    ssim: torch.Tensor | None = None


@dataclass
class EvalContext:
    """The model under evaluation, the real images of the chosen split, and shared work.

    ``n`` is how many images are generated, and the most real images used (a fixed subset, the
    same for every run, so real statistics are cached once). ``label`` restricts both real and
    generated images to one class. ``extractor`` defaults to ``--features`` when given, else
    pytorch-fid's Inception with ``fid_weights``. ``data_key`` describes the real images (spec,
    split, size, channels, seed) for the disk cache; without it nothing is cached.
    """

    model: Any
    data: ImageData
    n: int = 10_000
    batch_size: int = 100
    device: torch.device | str = "cpu"
    seed: int = 0
    label: int | None = None
    extractor: FeatureExtractor | Any | None = None
    features: str | None = None
    fid_weights: str | None = None
    classifier: str | Any | None = None
    data_key: dict[str, Any] | None = None
    sample_options: dict[str, Any] = field(default_factory=dict)
    progress: bool = True
    # Generated images are kept on the host (uint8) for metrics that need the pixels again.
    _generated: tuple[torch.Tensor, torch.Tensor | None] | None = field(default=None, repr=False)
    _fake: FeatureSet | None = field(default=None, repr=False)
    _real: FeatureSet | None = field(default=None, repr=False)
    _recon: Reconstructions | None = field(default=None, repr=False)
    _classified: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, repr=False)
    _translations: dict[str, Translations] = field(default_factory=dict, repr=False)
    _domain_real: dict[str, FeatureSet] = field(default_factory=dict, repr=False)
    _translated: dict[str, FeatureSet] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.device = torch.device(self.device)
        if self.n < 2:
            raise UserError(f"--n must be at least 2, not {self.n}")
        if self.batch_size < 1:
            raise UserError(f"--batch-size must be at least 1, not {self.batch_size}")
        if self.label is not None:
            if not getattr(self.model, "conditional", False):
                raise UserError(f"--label needs a conditional model; {self.model.name!r} is not")
            if not 0 <= self.label < self.model.num_classes:
                raise UserError(f"--label {self.label} is out of range: the model has {self.model.num_classes} classes")

    # ------------------------------------------------------------------ feature extractor
    def feature_extractor(self) -> FeatureExtractor:
        """Return the feature extractor (built once, moved to the device)."""
        if self.extractor is None:
            self.extractor = build_extractor(self.features, self.fid_weights)
        if hasattr(self.extractor, "to"):
            self.extractor.to(self.device)
        return self.extractor

    def extractor_id(self) -> dict[str, str]:
        ext = self.feature_extractor()
        return {"features": getattr(ext, "name", type(ext).__name__), "features_hash": getattr(ext, "hash", "")}

    # ------------------------------------------------------------------ real images
    def real_images(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return the real images used (uint8, CPU) and their labels: at most ``n``, a fixed subset."""
        images, labels = self.data.images, self.data.labels
        if self.label is not None:
            if labels is None:
                raise UserError(f"--label needs labelled data; {self.data.name!r} has no labels")
            keep = labels == self.label
            images, labels = images[keep], labels[keep]
            if len(images) < 2:
                raise UserError(f"dataset {self.data.name!r} has fewer than 2 images of class {self.label}")
        if len(images) > self.n:
            idx = _fixed_subset(len(images), self.n)
            images = images[idx]
            labels = labels[idx] if labels is not None else None
        return images, labels

    def real_features(self) -> FeatureSet:
        """Return the features of the real images, from the disk cache when possible."""
        if self._real is not None:
            return self._real
        images, labels = self.real_images()
        path, key = self._cache_entry(len(images))
        cached = _read_cache(path, key) if path else None
        if cached is not None:
            self._real = cached
            return cached
        feats = extract(self.feature_extractor(), images, self.batch_size, self.device, "real features", self.progress)
        self._real = FeatureSet(feats, labels)
        if path:
            _write_cache(path, key, self._real)
        return self._real

    def _cache_entry(self, n_real: int) -> tuple[Path | None, str]:
        return self._cache_entry_for(self.real_images()[0], {"label": self.label})

    def _cache_entry_for(self, images: torch.Tensor, extra: dict[str, Any]) -> tuple[Path | None, str]:
        ext_hash = getattr(self.feature_extractor(), "hash", "")
        if not self.data_key or not ext_hash:
            return None, ""
        key = json.dumps({**self.data_key, "n": len(images), **extra, "fingerprint": _fingerprint(images),
                          **self.extractor_id()}, sort_keys=True)
        return stats_dir() / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz", key

    # ------------------------------------------------------------------ generated images
    def sample_labels(self) -> torch.Tensor | None:
        """Return the labels to generate with: ``label`` for all, or the classes in turn; None if unconditional."""
        if not getattr(self.model, "conditional", False) or not self.model.num_classes:
            return None
        if self.label is not None:
            return torch.full((self.n,), self.label, dtype=torch.long)
        return torch.arange(self.n) % self.model.num_classes

    def generated_features(self) -> FeatureSet:
        """Return the features of ``n`` generated images, extracted batch by batch as they are made."""
        if self._fake is None:
            if self._generated is None:
                self._generate(self.feature_extractor())
            else:
                images, labels = self._generated
                feats = extract(self.feature_extractor(), images, self.batch_size, self.device, "generated features",
                                self.progress)
                self._fake = FeatureSet(feats, labels)
        return self._fake

    def use_generated(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        """Score ``images`` (uint8, CPU) as the generated side instead of sampling the model (two folders)."""
        self._generated, self._fake = (images, labels), None

    def generated_images(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return the ``n`` generated images (uint8, CPU) and the labels they were asked for."""
        if self._generated is None:
            self._generate(None)
        return self._generated

    @torch.no_grad()
    def _generate(self, extractor) -> None:
        model, labels = self.model, self.sample_labels()
        model.eval()
        g = torch.Generator().manual_seed(self.seed)
        images, feats = [], []
        with progress_bar("generating", self.n, self.progress) as advance:
            for lo in range(0, self.n, self.batch_size):
                count = min(self.batch_size, self.n - lo)
                lab = labels[lo : lo + count].to(model.device) if labels is not None else None
                x = model.sample(count, lab, generator=g, **self.sample_options)
                if tuple(x.shape) != (count, *model.image_shape):
                    raise RuntimeError(f"{model.name}.sample({count}) returned shape {tuple(x.shape)}")
                # Quantised as a saved PNG would be, so numbers agree with tools that read files.
                u8 = to_uint8(x)
                if extractor is not None:  # straight from the model to the extractor, on the device
                    feats.append(extractor(u8.to(self.device)).float().cpu())
                images.append(u8.cpu())
                advance(count)
        self._generated = (torch.cat(images), labels)
        if extractor is not None:
            self._fake = FeatureSet(torch.cat(feats), labels)

    # ------------------------------------------------------------------ classifier
    def classifier_network(self):
        """Return the user's classifier (loaded once, on the device), or raise ``UserError``."""
        if self.classifier is None:
            raise UserError("class accuracy needs --classifier FILE (a TorchScript classifier)")
        if not callable(self.classifier) or isinstance(self.classifier, (str, Path)):
            self.classifier = UserFeatures(self.classifier, what="--classifier")
        if hasattr(self.classifier, "to"):
            self.classifier.to(self.device)
        return self.classifier

    def classifications(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (class the classifier reads, class asked for) of every generated image, computed once."""
        if self._classified is None:
            images, labels = self.generated_images()
            if labels is None:
                raise UserError(f"class accuracy needs a conditional model; {self.model.name!r} is not")
            logits = self.classify(images)
            if logits.shape[1] < self.model.num_classes:
                raise UserError(f"--classifier gives {logits.shape[1]} outputs but the model has "
                                f"{self.model.num_classes} classes")
            self._classified = (logits.argmax(1), labels)
        return self._classified

    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """Return the classifier's logits [N, K] for uint8 images (CPU), computed in batches."""
        return extract(self.classifier_network(), images, self.batch_size, self.device, "classifying", self.progress)

    # ------------------------------------------------------------------ reconstructions
    @torch.no_grad()
    def reconstructions(self, keep: int = 8) -> Reconstructions:
        """Return per-image MSE, PSNR and SSIM of reconstructions of the real images (one pass)."""
        if self._recon is not None:
            return self._recon
        model = self.model
        model.eval()
        images, labels = self.real_images()
        if getattr(model, "conditional", False) and labels is None:
            raise UserError(f"model {model.name!r} reconstructs with labels, but {self.data.name!r} has none")
        parts: dict[str, list[torch.Tensor]] = {"l1": [], "mse": [], "psnr": [], "ssim": []}
        originals, reconstructed = [], []
        with progress_bar("reconstructing", len(images), self.progress) as advance:
            for lo in range(0, len(images), self.batch_size):
                x = to_float(images[lo : lo + self.batch_size].to(self.device))
                lab = labels[lo : lo + len(x)].to(self.device) if labels is not None and model.conditional else None
                y = model.reconstruct(x, lab).float().clamp(-1, 1)
                # Errors on the [0, 1] scale, the convention for PSNR and SSIM.
                a, b = (x + 1) / 2, (y + 1) / 2
                parts["l1"].append(l1(a, b).cpu())
                parts["mse"].append(mse(a, b).cpu())
                parts["psnr"].append(psnr(a, b).cpu())
                parts["ssim"].append(ssim(a, b).cpu())
                if sum(len(o) for o in originals) < keep:
                    originals.append(x.cpu())
                    reconstructed.append(y.cpu())
                advance(len(x))
        self._recon = Reconstructions(
            **{k: torch.cat(v) for k, v in parts.items()},
            originals=torch.cat(originals)[:keep],
            reconstructed=torch.cat(reconstructed)[:keep],
        )
        return self._recon

    # ------------------------------------------------------------------ translations
    @property
    def translating(self) -> bool:
        """Whether metrics judge translations of held-out images rather than samples or reconstructions."""
        return is_translation_model(self.model)

    @property
    def paired(self) -> bool:
        """Whether every source image has its aligned ground truth in the other domain."""
        return self.data.kind == "paired" and self.data.targets is not None

    def directions(self) -> tuple[str, ...]:
        """Return the directions evaluated: those the model translates, which the data has both sides of."""
        if self.data.kind not in ("paired", "unpaired") or self.data.targets is None:
            raise UserError(f"evaluating translations needs two image domains (paired or unpaired data); "
                            f"{self.data.name!r} is {self.data.kind}; pass --data with A and B images")
        return tuple(getattr(self.model, "directions", ("a2b", "b2a")))

    def domains(self, direction: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (source, target-domain) images of ``direction`` (uint8), at most ``n`` of each, a fixed subset."""
        a, b = self.data.images, self.data.targets
        source, target = (a, b) if direction == "a2b" else (b, a)
        if self.paired:  # the same indices on both sides keep every pair aligned
            idx = _fixed_subset(len(source), self.n)
            return source[idx], target[idx]
        return source[_fixed_subset(len(source), self.n)], target[_fixed_subset(len(target), self.n)]

    @torch.no_grad()
    def translations(self, direction: str) -> Translations:
        """Return the translations of the held-out source images of ``direction`` (one pass, cached)."""
        if direction in self._translations:
            return self._translations[direction]
        model = self.model
        model.eval()
        source, target = self.domains(direction)
        outputs: list[torch.Tensor] = []
        parts: dict[str, list[torch.Tensor]] = {"l1": [], "mse": [], "psnr": [], "ssim": []}
        with progress_bar(f"translating {direction}", len(source), self.progress) as advance:
            for lo in range(0, len(source), self.batch_size):
                x = to_float(source[lo : lo + self.batch_size].to(self.device))
                y = model.translate(x, direction).float().clamp(-1, 1)
                if tuple(y.shape) != tuple(x.shape):
                    raise RuntimeError(f"{model.name}.translate returned shape {tuple(y.shape)} for {tuple(x.shape)}")
                # Quantised as a saved PNG would be, so numbers agree with tools that read files.
                u8 = to_uint8(y)
                outputs.append(u8.cpu())
                if self.paired:
                    # Errors on the [0, 1] scale against the ground truth, as for reconstructions.
                    a = u8.float() / 255
                    b = target[lo : lo + len(x)].to(self.device).float() / 255
                    for key, fn in (("l1", l1), ("mse", mse), ("psnr", psnr), ("ssim", ssim)):
                        parts[key].append(fn(a, b).cpu())
                advance(len(x))
        errors = {k: torch.cat(v) for k, v in parts.items()} if self.paired else {}
        result = Translations(direction, source, torch.cat(outputs), target if self.paired else None, **errors)
        self._translations[direction] = result
        return result

    def translated_features(self, direction: str) -> FeatureSet:
        """Return the features of the translations of ``direction``."""
        if direction not in self._translated:
            images = self.translations(direction).outputs
            feats = extract(self.feature_extractor(), images, self.batch_size, self.device,
                            f"features of {direction}", self.progress)
            self._translated[direction] = FeatureSet(feats)
        return self._translated[direction]

    def domain_features(self, direction: str) -> FeatureSet:
        """Return the features of the real images of ``direction``'s target domain, from the disk cache when possible."""
        if direction in self._domain_real:
            return self._domain_real[direction]
        _, images = self.domains(direction)
        path, key = self._cache_entry_for(images, {"domain": "B" if direction == "a2b" else "A"})
        cached = _read_cache(path, key) if path else None
        if cached is None:
            what = f"real {'B' if direction == 'a2b' else 'A'} features"
            cached = FeatureSet(extract(self.feature_extractor(), images, self.batch_size, self.device, what,
                                        self.progress))
            if path:
                _write_cache(path, key, cached)
        self._domain_real[direction] = cached
        return cached

    def real_feature_count(self) -> int | None:
        """Return the fewest real images any feature statistics were computed on (None: none were)."""
        counts = [len(fs) for fs in [self._real, *self._domain_real.values()] if fs is not None]
        return min(counts) if counts else None

    # ------------------------------------------------------------------ settings
    @property
    def generated(self) -> bool:
        """Whether images were generated (so ``n``, ``seed`` and the model's eval options shaped the numbers)."""
        return self._generated is not None and self.model is not None

    def applied_settings(self) -> list[str]:
        """Return the keys of ``settings()`` that shaped the numbers computed so far, for the summary line.

        ``n``, ``seed`` and ``sample_options`` apply when images were generated (``seed`` also
        draws KID's subsets); ``n_real``, the feature network and ``label`` when they were used.
        """
        s = self.settings()
        keys = ["n"] if self.generated else []
        keys += [k for k in ("n_real", "directions", "features", "label") if k in s]
        if self.generated or self.extractor is not None:
            keys.append("seed")
        if self.generated and "sample_options" in s:
            keys.append("sample_options")
        return keys

    def settings(self) -> dict[str, Any]:
        """Return the settings that produced the numbers (logged beside them)."""
        s: dict[str, Any] = {"n": self.n, "seed": self.seed, "batch_size": self.batch_size}
        if self._real is not None or self._recon is not None:
            s["n_real"] = len(self.real_images()[0])
        if self._translations:
            s["directions"] = list(self._translations)
            s["n_real"] = min(len(t.inputs) for t in self._translations.values())
        if self.label is not None:
            s["label"] = self.label
        if self.extractor is not None:
            s.update(self.extractor_id())
        if isinstance(self.classifier, UserFeatures):
            s["classifier_hash"] = self.classifier.hash
        if self.sample_options:
            s["sample_options"] = dict(self.sample_options)
        return s


def _fixed_subset(total: int, n: int) -> torch.Tensor | slice:
    """Return the indices of at most ``n`` of ``total`` images, the same for every evaluation.

    Seed 0, not --seed: the same real images every time, so their features cache.
    """
    if total <= n:
        return slice(None)
    return torch.randperm(total, generator=torch.Generator().manual_seed(0))[:n].sort().values


def _fingerprint(images: torch.Tensor, samples: int = 256) -> str:
    """Return a hash of up to ``samples`` evenly spaced images: a folder whose files changed gets new stats."""
    step = max(1, len(images) // samples)
    h = hashlib.sha256(str(tuple(images.shape)).encode())
    h.update(images[::step].contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _read_cache(path: Path, key: str) -> FeatureSet | None:
    try:
        with np.load(path) as f:
            if str(f["key"]) != key:
                return None
            labels = torch.from_numpy(f["labels"]) if f["labels"].size else None
            return FeatureSet(torch.from_numpy(f["features"]), labels, (f["mu"], f["sigma"]))
    except (OSError, KeyError, ValueError):
        return None  # absent or damaged: recompute and overwrite


def _write_cache(path: Path, key: str, fs: FeatureSet) -> None:
    # mu and sigma under pytorch-fid's key names: the file also works with `python -m pytorch_fid`.
    mu, sigma = fs.statistics()
    labels = fs.labels.numpy() if fs.labels is not None else np.zeros(0, dtype=np.int64)
    buf = io.BytesIO()
    np.savez(buf, key=np.array(key), mu=mu, sigma=sigma, features=fs.features.numpy(), labels=labels)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)

