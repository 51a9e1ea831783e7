"""The training engine: one loop, read top to bottom, for every model.

train(config)
  1. resolve the model class, hyperparameters, device and data (or read them from the run to resume)
  2. build the model (seeded), and restore the last checkpoint when resuming
  3. loop: batch -> model.train_step -> log / sample / checkpoint at their intervals
  4. on the end, Ctrl-C or a non-finite loss: write what is due (checkpoint, GIF, loss plot)

Losses stay on the device and are read only when a log line is due; a non-finite loss is
caught at its exact step without a per-step sync, and never reaches a checkpoint.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import gencli
from gencli.data.base import BatchStream, DataRequest, ImageData
from gencli.data.resolve import check_kind, load_dataset
from gencli.errors import UserError
from gencli.models import hparams
from gencli.models.base import Model
from gencli.training import checkpoint as ckpt
from gencli.training import distributed as dist_util
from gencli.training.threads import ThreadPolicy
from gencli.runs import METRICS_FILE, append_row, new_run_dir, read_run_info, truncate_rows, write_run_info

DEFAULT_DATA = {"images": "shapes", "labelled": "shapes", "paired": "shapes-paired", "unpaired": "shapes-unpaired"}
PRECISIONS = ("fp32", "bf16", "fp16")
# Settings a TOML config may hold at its top level (the rest go in [hyperparameters]).
CONFIG_KEYS = ("model", "data", "steps", "epochs", "batch_size", "image_size", "channels", "lr", "device",
               "precision", "seed", "sample_every", "checkpoint_every", "log_every", "keep_checkpoints", "compile")


@dataclass
class TrainConfig:
    model: str
    data: str | None = None
    steps: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    image_size: int | None = None
    channels: int | None = None
    lr: float | None = None
    device: str = "auto"
    precision: str = "fp32"
    seed: int = 0
    overrides: dict[str, Any] = field(default_factory=dict)
    source: str | None = None  # `train MODEL --from RUN`: the run a two-stage model builds on
    out: Path | None = None
    resume: Path | None = None
    sample_every: int | None = None
    checkpoint_every: int | None = None
    log_every: int = 10
    keep_checkpoints: int = 3
    compile: bool = False
    sync_bn: bool = False
    tensorboard: bool = False
    quiet: bool = False
    sample_count: int = 36


def check_devices(processes: int, device: torch.device) -> None:
    """Refuse more processes than GPUs on CUDA (each process takes one); on the CPU any number runs."""
    if device.type == "cuda" and processes > torch.cuda.device_count():
        raise UserError(f"--devices {processes} asks for more GPUs than the {torch.cuda.device_count()} visible; "
                        "use at most that many, or --device cpu")
    if device.type == "mps" and processes > 1:
        raise UserError("--devices above 1 needs CUDA GPUs or the CPU; MPS trains in one process")


def check_sync_bn(device: torch.device) -> None:
    if device.type != "cuda":
        raise UserError(f"--sync-bn needs CUDA devices (torch's SyncBatchNorm runs on GPUs only), not {device.type}; "
                        "without it each process normalises with its own batch statistics")


def resolve_device(name: str) -> torch.device:
    """Return the device for ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but no CUDA device is available (use --device cpu or auto)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserError("--device mps asked for, but MPS is not available (use --device cpu or auto)")
    if name not in ("cpu", "mps") and not name.startswith("cuda"):
        raise UserError(f"unknown --device {name!r}: use auto, cpu, cuda or mps")
    return torch.device(name)


