"""VQ-VAE: quantisation, straight-through gradients, EMA and dead-code restarts, training, resume."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gencli.data.base import BatchStream, DataRequest
from gencli.data.synthetic import build_shapes
from gencli.errors import UserError
from gencli.models import hparams
from gencli.models.base import has_capability
from gencli.runs import checkpoints as ckpt
from gencli.training.engine import TrainConfig, train
from gencli_vae.vqvae import VQVAE, VectorQuantizer, code_statistics

SMALL = {"hidden": 16, "res_hidden": 8, "res_blocks": 1, "codebook_size": 32, "code_dim": 8}


def _model(size=16, channels=3, **values):
    hp = hparams.build(VQVAE.Hyperparameters, {**SMALL, **values})
    return VQVAE(hp, (channels, size, size))


def test_quantiser_picks_the_nearest_code():
    torch.manual_seed(0)
    q = VectorQuantizer(10, 4, ema=False)
    z = torch.randn(2, 4, 3, 3)
    z_q, idx = q(z)
    flat = z.permute(0, 2, 3, 1).reshape(-1, 4)
    brute = torch.cdist(flat, q.codebook.detach()).argmin(1)
    assert torch.equal(idx.flatten(), brute)
    assert torch.equal(z_q, q.codebook.detach()[idx].permute(0, 3, 1, 2))


@pytest.mark.parametrize("size, channels, downsamples", [(16, 3, 2), (28, 1, 2), (32, 3, 3), (64, 3, 2)])
def test_reconstructions_have_the_input_shape(size, channels, downsamples):
    model = _model(size, channels, downsamples=downsamples)
    x = torch.rand(2, channels, size, size) * 2 - 1
    with torch.no_grad():
        z = model.encode(x)
        y = model.reconstruct(x)
        codes = model.codes(x)
    grid = size // 2**downsamples
    assert z.shape == (2, 8, grid, grid) and codes.shape == (2, grid, grid)
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1
    assert torch.equal(model.decode(codes), y)  # indices and quantised vectors decode alike


def test_sizes_the_encoder_cannot_halve_are_refused():
    with pytest.raises(UserError, match="divisible by 4"):
        _model(18)
    with pytest.raises(UserError, match="divisible by 8"):
        _model(28, downsamples=3)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"codebook_size": "1"}, "codebook_size must be >= 2"),
        ({"ema_decay": "1"}, "ema_decay must be between 0 and 1"),
        ({"beta": "-0.1"}, "beta .*commitment.* must be >= 0"),
        ({"restart_after": "-1"}, "restart_after must be >= 0"),
    ],
)
def test_meaningless_settings_are_refused(values, message):
    with pytest.raises(UserError, match=message):
        hparams.build(VQVAE.Hyperparameters, values)


def _batches(size=16, n=256, batch=16):
    data = build_shapes(DataRequest(size, 3, options={"size": n}))
    return list(BatchStream(data, batch).epoch(0))


def test_the_encoder_learns_through_the_quantiser():
    # With EMA codebook updates and no commitment term, the reconstruction loss is the encoder's
    # only gradient: it must pass the non-differentiable nearest-code step (straight-through).
    torch.manual_seed(0)
    model = _model(ema="true", beta="0")
    before = [p.detach().clone() for p in model.nets["vqvae"].encoder.parameters()]
    model.train_step(_batches()[0])
    after = list(model.nets["vqvae"].encoder.parameters())
    assert all(not torch.equal(a, b) for a, b in zip(after, before))


def test_ema_codebook_is_not_trained_by_gradient_and_moves_to_its_vectors():
    model = _model(ema="true")
    codebook = model.nets["vqvae"].quantizer.codebook
    assert all(codebook is not p for group in model.optimizers["vqvae"].param_groups for p in group["params"])
    q = VectorQuantizer(2, 3, ema=True)
    flat = torch.tensor([[1.0, 1.0, 1.0], [3.0, 3.0, 3.0]])
    onehot = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # both vectors chose code 0
    for _ in range(50):
        q.ema_update(onehot.sum(0), onehot.t() @ flat, decay=0.8)
    assert torch.allclose(q.codebook[0], torch.full((3,), 2.0), atol=1e-2)  # their mean


def test_codes_unused_too_long_restart_at_encoder_outputs():
    q = VectorQuantizer(4, 2, ema=False)
    flat = torch.tensor([[5.0, 5.0], [6.0, 6.0], [7.0, 7.0]])
    used = torch.tensor([3.0, 0.0, 0.0, 0.0])
    q.restart_dead_codes(flat, used, after=3)  # a fresh codebook: every unused code starts from data
    assert all(any(torch.equal(row, f) for f in flat) for row in q.codebook[1:])
    kept = q.codebook.detach().clone()
    for step in range(3):
        q.restart_dead_codes(flat, torch.tensor([3.0, 2.0, 1.0, 0.0]), after=3)
        if step < 2:
            assert torch.equal(q.codebook, kept)  # not idle long enough yet
    assert torch.equal(q.codebook[:3], kept[:3])
    assert q.idle_steps[3] == 0 and any(torch.equal(q.codebook[3], f) for f in flat)


def test_perplexity_counts_codes_in_use():
    p, usage = code_statistics(torch.tensor([5.0, 0.0, 0.0, 0.0]))
    assert p == pytest.approx(1.0) and usage == pytest.approx(0.25)
    p, usage = code_statistics(torch.tensor([2.0, 2.0, 2.0, 2.0]))
    assert p == pytest.approx(4.0) and usage == pytest.approx(1.0)


@pytest.mark.parametrize("ema", ["false", "true"])
def test_a_short_run_lowers_the_reconstruction_error_and_uses_many_codes(ema):
    torch.manual_seed(0)
    model = _model(ema=ema, lr="5e-3", restart_after="5")
    batches = _batches(n=960)
    logs = [model.train_step(b) for b in batches]
    first = torch.stack([o["recon"] for o in logs[:5]]).mean()
    last = torch.stack([o["recon"] for o in logs[-5:]]).mean()
    assert last < 0.5 * first, (first, last)
    assert min(float(o["perplexity"]) for o in logs[-5:]) > 4.0
    assert {"loss", "recon", "codebook", "commit", "perplexity", "usage"} <= set(logs[-1])


def test_sampling_without_a_prior_says_what_to_do(tmp_path, cli):
    run = train(TrainConfig(model="vqvae", data="shapes", steps=4, image_size=16, batch_size=8, overrides=SMALL,
                            out=tmp_path / "vq", quiet=True))
    assert not has_capability(VQVAE, "sample")  # the core, not the model, refuses
    r = cli("sample", run, "-n", "2", "--device", "cpu")
    assert r.exit_code == 2 and "cannot sample" in r.stderr and "Traceback" not in r.stderr
    assert "gencli train vqvae-prior --from RUN" in r.stderr
    r = cli("eval", run, "--metrics", "mse", "--device", "cpu", "--json")  # reconstruction still evaluates
    assert r.exit_code == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["eval"]["mse"] > 0
    assert str(run / "eval" / "codebook.png") in result["figures"] and (run / "eval" / "codebook.png").is_file()


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(ckpt.latest_checkpoint(run) / "weights.safetensors"))


@pytest.mark.parametrize("ema", ["false", "true"])
def test_a_resumed_run_matches_an_uninterrupted_one(tmp_path, ema):
    base = dict(model="vqvae", data="shapes", image_size=16, batch_size=8, quiet=True, log_every=1, sample_every=100,
                overrides={**SMALL, "ema": ema, "restart_after": "3"})
    straight = train(TrainConfig(steps=12, checkpoint_every=6, out=tmp_path / "straight", **base))
    first = train(TrainConfig(steps=6, checkpoint_every=6, out=tmp_path / "split", **base))
    resumed = train(TrainConfig(model="", resume=first, steps=12, quiet=True))
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys() and any("idle_steps" in k for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    rows = [[json.loads(line) for line in (r / "metrics.jsonl").read_text().splitlines()] for r in (straight, resumed)]
    assert [r["perplexity"] for r in rows[0]] == [r["perplexity"] for r in rows[1]]
