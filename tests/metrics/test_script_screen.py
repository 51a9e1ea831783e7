"""A user's TorchScript network runs only pure tensor operators: one that could touch a file is refused unrun."""

from __future__ import annotations

import json
import math
import re
import shutil
import warnings
import zipfile
from pathlib import Path
from typing import Tuple

import pytest
import torch
from metrics_helpers import ConvFeatures, save_torchscript
from torch import nn
from torch.nn import functional as F

from gencli.errors import UserError
from gencli.metrics.features import load_user_network
from gencli.metrics.script_screen import ALLOWED_OPS, forbidden_op
from gencli.training.engine import TrainConfig, train

VICTIM_BYTES = b"victim01"  # eight bytes: what torch.from_file maps in the attacks below


# ----------------------------------------------------------------------------- the attacks


class FromFile(nn.Module):
    """The reported attack: forward maps a file outside into a tensor and overwrites it."""

    def __init__(self, victim: str) -> None:
        super().__init__()
        self.victim = victim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.from_file(self.victim, True, 8, dtype=torch.uint8).fill_(88)
        return x.flatten(1) + t[:1].float() * 0  # kept in use, so the compiler cannot drop it


class Saves(nn.Module):
    """torch.save inside a scripted method (TorchScript compiles it to aten::save)."""

    def __init__(self, victim: str) -> None:
        super().__init__()
        self.victim = victim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.save(x, self.victim)
        return x.flatten(1)


class InSubmodule(nn.Module):
    """The write hides in a submodule's method, two levels down."""

    def __init__(self, victim: str) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Identity(), FromFile(victim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class InHelper(nn.Module):
    """The write hides in a helper method that forward calls."""

    def __init__(self, victim: str) -> None:
        super().__init__()
        self.victim = victim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) + self.helper()

    def helper(self) -> torch.Tensor:
        return torch.from_file(self.victim, True, 8, dtype=torch.uint8).fill_(88)[:1].float() * 0


def _write_through(victim: str) -> torch.Tensor:
    return torch.from_file(victim, True, 8, dtype=torch.uint8).fill_(88)[:1].float() * 0


class InFunction(nn.Module):
    """The write hides in a free function that forward calls."""

    def __init__(self, victim: str) -> None:
        super().__init__()
        self.victim = victim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) + _write_through(self.victim)


class InBranch(nn.Module):
    """The write hides in a branch taken only for some inputs."""

    def __init__(self, victim: str) -> None:
        super().__init__()
        self.victim = victim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x.flatten(1)
        if out.shape[0] > 0:
            for _ in range(1):
                out = out + torch.from_file(self.victim, True, 8, dtype=torch.uint8).fill_(88)[:1].float() * 0
        return out


def _hook(module: nn.Module, inputs: Tuple[torch.Tensor], out: torch.Tensor) -> torch.Tensor:
    return out + torch.from_file("VICTIM", True, 8, dtype=torch.uint8).fill_(88)[:1].float() * 0


class InHook(nn.Module):
    """The write hides in a forward hook of a submodule (the path is patched into the code below)."""

    def __init__(self, victim: str) -> None:
        super().__init__()
        self.body = nn.Flatten()
        self.body.register_forward_hook(_hook)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class AtLoad(nn.Module):
    """The write runs while the file loads: torch calls __setstate__ on the pickled state."""

    def __init__(self, victim: str) -> None:
        super().__init__()
        self.victim = victim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)

    @torch.jit.export
    def __getstate__(self) -> Tuple[str, bool]:
        return (self.victim, self.training)

    @torch.jit.export
    def __setstate__(self, state: Tuple[str, bool]) -> None:
        self.victim = state[0]
        self.training = state[1]
        self.victim = str(torch.from_file(self.victim, True, 8, dtype=torch.uint8).fill_(88).sum())


class Traced(nn.Module):
    def __init__(self, victim: str) -> None:
        super().__init__()
        self.victim = victim

    def forward(self, x):
        return x.flatten(1) + torch.from_file(self.victim, True, 8, dtype=torch.uint8).fill_(88)[:1].float() * 0


