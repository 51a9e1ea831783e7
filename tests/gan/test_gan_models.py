"""The GAN family's models: shapes, bad input, the WGAN clip, SS-GAN rotations, EMA, labels, learning."""

from __future__ import annotations

import math

import pytest
import torch
from gan_helpers import TINY, model_class, pixel_distance, samples, shapes, tiny_model, train_steps

from gencli.data.base import BatchStream, ImageData, to_float
from gencli.errors import UserError
from gencli.models import hparams
from gencli_gan.base import supported_sizes
from gencli_gan.dcgan import DCGANDiscriminator, DCGANGenerator
from gencli_gan.ssgan import ResNetGenerator, RotationDiscriminator, rotate_batch


@pytest.fixture(scope="module")
def data16():
    return shapes(16, 3, 512)


# ---------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("upsample", ["transpose", "nearest", "pixelshuffle"])
def test_dcgan_networks_work_at_28_32_and_64_px(size, channels, upsample):
    G = DCGANGenerator(8, channels, size, width=4, depth=1, upsample=upsample)
    D = DCGANDiscriminator(channels, size, width=4, depth=1)
    x = G(torch.randn(2, 8))
    assert x.shape == (2, channels, size, size)
    assert x.abs().max() <= 1
    assert D(x).shape == (2,)


def test_dcgan_starts_28_px_at_7x7_and_32_px_at_4x4():
    assert DCGANGenerator(8, 1, 28, width=4).body[0].kernel_size == (7, 7)
    assert DCGANGenerator(8, 1, 32, width=4).body[0].kernel_size == (4, 4)
    # Width halves towards the image: 32 px has three doublings, so 4 * 2^2 channels at 4x4.
    assert DCGANGenerator(8, 1, 32, width=4).body[0].out_channels == 16


@pytest.mark.parametrize("size", [16, 28, 32])
def test_ssgan_networks_shapes(size):
    G = ResNetGenerator(8, 3, size, width=8)
    D = RotationDiscriminator(3, size, width=8)
    x = G(torch.randn(2, 8))
    logits, rotation = D(x)
    assert x.shape == (2, 3, size, size) and logits.shape == (2,) and rotation.shape == (2, 4)


@pytest.mark.parametrize("name", ["dcgan", "wgan", "wgan-gp", "cgan", "ssgan"])
def test_unsupported_image_size_says_which_sizes_work(name):
    cls = model_class(name)
    with pytest.raises(UserError, match=f"{name} cannot produce 30 px images; it works at .*28, 32, .*64"):
        cls.check_shape(30, 3)
    with pytest.raises(UserError, match="1 or 3 channels"):
        cls.check_shape(32, 2)
    assert 28 in supported_sizes() and 56 in supported_sizes() and 48 not in supported_sizes()


def test_mlp_gan_size_limits():
    cls = model_class("gan")
    with pytest.raises(UserError, match="from 8 to 128 px, not 4"):
        cls.check_shape(4, 3)
    cls.check_shape(30, 1)  # nothing convolutional: any size in range


# ---------------------------------------------------------------------------------- bad settings
@pytest.mark.parametrize("name, key, value, message", [
    ("wgan", "clip", "0", "clip must be > 0"),
    ("wgan", "clip", "-0.01", "clip must be > 0"),
    ("wgan", "n_critic", "0", "n_critic must be at least 1"),
    ("wgan-gp", "n_critic", "0", "n_critic must be at least 1"),
    ("wgan-gp", "d_norm", "batch", "cannot use batch norm"),
    ("wgan-gp", "lambda_gp", "-1", "lambda_gp must be >= 0"),
    ("dcgan", "g_steps", "0", "g_steps must be at least 1"),
    ("dcgan", "label_smoothing", "1", r"label_smoothing must be in \[0, 1\)"),
    ("dcgan", "ema_decay", "1", r"ema_decay must be in \[0, 1\)"),
    ("dcgan", "instance_noise", "-0.1", "instance_noise must be >= 0"),
    ("dcgan", "augment", "color,blur", "unknown augmentation 'blur'"),
    ("dcgan", "loss", "wasserstein", "bad value 'wasserstein' for 'loss'"),
    ("dcgan", "upsample", "bilinear", "bad value 'bilinear' for 'upsample'"),
    ("dcgan", "beta1", "1", r"beta1 must be in \[0, 1\)"),
    ("gan", "g_depth", "0", "g_depth must be at least 1"),
    ("dcgan", "optimizer", "sgd", "bad value 'sgd' for 'optimizer'"),
    ("ssgan", "alpha", "-1", "alpha must be >= 0"),
    ("wgan", "label_smoothing", "0.1", "unknown hyperparameter 'label_smoothing'"),
])
def test_conflicting_settings_are_rejected_by_name(name, key, value, message):
    with pytest.raises(UserError, match=message):
        hparams.build(model_class(name).Hyperparameters, {key: value})


