"""Exact twin of the survival model in its simplest case, used by the tests.

With a single interval and independent arms (``kind: independent``) arm ``k``'s hazard ``h`` has
the posterior density, in ``x = log h``,

    p(x | d, E) ∝ exp(d x - E e^x) Normal(x; m, s),

with ``d`` events and ``E`` days at risk: one dimension, integrated here on a fine grid. As
``s -> inf`` (a flat prior on ``log h``, i.e. ``p(h) ∝ 1/h``) it becomes the conjugate
``Gamma(d, rate=E)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special


@dataclass(frozen=True)
class HazardPosterior:
    """The posterior of one constant hazard on a grid of ``x = log h`` (normalised weights)."""

    x: np.ndarray
    w: np.ndarray

    @property
    def mean(self) -> float:
        """Posterior mean of the hazard."""
        return float(np.sum(self.w * np.exp(self.x)))

    def cdf(self, h: float) -> float:
        """``P(hazard <= h)``."""
        return float(np.sum(self.w[self.x <= np.log(h)]))

    def quantile(self, q: float) -> float:
        """Posterior quantile of the hazard (linear interpolation on the grid)."""
        c = np.cumsum(self.w)
        return float(np.exp(np.interp(q, c, self.x)))


def exponential_lognormal_posterior(
    d: float, exposure: float, m: float, s: float, n: int = 200_001
) -> HazardPosterior:
    """Posterior of a constant hazard with ``d`` events in ``exposure`` days, prior ``log h ~ N(m, s)``."""
    # the log-density is concave: its mode by Newton, then a grid wide enough for both factors
    x0 = m
    for _ in range(200):
        g = d - exposure * np.exp(x0) - (x0 - m) / s**2
        hess = -exposure * np.exp(x0) - 1.0 / s**2
        step = g / hess
        x0 -= np.clip(step, -2.0, 2.0)
        if abs(step) < 1e-12:
            break
    sd = 1.0 / np.sqrt(exposure * np.exp(x0) + 1.0 / s**2)
    x = np.linspace(x0 - 40 * sd, x0 + 12 * sd, n)
    logp = d * x - exposure * np.exp(x) - 0.5 * ((x - m) / s) ** 2
    w = np.exp(logp - special.logsumexp(logp))
    return HazardPosterior(x=x, w=w)
