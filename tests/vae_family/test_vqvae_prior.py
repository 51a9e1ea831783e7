"""The second stage: a gated PixelCNN prior over a trained VQ-VAE's codes, trained with --from RUN."""

import json
import shutil

import pytest
import torch

from gencli.errors import UserError
from gencli.runs import load_trained
from gencli.training.engine import TrainConfig, train
from gencli_vae.vqvae import GatedPixelCNN

VQ = {"hidden": "16", "res_hidden": "8", "res_blocks": "1", "codebook_size": "16", "code_dim": "8", "lr": "5e-3",
      "restart_after": "5"}
PRIOR = {"channels": "16", "layers": "3", "kernel": "3", "lr": "3e-3"}
TINY = dict(data="shapes", image_size=16, batch_size=16, quiet=True)


@pytest.mark.parametrize("layers, kernel", [(1, 3), (3, 3), (2, 5)])
def test_each_position_sees_only_the_codes_before_it(layers, kernel):
    torch.manual_seed(0)
    net = GatedPixelCNN(num_codes=8, channels=4, layers=layers, kernel=kernel)
    x = torch.randn(1, 4, 5, 5, requires_grad=True)
    for i in range(5):
        for j in range(5):
            (grad,) = torch.autograd.grad(net.logits_from_embedding(x)[0, :, i, j].sum(), x)
            seen = grad.abs().sum((0, 1)) > 0
            for a in range(5):
                for b in range(5):
                    if (a, b) >= (i, j):
                        assert not seen[a, b], f"({i},{j}) sees ({a},{b})"
    # deep enough, the last position sees every earlier one (no blind spot)
    if layers * (kernel // 2) >= 4:
        assert seen.flatten()[:-1].all()


def test_a_row_needs_only_the_rows_above_it():
    # sampling computes row i on rows 0..i alone; that must give the same logits as the full grid
    torch.manual_seed(0)
    net = GatedPixelCNN(num_codes=8, channels=4, layers=3, kernel=5)
    codes = torch.randint(0, 8, (2, 6, 6))
    full = net(codes)
    for i in range(6):
        assert torch.allclose(net(codes[:, : i + 1])[:, :, i], full[:, :, i], atol=1e-6)


@pytest.fixture(scope="module")
def vq_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("vq")
    torch.set_num_threads(1)
    return train(TrainConfig(model="vqvae", steps=60, sample_every=60, checkpoint_every=60, overrides=VQ,
                             out=root / "vqvae", **TINY))


@pytest.fixture(scope="module")
def prior_run(vq_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("prior")
    torch.set_num_threads(1)
    return train(TrainConfig(model="vqvae-prior", steps=60, sample_every=30, checkpoint_every=60, log_every=5,
                             overrides={**PRIOR, "from_run": str(vq_run)}, out=root / "prior", **TINY))


def test_the_prior_learns_the_codes_and_samples_valid_ones(prior_run):
    rows = [json.loads(line) for line in (prior_run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["loss"] < 0.8 * rows[0]["loss"], (rows[0]["loss"], rows[-1]["loss"])
    model = load_trained(str(prior_run))
    with torch.no_grad():
        codes = model.sample_codes(6, torch.Generator().manual_seed(0))
        images = model.sample(6, generator=torch.Generator().manual_seed(0))
        again = model.sample(6, generator=torch.Generator().manual_seed(0))
    assert codes.shape == (6, 4, 4) and codes.dtype == torch.long
    assert codes.min() >= 0 and codes.max() < 16
    assert images.shape == (6, 3, 16, 16) and images.min() >= -1 and images.max() <= 1
    assert torch.equal(images, again)  # same generator, same samples
    assert len(sorted((prior_run / "samples").glob("*.png"))) == 2


def test_the_frozen_vqvae_is_the_trained_one_and_stays_frozen(vq_run, prior_run):
    vq = load_trained(str(vq_run)).nets["vqvae"].state_dict()
    inside = load_trained(str(prior_run)).nets["vqvae"].state_dict()
    assert vq.keys() == inside.keys()
    for key in vq:
        assert torch.equal(vq[key], inside[key]), key


def test_sample_from_the_cli(prior_run, cli, tmp_path):
    import imageio.v3 as iio

    out = tmp_path / "samples.png"
    r = cli("sample", prior_run, "-n", "4", "--out", out, "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    assert iio.imread(out).shape[-1] == 3


def test_a_trained_prior_loads_without_its_vqvae_run(vq_run, prior_run, tmp_path):
    info = json.loads((prior_run / "run.json").read_text())
    assert info["hyperparameters"]["vqvae_settings"], "the prior records its VQ-VAE's settings in run.json"
    moved = shutil.copytree(prior_run, tmp_path / "prior-copy")
    hidden = vq_run.with_name("vqvae-hidden")
    vq_run.rename(hidden)
    try:
        model = load_trained(str(moved))
        with torch.no_grad():
            assert model.sample(2, generator=torch.Generator().manual_seed(1)).shape == (2, 3, 16, 16)
    finally:
        hidden.rename(vq_run)


def test_the_prior_resumes_exactly(vq_run, tmp_path):
    base = dict(model="vqvae-prior", sample_every=100, log_every=1, overrides={**PRIOR, "from_run": str(vq_run)}, **TINY)
    straight = train(TrainConfig(steps=8, checkpoint_every=4, out=tmp_path / "straight", **base))
    first = train(TrainConfig(steps=4, checkpoint_every=4, out=tmp_path / "split", **base))
    resumed = train(TrainConfig(model="", resume=first, steps=8, quiet=True))
    losses = [[json.loads(line)["loss"] for line in (r / "metrics.jsonl").read_text().splitlines()]
              for r in (straight, resumed)]
    assert losses[0] == losses[1] and len(losses[0]) == 8


def test_bad_sources_are_refused(vq_run, tmp_path, cli):
    r = cli("train", "vqvae-prior", "--out", tmp_path / "none")
    assert r.exit_code == 2 and "vqvae-prior needs a trained vqvae" in r.stderr
    r = cli("train", "vqvae-prior", "--from", tmp_path / "missing", "--image-size", "16", "--out", tmp_path / "m")
    assert r.exit_code == 2 and "does not exist" in r.stderr
    # the VQ-VAE was trained at 16 px (the prior takes that size by default, but not against an explicit one)
    r = cli("train", "vqvae-prior", "--from", vq_run, "--image-size", "32", "--out", tmp_path / "size")
    assert r.exit_code == 2 and "--image-size 16 --channels 3" in r.stderr
    vae = train(TrainConfig(model="vae", steps=2, overrides={"widths": "8,16"}, out=tmp_path / "vae", **TINY))
    with pytest.raises(UserError, match="needs a vqvae run, this is a 'vae' run"):
        train(TrainConfig(model="vqvae-prior", steps=2, overrides={"from_run": str(vae)}, out=tmp_path / "p", **TINY))
