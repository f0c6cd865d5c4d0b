"""The example notebooks run end to end (with ADAPTIVE_QUICK=1: small sampler settings and few
virtual trials), so they never rot."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_the_notebooks_are_the_expected_ones():
    assert {p.name for p in NOTEBOOKS} == {"interim_walkthrough.ipynb", "design_calibration.ipynb"}


@pytest.mark.slow  # each notebook starts a kernel and imports PyMC; the walkthrough fits a look
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, monkeypatch):
    monkeypatch.setenv("ADAPTIVE_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "quick settings" in text
    if path.stem == "interim_walkthrough":
        assert "status: ok" in text and "closed_pdf" in text and "[graduate]" in text
    else:
        assert "chosen threshold:" in text
    assert os.environ["ADAPTIVE_QUICK"] == "1"
