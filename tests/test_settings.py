"""Training settings: one table of rules for flags and TOML keys; what a resume may change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gencli.errors import UserError
from gencli.models import hparams
from gencli.training import settings
from gencli.training.engine import TrainConfig, merge_config_file, train


@pytest.mark.parametrize("key, value, problem", [
    ("steps", "five", "must be a whole number"),
    ("steps", 3.5, "must be a whole number"),
    ("batch_size", True, "not true or false"),
    ("keep_checkpoints", -1, "must be at least 1"),
    ("log_every", 0, "must be at least 1"),
    ("seed", 2**63, "must be from 0 to"),
    ("seed", -1, "must be from 0 to"),
    ("image_size", 5000, "must be from 1 to 4,096"),
    ("model", 5, "must be a string"),
    ("data", ["a"], "must be a string"),
    ("data", "  ", "must not be blank"),
    ("device", 7, "must be a string"),
    ("device", "gpu", "must be auto, cpu, cuda, cuda:N or mps"),
    ("precision", "fp8", "must be one of fp32, bf16, fp16"),
    ("lr", 0, "must be greater than 0"),
    ("lr", float("nan"), "must be a finite number"),
    ("compile", "yes", "must be true or false"),
])
def test_every_rule_is_in_the_table(key, value, problem):
    assert problem in settings.problem(settings.SETTINGS[key], value)


@pytest.mark.parametrize("key, value", [("steps", 3), ("lr", 1), ("lr", 2e-4), ("device", "cuda:1"), ("seed", 0),
                                        ("seed", 2**63 - 1), ("compile", True), ("data", "shapes,mnist")])
def test_good_values_pass(key, value):
    assert settings.problem(settings.SETTINGS[key], value) is None


def test_flags_and_file_keys_are_named_as_the_user_wrote_them(tmp_path):
    with pytest.raises(UserError, match=r"^--batch-size must be at least 1, got 0$"):
        settings.check_flag("batch_size", 0)
    with pytest.raises(UserError, match=r"^unknown --precision 'fp8': use one of fp32, bf16, fp16$"):
        settings.check_flag("precision", "fp8")
    config = tmp_path / "c.toml"
    config.write_text("keep_checkpoints = 0\n")
    with pytest.raises(UserError, match=r"^keep_checkpoints = 0 in '.*c.toml': must be at least 1$"):
        merge_config_file({"overrides": {}}, config)
    config.write_text("model = 5\n")
    with pytest.raises(UserError, match=r"model = 5 in .*: must be a string \(as for MODEL\)"):
        merge_config_file({"overrides": {}}, config)


def test_compile_from_a_config_file_comes_back_for_the_caller_to_pass_once(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('model = "vae"\ncompile = true\nlr = 1\n')
    merged = merge_config_file({"overrides": {}}, config)
    assert merged["compile"] is True and merged["lr"] == 1.0 and isinstance(merged["lr"], float)
    flag = False
    cfg = TrainConfig(compile=merged.pop("compile", flag) or flag, **merged)  # what the command line does with it
    assert cfg.compile is True


def test_hyperparameter_errors_name_where_the_value_came_from(tmp_path):
    from gencli.plugins import registry

    cls = registry().model("vae").load()
    config = tmp_path / "c.toml"
    config.write_text('[hyperparameters]\nlatent_dim = "two"\nbeta = 2.0\n')
    merged = merge_config_file({"overrides": {"beta": "3"}}, config)
    assert merged["override_sources"] == {"latent_dim": f"[hyperparameters] in {str(config)!r}"}  # beta: --set wins
    with pytest.raises(UserError, match=r"expected int \(in \[hyperparameters\] in '.*c.toml'\)$"):
        hparams.build(cls.Hyperparameters, merged["overrides"], merged["override_sources"])
    with pytest.raises(UserError, match="unknown hyperparameter 'from_run' in --from"):
        hparams.build(cls.Hyperparameters, {"from_run": "x"}, {"from_run": "--from"})
    with pytest.raises(UserError, match="in --set"):
        hparams.build(cls.Hyperparameters, {"betta": "1"})


# ----------------------------------------------------------------------------- resume


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("resume")
    return train(TrainConfig(model="vae", data="shapes", steps=2, image_size=16, batch_size=8, out=root / "run",
                             overrides={"widths": "8,16"}, quiet=True, sample_count=4))


def test_a_resume_may_change_its_length_and_intervals_and_run_json_records_it(finished_run, tmp_path):
    import shutil

    run = Path(shutil.copytree(finished_run, tmp_path / "run"))
    # The run's own values, restated, are not changes.
    train(TrainConfig(model="vae", data="shapes", image_size=16, batch_size=8, overrides={"widths": "8,16"},
                      resume=run, steps=3, sample_every=50, checkpoint_every=1, keep_checkpoints=5,
                      quiet=True, sample_count=4))
    info = json.loads((run / "run.json").read_text())
    t = info["training"]
    assert (t["steps"], t["sample_every"], t["checkpoint_every"], t["keep_checkpoints"]) == (3, 50, 1, 5)
    assert info["step"] == 3 and info["status"] == "finished"
    (resume,) = info["resumes"]
    assert resume["step"] == 2 and resume["device"] == "cpu"
    assert resume["changed"] == {"steps": 3, "sample_every": 50, "checkpoint_every": 1, "keep_checkpoints": 5}


@pytest.mark.parametrize("change, message", [
    ({"model": "dcgan"}, "MODEL cannot change on --resume: the run trains 'vae'"),
    ({"data": "shapes-paired"}, "--data cannot change on --resume: the run trained on 'shapes'"),
    ({"image_size": 32}, "--image-size cannot change on --resume: the run trained at 16 px"),
    ({"channels": 1}, "--channels cannot change on --resume"),
    ({"batch_size": 4}, "--batch-size cannot change on --resume: the run trained with batches of 8"),
    ({"lr": 0.5}, "--lr cannot change on --resume"),
    ({"overrides": {"latent_dim": "2"}}, "--set latent_dim cannot change on --resume: the run trained with latent_dim=16"),
    ({"precision": "bf16"}, "--precision cannot change on --resume: the run trained in fp32"),
    ({"seed": 5}, "--seed cannot change on --resume: the run trained with seed 0"),
    ({"out": Path("elsewhere")}, "--out cannot be combined with --resume"),
])
def test_what_made_the_run_cannot_change_on_resume(finished_run, tmp_path, change, message):
    import shutil

    run = Path(shutil.copytree(finished_run, tmp_path / "run"))
    before = (run / "run.json").read_text()
    with pytest.raises(UserError) as caught:
        train(TrainConfig(**{"model": "", "resume": run, "steps": 4, "quiet": True, **change}))
    assert message in str(caught.value) and len(str(caught.value).splitlines()) == 1
    assert (run / "run.json").read_text() == before


def test_a_link_to_a_missing_file_in_a_data_folder_is_skipped_and_named(tmp_path, capsys):
    from PIL import Image

    from gencli.data.base import DataRequest
    from gencli.data.folders import load_folder

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8), (i * 60, 0, 0)).save(folder / f"{i}.png")
    (folder / "gone.png").symlink_to(tmp_path / "deleted.png")
    data = load_folder(folder, DataRequest(8, 3))
    assert len(data.images) == 3
    assert "link(s) to missing files" in capsys.readouterr().err


def test_a_folder_linking_back_up_the_tree_is_read_once(tmp_path):
    from PIL import Image

    from gencli.data.cache import fingerprint
    from gencli.data.folders import scan_folder

    folder = tmp_path / "images"
    (folder / "a").mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (8, 8)).save(folder / "a" / f"{i}.png")
    (folder / "a" / "loop").symlink_to(folder, target_is_directory=True)
    assert len(scan_folder(folder, "train", recursive=True).files) == 3
    assert fingerprint(folder).startswith("3:")
