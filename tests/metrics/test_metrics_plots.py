"""Latent scatter plots, metric series plots, and progress bars in and out of a terminal."""

import io
import json

import numpy as np
import pytest

from gencli.media.plots import latent_scatter, plot_series, project_2d, read_series


def test_a_2d_latent_is_plotted_as_is_and_a_larger_one_by_its_main_directions(tmp_path):
    rng = np.random.default_rng(0)
    z2 = rng.normal(size=(50, 2))
    points, names = project_2d(z2)
    assert np.array_equal(points, z2) and names == ("z1", "z2")
    z = rng.normal(size=(400, 10)) * 0.1
    z[:, 7] += rng.normal(size=400) * 5  # the one direction that matters
    points, names = project_2d(z)
    assert names[0].startswith("PC1")
    assert abs(np.corrcoef(points[:, 0], z[:, 7])[0, 1]) > 0.99
    labels = rng.integers(0, 3, size=400)
    path = latent_scatter(z, labels, ["a", "b", "c"], tmp_path / "latents.png", max_points=100)
    assert path.stat().st_size > 0 and not list(tmp_path.glob(".*tmp*"))


def test_metric_series_are_read_from_training_lines_and_drawn_with_targets(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    rows = [{"step": s, "kl": 8 + 1 / s, "beta": 1 + s / 10} for s in range(1, 21)]
    rows.insert(5, {"eval": {"fid": 3.0}, "settings": {}})
    metrics.write_text("\n".join(json.dumps(r) for r in rows) + "\n{\"step\": 21, \"kl")  # a cut last line
    from gencli.runs import read_training_rows

    rows = read_training_rows(metrics)
    series = read_series(rows, ["kl", "beta", "absent"])
    assert series["kl"][0] == list(range(1, 21)) and series["absent"] == ([], [])
    out = plot_series(rows, ["kl", "beta"], tmp_path / "kl.png", targets={"kl": 8}, bounds={"beta": (1, 50)})
    assert out is not None and out.stat().st_size > 0
    assert plot_series(rows, ["absent"], tmp_path / "none.png") is None


@pytest.mark.parametrize("terminal", [True, False])
def test_progress_bars_work_in_and_out_of_a_terminal(monkeypatch, terminal):
    from rich.console import Console

    import gencli.ui.console as console
    from gencli.ui.progress import progress_bar

    buffer = io.StringIO()
    monkeypatch.setattr(console, "err", Console(file=buffer, force_terminal=terminal, width=80))
    with progress_bar("generating", 10) as advance:
        for _ in range(10):
            advance(1)
    # A bar in a terminal (drawn, then cleared); nothing at all in logs and pipes.
    assert ("generating" in buffer.getvalue()) == terminal
