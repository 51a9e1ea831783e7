"""Which value wins, setting by setting: the flags, the TOML file, the run trained on (--from), the
model's defaults and, on resume, the run's recorded values. One function decides them all
(``gencli.training.settings.resolve``); these tables are its rules.

A row names the sources that give a value and the value the settings hold; ``REFUSED`` rows name
the one line a refused combination ends in.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gencli.errors import UserError
from gencli.models import hparams
from gencli.plugins import registry
from gencli.runs import Run
from gencli.training.settings import DEFAULT_DATA, TrainConfig, resolve

VAE = registry().model_class("vae")
D = VAE.defaults
HP = hparams.to_dict(VAE.Hyperparameters())


class OnTop(VAE):
    """A two-stage model: it trains on top of another run (``--from``), like a prior over a VAE's codes."""

    name = "vae-on-top"

    @classmethod
    def train_from(cls, hp, source):
        return hp


def lookup(name: str) -> type:
    return OnTop if name == OnTop.name else registry().model_class(name)


def toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def settings_for(tmp_path: Path, flags: dict | None = None, file: dict | None = None, source: dict | None = None,
                 recorded: Run | None = None):
    """Resolve ``flags`` (as TrainConfig fields) over ``file`` (a TOML file's values; ``hyperparameters``:
    its table), over the ``source`` run (its data spec and image shape) and the model's defaults."""
    flags = dict(flags or {})
    if file is not None:
        table = dict(file)
        hyper = table.pop("hyperparameters", {})
        text = "".join(f"{k} = {toml(v)}\n" for k, v in table.items())
        text += "[hyperparameters]\n" + "".join(f"{k} = {toml(v)}\n" for k, v in hyper.items())
        path = tmp_path / "c.toml"
        path.write_text(text)
        flags["config_file"] = path
    if recorded is None and "model" not in flags and not (file or {}).get("model"):
        flags["model"] = OnTop.name if source else "vae"
    run = None
    if source is not None:
        run = Run(tmp_path / "source", {"data": {"spec": source.get("data", "mnist"),
                                                  "image_shape": source.get("image_shape", [1, 28, 28])}})
    return resolve(TrainConfig(**flags), lookup, source=run, recorded=recorded)


