"""Runs: the only reader and writer of a run directory's files.

``run.json`` (``run``: the ``Run`` and the schema it is checked by), ``metrics.jsonl``
(``metrics_log``), ``checkpoints/`` (``checkpoints``, which imports torch: import it by name) and the
trainer's lock (``lock``). A Run builds its model from them, through the plugin registry and
``gencli.models``; this package imports nothing from the layers that use it (training, commands,
metrics). No torch at import time.
"""

from __future__ import annotations

from gencli.runs.lock import LOCK_FILE, RunLock
from gencli.runs.metrics_log import (
    METRICS_FILE,
    append_row,
    check_metrics,
    check_row,
    read_eval_rows,
    read_training_rows,
    truncate_rows,
)
from gencli.runs.run import (
    MAX_CLASSES,
    MAX_SAMPLE_COUNT,
    NEEDED_TO_TRAIN,
    REQUIRED,
    RUN_FILE,
    RUN_FILES,
    RUN_FOLDERS,
    SCHEMA_VERSION,
    Run,
    RunInfo,
    check_model_shape,
    check_schema,
    check_sealed,
    load_trained,
    new_run_dir,
    read_run_info,
    runs_root,
    write_run_info,
)
from gencli.runs.values import MAX_CHANNELS, MAX_COUNT, shown

__all__ = [
    "LOCK_FILE", "MAX_CHANNELS", "MAX_CLASSES", "MAX_COUNT", "MAX_SAMPLE_COUNT", "METRICS_FILE", "NEEDED_TO_TRAIN",
    "REQUIRED", "RUN_FILE", "RUN_FILES", "RUN_FOLDERS", "SCHEMA_VERSION", "Run", "RunInfo", "RunLock", "append_row",
    "check_metrics", "check_model_shape", "check_row", "check_schema", "check_sealed", "load_trained",
    "new_run_dir", "read_eval_rows", "read_run_info", "read_training_rows", "runs_root", "shown", "truncate_rows",
    "write_run_info",
]
