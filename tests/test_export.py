"""`gencli export`: each family's network as TorchScript and ONNX matches the model; the contract,
the diffusion example script, and the refusals (an existing --out, a model that cannot export, no onnx)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")  # TorchScript's deprecation notice

# Max abs difference allowed between the exported network and the model, fp32, images in [-1, 1].
TOLERANCE = 1e-4

# One tiny model of each built-in family: (model, data, hyperparameters).
FAMILIES = {
    "cgan": ("shapes", {"g_width": 8, "d_width": 8, "z_dim": 16}),
    "stylegan": ("shapes", {"z_dim": 16, "w_dim": 16, "mapping_layers": 2, "channels_max": 16}),
    "cvae": ("shapes", {"widths": "8,16", "latent_dim": 4}),
    "vqvae": ("shapes", {"codebook_size": 16, "code_dim": 8, "hidden": 16, "res_hidden": 8, "res_blocks": 1}),
    "cyclegan": ("shapes-unpaired", {"ngf": 4, "ndf": 4, "blocks": 1}),
    "ddpm": ("shapes", {"base_width": 8, "channel_mults": "1,2", "res_blocks": 1, "timesteps": 20, "sampling_steps": 5}),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Tiny trained runs (16 px, one step), made once for the module."""
    from gencli.training.engine import TrainConfig, train

    root = tmp_path_factory.mktemp("export-runs")
    made = {}
    for name, (data, overrides) in FAMILIES.items():
        made[name] = train(TrainConfig(model=name, data=data, steps=1, image_size=16, batch_size=4, overrides=overrides,
                                       quiet=True, sample_count=4, out=root / name))
    return made


def reference(model, name: str, inputs: list[torch.Tensor], direction: str = "a2b") -> torch.Tensor:
    """What gencli's own model computes for the exported network's inputs (through its public methods)."""
    with torch.no_grad():
        if name == "cgan":
            return model.generate(*inputs)
        if name == "stylegan":
            return model.generate(inputs[0], space="z", truncation=float(inputs[1]), noise="const")
        if name in ("cvae", "vqvae"):
            return model.decode(*inputs)
        if name == "cyclegan":
            return model.translate(inputs[0], direction)
        return model.nets["ema"](*inputs)  # ddpm: the EMA network predicts eps


def inputs_from_contract(contract: dict, n: int = 3) -> list[torch.Tensor]:
    """Inputs built from the contract alone, at a batch size other than the one traced."""
    g = torch.Generator().manual_seed(1)
    out = []
    for spec in contract["inputs"]:
        shape = [n if d == "N" else d for d in spec["shape"]]
        if spec["dtype"] == "int64":
            low, high = spec["range"]
            out.append(torch.randint(int(low), int(high) + 1, shape, generator=g))
        elif spec["name"] == "truncation":
            out.append(torch.full(shape, 0.7))
        elif spec["range"] == [-1, 1]:
            out.append(torch.rand(shape, generator=g) * 2 - 1)
        else:
            out.append(torch.randn(shape, generator=g))
    return out


def run_exported(path: Path, fmt: str, inputs: list[torch.Tensor]) -> torch.Tensor:
    if fmt == "torchscript":
        with torch.no_grad():
            return torch.jit.load(str(path))(*inputs)
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name: x.numpy() for i, x in zip(session.get_inputs(), inputs)}
    return torch.from_numpy(session.run(None, feeds)[0])


