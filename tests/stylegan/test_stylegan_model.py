"""The StyleGAN model: truncation, style mixing, noise modes, interpolation codes, training, bad inputs."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
from stylegan_helpers import set_noise_strength, shapes_data, tiny_model, tiny_values

from gencli.data.base import BatchStream, to_float
from gencli.errors import UserError
from gencli.models import hparams
from gencli_stylegan import stylegan
from gencli_stylegan.stylegan import StyleGAN, SynthesisBlock


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def train(model, steps: int, size: int = 16, batch_size: int = 8, count: int = 512):
    """Run ``steps`` train steps on the shapes; return the last losses."""
    stream = BatchStream(shapes_data(size, count), batch_size=batch_size)
    model.train()
    losses, epoch = {}, 0
    while model.step < steps:
        for batch in stream.epoch(epoch):
            losses = model.train_step(batch)
            model.step += 1
            if model.step >= steps:
                break
        epoch += 1
    model.eval()
    return losses


# ---------------------------------------------------------------- truncation
def test_truncation_zero_gives_the_average_w_image_for_every_z():
    model = tiny_model()
    set_noise_strength(model, 0.5)
    G = model.nets["G_ema"]
    G.mapping.w_avg.copy_(torch.randn_like(G.mapping.w_avg))
    images = model.sample(4, generator=seeded(1), truncation=0.0, noise="const")
    for image in images[1:]:
        assert torch.allclose(image, images[0])
    average = model.generate(G.mapping.w_avg[None], space="w", noise="const")
    assert torch.allclose(images[0], average[0], atol=1e-5)
    untruncated = model.sample(4, generator=seeded(1), truncation=1.0, noise="const")
    assert (untruncated[0] - untruncated[1]).abs().max() > 1e-3


def test_truncation_moves_w_linearly_toward_the_average():
    model = tiny_model()
    w_avg = model.nets["G_ema"].mapping.w_avg
    w_avg.copy_(torch.randn_like(w_avg))
    w = model.latents(3, seeded(2))
    half = model.latents(3, seeded(2), truncation=0.5)
    assert torch.allclose(half, w_avg + 0.5 * (w - w_avg), atol=1e-5)


# ---------------------------------------------------------------- style mixing
def test_style_mixing_grid_takes_coarse_styles_from_rows_and_fine_styles_from_columns():
    model = tiny_model(32)
    set_noise_strength(model, 0.5)
    coarse_features = []
    block8 = next(m for m in model.nets["G_ema"].modules() if isinstance(m, SynthesisBlock) and m.resolution == 8)
    hook = block8.register_forward_hook(lambda mod, inp, out: coarse_features.append(out[0]))
    images, nrow = model.figure("style-mix", 9, seeded(3))
    hook.remove()

    k = 3
    assert nrow == k + 1 and images.shape == ((k + 1) ** 2, 3, 32, 32)
    assert torch.equal(images[0], torch.ones(3, 32, 32))  # the blank corner
    grid = images.reshape(k + 1, k + 1, 3, 32, 32)
    rows, cols, cells = grid[1:, 0], grid[0, 1:], grid[1:, 1:]
    assert images.min() >= -1 and images.max() <= 1

    # The 8x8 features (coarse styles only) of a cell are its row source's, whatever the column.
    features = coarse_features[0]  # batch order: row sources, column sources, cells row-major
    row_f, cell_f = features[:k], features[2 * k :].reshape(k, k, *features.shape[1:])
    for i in range(k):
        for j in range(k):
            assert torch.allclose(cell_f[i, j], row_f[i], atol=1e-5)
    assert (row_f[0] - row_f[1]).abs().max() > 1e-3

    # The images still change along a row (fine styles of the column) and down a column.
    for i in range(k):
        for j in range(k):
            if j + 1 < k:
                assert (cells[i, j] - cells[i, j + 1]).abs().max() > 1e-3
            if i + 1 < k:
                assert (cells[i, j] - cells[i + 1, j]).abs().max() > 1e-3
    assert (cells[0, 0] - rows[0]).abs().max() > 1e-3 and (cells[0, 0] - cols[0]).abs().max() > 1e-3


def test_style_mixing_sources_are_plain_samples_of_the_seeds():
    model = tiny_model(16)
    set_noise_strength(model, 0.5)
    images, nrow = model.figure("style-mix", 4, seeded(6))
    k = nrow - 1
    grid = images.reshape(k + 1, k + 1, *images.shape[1:])
    # Row sources are the generator's first k zs, column sources the next k.
    sources = model.sample(2 * k, generator=seeded(6), noise="const")
    assert torch.allclose(grid[1:, 0], sources[:k], atol=1e-5)
    assert torch.allclose(grid[0, 1:], sources[k:], atol=1e-5)


# ---------------------------------------------------------------- noise, latents, preview
def test_noise_can_be_frozen_or_resampled():
    model = tiny_model()
    w = model.latents(1, seeded(4)).repeat(2, 1)
    frozen = model.generate(w, space="w", noise="const")
    assert torch.equal(frozen[0], frozen[1])
    fresh = model.generate(w, space="w", noise="random")
    assert torch.allclose(fresh[0], fresh[1])  # noise strengths start at zero: no effect yet
    set_noise_strength(model, 0.5)
    fresh = model.generate(w, space="w", noise="random")
    assert (fresh[0] - fresh[1]).abs().max() > 1e-3
    frozen = model.generate(w, space="w", noise="const")
    assert torch.equal(frozen[0], frozen[1])
    again = model.sample(2, generator=seeded(7), noise="random")
    assert torch.equal(again, model.sample(2, generator=seeded(7), noise="random"))  # the generator decides


def test_generate_takes_what_latents_returns_in_w_and_in_z():
    model = tiny_model()
    set_noise_strength(model, 0.5)
    w = model.latents(3, seeded(8))
    z = model.latents(3, seeded(8), space="z")
    assert w.shape == (3, model.hp.w_dim) and z.shape == (3, model.hp.z_dim)
    from_w = model.generate(w, space="w")
    from_z = model.generate(z, space="z")
    sampled = model.sample(3, generator=seeded(8), noise="const")
    assert torch.allclose(from_w, sampled, atol=1e-5) and torch.allclose(from_z, sampled, atol=1e-5)
    truncated = model.generate(model.latents(3, seeded(8), truncation=0.6), space="w")
    assert torch.allclose(truncated, model.sample(3, generator=seeded(8), truncation=0.6, noise="const"), atol=1e-5)


def test_preview_uses_fixed_z_with_frozen_noise():
    model = tiny_model()
    inputs = model.preview_inputs(shapes_data(16, 64), 9, seed=0)
    images, nrow = model.preview(inputs)
    assert images.shape == (9, 3, 16, 16) and nrow == 3
    assert torch.equal(images, model.preview(model.preview_inputs(shapes_data(16, 64), 9, seed=0))[0])


# ---------------------------------------------------------------- training
def frechet_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """Return the Frechet distance of Gaussians fitted to 4x4-pooled pixels of two image sets."""
    a = F.adaptive_avg_pool2d(x, 4).flatten(1).double()
    b = F.adaptive_avg_pool2d(y, 4).flatten(1).double()
    ca, cb = torch.cov(a.T), torch.cov(b.T)
    root = torch.linalg.eigvals(ca @ cb).real.clamp(min=0).sqrt().sum()
    return float((a.mean(0) - b.mean(0)).square().sum() + ca.trace() + cb.trace() - 2 * root)


def test_short_training_moves_samples_toward_the_data():
    model = tiny_model(16, seed=1)
    real = to_float(shapes_data(16, 512).images)
    before = frechet_distance(model.sample(256, generator=seeded(0)), real)
    losses = train(model, 60)
    after = frechet_distance(model.sample(256, generator=seeded(0)), real)
    assert set(losses) == {"d_loss", "g_loss", "r1", "pl", "d_real", "d_fake"}
    assert all(torch.isfinite(v) for v in losses.values())
    assert after < 0.5 * before


def test_w_average_and_ema_generator_follow_training():
    model = tiny_model(16, ema_kimg=0.0)  # no averaging: G_ema must equal G after each step
    train(model, 2)
    G, G_ema = model.nets["G"], model.nets["G_ema"]
    assert G.mapping.w_avg.abs().sum() > 0  # tracked from zero
    for a, b in zip(G.state_dict().values(), G_ema.state_dict().values()):
        assert torch.equal(a, b)
    assert model.images_seen == 16

    model = tiny_model(16)  # default: a half-life of 5% of the images seen
    train(model, 3)
    G, G_ema = model.nets["G"], model.nets["G_ema"]
    assert torch.equal(G.mapping.w_avg, G_ema.mapping.w_avg)  # buffers are copied
    assert any(not torch.equal(a, b) for a, b in zip(G.parameters(), G_ema.parameters()))


def test_regularisers_run_lazily_at_their_intervals(monkeypatch):
    calls = {"r1": [], "pl": []}
    model = tiny_model(16, d_reg_every=2, g_reg_every=3)
    r1, pl = stylegan.r1_penalty, stylegan.path_lengths
    monkeypatch.setattr(stylegan, "r1_penalty", lambda *a: calls["r1"].append(model.step) or r1(*a))
    monkeypatch.setattr(stylegan, "path_lengths", lambda *a: calls["pl"].append(model.step) or pl(*a))
    train(model, 7)
    assert calls == {"r1": [0, 2, 4, 6], "pl": [0, 3, 6]}
    assert model.extra_state()["pl_mean"] > 0


def test_regularisers_can_be_turned_off(monkeypatch):
    model = tiny_model(16, r1_gamma=0.0, pl_weight=0.0)
    monkeypatch.setattr(stylegan, "r1_penalty", lambda *a: pytest.fail("R1 ran"))
    monkeypatch.setattr(stylegan, "path_lengths", lambda *a: pytest.fail("path length ran"))
    train(model, 2)


def test_default_r1_weight_follows_the_stylegan2_ada_heuristic():
    model = tiny_model(32)
    assert model._r1_gamma(16) == pytest.approx(0.0002 * 32**2 / 16)
    assert tiny_model(32, r1_gamma=10.0)._r1_gamma(16) == 10.0


def test_extra_state_round_trips():
    model = tiny_model(16)
    train(model, 2)
    state = model.extra_state()
    other = tiny_model(16, seed=5)
    other.load_extra_state(state)
    for key, value in state.items():
        got = other.extra_state()[key]
        assert torch.equal(got, value) if torch.is_tensor(value) else got == value


def test_bf16_autocast_train_step_is_finite():
    model = tiny_model(16)
    model.precision = "bf16"
    losses = train(model, 1)
    assert all(torch.isfinite(v) for v in losses.values())


# ---------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("size", [4, 12, 48, 512])
def test_unsupported_image_sizes_are_refused_by_name(size):
    with pytest.raises(UserError, match=rf"stylegan works at image sizes 8, 16, 32, 64, 128, 256 .*not {size}"):
        StyleGAN.check_shape(size, 3)


def test_unsupported_channel_counts_are_refused():
    with pytest.raises(UserError, match="1 or 3 channels, not 2"):
        StyleGAN.check_shape(32, 2)


@pytest.mark.parametrize("key, value, message", [
    ("lr", "0", "lr must be > 0"),
    ("style_mixing_prob", "1.5", "style_mixing_prob must be in"),
    ("d_reg_every", "0", "d_reg_every and g_reg_every must be >= 1"),
    ("r1_gamma", "-1", "r1_gamma must be >= 0"),
    ("mapping_layers", "0", "mapping_layers must be >= 1"),
    ("channels_base", "0", "channels_base must be >= 1"),
    ("beta2", "1", "beta1 and beta2 must be in"),
    ("ema_rampup", "0", "ema_rampup must be > 0 or none"),
    ("truncation", "0.7", "unknown hyperparameter 'truncation'"),
])
def test_meaningless_hyperparameters_are_refused_by_name(key, value, message):
    with pytest.raises(UserError, match=message):
        hparams.build(StyleGAN.Hyperparameters, {key: value})


def test_hyperparameter_defaults_parse_from_strings():
    hp = hparams.build(StyleGAN.Hyperparameters, {"r1_gamma": "none", "channels_base": "none", "ema_rampup": "none"})
    assert hp.r1_gamma is None and hp.channels_base is None and hp.ema_rampup is None


@pytest.mark.parametrize("options, value, message", [
    (StyleGAN.SampleOptions, "strong", "expected float"),
    (StyleGAN.SampleOptions, "nan", "expected a finite number"),
    (StyleGAN.SampleOptions, "-1", "truncation must be between 0"),
    (StyleGAN.InterpolateOptions, "1.5", "truncation must be between 0"),
    (StyleGAN.figures["style-mix"].Options, "-0.1", "truncation must be between 0"),
])
def test_truncation_is_checked_once_by_the_options(options, value, message):
    with pytest.raises(UserError, match=re.escape(message)):
        hparams.build(options, {"truncation": value}, what="option")


def test_too_few_base_channels_for_the_size_are_refused():
    with pytest.raises(UserError, match="channels_base 32 leaves no channels at 64 px"):
        tiny_model(64, channels_base=32)


@pytest.mark.parametrize("call, message", [
    (lambda m: m.sample(2, noise="frozen"), "noise must be random or const, got 'frozen'"),
    (lambda m: m.latents(2, space="s"), "space must be w or z, got 's'"),
    (lambda m: m.generate(torch.zeros(1, 32), space="x"), "space must be w or z"),
    (lambda m: m.figure("forward-noise", 4), "stylegan draws the figures: style-mix; not 'forward-noise'"),
])
def test_bad_sampling_options_are_user_errors(call, message):
    with pytest.raises(UserError, match=message):
        call(tiny_model(16))


@pytest.mark.parametrize("size", [16, 64])
def test_default_widths_follow_the_image_size(size):
    hp = hparams.build(StyleGAN.Hyperparameters, tiny_values(channels_max=512))
    torch.manual_seed(0)
    model = StyleGAN(hp, (3, size, size))
    widths = [b.torgb.conv.weight.shape[1] for b in model.nets["G"].modules() if isinstance(b, SynthesisBlock)]
    # 16 channels at the output resolution, doubling per coarser block.
    assert widths[-1] == 16
    assert widths == [16 * size // r for r in [2**k for k in range(2, len(widths) + 2)]]
