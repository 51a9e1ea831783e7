"""The loss-curve figure of a run (``losses.png``), drawn from the training lines of its metrics.jsonl."""

from __future__ import annotations

from pathlib import Path

FEW_POINTS = 50


def plot_losses(rows: list[dict], out: Path, title: str = "") -> Path | None:
    """Draw each logged loss of training ``rows`` (metrics.jsonl lines) against the step; None when none."""
    skip = {"step", "epoch", "images_per_s", "time", "lr"}
    keys = [k for k in rows[0] if k not in skip and isinstance(rows[0][k], (int, float))] if rows else []
    if not keys:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(keys))
    nrows = (len(keys) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 2.8 * nrows), squeeze=False)
    steps = [r["step"] for r in rows]
    # A short run logs a handful of points: markers show where they are, not only the lines between.
    marker = "o" if len(rows) <= FEW_POINTS else None
    for ax, key in zip(axes.flat, keys):
        ax.plot(steps, [r.get(key, float("nan")) for r in rows], lw=1.2, marker=marker, markersize=3)
        ax.set_title(key, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(out)
    return out
