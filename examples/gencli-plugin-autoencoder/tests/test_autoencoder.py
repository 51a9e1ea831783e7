"""Tests of the ae model: gencli's conformance kit first, then what is particular to this model."""

import re

import pytest
import torch

from gencli.errors import UserError
from gencli.models import hparams
from gencli.testing import check_model, check_plugin
from gencli_autoencoder.model import Autoencoder, AutoencoderHyperparameters, CodeGaussian, batch_statistics


def test_the_plugin_module_is_light_and_speaks_this_gencli():
    check_plugin("gencli_autoencoder.plugin")


def test_ae_honours_the_gencli_model_contract(tmp_path):
    report = check_model("ae", workdir=tmp_path)
    assert {"sample", "encode", "decode", "reconstruct", "interpolate"} <= set(report.capabilities)
    assert (28, 3) in report.built, "odd feature-map sizes (28 -> 14 -> 7) must decode back to 28"


def test_reconstruction_error_falls_on_shapes():
    from gencli.data.base import BatchStream, DataRequest
    from gencli.data.synthetic import build_shapes

    torch.manual_seed(0)
    data = build_shapes(DataRequest(16, 3, options={"size": 256}))
    model = Autoencoder(AutoencoderHyperparameters(widths=(16, 32), latent_dim=8), (3, 16, 16))
    batches = list(BatchStream(data, 32).epoch(0))
    errors = [float(model.train_step(batch)["recon"]) for _ in range(4) for batch in batches]
    first, last = sum(errors[:8]) / 8, sum(errors[-8:]) / 8
    assert last < 0.7 * first, (first, last)


def test_the_sampling_gaussian_follows_the_codes():
    torch.manual_seed(0)
    mix = torch.tensor([[2.0, 0.0], [1.0, 0.5]])
    codes = torch.randn(4096, 2) @ mix + torch.tensor([3.0, -1.0])
    prior = CodeGaussian(2)
    mean, cov = batch_statistics(codes)
    for _ in range(800):
        prior.update(mean, cov, decay=0.99)
    draws = prior.draw(20_000, torch.Generator().manual_seed(1))
    assert torch.allclose(draws.mean(0), codes.mean(0), atol=0.1)
    assert torch.allclose(torch.cov(draws.T), torch.cov(codes.T), atol=0.15)


@pytest.mark.parametrize("key, value, message", [
    ("prior_decay", "1", "prior_decay must be in [0, 1)"),
    ("latent_dim", "0", "latent_dim must be >= 1"),
    ("code_penalty", "-1", "code_penalty must be >= 0"),
    ("loss", "l2", "bad value 'l2' for 'loss'"),
    ("widths", "8,x", "bad value"),
])
def test_meaningless_hyperparameters_are_refused(key, value, message):
    with pytest.raises(UserError, match=re.escape(message)):
        hparams.build(AutoencoderHyperparameters, {key: value})


def test_images_smaller_than_8_px_are_refused():
    with pytest.raises(UserError, match="at least 8 px"):
        Autoencoder.check_shape(4, 3)


def test_temperature_pulls_samples_toward_the_average_code():
    torch.manual_seed(0)
    model = Autoencoder(AutoencoderHyperparameters(widths=(8, 16), latent_dim=4), (3, 16, 16)).eval()
    model.nets["prior"].update(torch.ones(4), torch.eye(4) * 4, 0.0)
    g = lambda: torch.Generator().manual_seed(1)  # noqa: E731 - the same draws for both temperatures
    mean_image = model.decode(model.nets["prior"].mean[None])
    hot, cold = (model.sample(64, generator=g(), temperature=t) for t in (1.0, 0.1))
    assert (cold - mean_image).abs().mean() < 0.5 * (hot - mean_image).abs().mean()
