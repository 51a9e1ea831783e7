"""FID, KID and precision/recall/density/coverage: agreement with pytorch-fid and behaviour."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pytorch_fid.fid_score import calculate_frechet_distance

from gencli.data.base import to_float
from gencli.errors import UserError
from gencli.metrics.fid import fid_from_features, frechet_distance, statistics
from gencli.metrics.kid import kid
from gencli.metrics.prdc import prdc

# pytorch-fid passes an argument scipy deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning")


def _features(net, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net(images)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = max(1, int(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = (g / g.sum()).to(x)
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), g.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), g.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def test_frechet_distance_equals_pytorch_fid_formula():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(300, 64, generator=g).double() ** 2
    b = torch.randn(200, 64, generator=g).double() * 1.5 + 0.2
    mu1, s1 = statistics(a)
    mu2, s2 = statistics(b)
    theirs = calculate_frechet_distance(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(theirs, rel=1e-6)
    assert fid_from_features(a, b) == pytest.approx(theirs, rel=1e-6)
    # Statistics as pytorch-fid computes them: float64 mean and np.cov.
    np.testing.assert_allclose(s1, np.cov(a.numpy(), rowvar=False))


@pytest.mark.parametrize("n_a, n_b", [(20, 30), (50, 20), (300, 40)])
def test_fid_with_fewer_samples_than_dimensions_matches(n_a, n_b):
    # One side smaller than the 64 dimensions: the sample-space route is taken.
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(n_a, 64, generator=g), torch.rand(n_b, 64, generator=g) * 1.2 + 0.1
    mu1, s1 = statistics(a)
    mu2, s2 = statistics(b)
    theirs = calculate_frechet_distance(mu1, s1, mu2, s2)
    assert fid_from_features(a, b) == pytest.approx(theirs, rel=1e-5)
    assert fid_from_features(b, a) == pytest.approx(theirs, rel=1e-5)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(theirs, rel=1e-5)


def test_fid_of_a_set_against_itself_is_zero(feature_net, shapes16):
    f = _features(feature_net, to_float(shapes16.images))
    scale = fid_from_features(f[:300], f[300:])
    assert fid_from_features(f, f) == pytest.approx(0.0, abs=1e-6 * max(scale, 1.0))


@pytest.mark.parametrize("corrupt, levels", [("noise", [0.05, 0.1, 0.2, 0.4]), ("blur", [0.5, 0.8, 1.2, 2.0])])
def test_fid_and_kid_grow_with_corruption(feature_net, shapes16, corrupt, levels):
    torch.manual_seed(0)
    x = to_float(shapes16.images)
    real, base = x[:300], x[300:]
    f_real = _features(feature_net, real)
    fids, kids = [], []
    for level in levels:
        y = base + level * torch.randn_like(base) if corrupt == "noise" else _blur(base, level)
        f = _features(feature_net, y.clamp(-1, 1))
        fids.append(fid_from_features(f_real, f))
        kids.append(kid(f_real, f, subsets=20, subset_size=200)[0])
    clean = fid_from_features(f_real, _features(feature_net, base))
    assert clean < fids[0]
    assert all(a < b for a, b in zip(fids, fids[1:])), fids
    # KID orders the corruption levels the same way.
    assert np.argsort(kids).tolist() == np.argsort(fids).tolist(), (kids, fids)


def test_kid_is_near_zero_for_one_distribution_and_reports_spread():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(400, 16, generator=g), torch.randn(400, 16, generator=g)
    same_mean, same_std = kid(a, b, subsets=30, subset_size=200)
    shifted_mean, _ = kid(a, b + 1.0, subsets=30, subset_size=200)
    assert abs(same_mean) < 3 * same_std + 1e-3
    assert same_std > 0
    assert shifted_mean > 10 * abs(same_mean)


def test_prdc_of_identical_sets_is_perfect():
    x = torch.randn(300, 8, generator=torch.Generator().manual_seed(0))
    r = prdc(x, x.clone())
    assert r["precision"] == 1.0 and r["recall"] == 1.0 and r["coverage"] == 1.0
    assert r["density"] >= 1.0  # each sample sits in its own ball and in its neighbours'


def test_prdc_sees_a_dropped_mode_as_low_recall_and_disjoint_sets_as_zero():
    g = torch.Generator().manual_seed(0)
    mode_a = torch.randn(300, 8, generator=g)
    mode_b = torch.randn(300, 8, generator=g) + 20.0
    real = torch.cat([mode_a, mode_b])
    collapsed = torch.randn(300, 8, generator=g)  # only mode A
    r = prdc(real, collapsed)
    assert r["precision"] > 0.9  # what it draws looks real...
    assert r["recall"] < 0.6 and r["coverage"] < 0.6  # ...but half the data is never drawn
    far = torch.randn(300, 8, generator=g) + 100.0
    r = prdc(real, far)
    assert r["precision"] == 0.0 and r["recall"] == 0.0 and r["density"] == 0.0 and r["coverage"] == 0.0


def test_metrics_refuse_too_few_samples():
    x = torch.randn(4, 8)
    with pytest.raises(UserError, match="more than k=5"):
        prdc(x, x)
    with pytest.raises(UserError, match="at least 2"):
        kid(x[:1], x)
    with pytest.raises(UserError, match="at least 2"):
        fid_from_features(x[:1], x)