def _save(module: nn.Module, path: Path, victim: Path, traced: bool = False) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = torch.jit.trace(module, torch.zeros(2, 3, 16, 16)) if traced else torch.jit.script(module)
        torch.jit.save(net, str(path))
    victim.write_bytes(VICTIM_BYTES)  # tracing ran the network once
    if isinstance(module, InHook):
        _edit_code(path, b'"VICTIM"', json.dumps(str(victim)).encode())
    return path


def _edit_code(path: Path, old: bytes, new: bytes) -> None:
    """Rewrite the archive's compiled code, as anyone who hands us a file can."""
    with zipfile.ZipFile(path) as zf:
        members = [(info, zf.read(info)) for info in zf.infolist()]
    assert any(old in data for info, data in members if info.filename.endswith(".py")), old
    with zipfile.ZipFile(path, "w") as zf:
        for info, data in members:
            zf.writestr(info, data.replace(old, new) if info.filename.endswith(".py") else data)


@pytest.fixture
def victim(tmp_path) -> Path:
    path = tmp_path / "outside" / "victim.bin"
    path.parent.mkdir()
    path.write_bytes(VICTIM_BYTES)
    return path


def _runs_unchecked(net: Path, victim: Path) -> bool:
    """Whether loading and calling ``net`` with torch alone changes ``victim`` (which is then restored): the attack is real."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.jit.load(str(net))(torch.zeros(2, 3, 16, 16))
        except Exception:
            pass
    changed = victim.read_bytes() != VICTIM_BYTES
    victim.write_bytes(VICTIM_BYTES)
    return changed


ATTACKS = {
    "forward calls aten::from_file": (FromFile, False, "aten::from_file"),
    "forward calls torch.save": (Saves, False, "aten::save"),
    "a submodule's method": (InSubmodule, False, "aten::from_file (in forward of submodule 'body.1')"),
    "a helper method": (InHelper, False, "aten::from_file"),
    "a free function": (InFunction, False, "aten::from_file"),
    "an if branch inside a loop": (InBranch, False, "aten::from_file"),
    "a submodule's forward hook": (InHook, False, "aten::from_file"),
    "a traced module": (Traced, True, "aten::from_file"),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_a_network_that_could_touch_a_file_is_refused_before_it_runs(tmp_path, victim, name):
    cls, traced, expected = ATTACKS[name]
    net = _save(cls(str(victim)), tmp_path / "evil.pt", victim, traced)
    assert _runs_unchecked(net, victim), f"{name}: the network does not even write when run unchecked"
    with pytest.raises(UserError) as caught:
        load_user_network(net, "--features")
    message = str(caught.value)
    assert len(message.splitlines()) == 1 and str(net) in message and expected in message, message
    assert victim.read_bytes() == VICTIM_BYTES


def test_code_that_runs_while_the_file_loads_is_refused_before_loading(tmp_path, victim):
    net = _save(AtLoad(str(victim)), tmp_path / "evil.pt", victim)
    assert _runs_unchecked(net, victim), "__setstate__ does not even run when loaded unchecked"
    with pytest.raises(UserError, match=r"__setstate__.*while loading") as caught:
        load_user_network(net, "--features")
    assert len(str(caught.value).splitlines()) == 1
    assert victim.read_bytes() == VICTIM_BYTES


@pytest.mark.parametrize("call, expected", [
    (b'ops.aten.save(input, "VICTIM")', "aten::save"),
    (b'print("hello")', "prim::Print"),  # stdout carries gencli's --json output
    (b'ops.profiler._record_function_enter("x", None)', "profiler::_record_function_enter"),
    (b"torch.classes.quantized.LinearPackedParamsBase", "torch.classes"),
])
def test_hand_written_archive_code_is_screened_too(tmp_path, victim, call, expected):
    """An attacker need not go through torch.jit.script: the archive's code is plain text."""
    net = save_torchscript(nn.Flatten(), tmp_path / "net.pt")
    _edit_code(net, b"    return torch.flatten(", b"    _0 = " + call.replace(b"VICTIM", str(victim).encode())
               + b"\n    return torch.flatten(")
    with pytest.raises(UserError) as caught:
        load_user_network(net, "--classifier")
    message = str(caught.value)
    assert len(message.splitlines()) == 1 and "--classifier" in message and expected in message, message
    assert victim.read_bytes() == VICTIM_BYTES


