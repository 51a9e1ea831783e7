"""`gencli export`: the network that generates, as TorchScript or ONNX, with its input contract beside it."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from gencli.cli.common import RunArg, examples, handle_errors
from gencli.errors import UserError

EPILOG = examples(
    "gencli export RUN --format torchscript",
    "gencli export RUN --format onnx --out generator.onnx",
    "gencli export RUN --direction b2a     # a translation model's other direction",
)


class Format(str, Enum):
    torchscript = "torchscript"
    onnx = "onnx"


SUFFIX = {Format.torchscript: ".pt", Format.onnx: ".onnx"}
# The largest difference allowed between the exported network and the model on the example
# inputs (fp32, images in [-1, 1]); a larger one means the trace missed something.
TOLERANCE = 1e-3


@handle_errors
def export(
    run: RunArg,
    format: Annotated[Format, typer.Option("--format", "-f", help="torchscript, or onnx (needs the export extra).",
                                           case_sensitive=False)] = Format.torchscript,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="The file to write (never overwritten); its contract goes to FILE.json.",
                                                show_default="RUN/generated/")] = None,
    direction: Annotated[Optional[str], typer.Option("--direction", help="Which way a translation model's network goes (a2b or b2a).",
                                                     show_default="the model's default")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the files written as JSON.")] = False,
) -> None:
    """Export the network that generates (generator, decoder, translator or denoiser) for deployment."""
    from gencli.runs import Run

    if format == Format.onnx:
        check_onnx()
    loaded = Run.open(run)
    from gencli.models.base import can_export, capabilities

    cls = loaded.model_class()
    if not can_export(cls):
        hint = getattr(cls, "capability_hints", {}).get("export")
        raise UserError(f"model {cls.name!r} cannot be exported; it can: {', '.join(capabilities(cls)) or 'nothing beyond training'}"
                        + (f"; {hint}" if hint else ""))
    target = _target(out, loaded, cls.name, format)
    written = export_run(loaded, format, target, direction)
    from gencli.media.model_card import refresh_model_card

    refresh_model_card(loaded)
    if json_out:
        print(json.dumps({k: str(v) for k, v in written.items()}, indent=2))
    else:
        for path in written.values():
            print(path)


def check_onnx() -> None:
    """Refuse ONNX export in one line when the export extra is not installed."""
    import importlib.util

    if importlib.util.find_spec("onnx") is None:
        raise UserError("ONNX export needs the onnx package: pip install 'gencli[export]' (or use --format torchscript)")


def _target(out: Path | None, run, name: str, format: Format) -> Path:
    """Return the file to write: ``--out`` (new; its contract and example must be new too) or one in ``generated/``."""
    from gencli.cli.common import _check_parent

    if out is None:
        return run.output_path(f"export-{name.replace(':', '-')}", SUFFIX[format])
    out = Path(out)
    if out.is_dir():
        raise UserError(f"--out {str(out)!r} is a folder; give a file name such as {str(out / (name + SUFFIX[format]))!r}")
    for path in (out, contract_path(out), script_path(out)):
        if path.exists() or path.is_symlink():
            raise UserError(f"--out: {str(path)!r} already exists; choose a new name (nothing is overwritten)")
    _check_parent(out)
    return out


def contract_path(file: Path) -> Path:
    return file.with_name(file.name + ".json")


def script_path(file: Path) -> Path:
    return file.with_name(file.stem + "-sample.py")


def export_run(run, format: Format, target: Path, direction: str | None = None) -> dict[str, Path]:
    """Write the run's exported network, its contract (and example script); return them by kind."""
    import torch

    model = run.load_model(device="cpu")
    if direction is not None and direction not in model.directions:
        can = " or ".join(model.directions)
        raise UserError(f"--direction {direction!r}: model {model.name!r} " + (f"goes {can}" if can else "has no directions"))
    for net in model.nets.values():  # the layout chosen for CPU inference is no part of the file
        net.to(memory_format=torch.contiguous_format)
    module, spec = model.export_module(direction) if direction else model.export_module()
    module.eval()
    with torch.no_grad():
        expected = module(*spec.example).float()
        data = _torchscript(module, spec) if format == Format.torchscript else _onnx(module, spec)
    from gencli.fileio import write_atomic

    write_atomic(target, data)
    written = {"network": target, "contract": contract_path(target)}
    difference = _difference(target, format, spec, expected)
    if difference is not None and difference > TOLERANCE:
        target.unlink()
        raise UserError(f"the exported {model.name} network differs from the model by {difference:.2g} "
                        f"(more than {TOLERANCE}); nothing was written")
    contract = _contract(run, model, format, target, spec, difference)
    if spec.example_script:
        written["example"] = script_path(target)
        contract["example"] = written["example"].name
        write_atomic(written["example"], _script(format, target, spec.example_script))
    write_atomic(written["contract"], json.dumps(contract, indent=2) + "\n")
    return written


