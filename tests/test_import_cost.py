"""A short `adaptive simulate` imports no heavy library that simulating does not use.

Statisticians run many short exploratory studies, where imports are a good part of the command's
time: pandas (with pyarrow) costs ~0.2 s, scipy.stats and statsmodels ~0.5 s. Parsing a config or
a scenario and simulating a binary design need none of them; the outputs import pandas when they
are written. Each check runs in a fresh interpreter (this one has everything loaded already), and
a control shows that the check sees such an import.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "pyarrow", "xarray", "statsmodels", "scipy.stats", "arviz", "pymc")


def _heavy_loaded(code: str) -> set[str]:
    """The :data:`HEAVY` modules loaded after running ``code`` in a new interpreter."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return set(out.stdout.split())


@pytest.mark.parametrize(
    "module", ["adaptive.config", "adaptive.scenario", "adaptive.simulate.study", "adaptive.cli"]
)
def test_the_simulate_path_imports_no_heavy_library(module):
    assert _heavy_loaded(f"import {module}") == set()


def test_the_check_sees_a_heavy_import():
    assert {"pandas", "pyarrow"} <= _heavy_loaded("import adaptive.data")

