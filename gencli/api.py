"""The Python API beside the command line: ``gencli.train``, ``gencli.sample``, ``gencli.evaluate``.

Each does what its command does, with the same rules and the same one-line ``UserError`` for a
mistake, minus the printing: ``train`` resolves its settings as ``gencli train`` does
(``gencli.training.settings.resolve``) and returns the finished ``Run``; ``sample`` returns the
images as a tensor instead of writing files; ``evaluate`` returns the results ``gencli eval
--json`` prints, recorded in the run's ``metrics.jsonl`` as the command records them.

``gencli/__init__.py`` exports them lazily: importing gencli imports no torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gencli.errors import UserError


def train(model: str | None, data: str | None = None, *, steps: int | None = None, epochs: int | None = None,
          batch_size: int | None = None, lr: float | None = None, image_size: int | None = None,
          channels: int | None = None, seed: int | None = None, set: Mapping[str, Any] | None = None,  # noqa: A002
          config: str | Path | None = None, out: str | Path | None = None, resume: str | Path | None = None,
          from_run: str | Path | None = None, device: str = "auto", precision: str | None = None,
          compile: bool = False, sample_every: int | str | None = None,  # noqa: A002
          checkpoint_every: int | str | None = None, eval_every: int | str | None = None,
          eval_n: int | None = None, eval_features: str | None = None, eval_classifier: str | None = None,
          log: str | Sequence[str] | None = None, tensorboard: bool = False, quiet: bool = True):
    """Train ``model`` on ``data`` as ``gencli train`` would; return the finished ``gencli.Run``.

    Each keyword is the flag of the same name (``set``: the ``--set`` hyperparameters as a dict,
    ``config``: ``--config FILE``, ``from_run``: ``--from RUN``); what is not given comes from the
    config file, the run trained on or resumed, or the model's defaults, by the command's rules.
    ``model`` may be None with ``resume`` or a ``config`` that names it.
    """
    from gencli.training.engine import TrainConfig
    from gencli.training.engine import train as run_training

    if set is not None and not isinstance(set, Mapping):
        raise UserError(f"set= takes a dict of hyperparameters, got {type(set).__name__}")
    cfg = TrainConfig(
        model=model, data=data, steps=steps, epochs=epochs, batch_size=batch_size, lr=lr, image_size=image_size,
        channels=channels, seed=seed, overrides=dict(set or {}), config_file=_path(config), out=_path(out),
        resume=_path(resume), source=None if from_run is None else str(from_run), device=device,
        precision=precision, compile=compile, sample_every=sample_every, checkpoint_every=checkpoint_every,
        eval_every=eval_every, eval_n=eval_n, eval_features=eval_features, eval_classifier=eval_classifier,
        log=log, tensorboard=tensorboard, quiet=quiet)
    from gencli.runs import Run

    return Run.open(run_training(cfg))  # its latest checkpoint: the trained model


def sample(run_or_ref, n: int = 64, *, labels=None, seed: int = 0, options: Mapping[str, Any] | None = None,
           device: str = "auto"):
    """Return ``n`` images of a trained run as a float tensor [n, C, H, W] in [-1, 1] (on the CPU).

    ``run_or_ref`` is a ``gencli.Run`` or what ``Run.open`` takes. ``labels`` (conditional models)
    is one class (index or name) for every image, ``"all"`` or a sequence of ``n`` classes (one per
    image); without it the classes are drawn in the proportions of the training data, as
    ``gencli sample`` draws them. ``options`` are the model's sample options (``--set``).
    """
    import torch

    from gencli.models.base import require_capability
    from gencli.models.labels import labels_in_proportion
    from gencli.runs.values import check_count
    from gencli.training.settings import check_flag

    check_flag("seed", seed)
    _check_whole(n, "n")
    check_count(n, "n")
    run, model = _open(run_or_ref, device)
    require_capability(type(model), "sample")
    kwargs = _options(model, type(model).SampleOptions, options, "sample")
    if labels is None:
        classes, _ = labels_in_proportion(run, model, n, seed)
    else:
        classes = _classes(model, labels, n)
    with torch.no_grad():
        images = model.sample(n, classes, torch.Generator().manual_seed(seed), **kwargs)
    return images.detach().float().cpu()


def evaluate(run_or_ref, metrics: str | Sequence[str] | None = None, *, n: int | None = None, split: str = "test",
             options: Mapping[str, Any] | None = None, data: str | None = None, batch_size: int = 100,
             fid_weights: str | None = None, features: str | None = None, classifier: str | None = None,
             label: int | str | None = None, seed: int = 0, device: str = "auto", record: bool = True) -> dict[str, Any]:
    """Evaluate a trained run as ``gencli eval`` does; return what ``gencli eval --json`` prints.

    ``metrics`` is a list of names (or a comma-separated string; None: what fits the model), ``n``
    the generated images for FID-style metrics (10,000 unless given), ``options`` the model's eval
    options (``--set``). The results are appended to the run's ``metrics.jsonl`` (``Run.evaluations()``)
    unless ``record=False``.
    """
    from gencli.metrics.evaluate import evaluate as run_evaluation
    from gencli.runs.values import check_count
    from gencli.training.threads import inference_device

    names = [m.strip() for m in metrics.split(",")] if isinstance(metrics, str) else metrics
    n = 10_000 if n is None else n
    _check_whole(n, "n")
    check_count(n, "n", limit=1_000_000)
    _check_whole(batch_size, "batch_size")
    if batch_size < 1:
        raise UserError(f"batch_size must be at least 1, got {batch_size}")
    run = _run(run_or_ref)
    cls = run.model_class()
    kwargs = _options(cls, cls.eval_options(), options, "eval")
    index = None
    if label is not None:
        from gencli.models.labels import LabelProbe, parse_labels

        probe = LabelProbe(cls, run.classes)
        chosen = parse_labels(probe, str(label))
        if len(chosen) != 1:
            raise UserError(f"label names {len(chosen)} classes here; evaluate takes one")
        index = chosen[0]
    result = run_evaluation(run, names, n, data, split, batch_size, inference_device(device), fid_weights, features,
                            classifier, index, seed, sample_options=kwargs, progress=False, record=record)
    if record:
        from gencli.media.model_card import refresh_model_card

        refresh_model_card(run)
    return result


# ------------------------------------------------------------------ helpers
def _path(value: str | Path | None) -> Path | None:
    return None if value is None else Path(value)


def _check_whole(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{name} must be a whole number, got {value!r}")


def _run(run_or_ref):
    from gencli.runs import Run

    return run_or_ref if isinstance(run_or_ref, Run) else Run.open(run_or_ref)


def _open(run_or_ref, device: str):
    from gencli.training.threads import inference_device

    run = _run(run_or_ref)
    return run, run.load_model(device=inference_device(device))


def _options(model, options_cls: type, values: Mapping[str, Any] | None, command: str) -> dict[str, Any]:
    """The model's ``command`` options from ``values``, checked as ``--set`` is."""
    import dataclasses

    from gencli.models import hparams

    if values is not None and not isinstance(values, Mapping):
        raise UserError(f"options= takes a dict of {command} options, got {type(values).__name__}")
    built = hparams.build(options_cls, dict(values or {}), source=f"options for {model.name} {command}", what="option")
    return {f.name: getattr(built, f.name) for f in dataclasses.fields(built)}