def _torchscript(module, spec) -> bytes:
    import io
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes on Python values fixed at export: the contract says which
        traced = torch.jit.trace(module, spec.example, check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
    return buffer.getvalue()


def _onnx(module, spec) -> bytes:
    """Return the module as ONNX, exported by tracing: the exporter that needs no onnxscript."""
    import tempfile
    import warnings

    import torch

    names = [i.name for i in spec.inputs]
    dynamic = {name: {0: "N"} for name, i in zip(names, spec.inputs) if i.shape and i.shape[0] == "N"}
    if spec.output.shape and spec.output.shape[0] == "N":
        dynamic[spec.output.name] = {0: "N"}
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = Path(tmp) / "network.onnx"
        torch.onnx.export(module, spec.example, str(path), input_names=names, output_names=[spec.output.name],
                          dynamic_axes=dynamic, opset_version=17, dynamo=False)
        return path.read_bytes()


def _difference(target: Path, format: Format, spec, expected) -> float | None:
    """Return the largest difference of the written network from the model on the example inputs (None: not checked)."""
    import torch

    if format == Format.torchscript:
        import warnings

        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # TorchScript's deprecation notice
            got = torch.jit.load(str(target), map_location="cpu")(*spec.example)
    else:
        try:
            import onnxruntime
        except ImportError:
            return None
        session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
        feeds = {i.name: x.cpu().numpy() for i, x in zip(session.get_inputs(), spec.example)}
        got = torch.from_numpy(session.run(None, feeds)[0])
    return float((got.float().cpu() - expected.cpu()).abs().max())


def _tensor(t) -> dict:
    return {"name": t.name, "shape": list(t.shape), "dtype": t.dtype,
            "range": list(t.range) if t.range is not None else None, "help": t.help}


def _contract(run, model, format: Format, target: Path, spec, difference: float | None) -> dict:
    from gencli import __version__

    return {
        "file": target.name,
        "format": format.value,
        "network": spec.what,
        "model": model.name,
        "gencli_version": __version__,
        "plugin": run.plugin,
        "plugin_distribution": run.plugin_distribution,
        "plugin_version": run.plugin_version,
        "run": str(run.dir),
        "step": model.step,
        "image_shape": list(model.image_shape),
        "image_range": [-1, 1],
        "classes": list(model.classes),
        "inputs": [_tensor(i) for i in spec.inputs],
        "output": _tensor(spec.output),
        "notes": list(spec.notes),
        "constants": spec.constants,
        "checked_max_abs_diff": difference,
    }


LOADERS = {
    Format.torchscript: '''def load_network():
    """Return the exported network: a callable of tensors."""
    return torch.jit.load(str(NETWORK_FILE), map_location="cpu").eval()
''',
    Format.onnx: '''def load_network():
    """Return the exported network as a callable of tensors, run by onnxruntime."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(NETWORK_FILE), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def network(*inputs):
        return torch.from_numpy(session.run(None, {n: x.numpy() for n, x in zip(names, inputs)})[0])

    return network
''',
}


def _script(format: Format, target: Path, body: str) -> str:
    """Return the example script: a loader for ``format``, the contract, then the model's own ``body``."""
    head = f'''"""An example written by `gencli export`: runs {target.name} with torch{" and onnxruntime" if format == Format.onnx else ""} only."""

import json
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
NETWORK_FILE = HERE / {json.dumps(target.name)}
CONTRACT = json.loads((HERE / {json.dumps(contract_path(target).name)}).read_text())


'''
    return head + LOADERS[format] + "\n" + body.lstrip("\n")
