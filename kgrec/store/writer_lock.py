"""One writer per embedded store: an OS file lock beside the store, held from open to close.

:class:`WriterLock` takes an exclusive ``flock`` on ``<store>.writer`` (a small file that names
its holder: process id and host). The lock is held for the whole life of a writable store object,
so it covers a publish from its first read to the swap of the new file and the reopen after it,
with no gap in which a second writer could get in (ladybug's own lock on the database file is
released while the file is swapped). The operating system drops the lock when its holder exits,
however it exits (``kill -9`` included), so a lock left by a killed process is taken over by the
next writer without a repair step; the file itself stays and is reused.

A second writer waits up to ``timeout`` seconds (polling), then fails with :class:`StoreError`
naming the holder. ``flock`` locks belong to an open file, so a second writer in the same process
is refused too.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path

from ..errors import StoreError

POLL_S = 0.05


def lock_path(store: Path) -> Path:
    """The lock file of the store file ``store``."""
    return store.with_name(store.name + ".writer")


def writer_active(store: Path) -> bool:
    """Whether some process holds the writer lock of the store file ``store`` now."""
    try:
        fd = os.open(lock_path(store), os.O_RDONLY)
    except OSError:  # no lock file: no writer has opened the store since it was made
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # drops the shared lock too
    return False


class WriterLock:
    """The exclusive writer lock of the store file ``store`` (see the module docstring)."""

    def __init__(self, store: Path, uri: str) -> None:
        self.path = lock_path(store)
        self.uri = uri
        self._fd: int | None = None

    def acquire(self, timeout: float = 0.0) -> None:
        """Take the lock, waiting up to ``timeout`` seconds for its holder; :class:`StoreError`
        naming the holder when it is still held then."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + max(0.0, timeout)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise self._held_error(fd, timeout) from None
                    time.sleep(POLL_S)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"process {os.getpid()} on host {socket.gethostname()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def _held_error(self, fd: int, timeout: float) -> StoreError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        waited = f" after waiting {timeout:g} s" if timeout > 0 else ""
        return StoreError(f"{self.uri} is locked by {holder} (one writer at a time){waited}. Fix: wait for that "
                          "process to finish, pass a longer timeout (open_store(..., timeout=SECONDS), "
                          "kgrec publish --wait SECONDS), or open with read_only=True to read while it writes")

    def release(self) -> None:
        """Drop the lock (idempotent). The lock file stays for the next writer."""
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None