class WithBlock(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return x.flatten(1)


def test_a_with_block_is_refused_with_a_hint(tmp_path):
    """A with-block runs its object's __enter__ and __exit__, which the graph does not show (the archive can redefine them)."""
    with pytest.raises(UserError, match=r"prim::Enter \(a with-block, in forward of the network; .*torch.no_grad"):
        load_user_network(save_torchscript(WithBlock(), tmp_path / "net.pt"), "--features")


def test_a_pickled_custom_class_is_refused_before_loading(tmp_path):
    """torch's C++ classes run their own loading code; the pickle screen refuses them by name."""
    net = save_torchscript(nn.Flatten(), tmp_path / "net.pt")
    with zipfile.ZipFile(net) as zf:
        members = [(info, zf.read(info)) for info in zf.infolist()]
    custom = b"\x80\x02c__torch__.torch.classes.quantized\nLinearPackedParamsBase\nq\x00)\x81q\x01."
    with zipfile.ZipFile(net, "w") as zf:
        for info, data in members:
            zf.writestr(info, custom if info.filename.endswith("/data.pkl") else data)
    with pytest.raises(UserError, match=r"refers to '__torch__\.torch\.classes\.quantized\.LinearPackedParamsBase'"):
        load_user_network(net, "--features")


# ----------------------------------------------------------------------------- through the CLI


@pytest.fixture(scope="module")
def cvae_run(tmp_path_factory):
    return train(TrainConfig(model="cvae", data="shapes", steps=2, image_size=16, channels=3, batch_size=16,
                             overrides={"widths": "8,16", "latent_dim": "4"}, out=tmp_path_factory.mktemp("cvae") / "run",
                             quiet=True, sample_every=2, checkpoint_every=2, device="cpu"))


@pytest.fixture
def run(cvae_run, tmp_path):
    return shutil.copytree(cvae_run, tmp_path / "run")


def _one_line_exit_2(result, *expected: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    for text in expected:
        assert text in lines[0], lines[0]


@pytest.mark.parametrize("option", ["--features", "--classifier"])
def test_the_reported_attack_through_gencli_eval_is_refused(cli, run, tmp_path, victim, option):
    evil = _save(FromFile(str(victim)), tmp_path / "evil.pt", victim)
    metric = "fid" if option == "--features" else "accuracy"
    result = cli("eval", run, "--metrics", metric, option, evil, "--n", "8", "--device", "cpu")
    _one_line_exit_2(result, option, str(evil), "aten::from_file")
    assert victim.read_bytes() == VICTIM_BYTES


def test_the_reported_attack_through_training_eval_features_is_refused(cli, tmp_path, victim):
    evil = _save(FromFile(str(victim)), tmp_path / "evil.pt", victim)
    result = cli("train", "vae", "--data", "shapes", "--steps", "2", "--image-size", "16", "--batch-size", "8",
                 "--set", "widths=8,16", "--eval-every", "1", "--eval-features", evil, "--device", "cpu",
                 "--out", tmp_path / "runs" / "r")
    _one_line_exit_2(result, "eval_features", str(evil), "aten::from_file")
    assert victim.read_bytes() == VICTIM_BYTES


class RichFeatures(nn.Module):
    """A feature network using more of torch.nn than ConvFeatures, scripted or traced."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.LeakyReLU(0.2),
                                  nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1, padding_mode="reflect"),
                                  nn.GroupNorm(2, 8), nn.SiLU())
        self.blocks = nn.ModuleList([nn.Conv2d(8, 8, 1) for _ in range(2)])
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 12), nn.LayerNorm(12))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False)
        h = self.stem(x)
        for block in self.blocks:
            h = h + torch.relu(block(h))
        return torch.cat([self.head(h), F.normalize(h.amax((2, 3)), dim=1)], 1)


@pytest.mark.parametrize("kind", ["scripted", "traced"])
def test_plain_feature_networks_still_give_an_fid(cli, run, tmp_path, kind):
    path = tmp_path / f"{kind}.pt"
    if kind == "scripted":
        save_torchscript(RichFeatures().eval(), path)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.jit.save(torch.jit.trace(ConvFeatures().eval(), torch.zeros(2, 3, 16, 16)), str(path))
    result = cli("eval", run, "--metrics", "fid", "--features", path, "--n", "16", "--json", "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    fid = json.loads(result.stdout)["eval"]["fid"]
    assert math.isfinite(fid) and fid > 0


class Broken(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1)[:, :4].abs() + 1.0) * self.value


@pytest.mark.parametrize("value, word", [(float("nan"), "NaN"), (float("inf"), "infinite")])
def test_features_that_are_not_finite_end_in_one_line_naming_the_network(cli, run, tmp_path, value, word):
    path = save_torchscript(Broken(value), tmp_path / "broken.pt")
    result = cli("eval", run, "--metrics", "fid", "--features", path, "--n", "8", "--device", "cpu")
    _one_line_exit_2(result, "--features", str(path), word)


# ----------------------------------------------------------------------------- the allow-list


def _layers() -> dict[str, tuple[nn.Module, torch.Tensor]]:
    image = torch.randn(2, 3, 16, 16)
    return {
        "rich": (RichFeatures(), image),
        "conv": (nn.Sequential(nn.Conv2d(3, 4, 3), nn.InstanceNorm2d(4), nn.ELU(), nn.AvgPool2d(2),
                               nn.ConvTranspose2d(4, 4, 4, 2, 1), nn.GELU(), nn.Upsample(scale_factor=2),
                               nn.ZeroPad2d(1), nn.Hardswish(), nn.Mish(), nn.PReLU(), nn.Tanh(), nn.Sigmoid(),
                               nn.Softplus(), nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Dropout(), nn.LogSoftmax(1)),
                 image),
        "pixels": (nn.Sequential(nn.PixelUnshuffle(2), nn.PixelShuffle(2), nn.ReflectionPad2d(1), nn.ReLU6(),
                                 nn.Hardtanh(), nn.Softmax(1)), image),
        "attention": (nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), torch.randn(2, 5, 8)),
        "lstm": (nn.LSTM(4, 4, batch_first=True), torch.randn(2, 3, 4)),
        "embedding": (nn.Embedding(10, 4), torch.randint(0, 10, (2, 3))),
    }


@pytest.mark.parametrize("name", list(_layers()))
def test_the_usual_layers_pass_the_screen_scripted_and_traced(name):
    module, example = _layers()[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert forbidden_op(torch.jit.script(module.eval())) is None
        if name != "lstm":  # a traced LSTM returns a tuple of states; scripted is how it is shared
            assert forbidden_op(torch.jit.trace(module.eval(), example, check_trace=False)) is None


_IO_NAME = re.compile(r"file|save|load|open|read|write|mmap|pickle|serial|storage|print|rpc|profil|record|socket|"
                      r"distributed|c10d|seed|_unsafe|as_strided|pin_memory|fork|wait|^set_?$", re.I)
_IO_ARGUMENT = re.compile(r"^(f|file|filename|fname|path|dirname|directory)$", re.I)


def test_no_operator_that_could_touch_a_file_is_allowed():
    schemas = torch._C._jit_get_all_schemas()
    suspicious = {s.name for s in schemas if _IO_NAME.search(s.name.split("::", 1)[1])}
    suspicious |= {s.name for s in schemas
                   if any(_IO_ARGUMENT.search(a.name) and "str" in str(a.type) for a in s.arguments)}
    assert {"aten::from_file", "aten::save", "aten::_print", "prim::Print"} <= suspicious  # the patterns do find them
    assert not suspicious & ALLOWED_OPS, suspicious & ALLOWED_OPS
    assert {op.split("::", 1)[0] for op in ALLOWED_OPS} == {"aten", "prim"}
    for refused in ("aten::from_file", "aten::save", "prim::Print", "prim::PythonOp", "prim::fork", "prim::CallMethod",
                    "prim::CallFunction", "aten::set_", "aten::as_strided", "aten::manual_seed"):
        assert refused not in ALLOWED_OPS
