"""FID with pytorch-fid's Inception: equal to pytorch-fid's own tool, weights found offline."""

import pytest
import torch
from replay_model import Replay

from gencli.data.base import DataRequest, to_float
from gencli.data.synthetic import build_shapes
from gencli.errors import UserError
from gencli.media.images import save_images
from gencli.metrics import inception
from gencli.metrics.context import EvalContext
from gencli.metrics.fid import FID
from gencli.metrics.inception import (
    WEIGHTS_FILE,
    WEIGHTS_URL,
    fid_inception_architecture,
    find_weights,
    load_fid_inception,
    randomise,
)


def _random_weights(path):
    """Random FID-Inception weights (He init, so features are neither 0 nor huge), saved like the real file."""
    net = randomise(fid_inception_architecture())
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty torch cache, no GENCLI_FID_WEIGHTS, and no network for the weights."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(inception.WEIGHTS_ENV, raising=False)

    def offline(dest):
        raise OSError("no network")

    monkeypatch.setattr(inception, "download_weights", offline)
    assert torch.hub.get_dir() == str(tmp_path / "torch" / "hub")
    return tmp_path / "torch" / "hub" / "checkpoints" / WEIGHTS_FILE


@pytest.mark.slow  # about 20 s on two cores: 16 Inception passes at 299 px and pytorch-fid's 2048-d sqrtm
@pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning", "ignore:Matrix is singular")
def test_fid_equals_pytorch_fid_on_two_folders(tmp_path, torch_home):
    from pytorch_fid.fid_score import calculate_fid_given_paths

    torch.set_num_threads(2)  # the one heavy test: 16 Inception passes at 299 px
    _random_weights(torch_home)  # where torch (and so pytorch-fid) keeps downloaded weights
    real = build_shapes(DataRequest(16, 3, options={"size": 4})).images
    fake = build_shapes(DataRequest(16, 3, "test", options={"size": 4})).images
    save_images(to_float(real), tmp_path / "real")
    save_images(to_float(fake), tmp_path / "fake")

    from gencli.data.base import ImageData

    ctx = EvalContext(Replay(fake), ImageData("shapes", "images", real), n=4, batch_size=4, progress=False)
    ours = FID().compute(ctx)["fid"]
    assert ctx.feature_extractor().weights == torch_home  # found offline in torch's cache
    theirs = calculate_fid_given_paths([str(tmp_path / "real"), str(tmp_path / "fake")], 4, "cpu", 2048, num_workers=0)
    assert theirs > 0
    assert abs(ours - theirs) / theirs < 1e-3, (ours, theirs)


def test_missing_weights_say_which_file_to_put_where(torch_home):
    with pytest.raises(UserError) as err:
        find_weights()
    msg = str(err.value)
    assert WEIGHTS_FILE in msg and WEIGHTS_URL in msg and str(torch_home) in msg and "--fid-weights" in msg
    assert "\n" not in msg


def test_weights_come_from_the_option_then_the_environment_then_a_download(tmp_path, torch_home, monkeypatch):
    given = tmp_path / "mine.pth"
    given.write_bytes(b"x")
    assert find_weights(given) == given
    monkeypatch.setenv(inception.WEIGHTS_ENV, str(given))
    assert find_weights() == given
    with pytest.raises(UserError, match="GENCLI_FID_WEIGHTS .*does not exist"):
        monkeypatch.setenv(inception.WEIGHTS_ENV, str(tmp_path / "nope.pth"))
        find_weights()
    with pytest.raises(UserError, match="--fid-weights .*does not exist"):
        find_weights(tmp_path / "nope.pth")
    monkeypatch.delenv(inception.WEIGHTS_ENV)
    monkeypatch.setattr(inception, "download_weights", lambda dest: dest.parent.mkdir(parents=True) or dest.write_bytes(b"w"))
    assert find_weights() == torch_home and torch_home.read_bytes() == b"w"


def test_files_that_are_not_fid_weights_are_refused(tmp_path):
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(1)}, wrong)
    with pytest.raises(UserError, match="does not hold the FID Inception weights; .*--features") as info:
        load_fid_inception(wrong)
    assert str(wrong) in str(info.value)
    text = tmp_path / "text.pth"
    text.write_text("hello")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(wrong.read_bytes()[:-40])  # an interrupted download
    for damaged in (text, truncated):
        with pytest.raises(UserError, match="are damaged or not a weights file") as info:
            load_fid_inception(damaged)
        message = str(info.value)
        assert str(damaged) in message and inception.WEIGHTS_URL in message and "--features" in message
