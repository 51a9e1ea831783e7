"""Trained models loaded for sampling on the CPU run channels-last, with the same images as before."""

import torch

from gencli.runs import checkpoints as ckpt
from gencli.runs import load_trained
from gencli.training.engine import TrainConfig, train


def _conv_weights(model):
    return [m.weight for net in model.nets.values() for m in net.modules()
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]


def test_a_loaded_model_samples_channels_last_and_the_same_images(tmp_path, monkeypatch):
    run = train(TrainConfig(model="vae", data="shapes", steps=2, image_size=16, batch_size=8, quiet=True,
                            overrides={"widths": "8,16"}, out=tmp_path / "run"))
    model = load_trained(str(run))
    weights = _conv_weights(model)
    assert weights and all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    with torch.no_grad():
        ours = model.sample(6, generator=torch.Generator().manual_seed(3))

    monkeypatch.setattr(type(model), "cpu_channels_last", False)  # a family that opts out
    plain = load_trained(str(run))
    assert all(w.is_contiguous() for w in _conv_weights(plain))
    with torch.no_grad():
        expected = plain.sample(6, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)


def test_a_channels_last_model_still_writes_contiguous_checkpoints(tmp_path):
    from safetensors.torch import load_file

    run = train(TrainConfig(model="vae", data="shapes", steps=2, image_size=16, batch_size=8, quiet=True,
                            overrides={"widths": "8,16"}, out=tmp_path / "run"))
    model = load_trained(str(run))
    model.step = 5
    path = ckpt.save_checkpoint(run, model, epoch=0, batch_in_epoch=0, keep=3)
    saved = load_file(str(path / "weights.safetensors"))
    for name, net in model.nets.items():
        for key, value in net.state_dict().items():
            assert torch.equal(saved[f"{name}.{key}"], value)


def test_translate_batches_within_the_models_cpu_pixel_budget(tmp_path, monkeypatch):
    from PIL import Image

    from gencli.cli.translate import translate_paths
    from gencli.models.base import Model

    run = train(TrainConfig(model="pix2pix", steps=1, image_size=16, batch_size=2, quiet=True,
                            overrides={"ngf": 4, "ndf": 4}, out=tmp_path / "run"))
    model = load_trained(str(run))
    assert type(model).cpu_batch_pixels is None and model.inference_batch(16, 16, 16) == 16
    src = tmp_path / "in"
    src.mkdir()
    for i in range(5):
        Image.new("RGB", (16, 16), (40 * i, 0, 0)).save(src / f"{i}.png")
    seen = []
    real = type(model).translate

    def recording(self, x, direction="a2b"):
        seen.append(len(x))
        return real(self, x, direction)

    monkeypatch.setattr(type(model), "translate", recording)
    monkeypatch.setattr(type(model), "cpu_batch_pixels", 2 * 16 * 16)  # two 16 px images a call
    assert model.inference_batch(16, 16, 16) == 2 and model.inference_batch(16, 64, 64) == 1
    written = translate_paths(model, [src], "a2b", tmp_path / "out", show_progress=False)
    assert len(written) == 5 and seen == [2, 2, 1]
    seen.clear()
    translate_paths(model, [src], "a2b", tmp_path / "given", batch_size=4, show_progress=False)
    assert seen == [4, 1]  # --batch-size wins
    assert Model.cpu_batch_pixels is None
