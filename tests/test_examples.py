"""Every examples/*.toml loads as `gencli train --config` reads it and fits the model it names, without training.

A config whose model is not installed is skipped, saying so. Shell scripts in examples/ are
checked for syntax and for naming only configs that exist.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from gencli.errors import UserError
from gencli.models import hparams
from gencli.plugins import registry
from gencli.training.engine import CONFIG_KEYS, merge_config_file

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CONFIGS = sorted(EXAMPLES.glob("*.toml"))
SCRIPTS = sorted(EXAMPLES.glob("*.sh"))


def _model_class(name: str):
    if name not in registry().models:
        pytest.skip(f"model {name!r} is not installed (its plugin has not landed or does not import)")
    try:
        return registry().models[name].load()
    except Exception as exc:
        pytest.skip(f"model {name!r} does not import yet: {type(exc).__name__}: {exc}")


def test_there_are_examples():
    assert len(CONFIGS) >= 8 and SCRIPTS


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_fits_its_model(path):
    from gencli.data.resolve import COMPATIBLE

    values = merge_config_file({"overrides": {}}, path)  # refuses unknown top-level settings
    assert set(values) - {"overrides", "override_sources"} <= set(CONFIG_KEYS)
    assert values.get("model"), f"{path.name} names no model"
    cls = _model_class(values["model"])
    overrides = dict(values["overrides"])
    if "lr" in values:
        overrides["lr"] = values["lr"]
    if "from_run" in hparams.fields(cls.Hyperparameters):
        overrides.setdefault("from_run", "RUN")  # given on the command line with --from
    hparams.build(cls.Hyperparameters, overrides, source=path.name)  # unknown keys, bad values, validate()
    cls.check_shape(values.get("image_size", cls.defaults.image_size), values.get("channels", cls.defaults.channels))
    assert not ("steps" in values and "epochs" in values), f"{path.name}: give steps or epochs, not both"

    data = values.get("data")
    assert data, f"{path.name} names no data set"
    for name in data.split(","):
        spec = registry().datasets.get(name.strip())
        assert spec is not None, f"{path.name}: unknown dataset {name!r}"
        if "," not in data:
            assert spec.kind in COMPATIBLE[cls.data], f"{path.name}: {cls.name} trains on {cls.data} data, {name} is {spec.kind}"


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_says_how_to_run_it(path):
    header = "".join(line for line in path.read_text().splitlines(True) if line.startswith("#"))
    assert "gencli train" in header and f"--config examples/{path.name}" in header, \
        f"{path.name} must start with comments giving its command lines"
    assert path.name in (EXAMPLES / "README.md").read_text(), f"examples/README.md does not list {path.name}"


def test_a_config_with_a_wrong_hyperparameter_is_refused(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('model = "vae"\n[hyperparameters]\nlatent_dimm = 2\n')
    values = merge_config_file({"overrides": {}}, bad)
    with pytest.raises(UserError, match="unknown hyperparameter 'latent_dimm' in bad.toml"):
        hparams.build(_model_class("vae").Hyperparameters, values["overrides"], source=bad.name)


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_script_is_valid_bash_and_uses_existing_configs(path):
    subprocess.run(["bash", "-n", str(path)], check=True)
    text = path.read_text()
    for config in re.findall(r"examples/([\w.-]+\.toml)", text):
        assert (EXAMPLES / config).exists(), f"{path.name} uses examples/{config}, which does not exist"
    assert path.name in (EXAMPLES / "README.md").read_text(), f"examples/README.md does not list {path.name}"


@pytest.mark.parametrize("name", ["gan-vs-wgan-mnist.sh", "gan-vs-wgan-fashion-mnist.sh", "instance-noise.sh"])
def test_fid_scripts_pass_a_feature_network_or_skip_evaluation_with_a_note(name, tmp_path):
    # A stand-in gencli that records its arguments and fails every `eval` without --features,
    # as the real one does on a machine without the Inception weights.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.txt"
    shim = bin_dir / "gencli"
    shim.write_text(f'#!/usr/bin/env bash\necho "$*" >> {log}\n'
                    'if [[ "$1" == eval && "$*" != *--features* && "$*" != *--compare* ]]; then '
                    'echo "error: fid needs the Inception weights" >&2; exit 2; fi\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "RUNS": str(tmp_path / "runs"),
           "EPOCHS": "1", "STEPS": "1"}
    offline = subprocess.run(["bash", str(EXAMPLES / name)], env=env, capture_output=True, text=True)
    assert offline.returncode == 0, offline.stderr
    assert "note:" in offline.stderr and "FEATURES=net.pt" in offline.stderr
    assert "eval --compare" in log.read_text()  # it went on to the end
    log.unlink()
    featured = subprocess.run(["bash", str(EXAMPLES / name)], env={**env, "FEATURES": "net.pt"},
                              capture_output=True, text=True)
    assert featured.returncode == 0 and "note:" not in featured.stderr
    evals = [line for line in log.read_text().splitlines() if line.startswith("eval ") and "--compare" not in line]
    assert evals and all(line.endswith("--features net.pt") for line in evals)
