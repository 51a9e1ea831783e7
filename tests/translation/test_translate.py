"""`gencli translate`: files and folders in, translated images out under the same names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gencli.cli.translate import translate_paths
from gencli.errors import UserError
from gencli.models.base import Model
from gencli.training.engine import TrainConfig, train
from gencli_translation.cyclegan import CycleGAN, CycleGANHyperparameters
from gencli_translation.pix2pix import Pix2Pix, Pix2PixHyperparameters


class Negative(Model):
    """A stand-in translator with a known answer: a2b and b2a both invert the colours."""

    name = "negative"

    def build_networks(self):
        return {}

    def build_optimizers(self):
        return {}

    def translate(self, x, direction="a2b"):
        return -x


class Painter(Model):
    """A model without the translate capability."""

    name = "painter"

    def build_networks(self):
        return {}

    def build_optimizers(self):
        return {}

    def sample(self, n, labels=None, generator=None):
        return torch.zeros(n, 3, 16, 16)


def write_images(folder: Path, sizes: dict[str, tuple[int, int]], seed: int = 0) -> dict[str, np.ndarray]:
    """Write random RGB images named by ``sizes`` (name -> (width, height)); return their pixels."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = {}
    for name, (w, h) in sizes.items():
        arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(arr).save(folder / name)
        pixels[name] = np.asarray(Image.open(folder / name).convert("RGB"))
    return pixels


def negative(size: int = 16) -> Negative:
    return Negative(None, (3, size, size))


def test_a_folder_is_translated_under_the_same_names(tmp_path):
    src = tmp_path / "in"
    write_images(src, {"a.png": (16, 16), "b.bmp": (16, 16)})
    (src / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    written = translate_paths(negative(), [src], "a2b", out, batch_size=1, show_progress=False)
    assert [p.name for p in written] == ["a.png", "b.bmp"]
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.bmp"]
    for name in ("a.png", "b.bmp"):
        before = np.asarray(Image.open(src / name)).astype(int)
        after = np.asarray(Image.open(out / name)).astype(int)
        assert np.array_equal(after, 255 - before)  # lossless formats: exactly the model's output


def test_any_size_is_resized_for_the_network_and_optionally_back(tmp_path):
    src = tmp_path / "in"
    write_images(src, {"wide.png": (40, 10), "photo.jpg": (24, 30)})
    small = translate_paths(negative(), [src], "a2b", tmp_path / "small", show_progress=False)
    assert {p.name: Image.open(p).size for p in small} == {"photo.jpg": (16, 16), "wide.png": (16, 16)}
    back = translate_paths(negative(), [src], "a2b", tmp_path / "back", resize_back=True, show_progress=False)
    assert {p.name: Image.open(p).size for p in back} == {"photo.jpg": (24, 30), "wide.png": (40, 10)}
    assert Image.open(tmp_path / "back" / "photo.jpg").format == "JPEG"


def test_side_by_side_shows_input_then_output(tmp_path):
    src = tmp_path / "in"
    pixels = write_images(src, {"x.png": (16, 16)})
    [path] = translate_paths(negative(), [src / "x.png"], "a2b", tmp_path / "out", side_by_side=True,
                             show_progress=False)
    pair = np.asarray(Image.open(path)).astype(int)
    assert pair.shape == (16, 32, 3)
    assert np.array_equal(pair[:, :16], pixels["x.png"]) and np.array_equal(pair[:, 16:], 255 - pixels["x.png"])
    [back] = translate_paths(negative(), [src / "x.png"], "a2b", tmp_path / "back", side_by_side=True,
                             resize_back=True, show_progress=False)
    assert Image.open(back).size == (32, 16)


def test_unwritable_formats_become_png(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.full((8, 8), 100, np.uint8)).save(src / "grey.pgm")
    [path] = translate_paths(negative(), [src], "a2b", tmp_path / "out", show_progress=False)
    assert path.name == "grey.png" and Image.open(path).mode == "RGB"


def test_grey_models_write_grey_images(tmp_path):
    src = tmp_path / "in"
    write_images(src, {"c.png": (16, 16)})
    [path] = translate_paths(Negative(None, (1, 16, 16)), [src], "a2b", tmp_path / "out", show_progress=False)
    assert Image.open(path).mode == "L"


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory) -> Path:
    """A tiny trained CycleGAN run (two steps: what matters here is loading and applying it)."""
    return train(TrainConfig(model="cyclegan", data="shapes-unpaired", image_size=16, batch_size=2, steps=2,
                             sample_every=2, checkpoint_every=2, quiet=True, overrides={"ngf": 4, "blocks": 1},
                             out=tmp_path_factory.mktemp("translate") / "run"))


def _as_tensor(paths: list[Path]) -> torch.Tensor:
    return torch.from_numpy(np.stack([np.asarray(Image.open(p)) for p in paths])).permute(0, 3, 1, 2).float()


