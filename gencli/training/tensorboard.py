"""TensorBoard logging for ``gencli train --log tensorboard`` (or ``--tensorboard``): losses, quality
probes, sample grids, ``gencli eval`` metrics, and the hyperparameters in the HParams view.

The run directory stays the record of a run (``metrics.jsonl``, ``samples/``); TensorBoard gets
the same values under ``RUN/tensorboard/`` for live curves across runs (``tensorboard --logdir
runs``). Losses are written when the engine logs them (they are already on the host then, so
TensorBoard costs no extra device sync) and grids when it saves one.

TensorBoard is an optional dependency: without it ``--tensorboard`` ends with one line saying
how to install it, before any data is loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gencli.errors import UserError
from gencli.loggers import Logger

INSTALL = "pip install 'gencli[tensorboard]'"
LOG_FOLDER = "tensorboard"


def require_tensorboard() -> None:
    """Raise ``UserError`` saying how to install TensorBoard when the package is missing."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise UserError(f"--tensorboard needs the tensorboard package: {INSTALL}") from None


class TensorBoardLogger:
    """Writes a run's losses, speed and sample grids as TensorBoard events.

    ``start_step`` is the step a resumed run restarts from: events written after it by the
    interrupted run are dropped, as the engine drops those lines of ``metrics.jsonl``.
    ``writer`` replaces the ``SummaryWriter`` (anything with ``add_scalar``, ``add_image``,
    ``add_text``, ``flush`` and ``close``).
    """

    def __init__(self, log_dir: str | Path, start_step: int = 0, writer: Any = None) -> None:
        self.log_dir = Path(log_dir)
        if writer is None:
            require_tensorboard()
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=start_step + 1 if start_step else None)
        self.writer = writer

    @classmethod
    def for_run(cls, run_dir: str | Path, start_step: int = 0) -> "TensorBoardLogger":
        """Return a logger writing into ``RUN/tensorboard/``."""
        return cls(Path(run_dir) / LOG_FOLDER, start_step)

    def log_run(self, info: dict[str, Any], step: int = 0) -> None:
        """Record what the run is (model, hyperparameters, data, training settings) as text."""
        keys = ("model", "plugin", "plugin_version", "gencli_version", "hyperparameters", "data", "training")
        summary = {k: info[k] for k in keys if k in info}
        self.writer.add_text("run", "```\n" + json.dumps(summary, indent=2, default=str) + "\n```", step)

    def log_losses(self, step: int, losses: dict[str, float], images_per_s: float | None = None) -> None:
        """Write the mean losses since the last log as ``loss/<name>``, and the speed."""
        for name, value in losses.items():
            self.writer.add_scalar(f"loss/{name}", float(value), step)
        if images_per_s is not None:
            self.writer.add_scalar("speed/images_per_s", float(images_per_s), step)

    def log_samples(self, step: int, images, nrow: int, tag: str = "samples") -> None:
        """Write images in [-1, 1] (NCHW) as one grid, laid out as the saved PNG is."""
        from gencli.media.images import grid

        array = grid(images.detach().float().cpu(), nrow)
        self.writer.add_image(tag, array, step, dataformats="HW" if array.ndim == 2 else "HWC")

    def log_metrics(self, step: int, results: dict[str, Any]) -> None:
        """Write numeric evaluation results (FID, KID, ...) as ``eval/<name>``."""
        for name, value in results.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"eval/{name}", float(value), step)

    def log_quality(self, step: int, values: dict[str, float]) -> None:
        """Write the quality probe's scores (``--eval-every``: FID, accuracy, per class) as ``quality/<name>``."""
        for name, value in values.items():
            self.writer.add_scalar(f"quality/{name}", float(value), step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> "TensorBoardLogger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def hparam_values(info: dict[str, Any]) -> dict[str, Any]:
    """The run's model, data, training settings and hyperparameters, as TensorBoard's HParams view takes them
    (numbers, strings and booleans; anything else as JSON text)."""
    values: dict[str, Any] = {"model": info.get("model"), "data": info.get("data")}
    for table, prefix in (("training", "training."), ("hyperparameters", "")):
        if isinstance(info.get(table), dict):
            values.update({prefix + str(k): v for k, v in info[table].items()})
    return {k: v if isinstance(v, (bool, int, float, str)) else json.dumps(v, default=str)
            for k, v in values.items() if v is not None}


SESSION_STATUS = {"finished": "STATUS_SUCCESS", "interrupted": "STATUS_ABORTED", "failed": "STATUS_FAILURE"}


class TensorBoardRun(Logger):
    """The ``tensorboard`` logger of ``--log``: writes into ``RUN/tensorboard/`` through ``TensorBoardLogger``."""

    def __init__(self, run_dir: str | Path, start_step: int = 0) -> None:
        super().__init__(Path(run_dir), start_step)
        from gencli.fileio import sealed

        sealed(self.run_dir, LOG_FOLDER, "folder")  # a link there: one line, nothing written through it
        self.board = TensorBoardLogger.for_run(self.run_dir, start_step)
        self.session = False

    def _summary(self, summary) -> None:
        file_writer = getattr(self.board.writer, "_get_file_writer", None)
        if file_writer is not None:
            file_writer().add_summary(summary)

    def start(self, run_info: dict[str, Any]) -> None:
        if run_info.get("command", "train") != "train":
            return  # an eval adds its metrics to the run's record: the run was described when it trained
        self.board.log_run(run_info, self.start_step)
        from torch.utils.tensorboard.summary import hparams

        # the session start alone (no experiment summary): the HParams view then lists every scalar as a metric
        _, session_start, _ = hparams(hparam_values(run_info), {})
        self._summary(session_start)
        self.session = True

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.board.writer.add_scalar(name, float(value), step)

    def images(self, step: int, name: str, grid) -> None:
        self.board.writer.add_image(name, grid, step, dataformats="HW" if grid.ndim == 2 else "HWC")

    def metrics(self, step: int, values: dict[str, float]) -> None:
        self.board.log_metrics(step, values)

    def flush(self) -> None:
        self.board.flush()

    def end(self, status: str) -> None:
        if self.session:
            self._summary(_session_end(SESSION_STATUS.get(status, "STATUS_FAILURE")))
        self.board.close()


def _session_end(status: str):
    """The HParams plugin's session-end summary with ``status`` (a ``tensorboard.plugins.hparams.api_pb2.Status`` name)."""
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.plugins.hparams import api_pb2
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData, SessionEndInfo

    content = HParamsPluginData(session_end_info=SessionEndInfo(status=getattr(api_pb2, status)), version=0)
    metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="hparams",
                                                                      content=content.SerializeToString()))
    return Summary(value=[Summary.Value(tag="_hparams_/session_end_info", metadata=metadata)])
