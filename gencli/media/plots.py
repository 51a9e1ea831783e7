"""Figures beyond image grids: latent scatter plots and metric series from metrics.jsonl.

matplotlib is imported lazily, with the Agg backend, so these work on machines without a
display and cost nothing until a figure is drawn. Files are written through a temporary file
and a rename, like every other run artefact.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path, dpi: int = 100) -> Path:
    import io

    from gencli.fileio import write_atomic

    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    write_atomic(path, buffer.getvalue())
    return path


# ------------------------------------------------------------------ latent grid
def latent_grid_plot(images, xs: Sequence[float], ys: Sequence[float], out: Path, title: str = "") -> Path:
    """Draw a KxK grid of decodings (row-major, top row first) on axes in latent units.

    ``xs`` are the z1 values of the columns, left to right; ``ys`` the z2 values of the rows, top
    to bottom; the ticks read off which code made which image.
    """
    from gencli.media.images import grid

    plt = _pyplot()
    k = len(xs)
    picture = grid(images, k, padding=0)
    dx = (xs[-1] - xs[0]) / max(1, k - 1)
    dy = (ys[0] - ys[-1]) / max(1, len(ys) - 1)
    # Each image is centred on its code: the extent reaches half a cell beyond the outer codes.
    extent = (xs[0] - dx / 2, xs[-1] + dx / 2, ys[-1] - dy / 2, ys[0] + dy / 2)
    fig, ax = plt.subplots(figsize=(6.4, 6.4))
    ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None, vmin=0, vmax=255, extent=extent,
              interpolation="nearest", aspect="auto")
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    if title:
        ax.set_title(title, fontsize=10)
    return _save(fig, out)


# ------------------------------------------------------------------ latent scatter
def project_2d(z: np.ndarray) -> tuple[np.ndarray, tuple[str, str]]:
    """Return 2-D points for latents [N, D] and their axis names: the first two dims, or PCA."""
    z = np.asarray(z, dtype=np.float64).reshape(len(z), -1)
    if z.shape[1] == 1:
        return np.concatenate([z, np.zeros_like(z)], axis=1), ("z1", "")
    if z.shape[1] == 2:
        return z, ("z1", "z2")
    centred = z - z.mean(axis=0)
    # The two directions of largest variance: a faithful flat view of a larger latent.
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    share = s**2 / max(float((s**2).sum()), 1e-12)
    return centred @ vt[:2].T, (f"PC1 ({share[0]:.0%})", f"PC2 ({share[1]:.0%})")


def latent_scatter(
    z: np.ndarray,
    labels: np.ndarray | None,
    classes: Sequence[str] | None,
    path: Path,
    title: str = "",
    max_points: int = 5000,
    seed: int = 0,
) -> Path:
    """Write a scatter plot of latents [N, D] coloured by class, with a legend; return its path."""
    z = np.asarray(z).reshape(len(z), -1)
    labels = None if labels is None else np.asarray(labels)
    if len(z) > max_points:  # a readable plot, not an ink blot
        keep = np.sort(np.random.default_rng(seed).choice(len(z), max_points, replace=False))
        z, labels = z[keep], None if labels is None else labels[keep]
    points, (xlabel, ylabel) = project_2d(z)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=4, alpha=0.6)
    else:
        names = list(classes) if classes else [str(c) for c in range(int(labels.max()) + 1)]
        cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
        for c, name in enumerate(names):
            mine = labels == c
            if mine.any():
                ax.scatter(points[mine, 0], points[mine, 1], s=4, alpha=0.7, color=cmap(c % cmap.N), label=name)
        ax.legend(markerscale=3, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title or "latent codes")
    ax.grid(alpha=0.3)
    return _save(fig, path)


# ------------------------------------------------------------------ metric series
def read_series(rows: Sequence[dict], keys: Sequence[str]) -> dict[str, tuple[list[int], list[float]]]:
    """Return {key: (steps, values)} for each key, from the training lines (``Run.metrics()``) that logged it."""
    series: dict[str, tuple[list[int], list[float]]] = {k: ([], []) for k in keys}
    for row in rows:
        for k in keys:
            v = row.get(k)
            if isinstance(v, (int, float)):
                series[k][0].append(int(row["step"]))
                series[k][1].append(float(v))
    return series


def plot_series(
    rows: Sequence[dict],
    keys: Sequence[str],
    path: Path,
    targets: dict[str, float] | None = None,
    bounds: dict[str, tuple[float, float]] | None = None,
    log_scale: Sequence[str] = (),
    title: str = "",
) -> Path | None:
    """Write one panel per key of the training ``rows`` against the step; None when none was logged.

    ``targets`` draws a dashed line at a key's target (e.g. ``{"kl": 8}`` for a KL controller),
    ``bounds`` shades a key's allowed range (e.g. ``{"beta": (1, 50)}``), ``log_scale`` lists
    keys drawn on a log axis.
    """
    series = read_series(rows, keys)
    keys = [k for k in keys if series[k][0]]
    if not keys:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 2.6 * len(keys)), sharex=True, squeeze=False)
    for ax, key in zip(axes[:, 0], keys):
        steps, values = series[key]
        ax.plot(steps, values, lw=1.2, label=key)
        if targets and key in targets:
            ax.axhline(targets[key], color="black", ls="--", lw=1, label=f"target {targets[key]:g}")
        if bounds and key in bounds:
            lo, hi = bounds[key]
            ax.axhspan(lo, hi, color="grey", alpha=0.12, label=f"range [{lo:g}, {hi:g}]")
        if key in log_scale:
            ax.set_yscale("log")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    axes[-1, 0].set_xlabel("step")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


# ------------------------------------------------------------------ confusion matrix
def confusion_plot(counts, classes: Sequence[str], out: Path, title: str = "") -> Path:
    """Draw a confusion matrix: rows = class asked for, columns = class read, each row as shares.

    Shares rather than counts, so classes generated in unequal numbers read alike; the diagonal
    share is printed in every cell that holds at least 1% (all cells up to 12 classes).
    """
    plt = _pyplot()
    counts = np.asarray(counts, dtype=float)
    k = len(classes)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = min(12.0, 2.0 + 0.45 * k)
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(k)
    labels = [str(c) for c in classes]
    ax.set_xticks(ticks, labels, rotation=90 if max(map(len, labels), default=0) > 3 else 0, fontsize=8)
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.set_xlabel("class read by the classifier")
    ax.set_ylabel("class asked for")
    if k <= 12:
        for i in range(k):
            for j in range(k):
                if shares[i, j] >= 0.01:
                    ax.text(j, i, f"{shares[i, j]:.0%}", ha="center", va="center", fontsize=7,
                            color="white" if shares[i, j] > 0.6 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the row")
    if title:
        ax.set_title(title, fontsize=10)
    return _save(fig, out, dpi=80)
