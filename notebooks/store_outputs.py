"""Execute the notebooks with full settings and store them with their outputs.

Usage (from the repository root)::

    python notebooks/store_outputs.py                      # both notebooks
    python notebooks/store_outputs.py notebooks/X.ipynb    # one

Each notebook runs top to bottom in a fresh kernel that imports this checkout's code (the
repository root is put first on ``PYTHONPATH``), without ``ADAPTIVE_QUICK``; it is written back
only when no cell failed. Volatile metadata is dropped (execution timestamps, the kernel's Python
version), so that a rerun changes only what the results change. ``tests/test_notebooks.py`` checks
the stored files.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
METADATA = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def store(path: Path) -> None:
    """Execute ``path`` in place and save it with its outputs."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        cell.metadata = {}
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    started = time.perf_counter()
    NotebookClient(
        nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()  # raises CellExecutionError (and writes nothing) when a cell fails
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nb.metadata = METADATA
    nbformat.validate(nb)
    nbformat.write(nb, path)
    print(f"{path.relative_to(ROOT)}: {time.perf_counter() - started:.0f} s, {path.stat().st_size:,} bytes")


def main(argv: list[str]) -> None:
    """Store the notebooks named in ``argv`` (all of them when none is named)."""
    os.environ.pop("ADAPTIVE_QUICK", None)
    os.environ["MPLBACKEND"] = "Agg"
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    paths = [Path(a).resolve() for a in argv] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    for path in paths:
        store(path)


if __name__ == "__main__":
    main(sys.argv[1:])
