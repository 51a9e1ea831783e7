"""One CVAE over two datasets, `--data A,B`: the label is the source, and sampling honours it."""

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from gencli.data.base import DataRequest
from gencli.data.resolve import load_dataset
from gencli.errors import UserError
from gencli.training.engine import TrainConfig, train


def _bright_grey_folder(folder: Path, n: int = 1000, size: int = 16) -> Path:
    """Grey (one-channel) images, much lighter than the shapes: a second domain to tell apart."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        image = np.clip(rng.normal(225, 20, (size, size)), 0, 255).astype(np.uint8)
        iio.imwrite(folder / f"{i:04d}.png", image)
    return folder


@pytest.fixture(scope="module")
def bright(tmp_path_factory) -> Path:
    return _bright_grey_folder(tmp_path_factory.mktemp("domains") / "bright")


def test_two_specs_become_one_labelled_set_named_by_source(bright):
    data = load_dataset(f"shapes,{bright}", DataRequest(16, 3))
    assert data.kind == "labelled" and data.classes == ["shapes", "bright"]
    assert data.images.shape[1:] == (3, 16, 16)  # the grey folder is converted to the requested channels
    counts = torch.bincount(data.labels)
    assert counts[1] == 900 and counts[0] > 0  # every tenth file is held out for the test split
    assert data.images[data.labels == 1].float().mean() > 200


def test_an_empty_dataset_in_the_pair_is_refused(tmp_path, cli):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="has no images"):
        load_dataset(f"shapes,{tmp_path / 'empty'}", DataRequest(16, 3))
    r = cli("train", "cvae", "--data", f"shapes,{tmp_path / 'empty'}", "--image-size", "16", "--out", tmp_path / "r")
    assert r.exit_code == 2 and "has no images" in r.stderr and "Traceback" not in r.stderr


def test_sampling_with_a_label_gives_that_domain(bright, tmp_path, cli):
    torch.set_num_threads(1)
    run = train(TrainConfig(model="cvae", data=f"shapes,{bright}", steps=200, image_size=16, channels=3,
                            batch_size=32, overrides={"widths": "8,16", "latent_dim": "4", "lr": "3e-3"},
                            out=tmp_path / "cvae", quiet=True, sample_every=200, checkpoint_every=200))
    brightness = {}
    for label in ("bright", "shapes", "1"):
        out = tmp_path / label
        r = cli("sample", run, "--label", label, "-n", "32", "--no-grid", "--out", out, "--device", "cpu")
        assert r.exit_code == 0, r.stderr
        images = [iio.imread(p) for p in sorted(out.glob("*.png"))]
        assert len(images) == 32 and images[0].shape == (16, 16, 3)
        brightness[label] = float(np.mean(images))
    # The real domains average about 225 (bright) and 90 (shapes). One seed draws the same latents
    # for both labels, so a decoder that ignored the label would give identical images.
    assert brightness["bright"] > brightness["shapes"] + 25, brightness
    assert brightness["1"] == brightness["bright"]  # the index and the dataset name are the same class
