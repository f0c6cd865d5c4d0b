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
import textwrap
from pathlib import Path

import pytest
import yaml

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


def test_simulating_a_binary_design_imports_no_heavy_library(tmp_path):
    """Config and scenario parsed, kernels loaded, trials run on two threads: still no pandas."""
    from tests.test_sim_fastpaths import _two_arm_docs

    cfg, sc = _two_arm_docs()
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(sc))
    code = textwrap.dedent(f"""
        from pathlib import Path
        from adaptive.config import load_config
        from adaptive.scenario import load_scenario
        from adaptive.simulate import run
        tmp = Path({str(tmp_path)!r})
        load_scenario(tmp / "s.yaml", load_config(tmp / "c.yaml"))
        job = run.Job((tmp / "c.yaml").read_text(), "c.yaml", (tmp / "s.yaml").read_text(), "s.yaml",
                      False, str(tmp))
        first, local = run.pilot(job, 400, 1, 100, 1)
        chunks, ok = run.run_trials(job, 400, 1, threads=2, first=first)
        assert ok and local and sum(len(c.trial) for c in chunks) == 400
    """)
    assert _heavy_loaded(code) == set()
