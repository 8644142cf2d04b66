"""``import kgrec`` asks PyTorch for huge-page CPU tensors (``THP_MEM_ALLOC_ENABLE=1``) unless the
environment already says otherwise (docs/large_graphs.md)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = "import os, kgrec; print(os.environ.get('THP_MEM_ALLOC_ENABLE'))"


@pytest.mark.parametrize("given, expected", [(None, "1"), ("0", "0"), ("1", "1")])
def test_import_sets_the_huge_page_default_without_overriding(given: str | None, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    if given is not None:
        env["THP_MEM_ALLOC_ENABLE"] = given
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected
