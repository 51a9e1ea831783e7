"""A run's model card: ``README.md`` in its folder, in the Hugging Face model-card layout.

YAML front matter (``library_name``, ``tags``, ``datasets``, ``model-index`` with the last
`gencli eval` results), then the model and its plugin, the data, the hyperparameters, the final
metrics, the last sample grid, how to sample it with gencli and how to load its weights with the
plugin's classes and safetensors alone. Written from the run's record only (``gencli.runs``):
every value that came from run.json or metrics.jsonl may be a stranger's, so front-matter values are
JSON-quoted (valid YAML), table cells and text are escaped, and code uses Python/shell quoting.
No torch at import time.
"""

from __future__ import annotations

import html
import json
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gencli.runs import Run

CARD_FILE = "README.md"
_HEADER_LIMIT = 1 << 24  # a safetensors header larger than this is not read
_SAMPLE_NAME = re.compile(r"step-\d{8}\.png")
_MARKDOWN = re.compile(r"([\\`*_\[\]|])")


def write_model_card(run: "Run") -> Path:
    """Write (or rewrite) ``README.md`` in the run's folder from its record; return its path."""
    from gencli.fileio import naming, sealed, write_atomic

    path = sealed(run.dir, CARD_FILE)
    with naming(path):
        write_atomic(path, model_card(run))
    return path


def refresh_model_card(run: "Run") -> Path:
    """Rewrite the card of ``run`` with what its record holds now (after an export or an evaluation)."""
    from gencli.runs import Run

    return write_model_card(Run.open(run.dir))


def model_card(run: "Run") -> str:
    """Return the model card of ``run`` as Markdown with YAML front matter."""
    cls = _model_class(run)
    evaluation = run.evaluations()[-1] if run.evaluations() else None
    metrics = {k: v for k, v in (evaluation or {}).get("eval", {}).items() if isinstance(v, (int, float))}
    parts = [front_matter(run, cls, metrics), f"# {_text(run.model_name)} trained on {_text(run.data_spec)}\n"]
    summary = getattr(cls, "summary", "") if cls is not None else ""
    if summary:
        parts.append(f"{_text(summary)}\n")
    parts += [_model_section(run, cls), _data_section(run), _hyperparameter_section(run),
              _metrics_section(run, metrics, evaluation), _samples_section(run), _usage_section(run, cls)]
    return "\n".join(parts)


# ------------------------------------------------------------------ front matter
def front_matter(run: "Run", cls: type | None, metrics: dict[str, float]) -> str:
    """Return the YAML front matter between ``---`` lines; every string value JSON-quoted."""
    task = _task(cls)
    tags = ["gencli", run.model_name, str(run.plugin or ""), task]
    lines = ["---", f"library_name: {_q('gencli')}", "tags:"]
    lines += [f"- {_q(t)}" for t in dict.fromkeys(t for t in tags if t)]
    if task in ("unconditional-image-generation", "image-to-image"):
        lines.append(f"pipeline_tag: {_q(task)}")
    dataset = _named_dataset(run.data_spec)
    if dataset:
        lines += ["datasets:", f"- {_q(dataset)}"]
    if metrics:
        lines += ["model-index:", f"- name: {_q(run.dir.name)}", "  results:", "  - task:", f"      type: {_q(task)}"]
        lines += ["    dataset:", f"      name: {_q(run.data_spec)}", f"      type: {_q(dataset or run.data_spec)}"]
        lines.append("    metrics:")
        for name, value in metrics.items():
            lines += [f"    - type: {_q(name)}", f"      name: {_q(name)}", f"      value: {_number(value)}"]
    lines.append("---")
    return "\n".join(lines) + "\n"


def _q(value: Any) -> str:
    """Return ``value`` as a YAML double-quoted scalar (JSON's escapes are YAML's; no raw HTML either)."""
    return json.dumps(str(value), ensure_ascii=True).replace("<", "\\u003c").replace(">", "\\u003e")


def _number(value: float) -> str:
    return json.dumps(value if value == value and abs(value) != float("inf") else None)


def _task(cls: type | None) -> str:
    if cls is None:
        return "image-generation"
    from gencli.models.base import has_capability

    if has_capability(cls, "translate"):
        return "image-to-image"
    return "conditional-image-generation" if getattr(cls, "conditional", False) else "unconditional-image-generation"


def _named_dataset(spec: str) -> str | None:
    """Return ``spec`` when it names a registered dataset (not a folder or file of the user's)."""
    try:
        from gencli.plugins import registry

        return spec if spec in registry().datasets else None
    except Exception:  # the card is written whatever the plugins do
        return None


def _model_class(run: "Run") -> type | None:
    from gencli.errors import UserError

    try:
        return run.model_class()
    except UserError:
        return None


# ------------------------------------------------------------------ sections
def _model_section(run: "Run", cls: type | None) -> str:
    rows = [("model", run.model_name),
            ("model class", f"{cls.__module__}.{cls.__qualname__}" if cls is not None else "(plugin not installed)"),
            ("plugin", run.plugin), ("plugin distribution", run.plugin_distribution),
            ("plugin version", run.plugin_version), ("gencli version", run.gencli_version),
            ("trained steps", run.step), ("status", run.status), ("checkpoint", _checkpoint_name(run))]
    return "## Model\n\n" + _table(("", ""), [r for r in rows if r[1] not in (None, "")])


def _data_section(run: "Run") -> str:
    c, h, w = run.image_shape
    rows: list[tuple[str, Any]] = [("dataset", run.data_spec), ("kind", run.data_kind), ("images", f"{c} x {h} x {w}"),
                                   ("training images", run.data_size)]
    classes = run.classes
    if classes:
        shown = ", ".join(classes[:20]) + (f", ... ({len(classes)} in all)" if len(classes) > 20 else "")
        rows.append(("classes", shown))
    licence = _dataset_info(run.data_spec).get("licence")
    if licence:
        rows.append(("dataset licence", licence))
    return "## Data\n\n" + _table(("", ""), [r for r in rows if r[1] not in (None, "")])


def _dataset_info(spec: str) -> dict[str, Any]:
    try:
        from gencli.plugins import registry

        found = registry().datasets.get(spec)
        return dict(getattr(found, "info", None) or {}) if found is not None else {}
    except Exception:
        return {}


def _hyperparameter_section(run: "Run") -> str:
    rows = [(k, json.dumps(v)) for k, v in run.hyperparameters.items()]
    training = run.training_settings
    rows += [(f"training.{k}", json.dumps(training[k])) for k in ("steps", "epochs", "batch_size", "seed", "precision")
             if k in training]
    return "## Hyperparameters\n\n" + _table(("name", "value"), rows)


def _metrics_section(run: "Run", metrics: dict[str, float], evaluation: dict[str, Any] | None) -> str:
    out = ["## Final metrics\n"]
    if metrics:
        settings = (evaluation or {}).get("settings") or {}
        shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in settings.items() if not isinstance(v, (dict, list)))
        out.append(f"The last `gencli eval`{' (' + _text(shown) + ')' if shown else ''}:\n")
        out.append(_table(("metric", "value"), [(k, _number(v)) for k, v in metrics.items()]))
    else:
        out.append(f"Not evaluated yet: `gencli eval {_shell(run.dir)}` adds them here.\n")
    losses = run.final_losses
    if losses:
        out.append(f"\nLosses at the last logged step ({run.step}):\n")
        out.append(_table(("loss", "value"), [(k, json.dumps(v)) for k, v in losses.items()]))
    return "\n".join(out)


def _samples_section(run: "Run") -> str:
    sample = last_sample_grid(run)
    if sample is None:
        return "## Samples\n\nNo sample grid yet.\n"
    return f"## Samples\n\n![samples at step {int(sample.stem[5:])}](samples/{sample.name})\n"


def last_sample_grid(run: "Run") -> Path | None:
    """Return the newest ``samples/step-N.png`` of the run (a plain file), or None."""
    folder = run.dir / "samples"
    try:
        names = sorted(p.name for p in folder.iterdir() if _SAMPLE_NAME.fullmatch(p.name) and p.is_file()
                       and not p.is_symlink())
    except OSError:
        return None
    return folder / names[-1] if names else None


def _usage_section(run: "Run", cls: type | None) -> str:
    where = _shell(run.dir)
    out = ["## Sample it with gencli\n", "```bash"]
    if cls is not None and _can(cls, "translate"):
        out.append(f"gencli translate {where} --input IMAGES_FOLDER")
    if cls is None or _can(cls, "sample"):
        out.append(f"gencli sample {where} --n 16")
        if cls is not None and getattr(cls, "conditional", False) and run.classes:
            out.append(f"gencli sample {where} --label all --n 8")
    out += [f"gencli export {where} --format onnx", "```\n"]
    checkpoint = _checkpoint_name(run)
    if cls is None or checkpoint is None:
        return "\n".join(out)
    out += ["## Load the weights without the gencli command\n",
            "The weights are a safetensors file (`<network>.<parameter>` names); the networks are the "
            f"plugin's classes (`pip install {_text(run.plugin_distribution or 'gencli')}`). "
            "Run this in the run's folder:\n",
            "```python", load_code(run, cls, checkpoint), "```\n"]
    return "\n".join(out)


def load_code(run: "Run", cls: type, checkpoint: str) -> str:
    """Return Python that rebuilds the model from run.json and the plugin's class, and loads the weights."""
    name = cls.__qualname__
    module = cls.__module__
    return f"""import json
from pathlib import Path

from safetensors.torch import load_file

from {module} import {name}

run = Path(".")  # this model's folder
info = json.loads((run / "run.json").read_text())
hp = {name}.Hyperparameters(**info["hyperparameters"])
model = {name}(hp, tuple(info["data"]["image_shape"]), info["data"].get("classes"))
weights = load_file(str(run / "checkpoints" / {checkpoint!r} / "weights.safetensors"))
for net_name, net in model.nets.items():  # {", ".join(_network_names(run, checkpoint)) or "its networks"}
    prefix = net_name + "."
    net.load_state_dict({{k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}})
model.eval()
# e.g. images = model.sample(16): 16 images, float in [-1, 1], shape [16, C, H, W]"""


def _network_names(run: "Run", checkpoint: str) -> list[str]:
    """Return the network names in the checkpoint's weights (read from the safetensors header only)."""
    import os

    from gencli.fileio import open_nofollow

    try:
        fd = open_nofollow(run.dir / "checkpoints" / checkpoint / "weights.safetensors", os.O_RDONLY)
    except Exception:  # missing, a link, not a file: the card names no networks
        return []
    try:
        size = int.from_bytes(os.read(fd, 8), "little")
        header = json.loads(os.read(fd, size)) if 0 < size <= _HEADER_LIMIT else {}
    except (OSError, ValueError):
        return []
    finally:
        os.close(fd)
    names = dict.fromkeys(str(k).split(".", 1)[0] for k in header if k != "__metadata__") if isinstance(header, dict) else {}
    return [n for n in names if re.fullmatch(r"[A-Za-z0-9_]+", n)]


def _checkpoint_name(run: "Run") -> str | None:
    name = run.checkpoint.name if run.checkpoint is not None else None
    return name if name and re.fullmatch(r"step-\d+", name) else None


def _can(cls: type, capability: str) -> bool:
    from gencli.models.base import has_capability

    return has_capability(cls, capability)


# ------------------------------------------------------------------ escaping
def _text(value: Any) -> str:
    """Return ``value`` as inline Markdown text: one line, HTML and Markdown syntax escaped."""
    text = " ".join(str(value).split())
    return _MARKDOWN.sub(r"\\\1", html.escape(text, quote=False))


def _shell(path: Path | str) -> str:
    return shlex.quote(str(path))


def _table(head: tuple[str, str], rows: list[tuple[str, Any]]) -> str:
    lines = [f"| {_text(head[0])} | {_text(head[1])} |", "| --- | --- |"]
    lines += [f"| {_text(k)} | {_text(v)} |" for k, v in rows]
    return "\n".join(lines) + "\n"
