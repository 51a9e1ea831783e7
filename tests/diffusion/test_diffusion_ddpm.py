"""The ddpm model: its U-Net, training, guidance, EMA sampling, figures and the mistakes it refuses."""

import pytest
import torch
from diffusion_helpers import make_model, randomise

from gencli.data.base import BatchStream, ImageData, to_float
from gencli.data.synthetic import CLASSES
from gencli.errors import UserError
from gencli.models import hparams
from gencli_diffusion.ddpm import DDPMHyperparameters
from gencli_diffusion.unet import UNet


# ---------------------------------------------------------------------------- the network
@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_unet_predicts_noise_of_the_input_shape_at_every_size(size, channels):
    model = make_model(CLASSES, size=size, channels=channels, channel_mults=(1, 2, 2), attention_levels=(2,))
    net = model.nets["unet"]
    randomise(net)
    x = torch.randn(2, channels, size, size)
    with torch.no_grad():
        out = net(x, torch.tensor([0, 49]), torch.tensor([0, 5]))
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_the_papers_cifar10_unet_has_its_35_7m_parameters_plus_the_scale_shift_projections():
    net = UNet(3, base_width=128, channel_mults=(1, 2, 2, 2), res_blocks=2, attention_levels=(1,), dropout=0.1)
    # Ho et al.'s 35.7M; each residual block's embedding projection doubles for scale and shift
    extra = sum(b.emb.out_features // 2 * (b.emb.in_features + 1) for b in net.modules() if hasattr(b, "emb") and hasattr(b, "norm2"))
    assert sum(p.numel() for p in net.parameters()) - extra == pytest.approx(35.7e6, rel=0.01)


def test_attention_sits_at_the_chosen_levels_and_the_middle():
    net = UNet(3, 8, (1, 2, 2), 1, attention_levels=(0,))
    down = [b for b in net.down if hasattr(b, "attn")]
    assert [b.attn is not None for b in down] == [True, False, False]
    assert net.mid1.attn is not None


@pytest.mark.parametrize("width", [8, 32])
def test_labels_and_timesteps_change_the_prediction(width):
    # At these widths every group of the group norms is one channel: the conditioning must survive them.
    model = make_model(CLASSES, base_width=width).eval()
    net = model.nets["unet"]
    randomise(net)
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        base = net(x, torch.tensor([10]), torch.tensor([1]))
        assert torch.equal(base, net(x, torch.tensor([10]), torch.tensor([1])))  # no dropout in eval mode
        for t, label in ((10, torch.tensor([2])), (40, torch.tensor([1])), (10, None)):
            assert (net(x, torch.tensor([t]), label) - base).abs().max() > 1e-3, (t, label)


# ---------------------------------------------------------------------------- training
def _fixed_loss(model, batch) -> float:
    """The training loss on a fixed batch, timesteps and noise, without dropout."""
    g = torch.Generator().manual_seed(0)
    t = torch.randint(0, model.schedule.timesteps, (len(batch),), generator=g)
    noise = torch.randn(batch.images.shape, generator=g)
    model.eval()
    with torch.no_grad():
        pred = model.nets["unet"](model.schedule.q_sample(batch.images, t, noise), t, batch.labels)
    model.train()
    return torch.nn.functional.mse_loss(pred, noise).item()


def test_a_short_training_run_on_shapes_lowers_the_loss(shapes16):
    model = make_model(CLASSES, lr=2e-3)
    stream = BatchStream(shapes16, 16)
    held = next(iter(BatchStream(shapes16, 64, seed=9).epoch(0)))
    before = _fixed_loss(model, held)
    model.train()
    for batch in list(stream.epoch(0)) + list(stream.epoch(1)):
        losses = model.train_step(batch)
        model.step += 1
    assert set(losses) == {"loss"} and losses["loss"].dim() == 0 and not losses["loss"].requires_grad
    after = _fixed_loss(model, held)
    assert after < 0.7 * before, (before, after)


def test_unlabelled_data_trains_an_unconditional_model(shapes16):
    plain = ImageData("plain", "images", shapes16.images[:32])
    model = make_model(None)
    assert model.num_classes == 0 and model.nets["unet"].label_embedding is None
    for batch in BatchStream(plain, 16).epoch(0):
        model.train_step(batch)
    assert model.sample(2, steps=2).shape == (2, 3, 16, 16)


@pytest.mark.parametrize("overrides", [{"prediction": "v"}, {"schedule": "cosine"}, {"warmup_steps": 4}])
def test_variants_train_and_sample(shapes16, overrides):
    model = make_model(CLASSES, **overrides)
    batch = next(iter(BatchStream(shapes16, 8).epoch(0)))
    loss = model.train_step(batch)["loss"]
    assert torch.isfinite(loss)
    x = model.eval().sample(2, torch.tensor([0, 3]), steps=3)
    assert x.shape == (2, 3, 16, 16) and x.abs().max() <= 1


def test_warmup_ramps_the_learning_rate_linearly(shapes16):
    model = make_model(CLASSES, warmup_steps=4, lr=1e-3)
    rates = []
    for batch in list(BatchStream(shapes16, 8).epoch(0))[:5]:
        rates.append(model.optimizers["unet"].param_groups[0]["lr"])
        model.train_step(batch)
    assert rates == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3])