def _classes(model, labels, n: int):
    """The class of each of ``n`` images from ``labels``: one class, ``"all"`` (cycled) or one per image."""
    import torch

    from gencli.models.labels import parse_labels

    if isinstance(labels, torch.Tensor):
        labels = labels.flatten().tolist()
    if isinstance(labels, (str, int)) and not isinstance(labels, bool):
        chosen = parse_labels(model, str(labels))
        if isinstance(labels, str) and labels.strip().lower() == "all":
            chosen = [chosen[i % len(chosen)] for i in range(n)]
        elif len(chosen) != 1:
            raise UserError(f"labels={labels!r} names {len(chosen)} classes; give one class, \"all\", or a list of {n}")
        else:
            chosen = chosen * n
    elif isinstance(labels, Sequence) and not isinstance(labels, bytes):
        if len(labels) != n:
            raise UserError(f"labels gives {len(labels)} classes for {n} images; give one per image, or one class")
        chosen = []
        for item in labels:
            if isinstance(item, bool) or not isinstance(item, (str, int)):
                raise UserError(f"labels holds {item!r}: give class indices or names")
            one = parse_labels(model, str(item))
            if len(one) != 1:
                raise UserError(f"labels holds {item!r}, which names {len(one)} classes; give one class per image")
            chosen.append(one[0])
    else:
        raise UserError(f"labels takes a class (index or name), \"all\", or a list of {n}, got {type(labels).__name__}")
    return torch.tensor(chosen, dtype=torch.long, device=model.device)


def load_run(path, device: str = "cpu"):
    """Return the trained model of a run directory, checkpoint or model name, ready to use."""
    from gencli.runs import load_trained

    return load_trained(str(path), device=device)
