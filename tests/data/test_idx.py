"""IDX files (the MNIST format): the reader on tiny files written here, damaged files refused in
one line, and a folder of IDX files trained on and evaluated on its held-out split."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from idx_helpers import idx_bytes, split_arrays, write_idx, write_idx_folder

from gencli.data.base import DataRequest
from gencli.data.idx import find_idx_split, is_idx_folder, read_idx_images, read_idx_labels
from gencli.data.resolve import load_dataset
from gencli.errors import UserError

TINY_VAE = ["--set", "widths=8,16", "--image-size", "16", "--batch-size", "8"]


@pytest.mark.parametrize("gz", [True, False], ids=["gzipped", "plain"])
def test_the_reader_returns_the_images_and_labels_written(tmp_path, gz):
    images, labels = split_arrays(30, size=9, classes=3)
    image_file = write_idx(tmp_path / "train-images-idx3-ubyte", idx_bytes(images), gz)
    label_file = write_idx(tmp_path / "train-labels-idx1-ubyte", idx_bytes(labels), gz)
    got_images, got_labels = read_idx_images(image_file), read_idx_labels(label_file)
    assert got_images.dtype == np.uint8 and got_images.shape == (30, 9, 9)
    assert got_labels.dtype == np.int64 and got_labels.shape == (30,)
    assert np.array_equal(got_images, images) and np.array_equal(got_labels, labels)
    assert find_idx_split(tmp_path, "train") == (image_file, label_file)
    assert is_idx_folder(tmp_path) and not is_idx_folder(tmp_path / "missing")


def test_splits_are_found_by_prefix_and_spelling(tmp_path):
    images, labels = split_arrays(5)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(images), gz=True)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(labels), gz=False)  # one zipped, one not
    assert [p.name for p in find_idx_split(tmp_path, "test")] == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte"]
    with pytest.raises(UserError, match="has no train images"):
        find_idx_split(tmp_path, "train")
    dotted = tmp_path / "dotted"
    write_idx(dotted / "train-images.idx3-ubyte", idx_bytes(images), gz=False)
    write_idx(dotted / "train-labels.idx1-ubyte", idx_bytes(labels), gz=False)
    assert [p.name for p in find_idx_split(dotted, "train")] == ["train-images.idx3-ubyte", "train-labels.idx1-ubyte"]


def test_a_gzip_bomb_is_not_decompressed_beyond_the_header(tmp_path):
    images, _ = split_arrays(2, size=4)
    # a header for two 4x4 images, followed by 64 MiB of zeros that compress to almost nothing
    bomb = gzip.compress(idx_bytes(images) + bytes(64 << 20), compresslevel=9)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(bomb)
    with pytest.raises(UserError, match=r"has data after the 2 images its header announces") as info:
        read_idx_images(path)
    assert str(path) in str(info.value)


def test_a_header_announcing_more_than_memory_holds_is_refused_before_reading(tmp_path):
    huge = bytes([0, 0, 8, 3]) + (2**31).to_bytes(4, "big") + (8192).to_bytes(4, "big") * 2
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(huge + bytes(100)))
    with pytest.raises(UserError, match=r"would need .* of memory"):
        read_idx_images(path)
    plain = tmp_path / "plain-images-idx3-ubyte"
    plain.write_bytes(huge + bytes(100))  # a plain file's length is checked against the header first
    with pytest.raises(UserError, match=r"is truncated: it holds 100 of the"):
        read_idx_images(plain)


def test_data_of_another_type_is_refused(tmp_path):
    path = tmp_path / "x-images-idx3-ubyte"
    path.write_bytes(idx_bytes(split_arrays(2)[0], type_byte=0x0D))  # 0x0D: float32
    with pytest.raises(UserError, match=r"holds data of type 0x0d; only unsigned bytes"):
        read_idx_images(path)


# ----------------------------------------------------------------------------- bad files through the CLI


def _wrong_magic(folder: Path) -> Path:
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(split_arrays(40)[1])))  # a labels file where images belong
    return path


def _truncated(folder: Path) -> Path:
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-50]))
    return path


def _truncated_gzip_stream(folder: Path) -> Path:
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-30])
    return path


def _count_mismatch(folder: Path) -> Path:
    path = folder / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(split_arrays(39)[1])))
    return path


def _label_out_of_range(folder: Path) -> Path:
    labels = split_arrays(40)[1]
    labels[7] = 12  # the fashion-mnist card has ten classes
    path = folder / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(labels)))
    return path


def _missing_labels(folder: Path) -> Path:
    path = folder / "train-labels-idx1-ubyte.gz"
    path.unlink()
    return folder / "train-images-idx3-ubyte.gz"


BAD_FILES = {
    "wrong-magic": (_wrong_magic, "magic number is 0x00000801, not 0x00000803"),
    "truncated-data": (_truncated, "is truncated: it holds 5,710 of the 5,760 data bytes"),
    "truncated-gzip": (_truncated_gzip_stream, "is a damaged gzip file"),
    "count-mismatch": (_count_mismatch, "holds 39 labels but train-images-idx3-ubyte.gz holds 40 images"),
    "label-out-of-range": (_label_out_of_range, "has label 12 at item 7, outside the 10 classes 0..9"),
    "missing-labels": (_missing_labels, "has no labels file beside it (expected train-labels-idx1-ubyte"),
}


@pytest.mark.parametrize("case", list(BAD_FILES), ids=list(BAD_FILES))
def test_a_bad_idx_file_is_one_line_exit_2_and_nothing_is_written(case, tmp_path, cli):
    # named like the dataset so its card's ten classes apply (the out-of-range label needs them)
    folder = write_idx_folder(tmp_path / "fashion-mnist", n_train=40, size=12)
    damage, message = BAD_FILES[case]
    bad = damage(folder)
    result = cli("train", "vae", "--data", folder, "--steps", "1", *TINY_VAE)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert str(bad.resolve()) in lines[0] and message in lines[0], lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.iterdir()), "a run folder was written"
    prepared = tmp_path / "data" / "prepared"
    assert not prepared.exists() or not any(prepared.iterdir()), "a prepared entry was left behind"


# ----------------------------------------------------------------------------- training and evaluation


def test_an_idx_folder_is_a_labelled_dataset_with_its_own_test_split(tmp_path):
    folder = write_idx_folder(tmp_path / "digits", n_train=40, n_test=24, size=12, classes=4, gz=False)
    train = load_dataset(str(folder), DataRequest(12, 1))
    test = load_dataset(str(folder), DataRequest(12, 1, "test"))
    assert train.kind == "labelled" and train.classes == ["0", "1", "2", "3"]  # no card: 0..K-1
    assert len(train) == 40 and len(test) == 24 and test.classes == train.classes
    images, labels = split_arrays(24, 12, 4, seed=1)
    assert torch.equal(test.images[:, 0], torch.from_numpy(images)) and torch.equal(test.labels, torch.from_numpy(labels).long())
    # at another size and channel count, resized and converted; a second load maps the prepared entry
    rgb = load_dataset(str(folder), DataRequest(16, 3))
    assert rgb.images.shape == (40, 3, 16, 16)
    entries = list((tmp_path / "data" / "prepared").iterdir())
    assert len(entries) == 3
    again = load_dataset(str(folder), DataRequest(16, 3))
    assert torch.equal(again.images, rgb.images) and len(list((tmp_path / "data" / "prepared").iterdir())) == 3


def test_a_folder_named_like_a_known_dataset_takes_its_class_names(tmp_path):
    folder = write_idx_folder(tmp_path / "fashion-mnist", n_train=20, n_test=0, classes=10)
    data = load_dataset(str(folder), DataRequest(12, 1))
    assert data.classes[0] == "T-shirt/top" and len(data.classes) == 10


def test_training_on_an_idx_folder_and_evaluating_on_its_test_split(tmp_path, cli):
    folder = write_idx_folder(tmp_path / "digits", n_train=40, n_test=24, size=12, classes=4)
    out = tmp_path / "runs" / "idx"
    result = cli("train", "cvae", "--data", folder, "--steps", "3", "--out", out, *TINY_VAE)
    assert result.exit_code == 0, result.stderr
    info = json.loads((out / "run.json").read_text())
    assert info["data"]["kind"] == "labelled" and info["data"]["size"] == 40
    assert info["data"]["classes"] == ["0", "1", "2", "3"]
    result = cli("eval", out, "--metrics", "mse", "--json")
    assert result.exit_code == 0, result.stderr
    settings = json.loads(result.stdout)["settings"]
    assert settings["split"] == "test" and settings["n_real"] == 24  # the t10k files, not train's 40
