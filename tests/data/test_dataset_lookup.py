"""A named dataset whose files can be local is looked for on this machine before it is downloaded:
the system dataset folder, then each folder of GENCLI_DATASET_PATH, then the cache, then the
download; `gencli datasets` says where each one was found. Tiny IDX fixtures, no network."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from idx_helpers import write_idx_folder

from gencli.data.base import DataRequest, data_root
from gencli.data.resolve import load_dataset
from gencli.errors import UserError


@pytest.fixture
def places(tmp_path, monkeypatch):
    """The system folder, two GENCLI_DATASET_PATH folders and the cache, each with a copy of
    fashion-mnist of its own size (20, -, 30, 40 train images), and no network."""
    import torchvision.datasets as tvd

    system, first, second = tmp_path / "system", tmp_path / "path-a", tmp_path / "path-b"
    monkeypatch.setenv("GENCLI_SYSTEM_DATASETS", str(system))
    monkeypatch.setenv("GENCLI_DATASET_PATH", f"{first}::{second}")  # an empty entry is ignored
    write_idx_folder(system / "fashion-mnist", n_train=20, classes=10)
    first.mkdir()  # on the path, but without the dataset
    write_idx_folder(second / "fashion-mnist", n_train=30, classes=10)
    write_idx_folder(data_root() / "fashion-mnist", n_train=40, classes=10, gz=False)
    downloads = []

    def offline(self, *a, **k):
        downloads.append(self.root)
        raise OSError("network unreachable")

    monkeypatch.setattr(tvd.FashionMNIST, "download", offline)
    return {"system": system / "fashion-mnist", "path": second / "fashion-mnist",
            "cache": data_root() / "fashion-mnist", "downloads": downloads}


def _found(cli, name: str = "fashion-mnist") -> str:
    result = cli("datasets", "--json")
    assert result.exit_code == 0, result.stderr
    return {row["name"]: row["found"] for row in json.loads(result.stdout)}[name]


def test_the_system_folder_then_the_path_then_the_cache_then_the_download(places, cli):
    request = DataRequest(12, 1)
    for where, count in (("system", 20), ("path", 30), ("cache", 40)):
        data = load_dataset("fashion-mnist", request)
        assert len(data) == count, where
        assert data.classes[:2] == ["T-shirt/top", "Trouser"]  # the card's names, wherever it lies
        assert _found(cli) == where
        shutil.rmtree(places[where])
        assert not places["downloads"]
    assert _found(cli) == "not present"
    with pytest.raises(UserError) as info:
        load_dataset("fashion-mnist", request)
    assert places["downloads"], "the download was never tried"
    message = str(info.value)
    assert len(message.splitlines()) == 1 and "network unreachable" in message
    assert "apt-get install dataset-fashion-mnist" in message  # the card's package
    assert "DIR/fashion-mnist for a folder DIR of GENCLI_DATASET_PATH" in message


def test_the_held_out_split_comes_from_the_same_copy(places):
    test = load_dataset("fashion-mnist", DataRequest(12, 1, "test"))
    assert len(test) == 24  # the system copy's t10k files


def test_the_listing_shows_where_each_dataset_was_found(places, cli):
    assert _found(cli, "shapes") == "generated" and _found(cli, "cifar10") == "not present"
    result = cli("datasets")
    assert result.exit_code == 0, result.stderr
    header = next(line for line in result.stdout.splitlines() if "name" in line and "kind" in line)
    assert "found" in header.split()
    row = next(line for line in result.stdout.splitlines() if line.split()[:1] == ["fashion-mnist"])
    assert "system" in row.split()
    card = json.loads(cli("datasets", "--info", "fashion-mnist", "--json").stdout)
    assert card["found"] == "system" and card["found_at"] == str(places["system"])
    assert card["apt_package"] == "dataset-fashion-mnist"


def test_a_torchvision_download_in_the_cache_is_read_as_idx_files(monkeypatch, cli):
    import torchvision.datasets as tvd

    def download(self, *a, **k):  # what torchvision leaves: MNIST/raw/ holding the four files
        write_idx_folder(Path(self.raw_folder), n_train=40, n_test=24, classes=10, gz=False)

    monkeypatch.setattr(tvd.MNIST, "download", download)
    assert _found(cli, "mnist") == "not present"
    data = load_dataset("mnist", DataRequest(12, 1))
    assert len(data) == 40 and data.classes[0] == "0 - zero"
    assert _found(cli, "mnist") == "cache"
    assert len(load_dataset("mnist", DataRequest(12, 1, "test"))) == 24


def test_the_offline_error_names_no_package_where_none_exists(monkeypatch):
    import torchvision.datasets as tvd

    def offline(self, *a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(tvd.MNIST, "download", offline)
    with pytest.raises(UserError) as info:
        load_dataset("mnist", DataRequest(12, 1))
    assert "MNIST/raw" in str(info.value) and "apt-get" not in str(info.value)
