"""Shared fixtures: real data from KGREC_DATA_DIR (default ../shared/data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgrec.config import data_dir


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = data_dir()
    if not (root / "ml-100k" / "u.data").exists():
        pytest.fail(f"benchmark data not found under {root}; set KGREC_DATA_DIR to the folder holding ml-100k/")
    return root


@pytest.fixture(scope="session")
def ml100k_dir(data_root: Path) -> Path:
    return data_root / "ml-100k"
