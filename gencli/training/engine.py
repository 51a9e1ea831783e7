"""The training engine: one loop, read top to bottom, for every model.

train(config)
  1. plan: the settings decided once, the device checked, the data loaded (``planning``; or the
     run to resume read and checked)
  2. build the model (seeded) on its device (``device``), and restore the last checkpoint when resuming
  3. loop: batch -> model.train_step -> log / sample / checkpoint at their intervals
  4. on the end, Ctrl-C or a non-finite loss: write what is due (checkpoint, GIF, loss plot); a
     Ctrl-C then raises Interrupted, a disk that refuses a write ends in one UserError line

A run holds a lock on its directory while it trains. Log lines come at the log interval, at
checkpoints and at the end, however often the run was stopped and resumed: a Ctrl-C stop between
checkpoints carries the losses not yet logged in its checkpoint (``losses``).
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
from pathlib import Path
from typing import Any

import torch

from gencli.data.base import BatchStream
from gencli.errors import Interrupted, UserError
from gencli.fileio import append_line, naming, sealed, write_failure
from gencli.loggers import Loggers
from gencli.media.model_card import write_model_card
from gencli.models import hparams
from gencli.models.base import Model
from gencli.runs import (
    METRICS_FILE,
    Run,
    RunInfo,
    new_run_dir,
    truncate_rows,
    write_run_info,
)
from gencli.runs import checkpoints as ckpt
from gencli.runs.lock import RunLock
from gencli.training import distributed as dist_util
from gencli.training import planning
from gencli.training.device import build_model, prepare_model
from gencli.training.intervals import interval_steps
from gencli.training.losses import BadLoss, LossTracker, NonFiniteLoss, bad_loss_message, logged_losses, loss_row, quality_row
from gencli.training.settings import (  # noqa: F401 - what callers of the engine have always imported from it
    CONFIG_KEYS,
    TrainConfig,
    TrainSettings,
    check_settings,
    merge_config_file,
)
from gencli.training.threads import ThreadPolicy


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


def train(config: TrainConfig, display=None) -> Path:
    """Train as configured; return the run directory.

    Raises ``Interrupted`` (a KeyboardInterrupt) after a Ctrl-C, once the run is checkpointed and
    marked interrupted, and ``UserError`` for a write the disk refused (full, read-only, ...).
    """
    check_settings(config)
    info_dist = dist_util.from_environment()
    try:
        with contextlib.ExitStack() as held:
            try:
                return _train(config, display, info_dist, held)
            except OSError as exc:
                failure = write_failure(exc)
                if failure is None:
                    raise
                cause, remedy = failure
                raise UserError(f"cannot write {exc.filename!r}: {cause}; {remedy}") from None
    finally:
        # whatever ended training (a user error before the loop included), the process group's
        # threads must be joined while Python is alive, or a worker aborts at exit
        dist_util.shutdown()


def batches_per_step(model: Model) -> int:
    """Return how many real batches one ``train_step`` of ``model`` consumes (the contract's ``batches_per_step``)."""
    k = getattr(model, "batches_per_step", 1)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise TypeError(f"{type(model).__name__}.batches_per_step must be a whole number >= 1, got {k!r}")
    return k


def _lock_run(run_dir: Path, held: contextlib.ExitStack) -> RunLock:
    """Hold the run's lock until training ends; a run resumed must be sealed (no link inside it).

    What a killed writer left half-written is cleared later (``_start_run``), once the resume is
    accepted: a refused command deletes nothing.
    """
    from gencli.runs import check_sealed

    lock = held.enter_context(RunLock(run_dir))
    check_sealed(run_dir)
    return lock


def _start_run(run_dir: Path, lock: RunLock | None) -> None:
    """Training starts now: clear a killed writer's leftovers and keep this process's id in the lock."""
    ckpt.remove_partial_writes(run_dir)
    if lock is not None:
        lock.keep()


def _train(config: TrainConfig, display, info_dist: dist_util.DistInfo, held: contextlib.ExitStack) -> Path:
    if config.tensorboard:
        from gencli.training.tensorboard import require_tensorboard

        require_tensorboard()  # fail before any data is loaded
    lock = None
    if config.resume is not None and info_dist.is_main and Path(config.resume).is_dir():
        lock = _lock_run(Path(config.resume), held)  # before the checkpoint to resume is chosen: nobody prunes it now
    plan = planning.plan(config, info_dist)
    s, info, device = plan.settings, plan.info, plan.device
    dist_util.init(info_dist, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    torch.manual_seed(s.seed)
    record = RunInfo(info)  # the run's record as planned: read through its accessors, written by this loop
    model: Model = build_model(s.model_class, plan.hp, s.image_shape, record.recorded_classes, device, s.precision)
    info["hyperparameters"] = hparams.to_dict(model.hp)  # models may record settings derived while building
    prepare_model(model, s, device, info_dist)

    load_size = record.load_size
    stream = BatchStream(plan.data, s.batch_size, device, s.seed, info_dist.rank, info_dist.world_size,
                         crop_size=s.image_size if load_size else None, flip=s.model_class.augment_flip)
    # An epoch stays one pass over the data: a model that consumes k batches a step takes 1/k the steps.
    total = s.total_steps(len(stream) / batches_per_step(model))
    epoch, batch_index = 0, 0
    window: dict[str, Any] = {}
    if plan.resume_from is not None:
        ckpt.load_weights(plan.resume_from, model)
        state = ckpt.load_training_state(plan.resume_from, model)
        epoch, batch_index = int(state["epoch"]), int(state["batch_in_epoch"])
        if batch_index >= len(stream):  # an epoch has len(stream) batches: a later one would never come
            if (record.world_size or info_dist.world_size) == info_dist.world_size:
                raise UserError(f"{str(plan.resume_from / 'state.pt')!r} is damaged: batch_in_epoch must be below "
                                f"the {len(stream):,} batches of an epoch, got {batch_index:,}")
            epoch, batch_index = epoch + 1, 0  # fewer batches per process than the run had: the epoch is done
        window = state.get("loop", {}).get("losses", {})
        # a run stopped between its final checkpoint and its last files is finished, not refused
        unfinished = model.step == total and record.status != "finished"
        if model.step >= total and not unfinished:
            raise UserError(
                f"run {str(plan.run_dir)!r} already reached step {model.step} of {total}; "
                f"pass --steps N with N > {model.step} to train further"
            )
        info.setdefault("resumes", []).append({"step": model.step, "device": str(device), "changed": s.changes,
                                               "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})

    # before the run is written to: a file they cannot load ends the command with the run unchanged
    preview_inputs = model.preview_inputs(planning.preview_data(plan, model), s.sample_count, s.seed)
    probe = planning.quality_probe(plan, model) if info_dist.is_main else None
    # measured last, so the load it sees is the one training starts into
    threads = ThreadPolicy.start(device.type, info_dist.world_size)
    run_dir = plan.run_dir
    if info_dist.is_main:
        if run_dir is None:
            run_dir = new_run_dir(s.model, s.data, s.out)
            lock = _lock_run(run_dir, held)
            _start_run(run_dir, lock)
        else:
            _start_run(run_dir, lock)
            truncate_rows(run_dir / METRICS_FILE, model.step)
        info["status"] = "running"
        info["total_steps"] = total
        info["device"] = str(device)
        info["threads"] = threads.chosen
        info["thread_choice"] = threads.record()
        info["world_size"] = info_dist.world_size
        if s.log:
            info["loggers"] = list(s.log)  # where `gencli eval` and a resume send their values too
        write_run_info(run_dir, info)
    run_dir = Path(dist_util.broadcast_object(str(run_dir) if run_dir else None, info_dist))

    loop = _Loop(model, stream, run_dir, info, total, info_dist, s, preview_inputs, probe, threads)
    loop.tracker.restore(window, device)
    try:
        loop.run(epoch, batch_index, display)
    finally:
        model.process_group = None  # nothing may keep the group alive past shutdown()
        dist_util.shutdown()
    return run_dir


class _Loop:
    """The training loop and what it writes at its intervals."""

    def __init__(self, model, stream, run_dir, info, total, dist_info, settings: TrainSettings, preview_inputs,
                 probe=None,
                 threads: ThreadPolicy | None = None) -> None:
        self.model, self.stream, self.run_dir, self.info = model, stream, run_dir, info
        self.threads = threads
        self.total, self.dist, self.settings = total, dist_info, settings
        self.preview_inputs = preview_inputs
        steps_per_epoch = len(stream) / batches_per_step(model)
        self.sample_every = interval_steps(settings.sample_every, steps_per_epoch, "sample_every")
        self.checkpoint_every = interval_steps(settings.checkpoint_every, steps_per_epoch, "checkpoint_every")
        self.probe = probe
        self.eval_every = interval_steps(settings.eval_every, steps_per_epoch, "eval_every") if probe else 0
        self.eval_seconds = 0.0  # spent probing: not training time
        self.log_every, self.keep = settings.log_every, settings.keep_checkpoints
        self.tracker = LossTracker()
        self.last_losses: dict[str, float] = {}
        self.epoch, self.next_batch = 0, 0
        self.start_step = model.step
        self.started = time.perf_counter()
        self.loggers = Loggers()  # the experiment trackers (--log): none here but on the main process
        self.interrupt: Interrupt | None = None
        self.stop_agreed = False  # data parallel: some process saw a Ctrl-C by the last agreement
        self.saved_step = -1
        if settings.log and dist_info.is_main:
            self.loggers = Loggers.build(settings.log, run_dir, model.step)
            self.loggers.start({**info, "command": "train"})

    # -- what happens at intervals
    def check_finite(self) -> None:
        """Raise NonFiniteLoss for the first non-finite loss since the last log line, on any process."""
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

    def log(self, display) -> None:
        if self.tracker.count == 0:
            return
        self.check_finite()
        losses, rate = self.tracker.flush(self.dist)
        self.last_losses = losses
        done = self.model.step - self.start_step
        elapsed = time.perf_counter() - self.started
        eta = (self.total - self.model.step) * elapsed / max(done, 1)
        if self.dist.is_main:
            append_line(self.run_dir / METRICS_FILE, json.dumps(loss_row(self.model.step, self.epoch, losses, rate)))
            self.loggers.scalars(self.model.step, {**{f"loss/{k}": v for k, v in losses.items()}, "speed/images_per_s": rate})
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
        columns, rows = model.preview_captions(self.preview_inputs)  # a class per column, say
        path = self.run_dir / "samples" / f"step-{model.step:08d}.png"
        with naming(path):
            save_grid(images.float(), sealed(self.run_dir, path.relative_to(self.run_dir), create=True), nrow,
                      columns, rows)
        self.loggers.images(model.step, "samples", images, nrow)
        if display is not None:
            display.note(f"samples: {path}")

    def evaluate(self, display) -> None:
        """Score samples with the quality probe and log them as a ``{"step", "quality"}`` line.

        The line carries the training seconds so far (this process, probes excluded), so curves
        can be read against time. The probe draws from its own seeded generator inside a forked
        RNG: a run with probes follows the same trajectory as one without.
        """
        if self.probe is None or not self.dist.is_main:
            return
        from gencli.metrics.probe import summary

        began = time.perf_counter()
        model = self.model
        devices = [model.device] if model.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            try:
                values = self.probe(model)
            finally:
                model.train()
        self.eval_seconds += time.perf_counter() - began
        seconds = time.perf_counter() - self.started - self.eval_seconds
        row = quality_row(model.step, self.epoch, values, seconds, time.perf_counter() - began)
        append_line(self.run_dir / METRICS_FILE, json.dumps(row))
        self.loggers.scalars(model.step, {f"quality/{k}": v for k, v in values.items()})
        if display is not None:
            display.note(f"quality at step {model.step}: {summary(values)}")

    def checkpoint(self, display, stopping: bool = False) -> None:
        """Save the training state, ending a log window with a line as an unbroken run does there.

        A Ctrl-C stop between checkpoint steps writes no line, which an unbroken run would not
        have: the losses summed since the last line travel in the checkpoint instead, so the
        resumed run writes the very lines of an unbroken one.
        """
        if self.saved_step == self.model.step:  # a Ctrl-C right after a checkpoint step
            return
        if stopping:
            if self.tracker.count:
                self.check_finite()  # a non-finite loss must never reach a checkpoint
            window = self.tracker.window(self.dist)
        else:
            self.log(display)  # which raises first for a non-finite loss: it must never reach a checkpoint
            window = {}
        self.saved_step = self.model.step
        if not self.dist.is_main:
            return
        path = ckpt.save_checkpoint(self.run_dir, self.model, self.epoch, self.next_batch, keep=self.keep,
                                    loop_state={"losses": window})
        self.info["step"] = self.model.step
        write_run_info(self.run_dir, self.info)
        if display is not None:
            display.note(f"checkpoint: {path}")

    def finish_media(self) -> None:
        if not self.dist.is_main:
            return
        self.loggers.flush()
        from gencli.media.images import progress_gif
        from gencli.media.loss_curves import plot_losses
        from gencli.runs import read_training_rows

        run = self.run_dir
        frames = sorted(sealed(run, "samples", "folder").glob("step-*.png"))
        frames = [sealed(run, f"samples/{f.name}") for f in frames if int(f.stem.split("-")[1]) <= self.model.step]
        with naming(run / "progress.gif"):
            progress_gif(frames, sealed(run, "progress.gif"),
                         steps_per_epoch=len(self.stream) / batches_per_step(self.model))
        with naming(run / "losses.png"):
            plot_losses(read_training_rows(run / METRICS_FILE), sealed(run, "losses.png"), title=run.name)

    def set_status(self, status: str, **extra) -> None:
        if self.dist.is_main:
            self.info.update(status=status, **extra)
            write_run_info(self.run_dir, self.info)
            if status in ("finished", "interrupted"):  # the model card, from the run's record as it now stands
                write_model_card(Run(self.run_dir, self.info, ckpt.latest_checkpoint(self.run_dir)))

    def stopping(self) -> bool:
        """Whether to stop for a Ctrl-C now. Processes of a data-parallel run stop together, at the
        first log or checkpoint step after any of them saw it, so their collectives stay in step."""
        if self.dist.enabled:
            return bool(self.stop_agreed)
        return self.interrupt is not None and self.interrupt.requested

    # -- the loop
    def run(self, epoch: int, batch_index: int, display) -> None:
        try:
            self._run(epoch, batch_index, display)
        except OSError as exc:
            failure = write_failure(exc)
            if failure is None:
                raise
            self.stop_for_write_failure(exc.filename, *failure)
        finally:
            status = self.info.get("status")
            self.loggers.end(status if status in ("finished", "interrupted") else "failed")

    def stop_for_write_failure(self, path: str | None, cause: str, remedy: str) -> None:
        """Mark the run failed where run.json can still be written, and say what to do in one line."""
        try:
            self.set_status("failed", failed_step=self.model.step, reason=f"cannot write {path}: {cause}")
        except OSError:
            pass  # the disk that refused one file may refuse this one too: the status stays "running"
        last = ckpt.latest_checkpoint(self.run_dir) if self.dist.is_main else None
        if last is None:
            way_out = f"{remedy} and train again: no checkpoint was written"
        else:
            way_out = f"{remedy}, then continue from {last.name} with: gencli train --resume {self.run_dir}"
        raise UserError(f"cannot write {path!r}: {cause}; training stopped at step {self.model.step}; {way_out}")

    def _run(self, epoch: int, batch_index: int, display) -> None:
        from gencli.ui.live import TrainDisplay

        model = self.model
        title = f"{model.name} on {RunInfo(self.info).data_spec}  ->  {self.run_dir}"
        display = display or TrainDisplay(title, self.total, quiet=self.settings.quiet or not self.dist.is_main)
        self.epoch, self.next_batch = epoch, batch_index
        model.train()
        per_step = batches_per_step(model)
        # The batches of the step being gathered; a step may span the end of an epoch. Checkpoints
        # fall between steps only, so (epoch, next batch) always points just past a whole step.
        group: list = []
        interrupted = False
        with display, Interrupt() as interrupt:
            self.interrupt = interrupt
            try:
                if self.probe is not None and model.step == 0:
                    self.evaluate(display)  # where the curve starts; a wrong network fails here, not later
                while model.step < self.total and not self.stopping():
                    for batch in self.stream.epoch(self.epoch, start=self.next_batch):
                        self.next_batch += 1
                        if self.next_batch >= len(self.stream):
                            self.epoch, self.next_batch = self.epoch + 1, 0
                        group.append(batch)
                        if len(group) < per_step:
                            continue
                        losses = model.train_step(group if per_step > 1 else batch)
                        images = sum(len(b) for b in group)
                        group = []
                        model.step += 1
                        self.tracker.add(losses, model.step, images)
                        last = model.step >= self.total
                        if model.step % self.log_every == 0 or last:
                            self.log(display)
                        if model.step % self.sample_every == 0 or last:
                            self.sample(display)
                        if self.eval_every and (model.step % self.eval_every == 0 or last):
                            self.evaluate(display)
                        if model.step % self.checkpoint_every == 0 or last:
                            self.checkpoint(display)
                        if last or self.stopping():
                            break
                    else:
                        continue
                    break
            except BadLoss as exc:
                name, value, step = exc.args
                self.set_status("failed", failed_step=step)
                raise UserError(bad_loss_message(model.name, name, value, step)) from None
            except NonFiniteLoss as exc:
                name, step = exc.args
                self.finish_media()
                self.set_status("failed", failed_step=step)
                last = ckpt.latest_checkpoint(self.run_dir) if self.dist.is_main else None
                where = f"the last good checkpoint is {last}" if last else "no checkpoint was written"
                raise UserError(f"loss {name!r} became non-finite at step {step}; training stopped, {where}") from None
            if self.stopping() and model.step < self.total:
                self.checkpoint(display, stopping=True)
                self.finish_media()
                self.set_status("interrupted")
                interrupted = True
        # raised once the display is closed, so the message is the last line; said once, on stderr
        if interrupted:
            raise Interrupted(f"interrupted at step {model.step}; continue with: gencli train --resume {self.run_dir}")
        self.finish_media()
        final_losses = self.last_losses or logged_losses(self.run_dir / METRICS_FILE, model.step)
        self.set_status("finished", finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"), final_losses=final_losses)
        # the loggers end in run(), whatever ended the loop
