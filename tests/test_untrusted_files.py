"""Files a user hands us are never trusted: loading them runs no code and reads nothing outside their folder."""

from __future__ import annotations

import io
import json
import pickle
import warnings
import zipfile
from pathlib import Path

import pytest
import torch

from gencli.errors import UserError


class _WritesMarker:
    """Unpickling this creates a file: the stand-in for any code a pickle could run."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _rewrite_zip(src: Path, dst: Path, replace: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            for suffix, new in replace.items():
                if info.filename.endswith(suffix):
                    data = new
            zout.writestr(info, data)
    return dst


@pytest.fixture(scope="module")
def scripted(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ts") / "net.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(torch.nn.Linear(2, 3)).save(str(path))
    return path


def _assert_refused(path: Path, marker: Path, *expected: str) -> None:
    from gencli.metrics.features import load_user_network

    with pytest.raises(UserError) as caught:
        load_user_network(path, "--features")
    message = str(caught.value)
    assert not marker.exists(), "loading the file ran its payload"
    assert len(message.splitlines()) == 1 and str(path) in message and "TorchScript" in message, message
    for text in expected:
        assert text in message, message


@pytest.mark.parametrize("member", ["data.pkl", "constants.pkl"])
def test_a_torchscript_file_whose_pickle_calls_a_function_is_refused_unrun(scripted, tmp_path, member):
    marker = tmp_path / "marker"
    evil = _rewrite_zip(scripted, tmp_path / "evil.pt", {f"/{member}": pickle.dumps(_WritesMarker(marker), protocol=2)})
    _assert_refused(evil, marker, "io.open")


def test_a_pickle_that_builds_its_global_from_the_stack_is_refused(scripted, tmp_path):
    marker = tmp_path / "marker"
    evil = _rewrite_zip(scripted, tmp_path / "evil.pt", {"/data.pkl": pickle.dumps(_WritesMarker(marker), protocol=4)})
    _assert_refused(evil, marker)


def test_a_torch_export_program_with_a_pickled_weight_never_runs_it(tmp_path):
    marker = tmp_path / "marker"
    program = torch.export.export(torch.nn.Linear(2, 3), (torch.ones(1, 2),))
    plain = tmp_path / "net.pt2"
    torch.export.save(program, str(plain))
    with zipfile.ZipFile(plain) as zf:
        config_name = next(n for n in zf.namelist() if n.endswith("model_weights_config.json"))
        config = json.loads(zf.read(config_name))
    first = next(iter(config["config"].values()))
    first["use_pickle"] = True  # torch.export.load then hands this weight to Python's pickle
    payload = io.BytesIO()
    pickle.dump(_WritesMarker(marker), payload, protocol=2)
    evil = _rewrite_zip(plain, tmp_path / "evil.pt2", {"model_weights_config.json": json.dumps(config).encode(),
                                                        f"weights/{first['path_name']}": payload.getvalue()})
    _assert_refused(evil, marker, "torch.export program")
    _assert_refused(plain, marker, "torch.export program")


def test_plain_torchscript_still_loads_and_other_files_get_one_line(scripted, tmp_path):
    from gencli.metrics.features import load_user_network

    net = load_user_network(scripted, "--features")
    assert net(torch.ones(1, 2)).shape == (1, 3)
    weights = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(3)}, weights)  # a zip too, but no network in it
    _assert_refused(weights, tmp_path / "marker", "is not a TorchScript file")
    with pytest.raises(UserError, match="is a folder"):
        load_user_network(tmp_path, "--classifier")


# ----------------------------------------------------------------------------- a run's own files


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    from gencli.training.engine import TrainConfig, train

    root = tmp_path_factory.mktemp("runs")
    tiny = dict(model="vae", data="shapes", steps=2, image_size=16, batch_size=8, overrides={"widths": "8,16"},
                quiet=True)
    return train(TrainConfig(out=root / "mine", **tiny)), train(TrainConfig(out=root / "other", seed=1, **tiny))


@pytest.fixture
def runs(two_runs, tmp_path) -> tuple[Path, Path]:
    """Fresh copies of both runs, side by side, for a test to tamper with."""
    import shutil

    return tuple(Path(shutil.copytree(run, tmp_path / run.name, symlinks=True)) for run in two_runs)


def _refuses_everywhere(run: Path, *expected: str) -> None:
    from gencli.runs import checkpoints as ckpt
    from gencli.runs import load_trained
    from gencli.training.engine import TrainConfig, train

    for attempt in (lambda: ckpt.latest_checkpoint(run), lambda: load_trained(str(run)),
                    lambda: train(TrainConfig(model="", resume=run, steps=4, quiet=True))):
        with pytest.raises(UserError) as caught:
            attempt()
        message = str(caught.value)
        assert len(message.splitlines()) == 1 and "refusing" in message, message
        for text in expected:
            assert text in message, message


def test_a_latest_pointer_naming_another_run_is_refused(runs):
    mine, other = runs
    (mine / "checkpoints" / "latest").write_text("../../other/checkpoints/step-00000002")
    _refuses_everywhere(mine, "../../other/checkpoints/step-00000002", "latest")


def test_a_checkpoint_that_links_to_another_run_is_refused(runs):
    mine, other = runs
    own = mine / "checkpoints" / "step-00000002"
    import shutil

    shutil.rmtree(own)
    own.symlink_to(other / "checkpoints" / "step-00000002", target_is_directory=True)
    _refuses_everywhere(mine, str(own))


@pytest.mark.parametrize("member", ["weights.safetensors", "state.pt"])
def test_checkpoint_files_that_link_to_another_run_are_refused(runs, member):
    mine, other = runs
    own = mine / "checkpoints" / "step-00000002" / member
    own.unlink()
    own.symlink_to(other / "checkpoints" / "step-00000002" / member)
    _refuses_everywhere(mine, member)


def test_a_checkpoints_folder_that_links_to_another_run_is_refused(runs):
    import shutil

    mine, other = runs
    shutil.rmtree(mine / "checkpoints")
    (mine / "checkpoints").symlink_to(other / "checkpoints", target_is_directory=True)
    _refuses_everywhere(mine, "leads outside the run")


def test_a_run_reached_through_a_linked_folder_still_loads(runs, tmp_path):
    from gencli.runs import checkpoints as ckpt

    mine, _ = runs
    alias = tmp_path / "alias"
    alias.symlink_to(mine, target_is_directory=True)
    assert ckpt.latest_checkpoint(alias) == alias / "checkpoints" / "step-00000002"
