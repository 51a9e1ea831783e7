"""Translation folder layouts (unpaired trainA/trainB, paired side-by-side AB) and bad folders."""

from __future__ import annotations

import pytest
import torch
from zoo_helpers import image_bytes, pair_bytes, write_files

from gencli.data.base import DataRequest
from gencli.data.folders import load_folder
from gencli.data.resolve import load_dataset
from gencli.errors import UserError

RED, BLUE, GREEN = (220, 20, 20), (20, 20, 220), (20, 200, 20)


def _colour(images: torch.Tensor) -> torch.Tensor:
    return images.float().mean((0, 2, 3))


def _flat(colour, n, prefix, size=(24, 20)):
    return {f"{prefix}/{i}.png": image_bytes(*size, seed=i, fmt="PNG", colour=colour) for i in range(n)}


def test_trainA_trainB_is_unpaired_with_domains_of_their_own_length(tmp_path, data_dir):
    root = write_files(tmp_path / "h2z", {**_flat(RED, 3, "trainA"), **_flat(BLUE, 5, "trainB"),
                                           **_flat(GREEN, 2, "testA"), **_flat(BLUE, 4, "testB")})
    train = load_dataset(str(root), DataRequest(8, 3))
    assert train.kind == "unpaired" and len(train.images) == 3 and len(train.targets) == 5
    assert _colour(train.images)[0] > 150 and _colour(train.targets)[2] > 150  # A is red, B is blue
    test = load_folder(root, DataRequest(8, 3, split="test"))
    assert len(test.images) == 2 and len(test.targets) == 4 and _colour(test.images)[1] > 150


def test_unpaired_without_test_folders_holds_out_every_tenth_image(tmp_path, data_dir):
    root = write_files(tmp_path / "u", {**_flat(RED, 10, "trainA"), **_flat(BLUE, 20, "trainB")})
    train, test = (load_folder(root, DataRequest(8, 3, split=s)) for s in ("train", "test"))
    assert (len(train.images), len(train.targets)) == (9, 18) and (len(test.images), len(test.targets)) == (1, 2)


@pytest.mark.parametrize("present, message", [
    (("trainA",), "has trainA/ but no trainB/"),
    (("trainB",), "has trainB/ but no trainA/"),
    (("trainA", "trainB", "testA"), "has testA/ but no testB/"),
])
def test_an_unpaired_folder_missing_a_domain_says_which(tmp_path, data_dir, present, message):
    files = {}
    for sub in present:
        files.update(_flat(RED, 2, sub))
    root = write_files(tmp_path / "u", files)
    with pytest.raises(UserError, match=message):
        load_folder(root, DataRequest(8, 3))


def test_an_empty_domain_is_named(tmp_path, data_dir):
    root = write_files(tmp_path / "u", _flat(RED, 2, "trainA"))
    (root / "trainB").mkdir()
    (root / "trainB" / "notes.txt").write_text("x")
    with pytest.raises(UserError, match=r"no images in trainB/"):
        load_folder(root, DataRequest(8, 3))


def test_side_by_side_images_are_paired_left_A_right_B(tmp_path, data_dir):
    files = {f"train/{i}.png": pair_bytes(16, RED, BLUE) for i in range(4)}
    files.update({f"val/{i}.png": pair_bytes(16, GREEN, RED) for i in range(2)})
    root = write_files(tmp_path / "maps", files)
    train = load_dataset(str(root), DataRequest(16, 3))
    assert train.kind == "paired" and train.images.shape == train.targets.shape == (4, 3, 16, 16)
    assert _colour(train.images)[0] > 150 and _colour(train.targets)[2] > 150
    test = load_folder(root, DataRequest(16, 3, split="test"))  # val/ serves as the test split
    assert len(test.images) == 2 and _colour(test.images)[1] > 150
    # a larger load size for random crops keeps each half square
    assert load_folder(root, DataRequest(16, 3, load_size=20)).targets.shape == (4, 3, 20, 20)


def test_a_paired_image_of_odd_width_is_named(tmp_path, data_dir):
    files = {f"train/{i}.png": pair_bytes(16, RED, BLUE) for i in range(3)}
    files["train/9_bad.png"] = pair_bytes(16, RED, BLUE, width=33)
    root = write_files(tmp_path / "facades", files)
    with pytest.raises(UserError, match=r"9_bad\.png.*not a side-by-side pair.*odd"):
        load_folder(root, DataRequest(16, 3))


def test_non_images_are_skipped_with_a_count(tmp_path, data_dir, capsys):
    files = _flat(RED, 4, "flat")
    files.update({"flat/notes.txt": b"x", "flat/labels.csv": b"a,b", "flat/.DS_Store": b""})
    root = write_files(tmp_path, files) / "flat"
    data = load_folder(root, DataRequest(8, 3))
    assert data.kind == "images" and len(data.images) == 4
    assert "skipped 2 non-image file(s)" in capsys.readouterr().err


def test_a_folder_of_only_non_images_is_a_clear_error(tmp_path, data_dir):
    root = write_files(tmp_path / "docs", {"a.txt": b"x", "b.pdf": b"y"})
    with pytest.raises(UserError, match=r"has no images \(skipped 2 non-image file\(s\)\)"):
        load_folder(root, DataRequest(8, 3))


def test_explicit_train_and_test_folders_select_the_split(tmp_path, data_dir):
    files = {**_flat(RED, 3, "train/cat"), **_flat(BLUE, 3, "train/dog"), **_flat(RED, 1, "test/cat"),
             **_flat(BLUE, 2, "test/dog")}
    root = write_files(tmp_path / "pets", files)
    train, test = (load_folder(root, DataRequest(8, 3, split=s)) for s in ("train", "test"))
    assert train.classes == test.classes == ["cat", "dog"]
    assert train.labels.tolist() == [0, 0, 0, 1, 1, 1] and test.labels.tolist() == [0, 1, 1]


def test_a_lone_wrapping_folder_is_looked_through(tmp_path, data_dir):
    root = write_files(tmp_path / "anime", _flat(RED, 3, "images"))
    data = load_folder(root, DataRequest(8, 3))
    assert data.kind == "images" and len(data.images) == 3


def test_large_jpeg_pairs_split_at_the_middle_when_decoded_at_reduced_scale(tmp_path, data_dir):
    import io

    import numpy as np
    from PIL import Image

    arr = np.zeros((256, 512, 3), np.uint8)
    arr[:, :256], arr[:, 256:] = RED, BLUE
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=95)
    root = write_files(tmp_path / "edges", {f"train/{i}.jpg": buf.getvalue() for i in range(2)})
    data = load_folder(root, DataRequest(16, 3))
    a, b = data.images.float(), data.targets.float()
    assert a[:, 0].min() > 180 and a[:, 2].max() < 60  # no blue bleeds into A
    assert b[:, 2].min() > 180 and b[:, 0].max() < 60  # no red bleeds into B