def test_defaults_cite_the_papers():
    wgan = hparams.build(model_class("wgan").Hyperparameters, {})
    assert (wgan.lr, wgan.clip, wgan.n_critic) == (5e-5, 0.01, 5)
    gp = hparams.build(model_class("wgan-gp").Hyperparameters, {})
    assert (gp.lr, gp.beta1, gp.beta2, gp.n_critic, gp.lambda_gp) == (1e-4, 0.0, 0.9, 5, 10.0)
    dc = hparams.build(model_class("dcgan").Hyperparameters, {})
    assert (dc.lr, dc.beta1, dc.z_dim, dc.loss) == (2e-4, 0.5, 100, "ns")
    for name in TINY:  # every field documents itself for `gencli models NAME`
        assert all(row[3] for row in hparams.describe(model_class(name).Hyperparameters))


# ---------------------------------------------------------------------------------- training pieces
@pytest.mark.parametrize("name, keys", [
    ("gan", {"loss_d", "loss_g", "d_real", "d_fake"}),
    ("dcgan", {"loss_d", "loss_g", "d_real", "d_fake"}),
    ("cgan", {"loss_d", "loss_g", "d_real", "d_fake"}),
    ("wgan", {"loss_d", "loss_g", "wasserstein"}),
    ("wgan-gp", {"loss_d", "loss_g", "wasserstein", "gp"}),
    ("ssgan", {"loss_d", "loss_g", "d_real", "d_fake", "rot_real", "rot_fake"}),
])
def test_each_model_logs_its_losses_as_detached_scalars(name, keys, data16):
    model = tiny_model(name, n_critic=1)
    logs = train_steps(model, data16, 1, batch_size=8)
    assert set(logs) == keys
    assert all(v.dim() == 0 and not v.requires_grad and torch.isfinite(v) for v in logs.values())
    if "d_real" in logs:
        assert 0 < logs["d_real"] < 1 and 0 < logs["d_fake"] < 1  # probabilities under the ns loss


@pytest.mark.parametrize("name", ["dcgan", "wgan-gp", "ssgan"])
def test_train_step_runs_under_bf16_autocast_with_every_stabiliser(name, data16):
    model = tiny_model(name, augment="color,translation,cutout", instance_noise=0.1)
    model.precision = "bf16"  # mixed fake (bf16) and real (fp32) inputs meet in D and in the penalty
    logs = train_steps(model, data16, 1, batch_size=8)
    assert all(torch.isfinite(v) for v in logs.values())


def test_update_ratio_counts_optimizer_steps(data16):
    model = tiny_model("dcgan", n_critic=3, g_steps=2)
    train_steps(model, data16, 2, batch_size=8)
    step_of = lambda name: int(next(iter(model.optimizers[name].state.values()))["step"])  # noqa: E731
    assert step_of("D") == 6 and step_of("G") == 4


