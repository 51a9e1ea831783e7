"""The command line: fast startup, listings, and one clear line with exit code 2 per mistake."""

import json
import subprocess
import sys

import pytest
from cli_helpers import TINY_VAE, run_cli


def test_help_and_listings_do_not_import_torch():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from gencli.cli import app\n"
        "r = CliRunner()\n"
        "for args in (['--help'], ['models'], ['plugins'], ['models', '--json']):\n"
        "    assert r.invoke(app, args).exit_code == 0, args\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_models_and_plugins_as_json(cli):
    models = json.loads(cli("models", "--json").stdout)
    names = {m["name"] for m in models}
    assert {"vae", "cvae"} <= names
    plugins = json.loads(cli("plugins", "--json").stdout)
    vae = next(p for p in plugins if p["name"] == "vae")
    assert vae["status"] == "ok" and "vae" in vae["models"] and vae["distribution"] == "gencli"
    info = json.loads(cli("models", "--info", "cvae", "--json").stdout)
    assert "sample" in info["capabilities"] and any(h["name"] == "latent_dim" for h in info["hyperparameters"])


def test_version(cli):
    assert cli("--version").stdout.startswith("gencli ")


@pytest.fixture(scope="module")
def trained_vae(tmp_path_factory):
    out = tmp_path_factory.mktemp("vae") / "run"
    r = run_cli("train", "vae", "--steps", "4", "--out", str(out), *TINY_VAE)
    assert r.returncode == 0, r.stderr
    return out


BAD_INPUTS = [
    (["train", "vea"], "unknown model 'vea' (did you mean 'vae'"),
    (["train", "vae", "--data", "shapez"], "unknown dataset 'shapez' (did you mean 'shapes'"),
    (["train", "vae", "--data", "./no/such/folder"], "does not exist"),
    (["train", "vae", "--set", "latent_dimm=2"], "unknown hyperparameter 'latent_dimm'"),
    (["train", "vae", "--set", "latent_dim=two"], "bad value 'two' for 'latent_dim': expected int"),
    (["train", "vae", "--set", "lr"], "--set takes key=value"),
    (["train", "vae", "--steps", "0"], "--steps must be at least 1"),
    (["train", "vae", "--precision", "fp8"], "unknown --precision 'fp8'"),
    (["train", "vae", "--precision", "fp16", "--device", "cpu"], "fp16 needs a CUDA device"),
    (["train", "vae", "--channels", "2"], "1 or 3 channels"),
    (["train", "vae", "--sync-bn", "--devices", "2", "--device", "cpu"], "--sync-bn needs CUDA devices"),
    (["train", "vae", "--devices", "0"], "--devices must be at least 1, got 0"),
    (["train", "cvae", "--data", "shapes-unpaired"], "trains on labelled data"),
    (["train", "vae", "--config", "missing.toml"], "config file 'missing.toml' does not exist"),
    (["train"], "name a model to train"),
    (["train", "--resume", "nowhere"], "no such run directory"),
    (["sample", "nomodel"], "unknown model 'nomodel'"),
    (["sample", "vae"], "no trained run of model 'vae'"),
    (["translate"], "models that translate"),
]