def _gradient_norm_at_each_step(model, batches) -> list[float]:
    norms, step = [], model.optimizers["unet"].step

    def recording_step(*args, **kwargs):
        grads = [p.grad for g in model.optimizers["unet"].param_groups for p in g["params"] if p.grad is not None]
        norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))
        return step(*args, **kwargs)

    model.optimizers["unet"].step = recording_step
    for batch in batches:
        model.train_step(batch)
    return norms


def test_gradients_are_clipped_to_grad_clip_before_the_optimizer_sees_them(shapes16):
    batches = list(BatchStream(shapes16, 8).epoch(0))[:3]
    free = _gradient_norm_at_each_step(make_model(CLASSES, grad_clip=0), batches)
    limit = min(free) / 4  # well below what these steps produce unclipped
    clipped = _gradient_norm_at_each_step(make_model(CLASSES, grad_clip=limit), batches)
    assert all(n > limit for n in free)
    assert clipped == pytest.approx([limit] * len(batches), rel=1e-4)


def test_a_train_step_moves_the_ema_towards_the_trained_weights(shapes16):
    model = make_model(CLASSES, ema_decay=0.9)
    model.step = 1000  # past the ramp: the decay is the hyperparameter
    before = [p.clone() for p in model.nets["ema"].parameters()]
    model.train_step(next(iter(BatchStream(shapes16, 8).epoch(0))))
    for old, ema, live in zip(before, model.nets["ema"].parameters(), model.nets["unet"].parameters()):
        assert torch.allclose(ema, 0.9 * old + 0.1 * live, atol=1e-6)
    assert not any(p.requires_grad for p in model.nets["ema"].parameters())
    assert not model.train().nets["ema"].training  # the EMA network never drops out


# ---------------------------------------------------------------------------- sampling
def test_sample_uses_the_ema_weights():
    model = make_model(CLASSES).eval()
    draw = lambda: model.sample(3, torch.tensor([0, 1, 2]), torch.Generator().manual_seed(1), steps=4)  # noqa: E731
    randomise(model.nets["ema"])
    first = draw()
    randomise(model.nets["unet"], scale=1.0)
    assert torch.equal(first, draw())
    randomise(model.nets["ema"], scale=0.2)
    assert not torch.allclose(first, draw())


def test_guidance_zero_is_the_unconditional_prediction_and_one_the_conditional():
    model = make_model(CLASSES).eval()
    net = model.nets["ema"]
    randomise(net)
    x, t, labels = torch.randn(3, 3, 16, 16), torch.tensor([5, 25, 45]), torch.tensor([0, 2, 4])
    with torch.no_grad():
        uncond, cond = net(x, t, None), net(x, t, labels)
        assert (uncond - cond).abs().max() > 1e-3
        assert torch.allclose(model.noise_predictor(labels, 0.0)(x, t), uncond)
        assert torch.allclose(model.noise_predictor(labels, 1.0)(x, t), cond)
        assert torch.allclose(model.noise_predictor(labels, 3.0)(x, t), uncond + 3 * (cond - uncond), atol=1e-5)


def test_ddim_with_eta_zero_is_deterministic_for_a_seed_and_equals_generate_from_the_latents():
    model = make_model(CLASSES).eval()
    randomise(model.nets["ema"])
    labels = torch.tensor([0, 1, 2, 3])
    a = model.sample(4, labels, torch.Generator().manual_seed(7), steps=5, eta=0.0)
    b = model.sample(4, labels, torch.Generator().manual_seed(7), steps=5, eta=0.0)
    c = model.sample(4, labels, torch.Generator().manual_seed(8), steps=5, eta=0.0)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    z = model.latents(4, torch.Generator().manual_seed(7))
    assert torch.allclose(model.generate(z, labels, steps=5), a)
    noisy = model.sample(4, labels, torch.Generator().manual_seed(7), steps=5, eta=1.0)
    assert not torch.allclose(noisy, a)