def test_wgan_critic_keeps_every_weight_within_the_clip(data16):
    model = tiny_model("wgan", clip=0.01, lr=1e-2, n_critic=2)
    train_steps(model, data16, 3, batch_size=8)
    weights = torch.cat([p.detach().flatten() for p in model.nets["D"].parameters()])
    assert weights.abs().max().item() <= 0.01 + 1e-9
    assert (weights.abs() > 0.0099).float().mean() > 0.2  # the clip is active, not vacuous
    g_weights = torch.cat([p.detach().flatten() for p in model.nets["G"].parameters()])
    assert g_weights.abs().max() > 0.01  # only the critic is clipped


def test_ssgan_rotation_labels_match_the_rotations_applied():
    torch.manual_seed(0)
    x = torch.randn(3, 2, 5, 5)
    rotated, labels = rotate_batch(x)
    assert rotated.shape == (12, 2, 5, 5) and labels.tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    for image, k, source in zip(rotated, labels, x.repeat(4, 1, 1, 1)):
        # Undoing rotation k (k quarter turns) restores the source image, and no other k does.
        assert torch.equal(torch.rot90(image, -int(k), dims=(1, 2)), source)
        for other in set(range(4)) - {int(k)}:
            assert not torch.equal(torch.rot90(image, -other, dims=(1, 2)), source)
    # Quarter turn counter-clockwise: the top-right corner moves to the top-left.
    assert rotated[3, 0, 0, 0] == x[0, 0, 0, -1]


def test_instance_noise_reaches_d_and_decays(data16):
    model = tiny_model("dcgan", instance_noise=0.5, instance_noise_steps=4)
    real = next(iter(model_input_batches(data16)))
    assert model.d_input(real, 0.0) is real
    logs0 = train_steps(model, data16, 1, batch_size=8)
    assert model.step == 1 and logs0
    from gencli.nn.losses import instance_noise_std

    stds = [instance_noise_std(s, model.hp.instance_noise, model.hp.instance_noise_steps) for s in range(6)]
    assert stds[0] == 0.5 and stds[2] == 0.25 and stds[4] == stds[5] == 0.0
    noisy = model.d_input(real, 0.5)
    assert (noisy - real).std().item() == pytest.approx(0.5, rel=0.1)


def model_input_batches(data, batch_size: int = 8):
    from gencli.data.base import BatchStream

    return (b.images for b in BatchStream(data, batch_size).epoch(0))


def test_augmentation_applies_to_real_and_fake_inputs(data16):
    model = tiny_model("dcgan", augment="translation,cutout")
    real = next(iter(model_input_batches(data16)))
    seen = []
    D = model.nets["D"]
    hook = D.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    train_steps(model, data16, 1, batch_size=8)
    hook.remove()
    # D saw cut-out inputs (exact zeros are rare in shapes and in tanh outputs) for reals and fakes.
    zero_fraction = [(x == 0).float().mean().item() for x in seen]
    assert all(f > 0.1 for f in zero_fraction)
    assert (real == 0).float().mean() < 0.01


# ---------------------------------------------------------------------------------- EMA and sampling
def test_ema_weights_differ_from_raw_weights_and_sample_uses_them(data16):
    model = tiny_model("dcgan", lr=1e-3)
    train_steps(model, data16, 4, batch_size=8)
    G, G_ema = model.nets["G"], model.nets["G_ema"]
    before = [p.detach().clone() for p in G_ema.parameters()]
    train_steps(model, data16, 5, batch_size=8)
    # One more step moved G_ema by exactly the EMA rule with the warmed-up decay of step 4.
    decay = min(model.hp.ema_decay, (1 + 4) / (10 + 4))
    for old, raw, avg in zip(before, G.parameters(), G_ema.parameters()):
        assert torch.allclose(avg, decay * old + (1 - decay) * raw, atol=1e-6)
    assert any(not torch.allclose(a, b) for a, b in zip(G.parameters(), G_ema.parameters()))

    model.eval()
    with torch.no_grad():
        z = model.latents(6, torch.Generator().manual_seed(7))
        drawn = model.sample(6, generator=torch.Generator().manual_seed(7))
        assert torch.allclose(drawn, G_ema(z))
        assert not torch.allclose(drawn, G(z), atol=1e-4)
        assert torch.allclose(model.generate(z), drawn)