def test_cyclegan_round_trip_on_a_folder(tmp_path, cyclegan_run):
    """a2b, then b2a on the results: same names, and each file holds the model's output for its input."""
    from gencli import load_run

    model = load_run(cyclegan_run)
    src = tmp_path / "photos"
    write_images(src, {f"{i}.png": (16, 16) for i in range(5)})
    there = translate_paths(model, [src], "a2b", tmp_path / "there", batch_size=2, show_progress=True)
    back = translate_paths(model, [tmp_path / "there"], "b2a", tmp_path / "back", batch_size=3, show_progress=False)
    assert [p.name for p in there] == [p.name for p in back] == [f"{i}.png" for i in range(5)]
    for inputs, outputs, direction in ((sorted(src.iterdir()), there, "a2b"), (there, back, "b2a")):
        with torch.no_grad():
            expected = (model.translate(_as_tensor(inputs) / 127.5 - 1, direction) + 1) * 127.5
        assert (_as_tensor(outputs) - expected.round().clamp(0, 255)).abs().max() <= 1


def test_translate_through_the_cli(cli, tmp_path, cyclegan_run):
    src = tmp_path / "in"
    write_images(src, {"p.png": (20, 30)})
    result = cli("translate", cyclegan_run, src, "--to", "a", "--out", tmp_path / "out",
                 "--resize-back", "--side-by-side")
    assert result.exit_code == 0, result.stderr
    assert Image.open(tmp_path / "out" / "p.png").size == (40, 30)
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("translate", cyclegan_run, empty, "--out", tmp_path / "out2")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: input folder {str(empty)!r} has no images"


# ---------------------------------------------------------------------------------------- mistakes
def test_an_empty_folder_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(UserError, match="input folder .*empty' has no images"):
        translate_paths(negative(), [tmp_path / "empty"], "a2b", tmp_path / "out", show_progress=False)
    assert not (tmp_path / "out").exists()


def test_a_missing_input_is_refused(tmp_path):
    with pytest.raises(UserError, match="input .*nowhere.png' does not exist"):
        translate_paths(negative(), [tmp_path / "nowhere.png"], "a2b", tmp_path / "out", show_progress=False)


def test_an_unreadable_image_is_named_and_nothing_is_written(tmp_path):
    src = tmp_path / "in"
    write_images(src, {"good.png": (16, 16)})
    (src / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(UserError, match="cannot read image .*broken.png'"):
        translate_paths(negative(), [src], "a2b", tmp_path / "out", show_progress=False)
    assert not (tmp_path / "out").exists()


def test_a_file_that_is_not_an_image_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UserError, match="notes.txt' is not an image"):
        translate_paths(negative(), [tmp_path / "notes.txt"], "a2b", tmp_path / "out", show_progress=False)


def test_a_model_that_cannot_translate_is_refused(tmp_path):
    write_images(tmp_path / "in", {"a.png": (16, 16)})
    with pytest.raises(UserError, match="model 'painter' cannot translate images; it can: sample"):
        translate_paths(Painter(None, (3, 16, 16)), [tmp_path / "in"], "a2b", tmp_path / "out", show_progress=False)


def test_a_direction_the_model_was_not_trained_for_is_refused(tmp_path):
    write_images(tmp_path / "in", {"a.png": (16, 16)})
    model = Pix2Pix(Pix2PixHyperparameters(ngf=4), (3, 16, 16))
    with pytest.raises(UserError, match="model 'pix2pix' translates a2b, not 'b2a'"):
        translate_paths(model, [tmp_path / "in"], "b2a", tmp_path / "out", show_progress=False)
    model = CycleGAN(CycleGANHyperparameters(ngf=4, blocks=1), (3, 16, 16))
    with pytest.raises(UserError, match="translates a2b or b2a, not 'up'"):
        translate_paths(model, [tmp_path / "in"], "up", tmp_path / "out", show_progress=False)


def test_outputs_never_overwrite_inputs_or_each_other(tmp_path):
    write_images(tmp_path / "one", {"same.png": (16, 16)})
    write_images(tmp_path / "two", {"same.png": (16, 16)}, seed=1)
    original = (tmp_path / "one" / "same.png").read_bytes()
    with pytest.raises(UserError, match="would overwrite it; choose another --out"):
        translate_paths(negative(), [tmp_path / "one"], "a2b", tmp_path / "one", show_progress=False)
    assert (tmp_path / "one" / "same.png").read_bytes() == original
    with pytest.raises(UserError, match="would both be written as"):
        translate_paths(negative(), [tmp_path / "one", tmp_path / "two"], "a2b", tmp_path / "out", show_progress=False)


def test_existing_output_files_are_never_overwritten(tmp_path):
    """As `gencli sample` does, translate refuses an --out that already holds an output's name, before writing."""
    src = tmp_path / "in"
    write_images(src, {"a.png": (16, 16), "b.png": (16, 16)})
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.png").write_bytes(b"the user's own file")
    with pytest.raises(UserError) as caught:
        translate_paths(negative(), [src], "a2b", out, show_progress=False)
    assert str(caught.value) == (f"--out {str(out)!r} already holds 'b.png'; choose a new folder "
                                 "(nothing is overwritten)")
    assert (out / "b.png").read_bytes() == b"the user's own file"
    assert sorted(p.name for p in out.iterdir()) == ["b.png"]
