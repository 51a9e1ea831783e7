"""The CPU-optimised FID Inception (folded batch norms, channels-last, smaller passes) gives pytorch-fid's FID."""

import pytest
import torch
from replay_model import Replay
from torch import nn

from gencli.data.base import DataRequest, ImageData, to_float
from gencli.data.synthetic import build_shapes
from gencli.media.images import save_images
from gencli.metrics import inception
from gencli.metrics.context import EvalContext
from gencli.metrics.features import InceptionFeatures
from gencli.metrics.fid import FID, fid_from_features
from gencli.metrics.inception import WEIGHTS_FILE, fid_inception_architecture, fold_batchnorm, randomise


def _randomise(net: nn.Module, seed: int = 0) -> nn.Module:
    """He-initialised convolutions and batch norms with statistics far from the identity, so folding them shows."""
    return randomise(net, seed, batch_norms=True)


def test_folding_a_batch_norm_into_its_convolution_keeps_the_output():
    from torchvision.models.inception import BasicConv2d

    block = _randomise(nn.Sequential(BasicConv2d(3, 8, kernel_size=3, padding=1), BasicConv2d(8, 4, kernel_size=1))).eval()
    x = torch.randn(2, 3, 9, 9)
    expected = block(x)
    fold_batchnorm(block)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in block.modules())
    assert all(m.conv.bias is not None for m in block)
    torch.testing.assert_close(block(x), expected, rtol=1e-5, atol=1e-5)


def test_batch_norms_in_training_mode_are_left_alone():
    from torchvision.models.inception import BasicConv2d

    block = BasicConv2d(3, 4, kernel_size=1).train()
    fold_batchnorm(block)
    assert isinstance(block.bn, nn.BatchNorm2d)


@pytest.fixture
def random_fid_weights(tmp_path, monkeypatch):
    """Random FID-Inception weights where torch's cache keeps the real ones, so pytorch-fid loads them too."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(inception.WEIGHTS_ENV, raising=False)
    path = tmp_path / "torch" / "hub" / "checkpoints" / WEIGHTS_FILE
    path.parent.mkdir(parents=True)
    torch.save(_randomise(fid_inception_architecture()).state_dict(), path)
    return path


@pytest.mark.slow  # about 15 s on one core: 40 Inception passes at 299 px
def test_fid_through_the_optimised_inception_equals_pytorch_fids_to_1e_4(tmp_path, random_fid_weights, monkeypatch):
    from pytorch_fid.fid_score import get_activations
    from pytorch_fid.inception import InceptionV3

    n = 10
    real = build_shapes(DataRequest(16, 3, options={"size": n})).images
    fake = build_shapes(DataRequest(16, 3, "test", options={"size": n})).images
    save_images(to_float(real), tmp_path / "real")
    save_images(to_float(fake), tmp_path / "fake")

    # passes of at most 4 images within batches of 10: the split and the join are exercised too
    monkeypatch.setattr(InceptionFeatures, "cpu_batch", 4)
    ctx = EvalContext(Replay(fake), ImageData("shapes", "images", real), n=n, batch_size=n, progress=False)
    ours = FID().compute(ctx)["fid"]
    extractor = ctx.feature_extractor()
    assert extractor.weights == random_fid_weights and extractor.net.memory_format == torch.channels_last
    assert not any(isinstance(m, nn.BatchNorm2d) for m in extractor.net.modules())

    # pytorch-fid's own network (its constructor loads the weights from torch's cache) on the PNG files
    model = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    acts = {side: get_activations(sorted(str(p) for p in (tmp_path / side).glob("*.png")), model, batch_size=5,
                                  device="cpu", num_workers=0)
            for side in ("real", "fake")}
    features_ours = extractor(real)
    assert features_ours.std() > 0.01  # the random network still tells images apart
    torch.testing.assert_close(features_ours, torch.from_numpy(acts["real"]).float(), rtol=1e-4, atol=1e-5)

    theirs = fid_from_features(acts["real"], acts["fake"])
    assert theirs > 0
    assert abs(ours - theirs) / theirs < 1e-4, (ours, theirs)
