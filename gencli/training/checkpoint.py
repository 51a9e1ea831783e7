"""Checkpoints: weights as safetensors, the rest loaded with ``torch.load(weights_only=True)``.

Layout inside a run directory::

    checkpoints/step-00000400/weights.safetensors   networks' parameters and buffers, "<net>.<key>"
    checkpoints/step-00000400/state.pt              optimizers, schedulers, scalers, RNG, model extra state,
                                                    the losses not yet logged (at a Ctrl-C stop)
    checkpoints/step-00000400/meta.json             step, epoch, model name, file sizes
    checkpoints/latest                              name of the newest complete checkpoint

A checkpoint is written into ``.step-N.tmp-<pid>`` and renamed into place, then ``latest`` is
replaced atomically, so a run killed at any moment leaves its last complete checkpoint intact;
the hidden leftovers of a killed writer are removed before the run is trained again.
Nothing is ever unpickled: a checkpoint from a stranger cannot run code.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from gencli.errors import UserError
from gencli.fileio import fsync_dir, write_atomic, write_file

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
    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{model.step:08d}"
    tmp = root / f".{name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
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
        final = root / name
        if final.exists():  # re-saving the same step after a resume: set the old copy aside first
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
    gone = folder.with_name(f".{folder.name}.tmp-old-{os.getpid()}")
    os.replace(folder, gone)
    shutil.rmtree(gone, ignore_errors=True)


def _prune(root: Path, keep: int, protect: str) -> None:
    done = sorted(p for p in root.glob("step-*") if p.is_dir() and ".tmp" not in p.name)
    for old in done[:-keep] if keep > 0 else []:
        if old.name != protect:
            try:
                _discard(old)
            except OSError:
                pass  # pruning is housekeeping: the next checkpoint tries again


def remove_partial_writes(run_dir: Path) -> None:
    """Remove what writers killed mid-write left behind: hidden ``.NAME.tmp...`` files and folders
    in the run, its checkpoints and its samples. Only the run's lock holder may call this."""
    for folder in (run_dir, run_dir / "checkpoints", run_dir / "samples"):
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
    root = run_dir / "checkpoints"
    pointer = root / "latest"
    if pointer.is_file():
        name = pointer.read_text(errors="replace").strip()
        if not _plain_name(name):
            raise UserError(f"{str(pointer)!r} names {name!r}, which is not a checkpoint of this run; refusing to "
                            "load weights from outside it (delete that file to use the newest checkpoint)")
        candidate = root / name
        if (candidate / "meta.json").is_file():
            return confined(run_dir, candidate)
    done = sorted(p for p in root.glob("step-*") if (p / "meta.json").is_file() and ".tmp" not in p.name)
    return confined(run_dir, done[-1]) if done else None


def _plain_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name and "\0" not in name


def confined(run_dir: Path, ckpt: Path) -> Path:
    """Return ``ckpt`` when it really is a folder directly inside ``run_dir/checkpoints`` (links
    resolved); otherwise raise ``UserError`` naming it."""
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
        if not _plain_name(str(fname)) or ((f.exists() or f.is_symlink()) and f.resolve().parent != inside):
            raise UserError(f"checkpoint {str(ckpt)!r} refers to {fname!r} outside its folder (a link or a path); "
                            "refusing to load it")


def read_meta(ckpt: Path) -> dict[str, Any]:
    try:
        meta = json.loads((ckpt / "meta.json").read_text())
    except (OSError, ValueError):
        raise UserError(f"{str(ckpt)!r} is not a gencli checkpoint (no readable meta.json)") from None
    files = meta.get("files", {}) if isinstance(meta, dict) else None
    if not isinstance(files, dict):
        raise UserError(f"{str(ckpt)!r} is not a gencli checkpoint (meta.json is not a checkpoint description)")
    _check_members(ckpt, (*CHECKPOINT_FILES, *files))
    for fname, size in files.items():
        f = ckpt / fname
        if not f.is_file() or f.stat().st_size != size:
            raise UserError(f"checkpoint {str(ckpt)!r} is truncated or damaged ({fname} is incomplete)")
    return meta


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
            first = str(exc).strip().splitlines()[0]
            raise UserError(f"checkpoint {str(ckpt)!r} does not fit network {name!r} of {model.name}: {first}") from None


def load_training_state(ckpt: Path, model) -> dict[str, Any]:
    """Restore optimizers, schedulers, scalers, RNG and extra state; return the state dict."""
    read_meta(ckpt)  # refuses files that lead outside the checkpoint before any is read
    try:
        state = torch.load(ckpt / "state.pt", map_location="cpu", weights_only=True)
    except Exception as exc:  # an unpickling refusal or a damaged file
        raise UserError(f"cannot read training state in {str(ckpt)!r}: {type(exc).__name__}") from None
    for kind in ("optimizers", "schedulers", "scalers"):
        table = getattr(model, kind)
        saved = state.get(kind, {})
        if set(saved) != set(table):
            raise UserError(f"checkpoint {str(ckpt)!r} has {kind} {sorted(saved)}, model expects {sorted(table)}")
        for k, obj in table.items():
            obj.load_state_dict(saved[k])
    model.load_extra_state(state.get("extra", {}))
    model.step = int(state["step"])
    set_rng_state(state["rng"])
    return state