def test_ema_decay_zero_makes_the_average_the_raw_generator(data16):
    model = tiny_model("dcgan", ema_decay=0.0, lr=1e-3)
    train_steps(model, data16, 3, batch_size=8)
    for raw, avg in zip(model.nets["G"].parameters(), model.nets["G_ema"].parameters()):
        assert torch.equal(raw, avg)


def test_unconditional_models_refuse_labels():
    model = tiny_model("dcgan")
    with pytest.raises(UserError, match="unconditional and takes no --label"):
        model.sample(2, torch.tensor([1, 1]))


def test_cgan_samples_follow_the_label_and_check_its_range(data16):
    model = tiny_model("cgan", lr=1e-3)
    train_steps(model, data16, 2, batch_size=8)
    model.eval()
    with torch.no_grad():
        z = model.latents(6, torch.Generator().manual_seed(0))
        a = model.generate(z, torch.zeros(6, dtype=torch.long))
        b = model.generate(z, torch.full((6,), 3))
        assert not torch.allclose(a, b)  # the label, not only z, decides the image
        assert model.sample(4, torch.tensor(2)).shape == (4, 3, 16, 16)  # one label for every image
        assert model.sample(4).shape == (4, 3, 16, 16)  # random classes when none is given
        with pytest.raises(UserError, match="label 6 is out of range: cgan was trained on 6 classes"):
            model.sample(2, torch.tensor([1, 6]))
        with pytest.raises(UserError, match="conditional: pass --label"):
            model.generate(z)
    D = model.nets["D"]
    x = to_float(data16.images[:4])
    assert not torch.allclose(D(x, torch.zeros(4, dtype=torch.long)), D(x, torch.ones(4, dtype=torch.long)))


def test_cgan_needs_classes():
    with pytest.raises(UserError, match="needs labelled data"):
        tiny_model("cgan", classes=[])


def test_interpolation_latents_and_generate():
    model = tiny_model("ssgan").eval()
    z = model.latents(5, torch.Generator().manual_seed(0))
    assert z.shape == (5, 32)
    assert torch.equal(z, model.latents(5, torch.Generator().manual_seed(0)))
    with torch.no_grad():
        assert model.generate(z).shape == (5, 3, 16, 16)


# ---------------------------------------------------------------------------------- learning
# Settings that let each tiny model move in 40 steps; the paper settings are tested above.
LEARNING = {
    "gan": {},
    "dcgan": {"lr": 1e-3},
    "cgan": {"lr": 1e-3},
    "wgan": {"lr": 1e-3, "n_critic": 2},
    "wgan-gp": {"lr": 1e-3, "n_critic": 2},
    "ssgan": {"lr": 1e-3},
}


@pytest.mark.parametrize("name", list(LEARNING))
def test_short_training_moves_samples_towards_the_data(name, data16):
    model = tiny_model(name, **LEARNING[name])
    real = to_float(data16.images[:256])
    labels = data16.labels[:256] if model.conditional else None
    before = pixel_distance(samples(model, 256, labels), real)
    logs = train_steps(model, data16, 40, batch_size=32)
    after = pixel_distance(samples(model, 256, labels), real)
    assert after < 0.75 * before, f"{name}: pixel distance {before:.3f} -> {after:.3f}"
    assert all(torch.isfinite(v) for v in logs.values())


def test_ssgan_discriminator_learns_the_rotation_task(data16):
    # Most shapes look alike under quarter turns; a vertical ramp makes every rotation visible.
    ramp = torch.linspace(0, 255, 16).view(1, 1, 16, 1)
    images = (data16.images.float() * 0.5 + ramp * 0.5).round().to(torch.uint8)
    data = ImageData("ramp", "images", images)
    model = tiny_model("ssgan", lr=1e-3)
    rot_real = [model.discriminator_step(batch, None, 0.0)["rot_real"] for batch in model_input_batches(data, 16)]
    # Cross-entropy of the rotation head on real images: from chance (log 4) or worse to well below.
    assert rot_real[-1] < 0.6 * math.log(4) < rot_real[0]


