from dataclasses import dataclass
from typing import Literal

import pytest

from gencli.errors import UserError
from gencli.models import hparams


@dataclass
class HP:
    lr: float = 1e-3
    depth: int = 3
    mode: Literal["bce", "mse"] = "bce"
    betas: tuple[float, float] = (0.5, 0.999)
    ema: bool = False
    note: str | None = None

    def validate(self):
        hparams.require(self.depth > 0, f"depth must be > 0, got {self.depth}")


def test_strings_from_the_command_line_are_parsed_by_type():
    hp = hparams.build(HP, {"lr": "0.01", "depth": "5", "mode": "mse", "betas": "0,0.9", "ema": "true", "note": "none"})
    assert (hp.lr, hp.depth, hp.mode, hp.betas, hp.ema, hp.note) == (0.01, 5, "mse", (0.0, 0.9), True, None)


def test_typed_values_from_toml_are_checked():
    hp = hparams.build(HP, {"lr": 1, "betas": [0.1, 0.2]})
    assert hp.lr == 1.0 and hp.betas == (0.1, 0.2)
    with pytest.raises(UserError, match="'depth'"):
        hparams.build(HP, {"depth": 2.5})


@pytest.mark.parametrize(
    "values, message",
    [
        ({"dept": "2"}, "unknown hyperparameter 'dept'.*did you mean 'depth'"),
        ({"depth": "two"}, "bad value 'two' for 'depth': expected int"),
        ({"mode": "l1"}, "bad value 'l1' for 'mode': expected one of 'bce', 'mse'"),
        ({"betas": "0.5"}, "bad value .* for 'betas'"),
        ({"ema": "maybe"}, "expected bool"),
        ({"depth": "0"}, "depth must be > 0"),
    ],
)
def test_bad_values_are_rejected_by_name(values, message):
    with pytest.raises(UserError, match=message):
        hparams.build(HP, values)


def test_assignments_need_an_equals_sign():
    assert hparams.parse_assignments(["a=1", "b-c = x"]) == {"a": "1", "b_c": "x"}
    with pytest.raises(UserError, match="key=value"):
        hparams.parse_assignments(["lr"])
