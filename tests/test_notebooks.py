"""The notebooks run top to bottom (executed with nbclient in a temp dir, short training budget)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["quickstart.ipynb", "inspect_with_cypher.ipynb"])
def test_notebook_executes(name, tmp_path, data_root, monkeypatch):
    monkeypatch.setenv("KGREC_NOTEBOOK_EPOCHS", os.environ.get("KGREC_NOTEBOOK_EPOCHS", "2"))
    monkeypatch.setenv("KGREC_DATA_DIR", str(data_root))
    shutil.copy(NOTEBOOKS / name, tmp_path / name)
    nb = nbformat.read(tmp_path / name, as_version=4)
    NotebookClient(nb, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert images, "the notebook draws its plots"
    if name == "quickstart.ipynb":
        assert (tmp_path / "quickstart-model" / "config.json").exists()
    else:
        text = "".join(str(o.get("data", {}).get("text/plain", "")) + str(o.get("text", "")) for o in outputs)
        assert "943" in text and "ReadOnlyQueryError" in text