@pytest.mark.parametrize("name", ["dcgan", "ssgan", "wgan-gp"])
def test_the_generator_update_skips_discriminator_weight_gradients_and_matches_an_unfrozen_one(name, monkeypatch):
    import contextlib
    import copy

    model = tiny_model(name)
    twin = copy.deepcopy(model)
    for m in (model, twin):
        m.optimizers["D"].zero_grad(set_to_none=True)
    torch.manual_seed(3)
    model.generator_step(8, None, 0.0)
    assert all(p.grad is None for p in model.nets["D"].parameters())  # D's weight gradients never computed
    assert all(p.requires_grad for p in model.nets["D"].parameters())  # and D trains again afterwards
    monkeypatch.setattr(type(twin), "frozen", lambda self, *names: contextlib.nullcontext())
    torch.manual_seed(3)
    twin.generator_step(8, None, 0.0)
    assert any(p.grad is not None for p in twin.nets["D"].parameters())
    for a, b in zip(model.nets["G"].parameters(), twin.nets["G"].parameters()):
        assert torch.allclose(a, b, atol=1e-7)  # the generator's update is unchanged


@pytest.mark.parametrize("name, n_critic, g_steps, forwards", [
    ("dcgan", 1, 1, 1),  # one batch of fakes for both updates
    ("ssgan", 1, 1, 1),
    ("dcgan", 2, 1, 3),  # otherwise every update draws its own
    ("wgan", 5, 1, 6),
])
def test_the_generator_runs_forward_once_per_step_at_one_to_one(name, n_critic, g_steps, forwards):
    model = tiny_model(name, n_critic=n_critic, g_steps=g_steps)
    calls = []
    model.nets["G"].register_forward_hook(lambda module, args, out: calls.append(out.requires_grad))
    model.train_step(next(iter(BatchStream(shapes(16, 3, 64), 8).epoch(0))))
    assert len(calls) == forwards
    assert calls.count(True) == g_steps  # the fakes the generator learns through carry its graph


def test_dcgan_generator_and_discriminator_depths_vary_independently():
    def conv_count(net):
        return sum(isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) for m in net.modules())

    base = tiny_model("dcgan")
    deep_g = tiny_model("dcgan", g_depth=2)
    deep_d = tiny_model("wgan", d_depth=1)
    both = tiny_model("dcgan", depth=1)
    g0, d0 = conv_count(base.nets["G"]), conv_count(base.nets["D"])
    assert conv_count(deep_g.nets["G"]) > g0 and conv_count(deep_g.nets["D"]) == d0
    assert conv_count(deep_d.nets["G"]) == g0 and conv_count(deep_d.nets["D"]) > d0
    # depth still deepens both where g_depth / d_depth are unset, and they override it.
    assert conv_count(both.nets["G"]) > g0 and conv_count(both.nets["D"]) > d0
    override = tiny_model("dcgan", depth=1, d_depth=0)
    assert conv_count(override.nets["G"]) == conv_count(both.nets["G"]) and conv_count(override.nets["D"]) == d0


def test_ssgan_rotation_loss_starts_above_chance_because_the_head_reads_sum_pooled_features():
    import torch.nn.functional as F

    from gencli_gan.ssgan import rotate_batch

    model = tiny_model("ssgan", size=32)
    D = model.nets["D"].eval()
    rotated, rotations = rotate_batch(to_float(shapes(32, count=16).images[:8]))
    with torch.no_grad():
        features = D.blocks(rotated)
        _, logits = D(rotated)
        assert torch.allclose(logits, D.rotation(features.sum(dim=(2, 3))), atol=1e-5)  # the authors' sum pooling
        summed = float(F.cross_entropy(logits, rotations))
        averaged = float(F.cross_entropy(D.rotation(features.mean(dim=(2, 3))), rotations))
    chance = math.log(4)
    assert summed > 2 * chance  # far above a uniform guess: the logits carry the 64 positions' sum
    assert abs(averaged - chance) < 0.1  # the same head on averaged features starts at chance
