"""The model directory: ``config.json`` (hyper-parameters, text-model name, kgrec version,
format version), ``weights.pt`` (tensors only: loaded with ``weights_only=True``) and
``tables/`` (the graph the model was trained on, as Parquet), written atomically.

Writes go to a temporary sibling directory which is renamed over the target only when every
file is complete, so an interrupted save never leaves a half-written model (the previous one,
if any, stays until the rename).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from ..errors import ModelError

FORMAT_VERSION = 1
CONFIG = "config.json"
WEIGHTS = "weights.pt"


def save_model_dir(path: str | os.PathLike, config: dict[str, Any], tensors: dict[str, Any],
                   tables: dict[str, Any]) -> Path:
    """Write a model directory atomically. ``tables`` maps a name to a pandas DataFrame."""
    from .. import __version__

    target = Path(path).resolve()  # "." or "models/.." name a directory too
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and not (target / CONFIG).exists():
        if any(target.iterdir()):
            raise ModelError(f"{target} exists and is not a kgrec model directory. Fix: choose another path "
                             "or remove it")
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        (tmp / "tables").mkdir()
        for name, df in tables.items():
            df.to_parquet(tmp / "tables" / f"{name}.parquet", index=False)
        torch.save(tensors, tmp / WEIGHTS)
        meta = {"format_version": FORMAT_VERSION, "kgrec_version": __version__, **config}
        (tmp / CONFIG).write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
        for f in [tmp / CONFIG, tmp / WEIGHTS]:
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        _readable_by_others(tmp)
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.rename(target, old)
        os.rename(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _readable_by_others(folder: Path) -> None:
    """Give ``folder`` (made private by ``mkdtemp``) and what it holds the modes a plain
    ``mkdir`` and ``open`` would have given them under the process's umask, so that teammates
    can read a saved model where they can read the folder beside it."""
    umask = os.umask(0)
    os.umask(umask)
    for p in [folder, *folder.rglob("*")]:
        p.chmod((0o777 if p.is_dir() else 0o666) & ~umask)


def load_model_dir(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Read ``(config, tensors, tables)``; a missing, corrupt or foreign directory raises
    :class:`ModelError` saying what is wrong and what to do."""
    import pandas as pd

    src = Path(path)
    if not src.is_dir():
        raise ModelError(f"{src}: no such model directory. Fix: pass the directory written by "
                         "`kgrec train` / Recommender.save")
    cfg_file = src / CONFIG
    if not cfg_file.exists():
        raise ModelError(f"{src}: {CONFIG} is missing, so this is not a kgrec model directory (or its save was "
                         "interrupted). Fix: train and save again")
    try:
        config = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{cfg_file}: corrupt ({exc}). Fix: train and save again") from None
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelError(f"{cfg_file}: model format {version!r}, this kgrec reads format {FORMAT_VERSION}. "
                         "Fix: re-train with this kgrec version")
    try:
        tensors = torch.load(src / WEIGHTS, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"{src / WEIGHTS}: missing. Fix: train and save again") from None
    except Exception as exc:  # torch raises RuntimeError / UnpicklingError / EOFError on damage
        raise ModelError(f"{src / WEIGHTS}: corrupt ({exc.__class__.__name__}: {exc}). Fix: train and save again") from None
    tables = {}
    tdir = src / "tables"
    for f in sorted(tdir.glob("*.parquet")) if tdir.exists() else []:
        try:
            tables[f.stem] = pd.read_parquet(f)
        except Exception as exc:
            raise ModelError(f"{f}: corrupt ({exc.__class__.__name__}). Fix: train and save again") from None
    return config, tensors, tables
