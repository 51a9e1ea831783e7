"""`gencli eval --real A --fake B`: two image folders scored like `python -m pytorch_fid A B`."""

import json
import re

import pytest
import torch

from gencli.data.base import DataRequest, to_float
from gencli.data.synthetic import build_shapes
from gencli.media.images import save_images
from gencli.metrics import inception
from gencli.metrics.inception import WEIGHTS_FILE, fid_inception_architecture, randomise


def _folders(root, real=8, fake=8):
    """Two folders of 16 px RGB shape images, from different splits so they differ."""
    save_images(to_float(build_shapes(DataRequest(16, 3, "train", options={"size": real})).images), root / "real")
    save_images(to_float(build_shapes(DataRequest(16, 3, "test", options={"size": fake})).images), root / "fake")
    return root / "real", root / "fake"


@pytest.mark.slow  # about 20 s on two cores: 12 Inception passes at 299 px each side, and pytorch-fid's 2048-d sqrtm
@pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning", "ignore:Matrix is singular")
def test_fid_of_two_folders_equals_pytorch_fids(cli, tmp_path, monkeypatch):
    from pytorch_fid.fid_score import calculate_fid_given_paths

    torch.set_num_threads(2)
    # Random FID-Inception weights where torch's cache keeps the real file, so pytorch-fid loads them too,
    # and named through GENCLI_FID_WEIGHTS for gencli.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    weights = tmp_path / "torch" / "hub" / "checkpoints" / WEIGHTS_FILE
    weights.parent.mkdir(parents=True)
    torch.save(randomise(fid_inception_architecture()).state_dict(), weights)
    monkeypatch.setenv(inception.WEIGHTS_ENV, str(weights))
    real, fake = _folders(tmp_path, 6, 6)

    result = cli("eval", "--real", real, "--fake", fake, "--metrics", "fid", "--json", "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    ours = out["eval"]["fid"]
    assert out["settings"]["features"] == "inception-pool3" and out["settings"]["n_real"] == 6
    theirs = calculate_fid_given_paths([str(real), str(fake)], 6, "cpu", 2048, num_workers=0)
    assert theirs > 0
    assert abs(ours - theirs) / theirs < 1e-3, (ours, theirs)


def test_the_real_folders_features_are_cached_by_content(cli, tmp_path, scripted_features, monkeypatch):
    from gencli.metrics import context

    extracted = []
    extract = context.extract

    def counting(extractor, images, *args, **kwargs):
        extracted.append(args[2] if len(args) > 2 else kwargs.get("what"))
        return extract(extractor, images, *args, **kwargs)

    monkeypatch.setattr(context, "extract", counting)
    real, fake = _folders(tmp_path)
    args = ("eval", "--real", real, "--fake", fake, "--features", scripted_features, "--json", "--device", "cpu")

    first = cli(*args)
    assert first.exit_code == 0, first.stderr
    scores = json.loads(first.stdout)["eval"]
    assert set(scores) == {"fid", "kid", "kid_std", "precision", "recall", "density", "coverage"}
    assert scores["fid"] > 0 and extracted.count("real features") == 1

    again = cli(*args)
    assert json.loads(again.stdout)["eval"] == scores
    assert extracted.count("real features") == 1  # read from the cache
    assert extracted.count("generated features") == 2

    # One image of the real folder changes: its features are extracted again, and the numbers move.
    first_image = sorted(real.glob("*.png"))[0]
    save_images(torch.ones(1, 3, 16, 16), tmp_path / "white")
    first_image.write_bytes(next((tmp_path / "white").glob("*.png")).read_bytes())
    changed = cli(*args)
    assert changed.exit_code == 0, changed.stderr
    assert extracted.count("real features") == 2
    assert json.loads(changed.stdout)["eval"]["fid"] != scores["fid"]

    table = cli(*args[:-3], "--device", "cpu")  # the table names the folders and the settings that apply
    assert table.exit_code == 0 and "fid" in table.stdout and "n_real=8, n_fake=8, image_size=16" in table.stdout


def _bad_inputs(tmp_path):
    real, fake = _folders(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no images here")
    broken = tmp_path / "broken"
    broken.mkdir()
    for png in sorted(fake.glob("*.png")):
        (broken / png.name).write_bytes(png.read_bytes())
    (broken / "sample-0003.png").write_bytes(b"not really a png")
    few, one = tmp_path / "few", tmp_path / "one"
    few.mkdir()
    one.mkdir()
    for png in sorted(fake.glob("*.png"))[:4]:
        (few / png.name).write_bytes(png.read_bytes())
    (one / "only.png").write_bytes(next(fake.glob("*.png")).read_bytes())
    return {
        "missing": (["--real", tmp_path / "nope", "--fake", fake], "--real .*nope' does not exist"),
        "a file": (["--real", real, "--fake", next(fake.glob("*.png"))], "--fake .* is not a folder"),
        "empty": (["--real", real, "--fake", tmp_path / "empty"], "--fake .*empty' has no images"),
        "no image files": (["--real", tmp_path / "notes", "--fake", fake], "--real .*notes' has no images"),
        "unreadable": (["--real", real, "--fake", broken], "cannot read image .*sample-0003.png"),
        "too few for prdc": (["--real", real, "--fake", few], "prdc needs at least 6 images in each folder; --fake .*few' has 4"),
        "too few for fid": (["--real", one, "--fake", fake, "--metrics", "fid"],
                            "fid needs at least 2 images in each folder; --real .*one' has 1"),
        "only one folder": (["--real", real], "--real and --fake go together"),
        "with a run": (["some-run", "--real", real, "--fake", fake], "a run cannot be used with --real and --fake"),
        "with --n": (["--real", real, "--fake", fake, "--n", "5"], "--n cannot be used with --real and --fake"),
        "a pixel metric": (["--real", real, "--fake", fake, "--metrics", "ssim"], "metric 'ssim' cannot score two folders"),
    }


def test_bad_inputs_are_one_line_and_exit_2(cli, tmp_path, scripted_features):
    for name, (args, message) in _bad_inputs(tmp_path).items():
        result = cli("eval", *args, "--features", scripted_features, "--device", "cpu")
        assert result.exit_code == 2, (name, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, result.stderr)
        assert "Traceback" not in result.stderr
        assert re.search(message, lines[0]), (name, lines[0])
    assert not (tmp_path / "data" / "fid-stats").exists()  # no mistake leaves anything on disk
