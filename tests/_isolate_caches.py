"""Point every cache a test run fills into one temporary folder per test session (issue 17).

Imported by ``conftest.py`` before anything imports numba, PyTensor or matplotlib (they read these
variables when they are first imported). Left alone, one run of the suite leaves about 1.3 GB in
the user's folders: the simulator's quadrature tables (``~/.cache/rr-aml-adaptive``), PyTensor's
compiled models (``~/.pytensor``), matplotlib's font list, ArviZ's and fontconfig's caches,
Chromium's profile. The
variables are set in ``os.environ``, so the fitting workers, the Dask workers and the CLI
subprocesses that tests start inherit them. The folder is removed when the session ends.

``RR_AML_TEST_CACHE=/some/folder`` keeps the caches there instead, between runs (compiled models
and quadrature tables are slow to build); the folder is then not removed.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

_KEEP = os.environ.get("RR_AML_TEST_CACHE")
ROOT = Path(_KEEP) if _KEEP else Path(tempfile.mkdtemp(prefix="rr-aml-tests-"))
ROOT.mkdir(parents=True, exist_ok=True)
if not _KEEP:
    atexit.register(shutil.rmtree, ROOT, ignore_errors=True)

ENV = {
    "ADAPTIVE_CACHE_DIR": str(ROOT / "adaptive"),  # models.batch quadrature tables
    "NUMBA_CACHE_DIR": str(ROOT / "numba"),  # cache=True kernels (else __pycache__ beside the sources)
    "MPLCONFIGDIR": str(ROOT / "matplotlib"),
    "XDG_CACHE_HOME": str(ROOT / "xdg-cache"),  # fontconfig (WeasyPrint), ArviZ, anything else XDG
    "XDG_CONFIG_HOME": str(ROOT / "xdg-config"),  # headless Chromium's profile (memo screenshot test)
    "XDG_DATA_HOME": str(ROOT / "xdg-data"),  # Jupyter's data folder (notebook tests)
    "IPYTHONDIR": str(ROOT / "ipython"),  # the notebook tests' kernels
    "JUPYTER_RUNTIME_DIR": str(ROOT / "jupyter-runtime"),
}
os.environ.update(ENV)
# the last `compiledir=` of PYTENSOR_FLAGS wins; other flags the user set are kept
_flags = os.environ.get("PYTENSOR_FLAGS", "")
os.environ["PYTENSOR_FLAGS"] = ",".join(filter(None, [_flags, f"compiledir={ROOT / 'pytensor'}"]))
