"""The loss-curve figure of a run (``losses.png``), drawn from the training lines of its metrics.jsonl."""

from __future__ import annotations

from pathlib import Path

FEW_POINTS = 50


def quality_series(rows: list[dict]) -> dict[str, tuple[list[int], list[float]]]:
    """{name: (steps, values)} of the quality lines (``eval_every``): FID, accuracy and its worst class."""
    series: dict[str, tuple[list[int], list[float]]] = {}

    def add(name: str, step: int, value) -> None:
        if isinstance(value, (int, float)):
            steps, values = series.setdefault(name, ([], []))
            steps.append(step)
            values.append(float(value))

    for row in rows:
        q = row.get("quality")
        if not isinstance(q, dict):
            continue
        add("FID (held-out)", row["step"], q.get("fid"))
        add("class accuracy", row["step"], q.get("accuracy"))
        per_class = [v for k, v in q.items() if k.startswith("accuracy/") and isinstance(v, (int, float))]
        if per_class:  # the class a conditional model draws worst is what a user sees first
            add("worst class accuracy", row["step"], min(per_class))
    return series


def plot_losses(rows: list[dict], out: Path, title: str = "") -> Path | None:
    """Draw each logged loss of training ``rows`` (metrics.jsonl lines) against the step; None when none.

    Quality lines (``{"step", "quality"}``, from ``eval_every``) add panels of FID and class accuracy.
    """
    from gencli.fileio import write_atomic

    png = loss_figure(rows, title)
    if png is None:
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, png)
    return out


def loss_figure(rows: list[dict], title: str = "") -> bytes | None:
    """Return the PNG bytes of ``plot_losses``'s figure, written nowhere (None when nothing was logged)."""
    skip = {"step", "epoch", "images_per_s", "time", "lr"}
    quality = quality_series(rows)
    rows = [r for r in rows if "quality" not in r]
    keys = [k for k in rows[0] if k not in skip and isinstance(rows[0][k], (int, float))] if rows else []
    if not keys and not quality:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = len(keys) + len(quality)
    cols = min(3, panels)
    nrows = (panels + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 2.8 * nrows), squeeze=False)
    steps = [r["step"] for r in rows]
    # A short run logs a handful of points: markers show where they are, not only the lines between.
    marker = "o" if len(rows) <= FEW_POINTS else None
    for ax, key in zip(axes.flat, keys):
        ax.plot(steps, [r.get(key, float("nan")) for r in rows], lw=1.2, marker=marker, markersize=3)
        ax.set_title(key, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.grid(alpha=0.3)
    for ax, (name, (steps, values)) in zip(list(axes.flat)[len(keys):], quality.items()):
        ax.plot(steps, values, lw=1.2, marker="o", markersize=3, color="tab:green")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        if "accuracy" in name:
            ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[panels:]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=90, format="png")
    plt.close(fig)
    return buffer.getvalue()
