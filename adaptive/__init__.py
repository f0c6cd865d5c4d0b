"""Bayesian adaptive-platform decision engine for the R/R AML platform trial.

The public Python API, for notebooks and scripts (the CLI calls the same functions)::

    from adaptive import load_config, load_patients, derive_endpoints, run_interim, build_memo
    from adaptive import simulate_study, calibrate, build_sim_report

and the errors a script catches: ``AdaptiveError`` (the base of every error raised on purpose),
``ConfigError``, ``DataError``, ``ConvergenceError`` (a look refused on convergence; it is still
written).

Each name is imported on first use, so ``import adaptive`` stays light and importing one part
(e.g. the report, which never imports PyMC) does not load the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers and IDEs (re-exports); at run time __getattr__ imports on first use
    from adaptive.config import load_config  # noqa: F401
    from adaptive.data import load_patients  # noqa: F401
    from adaptive.derive import derive as derive_endpoints  # noqa: F401
    from adaptive.exceptions import AdaptiveError, ConfigError, ConvergenceError, DataError  # noqa: F401
    from adaptive.interim import run_interim  # noqa: F401
    from adaptive.report.render import build_memo  # noqa: F401
    from adaptive.report.simreport import build_sim_report  # noqa: F401
    from adaptive.simulate.study import calibrate, simulate_study  # noqa: F401

#: public name -> (the module that defines it, its name there)
_API: dict[str, tuple[str, str]] = {
    "load_config": ("adaptive.config", "load_config"),
    "load_patients": ("adaptive.data", "load_patients"),
    "derive_endpoints": ("adaptive.derive", "derive"),
    "run_interim": ("adaptive.interim", "run_interim"),
    "build_memo": ("adaptive.report.render", "build_memo"),
    "simulate_study": ("adaptive.simulate.study", "simulate_study"),
    "calibrate": ("adaptive.simulate.study", "calibrate"),
    "build_sim_report": ("adaptive.report.simreport", "build_sim_report"),
    "AdaptiveError": ("adaptive.exceptions", "AdaptiveError"),
    "ConfigError": ("adaptive.exceptions", "ConfigError"),
    "DataError": ("adaptive.exceptions", "DataError"),
    "ConvergenceError": ("adaptive.exceptions", "ConvergenceError"),
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        module, attribute = _API[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'adaptive' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
