"""Checkpoints: weights as safetensors, the rest loaded with ``torch.load(weights_only=True)``.

Layout inside a run directory::

    checkpoints/step-00000400/weights.safetensors   networks' parameters and buffers, "<net>.<key>"
    checkpoints/step-00000400/state.pt              optimizers, schedulers, scalers, RNG, model extra state,
                                                    the losses not yet logged (at a Ctrl-C stop)
    checkpoints/step-00000400/meta.json             step, epoch, model name, file sizes
    checkpoints/latest                              name of the newest complete checkpoint

A checkpoint is written into ``.step-N.tmp-<pid>-<random>`` and renamed into place, then ``latest`` is
replaced atomically, so a run killed at any moment leaves its last complete checkpoint intact;
the hidden leftovers of a killed writer are removed before the run is trained again.
Nothing is ever unpickled: a checkpoint from a stranger cannot run code.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from gencli.errors import UserError
from gencli.fileio import fsync_dir, link_refused, read_nofollow, sealed, temporary_name, write_atomic, write_file
from gencli.runs.values import MAX_COUNT, is_int, shown

FORMAT = 1
CHECKPOINT_FILES = ("meta.json", "weights.safetensors", "state.pt")


def network_tensors(nets: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    """Return every network's state as one flat dict of CPU tensors named ``<net>.<key>``."""
    out = {}
    for name, net in nets.items():
        for key, value in net.state_dict().items():
            if torch.is_tensor(value):
                out[f"{name}.{key}"] = value.detach().to("cpu").contiguous().clone()
    return out


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: Path, model, epoch: int, batch_in_epoch: int, keep: int = 3,
                    loop_state: dict[str, Any] | None = None) -> Path:
    """Write the model's full training state at ``model.step``; return the checkpoint folder.

    ``loop_state`` is what the training loop itself must carry across a resume (the losses of a
    log window not yet written). A failed write (a full disk) removes its temporary folder and
    leaves the last complete checkpoint in place.
    """
    root = sealed(run_dir, "checkpoints", "folder", create=True)
    name = f"step-{model.step:08d}"
    tmp = temporary_name(root / name)
    tmp.mkdir()  # a new name: never a folder or link already there
    try:
        # serialised in memory and written by Python: a failed write then carries its errno and path
        weights = save(network_tensors(model.nets), metadata={"model": model.name})
        write_file(tmp / "weights.safetensors", weights)
        state = {
            "format": FORMAT,
            "step": model.step,
            "epoch": epoch,
            "batch_in_epoch": batch_in_epoch,
            "optimizers": {k: v.state_dict() for k, v in model.optimizers.items()},
            "schedulers": {k: v.state_dict() for k, v in model.schedulers.items()},
            "scalers": {k: v.state_dict() for k, v in model.scalers.items()},
            "rng": rng_state(),
            "extra": model.extra_state(),
            "loop": loop_state or {},
        }
        buffer = io.BytesIO()
        torch.save(state, buffer)
        write_file(tmp / "state.pt", buffer.getvalue())
        meta = {"format": FORMAT, "model": model.name, "step": model.step, "epoch": epoch,
                "files": {f.name: f.stat().st_size for f in tmp.iterdir()}}
        write_file(tmp / "meta.json", json.dumps(meta, indent=1).encode())
        final = sealed(run_dir, f"checkpoints/{name}", "folder")
        if os.path.lexists(final):  # re-saving the same step after a resume: set the old copy aside first
            _discard(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(root)
    write_atomic(root / "latest", name.encode())
    _prune(root, keep, protect=name)
    return final


def _discard(folder: Path) -> None:
    """Remove a folder by first renaming it to a hidden name, so no crash leaves it half-deleted
    under a name that looks complete; ``remove_partial_writes`` finishes the job after a crash."""
    gone = temporary_name(folder.with_name(folder.name + "-old"))
    os.replace(folder, gone)
    shutil.rmtree(gone, ignore_errors=True)  # removes a folder's own entries only, never where a link leads


def _prune(root: Path, keep: int, protect: str) -> None:
    done = sorted(p for p in root.glob("step-*") if p.is_dir() and not p.is_symlink() and ".tmp" not in p.name)
    for old in done[:-keep] if keep > 0 else []:
        if old.name != protect:
            try:
                _discard(old)
            except OSError:
                pass  # pruning is housekeeping: the next checkpoint tries again


def remove_partial_writes(run_dir: Path) -> None:
    """Remove what writers killed mid-write left behind: hidden ``.NAME.tmp...`` files and folders
    in the run, its checkpoints and its samples. Only the run's lock holder may call this, once the
    run is confirmed sealed: a ``checkpoints`` or ``samples`` that is a link is refused here too,
    and a leftover that is a link is removed itself, never what it leads to."""
    folders = [Path(run_dir)] + [sealed(run_dir, name, "folder") for name in ("checkpoints", "samples")]
    for folder in folders:
        for leftover in folder.glob(".*.tmp*") if folder.is_dir() else []:
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                try:
                    leftover.unlink()
                except OSError:
                    pass


def latest_checkpoint(run_dir: Path) -> Path | None:
    """Return the newest complete checkpoint folder of a run, or None.

    Whatever the run's files say, the checkpoint is a folder of this run's own ``checkpoints/``:
    a ``latest`` naming another path, or a checkpoint that is a link to elsewhere, is refused, so
    a copied or tampered run can never load another run's weights.
    """
    root = sealed(run_dir, "checkpoints", "folder")
    pointer = sealed(run_dir, "checkpoints/latest", "file")
    held = read_nofollow(pointer, limit=POINTER_LIMIT + 1)
    if held is not None:
        name = held.decode(errors="replace").strip()
        if not _plain_name(name) or len(held) > POINTER_LIMIT or not name.isprintable():
            raise UserError(f"{str(pointer)!r} names {_shown(name)}, which is not a checkpoint of this run; "
                            "refusing to load weights from outside it (delete that file to use the newest checkpoint)")
        candidate = root / name
        if (candidate / "meta.json").is_file():
            return confined(run_dir, candidate)
    done = sorted(p for p in root.glob("step-*") if (p / "meta.json").is_file() and ".tmp" not in p.name)
    return confined(run_dir, done[-1]) if done else None


POINTER_LIMIT = 255  # a checkpoint's name is short: a longer ``latest`` is not read further


def _shown(text: str) -> str:
    """How an error line shows what a file holds: a short path-like text as itself, nothing else
    (no terminal escapes, no long dumps of a file someone pointed us at)."""
    if len(text) <= 100 and text and all(c.isalnum() or c in "._-/" for c in text):
        return repr(text)
    return "something that is not a checkpoint name"


def _plain_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name and "\0" not in name


def confined(run_dir: Path, ckpt: Path) -> Path:
    """Return ``ckpt`` when it really is a folder directly inside ``run_dir/checkpoints`` (links
    resolved); otherwise raise ``UserError`` naming it."""
    sealed(run_dir, "checkpoints", "folder")
    if ckpt.parent == run_dir / "checkpoints":
        sealed(run_dir, f"checkpoints/{ckpt.name}", "folder")
    root = (run_dir / "checkpoints").resolve()
    if root.parent != run_dir.resolve():
        raise UserError(f"{str(run_dir / 'checkpoints')!r} leads outside the run (a link to another folder); "
                        "refusing to load checkpoints from it: make it a real folder of the run")
    if ckpt.resolve().parent != root:
        raise UserError(f"checkpoint {str(ckpt)!r} leads outside {str(run_dir / 'checkpoints')!r} (a link or a "
                        "path to another run); refusing to load it: replace it with a real checkpoint folder")
    _check_members(ckpt, CHECKPOINT_FILES)
    return ckpt


def _check_members(ckpt: Path, names) -> None:
    inside = ckpt.resolve()
    for fname in names:
        f = ckpt / str(fname)
        if _plain_name(str(fname)) and f.is_symlink():
            raise link_refused(f)
        if not _plain_name(str(fname)) or ((f.exists() or f.is_symlink()) and f.resolve().parent != inside):
            raise UserError(f"checkpoint {str(ckpt)!r} refers to {fname!r} outside its folder (a link or a path); "
                            "refusing to load it")


def read_meta(ckpt: Path) -> dict[str, Any]:
    try:
        meta = json.loads(read_nofollow(ckpt / "meta.json") or b"")
    except (OSError, ValueError, RecursionError):
        raise UserError(f"{str(ckpt)!r} is not a gencli checkpoint (no readable meta.json)") from None
    files = meta.get("files", {}) if isinstance(meta, dict) else None
    if not isinstance(files, dict):
        raise UserError(f"{str(ckpt)!r} is not a gencli checkpoint (meta.json is not a checkpoint description)")
    _check_members(ckpt, (*CHECKPOINT_FILES, *files))
    _check_meta_values(meta, ckpt)
    for fname, size in files.items():
        f = ckpt / fname
        if not f.is_file() or f.stat().st_size != size:
            raise UserError(f"checkpoint {str(ckpt)!r} is truncated or damaged ({fname} is incomplete)")
    return meta


# ------------------------------------------------------------------ the values a checkpoint holds
def _is_count(value: Any, maximum: int = MAX_COUNT) -> bool:
    return is_int(value) and 0 <= value <= maximum


def _damaged(where: Path, field: str, what: str, value: Any = None, present: bool = True) -> UserError:
    got = f", got {shown(value)}" if present else ""
    return UserError(f"{str(where)!r} is damaged: {field} {what}{got}")


def _check_meta_values(meta: dict[str, Any], ckpt: Path) -> None:
    """Refuse a meta.json value of the wrong type or range, naming the file and the field."""
    where = ckpt / "meta.json"
    for key, value in meta.get("files", {}).items():
        if not _is_count(value, 2**63 - 1):
            raise _damaged(where, f"files.{key}", "must be a size in bytes", value)
    for key in ("step", "epoch"):
        if key in meta and not _is_count(meta[key]):
            raise _damaged(where, key, f"must be a whole number from 0 to {MAX_COUNT:,}", meta[key])
    if "model" in meta and not isinstance(meta["model"], str):
        raise _damaged(where, "model", "must be a model name", meta["model"])
    if "format" in meta and not (_is_count(meta["format"]) and 1 <= meta["format"] <= FORMAT):
        raise _damaged(where, "format", f"must be a checkpoint format from 1 to {FORMAT}", meta["format"])
    named = ckpt.name.removeprefix("step-")
    if "step" in meta and named.isdigit() and int(named) != meta["step"]:
        raise _damaged(where, "step", f"must be the step its folder is named for ({int(named)})", meta["step"])


def _tensor_like(saved: Any, current: Any, where: Path, field: str, exact: bool = True) -> None:
    """Refuse ``saved`` unless it has the structure of ``current`` (a freshly built object's state):
    tables with the same kinds of values, finite numbers, tensors (of the same dtype and shape when
    ``exact``; a model's extra state may grow, a buffer of images say)."""
    if torch.is_tensor(current):
        if not torch.is_tensor(saved):
            raise _damaged(where, field, "must be a tensor", _describe(saved))
        if exact and (saved.dtype != current.dtype or saved.shape != current.shape):
            raise _damaged(where, field, f"must be a {str(current.dtype).removeprefix('torch.')} tensor of shape {list(current.shape)}",
                           _describe(saved))
    elif isinstance(current, bool):
        if not isinstance(saved, bool):
            raise _damaged(where, field, "must be true or false", saved)
    elif isinstance(current, (int, float)):
        # a float only needs to be finite (a gradient scaler's scale grows far past 2**63); an int fits 64 bits
        if isinstance(saved, bool) or not isinstance(saved, (int, float)) or (
                not math.isfinite(saved) if isinstance(saved, float) else abs(saved) > 2**63):
            raise _damaged(where, field, "must be a number", saved)
        if isinstance(current, int) and not isinstance(saved, int):
            raise _damaged(where, field, "must be a whole number", saved)
    elif isinstance(current, str):
        if not isinstance(saved, str):
            raise _damaged(where, field, "must be text", saved)
    elif isinstance(current, (list, tuple)):
        if not isinstance(saved, (list, tuple)) or len(saved) != len(current):
            raise _damaged(where, field, f"must be a list of {len(current)}", _describe(saved))
        for i, (s, c) in enumerate(zip(saved, current)):
            _tensor_like(s, c, where, f"{field}.{i}", exact)
    elif isinstance(current, dict):
        if not isinstance(saved, dict):
            raise _damaged(where, field, "must be a table", _describe(saved))
        missing = [k for k in current if k not in saved]
        if missing:
            raise _damaged(where, f"{field}.{missing[0]}", "is missing", present=False)
        for k, c in current.items():
            _tensor_like(saved[k], c, where, f"{field}.{k}", exact)
    # None and other kinds: whatever the object itself accepts


class _Said(str):
    """A description shown as it is in an error line (not quoted as a value would be)."""

    def __repr__(self) -> str:
        return str(self)


def _describe(value: Any) -> Any:
    if torch.is_tensor(value):
        return _Said(f"a {str(value.dtype).removeprefix('torch.')} tensor of shape {list(value.shape)}")
    return value


def _check_optimizer(saved: Any, optimizer: torch.optim.Optimizer, where: Path, field: str) -> None:
    """Refuse an optimizer state torch would take but training could not use (wrong groups, moments
    of another shape, a learning rate that is not a number)."""
    current = optimizer.state_dict()
    if not isinstance(saved, dict) or not isinstance(saved.get("state"), dict) or not isinstance(
            saved.get("param_groups"), list):
        raise _damaged(where, field, "must be an optimizer state (state and param_groups)", _describe(saved))
    groups = saved["param_groups"]
    if len(groups) != len(current["param_groups"]):
        raise _damaged(where, f"{field}.param_groups", f"must hold {len(current['param_groups'])} group(s)", groups)
    params = {}
    for i, (group, mine, live) in enumerate(zip(groups, current["param_groups"], optimizer.param_groups)):
        if not isinstance(group, dict):
            raise _damaged(where, f"{field}.param_groups.{i}", "must be a table", group)
        ids = group.get("params")
        if not isinstance(ids, list) or len(ids) != len(mine["params"]) or not all(_is_count(p) for p in ids):
            raise _damaged(where, f"{field}.param_groups.{i}.params",
                           f"must list the group's {len(mine['params'])} parameters", ids)
        for key, value in mine.items():
            if key != "params" and key in group:
                _tensor_like(group[key], value, where, f"{field}.param_groups.{i}.{key}")
        params.update(zip(ids, live["params"]))
    entries = None  # every parameter's state holds the same entries (exp_avg, momentum_buffer, ...)
    for pid, per_param in saved["state"].items():
        if pid not in params or not isinstance(per_param, dict):
            raise _damaged(where, f"{field}.state", "holds the state of a parameter the optimizer does not have", pid)
        if entries is not None and set(per_param) != entries:
            raise _damaged(where, f"{field}.state.{pid}", f"must hold {', '.join(sorted(map(str, entries)))}",
                           sorted(map(str, per_param)))
        entries = set(per_param)
        shape = params[pid].shape
        for key, value in per_param.items():
            if not torch.is_tensor(value) and not isinstance(value, (int, float)) or isinstance(value, bool):
                raise _damaged(where, f"{field}.state.{pid}.{key}", "must be a tensor or a number", _describe(value))
            if torch.is_tensor(value) and value.dim() > 0 and value.shape != shape:
                raise _damaged(where, f"{field}.state.{pid}.{key}", f"must have the parameter's shape {list(shape)}",
                               _describe(value))
            if torch.is_tensor(value) and not (value.is_floating_point() or value.dtype == torch.bool):
                raise _damaged(where, f"{field}.state.{pid}.{key}", "must be a floating-point tensor", _describe(value))


def check_training_state(state: Any, ckpt: Path, model, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return a state.pt's contents when every value fits ``model``; else raise ``UserError`` naming
    the file and the field. Nothing is applied: a refused checkpoint leaves the model untouched."""
    where = ckpt / "state.pt"
    if not isinstance(state, dict):
        raise UserError(f"{str(where)!r} is damaged: it is not a training state")
    fmt = state.get("format", FORMAT)
    if not (_is_count(fmt) and 1 <= fmt <= FORMAT):
        raise _damaged(where, "format", f"must be a checkpoint format from 1 to {FORMAT} (a newer gencli wrote it?)", fmt)
    for key in ("step", "epoch", "batch_in_epoch"):
        if key not in state:
            raise _damaged(where, key, "is missing", present=False)
        if not _is_count(state[key]):
            raise _damaged(where, key, f"must be a whole number from 0 to {MAX_COUNT:,}", state[key])
    meta = meta if meta is not None else {}
    if "step" in meta and meta["step"] != state["step"]:
        raise _damaged(where, "step", f"must be the step meta.json records ({meta['step']})", state["step"])
    for kind in ("optimizers", "schedulers", "scalers"):
        table = getattr(model, kind)
        saved = state.get(kind, {})
        if not isinstance(saved, dict):
            raise _damaged(where, kind, "must be a table", _describe(saved))
        if set(saved) != set(table):
            raise UserError(f"checkpoint {str(ckpt)!r} has {kind} {sorted(saved)}, model expects {sorted(table)}")
        for k, obj in table.items():
            if kind == "optimizers":
                _check_optimizer(saved[k], obj, where, f"{kind}.{k}")
            else:
                _tensor_like(saved[k], obj.state_dict(), where, f"{kind}.{k}")
    rng = state.get("rng")
    if not isinstance(rng, dict):
        raise _damaged(where, "rng", "must be a table of random generator states", _describe(rng))
    _tensor_like(rng.get("torch"), torch.get_rng_state(), where, "rng.torch")
    cuda = rng.get("cuda")
    if cuda is not None and not (isinstance(cuda, (list, tuple)) and all(
            torch.is_tensor(t) and t.dtype == torch.uint8 and t.dim() == 1 for t in cuda)):
        raise _damaged(where, "rng.cuda", "must be a list of uint8 generator states", _describe(cuda))
    extra = state.get("extra", {})
    if not isinstance(extra, dict):
        raise _damaged(where, "extra", "must be a table", _describe(extra))
    _tensor_like(extra, model.extra_state(), where, "extra", exact=False)
    _check_loop(state.get("loop", {}), where)
    return state


def _check_loop(loop: Any, where: Path) -> None:
    """The training loop's own state: the loss sums of a log window not yet written."""
    if not isinstance(loop, dict) or not isinstance(loop.get("losses", {}), dict):
        raise _damaged(where, "loop", "must be a table of the losses not yet logged", _describe(loop))
    window = loop.get("losses", {})
    if not window:
        return
    sums, count = window.get("sums"), window.get("count")
    if not isinstance(sums, dict) or not all(isinstance(k, str) and torch.is_tensor(v) and v.dim() == 0
                                             and v.is_floating_point() for k, v in sums.items()):
        raise _damaged(where, "loop.losses.sums", "must be a table of loss sums (scalar tensors)", _describe(sums))
    if not (_is_count(count) and count >= 1):
        raise _damaged(where, "loop.losses.count", "must be a whole number of steps, at least 1", count)


def load_weights(ckpt: Path, model) -> None:
    """Load network weights into ``model.nets``, refusing another model's checkpoint."""
    meta = read_meta(ckpt)
    if meta.get("model") != model.name:
        raise UserError(f"checkpoint {str(ckpt)!r} is of model {meta.get('model')!r}, not {model.name!r}")
    try:
        tensors = load_file(str(ckpt / "weights.safetensors"), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"cannot read weights in {str(ckpt)!r}: {exc}") from None
    for name, net in model.nets.items():
        prefix = f"{name}."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise UserError(f"checkpoint {str(ckpt)!r} does not fit network {name!r} of {model.name}: "
                            f"{state_dict_mismatch(exc)}") from None


def state_dict_mismatch(exc: RuntimeError, limit: int = 300) -> str:
    """Return torch's ``load_state_dict`` error in one line: its first detail (which weight, both shapes),
    not its header ("Error(s) in loading state_dict for Sequential:"), cut at a word when long."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    details = lines[1:] or lines[:1] or [type(exc).__name__]
    text = details[0].rstrip(".")
    if len(details) > 1:
        text += f" (and {len(details) - 1} more)"
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."


def load_training_state(ckpt: Path, model) -> dict[str, Any]:
    """Restore optimizers, schedulers, scalers, RNG and extra state; return the state dict."""
    meta = read_meta(ckpt)  # refuses files that lead outside the checkpoint before any is read
    try:
        state = torch.load(ckpt / "state.pt", map_location="cpu", weights_only=True)
    except Exception as exc:  # an unpickling refusal or a damaged file
        raise UserError(f"cannot read training state in {str(ckpt)!r}: {type(exc).__name__}") from None
    check_training_state(state, ckpt, model, meta)
    where = ckpt / "state.pt"
    for kind in ("optimizers", "schedulers", "scalers"):
        for k, obj in getattr(model, kind).items():
            try:
                obj.load_state_dict(state[kind][k])
            except (ValueError, KeyError, TypeError, RuntimeError) as exc:  # what the checks above cannot foresee
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                raise UserError(f"{str(where)!r} is damaged: {kind}.{k} does not fit the model: {first}") from None
    try:
        model.load_extra_state(state.get("extra", {}))
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise UserError(f"{str(where)!r} is damaged: extra does not fit the model: {first}") from None
    model.step = int(state["step"])
    set_rng_state(state["rng"])
    return state
