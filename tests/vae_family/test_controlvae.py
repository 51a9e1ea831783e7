"""ControlVAE: the PI controller, KL tracking on the built-in shapes, exact resume, bad settings."""

import json
from pathlib import Path

import pytest
import torch

from gencli.errors import UserError
from gencli.models import hparams
from gencli.training.engine import TrainConfig, train
from gencli_vae.controlvae import ControlVAE, pi_step

GAINS = dict(target=10.0, kp=0.01, ki=0.001, beta_min=1.0, beta_max=50.0)


def _run_controller(kls, integral=0.0, **gains):
    """Feed a KL sequence to the controller; return the betas and the final integral."""
    g = {**GAINS, **gains}
    integral = torch.tensor(float(integral))
    betas = []
    for kl in kls:
        beta, integral = pi_step(torch.tensor(float(kl)), integral, **g)
        betas.append(float(beta))
    return betas, float(integral)


def test_beta_rises_while_kl_is_above_target_and_falls_when_below():
    up, integral = _run_controller([20.0] * 50)
    assert all(b2 > b1 for b1, b2 in zip(up, up[1:]))
    # 50 steps of error -10 with Ki 0.001: the integral is 0.5, the P term at most Kp.
    assert integral == pytest.approx(0.5, rel=1e-5)
    assert up[-1] == pytest.approx(1.0 + 0.5 + 0.01 / (1 + torch.exp(torch.tensor(-10.0)).item()), rel=1e-5)
    down, _ = _run_controller([5.0] * 20, integral=integral)
    assert all(b2 < b1 for b1, b2 in zip(down, down[1:]))


def test_the_integral_does_not_wind_up_while_beta_sits_at_its_lower_bound():
    # A long stretch below the target (early training) keeps beta at beta_min ...
    betas, integral = _run_controller([2.0] * 500)
    assert max(betas) == pytest.approx(1.0, abs=0.011) and min(betas) >= 1.0
    # ... without storing error: a plain integrator would hold -4 here and need ~400 steps to recover.
    assert integral > -0.05
    after, _ = _run_controller([15.0] * 3, integral=integral)
    assert after[-1] > after[0] > 1.0


def test_the_integral_does_not_wind_up_past_beta_max():
    betas, integral = _run_controller([500.0] * 200, beta_max=2.0)
    assert max(betas) == pytest.approx(2.0)
    assert integral <= 1.0 + 0.49 + 1e-6  # stopped where beta reached its bound
    # once the KL drops below the target, beta leaves the bound at once
    after, _ = _run_controller([1.0] * 3, integral=integral, beta_max=2.0)
    assert after[0] < 2.0 and after[2] < after[0]


@pytest.mark.parametrize(
    "values, message",
    [
        ({"kl_target": "0"}, "kl_target must be > 0"),
        ({"kl_target": "-3"}, "kl_target must be > 0"),
        ({"beta_min": "10", "beta_max": "2"}, "beta bounds are reversed"),
        ({"beta_min": "5", "beta_max": "5"}, "beta bounds are reversed or empty"),
        ({"ki": "0"}, "ki must be > 0"),
        ({"beta": "4"}, "controlvae sets beta itself"),
    ],
)
def test_meaningless_settings_are_refused(values, message):
    with pytest.raises(UserError, match=message):
        hparams.build(ControlVAE.Hyperparameters, values)


def test_the_cli_refuses_a_non_positive_target_and_reversed_bounds(cli, tmp_path):
    r = cli("train", "controlvae", "--set", "kl_target=0", "--out", tmp_path / "a")
    assert r.exit_code == 2 and "kl_target must be > 0" in r.stderr
    r = cli("train", "controlvae", "--set", "beta_min=50", "--set", "beta_max=1", "--out", tmp_path / "b")
    assert r.exit_code == 2 and "beta bounds are reversed" in r.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# --------------------------------------------------------------- training through the engine
TRACKING = dict(model="controlvae", data="shapes", image_size=16, batch_size=32, quiet=True, log_every=10)
SMALL = {"widths": "16,32"}


def _rows(run: Path) -> list[dict]:
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "step" in r]


@pytest.fixture(scope="module")
def tracking_runs(tmp_path_factory):
    """Two short runs with KL targets 4 and 8, both below the KL of this network at beta = 1 (about 11).

    The integral gain is raised from the paper's 0.001 to 0.01 so the controller settles within a
    few hundred steps instead of a few thousand.
    """
    root = tmp_path_factory.mktemp("controlvae")
    torch.set_num_threads(1)
    runs = {}
    for target in (4, 8):
        runs[target] = train(TrainConfig(steps=400, sample_every=400, checkpoint_every=400, out=root / f"kl{target}",
                                         overrides={**SMALL, "kl_target": target, "ki": 0.01}, **TRACKING))
    return runs


def test_the_kl_settles_near_each_target(tracking_runs):
    settled = {}
    for target, run in tracking_runs.items():
        rows = _rows(run)
        assert {"kl", "beta", "recon", "loss"} <= set(rows[-1])
        tail = [r for r in rows if r["step"] > 300]
        kl = sum(r["kl"] for r in tail) / len(tail)
        assert abs(kl - target) < 0.1 * target, (target, kl)
        # the controller had to push: beta sits above its floor, so the target is below the beta=1 KL
        assert tail[-1]["beta"] > 1.1, (target, tail[-1]["beta"])
        settled[target] = (kl, tail[-1]["beta"])
    # a lower target is held by a larger beta
    assert settled[4][0] < settled[8][0] and settled[4][1] > settled[8][1]


def test_eval_plots_kl_and_beta_against_the_target(tracking_runs, cli):
    run = tracking_runs[8]
    r = cli("eval", run, "--metrics", "mse", "--device", "cpu", "--json")
    assert r.exit_code == 0, r.stderr
    figure = run / "eval" / "kl-control.png"
    assert figure.is_file() and str(figure) in json.loads(r.stdout)["figures"]


def test_a_resumed_run_continues_the_same_beta_sequence(tmp_path):
    base = dict(TRACKING, log_every=1, sample_every=100, overrides={**SMALL, "kl_target": 2, "ki": 0.01})
    straight = train(TrainConfig(steps=24, checkpoint_every=12, out=tmp_path / "straight", **base))
    first = train(TrainConfig(steps=12, checkpoint_every=12, out=tmp_path / "split", **base))
    resumed = train(TrainConfig(model="", resume=first, steps=24, quiet=True))
    a, b = _rows(straight), _rows(resumed)
    assert [r["step"] for r in a] == [r["step"] for r in b] == list(range(1, 25))
    betas = [r["beta"] for r in a]
    assert betas[-1] > betas[0]  # the controller was moving, so a reset would show
    assert betas == [r["beta"] for r in b]
    assert [r["kl"] for r in a] == [r["kl"] for r in b]
