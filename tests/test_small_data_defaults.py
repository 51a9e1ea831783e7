"""Defaults fitted to the training data, and the conditional VAE's label maps and temperature.

A model may adapt its defaults to the data of a new run (``fit_to_data``): what it chose is in
run.json with a note saying why, the user's own settings always win, and runs recorded before
an option existed still load as they were trained.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from gencli.errors import UserError
from gencli.models import hparams
from gencli.training.engine import TrainConfig, train

GAN_TINY = {"g_width": "8", "d_width": "8", "z_dim": "4"}
VAE_TINY = {"widths": "8,8", "latent_dim": "2"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """40 grey 16 px images in 4 class folders: a small real-looking dataset."""
    root = tmp_path_factory.mktemp("small")
    rng = np.random.default_rng(0)
    for k in range(4):
        (root / f"c{k}").mkdir()
        for i in range(10):
            img = rng.integers(0, 60, (16, 16), dtype=np.uint8)
            img[2 + 3 * k : 6 + 3 * k, 4:12] = 255
            Image.fromarray(img, "L").save(root / f"c{k}" / f"{i}.png")
    return str(root)


def run_info(model, data, out, overrides, **kw):
    run = train(TrainConfig(model=model, data=data, image_size=16, channels=1, batch_size=8, steps=2, quiet=kw.pop("quiet", True),
                            overrides=overrides, out=out, sample_every=2, checkpoint_every=2, device="cpu", **kw))
    return run, json.loads((run / "run.json").read_text())


# ------------------------------------------------------------------ dcgan on small data
def test_dcgan_on_a_small_dataset_takes_the_small_data_recipe_and_says_so(tmp_path, folder, capsys):
    run, info = run_info("dcgan", folder, tmp_path / "run", GAN_TINY, quiet=False)
    hp = info["hyperparameters"]
    assert (hp["d_norm"], hp["loss"], hp["lr_d"]) == ("spectral", "hinge", pytest.approx(2 * hp["lr"]))
    assert hp["depth"] == 1 and (hp["g_depth"], hp["d_depth"]) == (None, None)
    assert len(info["notes"]) == 1 and "36 training images (fewer than 10,000)" in info["notes"][0]
    assert "d_norm=spectral" in info["notes"][0] and "depth=1" in info["notes"][0]
    assert "note: 36 training images" in capsys.readouterr().err
    from gencli.runs import load_trained

    model = load_trained(str(run))  # rebuilt from run.json: the spectral discriminator, as trained
    assert any("parametrizations" in name or "weight_orig" in name for name, _ in model.nets["D"].named_parameters())
    extra = [m for m in model.nets["D"].modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(extra) == 2  # the depth, as trained: one 3x3 convolution at each of D's two resolutions


@pytest.mark.parametrize("given", [{"loss": "ns"}, {"d_norm": "batch"}, {"lr_d": "0.0001"}])
def test_any_discriminator_setting_the_user_gives_means_they_chose_it_and_the_depth_is_still_fitted(
        tmp_path, folder, given):
    _, info = run_info("dcgan", folder, tmp_path / "run", {**GAN_TINY, **given})
    hp = info["hyperparameters"]
    assert hp["d_norm"] == given.get("d_norm", "batch") and hp["loss"] == given.get("loss", "ns")
    assert hp["depth"] == 1 and len(info["notes"]) == 1
    assert "depth=1" in info["notes"][0] and "d_norm" not in info["notes"][0]


@pytest.mark.parametrize("given", [{"depth": "0"}, {"g_depth": "2"}, {"d_depth": "0"}])
def test_any_depth_setting_the_user_gives_means_they_chose_it(tmp_path, folder, given):
    run, info = run_info("dcgan", folder, tmp_path / "run", {**GAN_TINY, **given})
    hp = info["hyperparameters"]
    assert hp["depth"] == 0 and hp["d_norm"] == "spectral"
    assert "depth" not in info["notes"][0]
    from gencli.runs import load_trained

    G = load_trained(str(run)).nets["G"]
    convs = [m for m in G.modules() if isinstance(m, torch.nn.Conv2d) and not isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(convs) == 2 * int(given.get("g_depth", 0))  # two resolutions below 16 px, g_depth each


def test_with_every_recipe_setting_given_the_run_has_no_note(tmp_path, folder):
    _, info = run_info("dcgan", folder, tmp_path / "run", {**GAN_TINY, "loss": "ns", "depth": "0"})
    assert "notes" not in info and info["hyperparameters"]["d_norm"] == "batch"


def test_large_data_keeps_the_paper_recipe_and_says_so_and_other_gans_keep_it(tmp_path, folder, capsys):
    _, info = run_info("dcgan", "shapes", tmp_path / "big", GAN_TINY, quiet=False)  # 10,000 training images
    assert info["hyperparameters"]["d_norm"] == "batch" and info["hyperparameters"]["depth"] == 0
    assert len(info["notes"]) == 1 and "10,000 training images (10,000 or more): the paper's recipe" in info["notes"][0]
    assert "d_norm=batch, loss=ns, depth=0" in info["notes"][0]
    assert "note: 10,000 training images" in capsys.readouterr().err
    _, info = run_info("dcgan", "shapes", tmp_path / "chosen", {**GAN_TINY, "depth": "1"})
    assert "notes" not in info  # the user chose part of the recipe: nothing to say
    _, info = run_info("cgan", folder, tmp_path / "cgan", GAN_TINY)
    assert "notes" not in info and info["hyperparameters"]["loss"] == "ns"


# ------------------------------------------------------------------ the conditional GAN
def class_norms(G):
    from gencli_gan.dcgan import ClassBatchNorm2d

    return [m for m in G.modules() if isinstance(m, ClassBatchNorm2d)]


def test_a_new_cgan_run_gives_every_generator_batch_norm_the_class_s_gain_and_bias(tmp_path, folder):
    run, info = run_info("cgan", folder, tmp_path / "run", GAN_TINY)
    assert info["hyperparameters"]["g_labels"] == "batchnorm"
    from gencli.runs import load_trained

    model = load_trained(str(run))
    norms = class_norms(model.nets["G"])
    assert len(norms) == 2 and all(n.class_gain.shape == (4, n.num_features) for n in norms)  # 16 px: 4x4, 8x8
    assert not any(isinstance(m, torch.nn.BatchNorm2d) and m.affine for m in model.nets["G"].modules())
    trained = norms[0].class_gain.detach()
    assert not torch.equal(trained, torch.ones_like(trained))  # they learn
    z = torch.randn(1, 4).expand(4, 4)
    with torch.no_grad():
        images = model.generate(z, torch.arange(4))
    assert images.shape == (4, 1, 16, 16) and images.abs().max() <= 1
    assert all(not torch.equal(images[0], images[k]) for k in (1, 2, 3))


def test_a_cgan_keeps_the_label_at_the_input_when_asked_or_recorded_before_g_labels(tmp_path, folder):
    run, info = run_info("cgan", folder, tmp_path / "run", {**GAN_TINY, "g_labels": "input"})
    assert info["hyperparameters"]["g_labels"] == "input"
    del info["hyperparameters"]["g_labels"]  # as an earlier version wrote it
    (run / "run.json").write_text(json.dumps(info))
    from gencli.runs import load_trained

    model = load_trained(str(run))
    assert model.hp.g_labels is None and not class_norms(model.nets["G"])
    assert model.nets["G"].body[0].in_channels == 4 + 4  # z and the one-hot label
    assert model.sample(4, torch.arange(4)).shape == (4, 1, 16, 16)


# ------------------------------------------------------------------ the conditional VAE
def test_a_new_cvae_run_puts_the_label_into_every_convolution(tmp_path, folder):
    run, info = run_info("cvae", folder, tmp_path / "run", VAE_TINY)
    assert info["hyperparameters"]["label_maps"] is True
    from gencli.runs import load_trained

    model = load_trained(str(run))
    first = model.nets["encoder"].features[0]
    assert first.in_channels == 1 + 4  # the image and four label maps
    assert model.nets["decoder"].body[0].in_channels == 8 + 4


def test_a_cvae_recorded_before_label_maps_loads_with_its_original_layout(tmp_path, folder):
    run, _ = run_info("cvae", folder, tmp_path / "run", {**VAE_TINY, "label_maps": "false"})
    info = json.loads((run / "run.json").read_text())
    del info["hyperparameters"]["label_maps"]  # as an earlier version wrote it
    (run / "run.json").write_text(json.dumps(info))
    from gencli.runs import load_trained

    model = load_trained(str(run))
    assert model.hp.label_maps is None and model.nets["encoder"].features[0].in_channels == 1
    assert model.sample(4, torch.arange(4)).shape == (4, 1, 16, 16)


def test_temperature_scales_the_prior_and_defaults_to_what_the_model_declares(tmp_path, folder):
    from gencli.runs import load_trained
    from gencli_vae.vae import CVAESampleOptions, VAESampleOptions

    run, _ = run_info("cvae", folder, tmp_path / "run", VAE_TINY)
    model = load_trained(str(run))
    labels = torch.arange(4)

    def draw(**options):
        return model.sample(4, labels, generator=torch.Generator().manual_seed(3), **options)

    z = model.latents(4, torch.Generator().manual_seed(3))
    assert torch.allclose(draw(temperature=0.5), model.decode(z * 0.5, labels))
    assert torch.allclose(draw(), draw(temperature=CVAESampleOptions().temperature))
    assert CVAESampleOptions().temperature < 1 and VAESampleOptions().temperature == 1.0
    with pytest.raises(UserError, match="temperature must be > 0"):
        hparams.build(CVAESampleOptions, {"temperature": "0"}, what="option")


def test_sample_temperature_is_a_cli_option(tmp_path, folder, cli):
    run, _ = run_info("cvae", folder, tmp_path / "run", VAE_TINY)
    ok = cli("sample", run, "--label", "c1", "--n", "4", "--set", "temperature=0.3", "--out", tmp_path / "s.png",
             "--device", "cpu")
    assert ok.exit_code == 0, ok.stderr
    bad = cli("sample", run, "--label", "c1", "--n", "4", "--set", "temperature=-1", "--device", "cpu")
    assert bad.exit_code == 2 and "temperature must be > 0" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
