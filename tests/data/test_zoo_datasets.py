"""The zoo's archive datasets end to end against a local HTTP server (GENCLI_MIRROR)."""

from __future__ import annotations

import pytest
import torch
from zoo_helpers import cats_vs_dogs_files, image_bytes, make_tar, make_zip, pair_bytes, write_files

import gencli.data.folders as folders
from gencli.data.base import DataRequest
from gencli.data.cards import prepare
from gencli.data.resolve import load_dataset
from gencli.errors import UserError


@pytest.fixture
def mirror(server, data_dir, monkeypatch):
    monkeypatch.setenv("GENCLI_MIRROR", server.base)
    return server


def test_cats_vs_dogs_is_prepared_with_its_broken_files_counted(mirror, data_dir, capsys):
    mirror.files["kagglecatsanddogs_5340.zip"] = make_zip(cats_vs_dogs_files(per_class=10))
    line = prepare("cats-vs-dogs", image_size=16)
    # 20 readable JPEGs; the zero-byte and the truncated one skipped; two Thumbs.db files counted
    assert line.startswith("prepared cats-vs-dogs: 20 images (train 18, test 2)")
    assert "skipped 2 non-image file(s) and 2 unreadable image(s)" in line
    err = capsys.readouterr().err
    assert "unreadable image(s)" in err and "Traceback" not in err
    data = load_dataset("cats-vs-dogs", DataRequest(16, 3))
    assert data.kind == "labelled" and data.classes == ["cat", "dog"] and len(data.images) == 18
    assert data.labels.tolist().count(0) == 9 and data.labels.tolist().count(1) == 9


def test_a_prepared_dataset_is_reused_without_download_or_decoding(mirror, data_dir, monkeypatch):
    mirror.files["kagglecatsanddogs_5340.zip"] = make_zip(cats_vs_dogs_files(per_class=10))
    first = load_dataset("cats-vs-dogs", DataRequest(16, 3))
    decoded = []
    monkeypatch.setattr(folders, "decode_array", lambda *a, **k: decoded.append(a) or None)
    again = load_dataset("cats-vs-dogs", DataRequest(16, 3))
    assert torch.equal(first.images, again.images) and decoded == []
    assert mirror.count("kagglecatsanddogs_5340.zip") == 1


def test_a_cyclegan_archive_by_name_is_unpaired(mirror, data_dir):
    files = {f"horse2zebra/{sub}/{i}.jpg": image_bytes(32, 32, seed=i + 10 * k)
             for k, (sub, n) in enumerate((("trainA", 3), ("trainB", 4), ("testA", 2), ("testB", 1)))
             for i in range(n)}
    mirror.files["horse2zebra.zip"] = make_zip(files)
    train = load_dataset("horse2zebra", DataRequest(16, 3))
    assert train.kind == "unpaired" and (len(train.images), len(train.targets)) == (3, 4)
    test = load_dataset("horse2zebra", DataRequest(16, 3, split="test"))
    assert (len(test.images), len(test.targets)) == (2, 1)


def test_a_pix2pix_archive_by_name_is_paired(mirror, data_dir):
    files = {f"facades/train/{i}.jpg": pair_bytes(16, (250, 0, 0), (0, 0, 250)) for i in range(3)}
    files.update({f"facades/val/{i}.jpg": pair_bytes(16, (250, 0, 0), (0, 0, 250)) for i in range(2)})
    mirror.files["facades.tar.gz"] = make_tar(files)
    data = load_dataset("facades", DataRequest(16, 3))
    assert data.kind == "paired" and len(data.images) == 3
    assert data.images.float().mean((0, 2, 3))[0] > 150 and data.targets.float().mean((0, 2, 3))[2] > 150


def test_an_archive_with_another_layout_says_what_it_holds(mirror, data_dir):
    mirror.files["apple2orange.zip"] = make_zip({"apple2orange/apples/1.jpg": image_bytes(8, 8, 1),
                                                 "apple2orange/oranges/1.jpg": image_bytes(8, 8, 2)})
    with pytest.raises(UserError, match=r"apple2orange\.zip does not have the expected layout.*apples/, oranges/"):
        load_dataset("apple2orange", DataRequest(16, 3))
    assert not (data_dir / "apple2orange").exists()


def test_offline_names_the_url_and_where_to_put_the_archive(data_dir, closed_port, monkeypatch):
    monkeypatch.setenv("GENCLI_MIRROR_MONET2PHOTO", f"http://127.0.0.1:{closed_port}")
    with pytest.raises(UserError) as err:
        load_dataset("monet2photo", DataRequest(16, 3))
    assert "monet2photo.zip" in str(err.value)
    assert str(data_dir / "downloads" / "monet2photo" / "monet2photo.zip") in str(err.value)


def test_anime_faces_says_where_to_get_it_until_it_is_placed(data_dir):
    with pytest.raises(UserError) as err:
        load_dataset("anime-faces", DataRequest(16, 3))
    message = str(err.value)
    assert "kaggle.com/datasets/splcher/animefacedataset" in message
    assert str(data_dir / "anime-faces") in message and "--data" in message
    write_files(data_dir / "anime-faces", {f"images/{i}.jpg": image_bytes(24, 24, seed=i) for i in range(12)})
    data = load_dataset("anime-faces", DataRequest(16, 3))
    assert data.kind == "images" and len(data.images) == 11  # every tenth image is the test split


def test_cartoonset_reads_every_png_and_ignores_the_csv_attributes(mirror, data_dir, capsys):
    files = {f"cartoonset10k/cs{i}.png": image_bytes(20, 20, seed=i, fmt="PNG") for i in range(5)}
    files.update({f"cartoonset10k/cs{i}.csv": b'"face_shape", 4, 7\n' for i in range(5)})
    mirror.files["cartoonset10k.tgz"] = make_tar(files)
    data = load_dataset("cartoonset10k", DataRequest(16, 3))
    assert data.kind == "images" and len(data.images) == 5
    assert "non-image" not in capsys.readouterr().err


def test_celeba_reads_its_partition_and_crops_the_centre_face(data_dir):
    import numpy as np
    from PIL import Image

    base = data_dir / "celeba" / "celeba"
    (base / "img_align_celeba").mkdir(parents=True)
    arr = np.zeros((218, 178, 3), np.uint8)
    arr[:] = (0, 0, 250)  # blue border ...
    arr[35:183, 15:163] = (250, 0, 0)  # ... around the central 148x148 face square, red
    lines = []
    for i in range(6):
        Image.fromarray(arr).save(base / "img_align_celeba" / f"{i:06d}.jpg", quality=95)
        lines.append(f"{i:06d}.jpg {[0, 0, 0, 1, 2, 2][i]}")
    (base / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    train = load_dataset("celeba", DataRequest(16, 3))
    test = load_dataset("celeba", DataRequest(16, 3, split="test"))
    assert train.kind == "images" and (len(train.images), len(test.images)) == (3, 2)
    colour = train.images.float().mean((0, 2, 3))
    assert colour[0] > 200 and colour[2] < 40  # only the face square is left
