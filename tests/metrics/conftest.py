"""Fixtures for the metric tests: tiny shape images and a small fixed feature network."""

from __future__ import annotations

import pytest
import torch
from metrics_helpers import ConvFeatures, save_torchscript

from gencli.data.base import DataRequest
from gencli.data.synthetic import build_shapes


@pytest.fixture(scope="session")
def feature_net() -> ConvFeatures:
    return ConvFeatures().eval()


@pytest.fixture(scope="session")
def shapes16():
    """600 labelled 16 px RGB shapes."""
    return build_shapes(DataRequest(16, 3, options={"size": 600}))


@pytest.fixture(scope="session")
def scripted_features(tmp_path_factory, feature_net):
    """The feature net saved as TorchScript, as a user would pass it to --features."""
    return save_torchscript(feature_net, tmp_path_factory.mktemp("ts") / "features.pt")


@pytest.fixture(scope="session")
def exported_features(tmp_path_factory, feature_net):
    """The feature net saved with torch.export, batch size left free."""
    path = tmp_path_factory.mktemp("export") / "features.pt2"
    batch = torch.export.Dim("batch")
    program = torch.export.export(feature_net, (torch.zeros(2, 3, 16, 16),), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))
    return path
