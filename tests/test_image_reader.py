"""One image reader for datasets and `gencli translate`: an image over the pixel cap is refused in
the same one line through `--data FOLDER` and through `translate`."""

from __future__ import annotations

import pytest
from PIL import Image

from gencli.cli.translate import translate_paths
from gencli.data.base import DataRequest
from gencli.data.folders import load_folder
from gencli.data.images import UnreadableImage, open_image
from gencli.errors import UserError
from gencli.models.base import Model

# A cap small enough for test images: PIL warns from the cap and refuses from twice the cap.
CAP = 40 * 40


class Identity(Model):
    name = "identity"

    def build_networks(self):
        return {}

    def build_optimizers(self):
        return {}

    def translate(self, x, direction="a2b"):
        return x


@pytest.fixture
def capped(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", CAP)


def _folder(tmp_path, big_size):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (16, 16), (40 * i, 90, 200)).save(folder / f"small{i}.png")
    Image.new("RGB", big_size, (10, 200, 30)).save(folder / "big.png")
    return folder


@pytest.mark.parametrize("big_size", [(50, 40), (100, 90)], ids=["over-the-cap", "over-twice-the-cap"])
def test_a_too_large_image_is_one_and_the_same_line_for_datasets_and_translate(tmp_path, capped, big_size):
    folder = _folder(tmp_path, big_size)
    with pytest.raises(UserError) as from_data:
        load_folder(folder, DataRequest(16, 3), cache=False)
    with pytest.raises(UserError) as from_translate:
        translate_paths(Identity(None, (3, 16, 16)), [folder], "a2b", tmp_path / "out", show_progress=False)
    w, h = big_size
    expected = (f"image {str(folder / 'big.png')!r} is {w:,}x{h:,} pixels, more than the {CAP:,} pixels gencli "
                "decodes (a decompression bomb, or a photo to scale down first)")
    assert str(from_data.value) == str(from_translate.value) == expected
    assert "\n" not in expected
    assert not (tmp_path / "out").exists(), "nothing is written"


def test_images_within_the_cap_open_and_the_cap_is_not_lifted(tmp_path, capped):
    Image.new("L", (40, 40)).save(tmp_path / "fits.png")
    Image.new("L", (100, 90)).save(tmp_path / "big.png")
    with open_image(tmp_path / "fits.png") as img:
        assert img.size == (40, 40)
    with pytest.raises(UnreadableImage, match="100x90 pixels"):
        open_image(tmp_path / "big.png")
    assert Image.MAX_IMAGE_PIXELS == CAP, "reading the header to name the size restores the cap"