# ------------------------------------------------------------------------------------------ new runs
# (setting, flags, file, source, expected): the setting as the resolved settings hold it
NEW_RUN = [
    # image size and channels: flag > file > the source run > the model's default
    ("image_size", {}, None, None, D.image_size),
    ("image_size", {}, {"image_size": 16}, None, 16),
    ("image_size", {"image_size": 8}, {"image_size": 16}, None, 8),
    ("image_size", {}, None, {"image_shape": [1, 24, 24]}, 24),
    ("image_size", {}, {"image_size": 16}, {"image_shape": [1, 24, 24]}, 16),
    ("image_size", {"image_size": 8}, {"image_size": 16}, {"image_shape": [1, 24, 24]}, 8),
    ("channels", {}, None, None, D.channels),
    ("channels", {}, {"channels": 1}, None, 1),
    ("channels", {"channels": 3}, {"channels": 1}, None, 3),
    ("channels", {}, None, {"image_shape": [1, 24, 24]}, 1),
    ("channels", {"channels": 3}, None, {"image_shape": [1, 24, 24]}, 3),
    # data: flag > file > the source run's > the default for the model's kind of data
    ("data", {}, None, None, DEFAULT_DATA[VAE.data]),
    ("data", {}, {"data": "mnist"}, None, "mnist"),
    ("data", {"data": "shapes"}, {"data": "mnist"}, None, "shapes"),
    ("data", {}, None, {"data": "fashion-mnist"}, "fashion-mnist"),
    ("data", {}, {"data": "mnist"}, {"data": "fashion-mnist"}, "mnist"),
    # the model: MODEL > the file's
    ("model", {"model": None}, {"model": "vae"}, None, "vae"),
    ("model", {"model": ""}, {"model": "vae"}, None, "vae"),
    ("model", {"model": "vae"}, {"model": "dcgan"}, None, "vae"),
    # batch size: flag > file > the model's default
    ("batch_size", {}, None, None, D.batch_size),
    ("batch_size", {}, {"batch_size": 8}, None, 8),
    ("batch_size", {"batch_size": 4}, {"batch_size": 8}, None, 4),
    # run length: the command line's steps or epochs replace both of the file's
    ("steps", {}, None, None, None),
    ("steps", {}, {"steps": 7}, None, 7),
    ("steps", {"steps": 3}, {"epochs": 5}, None, 3),
    ("epochs", {"steps": 3}, {"epochs": 5}, None, None),
    ("epochs", {"epochs": 2}, {"steps": 7}, None, 2),
    ("steps", {"epochs": 2}, {"steps": 7}, None, None),
    ("default_steps", {}, None, None, D.steps),
    # seed and precision: flag > file > 0 and fp32
    ("seed", {}, None, None, 0),
    ("seed", {}, {"seed": 5}, None, 5),
    ("seed", {"seed": 7}, {"seed": 5}, None, 7),
    ("precision", {}, None, None, "fp32"),
    ("precision", {}, {"precision": "bf16"}, None, "bf16"),
    ("precision", {"precision": "fp32"}, {"precision": "bf16"}, None, "fp32"),
    # device: a flag other than auto > file > auto (the flag's default cannot be told from not given)
    ("device", {}, None, None, "auto"),
    ("device", {}, {"device": "cpu"}, None, "cpu"),
    ("device", {"device": "auto"}, {"device": "cpu"}, None, "cpu"),
    ("device", {"device": "cpu"}, {"device": "cuda"}, None, "cpu"),
    # compile: the flag or the file turns it on; neither can turn the other's off
    ("compile", {}, None, None, False),
    ("compile", {}, {"compile": True}, None, True),
    ("compile", {"compile": True}, {"compile": False}, None, True),
    ("compile", {"compile": False}, {"compile": True}, None, True),
    # intervals: flag > file > once an epoch for a run in epochs (samples) > the model's default
    ("sample_every", {}, None, None, D.sample_every),
    ("sample_every", {"epochs": 2}, None, None, "1ep"),
    ("sample_every", {}, {"sample_every": "2ep"}, None, "2ep"),
    ("sample_every", {"sample_every": "7"}, {"sample_every": 9}, None, "7"),
    ("checkpoint_every", {}, None, None, D.checkpoint_every),
    ("checkpoint_every", {"epochs": 2}, None, None, D.checkpoint_every),
    ("checkpoint_every", {}, {"checkpoint_every": 9}, None, 9),
    ("checkpoint_every", {"checkpoint_every": 3}, {"checkpoint_every": 9}, None, 3),
    ("log_every", {}, None, None, 10),
    ("log_every", {}, {"log_every": 4}, None, 4),
    ("log_every", {"log_every": 2}, {"log_every": 4}, None, 2),
    ("keep_checkpoints", {}, None, None, 3),
    ("keep_checkpoints", {}, {"keep_checkpoints": 5}, None, 5),
    ("sample_count", {}, None, None, 36),
    ("sample_count", {"sample_count": 4}, None, None, 4),
    # the quality probe: flag > file; eval_n defaults to 1000
    ("eval_every", {}, None, None, None),
    ("eval_every", {}, {"eval_every": 5}, None, 5),
    ("eval_every", {"eval_every": "1ep"}, {"eval_every": 5}, None, "1ep"),
    ("eval_n", {"eval_every": 5}, None, None, 1000),
    ("eval_n", {"eval_every": 5}, {"eval_n": 64}, None, 64),
    ("eval_n", {"eval_every": 5, "eval_n": 8}, {"eval_n": 64}, None, 8),
    # the run trained on is recorded; a run on its own names none
    ("source_run", {}, None, None, None),
]

# (hyperparameter, flags, file, expected): --lr (or the file's top-level lr) > --set > the file's table > default
HYPERPARAMETERS = [
    ("lr", {}, None, HP["lr"]),
    ("lr", {}, {"hyperparameters": {"lr": 0.01}}, 0.01),
    ("lr", {"overrides": {"lr": "0.02"}}, {"hyperparameters": {"lr": 0.01}}, 0.02),
    ("lr", {"overrides": {"lr": "0.02"}}, {"lr": 0.03, "hyperparameters": {"lr": 0.01}}, 0.03),
    ("lr", {"lr": 0.04, "overrides": {"lr": "0.02"}}, {"lr": 0.03}, 0.04),
    ("latent_dim", {}, None, HP["latent_dim"]),
    ("latent_dim", {}, {"hyperparameters": {"latent_dim": 4}}, 4),
    ("latent_dim", {"overrides": {"latent_dim": "2"}}, {"hyperparameters": {"latent_dim": 4}}, 2),
]

