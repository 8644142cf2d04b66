"""Child Python processes for fault tests: start one on a code string, read its output lines."""

from __future__ import annotations

import subprocess
import sys
import time


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
