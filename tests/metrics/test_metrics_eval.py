"""`gencli eval` end to end on tiny trained runs: metrics, figures, the log line, errors, --compare."""

import json
import math
import shutil

import numpy as np
import pytest
import torch
from metrics_helpers import ConvFeatures, save_torchscript
from torch import nn

import gencli
from gencli.errors import UserError
from gencli.metrics import inception


def _train(root, model):
    return gencli.train(model, "shapes", steps=4, image_size=16, channels=3, batch_size=16,
                        set={"widths": "8,16", "latent_dim": 4}, out=root / "run", sample_every=4, checkpoint_every=4,
                        device="cpu").dir


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("vae"), "vae")


@pytest.fixture(scope="module")
def cvae_run(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("cvae"), "cvae")


@pytest.fixture
def fresh(tmp_path):
    """A private copy of a run, so evaluations logged by one test do not leak into another."""

    def copy(run, name="copy"):
        return shutil.copytree(run, tmp_path / name)

    return copy


@pytest.fixture
def no_inception(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(inception.WEIGHTS_ENV, raising=False)

    def offline(dest):
        raise OSError("no network")

    monkeypatch.setattr(inception, "download_weights", offline)


class AlwaysFirstClass(nn.Module):
    """A 'classifier' that calls every image class 0 (after checking it gets model-sized images)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1:] != (3, 16, 16) or x.min() < -1 or x.max() > 1:
            raise ValueError("classifier input must be [N, 3, 16, 16] in [-1, 1]")
        out = torch.zeros(x.shape[0], 6)
        out[:, 0] = 1.0
        return out


@pytest.fixture(scope="module")
def first_class_classifier(tmp_path_factory):
    return save_torchscript(AlwaysFirstClass(), tmp_path_factory.mktemp("clf") / "clf.pt")


def _eval_lines(run):
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [line for line in lines if "eval" in line]


def test_autoencoder_eval_logs_reconstruction_metrics_and_writes_figures(cli, vae_run, fresh):
    run = fresh(vae_run)
    result = cli("eval", run, "--metrics", "mse,psnr,ssim", "--n", "64", "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    for key in ("mse", "psnr", "ssim"):
        assert key in result.stdout
    line = _eval_lines(run)[-1]
    values, settings = line["eval"], line["settings"]
    assert settings["n"] == 64 and settings["n_real"] == 64 and settings["split"] == "test" and settings["data"] == "shapes"
    assert 0 < values["mse"] < 1 and -1 < values["ssim"] <= 1
    # PSNR is averaged per image, so by Jensen it is at least the PSNR of the mean error.
    assert values["psnr"] >= 10 * math.log10(1 / values["mse"]) - 1e-6
    import imageio.v3 as iio

    grid = iio.imread(run / "eval" / "reconstructions.png")
    factor = grid.shape[0] // (2 * 18 + 2)  # originals over reconstructions, 8 of each, enlarged to be read
    assert factor >= 2 and grid.shape[0] == factor * (2 * 18 + 2) and grid.shape[1] >= factor * (8 * 18 + 2)
    assert (run / "eval" / "latents.png").stat().st_size > 0  # shapes are labelled: a scatter by class


def test_fid_kid_prdc_on_user_features_use_the_real_feature_cache(cli, vae_run, fresh, scripted_features, tmp_path):
    run = fresh(vae_run)
    args = ("eval", run, "--metrics", "fid,kid,prdc", "--features", scripted_features, "--n", "48", "--json", "--device", "cpu")
    first = cli(*args)
    assert first.exit_code == 0, first.stderr
    out = json.loads(first.stdout)
    values = out["eval"]
    assert values["fid"] > 0 and values["kid_std"] >= 0
    for key in ("precision", "recall", "density", "coverage"):
        assert key in values
    assert 0 <= values["precision"] <= 1 and 0 <= values["recall"] <= 1
    assert out["settings"]["features"] == "user:features.pt" and out["settings"]["features_hash"]
    cached = list((tmp_path / "data" / "fid-stats").glob("*.npz"))
    assert len(cached) == 1
    with np.load(cached[0]) as f:  # pytorch-fid's own statistics format, plus the features
        assert f["mu"].shape == (48,) and f["sigma"].shape == (48, 48) and f["features"].shape == (48, 48)
    stamp = cached[0].stat().st_mtime_ns
    second = cli(*args)
    assert json.loads(second.stdout)["eval"] == values  # same seed, same numbers
    assert cached[0].stat().st_mtime_ns == stamp  # read from the cache, not recomputed


def test_torch_export_programs_are_refused_because_loading_them_can_run_code(cli, vae_run, fresh, exported_features):
    result = cli("eval", fresh(vae_run), "--metrics", "fid", "--features", exported_features, "--n", "8", "--device", "cpu")
    assert result.exit_code == 2
    assert "is a torch.export program" in result.stderr and "only TorchScript" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_default_eval_without_inception_weights_warns_and_keeps_reconstruction(cli, vae_run, fresh, no_inception):
    run = fresh(vae_run)
    result = cli("eval", run, "--n", "16", "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    assert "skipping fid, kid" in result.stderr and inception.WEIGHTS_FILE in result.stderr
    assert set(_eval_lines(run)[-1]["eval"]) == {"mse", "psnr", "ssim"}


def test_asking_for_fid_without_weights_fails_with_one_line(cli, vae_run, fresh, no_inception):
    result = cli("eval", fresh(vae_run), "--metrics", "fid", "--n", "16", "--device", "cpu")
    assert result.exit_code == 2
    assert inception.WEIGHTS_FILE in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_without_weights_the_metrics_that_need_none_are_still_computed(cli, vae_run, fresh, no_inception):
    run = fresh(vae_run)
    result = cli("eval", run, "--metrics", "fid,mse,ssim", "--n", "16", "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    assert set(_eval_lines(run)[-1]["eval"]) == {"mse", "ssim"}
    warning = result.stderr.strip()
    assert len(warning.splitlines()) == 1
    assert "skipping fid" in warning and "--fid-weights" in warning and "--features" in warning


def test_only_the_settings_that_apply_are_printed_and_an_unused_set_is_said(cli, vae_run, fresh, scripted_features):
    run = fresh(vae_run)
    pixels = cli("eval", run, "--metrics", "mse", "--n", "16", "--set", "temperature=0.5", "--device", "cpu")
    assert pixels.exit_code == 0, pixels.stderr
    settings = next(line for line in pixels.stdout.splitlines() if line.startswith("settings:"))
    assert settings == "settings: n_real=16"  # nothing generated: no n, no seed
    note = pixels.stderr.strip().splitlines()
    assert len(note) == 1 and "--set temperature=0.5 had no effect" in note[0] and "(mse)" in note[0]
    sampled = cli("eval", run, "--metrics", "fid", "--features", scripted_features, "--n", "16", "--set",
                  "temperature=0.5", "--device", "cpu")
    assert sampled.exit_code == 0, sampled.stderr
    settings = next(line for line in sampled.stdout.splitlines() if line.startswith("settings:"))
    assert settings.startswith("settings: n=16, n_real=16, features=user:features.pt, seed=0")
    assert "had no effect" not in sampled.stderr


def test_prdc_without_weights_names_itself_not_fid(cli, vae_run, fresh, no_inception):
    result = cli("eval", fresh(vae_run), "--metrics", "prdc", "--n", "16", "--device", "cpu")
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and "prdc needs the Inception weights" in line
    assert "--fid-weights" in line and "--features" in line


@pytest.mark.parametrize("args, message", [
    (["--metrics", "fdi"], "unknown metric 'fdi' (did you mean 'fid'"),
    (["--label", "1"], "not conditional"),
    (["--metrics", "accuracy"], "class accuracy needs a conditional model"),
    (["--metrics", "fid", "--features", "missing.pt"], "--features 'missing.pt' does not exist"),
    (["--metrics", "fid", "--features", "pyproject.toml"], "is not a TorchScript file"),
    (["--split", "valid"], "--split must be train or test"),
    (["--n", "1"], "--n must be at least 2"),
])
def test_eval_mistakes_end_with_one_line_and_exit_2(cli, vae_run, fresh, args, message, monkeypatch):
    monkeypatch.chdir(__import__("pathlib").Path(__file__).parents[2])  # for the relative file arguments
    result = cli("eval", fresh(vae_run), *args, "--device", "cpu")
    assert result.exit_code == 2, result.stdout
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_feature_network_that_fails_on_the_images_says_why(cli, vae_run, fresh, tmp_path):
    grey = save_torchscript(ConvFeatures(channels=1).eval(), tmp_path / "grey.pt")  # the run makes RGB images
    result = cli("eval", fresh(vae_run), "--metrics", "fid", "--features", grey, "--n", "8", "--device", "cpu")
    assert result.exit_code == 2
    assert "failed on images of shape [3, 16, 16]" in result.stderr and "channels" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_saved_state_dict_is_not_mistaken_for_a_network(cli, cvae_run, fresh, tmp_path):
    weights = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(3)}, weights)  # a zip archive too, but no network in it
    result = cli("eval", fresh(cvae_run), "--metrics", "accuracy", "--classifier", weights, "--n", "6", "--device", "cpu")
    assert result.exit_code == 2
    assert "--classifier" in result.stderr and "is not a TorchScript file" in result.stderr
    assert "Traceback" not in result.stderr


def test_metrics_that_need_a_missing_capability_are_refused():
    from gencli.metrics.choose import resolve_metrics
    from gencli.models.base import Model

    class OnlySamples(Model):
        name = "only-samples"

        def sample(self, n, labels=None, generator=None):
            return torch.zeros(n, 3, 8, 8)

    model = OnlySamples.__new__(OnlySamples)  # the check reads the class, nothing needs building
    with pytest.raises(UserError, match="metric 'ssim' needs a model that can reconstruct or translate; model 'only-samples' can: sample"):
        resolve_metrics(model, ["fid", "ssim"])


def test_conditional_eval_gives_per_class_fid_and_honours_the_label(cli, cvae_run, fresh, scripted_features,
                                                                     first_class_classifier):
    run = fresh(cvae_run)
    result = cli("eval", run, "--metrics", "fid-class,accuracy", "--features", scripted_features,
                 "--classifier", first_class_classifier, "--n", "60", "--json", "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    values = json.loads(result.stdout)["eval"]
    classes = ["circle", "square", "triangle", "diamond", "ring", "cross"]
    assert all(values[f"fid/{c}"] > 0 for c in classes) and "fid/class-mean" in values
    # The classes are generated in turn and the classifier always says class 0.
    assert values["accuracy"] == pytest.approx(1 / 6)
    assert values["accuracy/circle"] == 1.0 and values["accuracy/square"] == 0.0
    for label, expected in (("circle", 1.0), ("1", 0.0)):
        result = cli("eval", run, "--metrics", "accuracy", "--classifier", first_class_classifier, "--label", label,
                     "--n", "12", "--json", "--device", "cpu")
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["eval"]["accuracy"] == expected
    bad = cli("eval", run, "--metrics", "accuracy", "--classifier", first_class_classifier, "--label", "dog", "--device", "cpu")
    assert bad.exit_code == 2 and "unknown class 'dog'" in bad.stderr
    # One class's numbers stay apart from the model's in --compare.
    row = json.loads(cli("eval", "--compare", run, "--json").stdout)[0]["eval"]
    assert row["accuracy"] == pytest.approx(1 / 6) and row["accuracy [circle]"] == 1.0 and row["accuracy [square]"] == 0.0
    table = cli("eval", "--compare", run)
    assert "accuracy [circle]" in table.stdout


def test_compare_prints_one_table_across_runs(cli, vae_run, cvae_run, fresh):
    a, b, never = fresh(vae_run, "run-a"), fresh(cvae_run, "run-b"), fresh(vae_run, "run-c")
    for run in (a, b):
        assert cli("eval", run, "--metrics", "mse,psnr", "--n", "16", "--device", "cpu").exit_code == 0
    table = cli("eval", "--compare", a, b, never)
    assert table.exit_code == 0, table.stderr
    for text in ("run-a", "run-b", "run-c", "mse", "psnr", "vae", "cvae"):
        assert text in table.stdout
    rows = json.loads(cli("eval", "--compare", a, b, never, "--json").stdout)
    assert [set(r["eval"]) for r in rows] == [{"mse", "psnr"}, {"mse", "psnr"}, set()]
    assert rows[0]["n"] == 16 and rows[0]["step"] == 4


def test_a_models_own_report_figures_are_drawn(vae_run, fresh, monkeypatch):
    from gencli.metrics.evaluate import evaluate
    from gencli_vae.vae import VAE

    def report(self, run):
        path = run.dir / "own-figure.png"
        path.write_bytes(b"png")
        return [path]

    monkeypatch.setattr(VAE, "report", report, raising=False)
    run = fresh(vae_run)
    result = evaluate(run, ["mse"], n=8, device="cpu", progress=False)
    assert str(run / "own-figure.png") in result["figures"]


def test_compare_shows_the_hyperparameters_that_set_runs_apart(cli, vae_run, fresh):
    a, b = fresh(vae_run, "target-8"), fresh(vae_run, "target-14")
    info = json.loads((b / "run.json").read_text())
    info["hyperparameters"]["beta"] = 14.0
    (b / "run.json").write_text(json.dumps(info))
    rows = json.loads(cli("eval", "--compare", a, b, "--json").stdout)
    assert [r["differs"] for r in rows] == [{"beta": json.loads((a / "run.json").read_text())["hyperparameters"]["beta"]},
                                            {"beta": 14.0}]
    table = cli("eval", "--compare", a, b)
    assert "beta" in table.stdout and "14.0" in table.stdout
    assert "latent_dim" not in table.stdout  # the same in both: not worth a row
