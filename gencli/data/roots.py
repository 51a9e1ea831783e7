"""The folders datasets live in: the cache, the system dataset folder and ``GENCLI_DATASET_PATH``.

The lowest module of ``gencli.data``: it imports nothing of gencli, so every other data module
(and the dataset listing, without torch) can ask where things are.
"""

from __future__ import annotations

import os
from pathlib import Path

SYSTEM_DATASETS = "/usr/share/datasets"
SYSTEM_ENV = "GENCLI_SYSTEM_DATASETS"
PATH_ENV = "GENCLI_DATASET_PATH"
MIRROR_ENV = "GENCLI_MIRROR"  # a server holding the datasets' archives (read by gencli.data.download)


def data_root() -> Path:
    """Return the dataset cache directory (``GENCLI_DATA_DIR``, default ``~/.cache/gencli/data``)."""
    root = os.environ.get("GENCLI_DATA_DIR")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "gencli" / "data"


def system_root() -> Path:
    """Return the system dataset folder (``GENCLI_SYSTEM_DATASETS``, default ``/usr/share/datasets``)."""
    return Path(os.environ.get(SYSTEM_ENV) or SYSTEM_DATASETS).expanduser()


def search_path() -> list[Path]:
    """Return the folders of ``GENCLI_DATASET_PATH``, in order (empty entries are ignored)."""
    return [Path(p).expanduser() for p in os.environ.get(PATH_ENV, "").split(os.pathsep) if p.strip()]
