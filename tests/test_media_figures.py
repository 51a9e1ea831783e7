"""Figures a reader can read: enlarged tiny images, captions, axes in latent units, class rows."""

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from gencli.media.images import (
    READABLE_WIDTH,
    labelled_grid,
    progress_caption,
    progress_gif,
    save_grid,
    upscale_factor,
)


def _digits(n: int, size: int = 28, channels: int = 1) -> torch.Tensor:
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(n)) * 2 - 1


def _has_ink(band: np.ndarray) -> bool:
    return bool((band < 128).any())


def test_progress_frames_are_enlarged_and_carry_their_step_and_epoch(tmp_path):
    pngs = [save_grid(_digits(4), tmp_path / "samples" / f"step-{s:08d}.png", 2) for s in (10, 20, 30)]
    gif = progress_gif(pngs, tmp_path / "progress.gif", steps_per_epoch=20)
    frames = iio.imread(gif, index=None)
    raw = iio.imread(pngs[0])
    factor = upscale_factor(raw.shape[1])
    assert frames.shape[2] == raw.shape[1] * factor >= READABLE_WIDTH  # a 28 px grid is no thumbnail
    band = frames.shape[1] - raw.shape[0] * factor
    assert band > 8 and all(_has_ink(f[:band]) for f in frames)  # a caption above every frame
    assert not np.array_equal(frames[0][:band], frames[1][:band])  # and it differs per step
    assert [progress_caption(s, 20) for s in (10, 20, 30)] == ["step 10, epoch 0.5", "step 20, epoch 1",
                                                               "step 30, epoch 1.5"]
    assert progress_caption(7) == "step 7"


def test_a_training_run_writes_a_readable_progress_gif(tmp_path):
    from gencli.training.engine import TrainConfig, train

    run = train(TrainConfig(model="vae", data="shapes", steps=4, image_size=16, channels=3, batch_size=8,
                            overrides={"widths": "8,16", "latent_dim": "4"}, out=tmp_path / "run", quiet=True,
                            sample_every=2, checkpoint_every=4, device="cpu"))
    frames = iio.imread(run / "progress.gif", index=None)
    assert len(frames) == 2 and frames.shape[2] >= READABLE_WIDTH


def test_labelled_grids_have_headings_and_row_names_and_are_deterministic():
    images = _digits(6, 16, 3)
    plain = labelled_grid(images, 3)
    headed = labelled_grid(images, 3, columns=["t=0", "t=10", "t=100"], rows=["circle", "square"])
    assert plain.shape[1] >= READABLE_WIDTH
    assert headed.shape[0] > plain.shape[0] and headed.shape[1] > plain.shape[1]
    top = headed.shape[0] - plain.shape[0]
    left = headed.shape[1] - plain.shape[1]
    assert _has_ink(headed[:top]) and _has_ink(headed[top:, :left])
    assert np.array_equal(headed, labelled_grid(images, 3, columns=["t=0", "t=10", "t=100"], rows=["circle", "square"]))


def test_loss_plots_with_few_points_show_markers(tmp_path, monkeypatch):

    import matplotlib.axes

    from gencli.media.loss_curves import plot_losses

    markers = []
    original = matplotlib.axes.Axes.plot
    monkeypatch.setattr(matplotlib.axes.Axes, "plot",
                        lambda self, *a, **k: markers.append(k.get("marker")) or original(self, *a, **k))
    assert plot_losses([{"step": s, "loss": 1 / s} for s in (1, 2, 3)], tmp_path / "losses.png").is_file()
    plot_losses([{"step": s, "loss": 1 / s} for s in range(1, 500)], tmp_path / "long.png")
    assert markers == ["o", None]


def test_the_latent_grid_figure_has_axes_in_latent_units(tmp_path, monkeypatch):
    import matplotlib.axes

    from gencli.media.plots import latent_grid_plot

    extents = []
    original = matplotlib.axes.Axes.imshow
    monkeypatch.setattr(matplotlib.axes.Axes, "imshow",
                        lambda self, *a, **k: extents.append(k.get("extent")) or original(self, *a, **k))
    xs, ys = [-2.0, 0.0, 2.0], [1.0, 0.0, -1.0]
    path = latent_grid_plot(_digits(9, 8), xs, ys, tmp_path / "grid.png", "test")
    assert path.is_file() and iio.imread(path).shape[1] > 300
    assert extents == [(-3.0, 3.0, -1.5, 1.5)]  # each image centred on its code


def test_the_forward_noise_figure_defaults_to_a_few_rows_headed_by_t(tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).parent / "diffusion"))
    from diffusion_helpers import make_model

    from gencli.data.base import DataRequest
    from gencli.data.synthetic import build_shapes
    from gencli.media.images import save_labelled_grid
    from gencli_diffusion.ddpm import FORWARD_NOISE_ROWS

    model = make_model(None, timesteps=20)
    data = build_shapes(DataRequest(16, 3, options={"size": 20}))
    images, nrow = model.figure("forward-noise", None, torch.Generator().manual_seed(0), data=data, timesteps="0,10,20")
    assert len(images) == FORWARD_NOISE_ROWS * nrow and nrow == 3
    assert model.figure_captions("forward-noise", timesteps="0,10,20") == (["t=0", "t=10", "t=20"], None)
    columns, rows = model.figure_captions("forward-noise", None, timesteps=(0, 10, 20))
    path = save_labelled_grid(images, tmp_path / "noise.png", nrow, columns, rows)
    picture = iio.imread(path)
    assert picture.shape[1] >= READABLE_WIDTH and _has_ink(picture[:8])


class _Conditional:
    """A stand-in conditional model whose sample of class c is a flat image of value c / 10."""

    name, conditional, classes, num_classes, device = "stub", True, ["zero", "one", "two"], 3, torch.device("cpu")

    def sample(self, n, labels=None, generator=None):
        return (labels.float() / 10).view(-1, 1, 1, 1).expand(n, 1, 8, 8)


def test_class_grids_sample_rows_per_class_labelled_and_folders_per_class(tmp_path):
    from gencli.cli.common import parse_labels as _parse
    from gencli.cli.sample import sample_by_class, save_class_folders, save_class_grid

    def parse_classes(model, text):
        return _parse(model, text)

    model = _Conditional()
    assert parse_classes(model, "all") == [0, 1, 2] and parse_classes(model, "two,0") == [2, 0]
    images = sample_by_class(model, [2, 0], 3)
    assert images.shape == (6, 1, 8, 8) and images[:3].eq(0.2).all() and images[3:].eq(0).all()
    picture = iio.imread(save_class_grid(model, [0, 1, 2], 4, tmp_path / "classes.png"))
    plain = labelled_grid(sample_by_class(model, [0, 1, 2], 4), 4)
    assert picture.shape[0] == plain.shape[0] and picture.shape[1] > plain.shape[1]  # names in a left margin
    folders = save_class_folders(model, [1, 2], 2, tmp_path / "per-class")
    assert [f.name for f in folders] == ["one", "two"] and len(list(folders[0].glob("*.png"))) == 2
    from gencli.errors import UserError

    with pytest.raises(UserError, match="unknown class 'seven'"):
        parse_classes(model, "seven")
