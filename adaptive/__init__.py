"""Bayesian adaptive-platform decision engine for the R/R AML platform trial.

The public Python API, for notebooks and scripts (the CLI calls the same functions)::

    from adaptive import load_config, load_patients, run_interim, build_memo
    from adaptive import simulate_study, calibrate, build_sim_report

Each name is imported on first use, so ``import adaptive`` stays light and importing one part
(e.g. the report, which never imports PyMC) does not load the others.
"""

from __future__ import annotations

import importlib

#: public name -> the module that defines it
_API = {
    "load_config": "adaptive.config",
    "load_patients": "adaptive.data",
    "run_interim": "adaptive.interim",
    "build_memo": "adaptive.report.render",
    "simulate_study": "adaptive.simulate.study",
    "calibrate": "adaptive.simulate.study",
    "build_sim_report": "adaptive.report.simreport",
}

__all__ = sorted(_API)


def __getattr__(name: str):
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'adaptive' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
