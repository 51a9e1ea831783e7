"""The prepared cache: identical to decoding on the fly, reused, rebuilt when stale or half-written."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch
from zoo_helpers import image_bytes, write_files

import gencli.data.folders as folders
from gencli.data.base import DataRequest
from gencli.data.cache import HEADER, prepared_root
from gencli.data.folders import load_folder


@pytest.fixture
def pets(tmp_path):
    files = {f"{cls}/{i:02d}.jpg": image_bytes(30 + i, 24, seed=10 * c + i)
             for c, cls in enumerate(("cat", "dog")) for i in range(12)}
    return write_files(tmp_path / "pets", files)


@pytest.fixture
def decodes(monkeypatch):
    """Count the images actually decoded."""
    calls = []
    real = folders.decode_array

    def counting(path, *args, **kwargs):
        calls.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(folders, "decode_array", counting)
    return calls


def _entries():
    return sorted(p for p in prepared_root().iterdir() if not p.name.startswith("."))


def _same(a, b):
    return (a.kind == b.kind and a.classes == b.classes and torch.equal(a.images, b.images)
            and (a.labels is None or torch.equal(a.labels, b.labels)))


def test_the_prepared_cache_is_identical_to_decoding_on_the_fly(pets, data_dir):
    request = DataRequest(16, 3)
    cached = load_folder(pets, request)
    fresh = load_folder(pets, request, cache=False)
    assert _same(cached, fresh) and cached.kind == "labelled" and len(cached.images) == 22
    again = load_folder(pets, request)  # now read from the memory map
    assert _same(again, fresh)
    test_split = load_folder(pets, request.with_split("test"))
    assert _same(test_split, load_folder(pets, request.with_split("test"), cache=False)) and len(test_split.images) == 2


def test_a_second_run_maps_the_cache_instead_of_decoding(pets, data_dir, decodes):
    load_folder(pets, DataRequest(16, 3))
    assert len(decodes) == 22
    decodes.clear()
    data = load_folder(pets, DataRequest(16, 3))
    assert decodes == [] and len(data.images) == 22


def test_the_key_is_dataset_split_size_channels_and_source(pets, data_dir, decodes):
    load_folder(pets, DataRequest(16, 3))
    load_folder(pets, DataRequest(16, 1))
    load_folder(pets, DataRequest(8, 3))
    assert len(_entries()) == 3
    decodes.clear()
    write_files(pets, {"cat/99.jpg": image_bytes(30, 24, seed=99)})  # the source changed
    data = load_folder(pets, DataRequest(16, 3))
    assert len(decodes) == 23 and len(data.images) == 23
    assert len(_entries()) == 3  # rebuilt in place, not beside the stale one


def test_moving_an_image_to_another_class_rebuilds_the_labels(pets, data_dir):
    load_folder(pets, DataRequest(16, 3))
    (pets / "cat" / "00.jpg").rename(pets / "dog" / "50.jpg")  # same size and time, another label
    data = load_folder(pets, DataRequest(16, 3))
    assert _same(data, load_folder(pets, DataRequest(16, 3), cache=False))
    assert data.labels.tolist().count(1) == 12


@pytest.mark.parametrize("damage", ["older format", "not complete", "no header", "truncated images", "garbled header"])
def test_a_stale_or_damaged_entry_is_rebuilt_never_read(pets, data_dir, decodes, damage):
    request = DataRequest(16, 3)
    expected = load_folder(pets, request, cache=False)
    load_folder(pets, request)
    (entry,) = _entries()
    header = json.loads((entry / HEADER).read_text())
    if damage == "older format":
        header["format"] = 0
        (entry / HEADER).write_text(json.dumps(header))
    elif damage == "not complete":
        header["complete"] = False
        (entry / HEADER).write_text(json.dumps(header))
    elif damage == "no header":
        (entry / HEADER).unlink()
    elif damage == "truncated images":
        images = entry / header["arrays"]["images"]["file"]
        images.write_bytes(images.read_bytes()[:1000])
    else:
        (entry / HEADER).write_text('{"format": 1, "comp')
    decodes.clear()
    assert _same(load_folder(pets, request), expected)
    assert len(decodes) == 22  # decoded again rather than read


KILL_HALF_WAY = textwrap.dedent("""
    import json, os, signal, sys
    from pathlib import Path
    import numpy as np
    from gencli.data.cache import CacheKey, prepared

    key = CacheKey(**json.loads(sys.argv[1]))

    def build(writer):
        writer.append("images", np.zeros((4, 3, 16, 16), np.uint8))
        writer.append("images", np.zeros((4, 3, 16, 16), np.uint8))
        os.kill(os.getpid(), signal.SIGKILL)  # killed half-way through writing the entry

    prepared(key, build, root=Path(sys.argv[2]))
""")


def test_a_cache_killed_half_way_is_detected_and_rebuilt(pets, data_dir, decodes):
    request = DataRequest(16, 3)
    load_folder(pets, request)
    (entry,) = _entries()
    key = json.loads((entry / HEADER).read_text())["key"]
    shutil.rmtree(entry)
    # Another process starts preparing exactly this entry and is killed half-way.
    proc = subprocess.run([sys.executable, "-c", KILL_HALF_WAY, json.dumps(key), str(prepared_root())],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    leftovers = list(prepared_root().iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".")  # only the killed build's temp folder
    decodes.clear()
    data = load_folder(pets, request)
    assert len(decodes) == 22  # rebuilt, the half-written files never read
    assert _same(data, load_folder(pets, request, cache=False))
    assert [p.name.startswith(".") for p in prepared_root().iterdir()] == [False]  # temp folder cleaned up
