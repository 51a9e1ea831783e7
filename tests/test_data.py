from pathlib import Path

import pytest
import torch
from PIL import Image

from gencli.data.base import BatchStream, DataRequest, ImageData
from gencli.data.resolve import load_dataset
from gencli.data.synthetic import CLASSES, build_shapes, build_shapes_paired, build_shapes_unpaired
from gencli.errors import UserError


def req(size=16, channels=3, split="train", n=64, seed=0):
    return DataRequest(size, channels, split, seed, options={"size": n})


def test_shapes_are_deterministic_labelled_and_split():
    a, b = build_shapes(req()), build_shapes(req())
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert a.images.shape == (64, 3, 16, 16) and a.images.dtype == torch.uint8
    assert a.classes == CLASSES and set(a.labels.tolist()) <= set(range(len(CLASSES)))
    test = build_shapes(req(split="test"))
    assert not torch.equal(a.images, test.images)


def test_shape_classes_differ_in_foreground_area():
    # a ring covers less of its bounding box than a filled circle: the classes are really drawn
    data = build_shapes(req(size=32, n=600))
    fg = (data.images.float().std(1) > 0).float()  # not a reliable mask; use brightness instead
    bright = data.images.float().mean(1)
    area = (bright > bright.flatten(1).median(1).values.view(-1, 1, 1) + 20).float().mean((1, 2))
    ring, circle = area[data.labels == 4].mean(), area[data.labels == 0].mean()
    assert circle > ring * 1.3
    assert fg.shape[0] == 600


def test_paired_and_unpaired_variants():
    p = build_shapes_paired(req())
    assert p.kind == "paired" and p.targets.shape == p.images.shape
    # an outline has fewer foreground pixels than the filled shape it comes from
    assert (p.targets.float().mean() < p.images.float().mean())
    u = build_shapes_unpaired(req(channels=1))
    assert u.kind == "unpaired" and u.images.shape[1] == 1
    assert u.images.float().mean() > u.targets.float().mean() + 50  # light vs dark backgrounds


def test_batch_stream_is_a_function_of_seed_and_epoch():
    data = build_shapes(req(n=40))
    s = BatchStream(data, 8, seed=3)
    e0 = [b.labels for b in s.epoch(0)]
    assert len(e0) == 5
    assert all(torch.equal(x, y) for x, y in zip(e0, [b.labels for b in BatchStream(data, 8, seed=3).epoch(0)]))
    assert not all(torch.equal(x, y) for x, y in zip(e0, [b.labels for b in s.epoch(1)]))
    resumed = [b.labels for b in s.epoch(0, start=2)]
    assert all(torch.equal(x, y) for x, y in zip(e0[2:], resumed))
    batch = next(iter(s.epoch(0)))
    assert batch.images.min() >= -1 and batch.images.max() <= 1 and batch.images.dtype == torch.float32


def test_ranks_take_disjoint_slices_of_the_same_global_batch():
    data = build_shapes(req(n=40))
    full = next(iter(BatchStream(data, 8, seed=1).epoch(0)))
    parts = [next(iter(BatchStream(data, 8, seed=1, rank=r, world_size=2).epoch(0))) for r in (0, 1)]
    assert torch.equal(torch.cat([p.images for p in parts]), full.images)


def test_crop_and_flip_keep_pairs_aligned():
    p = build_shapes_paired(DataRequest(16, 3, load_size=20, options={"size": 32}))
    s = BatchStream(p, 8, crop_size=16, flip=True)
    batch = next(iter(s.epoch(0)))
    assert batch.images.shape == (8, 3, 16, 16) and batch.targets.shape == (8, 3, 16, 16)


def _write(folder, name, size=(20, 12), colour=(200, 30, 30)):
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(folder / name)


def test_folder_with_class_subfolders_is_labelled(tmp_path):
    for i in range(3):
        _write(tmp_path / "cats", f"c{i}.png")
        _write(tmp_path / "dogs", f"d{i}.jpg", colour=(10, 10, 240))
    (tmp_path / "cats" / "notes.txt").write_text("not an image")
    data = load_dataset(str(tmp_path), DataRequest(8, 1))
    assert data.kind == "labelled" and data.classes == ["cats", "dogs"]
    assert data.images.shape == (6, 1, 8, 8)


