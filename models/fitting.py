"""Fit a model, check convergence, retry with more tuning and a higher target acceptance.

A fit that still fails after every retry is returned with ``converged = False``; the caller must
refuse to make recommendations from it (``adaptive.interim`` raises ``ConvergenceError``).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import arviz as az

from models.diagnostics import Diagnostics, Limits, diagnose
from models.sampling import SamplerSettings, derive_seed

#: progress messages (the CLI shows them on a terminal: :mod:`adaptive.progress`)
log = logging.getLogger("models.fit")


@dataclass(frozen=True)
class Attempt:
    """One try at fitting: its settings, seed and diagnostics."""

    tune: int
    target_accept: float
    seed: int
    diagnostics: Diagnostics

    def to_dict(self) -> dict:
        return {
            "tune": self.tune,
            "target_accept": self.target_accept,
            "seed": self.seed,
            **self.diagnostics.to_dict(),
        }


@dataclass(frozen=True)
class FitResult:
    """The last attempt's InferenceData with the history of attempts."""

    idata: az.InferenceData
    attempts: tuple[Attempt, ...]

    @property
    def diagnostics(self) -> Diagnostics:
        return self.attempts[-1].diagnostics

    @property
    def converged(self) -> bool:
        return self.diagnostics.converged


def fit_with_retries(
    model: Any,  # a model of models.binary or models.survival (anything with `fit`)
    data: Any,
    *,
    seed: int,
    label: str,
    settings: SamplerSettings,
    limits: Limits,
    retries: tuple[tuple[int, float], ...] = (),
) -> FitResult:
    """Fit ``model`` to ``data``; on failure refit with each ``(tune, target_accept)`` in turn.

    Seeds of the attempts are derived from ``seed``, ``label`` and the attempt number, so a
    rerun reproduces every attempt exactly.
    """
    plan = [(settings.tune, settings.target_accept), *retries]
    attempts: list[Attempt] = []
    idata = None
    for k, (tune, target_accept) in enumerate(plan):
        s = dataclasses.replace(settings, tune=tune, target_accept=target_accept)
        log.info(
            "fitting %s: %s%s",
            label,
            type(model).__name__,
            f", retry {k} of {len(retries)} (tune {tune}, target_accept {target_accept})" if k else "",
        )
        attempt_seed = derive_seed(seed, label, k)
        idata = model.fit(data, seed=attempt_seed, settings=s)
        diag = diagnose(idata, limits)
        attempts.append(Attempt(tune, target_accept, attempt_seed, diag))
        if diag.converged:
            break
    assert idata is not None
    return FitResult(idata=idata, attempts=tuple(attempts))
