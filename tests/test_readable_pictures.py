"""Pictures a person can read: enlarged to at least 256 px a side, with the words that say what
each row or column is (a class, a position on a path, input or reconstruction), and files named
after what they show."""

from __future__ import annotations

import math

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from gencli.media.images import READABLE_SIDE, enlarge, grid, readable_factor, save_grid


def _images(n: int, size: int = 32, channels: int = 3) -> torch.Tensor:
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(n)) * 2 - 1


def _has_ink(band: np.ndarray) -> bool:
    return bool((band < 128).any())


@pytest.fixture(scope="module")
def cvae_run(tmp_path_factory):
    """A conditional run on the shapes classes that saved a progress grid at each of its two steps."""
    from gencli.training.engine import TrainConfig, train

    base = tmp_path_factory.mktemp("pictures")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENCLI_DATA_DIR", str(base / "data"))
        mp.setenv("GENCLI_RUNS_DIR", str(base / "runs"))
        return train(TrainConfig(model="cvae", data="shapes", steps=2, image_size=16, channels=3, batch_size=8,
                                 overrides={"widths": "8,16", "latent_dim": "4"}, out=base / "run", quiet=True,
                                 sample_every="1", checkpoint_every="2", device="cpu"))


@pytest.mark.parametrize("count", [36, 64])
def test_sample_grids_are_enlarged_with_nearest_neighbour_to_a_readable_size(tmp_path, count):
    images = _images(count)
    picture = iio.imread(save_grid(images, tmp_path / "grid.png", int(math.sqrt(count))))
    raw = grid(images, int(math.sqrt(count)))  # 206 px for 36 images of 32 px, 274 px for 64
    assert min(picture.shape[:2]) >= max(READABLE_SIDE, 2 * raw.shape[1])  # each 32 px image at least 64 px
    factor = picture.shape[1] // raw.shape[1]
    assert np.array_equal(picture, enlarge(raw, factor))  # sharp square pixels, nothing blurred


def test_a_long_strip_is_enlarged_within_a_bound_on_its_long_side():
    assert readable_factor(36, 342) == 8  # ten 32 px frames: 288 px tall
    assert readable_factor(36, 3402) == 1  # a hundred frames are wide enough already
    assert readable_factor(300, 300) == 1


def test_the_interpolation_strip_is_headed_by_each_frames_t(tmp_path):
    from gencli.cli.interpolate import _strip_and_gif

    images = _images(10)
    png, gif = _strip_and_gif(images, tmp_path / "walk.png", 10)
    picture, plain = iio.imread(png), iio.imread(save_grid(images, tmp_path / "plain.png", 10))
    assert min(plain.shape[:2]) >= READABLE_SIDE and picture.shape[1] == plain.shape[1]
    band = picture.shape[0] - plain.shape[0]
    assert band > 8 and _has_ink(picture[:band])  # the t of each column above it
    assert np.array_equal(picture[band:], plain)
    frames = iio.imread(gif, index=None)
    assert min(frames.shape[1:3]) >= READABLE_SIDE


def test_reconstruction_rows_are_named_input_and_reconstruction(tmp_path):
    originals, reconstructed = _images(8), _images(8) * 0.5
    both = torch.cat([originals, reconstructed])
    named = iio.imread(save_grid(both, tmp_path / "named.png", 8, rows=["input", "reconstruction"]))
    plain = iio.imread(save_grid(both, tmp_path / "plain.png", 8))
    assert min(plain.shape[:2]) >= READABLE_SIDE  # 274 x 70 before: a strip of thumbnails
    margin = named.shape[1] - plain.shape[1]
    assert named.shape[0] == plain.shape[0] and margin > 8 and _has_ink(named[:, :margin])
    assert np.array_equal(named[:, margin:], plain)


def test_the_progress_grids_of_a_conditional_run_name_the_class_of_each_column(cvae_run):
    import json

    info = json.loads((cvae_run / "run.json").read_text())
    classes, count = info["data"]["classes"], info["training"]["sample_count"]
    step = iio.imread(cvae_run / "samples" / "step-00000002.png")
    cols, rows = len(classes), math.ceil(count / len(classes))
    factor = step.shape[1] // (2 + cols * 18)
    assert factor >= 1 and step.shape[1] == factor * (2 + cols * 18) and min(step.shape[:2]) >= READABLE_SIDE
    band = step.shape[0] - factor * (2 + rows * 18)
    assert band > 8 and _has_ink(step[:band])  # the class names above the columns
    frames = iio.imread(cvae_run / "progress.gif", index=None)
    assert len(frames) == 2 and frames.shape[2] == step.shape[1] and frames.shape[1] > step.shape[0]  # + its step


def test_the_preview_names_classes_only_for_a_class_per_column_grid():
    from gencli.plugins import registry

    cls = registry().model_class("cvae")
    model = cls(cls.Hyperparameters(widths=(8, 16), latent_dim=4), (3, 16, 16), ["a", "b", "c"])
    data_inputs = {"z": torch.zeros(6, 4), "labels": torch.arange(6) % 3}
    assert model.preview_captions(data_inputs) == (["a", "b", "c"], None)
    unlabelled = cls(cls.Hyperparameters(widths=(8, 16), latent_dim=4), (3, 16, 16))
    assert unlabelled.preview_captions({"z": torch.zeros(6, 4)}) == (None, None)


def test_a_label_names_the_sample_file(cli, cvae_run):
    result = cli("sample", cvae_run, "--label", "ring", "--n", "4")
    assert result.exit_code == 0, result.stderr
    written = result.stdout.strip()
    assert "/generated/samples-ring-" in written and written.endswith(".png")
    assert min(iio.imread(written).shape[:2]) >= READABLE_SIDE
    unnamed = cli("sample", cvae_run, "--n", "4").stdout.strip()
    assert "/generated/samples-" in unnamed and "ring" not in unnamed