def needs(fmt: str) -> None:
    if fmt == "onnx":
        pytest.importorskip("onnx", reason="ONNX export needs the export extra (pip install 'gencli[export]')")
        pytest.importorskip("onnxruntime", reason="checking an ONNX file needs onnxruntime (the export extra)")


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
@pytest.mark.parametrize("name", list(FAMILIES))
def test_the_exported_network_computes_what_the_model_does(runs, cli, tmp_path, name, fmt):
    needs(fmt)
    from gencli.runs import Run

    out = tmp_path / f"{name}.{'pt' if fmt == 'torchscript' else 'onnx'}"
    result = cli("-q", "export", runs[name], "--format", fmt, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    written = json.loads(result.stdout)
    assert Path(written["network"]) == out and Path(written["contract"]) == out.with_name(out.name + ".json")
    contract = json.loads(out.with_name(out.name + ".json").read_text())
    assert contract["model"] == name and contract["format"] == fmt and contract["step"] == 1
    assert contract["image_range"] == [-1, 1] and contract["output"]["shape"] == ["N", 3, 16, 16]
    assert contract["gencli_version"] and contract["plugin_version"] and contract["checked_max_abs_diff"] < TOLERANCE

    inputs = inputs_from_contract(contract)
    model = Run.open(runs[name]).load_model(device="cpu")
    expected = reference(model, name, inputs).float()
    got = run_exported(out, fmt, inputs)
    assert got.shape == expected.shape == (3, *model.image_shape)
    assert (got - expected).abs().max() < TOLERANCE


def test_a_translation_model_exports_each_direction(runs, cli, tmp_path):
    from gencli.runs import Run

    out = tmp_path / "b2a.pt"
    assert cli("-q", "export", runs["cyclegan"], "--direction", "b2a", "--out", out).exit_code == 0
    contract = json.loads(out.with_name("b2a.pt.json").read_text())
    assert "b2a" in contract["network"]
    x = inputs_from_contract(contract)
    model = Run.open(runs["cyclegan"]).load_model(device="cpu")
    assert (run_exported(out, "torchscript", x) - reference(model, "cyclegan", x, "b2a")).abs().max() < TOLERANCE
    assert (run_exported(out, "torchscript", x) - reference(model, "cyclegan", x, "a2b")).abs().max() > TOLERANCE


def test_the_diffusion_example_script_samples_with_torch_alone(runs, cli, tmp_path):
    from gencli.runs import Run

    out = tmp_path / "denoiser.pt"
    assert cli("-q", "export", runs["ddpm"], "--out", out).exit_code == 0
    script = tmp_path / "denoiser-sample.py"
    assert json.loads((tmp_path / "denoiser.pt.json").read_text())["example"] == script.name
    images_file = tmp_path / "images.pt"
    done = subprocess.run([sys.executable, str(script), "--n", "2", "--steps", "3", "--seed", "5", "--out", str(images_file)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    images = torch.load(images_file, weights_only=True)
    assert images.shape == (2, 3, 16, 16) and images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1 and images.std() > 0
    # the same deterministic DDIM as gencli's own sampler, from the same noise
    model = Run.open(runs["ddpm"]).load_model(device="cpu")
    noise = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = model.generate(noise, steps=3, progress=False).clamp(-1, 1)
    assert (images - expected).abs().max() < 1e-3


def test_out_is_never_overwritten(runs, cli, tmp_path):
    out = tmp_path / "taken.pt"
    out.write_bytes(b"mine")
    result = cli("export", runs["cvae"], "--out", out)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "already exists" in result.stderr and out.read_bytes() == b"mine"
    assert not out.with_name("taken.pt.json").exists()
    # the contract beside it counts too
    (tmp_path / "other.pt.json").write_text("{}")
    result = cli("export", runs["cvae"], "--out", tmp_path / "other.pt")
    assert result.exit_code == 2 and not (tmp_path / "other.pt").exists()


def test_a_model_that_cannot_export_says_what_it_can_in_one_line(runs, cli, tmp_path):
    from gencli.training.engine import TrainConfig, train

    prior = train(TrainConfig(model="vqvae-prior", source=str(runs["vqvae"]), steps=1, batch_size=4, quiet=True,
                              overrides={"channels": 8, "layers": 2, "kernel": 3}, sample_count=4, out=tmp_path / "prior"))
    before = sorted(p.name for p in prior.rglob("*"))
    result = cli("export", prior, "--out", tmp_path / "prior.pt")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert "cannot be exported; it can: sample" in result.stderr and "prior is not exported" in result.stderr
    assert sorted(p.name for p in prior.rglob("*")) == before and not (tmp_path / "prior.pt").exists()


def test_direction_of_a_model_without_directions_is_refused(runs, cli, tmp_path):
    result = cli("export", runs["cgan"], "--direction", "b2a", "--out", tmp_path / "g.pt")
    assert result.exit_code == 2 and "has no directions" in result.stderr and not (tmp_path / "g.pt").exists()


def test_onnx_without_the_extra_names_the_extra(runs, cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if it were not installed
    result = cli("export", runs["cgan"], "--format", "onnx", "--out", tmp_path / "g.onnx")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "gencli[export]" in result.stderr and not (tmp_path / "g.onnx").exists()
