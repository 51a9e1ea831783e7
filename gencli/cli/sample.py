"""`gencli sample`: images, class grids and model-declared figures from a trained model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gencli.cli.common import (
    DeviceOpt,
    JsonOpt,
    LabelOpt,
    RunArg,
    SeedOpt,
    SetOpt,
    complete_figures,
    drawn_labels,
    examples,
    handle_errors,
    model_options,
    open_run,
    output_file,
    output_folder,
    parse_labels,
    print_result,
    results_only,
)
from gencli.errors import UserError


def torch_no_grad(fn):
    """Run ``fn`` without autograd (torch is imported only when it is called)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import torch

        with torch.no_grad():
            return fn(*args, **kwargs)

    return wrapper

EPILOG = examples(
    "gencli sample vae --n 64",
    "gencli sample RUN --label all --n 8",
    "gencli sample RUN --label ring --set KEY=VALUE     # the model's sample options",
    "gencli sample RUN --figure style-mix",
)


@handle_errors
def sample(
    run: RunArg,
    n: Annotated[Optional[int], typer.Option("--n", "-n", help="How many images (per class with several --label classes).",
                                             show_default="64, or 8 per class")] = None,
    grid: Annotated[bool, typer.Option("--grid/--no-grid", help="One grid PNG, or one PNG per image (a folder per class).")] = True,
    label: LabelOpt = None,
    figure: Annotated[Optional[str], typer.Option("--figure", help="Draw a figure the model declares (`gencli models --info MODEL`).",
                                                  autocompletion=complete_figures, show_default=False)] = None,
    set_: SetOpt = None,
    seed: SeedOpt = 0,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output PNG (grid) or new folder (--no-grid).",
                                                show_default="RUN/generated/")] = None,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
) -> None:
    """Generate images from a trained model. A conditional model takes `--label` (a class, a list, or all).

    Without `--label`, a conditional model's classes are drawn in the proportions of its training data."""
    from gencli.runs.values import check_count
    from gencli.training.settings import check_flag

    check_flag("seed", seed)
    if n is not None:
        check_count(n)
    with results_only(json_out):
        files, shown = _sample(run, n, grid, label, figure, set_, seed, out, device)
    print_result(json_out, [shown], {"files": [str(f) for f in files]})


def _sample(run, n, grid, label, figure, set_, seed, out, device) -> tuple[list[Path], Path]:
    """Write what `gencli sample` asks for; return (the files written, the path to print)."""
    import torch

    loaded, model = open_run(run, device)
    if figure is not None:
        path = _figure(loaded, model, figure, n, set_, seed, out)
        return [path], path
    from gencli.models.base import require_capability

    require_capability(type(model), "sample")
    options = model_options(model, type(model).SampleOptions, set_, "sample")
    classes = parse_labels(model, label)
    g = torch.Generator().manual_seed(seed)
    if classes is not None and (len(classes) > 1 or (label or "").strip().lower() == "all"):
        from gencli.runs.values import check_count

        per_class = n or 8
        check_count(per_class * len(classes), "--n times the classes")
        if grid:
            path = save_class_grid(model, classes, per_class, output_file(out, loaded, "classes"), g, **options)
            return [path], path
        folder = output_folder(out, loaded, "classes")
        folders = save_class_folders(model, classes, per_class, folder, g, **options)
        return [f for sub in folders for f in sorted(sub.glob("*.png"))], folder
    count = n or 64
    if classes:  # one class: it names the file
        labels = torch.full((count,), classes[0], dtype=torch.long, device=model.device)
        kind = f"samples-{_safe(model.classes[classes[0]])}"
    else:
        labels, kind = drawn_labels(loaded, model, count, seed), "samples"
    with torch.no_grad():
        images = model.sample(count, labels, g, **options).float()
    from gencli.media.images import save_grid, save_images

    if grid:
        path = save_grid(images, output_file(out, loaded, kind), max(1, round(count**0.5)))
        return [path], path
    folder = output_folder(out, loaded, kind)
    paths = save_images(images, folder)
    return paths, folder if len(paths) > 1 else paths[0]


def _figure(run, model, name: str, n: int | None, pairs: list[str] | None, seed: int, out: Path | None) -> Path:
    """Draw the figure ``name`` the model declares (``n`` None: its own default size); the core saves it,
    captioned, under a name of its own."""
    import torch

    from gencli.media.images import save_labelled_grid

    declared = type(model).figures
    if name not in declared:
        from gencli.errors import did_you_mean

        can = ", ".join(sorted(declared)) or "none"
        raise UserError(f"model {model.name!r} draws no figure {name!r}{did_you_mean(name, declared)}; its figures: {can}")
    spec = declared[name]
    options = model_options(model, spec.Options, pairs, f"--figure {name}")
    if spec.needs_data:
        options["data"] = run.data("test")
    path = output_file(out, run, name)
    with torch.no_grad():
        images, nrow = model.figure(name, n, torch.Generator().manual_seed(seed), **options)
    columns, rows = model.figure_captions(name, n, **options)
    return save_labelled_grid(images.float(), path, nrow, columns, rows)


@torch_no_grad
def sample_by_class(model, classes: list[int], per_class: int, generator=None, **options):
    """Return ``per_class`` samples of each class in ``classes``, class by class ([len(classes) * per_class, C, H, W])."""
    import torch

    labels = torch.tensor(classes, dtype=torch.long).repeat_interleave(per_class).to(model.device)
    return model.sample(len(labels), labels, generator, **options).float()


def save_class_grid(model, classes: list[int], per_class: int, out: Path, generator=None, **options) -> Path:
    """Write one row of ``per_class`` samples per class, the class name left of each row; return the PNG."""
    from gencli.media.images import save_labelled_grid

    images = sample_by_class(model, classes, per_class, generator, **options)
    return save_labelled_grid(images, out, per_class, rows=[model.classes[c] for c in classes])


def save_class_folders(model, classes: list[int], per_class: int, out: Path, generator=None, **options) -> list[Path]:
    """Write each class's samples as single PNGs into a folder named after the class; return the folders."""
    from gencli.media.images import save_images

    images = sample_by_class(model, classes, per_class, generator, **options)
    folders = []
    for i, c in enumerate(classes):
        folder = Path(out) / _safe(model.classes[c])
        save_images(images[i * per_class : (i + 1) * per_class], folder)
        folders.append(folder)
    return folders


def _safe(name: str) -> str:
    """Return a class name fit for a folder name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".") or "class"
