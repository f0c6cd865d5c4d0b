"""The example notebooks: stored with their outputs (they are read as walkthroughs where they are
published), written against the public API only, and run end to end (with ADAPTIVE_QUICK=1: small
sampler settings and few virtual trials) so that they never rot.

To refresh the stored outputs after a change: ``python notebooks/store_outputs.py`` (full
settings, volatile metadata dropped); the fast tests below say what a stored notebook must
satisfy.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import adaptive

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: what the executed notebooks must print (the slow test runs them with quick settings)
EXPECTED_TEXT = {
    "interim_walkthrough": ("status: ok", "closed_pdf", "[graduate]"),
    "design_calibration": ("chosen threshold:",),
}
#: the project's packages: a notebook imports only ``from adaptive import <public name>``
PACKAGES = ("adaptive", "models", "decision_rules")
#: text that would tie a stored output to one machine or one run
MACHINE_SPECIFIC = re.compile(r"/tmp/|/home/|/work/|/Users/|[A-Z]:\\\\|/var/folders/|site-packages")


def _code(cell) -> ast.Module:
    """A code cell's source as Python, IPython magics (``%matplotlib inline``) left out."""
    lines = [line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    return ast.parse("\n".join(lines))


def _should_output(cell) -> bool:
    """Whether a code cell shows something: a print, a plot, or a final expression not ended by ';'."""
    tree = _code(cell)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    names = {ast.unparse(c.func) for c in calls}
    if "print" in names or any(n.startswith(("plt.", "az.plot_")) for n in names):
        return True
    return bool(tree.body) and isinstance(tree.body[-1], ast.Expr) and not cell.source.rstrip().endswith(";")


def _text(nb) -> str:
    """Every stream and plain-text output of a notebook."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            elif "data" in out:
                parts.append(out["data"].get("text/plain", ""))
    return "\n".join(parts)


def test_the_notebooks_are_the_expected_ones():
    assert {p.name for p in NOTEBOOKS} == {"interim_walkthrough.ipynb", "design_calibration.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_use_only_the_public_api(path):
    nb = nbformat.read(path, as_version=4)
    imported = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(_code(cell)):
            if isinstance(node, ast.Import):
                bad = [a.name for a in node.names if a.name.split(".")[0] in PACKAGES]
                assert not bad, f"{path.name}: 'import {', '.join(bad)}': use 'from adaptive import ...'"
            elif isinstance(node, ast.ImportFrom):
                top = (node.module or "").split(".")[0]
                assert top not in PACKAGES[1:], f"{path.name} imports {node.module}"
                if top == "adaptive":
                    assert node.module == "adaptive", f"{path.name} imports the internal module {node.module}"
                    imported |= {a.name for a in node.names}
    assert imported, f"{path.name} does not use the public API"
    assert imported <= set(adaptive.__all__), f"not in adaptive.__all__: {imported - set(adaptive.__all__)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_are_stored_with_their_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    # executed top to bottom, in one run
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), path.name
    missing = [i for i, c in enumerate(code) if _should_output(c) and not c.outputs]
    assert not missing, f"{path.name}: code cells {missing} show nothing: execute the notebook and save it"
    outputs = [o for c in code for o in c.outputs]
    errors = [f"{o.get('ename')}: {o.get('evalue')}" for o in outputs if o.output_type == "error"]
    assert not errors, f"{path.name} is stored with an error: {errors[0]}"
    stderr = [o.text for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    assert not stderr, f"{path.name} shows warnings or log lines: {stderr[0][:200]}"
    assert any("image/png" in o.get("data", {}) for o in outputs), "the figures are stored as PNG"
    text = _text(nb)
    assert "full settings" in text and "quick settings" not in text, "store the outputs of a full run"
    for expected in EXPECTED_TEXT[path.stem]:
        assert expected in text
    assert not MACHINE_SPECIFIC.findall(text), f"{path.name}: {MACHINE_SPECIFIC.findall(text)[:3]}"
    # no volatile metadata: execution timestamps, the kernel's Python version
    assert not [c for c in nb.cells if "execution" in c.metadata]
    assert nb.metadata.get("language_info") == {"name": "python"}
    assert path.stat().st_size < 400_000, f"{path.name} is {path.stat().st_size:,} bytes: smaller figures"


def test_the_stored_output_checks_catch_what_they_should(tmp_path):
    ok = nbformat.v4.new_code_cell("x = 1\nx")
    assert _should_output(ok)
    assert _should_output(nbformat.v4.new_code_cell("%matplotlib inline\nprint(1)"))
    assert _should_output(nbformat.v4.new_code_cell("fig, ax = plt.subplots()"))
    assert not _should_output(nbformat.v4.new_code_cell("import os\nx = 1"))
    assert not _should_output(nbformat.v4.new_code_cell("plt.tight_layout\nax.set_title('a');"))
    assert MACHINE_SPECIFIC.search("written to /tmp/walkthrough-abc/looks")
    assert not MACHINE_SPECIFIC.search("closed_pdf   looks/2026-10-31/memo-closed.pdf")


@pytest.mark.slow  # each notebook starts a kernel and imports PyMC; the walkthrough fits a look
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, monkeypatch, tmp_path):
    monkeypatch.setenv("ADAPTIVE_QUICK", "1")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the kernel's tempfile.mkdtemp: the look, the studies
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = _text(nb)
    assert "quick settings" in text
    for expected in EXPECTED_TEXT[path.stem]:
        assert expected in text
    assert os.environ["ADAPTIVE_QUICK"] == "1"
    prefix = {"interim_walkthrough": "walkthrough-", "design_calibration": "calibration-"}[path.stem]
    assert [p for p in tmp_path.iterdir() if p.name.startswith(prefix)]  # the notebook's outputs