def test_the_ddpm_sampler_runs_every_step():
    model = make_model(None, timesteps=12, sampling_steps=12).eval()
    calls = []
    model.nets["ema"].register_forward_hook(lambda *args: calls.append(1))
    model.sample(2, generator=torch.Generator().manual_seed(0))  # steps == T: ancestral by default
    model.sample(2, generator=torch.Generator().manual_seed(0), sampler="ddpm")
    model.sample(2, generator=torch.Generator().manual_seed(0), steps=3)
    assert len(calls) == 12 + 12 + 3


def test_guidance_without_labels_samples_random_classes():
    model = make_model(CLASSES).eval()
    seen = []
    model.nets["ema"].register_forward_hook(lambda m, args, out: seen.append(args[2]))
    model.sample(6, None, torch.Generator().manual_seed(0), steps=1, guidance=2.0)
    labels, null = seen[0].chunk(2)
    assert (null == len(CLASSES)).all() and ((labels >= 0) & (labels < len(CLASSES))).all()


def test_without_label_dropout_sampling_stays_conditional():
    model = make_model(CLASSES, label_dropout=0.0).eval()
    seen = []
    model.nets["ema"].register_forward_hook(lambda m, args, out: seen.append(args[2]))
    model.sample(4, None, torch.Generator().manual_seed(0), steps=1)
    model.sample(4, torch.tensor([1, 1, 2, 2]), torch.Generator().manual_seed(0), steps=1)
    assert len(seen) == 2 and all(s is not None and s.shape == (4,) and (s < len(CLASSES)).all() for s in seen)
    with pytest.raises(UserError, match="trained with label_dropout 0"):
        model.sample(2, torch.tensor([0, 1]), steps=1, guidance=3.0)


def test_the_preview_is_a_cheap_ddim_pass_with_a_row_per_class(shapes16):
    model = make_model(CLASSES, timesteps=100, sampling_steps=50).eval()
    calls = []
    model.nets["ema"].register_forward_hook(lambda *args: calls.append(1))
    inputs = model.preview_inputs(shapes16, 12, seed=0)
    images, nrow = model.preview(inputs)
    assert images.shape == (12, 3, 16, 16) and nrow == len(CLASSES)
    assert len(calls) == 20
    again, _ = model.preview(model.preview_inputs(shapes16, 12, seed=0))
    assert torch.equal(images, again)


# ---------------------------------------------------------------------------- the forward-process figure
def test_forward_noise_figure_shows_real_images_drowning_in_noise(shapes16):
    model = make_model(CLASSES, timesteps=100)
    grid, nrow = model.figure("forward-noise", 3, torch.Generator().manual_seed(0), data=shapes16)
    assert nrow == 8 and grid.shape == (3 * 8, 3, 16, 16)
    rows = grid.view(3, 8, -1)
    real = to_float(shapes16.images).flatten(1)
    for clean in rows[:, 0]:
        assert ((real - clean).abs().amax(1) < 1e-6).any()  # the first column is a real image
    distance = (rows - rows[:, :1]).norm(dim=-1)
    # Further from the image at every column until the noise dominates (t = 50 of 100).
    assert (distance[:, 1:6] > distance[:, :5]).all()
    # The last column is (clamped) noise, unrelated to the image.
    corr = torch.stack([torch.corrcoef(torch.stack([r[0], r[-1]]))[0, 1] for r in rows])
    assert corr.abs().max() < 0.2
    chosen, nrow = model.figure("forward-noise", 2, torch.Generator(), data=shapes16, timesteps="0,10,100")
    assert nrow == 3 and len(chosen) == 6


