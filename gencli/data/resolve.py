"""Turn a ``--data`` spec into an ``ImageData``: a registered name, a folder path, or ``A,B``."""

from __future__ import annotations

from pathlib import Path

import torch

from gencli.data.base import DataRequest, ImageData
from gencli.errors import UserError, did_you_mean
from gencli.registry import DataKind

# Which dataset kinds a model of each data kind can train on.
COMPATIBLE: dict[str, tuple[str, ...]] = {
    "images": ("images", "labelled", "paired", "unpaired"),
    "labelled": ("labelled",),
    "paired": ("paired",),
    "unpaired": ("unpaired", "paired"),
}


def load_dataset(spec: str, request: DataRequest) -> ImageData:
    """Resolve ``spec`` to images at the request's size, channels and split."""
    spec = spec.strip()
    if not spec or not spec.strip(", "):
        # a blank spec would otherwise read as the current folder
        raise UserError("--data is blank: name a dataset (`gencli datasets` lists them) or a folder, e.g. --data ./images")
    if "," in spec:
        return combine_datasets([s for s in spec.split(",") if s.strip()], request)
    from gencli.plugins import registry

    reg = registry()
    if spec in reg.datasets:
        reg.warn_clashes("dataset", spec)
        return reg.datasets[spec].load()(request)
    path = Path(spec).expanduser()
    if path.exists() or "/" in spec or spec.startswith("."):
        from gencli.data.folders import load_folder

        return load_folder(path, request)
    names = [k for k in reg.datasets if ":" not in k]
    raise UserError(f"unknown dataset {spec!r}{did_you_mean(spec, names)}; `gencli datasets` lists them, or pass a folder path")


def combine_datasets(specs: list[str], request: DataRequest) -> ImageData:
    """One labelled dataset whose label is the source: ``--data A,B`` -> classes [A, B]."""
    if len(specs) < 2:
        raise UserError("--data A,B needs at least two dataset specs")
    parts = [load_dataset(s, request) for s in specs]
    for s, part in zip(specs, parts):
        if part.kind in ("paired", "unpaired"):
            raise UserError(f"--data {','.join(specs)}: {s!r} is a {part.kind} dataset; combine plain or labelled ones")
    images = torch.cat([p.images for p in parts])
    labels = torch.cat([torch.full((len(p.images),), i, dtype=torch.long) for i, p in enumerate(parts)])
    classes = [Path(s).name if Path(s).exists() else s for s in specs]
    return ImageData(",".join(classes), "labelled", images, labels, classes=classes)


def check_kind(model_name: str, needs: DataKind, data: ImageData, spec: str) -> None:
    if data.kind not in COMPATIBLE[needs]:
        raise UserError(f"model {model_name!r} trains on {needs} data, but {spec!r} is {data.kind}")