# (flags, file, the one line it ends in)
NEW_RUN_REFUSED = [
    ({"steps": 3, "epochs": 2}, None, "give --steps or --epochs, not both"),
    ({}, {"steps": 3, "epochs": 2}, "give --steps or --epochs, not both"),
    ({"model": None}, None, "name a model to train (see `gencli models`), or --resume RUN"),
    ({"model": None}, {"seed": 1}, "name a model to train"),
    ({"eval_features": "f.pt"}, None, "--eval-features and --eval-classifier need --eval-every"),
    ({}, {"eval_classifier": "c.pt"}, "--eval-features and --eval-classifier need --eval-every"),
    ({}, {"hyperparameters": {"latent_dim": "two"}}, "(in [hyperparameters] in '"),
    ({}, {"channels": 2}, "vae works with 1 or 3 channels, not 2"),
    ({}, {"batch_size": 0}, "batch_size = 0 in '"),
    ({}, {"no_such_setting": 1}, "unknown setting 'no_such_setting' in '"),
]


@pytest.mark.parametrize("key, flags, file, source, expected", NEW_RUN,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(NEW_RUN)])
def test_which_value_wins_for_a_new_run(tmp_path, key, flags, file, source, expected):
    assert getattr(settings_for(tmp_path, flags, file, source), key) == expected


@pytest.mark.parametrize("key, flags, file, expected", HYPERPARAMETERS,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(HYPERPARAMETERS)])
def test_which_hyperparameter_value_wins(tmp_path, key, flags, file, expected):
    s = settings_for(tmp_path, flags, file)
    assert getattr(s.hyperparameters, key) == expected
    given = set(flags.get("overrides", {})) | set((file or {}).get("hyperparameters", {}))
    if "lr" in flags or "lr" in (file or {}):
        given.add("lr")
    assert s.given_hyperparameters == given  # what a model's fit_to_data must leave alone


@pytest.mark.parametrize("flags, file, message", NEW_RUN_REFUSED, ids=[r[2][:30] for r in NEW_RUN_REFUSED])
def test_what_a_new_run_refuses(tmp_path, flags, file, message):
    with pytest.raises(UserError) as caught:
        settings_for(tmp_path, flags, file)
    assert message in str(caught.value) and len(str(caught.value).splitlines()) == 1


def test_a_run_from_another_records_it_and_the_probe_files_are_recorded_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = settings_for(tmp_path, {"eval_every": 5, "eval_features": "f.pt"}, source={"image_shape": [1, 24, 24]})
    assert s.source_run == str(tmp_path / "source") and s.model == OnTop.name and s.image_shape == (1, 24, 24)
    assert s.eval_features == str(tmp_path / "f.pt") and s.eval_classifier is None
    assert s.training_record()["eval_features"] == str(tmp_path / "f.pt")


def test_the_run_length_in_steps(tmp_path):
    assert settings_for(tmp_path, {"steps": 7}).total_steps(steps_per_epoch=3) == 7
    assert settings_for(tmp_path, {"epochs": 2}).total_steps(steps_per_epoch=3.5) == 7
    assert settings_for(tmp_path).total_steps(steps_per_epoch=3) == D.steps
    with pytest.raises(UserError, match="--epochs 1000000 is .* steps of this data, more than the"):
        settings_for(tmp_path, {"epochs": 1_000_000}).total_steps(steps_per_epoch=1000)


# ------------------------------------------------------------------------------------------ resume
def recorded_run(tmp_path: Path, **training) -> Run:
    """A run of the VAE as run.json records it: 16 px, 3 channels, batches of 8, seed 3, fp32."""
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    info = {"model": "vae", "gencli_version": "0", "hyperparameters": dict(HP, latent_dim=8), "source_run": None,
            "data": {"spec": "shapes", "image_shape": [3, 16, 16], "kind": "images"},
            "training": {"steps": 10, "epochs": None, "batch_size": 8, "seed": 3, "precision": "fp32",
                         "sample_every": 5, "checkpoint_every": 5, "log_every": 2, "keep_checkpoints": 3,
                         "sample_count": 4, **training}}
    return Run(run_dir, info)


