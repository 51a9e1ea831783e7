"""The runs package owns its runs: it imports nothing above it, nothing else reads run.json, and a
Run round-trips (create, record, reopen) to the same description and the same data request."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import gencli

ROOT = Path(gencli.__file__).resolve().parent
PLUGINS = ROOT.parent / "plugins"
RUNS = ROOT / "runs"

# What a run needs below it: errors and safe file access, the data it was trained on, the model
# registry and hyperparameters it builds its model with, and one console line for a skipped run.
ALLOWED = {
    "gencli.errors",
    "gencli.fileio",
    "gencli.data.base",
    "gencli.data.resolve",
    "gencli.models.hparams",
    "gencli.plugins",
    "gencli.ui.console",
}
# Layers that use runs, and so must never be imported by them.
ABOVE = ("gencli.training", "gencli.cli", "gencli.metrics", "gencli.media", "gencli.report", "gencli.testing")


def _is_module(name: str) -> bool:
    path = ROOT.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _gencli_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every ``gencli`` import in a file, at any depth (functions, TYPE_CHECKING)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.split(".")[0] == "gencli"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "gencli":
            # ``from gencli.models import hparams`` imports the module gencli.models.hparams
            found += [(node.lineno, f"{node.module}.{alias.name}" if _is_module(f"{node.module}.{alias.name}")
                       else node.module) for alias in node.names]
    return found


def test_the_runs_package_imports_nothing_above_it():
    modules = sorted(RUNS.glob("*.py"))
    assert {p.name for p in modules} >= {"__init__.py", "run.py", "checkpoints.py", "lock.py", "metrics_log.py"}
    wrong = [f"{p.name}:{line} imports {name}" for p in modules for line, name in _gencli_imports(p)
             if name not in ALLOWED and not name.startswith("gencli.runs")]
    assert not wrong, wrong


def test_nothing_the_runs_package_builds_on_imports_it_back():
    """``models/`` (the contract, which a Run builds), ``data/``, the plugin registry and the file
    helpers sit below runs: an import of ``gencli.runs`` there would be a cycle."""
    below = [*sorted((ROOT / "models").glob("*.py")), *sorted((ROOT / "data").rglob("*.py")),
             ROOT / "plugins.py", ROOT / "registry.py", ROOT / "fileio.py", ROOT / "errors.py",
             *sorted((ROOT / "ui").glob("*.py"))]
    wrong = [f"{p.relative_to(ROOT)}:{line} imports {name}" for p in below for line, name in _gencli_imports(p)
             if name.startswith("gencli.runs")]
    assert not wrong, wrong


def test_importing_runs_loads_no_layer_above_it_and_no_torch():
    code = ("import sys, gencli.runs\n"
            f"above = {ABOVE!r}\n"
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith(above)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ------------------------------------------------------------------ run.json has one reader
_READS = {"read_text", "read_bytes", "open", "read_nofollow", "load", "loads"}
_RECORD_NAMES = {"run", "source", "record"}


def _names_run_file(node: ast.AST) -> bool:
    return any((isinstance(n, ast.Constant) and n.value == "run.json") or (isinstance(n, ast.Name) and n.id == "RUN_FILE")
               or (isinstance(n, ast.Attribute) and n.attr == "RUN_FILE") for n in ast.walk(node))


def _is_record(node: ast.AST) -> bool:
    """``run.info`` (or ``self.run.info``, ``source.info``): a Run's raw description."""
    if not (isinstance(node, ast.Attribute) and node.attr == "info"):
        return False
    owner = node.value
    return (isinstance(owner, ast.Name) and owner.id in _RECORD_NAMES) or (
        isinstance(owner, ast.Attribute) and owner.attr in _RECORD_NAMES)


def run_json_reads(source: str, name: str = "<code>") -> list[str]:
    """Where ``source`` reads run.json itself, or a run's description as a raw table."""
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if called in _READS and _names_run_file(node):
                found.append(f"{name}:{node.lineno} reads run.json ({called})")
            if isinstance(func, ast.Attribute) and func.attr == "get" and _is_record(func.value):
                found.append(f"{name}:{node.lineno} reads a run's description raw (.info.get)")
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            if _is_record(node.value):
                found.append(f"{name}:{node.lineno} reads a run's description raw (.info[...])")
            if isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "read_run_info":
                found.append(f"{name}:{node.lineno} reads run.json's table raw (read_run_info(...)[...])")
    return found


