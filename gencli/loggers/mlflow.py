"""``gencli train --log mlflow``: a run's parameters, curves, sample grids and eval metrics in MLflow.

Without ``MLFLOW_TRACKING_URI`` the record goes to MLflow's local file store inside the run folder
(``RUN/mlflow``; browse it with ``mlflow ui --backend-store-uri RUN/mlflow``), in experiment
``gencli``, as one MLflow run named after the run folder. Resuming and ``gencli eval`` continue
that MLflow run (its id is kept in ``RUN/mlflow/gencli-run-id``). Needs ``pip install 'gencli[mlflow]'``.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from gencli.fileio import sealed
from gencli.loggers import Logger

FOLDER = "mlflow"
ID_FILE = "gencli-run-id"
EXPERIMENT = "gencli"
STATUS = {"finished": "FINISHED", "interrupted": "KILLED", "failed": "FAILED"}
_UNSAFE = re.compile(r"[^\w\-. /:]")
_RUN_ID = re.compile(r"[0-9a-f]{32}")


def key(name: str) -> str:
    """An MLflow metric or parameter name for ``name`` (characters it refuses become ``_``)."""
    return _UNSAFE.sub("_", name)[:250]


def flat_params(info: dict[str, Any]) -> dict[str, str]:
    """The run's model, data, training settings and hyperparameters as MLflow parameters (strings)."""
    params: dict[str, Any] = {"model": info.get("model"), "data": info.get("data")}
    for table in ("training", "hyperparameters"):
        values = info.get(table)
        if isinstance(values, dict):
            prefix = "" if table == "hyperparameters" else "training."
            params.update({f"{prefix}{k}": v for k, v in values.items()})
    return {key(k): (v if isinstance(v, str) else json.dumps(v, default=str))[:6000]
            for k, v in params.items() if v is not None}


class MlflowLogger(Logger):
    def __init__(self, run_dir: Path, start_step: int = 0) -> None:
        super().__init__(run_dir, start_step)
        from mlflow.tracking import MlflowClient

        uri = os.environ.get("MLFLOW_TRACKING_URI")
        folder = sealed(self.run_dir, FOLDER, "folder", create=True)
        if not uri:
            # the file store, MLflow's only local store without a database library, asks for this opt-in
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            uri = folder.resolve().as_uri()
        self.client = MlflowClient(tracking_uri=uri)
        self.id_file = sealed(self.run_dir, f"{FOLDER}/{ID_FILE}")
        self.run_id = ""
        self.new = False

    def _open(self) -> None:
        recorded = self.id_file.read_text().strip() if self.id_file.is_file() else ""
        if _RUN_ID.fullmatch(recorded):  # what a stranger's folder holds is only ever an id
            try:
                self.client.get_run(recorded)
                self.run_id = recorded
                self.client.update_run(recorded, status="RUNNING")
                return
            except Exception:  # noqa: BLE001 - a store moved or emptied: start a new MLflow run
                pass
        experiment = self.client.get_experiment_by_name(EXPERIMENT)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(EXPERIMENT)
        self.run_id = self.client.create_run(experiment_id, run_name=self.run_dir.name,
                                             tags={"gencli.run_dir": str(self.run_dir.resolve())}).info.run_id
        self.id_file.write_text(self.run_id + "\n")
        self.new = True

    def start(self, run_info: dict[str, Any]) -> None:
        self._open()
        if self.new:  # MLflow parameters are written once: a resumed run keeps its own
            from mlflow.entities import Param

            params = [Param(k, v) for k, v in flat_params(run_info).items()]
            for i in range(0, len(params), 100):
                self.client.log_batch(self.run_id, params=params[i:i + 100])

    def _log(self, step: int, values: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(key(k), v, now, step) for k, v in values.items()])

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self._log(step, values)

    def images(self, step: int, name: str, grid: Any) -> None:
        self.client.log_image(self.run_id, grid, artifact_file=f"{key(name)}/step-{step:08d}.png")

    def metrics(self, step: int, values: dict[str, float]) -> None:
        self._log(step, {f"eval/{k}": v for k, v in values.items()})

    def end(self, status: str) -> None:
        if self.run_id:
            self.client.set_terminated(self.run_id, STATUS.get(status, "FAILED"))