def resumed(tmp_path: Path, flags: dict | None = None, file: dict | None = None, **training):
    run = recorded_run(tmp_path, **training)
    return settings_for(tmp_path, {"model": "", "resume": run.dir, **(flags or {})}, file, recorded=run)


# (setting, flags, file, expected): on resume the run's recorded values stand; these may change
RESUME = [
    ("image_size", {}, None, 16),
    ("image_size", {"image_size": 16}, None, 16),  # restated: not a change
    ("channels", {}, None, 3),
    ("batch_size", {"batch_size": 8}, {"batch_size": 8}, 8),
    ("seed", {}, None, 3),
    ("precision", {}, None, "fp32"),
    ("data", {"data": "shapes"}, None, "shapes"),
    ("model", {"model": "vae"}, None, "vae"),
    ("steps", {}, None, 10),
    ("steps", {"steps": 20}, None, 20),
    ("steps", {}, {"steps": 30}, 30),
    ("steps", {"steps": 20}, {"steps": 30}, 20),
    ("steps", {"epochs": 2}, None, None),  # a new length in epochs replaces the recorded steps
    ("epochs", {"epochs": 2}, None, 2),
    ("sample_every", {}, None, 5),
    ("sample_every", {"sample_every": "1ep"}, None, "1ep"),
    ("checkpoint_every", {}, {"checkpoint_every": 7}, 7),
    ("log_every", {}, None, 2),
    ("log_every", {}, {"log_every": 1}, 1),
    ("keep_checkpoints", {"keep_checkpoints": 6}, None, 6),
    ("device", {}, None, "auto"),  # a run does not keep its device or compile: this command's stand
    ("device", {"device": "cpu"}, None, "cpu"),
    ("compile", {}, {"compile": True}, True),
    ("sample_count", {"sample_count": 36}, None, 4),  # recorded
    ("eval_every", {"eval_every": 5}, None, None),  # the probe is the run's: not added on resume
]

# (flags, file, the one line it ends in): what made the run cannot change on resume
RESUME_REFUSED = [
    ({"image_size": 32}, None, "--image-size cannot change on --resume: the run trained at 16 px"),
    ({}, {"image_size": 32}, "--image-size cannot change on --resume"),
    ({"channels": 1}, None, "--channels cannot change on --resume: the run trained on 3 channel(s)"),
    ({"batch_size": 4}, None, "--batch-size cannot change on --resume: the run trained with batches of 8"),
    ({}, {"batch_size": 4}, "--batch-size cannot change on --resume"),
    ({"seed": 0}, None, "--seed cannot change on --resume: the run trained with seed 3"),
    ({}, {"seed": 4}, "--seed cannot change on --resume"),
    ({"precision": "bf16"}, None, "--precision cannot change on --resume: the run trained in fp32"),
    ({"data": "mnist"}, None, "--data cannot change on --resume: the run trained on 'shapes'"),
    ({"model": "dcgan"}, None, "MODEL cannot change on --resume: the run trains 'vae'"),
    ({}, {"model": "dcgan"}, "MODEL cannot change on --resume"),
    ({"lr": 0.5}, None, "--lr cannot change on --resume"),
    ({}, {"lr": 0.5}, "--lr cannot change on --resume"),
    ({"overrides": {"latent_dim": "2"}}, None, "--set latent_dim cannot change on --resume: the run trained with latent_dim=8"),
    ({}, {"hyperparameters": {"beta": 2.0}}, "--set beta cannot change on --resume"),
    ({"source": "runs/other"}, None, "--from cannot change on --resume: the run trained on top of 'no other run'"),
    ({"out": Path("elsewhere")}, None, "--out cannot be combined with --resume"),
    ({"steps": 20, "epochs": 2}, None, "give --steps or --epochs, not both"),
]


@pytest.mark.parametrize("key, flags, file, expected", RESUME, ids=[f"{r[0]}-{i}" for i, r in enumerate(RESUME)])
def test_which_value_wins_on_resume(tmp_path, key, flags, file, expected):
    assert getattr(resumed(tmp_path, flags, file), key) == expected