def test_the_checker_finds_each_way_of_reading_run_json():
    code = '''
import json
info = json.loads((run_dir / "run.json").read_text())
other = json.loads(open(path / RUN_FILE).read())
model = run.info["model"]
spec = self.run.info.get("data")
name = read_run_info(run_dir)["model"]
ok = run.model_name
exists = (path / RUN_FILE).is_file()
label = {k: "run.json" for k in keys}
'''
    found = run_json_reads(code)
    assert sorted({int(line.split(":")[1].split(" ")[0]) for line in found}) == [3, 4, 5, 6, 7], found


def test_run_json_is_read_only_inside_the_runs_package():
    files = [p for p in sorted(ROOT.rglob("*.py")) if RUNS not in p.parents]
    files += sorted(PLUGINS.rglob("*.py")) if PLUGINS.is_dir() else []
    assert len(files) > 20
    found = [hit for p in files for hit in run_json_reads(p.read_text(), str(p.relative_to(ROOT.parent)))]
    assert not found, "read a run through gencli.runs.Run instead:\n" + "\n".join(found)


# ------------------------------------------------------------------ a Run round-trips
def _info() -> dict:
    return {
        "gencli_version": gencli.__version__, "plugin": "gencli-test", "plugin_distribution": "", "model": "toy",
        "hyperparameters": {"lr": 0.001, "width": 8},
        "data": {"spec": "shapes", "kind": "labelled", "image_shape": [3, 16, 16], "load_size": 20,
                 "classes": ["a", "b"], "class_counts": [3, 5], "size": 8},
        "training": {"steps": 4, "epochs": None, "batch_size": 2, "seed": 7, "precision": "fp32",
                     "sample_every": 2, "checkpoint_every": "1ep", "log_every": 1, "keep_checkpoints": 3},
        "step": 0, "status": "created",
    }


def test_a_run_round_trips_and_builds_its_data_request_in_one_place(tmp_path):
    from gencli.data.base import DataRequest
    from gencli.runs import Run, RunInfo, new_run_dir, write_run_info

    run_dir = new_run_dir("toy", "shapes", tmp_path / "run")
    write_run_info(run_dir, _info())
    first = Run.open(run_dir)
    assert first.checkpoint is None  # no checkpoint written yet
    first.info.update(step=4, status="finished", total_steps=4, final_losses={"loss": 0.5})
    first.save_info()
    first.append_metrics({"step": 4, "epoch": 0, "loss": 0.5})
    first.append_metrics({"eval": {"fid": 12.5}, "settings": {"n": 10}})

    again = Run.open_dir(run_dir)
    assert json.loads((run_dir / "run.json").read_text())["schema"] == 1
    assert again.info == first.info
    assert (again.model_name, again.image_shape, again.classes, again.class_counts) == ("toy", (3, 16, 16), ["a", "b"], [3, 5])
    assert (again.seed, again.batch_size, again.precision, again.load_size, again.step) == (7, 2, "fp32", 20, 4)
    assert (again.status, again.total_steps, again.final_losses, again.plugin_distribution) == ("finished", 4, {"loss": 0.5}, "")
    assert again.setting("checkpoint_every") == "1ep" and again.setting("epochs", 3) == 3
    assert again.metrics() == [{"step": 4, "epoch": 0, "loss": 0.5}]
    assert [row["eval"] for row in again.evaluations()] == [{"fid": 12.5}]

    assert again.data_request("train", training=True) == DataRequest(16, 3, "train", 7, load_size=20)
    assert again.data_request("test") == DataRequest(16, 3, "test", 7)
    assert again.data_request("train") == DataRequest(16, 3, "train", 7)  # as a model takes it: no crop
    assert RunInfo(again.info).data_request("test") == first.data_request("test")

    copied = again.training_settings  # accessors hand out copies: a reader cannot change the record
    copied["seed"] = 99
    again.hyperparameters["lr"] = 1.0
    assert again.seed == 7 and again.hyperparameters["lr"] == 0.001


def test_a_run_opened_to_train_needs_what_resuming_reads(tmp_path):
    from gencli.errors import UserError
    from gencli.runs import Run, new_run_dir, write_run_info

    run_dir = new_run_dir("toy", "shapes", tmp_path / "run")
    info = _info()
    del info["training"]["precision"]
    write_run_info(run_dir, info)
    with pytest.raises(UserError, match="training.precision is missing"):
        Run.open_to_train(run_dir)
    write_run_info(run_dir, _info())
    with pytest.raises(UserError, match="no complete checkpoint to resume from"):
        Run.open_to_train(run_dir)
    with pytest.raises(UserError, match="no such run directory"):
        Run.open_to_train(tmp_path / "absent")
