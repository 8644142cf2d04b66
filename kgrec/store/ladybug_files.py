"""The ladybug database on disk: the package that opens it, who holds its lock, the files beside it.

:func:`ladybug_module` imports ``ladybug`` (or raises :class:`StoreError` saying how to install
it); :func:`lock_holder` names the process that holds a database file's lock; :func:`sidecars`
lists the files ladybug keeps beside a database file, :func:`remove_files` removes a database file
with them, :func:`fsync` flushes a file or folder to disk and :func:`glob_escape` quotes a file
name for :meth:`pathlib.Path.glob`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ..errors import StoreError


def ladybug_module() -> Any:
    """The ``ladybug`` package; :class:`StoreError` saying how to install it when it is missing."""
    try:
        import ladybug
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise StoreError("the embedded store needs the 'ladybug' package: pip install ladybug") from exc
    return ladybug


def lock_holder(path: str | os.PathLike, message: str = "") -> int | None:
    """The id of the process that holds the lock on ``path``: from ladybug's message when it
    names it, else from ``/proc/locks`` (Linux). ``None`` when unknown."""
    m = re.search(r"held by PID (\d+)", message)
    if m:
        return int(m.group(1))
    try:
        st = os.stat(path)
        with open("/proc/locks", encoding="ascii") as fh:
            for line in fh:
                parts = line.split()
                # "1: POSIX  ADVISORY  WRITE 5289 fe:00:9978034 0 EOF" (blocked waiters show "->")
                if len(parts) >= 6 and parts[1] != "->":
                    dev_ino = parts[5].split(":")
                    if len(dev_ino) == 3 and int(dev_ino[2]) == st.st_ino:
                        return int(parts[4])
    except (OSError, ValueError):
        return None
    return None


def sidecars(path: Path) -> list[Path]:
    """The files ladybug keeps beside a database file while it is open or checkpointing."""
    return [path.with_name(path.name + suffix) for suffix in
            (".wal", ".shadow", ".wal.checkpoint", ".checkpoint.intent.lock", ".checkpoint.apply.lock")]


def remove_files(path: Path) -> None:
    """Remove the database file ``path`` and its :func:`sidecars` (those that exist)."""
    for p in [path, *sidecars(path)]:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def fsync(path: Path) -> None:
    """Flush the file or folder ``path`` to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def glob_escape(name: str) -> str:
    """``name`` with the glob characters ``*``, ``?`` and ``[`` quoted, for :meth:`pathlib.Path.glob`."""
    return re.sub(r"([*?\[])", r"[\1]", name)