@pytest.mark.parametrize("flags, file, message", RESUME_REFUSED, ids=[r[2][:30] for r in RESUME_REFUSED])
def test_what_cannot_change_on_resume(tmp_path, flags, file, message):
    with pytest.raises(UserError) as caught:
        resumed(tmp_path, flags, file)
    assert message in str(caught.value) and len(str(caught.value).splitlines()) == 1


def test_a_resume_builds_the_recorded_hyperparameters_and_restating_one_is_no_change(tmp_path):
    s = resumed(tmp_path, {"overrides": {"latent_dim": "8"}, "lr": HP["lr"]})
    assert hparams.to_dict(s.hyperparameters) == hparams.to_dict(VAE.Hyperparameters(**dict(HP, latent_dim=8)))
    assert s.given_hyperparameters == frozenset()  # only new runs are fitted to their data


def test_a_resume_records_only_what_it_changed(tmp_path):
    s = resumed(tmp_path, {"steps": 20, "sample_every": 5, "checkpoint_every": 1, "keep_checkpoints": 3},
                {"log_every": 1})
    assert s.changes == {"steps": 20, "checkpoint_every": 1, "log_every": 1}
    assert resumed(tmp_path, {"steps": 10, "image_size": 16, "seed": 3}).changes == {}
    assert resumed(tmp_path, {"epochs": 2}).changes == {"steps": None, "epochs": 2}


# ------------------------------------------------------------------------------------------ end to end
def test_the_command_line_and_a_config_file_reach_run_json_by_the_same_rules(cli, tmp_path):
    import json

    config = tmp_path / "c.toml"
    config.write_text('model = "vae"\ndata = "shapes"\nimage_size = 8\nbatch_size = 4\nseed = 5\nsteps = 9\n'
                      'device = "cpu"\nlog_every = 1\n[hyperparameters]\nwidths = [8, 8]\nlatent_dim = 4\n')
    result = cli("--quiet", "train", "--config", config, "--steps", "2", "--seed", "7", "--set", "latent_dim=2",
                 "--out", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    t = info["training"]
    assert (t["steps"], t["seed"], t["batch_size"], t["log_every"], info["device"]) == (2, 7, 4, 1, "cpu")
    assert info["data"]["image_shape"] == [3, 8, 8]
    assert info["hyperparameters"]["latent_dim"] == 2 and info["hyperparameters"]["widths"] == [8, 8]
    # on resume the file is asked for as the flags are: its seed is not the run's, and is refused, run.json unchanged
    before = (tmp_path / "run" / "run.json").read_text()
    result = cli("train", "--resume", tmp_path / "run", "--config", config, "--steps", "3")
    assert result.exit_code == 2 and "--seed cannot change on --resume: the run trained with seed 7" in result.stderr
    assert (tmp_path / "run" / "run.json").read_text() == before
    # the flags restating the run's seed and latent_dim win over the file's
    result = cli("--quiet", "train", "--resume", tmp_path / "run", "--config", config, "--steps", "3", "--seed", "7",
                 "--set", "latent_dim=2")
    assert result.exit_code == 0, result.stderr
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["step"] == 3 and info["resumes"][0]["changed"] == {"steps": 3}


# ------------------------------------------------------------------------------------------ imports
def test_sample_translate_and_eval_do_not_load_the_training_engine(tmp_path):
    from gencli.training.engine import TrainConfig as EngineConfig
    from gencli.training.engine import train

    run = train(EngineConfig(model="vae", data="shapes", steps=1, image_size=8, batch_size=4, device="cpu",
                             overrides={"widths": "8,8"}, out=tmp_path / "run", quiet=True, sample_count=4))
    code = f"""
import sys
import gencli.cli.eval, gencli.cli.sample, gencli.cli.translate
from typer.testing import CliRunner
from gencli.cli import app
result = CliRunner().invoke(app, ["sample", {str(run)!r}, "-n", "2", "--device", "cpu", "--out", {str(tmp_path / "s.png")!r}])
assert result.exit_code == 0, result.output
loaded = sorted(m for m in sys.modules if m.startswith("gencli.training."))
assert "gencli.training.engine" not in sys.modules, loaded
assert "gencli.training.planning" not in sys.modules, loaded
print("ok", loaded)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout
    assert (tmp_path / "s.png").exists()
