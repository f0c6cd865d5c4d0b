"""Posterior quantities that decisions are made from, with their Monte Carlo standard errors.

Everything here works on posterior *draws* held in an :class:`xarray.DataArray` with dims
``(chain, draw, arm)``: the output of any sampler, or exact draws from a conjugate posterior.
Nothing here knows about PyMC or about the models; a fake posterior built with numpy is as good
as a real one, which is how the rules are unit-tested.

The Monte Carlo standard error (MCSE) of a probability ``P(A)`` estimated as the mean of the
indicator ``1{A}`` over draws is ``sd(1{A}) / sqrt(ESS)``, with the effective sample size of the
indicator computed by ArviZ (rank-normalised, split-chain). For independent draws this reduces to
the binomial ``sqrt(p (1 - p) / N)``. When the indicator is constant across all draws the
estimate is 0 or 1 and the MCSE is reported as 0 (the probability is then only known to lie
within about ``1 / N`` of that bound).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:  # draws arrive as xarray objects; the simulator, on exact posteriors, never loads it
    import xarray as xr

__all__ = ["Estimate", "DrawsPosterior", "Posterior", "indicator_estimate"]


@dataclass(frozen=True)
class Estimate:
    """A posterior probability and its Monte Carlo standard error."""

    prob: float
    mcse: float
    n_draws: int = 0


def indicator_estimate(indicator: np.ndarray) -> Estimate:
    """Estimate ``P(A)`` and its MCSE from a ``(chain, draw)`` boolean indicator array.

    Parameters
    ----------
    indicator
        Boolean or 0/1 array of shape ``(chain, draw)``.

    Returns
    -------
    Estimate
        Mean of the indicator and ``sd / sqrt(ESS_mean)``.
    """
    x = np.asarray(indicator, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"indicator must have shape (chain, draw), got {x.shape}")
    prob = float(x.mean())
    sd = float(x.std(ddof=1)) if x.size > 1 else 0.0
    if sd == 0.0:
        return Estimate(prob, 0.0, x.size)
    import arviz as az  # here, not at the top: the simulator's workers never need ArviZ (2.5 s import)

    ess = float(az.ess(x, method="mean"))
    if not np.isfinite(ess) or ess <= 0:
        ess = float(x.size)
    return Estimate(prob, float(sd / np.sqrt(ess)), x.size)


class Posterior(Protocol):
    """What the rules read from a posterior of per-arm rates.

    :class:`DrawsPosterior` (MCMC draws), :class:`~decision_rules.beta.BetaPosterior` (conjugate)
    and the simulator's exact posteriors have it.
    """

    @property
    def arms(self) -> tuple[str, ...]: ...

    def prob_above(self, arm: str, value: float) -> Estimate: ...

    def prob_better(
        self, a: str, b: str, *, margin: float = 0.0, higher_is_better: bool = True
    ) -> Estimate: ...


class DrawsPosterior:
    """Posterior of a per-arm rate, seen through its draws.

    Parameters
    ----------
    draws
        DataArray with dims ``(chain, draw, arm)`` and string ``arm`` coordinates.
    """

    def __init__(self, draws: xr.DataArray):
        missing = {"chain", "draw", "arm"} - set(draws.dims)
        if missing:
            raise ValueError(f"posterior draws need dims chain, draw, arm; missing {sorted(missing)}")
        self.draws = draws.transpose("chain", "draw", "arm")
        self.arms: tuple[str, ...] = tuple(str(a) for a in self.draws.coords["arm"].values)

    def _arm(self, arm: str) -> np.ndarray:
        if arm not in self.arms:
            raise KeyError(f"arm {arm!r} is not in the posterior (arms: {', '.join(self.arms)})")
        return self.draws.sel(arm=arm).values

    def mean(self, arm: str) -> float:
        """Posterior mean of the rate of ``arm``."""
        return float(self._arm(arm).mean())

    def quantile(self, arm: str, q: Sequence[float]) -> list[float]:
        """Posterior quantiles of the rate of ``arm``."""
        return [float(v) for v in np.quantile(self._arm(arm), q)]

    def prob_above(self, arm: str, value: float) -> Estimate:
        """``P(p_arm > value)``."""
        return indicator_estimate(self._arm(arm) > value)

    def prob_below(self, arm: str, value: float) -> Estimate:
        """``P(p_arm < value)``."""
        return indicator_estimate(self._arm(arm) < value)

    def prob_better(self, a: str, b: str, *, margin: float = 0.0, higher_is_better: bool = True) -> Estimate:
        """``P(p_a > p_b + margin)`` (or ``P(p_a < p_b - margin)`` when lower is better)."""
        if higher_is_better:
            return indicator_estimate(self._arm(a) > self._arm(b) + margin)
        return indicator_estimate(self._arm(a) < self._arm(b) - margin)

    def prob_best(self, arms: Sequence[str], *, higher_is_better: bool = True) -> Mapping[str, Estimate]:
        """``P(arm has the best rate among arms)`` for each of ``arms`` (ties broken by order)."""
        stacked = np.stack([self._arm(a) for a in arms], axis=-1)
        best = stacked.argmax(axis=-1) if higher_is_better else stacked.argmin(axis=-1)
        return {a: indicator_estimate(best == i) for i, a in enumerate(arms)}
