"""What to train: the settings decided (``settings.resolve``), the device checked, the data loaded.

``plan(config, info)`` is the engine's first step. For a new run it opens the run it trains on
(``--from``), decides the settings, loads the training data, lets the model fit its defaults to
that data and writes nothing: the run's record (run.json's contents) is returned for the engine
to write once training starts. For a resume it reads the run, every value checked first, and
decides the settings against what the run recorded. A mistake ends here, before anything on disk
changed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import gencli
from gencli.data.base import DataRequest, ImageData
from gencli.data.resolve import check_kind, load_dataset
from gencli.errors import UserError
from gencli.models import hparams
from gencli.runs import Run, RunInfo, check_metrics
from gencli.training.device import check_precision, resolve_device
from gencli.training.distributed import DistInfo
from gencli.training.settings import TrainConfig, TrainSettings, resolve


@dataclass
class Plan:
    """Everything the loop needs, whether starting fresh or resuming."""

    settings: TrainSettings
    hp: Any  # the hyperparameters the model is built with (fitted to the data for a new run)
    info: dict[str, Any]  # the run's record, written to run.json once training starts
    data: ImageData
    device: Any  # torch.device
    run_dir: Path | None  # the run resumed (a new run's folder is made when training starts)
    resume_from: Path | None  # its checkpoint


def plan(config: TrainConfig, info: DistInfo) -> Plan:
    """Decide what to train from ``config`` and load its data; nothing is written."""
    from gencli.plugins import registry

    if config.resume is not None:
        run = Run.open_to_train(config.resume)  # every value resuming reads, checked before any is used
        run.check_model_shape(run.model_class())
        check_metrics(run.metrics_path)  # a damaged line refuses the resume before the file is rewritten
        settings = resolve(config, registry().model_class, recorded=run)
    else:
        run = None
        source = Run.open(config.source) if config.source else None
        settings = resolve(config, registry().model_class, source=source)
    device = resolve_device(settings.device)
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    check_precision(settings.precision, device)
    if run is not None:
        record = run.info
        record["training"].update(settings.changes)
        request = run.data_request("train", training=True)
        check_batch_memory(settings.batch_size, settings.channels, request.stored_size)
        return Plan(settings, settings.hyperparameters, record, load_dataset(settings.data, request), device,
                    run.dir, run.checkpoint)
    return _plan_new(settings, device)


def _plan_new(s: TrainSettings, device: Any) -> Plan:
    from gencli.models.labels import class_counts
    from gencli.plugins import registry

    cls = s.model_class
    request = DataRequest(s.image_size, s.channels, "train", s.seed, load_size=cls.load_size(s.hyperparameters, s.image_size))
    check_batch_memory(s.batch_size, s.channels, request.stored_size)
    data = load_dataset(s.data, request)
    check_kind(cls.name, cls.data, data, s.data)
    if cls.conditional and cls.data == "labelled" and not data.num_classes:
        raise UserError(f"model {cls.name!r} is conditional and needs labelled data; {s.data!r} has no labels")
    hp, notes = fit_to_data(cls, s.hyperparameters, data, s.given_hyperparameters)
    from gencli.ui.console import info as say

    for note in notes:
        say(f"note: {note}", quiet=s.quiet)
    spec = registry().model(s.model)
    labelled = cls.conditional or data.kind == "labelled"
    info = {
        "gencli_version": gencli.__version__,
        "plugin": spec.plugin,
        "plugin_distribution": _plugin_field(spec.plugin, "distribution"),
        "plugin_version": _plugin_field(spec.plugin, "version"),
        "model": s.model,
        "hyperparameters": hparams.to_dict(hp),
        "source_run": s.source_run,
        # defaults a model chose for this data (by its size, say), in words: run.json keeps the why
        **({"notes": notes} if notes else {}),
        "data": {
            "spec": s.data,
            "kind": data.kind,
            "image_shape": list(s.image_shape),
            "load_size": request.load_size,
            "classes": data.classes if labelled else None,
            # what sampling without --label draws classes by: the training data's proportions
            **({"class_counts": class_counts(data.labels, data.num_classes)}
               if data.labels is not None and data.num_classes and labelled else {}),
            "size": len(data),
        },
        "training": s.training_record(),
        "step": 0,
        "status": "created",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return Plan(s, hp, info, data, device, None, None)


def fit_to_data(cls: type, hp: Any, data: ImageData, given: frozenset[str] | set[str]) -> tuple[Any, list[str]]:
    """Let a model adapt its defaults to the training data; return (hyperparameters, notes).

    A model class may define ``fit_to_data(hp, data, given) -> (hp, notes)``: ``data`` is the
    training ``ImageData``, ``given`` the hyperparameters the user set (never to be changed), and
    each note says in one line what was chosen and why ("1,437 images: augment=..."). Only new
    runs are fitted; the chosen values are recorded in run.json like any other, so a resumed or
    loaded run is rebuilt exactly.
    """
    hp, notes = cls.fit_to_data(hp, data, frozenset(given))
    hparams.check(hp)
    return hp, [str(n) for n in notes]


def check_batch_memory(batch_size: int, channels: int, size: int) -> None:
    """Refuse a batch whose images alone (float32) would not fit in memory, before anything is allocated."""
    from gencli.data.base import check_fits_in_memory

    check_fits_in_memory(batch_size * channels * size * size * 4,
                         f"a batch of {batch_size:,} images of {channels}x{size}x{size}",
                         "use a smaller --batch-size or --image-size")


def _plugin_field(plugin: str, key: str) -> str:
    from gencli.plugins import registry

    info = registry().plugin(plugin)
    return getattr(info, key) if info is not None else ""


def quality_probe(plan: Plan, model):
    """The run's quality probe (``eval_every``), its files loaded now so a mistake stops it before step 1."""
    s = plan.settings
    if not s.eval_every:
        return None
    from gencli.metrics.probe import QualityProbe

    held_out = load_dataset(s.data, RunInfo(plan.info).data_request("test"))
    return QualityProbe(held_out, s.eval_n, features=s.eval_features, classifier=s.eval_classifier, seed=s.seed,
                        conditional=model.conditional, num_classes=model.num_classes)


def preview_data(plan: Plan, model) -> ImageData:
    """Held-out images for translation/reconstruction previews; the training data otherwise."""
    if not (model.can("translate") or (model.can("reconstruct") and not model.can("interpolate"))):
        return plan.data
    try:
        return load_dataset(plan.settings.data, RunInfo(plan.info).data_request("test"))
    except UserError:
        return plan.data