def check_precision(precision: str, device: torch.device) -> str:
    if precision not in PRECISIONS:
        raise UserError(f"unknown --precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise UserError("--precision fp16 needs a CUDA device; use bf16 on CPU")
    return precision


def _positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {value}")


class LossTracker:
    """Running sums of the step losses, kept on the device; read only at flush."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.bad: dict[str, torch.Tensor] = {}
        self.count = 0
        self.images = 0
        self.since = time.perf_counter()

    def add(self, losses: dict[str, Any], step: int, images: int) -> None:
        for key, value in losses.items():
            v = value.detach().float() if torch.is_tensor(value) else torch.tensor(float(value))
            if key in self.sums:
                self.sums[key] = self.sums[key] + v
            else:
                self.sums[key] = v.clone()
                self.bad[key] = torch.full((), -1, dtype=torch.long, device=v.device)
            finite = torch.isfinite(v)
            self.bad[key] = torch.where(~finite & (self.bad[key] < 0), torch.full_like(self.bad[key], step), self.bad[key])
        self.count += 1
        self.images += images

    def first_non_finite(self) -> tuple[str, int] | None:
        """Return (loss name, step) of the first non-finite loss since the last flush, or None."""
        worst = None
        for key, bad in self.bad.items():
            step = int(bad)
            if step >= 0 and (worst is None or step < worst[1]):
                worst = (key, step)
        return worst

    def flush(self, info: dist_util.DistInfo) -> tuple[dict[str, float], float]:
        """Return (mean losses since the last flush, images per second) and reset."""
        means = {k: v / max(self.count, 1) for k, v in self.sums.items()}
        if info.enabled:
            means = dist_util.mean_across(means)
        elapsed = max(time.perf_counter() - self.since, 1e-9)
        rate = self.images * info.world_size / elapsed
        out = {k: float(v) for k, v in means.items()}
        self.sums, self.bad, self.count, self.images, self.since = {}, {}, 0, 0, time.perf_counter()
        return out, rate


class NonFiniteLoss(Exception):
    pass


class Interrupt:
    """Turns the first Ctrl-C into a clean stop at the end of the current step."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> "Interrupt":
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread
            self._previous = None
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def merge_config_file(values: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """Return training options from a TOML file, with ``values`` (from the CLI) taking precedence."""
    raw = hparams.read_config(path)
    hyper = raw.pop("hyperparameters", {})
    unknown = [k for k in raw if k not in CONFIG_KEYS]
    if unknown:
        from gencli.errors import did_you_mean

        raise UserError(f"unknown setting {unknown[0]!r} in {str(path)!r}{did_you_mean(unknown[0], CONFIG_KEYS)}; "
                        "hyperparameters belong in a [hyperparameters] table")
    if not isinstance(hyper, dict):
        raise UserError(f"[hyperparameters] in {str(path)!r} must be a table")
    merged = dict(raw)
    given = {k: v for k, v in values.items() if v is not None and k != "overrides"}
    if "steps" in given or "epochs" in given:  # the command line's run length replaces the file's
        merged.pop("steps", None)
        merged.pop("epochs", None)
    merged.update(given)
    merged["overrides"] = {**hyper, **values.get("overrides", {})}
    return merged


@dataclass
class Plan:
    """Everything the loop needs, whether starting fresh or resuming."""

    cls: type
    hp: Any
    info: dict[str, Any]
    data: ImageData
    run_dir: Path | None
    resume_from: Path | None


def _plan_new(config: TrainConfig) -> Plan:
    from gencli.plugins import registry

    spec = registry().model(config.model)
    cls: type[Model] = registry().model_class(config.model)
    d = cls.defaults
    values = dict(config.overrides)
    if config.lr is not None:
        values["lr"] = config.lr
    source = None
    if config.source:
        from gencli.runs import Run

        source = Run.open(config.source)
        # the model records what it needs of the source before its hyperparameters are checked
        hp = hparams.build(cls.Hyperparameters, values, validate=False)
        hp = cls.train_from(hp, source)
        hparams.check(hp)
    else:
        hp = hparams.build(cls.Hyperparameters, values)
    for name in ("steps", "epochs", "batch_size", "image_size", "channels", "sample_every", "checkpoint_every"):
        _positive(name, getattr(config, name))
    if config.steps is not None and config.epochs is not None:
        raise UserError("give --steps or --epochs, not both")
    # a model trained on top of another run defaults to that run's data and image shape
    image_size = config.image_size or (source.image_shape[1] if source else None) or d.image_size
    channels = config.channels or (source.image_shape[0] if source else None) or d.channels
    cls.check_shape(image_size, channels)
    data_spec = config.data or (source.data_spec if source else None) or DEFAULT_DATA[cls.data]
    request = DataRequest(image_size, channels, "train", config.seed, load_size=cls.load_size(hp, image_size))
    data = load_dataset(data_spec, request)
    check_kind(cls.name, cls.data, data, data_spec)
    if cls.conditional and cls.data == "labelled" and not data.num_classes:
        raise UserError(f"model {cls.name!r} is conditional and needs labelled data; {data_spec!r} has no labels")
    info = {
        "gencli_version": gencli.__version__,
        "plugin": spec.plugin,
        "plugin_distribution": _plugin_field(spec.plugin, "distribution"),
        "plugin_version": _plugin_field(spec.plugin, "version"),
        # the name the user asked for: "plugin:name" for a shadowed model, so it reloads as itself
        "model": config.model if ":" in config.model else cls.name,
        "hyperparameters": hparams.to_dict(hp),
        "source_run": str(source.dir) if source else None,
        "data": {
            "spec": data_spec,
            "kind": data.kind,
            "image_shape": [channels, image_size, image_size],
            "load_size": request.load_size,
            "classes": data.classes if cls.conditional or data.kind == "labelled" else None,
            "size": len(data),
        },
        "training": {
            "steps": config.steps,
            "epochs": config.epochs,
            "batch_size": config.batch_size or d.batch_size,
            "seed": config.seed,
            "precision": config.precision,
            "sample_every": config.sample_every or d.sample_every,
            "checkpoint_every": config.checkpoint_every or d.checkpoint_every,
            "log_every": config.log_every,
            "keep_checkpoints": config.keep_checkpoints,
            "sample_count": config.sample_count,
        },
        "step": 0,
        "status": "created",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return Plan(cls, hp, info, data, None, None)


def _plan_resume(config: TrainConfig) -> Plan:

    run_dir = Path(config.resume)
    if not run_dir.is_dir():
        raise UserError(f"--resume {str(run_dir)!r}: no such run directory")
    info = read_run_info(run_dir)
    last = ckpt.latest_checkpoint(run_dir)
    if last is None:
        raise UserError(f"run {str(run_dir)!r} has no complete checkpoint to resume from")
    from gencli.runs import Run

    cls = Run(run_dir, info, last).model_class()
    hp = hparams.build(cls.Hyperparameters, info["hyperparameters"], source="run.json")
    t = info["training"]
    if config.steps is not None or config.epochs is not None:
        _positive("steps", config.steps)
        _positive("epochs", config.epochs)
        t["steps"], t["epochs"] = config.steps, config.epochs
    d = info["data"]
    request = DataRequest(d["image_shape"][1], d["image_shape"][0], "train", t["seed"], load_size=d.get("load_size"))
    data = load_dataset(d["spec"], request)
    return Plan(cls, hp, info, data, run_dir, last)


def _plugin_field(plugin: str, key: str) -> str:
    from gencli.plugins import registry

    info = registry().plugin(plugin)
    return getattr(info, key) if info is not None else ""


def _total_steps(t: dict[str, Any], batches_per_epoch: int, default: int) -> int:
    if t.get("steps"):
        return int(t["steps"])
    if t.get("epochs"):
        return int(t["epochs"]) * batches_per_epoch
    return default


def _preview_data(plan: Plan, model: Model) -> ImageData:
    """Held-out images for translation/reconstruction previews; the training data otherwise."""
    if not (model.can("translate") or (model.can("reconstruct") and not model.can("interpolate"))):
        return plan.data
    d = plan.info["data"]
    request = DataRequest(d["image_shape"][1], d["image_shape"][0], "test", plan.info["training"]["seed"])
    try:
        return load_dataset(d["spec"], request)
    except UserError:
        return plan.data


def train(config: TrainConfig, display=None) -> Path:
    """Train as configured; return the run directory."""
    info_dist = dist_util.from_environment()
    device = resolve_device(config.device)
    if info_dist.enabled and device.type == "cuda":
        device = torch.device("cuda", info_dist.local_rank)
        torch.cuda.set_device(device)
    dist_util.init(info_dist, device)

    if config.tensorboard:
        from gencli.training.tensorboard import require_tensorboard

        require_tensorboard()  # fail before any data is loaded
    plan = _plan_resume(config) if config.resume else _plan_new(config)
    info, t = plan.info, plan.info["training"]
    precision = check_precision(t["precision"] if config.resume else config.precision, device)
    t["precision"] = precision
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    torch.manual_seed(t["seed"])
    image_shape = tuple(info["data"]["image_shape"])
    model: Model = plan.cls(plan.hp, image_shape, info["data"]["classes"], device=device, precision=precision)
    info["hyperparameters"] = hparams.to_dict(model.hp)  # models may record settings derived while building
    if config.sync_bn:
        check_sync_bn(device)
    if config.sync_bn and info_dist.enabled:
        for k, net in model.nets.items():
            model.nets[k] = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
    if info_dist.enabled:
        model.process_group = torch.distributed.group.WORLD
        model.rank, model.world_size = info_dist.rank, info_dist.world_size
        dist_util.broadcast_model(model)
    if device.type == "cuda":
        for net in model.nets.values():
            net.to(memory_format=torch.channels_last)
    if config.compile:
        compile_networks(model)

    load_size = info["data"].get("load_size")
    stream = BatchStream(plan.data, t["batch_size"], device, t["seed"], info_dist.rank, info_dist.world_size,
                         crop_size=image_shape[1] if load_size else None, flip=plan.cls.augment_flip)
    total = _total_steps(t, len(stream), plan.cls.defaults.steps)
    epoch, batch_index = 0, 0
    if plan.resume_from is not None:
        ckpt.load_weights(plan.resume_from, model)
        state = ckpt.load_training_state(plan.resume_from, model)
        epoch, batch_index = int(state["epoch"]), int(state["batch_in_epoch"])
        if model.step >= total:
            raise UserError(
                f"run {str(plan.run_dir)!r} already reached step {model.step} of {total}; "
                f"pass --steps N with N > {model.step} to train further"
            )

    # measured last, so the load it sees is the one training starts into
    threads = ThreadPolicy.start(device.type, info_dist.world_size)
    run_dir = plan.run_dir
    if info_dist.is_main:
        if run_dir is None:
            run_dir = new_run_dir(info["model"], info["data"]["spec"], config.out)
        else:
            truncate_rows(run_dir / METRICS_FILE, model.step)
        info["status"] = "running"
        info["total_steps"] = total
        info["device"] = str(device)
        info["threads"] = threads.chosen
        info["thread_choice"] = threads.record()
        info["world_size"] = info_dist.world_size
        write_run_info(run_dir, info)
    run_dir = Path(dist_util.broadcast_object(str(run_dir) if run_dir else None, info_dist))

    preview_inputs = model.preview_inputs(_preview_data(plan, model), t.get("sample_count", config.sample_count), t["seed"])
    loop = _Loop(model, stream, run_dir, info, total, info_dist, config, preview_inputs, threads)
    try:
        loop.run(epoch, batch_index, display)
    finally:
        model.process_group = None  # nothing may keep the group alive past shutdown()
        dist_util.shutdown()
    return run_dir


def compile_networks(model: Model) -> bool:
    """``torch.compile`` each network in place; warn in one line and stay eager where that cannot work.

    ``nn.Module.compile`` is lazy: a missing backend (no C++ compiler for CPU code, no Triton for
    CUDA) would only surface at the first forward pass, as a long traceback per compiled frame. A
    tiny function compiled and run on the model's device first finds that out before training.
    """
    import logging

    import torch._dynamo

    if model.device.type != "cuda":  # a CUDA build on a machine without CUDA says so on every compile
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    try:
        probe = torch.compile(lambda x: torch.nn.functional.silu(x) * 2 + 1, dynamic=False)
        probe(torch.ones(8, device=model.device))
    except Exception as exc:  # noqa: BLE001 - any backend failure means: train eagerly
        from gencli.ui.console import warn

        reason = (str(exc).strip().splitlines() or [""])[0]
        warn(f"--compile unavailable on {model.device.type} ({type(exc).__name__}: {reason}); training without it")
        return False
    torch._dynamo.config.suppress_errors = True  # a graph the backend cannot take runs eagerly
    for net in model.nets.values():
        net.compile()
    return True


class _Loop:
    """The training loop and what it writes at its intervals."""

    def __init__(self, model, stream, run_dir, info, total, dist_info, config, preview_inputs,
                 threads: ThreadPolicy | None = None) -> None:
        self.model, self.stream, self.run_dir, self.info = model, stream, run_dir, info
        self.threads = threads
        self.total, self.dist, self.config = total, dist_info, config
        self.preview_inputs = preview_inputs
        t = info["training"]
        self.sample_every, self.checkpoint_every = t["sample_every"], t["checkpoint_every"]
        self.log_every, self.keep = t.get("log_every", 10), t.get("keep_checkpoints", 3)
        self.tracker = LossTracker()
        self.last_losses: dict[str, float] = {}
        self.epoch, self.next_batch = 0, 0
        self.start_step = model.step
        self.started = time.perf_counter()
        self.tensorboard = None
        self.interrupt: Interrupt | None = None
        self.stop_agreed = False  # data parallel: every process saw a Ctrl-C by the last log step
        if config.tensorboard and dist_info.is_main:
            from gencli.training.tensorboard import TensorBoardLogger

            self.tensorboard = TensorBoardLogger.for_run(run_dir, start_step=model.step)
            self.tensorboard.log_run(info, model.step)

    # -- what happens at intervals
    def log(self, display) -> None:
        if self.tracker.count == 0:
            return
        bad = self.tracker.first_non_finite()
        if self.dist.enabled:
            # one all-reduce agrees on a non-finite loss anywhere and on a Ctrl-C seen anywhere
            interrupted = self.interrupt is not None and self.interrupt.requested
            flag = torch.tensor([bad[1] if bad else -1, int(interrupted)], device=self.model.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            bad_step, self.stop_agreed = flag.tolist()
            if bad_step >= 0 and bad is None:
                bad = ("loss on another process", int(bad_step))
        if bad is not None:
            raise NonFiniteLoss(*bad)
        losses, rate = self.tracker.flush(self.dist)
        self.last_losses = losses
        done = self.model.step - self.start_step
        elapsed = time.perf_counter() - self.started
        eta = (self.total - self.model.step) * elapsed / max(done, 1)
        if self.dist.is_main:
            row = {"step": self.model.step, "epoch": self.epoch, **{k: round(v, 6) for k, v in losses.items()},
                   "images_per_s": round(rate, 1)}
            append_row(self.run_dir / METRICS_FILE, row)
            if self.tensorboard is not None:
                self.tensorboard.log_losses(self.model.step, losses, rate)
            if display is not None:
                display.update(self.model.step, self.epoch, losses, rate, eta, force=self.model.step >= self.total)
        # the interval just trained is the load sample: reading it costs two small file reads
        if self.threads is not None and self.threads.recheck(self.model.step):
            change = self.threads.changes[-1]
            self.info["thread_choice"] = self.threads.record()
            if display is not None and self.dist.is_main:
                display.note(f"CPU threads {change['from']} -> {change['threads']} ({change['reason']})")

    def sample(self, display) -> None:
        if not self.dist.is_main:
            return
        from gencli.media.images import save_grid

        model = self.model
        devices = [model.device] if model.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            model.eval()
            images, nrow = model.preview(self.preview_inputs)
            model.train()
        path = save_grid(images.float(), self.run_dir / "samples" / f"step-{model.step:08d}.png", nrow)
        if self.tensorboard is not None:
            self.tensorboard.log_samples(model.step, images, nrow)
        if display is not None:
            display.note(f"samples: {path}")

    def checkpoint(self, display) -> None:
        self.log(display)  # a non-finite loss must never reach a checkpoint
        if not self.dist.is_main:
            return
        path = ckpt.save_checkpoint(self.run_dir, self.model, self.epoch, self.next_batch, keep=self.keep)
        self.info["step"] = self.model.step
        write_run_info(self.run_dir, self.info)
        if display is not None:
            display.note(f"checkpoint: {path}")

    def finish_media(self) -> None:
        if not self.dist.is_main:
            return
        if self.tensorboard is not None:
            self.tensorboard.flush()
        from gencli.media.images import gif_from_pngs
        from gencli.media.loss_curves import plot_losses
        from gencli.runs import read_training_rows

        frames = sorted((self.run_dir / "samples").glob("step-*.png"))
        frames = [f for f in frames if int(f.stem.split("-")[1]) <= self.model.step]
        gif_from_pngs(frames, self.run_dir / "progress.gif")
        plot_losses(read_training_rows(self.run_dir / METRICS_FILE), self.run_dir / "losses.png", title=self.run_dir.name)

    def set_status(self, status: str, **extra) -> None:
        if self.dist.is_main:
            self.info.update(status=status, **extra)
            write_run_info(self.run_dir, self.info)

    def stopping(self) -> bool:
        """Whether to stop for a Ctrl-C now. Processes of a data-parallel run stop together, at the
        first log step after any of them saw it, so their collectives stay in step."""
        if self.dist.enabled:
            return bool(self.stop_agreed)
        return self.interrupt is not None and self.interrupt.requested

    # -- the loop
    def run(self, epoch: int, batch_index: int, display) -> None:
        from gencli.ui.live import TrainDisplay

        model = self.model
        title = f"{model.name} on {self.info['data']['spec']}  ->  {self.run_dir}"
        display = display or TrainDisplay(title, self.total, quiet=self.config.quiet or not self.dist.is_main)
        self.epoch, self.next_batch = epoch, batch_index
        model.train()
        with display, Interrupt() as interrupt:
            self.interrupt = interrupt
            try:
                while model.step < self.total and not self.stopping():
                    for batch in self.stream.epoch(self.epoch, start=self.next_batch):
                        losses = model.train_step(batch)
                        model.step += 1
                        self.next_batch += 1
                        if self.next_batch >= len(self.stream):
                            self.epoch, self.next_batch = self.epoch + 1, 0
                        self.tracker.add(losses, model.step, len(batch) * 1)
                        last = model.step >= self.total
                        if model.step % self.log_every == 0 or last:
                            self.log(display)
                        if model.step % self.sample_every == 0 or last:
                            self.sample(display)
                        if model.step % self.checkpoint_every == 0 or last:
                            self.checkpoint(display)
                        if last or self.stopping():
                            break
                    else:
                        continue
                    break
            except NonFiniteLoss as exc:
                name, step = exc.args
                self.finish_media()
                self.set_status("failed", failed_step=step)
                last = ckpt.latest_checkpoint(self.run_dir) if self.dist.is_main else None
                where = f"the last good checkpoint is {last}" if last else "no checkpoint was written"
                raise UserError(f"loss {name!r} became non-finite at step {step}; training stopped, {where}") from None
            if self.stopping() and model.step < self.total:
                self.checkpoint(display)
                self.finish_media()
                self.set_status("interrupted")
                if display is not None:
                    display.note(f"interrupted at step {model.step}; continue with: gencli train --resume {self.run_dir}")
                return
        self.finish_media()
        self.set_status("finished", finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"), final_losses=self.last_losses)
        if self.tensorboard is not None:
            self.tensorboard.close()
