"""Settings read from the environment, in one place.

``KGREC_DATA_DIR``   where the benchmark data sets live (default ``../shared/data`` relative to
                     the repository, else ``./data``)
``KGREC_CACHE_DIR``  downloads and text-embedding cache (default: the user cache dir)
``KGREC_NEO4J_URI``  a Neo4j server for the tests (``bolt://127.0.0.1:7687``)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from platformdirs import user_cache_dir

if TYPE_CHECKING:
    import torch

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    env = os.environ.get("KGREC_DATA_DIR")
    if env:
        return Path(env)
    shared = REPO_ROOT.parent / "shared" / "data"
    return shared if shared.exists() else Path.cwd() / "data"


def cache_dir() -> Path:
    path = Path(os.environ.get("KGREC_CACHE_DIR") or user_cache_dir("kgrec"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def resolve_device(device: "str | torch.device | None") -> "torch.device":
    """``None`` / ``"auto"`` -> CUDA when available, else CPU; asking for CUDA on a machine
    without it is an error that says what to pass instead."""
    import torch

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device='{device}' was asked for but CUDA is not available; use device='auto' or 'cpu'")
    return dev
