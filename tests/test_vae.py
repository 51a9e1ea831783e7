"""VAE and CVAE: shapes at every size, conditional sampling that honours the label, latent grids."""

import pytest
import torch
from torch import nn

import gencli
from gencli.data.base import BatchStream, DataRequest, to_float
from gencli.data.resolve import load_dataset
from gencli.errors import UserError
from gencli.training.engine import TrainConfig, train
from gencli_vae.vae import VAE, VAEHyperparameters


@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_vae_reconstructs_at_every_size(size, channels):
    model = VAE(VAEHyperparameters(widths=(8, 16)), (channels, size, size))
    x = torch.rand(2, channels, size, size) * 2 - 1
    with torch.no_grad():
        y = model.reconstruct(x)
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1


def test_too_small_images_are_refused():
    with pytest.raises(UserError, match="at least 8 px"):
        VAE(VAEHyperparameters(), (3, 4, 4))


def test_the_gaussian_reconstruction_is_the_normal_likelihood_at_the_batch_s_best_sigma():
    from gencli_vae.vae import reconstruction_loss

    torch.manual_seed(0)
    x, logits = torch.rand(4, 1, 8, 8) * 2 - 1, torch.randn(4, 1, 8, 8)
    mean, target = torch.sigmoid(logits), (x + 1) / 2
    sigma = (mean - target).pow(2).mean().sqrt()

    def nll(s: torch.Tensor) -> torch.Tensor:  # per image, summed over pixels
        return -torch.distributions.Normal(mean, s).log_prob(target).flatten(1).sum(1).mean()

    loss = reconstruction_loss(logits, x, "gaussian")
    assert loss.item() == pytest.approx(nll(sigma).item(), rel=1e-5)
    assert loss < nll(sigma * 1.1) and loss < nll(sigma * 0.9)  # no other sigma fits the batch better
    # perfect reconstructions: sigma stops at e^-6 rather than the loss running to minus infinity
    assert torch.isfinite(reconstruction_loss(torch.full((1, 1, 4, 4), 30.0), torch.ones(1, 1, 4, 4), "gaussian"))


def test_a_vae_with_the_gaussian_reconstruction_learns(tmp_path):
    run = train(TrainConfig(model="vae", data="shapes", image_size=16, channels=1, batch_size=32, steps=60,
                            overrides={"widths": "8,16", "latent_dim": "4", "recon": "gaussian"}, out=tmp_path / "run",
                            sample_every=60, checkpoint_every=60, device="cpu", quiet=True))
    import json

    recon = [json.loads(line)["recon"] for line in (run / "metrics.jsonl").read_text().splitlines()
             if '"recon"' in line]
    assert len(recon) >= 4 and sum(recon[-3:]) / 3 < sum(recon[:3]) / 3 - 30  # nats per 16x16 image


