"""Sampling and checkpoint intervals in steps (500) or epochs (2ep)."""

import json

import pytest

from gencli.errors import UserError
from gencli.training.engine import TrainConfig, train
from gencli.training.intervals import interval_steps, parse_interval


@pytest.mark.parametrize("value, parsed", [
    (500, ("steps", 500)), ("500", ("steps", 500)), ("2ep", ("epochs", 2)), (" 3 ep ", ("epochs", 3)),
    ("1epoch", ("epochs", 1)), ("4EP", ("epochs", 4)), ("10steps", ("steps", 10)),
])
def test_intervals_are_steps_or_epochs(value, parsed):
    assert parse_interval(value) == parsed


@pytest.mark.parametrize("value", ["0", "0ep", "-2", "2e", "ep", "1.5ep", "", True])
def test_bad_intervals_are_refused_naming_the_option(value):
    with pytest.raises(UserError, match="--sample-every"):
        parse_interval(value, "--sample-every")


def test_epochs_convert_with_the_steps_an_epoch_takes():
    assert interval_steps("2ep", 156) == 312
    assert interval_steps("1ep", 12.5) == 12 and interval_steps("1ep", 0.2) == 1
    assert interval_steps(40, 156) == 40


def _config(tmp_path, **kw):
    settings = {"model": "vae", "data": "shapes", "image_size": 16, "channels": 3, "batch_size": 1000,
                "overrides": {"widths": "8,16", "latent_dim": "4"}, "out": tmp_path / "run", "quiet": True,
                "device": "cpu", "checkpoint_every": 1000}
    return TrainConfig(**{**settings, **kw})


def test_an_epochs_run_samples_once_an_epoch_by_default_and_intervals_in_epochs_work(tmp_path):
    # 10,000 shapes in batches of 1,000: 10 steps an epoch.
    run = train(_config(tmp_path, epochs=2))
    assert sorted(p.name for p in (run / "samples").glob("*.png")) == ["step-00000010.png", "step-00000020.png"]
    assert json.loads((run / "run.json").read_text())["training"]["sample_every"] == "1ep"
    run = train(_config(tmp_path, steps=12, sample_every="1ep", checkpoint_every="1ep", out=tmp_path / "steps"))
    assert [p.name for p in sorted((run / "checkpoints").glob("step-*"))] == ["step-00000010", "step-00000012"]
    with pytest.raises(UserError, match="sample-every must be a number of steps"):
        train(_config(tmp_path, steps=2, sample_every="often", out=tmp_path / "bad"))
