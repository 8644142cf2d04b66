"""Child Python processes for fault tests: start one on a code string, read its output lines, kill
it at a random moment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np


def child(code: str, *args: str) -> subprocess.Popen:
    """``python -c code args...`` with its stdout and stderr piped (text, line-buffered)."""
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, bufsize=1)


def read_until(proc: subprocess.Popen, prefix: str, timeout: float = 120) -> list[str]:
    """The child's output lines up to and including the first that starts with ``prefix``;
    AssertionError (with the child's stderr) when it exits or ``timeout`` seconds pass first."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"child exited ({proc.poll()}): {proc.stderr.read()[-3000:]}")
        lines.append(line.strip())
        if line.startswith(prefix):
            return lines
    raise AssertionError(f"child did not print {prefix!r} within {timeout}s")


def kill_at_random(proc: subprocess.Popen, rng: np.random.Generator, max_delay: float,
                   ready: str = "done", timeout: float = 120) -> bool:
    """Wait for ``proc``'s first line starting with ``ready``, ``SIGKILL`` it 0.05 to ``max_delay``
    seconds later and reap it. Whether the kill landed inside an operation: the child prints
    ``begin ...`` before each and ``done ...`` after, and its last line was a ``begin``."""
    try:
        read_until(proc, ready, timeout)
        time.sleep(float(rng.uniform(0.05, max_delay)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        rest = [line for line in proc.stdout.read().split("\n") if line.strip()]
    finally:
        if proc.poll() is None:
            proc.kill()
    return (rest[-1:] or ["done"])[0].startswith("begin")
