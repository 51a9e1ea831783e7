"""Fixtures of the diffusion tests: a small labelled shapes set at 16 px."""

from __future__ import annotations

import pytest

from gencli.data.base import DataRequest
from gencli.data.synthetic import build_shapes


@pytest.fixture(scope="session")
def shapes16():
    return build_shapes(DataRequest(image_size=16, channels=3, options={"size": 256}))
