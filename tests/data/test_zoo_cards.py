"""Dataset cards: `gencli datasets`, `--info NAME`, `--prepare NAME`, `--json`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from zoo_helpers import image_bytes, make_zip

from gencli.data.catalog import DATASETS

ZOO = {"cats-vs-dogs", "cartoonset10k", "cartoonset100k", "anime-faces", "celeba", "svhn", "cifar100"}
CYCLEGAN = {"monet2photo", "horse2zebra", "apple2orange", "summer2winter_yosemite", "vangogh2photo",
            "cezanne2photo", "ukiyoe2photo", "cyclegan-maps", "cyclegan-facades", "cyclegan-cityscapes",
            "iphone2dslr_flower"}
PIX2PIX = {"facades", "cityscapes", "maps", "edges2shoes", "edges2handbags", "night2day"}


def test_the_catalog_lists_every_dataset_with_a_full_card_and_imports_no_torch():
    by_name = {spec.name: spec for spec in DATASETS}
    assert ZOO | CYCLEGAN | PIX2PIX <= set(by_name)
    for spec in DATASETS:
        for key in ("source", "citation", "images", "resolution", "fetch_by_hand"):
            assert spec.info.get(key), (spec.name, key)
        assert isinstance(spec.info.get("count"), int) and spec.info.get("native"), spec.name
    assert {by_name[n].kind for n in CYCLEGAN} == {"unpaired"} and {by_name[n].kind for n in PIX2PIX} == {"paired"}
    code = "import sys, gencli.data.catalog; assert 'torch' not in sys.modules, 'torch imported'"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_listing_as_json_parses_and_says_what_is_cached(cli, server, data_dir, monkeypatch):
    result = cli("datasets", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert ZOO | CYCLEGAN | PIX2PIX <= set(rows)
    row = rows["horse2zebra"]
    assert row["kind"] == "unpaired" and row["cached"] == "no" and row["on_disk"] == 0
    assert row["images"] == 2661 and row["resolution"] == "256x256"
    assert rows["celeba"]["kind"] == "unlabelled" and rows["shapes"]["cached"] == "generated"

    monkeypatch.setenv("GENCLI_MIRROR", server.base)
    server.files["horse2zebra.zip"] = make_zip({f"h/{d}/{i}.jpg": image_bytes(16, 16, i) for d in
                                                ("trainA", "trainB", "testA", "testB") for i in range(2)})
    result = cli("datasets", "--prepare", "horse2zebra", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["summary"].startswith("prepared horse2zebra: 8 images (train 4, test 4)")
    row = {r["name"]: r for r in json.loads(cli("datasets", "--json").stdout)}["horse2zebra"]
    assert row["cached"] == "yes" and row["on_disk"] > 0


def test_the_table_lists_names_kinds_and_cached(cli, data_dir):
    result = cli("datasets")
    assert result.exit_code == 0
    for text in ("cats-vs-dogs", "labelled", "cyclegan-maps", "unpaired", "night2day", "paired", "no"):
        assert text in result.stdout


def test_info_as_json_has_source_licence_citation_classes_and_how_to_fetch_by_hand(cli, data_dir):
    result = cli("datasets", "--info", "cats-vs-dogs", "--json")
    assert result.exit_code == 0, result.output
    card = json.loads(result.stdout)
    assert card["name"] == "cats-vs-dogs" and card["kind"] == "labelled" and card["classes"] == ["cat", "dog"]
    assert "microsoft" in card["source"].lower() and card["licence"] and "Asirra" in card["citation"]
    assert "kagglecatsanddogs_5340.zip" in card["fetch_by_hand"] and "downloads/cats-vs-dogs" in card["fetch_by_hand"]
    assert card["location"] == str(data_dir / "cats-vs-dogs") and card["cached"] == "no"


def test_info_shows_where_to_get_anime_faces(cli, data_dir):
    result = cli("datasets", "--info", "anime-faces")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "kaggle.com/datasets/splcher/animefacedataset" in text and "anime-faces" in text


def test_training_on_missing_anime_faces_ends_with_the_instructions(cli, data_dir):
    result = cli("train", "vae", "--data", "anime-faces", "--steps", "1", "--image-size", "16")
    assert result.exit_code == 2
    assert "kaggle.com/datasets/splcher/animefacedataset" in " ".join(result.output.split())


@pytest.mark.parametrize("args", [("--info", "horse2zebr"), ("--prepare", "cats_vs_dogs")])
def test_an_unknown_name_is_a_user_error(cli, data_dir, args):
    result = cli("datasets", *args)
    assert result.exit_code == 2 and "did you mean" in result.output
