"""`gencli interpolate`: walks between two latents or two images, and grids over a 2-D latent."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from gencli.cli.common import (
    DeviceOpt,
    JsonOpt,
    LabelOpt,
    RunArg,
    SetOpt,
    examples,
    handle_errors,
    model_options,
    one_label,
    open_run,
    output_file,
    print_result,
    results_only,
)
from gencli.errors import UserError

EPILOG = examples(
    "gencli interpolate vae --seeds 1,2 --frames 10",
    "gencli interpolate vae --images a.png --images b.png",
    "gencli interpolate RUN --latent-grid 8 --label 8",
    "gencli interpolate RUN --set space=z",
)


@handle_errors
def interpolate(
    run: RunArg,
    frames: Annotated[int, typer.Option("--frames", help="Images along the path.")] = 10,
    seeds: Annotated[str, typer.Option("--seeds", metavar="A,B", help="Seeds of the first and last latent.")] = "0,1",
    images: Annotated[Optional[list[Path]], typer.Option("--images", help="Two images to interpolate between (encoder models); give twice.",
                                                         show_default=False)] = None,
    latent_grid: Annotated[Optional[int], typer.Option("--latent-grid", metavar="K", help="A KxK grid over a 2-D latent's range on the data.",
                                                       show_default=False)] = None,
    label: LabelOpt = None,
    set_: SetOpt = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output PNG (a GIF is written beside it).",
                                                show_default="RUN/generated/")] = None,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
) -> None:
    """Walk between two latents (or two images) and save a strip PNG and a GIF."""
    if frames < 2:
        raise UserError(f"--frames must be at least 2, got {frames}")
    if frames > 1000:
        raise UserError(f"--frames {frames} is more than an interpolation needs; use at most 1000")
    from_seed, to_seed = _seeds(seeds)
    with results_only(json_out):
        files = _interpolate(run, frames, from_seed, to_seed, images, latent_grid, label, set_, out, device)
    print_result(json_out, files, {"files": [str(f) for f in files]})


def _interpolate(run, frames, from_seed, to_seed, images, latent_grid, label, set_, out, device) -> list[Path]:
    """Write the latent grid, or the strip and GIF of a walk; return the files written."""
    loaded, model = open_run(run, device)
    options = model_options(model, type(model).InterpolateOptions, set_, "interpolate")
    label_index = one_label(model, label)
    if latent_grid is not None:
        path = output_file(out, loaded, f"latent-grid-{latent_grid}")
        return [latent_grid_figure(loaded, model, latent_grid, label_index, path)]
    target = output_file(out, loaded, "interpolation")
    if out is not None and os.path.lexists(target.with_suffix(".gif")):  # the GIF written beside it
        raise UserError(f"--out {str(target.with_suffix('.gif'))!r} already exists; choose a new name (nothing is overwritten)")
    return walk(model, frames, from_seed, to_seed, images, label_index, options, target)


def _seeds(text: str) -> tuple[int, int]:
    parts = [p.strip() for p in text.split(",")]
    try:
        a, b = (int(p) for p in parts)
    except ValueError:
        raise UserError(f"--seeds takes two whole numbers A,B, got {text!r}") from None
    from gencli.training.settings import MAX_SEED

    for s in (a, b):
        if not 0 <= s <= MAX_SEED:
            raise UserError(f"--seeds must be from 0 to {MAX_SEED:,}, got {s}")
    return a, b


def walk(model, frames: int, from_seed: int, to_seed: int, images: list[Path] | None, label: int | None,
         options: dict, out: Path) -> list[Path]:
    """Write the strip and GIF of a walk between two latents (or two encoded images); return their paths."""
    import torch

    from gencli.models.base import require_capability
    from gencli.models.paths import lerp

    t = torch.linspace(0, 1, frames)
    labels = None
    if label is not None:
        labels = torch.full((frames,), label, dtype=torch.long, device=model.device)
    elif model.conditional and model.num_classes:
        labels = torch.zeros(frames, dtype=torch.long, device=model.device)
    with torch.no_grad():
        if images:
            if len(images) != 2:
                raise UserError(f"--images takes exactly two images, got {len(images)}")
            require_capability(type(model), "encode", "interpolate between images (it has no encoder)")
            one = labels[:1] if labels is not None else None
            za, zb = (model.encode(_load_image(p, model), one) for p in images)
            result = model.decode(lerp(za, zb, t), labels)
        else:
            require_capability(type(model), "interpolate")
            za = model.latents(1, torch.Generator().manual_seed(from_seed), **options)
            zb = model.latents(1, torch.Generator().manual_seed(to_seed), **options)
            result = model.generate(model.interpolation_path(za, zb, t, **options), labels, **options)
    return _strip_and_gif(result.float(), out, frames)


def _strip_and_gif(images, out: Path, nrow: int) -> list[Path]:
    from gencli.media.images import grid, readable_frames, save_gif, save_grid

    n = len(images)
    positions = [f"t = {i / max(1, n - 1):.2f}" for i in range(n)]
    # Enlarged and headed by the position on the path, so a 28 px image is not a thumbnail.
    png = save_grid(images, out, nrow, columns=positions)
    frames = readable_frames([grid(img[None], 1, padding=0) for img in images], positions)
    frames = frames + frames[-2:0:-1]  # there and back, so the loop does not jump
    gif = save_gif(frames, out.with_suffix(".gif"), duration_ms=120)
    return [png, gif]


def _load_image(path: Path, model):
    from gencli.data.base import to_float
    from gencli.data.folders import decode_image

    if not path.is_file():
        raise UserError(f"image {str(path)!r} does not exist")
    c, s, _ = model.image_shape
    return to_float(decode_image(path, s, c)[None]).to(model.device)


def latent_grid_figure(run, model, k: int, label: int | None, out: Path) -> Path:
    """Write a KxK grid of decodings spanning the range the encoder uses on held-out data (2-D latents)."""
    import torch

    from gencli.data.base import to_float
    from gencli.media.plots import latent_grid_plot
    from gencli.models.base import require_capability

    if not 2 <= k <= 64:
        raise UserError(f"--latent-grid must be between 2 and 64, got {k}")
    require_capability(type(model), "encode", "draw a latent grid (it has no encoder)")
    if label is None and model.conditional:
        raise UserError(f"model {model.name!r} is conditional: give --label for the latent grid")
    data = run.data("test")
    x = data.images[:2000]
    lab = data.labels[:2000].to(model.device) if data.labels is not None and model.conditional else None
    with torch.no_grad():
        codes = torch.cat([model.encode(to_float(x[i : i + 256].to(model.device)), lab[i : i + 256] if lab is not None else None)
                           for i in range(0, len(x), 256)])
        if codes.shape[1] != 2:
            raise UserError(f"--latent-grid needs a model with a 2-D latent; this one has {codes.shape[1]} (train with --set latent_dim=2)")
        lo, hi = codes.quantile(0.01, dim=0), codes.quantile(0.99, dim=0)
        ys = torch.linspace(float(hi[1]), float(lo[1]), k)
        xs = torch.linspace(float(lo[0]), float(hi[0]), k)
        z = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).reshape(-1, 2).flip(-1).to(model.device)
        labels = torch.full((k * k,), label, dtype=torch.long, device=model.device) if label is not None else None
        images = model.decode(z, labels).float()
    title = f"{model.name}: decodings over the latent plane"
    if label is not None and model.classes:
        title += f" (label {model.classes[label]})"
    return latent_grid_plot(images, xs.tolist(), ys.tolist(), out, title)