def _classifier(data, steps=300):
    """A tiny shape classifier trained on the real data, to judge generated images."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1),
                        nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 6))
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    stream = BatchStream(data, 64, seed=1)
    step = 0
    while step < steps:
        for batch in stream.epoch(step):
            loss = nn.functional.cross_entropy(net(batch.images), batch.labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step >= steps:
                break
    return net.eval()


def _centred_shapes_folder(root, per_class=120, size=16):
    """Write centred shapes as PNGs into one sub-folder per class (a labelled folder dataset)."""
    import imageio.v3 as iio

    from gencli.data.synthetic import CLASSES, _colours, _compose, shape_masks

    g = torch.Generator().manual_seed(0)
    n = per_class * len(CLASSES)
    labels = torch.arange(n) % len(CLASSES)
    r, c = 0.3 + 0.1 * torch.rand(n, generator=g), torch.full((n,), 0.5)
    images = _compose(shape_masks(labels, c, c, r, size), _colours(n, g, 0.6, 1.0), _colours(n, g, 0.0, 0.3))
    for i, (img, k) in enumerate(zip(images, labels)):
        folder = root / f"{int(k)}-{CLASSES[k]}"
        folder.mkdir(parents=True, exist_ok=True)
        iio.imwrite(folder / f"{i:04d}.png", img.permute(1, 2, 0).numpy())
    return root


def test_cvae_samples_the_class_it_is_asked_for(tmp_path):
    folder = _centred_shapes_folder(tmp_path / "centred")
    run = gencli.train("cvae", str(folder), steps=200, image_size=16, channels=1, batch_size=32, lr=2e-3,
                       set={"widths": "16,32", "latent_dim": 4}, out=tmp_path / "cvae", sample_every=200,
                       checkpoint_every=200)
    model = run.load_model()
    assert model.classes == ["0-circle", "1-square", "2-triangle", "3-diamond", "4-ring", "5-cross"]
    real = load_dataset(str(folder), DataRequest(16, 1))
    held_out = load_dataset(str(folder), DataRequest(16, 1, "test"))
    judge = _classifier(real)
    with torch.no_grad():
        real_acc = (judge(to_float(held_out.images)).argmax(1) == held_out.labels).float().mean()
        assert real_acc > 0.9, "the judge itself must work"
        hits = []
        for k in range(6):
            images = gencli.sample(run, 60, labels=k, seed=k)
            hits.append((judge(images).argmax(1) == k).float().mean().item())
    # chance is 1/6: every class must come out far more often than that when asked for
    assert min(hits) > 0.5, hits


def test_latent_grid_for_a_2d_cvae_at_a_label(tmp_path, cli):
    import imageio.v3 as iio

    run = train(TrainConfig(model="cvae", data="shapes", steps=5, image_size=16, batch_size=16,
                            overrides={"widths": "8,16", "latent_dim": "2"}, out=tmp_path / "r", quiet=True))
    out = tmp_path / "grid.png"
    r = cli("interpolate", run, "--latent-grid", "4", "--label", "ring", "--out", out)
    assert r.exit_code == 0, r.stderr
    picture = iio.imread(out)  # the 4x4 decodings on axes in latent units, with their ticks and title
    assert picture.shape[0] > 4 * 16 * 4 and picture.shape[1] > 4 * 16 * 4
    r = cli("interpolate", run, "--latent-grid", "4")
    assert r.exit_code == 2 and "give --label" in r.stderr
    for bad, message in (("9", "label 9 is out of range"), ("hexagon", "unknown class 'hexagon'")):
        r = cli("sample", run, "--label", bad)
        assert r.exit_code == 2 and message in r.stderr, r.stderr
    r = cli("sample", run, "--label", "circle", "--n", "4", "--out", tmp_path / "c.png")
    assert r.exit_code == 0, r.stderr


# --------------------------------------------------------------------------- prior=fitted
def test_the_fitted_prior_recovers_each_class_s_gaussian():
    from gencli_vae.vae import FittedPrior

    torch.manual_seed(0)
    means = torch.tensor([[2.0, -1.0], [-3.0, 0.5], [0.0, 0.0]])
    roots = torch.tensor([[[1.0, 0.0], [0.8, 0.3]], [[0.2, 0.0], [0.0, 2.0]], [[1.0, 0.0], [0.0, 1.0]]])
    prior = FittedPrior(2, classes=3, rate=1e-3)
    first = None
    for step in range(400):
        labels = torch.randint(0, 2, (64,))  # class 2 never appears
        codes = means[labels] + torch.einsum("nij,nj->ni", roots[labels], torch.randn(64, 2))
        prior.update(codes, labels)
        if step == 0:  # bias-corrected: after one batch the estimate is that batch's own mean
            first = prior.affine()[0][:2].clone(), torch.stack([codes[labels == k].mean(0) for k in range(2)])
    torch.testing.assert_close(first[0], first[1], rtol=1e-5, atol=1e-5)
    mean, scale = prior.affine()
    for k in range(2):
        torch.testing.assert_close(mean[k], means[k], atol=0.15, rtol=0)
        torch.testing.assert_close(scale[k] @ scale[k].T, roots[k] @ roots[k].T, atol=0.25, rtol=0)
    # a class never seen keeps N(0, I); codes of a class come out with that class's statistics
    torch.testing.assert_close(mean[2], torch.zeros(2)) and torch.testing.assert_close(scale[2], torch.eye(2))
    drawn = prior.transform(torch.randn(4000, 2), torch.full((4000,), 1))
    torch.testing.assert_close(drawn.mean(0), means[1], atol=0.15, rtol=0)
    torch.testing.assert_close(drawn.std(0), torch.tensor([0.2, 2.0]), atol=0.1, rtol=0)


def test_a_cvae_with_the_fitted_prior_keeps_it_in_its_checkpoint_resumes_exactly_and_exports_it(tmp_path, cli):
    import importlib.util
    import json

    from safetensors.torch import load_file

    from gencli import testing
    from gencli.runs.checkpoints import latest_checkpoint

    settings = testing.Settings(image_size=16, channels=1, steps=6, resume_at=3, batch_size=8,
                                overrides={"prior": "fitted"}, workdir=tmp_path / "kit")
    run_dir = testing.check_training("cvae", settings)
    testing.check_checkpoint(run_dir, settings)
    testing.check_capabilities(run_dir, settings)
    testing.check_resume("cvae", run_dir, settings)
    weights = load_file(str(latest_checkpoint(run_dir) / "weights.safetensors"))
    kept = [key for key in weights if "prior" in key]
    assert kept and any(weights[key].abs().sum() > 0 for key in kept), kept

    model = gencli.load_run(run_dir)
    z, labels = torch.randn(5, model.hp.latent_dim), torch.tensor([0, 1, 2, 0, 1])
    with torch.no_grad():
        through_prior = model.generate(z, labels)
        exported, _ = model.export_module()
        assert torch.equal(exported(z, labels), through_prior)  # export carries the fitted prior
        assert not torch.equal(model.decode(z, labels), through_prior)
    formats = ["torchscript"] + (["onnx"] if importlib.util.find_spec("onnxruntime") else [])
    for fmt in formats:  # each file is checked against the model by gencli export itself
        out = tmp_path / f"cvae.{fmt}"
        result = cli("-q", "export", run_dir, "--format", fmt, "--out", out)
        assert result.exit_code == 0, result.output
        contract = json.loads(out.with_name(out.name + ".json").read_text())
        assert contract["checked_max_abs_diff"] < 1e-4
        assert any("fitted prior" in note for note in contract["notes"]), contract["notes"]


def test_an_unknown_prior_is_one_line_and_exit_2_with_nothing_written(tmp_path, cli):
    r = cli("train", "cvae", "--set", "prior=gmm", "--steps", "1", "--out", tmp_path / "run")
    assert r.exit_code == 2
    assert "bad value 'gmm' for 'prior': expected one of 'standard', 'fitted'" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "run").exists()
