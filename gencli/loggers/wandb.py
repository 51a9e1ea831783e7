"""``gencli train --log wandb``: a run's config, curves, sample grids and eval metrics in Weights & Biases.

The run is recorded offline unless ``WANDB_MODE`` says otherwise: W&B writes it under ``RUN/wandb``
and ``wandb sync RUN/wandb/offline-run-*`` uploads it when you choose to. The W&B run is named
after the run folder; resuming and ``gencli eval`` continue it (its id is kept in
``RUN/wandb/gencli-run-id``). Needs ``pip install 'gencli[wandb]'``.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any

from gencli.fileio import sealed
from gencli.loggers import Logger

FOLDER = "wandb"
ID_FILE = "gencli-run-id"
PROJECT = "gencli"
_ID = re.compile(r"[a-z0-9]{1,64}")


class WandbLogger(Logger):
    def __init__(self, run_dir: Path, start_step: int = 0) -> None:
        super().__init__(run_dir, start_step)
        import wandb

        self.wandb = wandb
        sealed(self.run_dir, FOLDER, "folder", create=True)
        self.id_file = sealed(self.run_dir, f"{FOLDER}/{ID_FILE}")
        self.run = None

    def start(self, run_info: dict[str, Any]) -> None:
        recorded = self.id_file.read_text().strip() if self.id_file.is_file() else ""
        run_id = recorded if _ID.fullmatch(recorded) else uuid.uuid4().hex[:16]
        if run_id != recorded:
            self.id_file.write_text(run_id + "\n")
        config = {k: run_info[k] for k in ("model", "data", "hyperparameters", "training") if k in run_info}
        self.run = self.wandb.init(dir=str(self.run_dir), project=os.environ.get("WANDB_PROJECT", PROJECT),
                                   name=self.run_dir.name, id=run_id, resume="allow", config=config,
                                   mode=os.environ.get("WANDB_MODE", "offline"), job_type=run_info.get("command"),
                                   settings=self.wandb.Settings(silent=True))  # gencli says where the run is

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self.run.log(values, step=step)

    def images(self, step: int, name: str, grid: Any) -> None:
        self.run.log({name: self.wandb.Image(grid)}, step=step)

    def metrics(self, step: int, values: dict[str, float]) -> None:
        # W&B's own step only grows: the checkpoint's step goes beside the values
        self.run.log({**{f"eval/{k}": v for k, v in values.items()}, "eval/step": step})

    def end(self, status: str) -> None:
        if self.run is not None:
            self.run.finish(exit_code=0 if status == "finished" else 1)
            self.run = None
