"""Scoring two image folders: ``gencli eval --real A --fake B``, like ``python -m pytorch_fid A B``.

Every image directly in each folder is read by the dataset folder reader (``gencli.data.folders``)
as RGB at the folder's size (that of its first image; a different-sized image is resized to it,
a non-square one centre-cropped), then scored with the metrics computed on features (FID, KID,
precision/recall, or a plugin's): pytorch-fid's Inception resizes them to 299 pixels inside, as
pytorch-fid does, so FID equals pytorch-fid's on the same files and weights. ``--features NET.pt``
replaces Inception. The real folder's features are cached like a dataset's, keyed by the
content of its images (a changed folder is read again) and the feature network.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from gencli.errors import UserError
from gencli.registry import MetricSpec

DEFAULT_METRICS = ("fid", "kid", "prdc")


def folder_files(folder: str | Path, flag: str) -> tuple[Path, list[Path]]:
    """Return the folder and its image files (sorted), or raise one line saying what is wrong."""
    from gencli.data.folders import list_images

    path = Path(folder).expanduser()
    if not path.exists():
        raise UserError(f"{flag} {str(path)!r} does not exist")
    if not path.is_dir():
        raise UserError(f"{flag} {str(path)!r} is not a folder")
    files = list_images(path)
    if not files:
        raise UserError(f"{flag} {str(path)!r} has no images (.png, .jpg, ... directly in the folder)")
    return path, files


def folder_size(files: list[Path], flag: str, folder: Path) -> tuple[int, bool]:
    """Return the side the folder's images are read at (of its first readable image) and whether it is square."""
    from gencli.data.folders import _image_size  # reads the header only

    for path in files:
        size = _image_size(path)
        if size:
            return min(size), size[0] == size[1]
    raise UserError(f"{flag} {str(folder)!r} has no readable images (the first is {str(files[0])!r})")


def read_folder(folder: Path, files: list[Path], size: int):
    """Return the folder's images as uint8 [N, 3, size, size] through the dataset folder reader."""
    from gencli.data.base import DataRequest
    from gencli.data.folders import FolderScan, load_scan

    scan = FolderScan(folder.name, "images", files, variant="flat")
    data, _ = load_scan(scan, DataRequest(size, 3, "test"), dataset=str(folder), source="", cache=False)
    return data


def choose_folder_metrics(names: list[str] | None) -> list[tuple[str, MetricSpec]]:
    """Return (name, spec) of the metrics to score folders with; only metrics computed on features can."""
    from gencli.metrics.choose import registered_metrics
    from gencli.plugins import registry

    reg = registry()
    chosen = [(name, reg.metric(name)) for name in dict.fromkeys(n for n in (names or DEFAULT_METRICS) if n)]
    if not chosen:
        raise UserError("--metrics names no metric")
    usable = [n for n, s in registered_metrics().items() if s.properties.needs_features and not s.properties.needs_labels]
    for name, spec in chosen:
        if not spec.properties.needs_features or spec.properties.needs_labels:
            raise UserError(f"metric {name!r} cannot score two folders (it does not compare feature sets of "
                            f"unlabelled images); use {', '.join(usable)}")
    return chosen


def content_hash(images) -> str:
    """Return a hash of every pixel of ``images`` (the folder's content as read)."""
    h = hashlib.sha256(str(tuple(images.shape)).encode())
    h.update(images.contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def score_folders(
    real: str | Path,
    fake: str | Path,
    metrics: list[str] | None = None,
    batch_size: int = 50,
    device: str = "cpu",
    fid_weights: str | None = None,
    features: str | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Return the scores of the images of folder ``fake`` against those of folder ``real``.

    The result holds ``real``, ``fake``, ``eval`` (metric name -> value), ``settings`` and
    ``applied`` (the keys of ``settings`` shown in the summary line). Nothing is written but the
    real features' cache entry.
    """
    from gencli.metrics.choose import drop_unavailable_features
    from gencli.metrics.context import EvalContext
    from gencli.metrics.evaluate import compute_metrics
    from gencli.runs.values import check_flag
    from gencli.ui.console import warn

    check_flag("seed", seed)
    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    chosen = choose_folder_metrics(metrics)
    real_dir, real_files = folder_files(real, "--real")
    fake_dir, fake_files = folder_files(fake, "--fake")
    for name, spec in chosen:  # before any image is decoded
        need = spec.properties.min_images
        for flag, folder, files in (("--real", real_dir, real_files), ("--fake", fake_dir, fake_files)):
            if len(files) < need:
                raise UserError(f"{name} needs at least {need} images in each folder; {flag} {str(folder)!r} has "
                                f"{len(files)}")
    if not features:
        chosen = drop_unavailable_features(chosen, fid_weights, warn)
    sizes = {}
    for flag, folder, files in (("--real", real_dir, real_files), ("--fake", fake_dir, fake_files)):
        sizes[flag], square = folder_size(files, flag, folder)
        if not square:
            warn(f"{flag} {str(folder)!r} holds images that are not square: they are centre-cropped to "
                 f"{sizes[flag]}x{sizes[flag]} (pytorch-fid reads them whole)")
    real_data = read_folder(real_dir, real_files, sizes["--real"])
    fake_data = read_folder(fake_dir, fake_files, sizes["--fake"])

    ctx = EvalContext(
        model=None, data=real_data, n=max(len(real_data.images), 2), batch_size=batch_size, device=device, seed=seed,
        features=features, fid_weights=fid_weights, progress=progress,
        data_key={"folder_content": content_hash(real_data.images), "image_size": sizes["--real"], "channels": 3},
    )
    ctx.use_generated(fake_data.images)
    results = compute_metrics(ctx, chosen)
    settings = {"real": str(real_dir), "fake": str(fake_dir), "metrics": [name for name, _ in chosen],
                "n_real": len(real_data.images), "n_fake": len(fake_data.images),
                "image_size": sizes["--real"] if sizes["--real"] == sizes["--fake"] else [sizes["--real"], sizes["--fake"]],
                **ctx.extractor_id(), "seed": seed}
    applied = ["n_real", "n_fake", "image_size", "features"] + (["seed"] if any(n == "kid" for n, _ in chosen) else [])
    return {"real": str(real_dir), "fake": str(fake_dir), "eval": results, "settings": settings, "applied": applied}