def test_flat_folder_is_unlabelled(tmp_path):
    for i in range(4):
        _write(tmp_path, f"{i}.png")
    data = load_dataset(str(tmp_path), DataRequest(8, 3))
    assert data.kind == "images" and len(data.images) == 4


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "no images"),
        (lambda p: (p.mkdir(), (p / "a.txt").write_text("x")), "no images"),
        (lambda p: (p.mkdir(), (p / "broken.png").write_bytes(b"not a png")), "broken.png"),
    ],
)
def test_bad_folders_say_what_is_wrong(tmp_path, setup, message):
    folder = tmp_path / "imgs"
    setup(folder)
    with pytest.raises(UserError, match=message):
        load_dataset(str(folder), DataRequest(8, 3))


def test_unknown_dataset_suggests_names():
    with pytest.raises(UserError, match="did you mean 'shapes'"):
        load_dataset("shapez", req())


def test_two_datasets_become_one_labelled_by_source(tmp_path):
    for i in range(5):
        _write(tmp_path / "reds", f"{i}.png")
    data = load_dataset(f"shapes,{tmp_path / 'reds'}", DataRequest(8, 3, options={"size": 10}))
    assert data.kind == "labelled" and data.classes == ["shapes", "reds"]
    assert (data.labels == 1).sum() == 5 and (data.labels == 0).sum() == 10


def test_image_data_rejects_an_empty_set():
    with pytest.raises(UserError, match="no images"):
        ImageData("empty", "images", torch.zeros(0, 3, 8, 8, dtype=torch.uint8))


def test_offline_download_says_where_to_put_the_files(monkeypatch, tmp_path):
    import urllib.error

    import torchvision.datasets as tvd

    def offline(self, *a, **k):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(tvd.MNIST, "download", offline)
    with pytest.raises(UserError, match=r"cannot download 'mnist'.*put .*MNIST/raw.* into .*mnist"):
        load_dataset("mnist", DataRequest(28, 1))


def test_a_failed_torchvision_download_says_why_in_one_line_and_leaves_nothing_that_looks_cached(monkeypatch):
    import torchvision.datasets as tvd

    from gencli.data.base import data_root
    from gencli.data.download import completeness

    def every_mirror_fails(self, *a, **k):
        (Path(self.root) / "MNIST" / "raw").mkdir(parents=True, exist_ok=True)  # as torchvision does
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://a/, got:\n"
                           "<urlopen error [Errno -2] Name or service not known>\nTried http://b/, got:\n"
                           "<urlopen error [Errno -2] Name or service not known>\n")

    monkeypatch.setattr(tvd.MNIST, "download", every_mirror_fails)
    with pytest.raises(UserError) as info:
        load_dataset("mnist", DataRequest(28, 1))
    message = str(info.value)
    assert len(message.splitlines()) == 1 and "(Name or service not known)" in message
    assert completeness(data_root() / "mnist") == "no" and not (data_root() / "mnist").exists()


def test_the_listing_calls_a_dataset_cached_only_when_it_is_complete(cli, tmp_path):
    import json

    from gencli.data.base import data_root
    from gencli.data.download import mark_complete

    def cached():
        rows = json.loads(cli("datasets", "--json").stdout)
        return {r["name"]: r["cached"] for r in rows}["mnist"]

    folder = data_root() / "mnist"
    (folder / "MNIST" / "raw").mkdir(parents=True)
    assert cached() == "no"  # empty folders, as a failed download leaves them
    (folder / "MNIST" / "raw" / "train-images-idx3-ubyte.gz.part").write_bytes(b"half")
    assert cached() == "unverified"
    mark_complete(folder)  # what a successful load writes
    assert cached() == "yes"


def test_has_files_and_disk_usage_walk_the_tree_without_following_linked_folders(tmp_path):
    from gencli.data.download import disk_usage, has_files

    root = tmp_path / "set"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "empty.txt").touch()
    assert not has_files(root) and disk_usage(root) == 0  # empty folders and files hold nothing
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "big.bin").write_bytes(b"x" * 1000)
    (root / "a" / "linked").symlink_to(outside, target_is_directory=True)
    assert not has_files(root) and disk_usage(root) == 0  # a linked folder is not walked
    (root / "a" / "b" / "link.bin").symlink_to(outside / "big.bin")
    assert has_files(root)  # a link to a file with data counts as data
    assert disk_usage(root) == 0  # but its bytes are the target's, not this folder's
    (root / "a" / "b" / "img.png").write_bytes(b"y" * 7)
    assert has_files(root) and disk_usage(root) == 7
    assert not has_files(tmp_path / "missing") and disk_usage(tmp_path / "missing") == 0