@pytest.mark.parametrize("args, message", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_user_mistakes_get_one_line_and_exit_code_2(cli, args, message):
    result = cli(*args)
    assert result.exit_code == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_bad_config_files(cli, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("stepz = 3\n")
    r = cli("train", "vae", "--config", bad)
    assert r.exit_code == 2 and "unknown setting 'stepz'" in r.stderr
    bad.write_text("steps = [\n")
    r = cli("train", "vae", "--config", bad)
    assert r.exit_code == 2 and "not valid TOML" in r.stderr


def test_run_level_mistakes(cli, trained_vae, tmp_path):
    cases = [
        (["sample", str(trained_vae), "--label", "3"], "model 'vae' is not conditional"),
        (["sample", str(trained_vae), "--set", "truncation=0.5"], "unknown option 'truncation' in --set for vae sample"),
        (["sample", str(trained_vae), "--n", "0"], "--n must be at least 1"),
        (["sample", str(tmp_path)], "not a gencli run"),
        (["translate", str(trained_vae), str(tmp_path)], "cannot translate images; it can: sample"),
        (["interpolate", str(trained_vae), "--latent-grid", "4"], "needs a model with a 2-D latent"),
        (["train", "vae", "--out", str(trained_vae)], "already holds a run"),
        (["train", "--resume", str(trained_vae)], "already reached step 4 of 4"),
        (["eval", str(trained_vae), "--set", "steps=5"], "unknown option 'steps' in --set for vae eval"),
    ]
    for args, message in cases:
        r = cli(*args)
        assert r.exit_code == 2 and message in r.stderr, (args, r.stderr)


def test_debug_shows_the_traceback():
    r = run_cli("--debug", "train", "vea")
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_sample_interpolate_and_model_name_lookup(cli, trained_vae, tmp_path, monkeypatch):
    import imageio.v3 as iio

    grid = tmp_path / "grid.png"
    assert cli("sample", trained_vae, "--n", "9", "--out", grid).exit_code == 0
    img = iio.imread(grid)  # 3 x 3 images of 16 px, enlarged by a whole factor to be read
    assert img.shape[0] == img.shape[1] >= 256 and img.shape[0] % (2 + 3 * 18) == 0 and img.shape[2] == 3
    folder = tmp_path / "singles"
    assert cli("sample", trained_vae, "--n", "3", "--no-grid", "--out", folder).exit_code == 0
    assert len(list(folder.glob("*.png"))) == 3 and iio.imread(next(folder.glob("*.png"))).shape == (16, 16, 3)
    strip = tmp_path / "walk.png"
    assert cli("interpolate", trained_vae, "--frames", "5", "--out", strip).exit_code == 0
    width = iio.imread(strip).shape[1]  # five 16 px frames in a row, enlarged
    assert width % (2 + 5 * 18) == 0 and width > 2 + 5 * 18 and len(iio.imread(strip.with_suffix(".gif"), index=None)) == 8
    # a model name means its latest run under GENCLI_RUNS_DIR
    monkeypatch.setenv("GENCLI_RUNS_DIR", str(trained_vae.parent))
    assert cli("sample", "vae", "--n", "4", "--out", tmp_path / "by-name.png").exit_code == 0


def test_interpolate_between_two_images(cli, trained_vae, tmp_path):
    from PIL import Image

    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.new("RGB", (16, 16), (255, 0, 0)).save(a)
    Image.new("RGB", (16, 16), (0, 0, 255)).save(b)
    out = tmp_path / "ab.png"
    r = cli("interpolate", trained_vae, "--images", a, "--images", b, "--frames", "4", "--out", out)
    assert r.exit_code == 0, r.stderr
    r = cli("interpolate", trained_vae, "--images", a, "--frames", "4")
    assert r.exit_code == 2 and "exactly two images" in r.stderr


@pytest.mark.parametrize("args, message", [
    (["train", "vae", "--stepz", "3"], "No such option: --stepz"),
    (["train", "vae", "--steps", "many"], "Invalid value for '--steps'"),
    (["sample"], "Missing argument"),
])
def test_usage_errors_are_one_line_too(args, message):
    r = run_cli(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "--help" in lines[0], r.stderr


def test_quiet_turns_every_progress_bar_off_even_on_a_terminal(cli, monkeypatch):
    import io

    from rich.console import Console

    from gencli.ui import console
    from gencli.ui.progress import progress_bar

    monkeypatch.setattr(console, "quiet", False)
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=80)
    with progress_bar("sampling", 3, console=terminal) as advance:
        advance()
    assert "sampling" in screen.getvalue()  # drawn on a terminal...
    assert cli("--quiet", "models").exit_code == 0
    assert console.quiet is True
    screen.truncate(0)
    with progress_bar("sampling", 3, console=terminal) as advance:
        advance()
    assert screen.getvalue() == ""  # ...and not after `gencli --quiet`


def test_threads_sets_torchs_thread_count_and_is_recorded_in_the_run(tmp_path):
    for n in (1, 2):  # run_cli's environment says OMP_NUM_THREADS=1: --threads wins
        out = run_cli("--quiet", "--threads", str(n), "train", "vae", *TINY_VAE, "--steps", "2",
                      "--out", str(tmp_path / f"t{n}"))
        assert out.returncode == 0, out.stderr
        assert json.loads((tmp_path / f"t{n}" / "run.json").read_text())["threads"] == n


def test_threads_below_one_is_a_one_line_usage_error():
    out = run_cli("--threads", "0", "models")
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "--threads" in out.stderr


def test_more_processes_than_gpus_is_refused_before_anything_starts(cli, monkeypatch, tmp_path):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    result = cli("train", "vae", "--devices", "2", "--out", tmp_path / "run")
    assert result.exit_code == 2
    assert result.stderr.strip() == ("error: --devices 2 asks for more GPUs than the 1 visible; "
                                     "use at most that many, or --device cpu")
    assert not (tmp_path / "run").exists()
