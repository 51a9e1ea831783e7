"""Metrics declare their properties at registration; `gencli eval` reads them, for built-in and plugin metrics alike."""

import types

import pytest
import torch

from gencli.errors import UserError
from gencli.hookspecs import hookimpl
from gencli.registry import MetricProperties, MetricSpec


class FeatureSpread:
    """A plugin's metric: how far the generated features' spread is from the real ones' (lower is better)."""

    def compute(self, ctx) -> dict[str, float]:
        real, fake = ctx.real_features().features, ctx.generated_features().features
        return {"spread": float((real.std(0) - fake.std(0)).abs().mean())}


SPREAD = MetricSpec("spread", "distance between feature spreads", f"{__name__}:FeatureSpread", needs="sample",
                    properties=MetricProperties(needs_features=True, lower_is_better=True, default_for=("generative",)))


@pytest.fixture
def with_spread(monkeypatch):
    """The registry with a third party's plugin registering ``spread``, as an installed plugin would."""
    import gencli.plugins
    from gencli.plugins import load_registry

    plugin = types.ModuleType("gencli_spread")
    plugin.GENCLI_API = 2
    plugin.gencli_register_metrics = hookimpl(lambda: [SPREAD])
    reg = load_registry(extra=[("spread", plugin)])
    monkeypatch.setattr(gencli.plugins, "registry", lambda: reg)
    return reg


class Kind:
    """A model as metric choice reads it: capabilities, data kind, classes."""

    def __init__(self, *can, data="images", conditional=False, num_classes=0):
        self.name, self._can, self.data = "m", set(can), data
        self.conditional, self.num_classes = conditional, num_classes

    def can(self, capability):
        return capability in self._can


def test_a_plugin_metric_declares_lower_is_better_and_needs_features(with_spread, monkeypatch):
    from gencli.metrics import compare
    from gencli.metrics.choose import default_metrics, drop_unavailable_features, resolve_metrics
    from gencli.metrics.inception import WEIGHTS_ENV

    assert with_spread.metrics["spread"].plugin == "spread"
    # chosen by default for the run kind it declares, after the built-in ones
    assert default_metrics(Kind("sample")) == ["fid", "kid", "spread"]
    assert "spread" not in default_metrics(Kind("reconstruct"))
    # ranked lower-is-better wherever results are compared, with the built-in declarations
    assert compare.ranking("spread") == "lower" and compare.ranking("spread [cat]") == "lower"
    assert compare.best_value([0.3, 0.1, None, 0.2], "spread") == 0.1
    assert compare.best_value([0.3, 0.1], "psnr") == 0.3 and compare.best_value([0.3, 0.1], "kid_std") is None
    assert "spread" in compare.LOWER_IS_BETTER and "kid_std" in compare.NOT_RANKED
    # without Inception weights it is skipped with the other feature metrics, the rest computed
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)

    def no_weights(path=None):
        raise UserError("no weights here")

    monkeypatch.setattr("gencli.metrics.inception.find_weights", no_weights)
    warned = []
    from gencli.models.base import Model

    class Both(Model):
        name = "both"

        def sample(self, n, labels=None, generator=None):
            return torch.zeros(n, 3, 8, 8)

        def reconstruct(self, x, labels=None):
            return x

    model = Both.__new__(Both)
    kept = drop_unavailable_features(resolve_metrics(model, ["spread", "mse"]), None, warned.append)
    assert [name for name, _ in kept] == ["mse"] and warned and warned[0].startswith("skipping spread:")


def test_a_plugin_feature_metric_scores_two_folders(with_spread, tmp_path, scripted_features):
    from gencli.data.base import DataRequest, to_float
    from gencli.data.synthetic import build_shapes
    from gencli.media.images import save_images
    from gencli.metrics.folders import score_folders

    for side, split in (("real", "train"), ("fake", "test")):
        save_images(to_float(build_shapes(DataRequest(16, 3, split, options={"size": 8})).images), tmp_path / side)
    result = score_folders(tmp_path / "real", tmp_path / "fake", ["spread", "fid"], features=str(scripted_features),
                           progress=False)
    assert set(result["eval"]) == {"spread", "fid"} and result["eval"]["spread"] > 0


def test_a_spec_without_properties_keeps_the_old_meaning():
    from gencli.metrics.choose import default_metrics

    old = MetricSpec("sharpness", "variance of the Laplacian", "pkg.metric:Sharpness", needs="sample")
    assert old.properties == MetricProperties()
    assert not old.properties.needs_features and not old.properties.lower_is_better
    assert default_metrics(Kind("sample"), specs={"sharpness": old, "fid": SPREAD}) == ["fid"]  # never a default
    with pytest.raises(ValueError, match="unknown run kinds"):
        MetricProperties(default_for=("videos",))


@pytest.mark.parametrize(("model", "classifier", "expected"), [
    (Kind("sample"), None, ["fid", "kid"]),
    (Kind("sample", "reconstruct", conditional=True, num_classes=3), None, ["mse", "psnr", "ssim", "fid", "kid", "fid-class"]),
    (Kind("sample", conditional=True, num_classes=3), "judge.pt", ["fid", "kid", "fid-class", "accuracy"]),
    (Kind("reconstruct"), "judge.pt", ["mse", "psnr", "ssim"]),
    (Kind("translate", data="paired"), None, ["fid", "kid", "l1", "psnr", "ssim"]),
    (Kind("translate", "sample", data="unpaired"), None, ["fid", "kid"]),
])
def test_the_built_in_declarations_choose_the_defaults_by_run_kind(model, classifier, expected):
    from gencli.metrics.choose import default_metrics

    assert default_metrics(model, classifier) == expected


def test_a_model_no_metric_applies_to_is_told_to_name_one():
    from gencli.metrics.choose import default_metrics

    with pytest.raises(UserError, match="name one with --metrics"):
        default_metrics(Kind("encode"))