@pytest.mark.parametrize("kwargs, message", [
    ({}, "needs real images"),
    ({"timesteps": "0,101"}, "between 0 and 100"),
    ({"timesteps": "a,b"}, "whole numbers"),
])
def test_forward_noise_figure_refuses_bad_input(shapes16, kwargs, message):
    model = make_model(CLASSES, timesteps=100)
    if "timesteps" in kwargs:
        kwargs["data"] = shapes16
    with pytest.raises(UserError, match=message):
        model.figure("forward-noise", 2, torch.Generator(), **kwargs)
    with pytest.raises(UserError, match="draws: forward-noise"):
        model.figure("style-mix", 2, torch.Generator(), data=shapes16)


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("labelled, kwargs, message", [
    (True, {"steps": 0}, "steps must be between 1 and 50"),
    (True, {"steps": 51}, "steps must be between 1 and 50"),
    (True, {"steps": 2.5}, "steps must be a whole number"),
    (False, {"guidance": 2.0}, "guidance needs a model trained on labelled data"),
    (False, {"labels": torch.tensor([0, 0])}, "--label needs a model trained on labelled data"),
    (True, {"labels": torch.tensor([0, 6])}, "label 6 is out of range; this model knows 6 classes"),
    (True, {"guidance": -1.0}, "guidance must be 0 or more"),
    (True, {"sampler": "euler"}, "unknown sampler 'euler'"),
    (True, {"sampler": "ddpm", "steps": 10}, "the ddpm sampler runs all 50 steps"),
    (True, {"sampler": "ddpm", "eta": 0.5}, "eta sets the ddim sampler's noise"),
    (True, {"eta": 1.5}, "eta must be between 0 and 1"),
])
def test_sampling_refuses_bad_options(labelled, kwargs, message):
    model = make_model(CLASSES if labelled else None).eval()
    with pytest.raises(UserError, match=message):
        model.sample(2, generator=torch.Generator(), **kwargs)


def test_generate_refuses_too_many_steps_too():
    model = make_model(CLASSES).eval()
    with pytest.raises(UserError, match="steps must be between 1 and 50"):
        model.generate(model.latents(1, torch.Generator()), steps=51)


@pytest.mark.parametrize("values, message", [
    ({"lr": 0}, "lr must be positive"),
    ({"timesteps": 0}, "timesteps must be at least 1"),
    ({"beta_start": 0.03}, "need 0 < beta_start < beta_end < 1"),
    ({"channel_mults": "1,0"}, "channel_mults must be one or more positive integers"),
    ({"res_blocks": 0}, "res_blocks must be at least 1"),
    ({"attention_levels": "3"}, r"attention_levels \[3\] do not exist"),
    ({"attention_heads": 3}, "attention_heads 3 must divide"),
    ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
    ({"label_dropout": 1.5}, r"label_dropout must be in \[0, 1\]"),
    ({"ema_decay": 1.0}, r"ema_decay must be in \[0, 1\)"),
    ({"warmup_steps": -1}, "warmup_steps must be 0 or more"),
    ({"grad_clip": -1}, "grad_clip must be 0 or more"),
    ({"sampling_steps": 2000}, r"sampling_steps must be between 1 and timesteps \(1000\)"),
    ({"eta": 2}, r"eta must be in \[0, 1\]"),
    ({"guidance": -0.5}, "guidance must be 0 or more"),
    ({"schedule": "quadratic"}, "bad value 'quadratic' for 'schedule'"),
    ({"widths": "8"}, "unknown hyperparameter 'widths'"),
])
def test_meaningless_hyperparameters_are_refused_by_name(values, message):
    with pytest.raises(UserError, match=message):
        hparams.build(DDPMHyperparameters, values)


def test_image_sizes_the_network_cannot_take_are_refused():
    with pytest.raises(UserError, match="ddpm works with images of 8 px or more"):
        make_model(None, size=4)
    with pytest.raises(UserError, match="1 or 3 channels, not 2"):
        make_model(None, channels=2)
    with pytest.raises(UserError, match="halves 8 px images down to 1 px"):
        make_model(None, size=8, channel_mults=(1, 2, 2, 2))


def test_the_network_sees_the_timestep_and_the_label_at_narrow_widths():
    # with 8-32 channels every norm group is one channel: a shift before the norm would vanish
    torch.manual_seed(0)
    net = UNet(3, 8, (1, 2), 1, attention_levels=(), dropout=0.0, num_classes=3)
    randomise(net, scale=0.3)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        base = net(x, torch.tensor([10, 10]), torch.tensor([0, 0]))
        later = net(x, torch.tensor([900, 900]), torch.tensor([0, 0]))
        other = net(x, torch.tensor([10, 10]), torch.tensor([2, 2]))
    assert (base - later).abs().mean() > 1e-2
    assert (base - other).abs().mean() > 1e-2
