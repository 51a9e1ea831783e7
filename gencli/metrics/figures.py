"""The figures ``gencli eval`` writes beside the numbers, into ``RUN/eval/``.

- ``confusion.png``: the classifier's confusion matrix of a conditional model's images;
- ``reconstructions.png`` (originals over reconstructions) and, on labelled data, ``latents.png``;
- ``translations-a2b.png`` / ``translations-b2a.png``: held-out inputs, outputs and targets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SCATTER_POINTS = 5000
TRANSLATION_FIGURE_ROWS = 8


def write_confusion_figure(ctx, folder: Path) -> tuple[list[dict[str, Any]], Path]:
    """Write the classifier's confusion matrix of the generated images; return the per-class rows and its path.

    Rows are the classes asked for, so the figure says not only that sevens fail but what they
    become. With ``--label`` only that class's row is filled.
    """
    from gencli.media.plots import confusion_plot
    from gencli.metrics.accuracy import confusion_matrix, per_class_rows

    model = ctx.model
    predicted, labels = ctx.classifications()
    counts = confusion_matrix(predicted, labels, model.num_classes)
    judge = getattr(ctx.classifier, "path", None)
    title = f"{model.name} at step {model.step}: {len(labels):,} images" + (f", read by {judge.name}" if judge else "")
    path = confusion_plot(counts.numpy(), model.classes, folder / "confusion.png", title)
    return per_class_rows(counts, model.classes), path


def write_autoencoder_figures(ctx, folder: Path) -> list[Path]:
    """Write originals over reconstructions and, for labelled data, a latent scatter plot."""
    import torch

    from gencli.media.images import save_grid

    recon = ctx.reconstructions()
    cols = len(recon.originals)
    paths = [save_grid(torch.cat([recon.originals, recon.reconstructed]), folder / "reconstructions.png", cols,
                       rows=["input", "reconstruction"])]
    model = ctx.model
    images, labels = ctx.real_images()
    if model.can("encode") and labels is not None:
        from gencli.data.base import to_float
        from gencli.media.plots import latent_scatter

        codes = []
        with torch.no_grad():
            for lo in range(0, min(len(images), SCATTER_POINTS), ctx.batch_size):
                hi = min(lo + ctx.batch_size, SCATTER_POINTS)
                x = to_float(images[lo:hi].to(ctx.device))
                lab = labels[lo:hi].to(ctx.device) if model.conditional else None
                codes.append(model.encode(x, lab).float().flatten(1).cpu())
        z = torch.cat(codes).numpy()
        title = f"{model.name}: latent codes of {ctx.data.name} ({len(z)} images)"
        paths.append(latent_scatter(z, labels[: len(z)].numpy(), ctx.data.classes, folder / "latents.png", title))
    return paths


def write_translation_figures(ctx, folder: Path, rows: int = TRANSLATION_FIGURE_ROWS) -> list[Path]:
    """Write, per direction, a grid of held-out examples: one row per example, input | output | target.

    The target is the ground truth on paired data; on unpaired data, the translation back
    (input | output | cycled), the usual picture of a cycle-consistent model.
    """
    import torch

    from gencli.data.base import to_float
    from gencli.media.images import save_labelled_grid

    model, paths = ctx.model, []
    for direction in ctx.directions():
        t = ctx.translations(direction)
        x, y = to_float(t.inputs[:rows].clone()), to_float(t.outputs[:rows].clone())
        source, target = direction[0].upper(), direction[-1].upper()
        columns, headings = [x, y], [f"input {source}", f"output {target}"]
        back = "b2a" if direction == "a2b" else "a2b"
        if t.targets is not None:
            columns.append(to_float(t.targets[:rows].clone()))
            headings.append(f"true {target}")
        elif back in model.directions:
            with torch.no_grad():
                columns.append(model.translate(y.to(ctx.device), back).float().clamp(-1, 1).cpu())
            headings.append(f"back to {source}")
        images = torch.stack(columns, dim=1).flatten(0, 1)
        paths.append(save_labelled_grid(images, folder / f"translations-{direction}.png", len(columns), headings))
    return paths
