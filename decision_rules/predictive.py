"""Predictive probability of success: would the arm meet its final rule at its maximum sample size.

An arm has ``y`` responders among ``n`` evaluable patients and ``m`` more outcomes to come before
it reaches its maximum sample size. Its final analysis succeeds when the final posterior
probability ``P(p > c | y + Y of n + m)`` exceeds the success threshold ``theta`` (the arm's
efficacy rule), where ``Y`` is the number of responders among the ``m`` future patients. The
predictive probability of success is

    PP = sum_Y  P(Y | data)  1{ P(p > c | y + Y, n + m) > theta },

with ``P(Y | data) = int Bin(Y | m, p) pi(p | data) dp`` the posterior predictive distribution.
Because the binomial family has a monotone likelihood ratio in ``Y``, the final probability is
nondecreasing in ``Y`` for *any* prior (and for the hierarchical models, whose prior for arm ``k``
given the other arms' data is just another prior), so success happens exactly from a critical
count ``Y*`` on, and ``PP = P(Y >= Y* | data)``.

Two ways to compute it, one per kind of posterior:

* **Exact** (independent Beta posterior ``Beta(a, b)``): ``P(Y | data)`` is beta-binomial and the
  final posterior is ``Beta(a + Y, b + m - Y)``: every ``Y`` is enumerated, vectorized over any
  leading "trial" dimensions (:func:`predictive_prob_success_beta`, used by the simulator too).
* **From posterior draws** (hierarchical, EXNEX, anything sampled): ``P(Y | data)`` is the average
  of ``Bin(Y | m, p_s)`` over the draws ``p_s`` (Rao-Blackwellised), and the final posterior
  after ``Y`` of ``m`` more is the current posterior reweighted by the new likelihood,
  ``w_s(Y) = p_s^Y (1 - p_s)^(m - Y)`` (importance reweighting, exact up to Monte Carlo error for
  any model: the new patients only add the factor ``Bin(Y | m, p_k)`` to the joint posterior).
  The other arms' data stay as they are at the cutoff. The effective sample size of the weights
  at the critical count is reported; when it is small, or the final probability at the critical
  count lies within 2 Monte Carlo standard errors of ``theta``, the critical count is flagged as
  Monte Carlo-uncertain. A caller may inject its own ``final_prob`` callable (e.g. quadrature)
  instead of the reweighting, so this module stays model-agnostic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
from scipy import special

from decision_rules.quantities import DrawsPosterior, Estimate, indicator_estimate

__all__ = [
    "beta_binomial_pmf",
    "beta_final_prob",
    "PredictiveArrays",
    "beta_critical_counts",
    "predictive_prob_success_beta",
    "Prediction",
    "BetaPredictive",
    "DrawsPredictive",
    "MIN_IMPORTANCE_ESS",
]

#: below this effective sample size of the importance weights the critical count is flagged
MIN_IMPORTANCE_ESS = 200.0


def _future_counts(m: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray, int]:
    m = np.asarray(m, dtype=np.int64)
    if np.any(m < 0):
        raise ValueError("the number of future patients m must be >= 0")
    top = int(m.max()) if m.size else 0
    yy = np.arange(top + 1)
    return m, yy, top


def beta_binomial_pmf(m: npt.ArrayLike, a: npt.ArrayLike, b: npt.ArrayLike) -> np.ndarray:
    """Beta-binomial pmf of ``Y`` future responders among ``m``, for ``p ~ Beta(a, b)``.

    Parameters
    ----------
    m, a, b
        Broadcastable arrays (leading "trial" / arm dimensions).

    Returns
    -------
    numpy.ndarray
        Shape ``broadcast(m, a, b) + (M + 1,)`` with ``M = max(m)``; entries with ``Y > m`` are 0.
    """
    m, yy, _ = _future_counts(m)
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    m_, a_, b_ = (v[..., None] for v in np.broadcast_arrays(m, a, b))
    valid = yy <= m_
    yv = np.where(valid, yy, 0)
    logp = (
        special.gammaln(m_ + 1)
        - special.gammaln(yv + 1)
        - special.gammaln(m_ - yv + 1)
        + special.betaln(a_ + yv, b_ + m_ - yv)
        - special.betaln(a_, b_)
    )
    return np.where(valid, np.exp(logp), 0.0)


def beta_final_prob(
    a: npt.ArrayLike, b: npt.ArrayLike, m: npt.ArrayLike, reference: npt.ArrayLike
) -> np.ndarray:
    """``P(p > reference | Beta(a + Y, b + m - Y))`` for ``Y = 0..M`` (0 where ``Y > m``)."""
    m, yy, _ = _future_counts(m)
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    m_, a_, b_, c_ = (v[..., None] for v in np.broadcast_arrays(m, a, b, np.asarray(reference, float)))
    valid = yy <= m_
    yv = np.where(valid, yy, 0)
    return np.where(valid, special.betaincc(a_ + yv, b_ + m_ - yv, c_), 0.0)


@dataclass(frozen=True)
class PredictiveArrays:
    """Vectorized predictive probabilities; every array has the broadcast leading shape."""

    prob: np.ndarray  # predictive probability of success
    critical_count: np.ndarray  # smallest future count Y that succeeds (m + 1 when none does)


def _beta_binomial_pmf_fast(m: np.ndarray, a: np.ndarray, b: np.ndarray, top: int) -> np.ndarray:
    """Beta-binomial pmf ``(..., top + 1)`` by the ratio recurrence (zeros beyond ``m``)."""
    yy = np.arange(top)
    m_, a_, b_ = (v[..., None] for v in (m, a, b))
    # pmf(Y + 1) / pmf(Y) = (m - Y) / (Y + 1) * (a + Y) / (b + m - Y - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log((m_ - yy) * (a_ + yy)) - np.log((yy + 1.0) * (b_ + m_ - yy - 1.0))
    log_ratio = np.where(yy < m_, log_ratio, -np.inf)
    log0 = special.betaln(a, b + m) - special.betaln(a, b)
    logp = np.concatenate([log0[..., None], log0[..., None] + np.cumsum(log_ratio, axis=-1)], axis=-1)
    return np.exp(logp)


def beta_critical_counts(
    a: npt.ArrayLike, b: npt.ArrayLike, m: npt.ArrayLike, reference: npt.ArrayLike, threshold: npt.ArrayLike
) -> np.ndarray:
    """Smallest future count ``Y`` with ``P(p > reference | Beta(a + Y, b + m - Y)) > threshold``.

    ``m + 1`` where no count succeeds. The final posterior depends on the data only through
    ``a + Y`` with ``a + b + m`` fixed, and increases with it, so the boundary is found once per
    distinct ``(a + b + m, frac(a), reference, threshold)`` and shared by every trial with those
    values (in a simulation: once per arm), which is what makes this fast.
    """
    a, b, m, ref, thr = np.broadcast_arrays(
        np.asarray(a, float),
        np.asarray(b, float),
        np.asarray(m, np.int64),
        np.asarray(reference, float),
        np.asarray(threshold, float),
    )
    total = a + b + m
    frac = a - np.floor(a)
    whole = np.rint(a - frac).astype(np.int64)
    keys = np.stack([total, frac, ref, thr], axis=-1).reshape(-1, 4)
    uniq, inverse = np.unique(np.round(keys, 12), axis=0, return_inverse=True)
    s_, f_, r_, t_ = uniq.T
    kmax = np.ceil(s_ - f_).astype(np.int64)

    def succeeds(k: np.ndarray) -> np.ndarray:
        """The final rule at ``a + Y = f + k``; monotone in ``k``.

        A ``k`` beyond every possible count (``a + Y >= a + b + m``) counts as success, which keeps
        the predicate monotone and maps to "no count succeeds" below (``crit > m``).
        """
        x = f_ + k
        ok = x < s_
        prob = special.betaincc(np.where(ok, x, 1.0), np.where(ok, s_ - x, 1.0), r_)
        return ~ok | (prob > t_)

    # integer bisection for the smallest k that succeeds (k = kmax always does)
    lo = np.zeros(len(uniq), np.int64)
    hi = kmax.copy()
    while np.any(lo < hi):
        mid = (lo + hi) // 2
        good = succeeds(mid)
        active = lo < hi
        hi = np.where(active & good, mid, hi)
        lo = np.where(active & ~good, mid + 1, lo)
    k_star = lo
    crit = np.maximum(k_star[inverse.ravel()].reshape(a.shape) - whole, 0)
    return np.minimum(crit, m + 1)


def predictive_prob_success_beta(
    a: npt.ArrayLike, b: npt.ArrayLike, m: npt.ArrayLike, reference: npt.ArrayLike, threshold: npt.ArrayLike
) -> PredictiveArrays:
    """Exact predictive probability of success for independent Beta posteriors.

    Parameters
    ----------
    a, b
        Current posterior Beta parameters (prior plus data), shape ``(...)``.
    m
        Future evaluable patients until the maximum sample size, shape ``(...)``.
    reference, threshold
        The final rule: success when ``P(p > reference) > threshold`` at ``n + m``.
    """
    a, b, m = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float), np.asarray(m, np.int64))
    if np.any(m < 0):
        raise ValueError("the number of future patients m must be >= 0")
    top = int(m.max()) if m.size else 0
    crit = beta_critical_counts(a, b, m, reference, threshold)
    pmf = _beta_binomial_pmf_fast(m, a, b, top)
    tail = np.arange(top + 1) >= crit[..., None]
    return PredictiveArrays(prob=np.clip((pmf * tail).sum(-1), 0.0, 1.0), critical_count=crit)


# ============================================================================= one arm at a look
@dataclass(frozen=True)
class Prediction:
    """The predictive probability of success of one arm, with how it was computed."""

    estimate: Estimate
    remaining: int  # m
    critical_count: int | None  # Y*: future responders needed (None: success impossible)
    final_prob_at_critical: float | None  # P(p > c | y + Y*) (just above theta)
    final_prob_below_critical: float | None  # P(p > c | y + Y* - 1) (at or below theta)
    method: str
    importance_ess: float | None = None
    boundary_uncertain: bool = False

    def to_dict(self) -> dict:
        return {
            "remaining": self.remaining,
            "critical_count": self.critical_count,
            "final_prob_at_critical": self.final_prob_at_critical,
            "final_prob_below_critical": self.final_prob_below_critical,
            "method": self.method,
            "importance_ess": self.importance_ess,
            "boundary_uncertain": self.boundary_uncertain,
        }


def _boundary(
    final: np.ndarray, success: np.ndarray, m: int
) -> tuple[int | None, float | None, float | None]:
    crit = int(np.argmax(success)) if success.any() else None
    at = float(final[crit]) if crit is not None else None
    below_idx = (crit - 1) if crit is not None else m
    below = float(final[below_idx]) if below_idx >= 0 else None
    return crit, at, below


class BetaPredictive:
    """Exact predictions for arms with independent Beta posteriors ``Beta(a_k, b_k)``."""

    def __init__(
        self,
        arms: Sequence[str],
        a: Mapping[str, float] | npt.ArrayLike,
        b: Mapping[str, float] | npt.ArrayLike,
    ) -> None:
        self.arms = tuple(arms)
        get = lambda v: np.array([v[x] for x in self.arms] if isinstance(v, Mapping) else v, float)  # noqa: E731
        self.a = get(a)
        self.b = get(b)

    def predict(self, arm: str, m: int, reference: float, threshold: float) -> Prediction:
        """Predictive probability that ``P(p > reference) > threshold`` after ``m`` more patients."""
        i = self.arms.index(arm)
        res = predictive_prob_success_beta(self.a[i], self.b[i], m, reference, threshold)
        final = beta_final_prob(self.a[i], self.b[i], m, reference)
        success = final > threshold
        crit, at, below = _boundary(final, success, m)
        return Prediction(
            estimate=Estimate(float(res.prob), 0.0, 0),
            remaining=int(m),
            critical_count=crit,
            final_prob_at_critical=at,
            final_prob_below_critical=below,
            method="exact beta-binomial enumeration",
        )


FinalProb = Callable[[str, int, np.ndarray, float], np.ndarray]


class PredictiveSource(Protocol):
    """What predictive rules read: :class:`BetaPredictive` or :class:`DrawsPredictive`."""

    @property
    def arms(self) -> tuple[str, ...]: ...

    def predict(self, arm: str, m: int, reference: float, threshold: float) -> Prediction: ...


class DrawsPredictive:
    """Predictions from posterior draws of the rates (any model).

    Parameters
    ----------
    posterior
        A :class:`~decision_rules.quantities.DrawsPosterior` (draws ``(chain, draw, arm)``).
    final_prob
        Optional ``final_prob(arm, m, Y, reference) -> P(p > reference | data + Y of m)`` for an
        array of future counts ``Y``; default: importance reweighting of the draws.
    min_importance_ess
        Effective sample size of the weights below which the critical count is flagged.
    """

    def __init__(
        self,
        posterior: DrawsPosterior,
        final_prob: FinalProb | None = None,
        min_importance_ess: float = MIN_IMPORTANCE_ESS,
    ) -> None:
        self.posterior = posterior
        self.arms = tuple(posterior.arms)
        self.final_prob_fn = final_prob
        self.min_importance_ess = float(min_importance_ess)

    def _draws(self, arm: str) -> np.ndarray:
        return np.asarray(self.posterior.draws.sel(arm=arm).values, float)  # (chain, draw)

    def reweighted(self, arm: str, m: int, reference: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Final probabilities for ``Y = 0..m`` by importance reweighting of the draws.

        Returns ``(final_prob, mcse, ess)``, each of shape ``(m + 1,)``.
        """
        p = np.clip(self._draws(arm).ravel(), 1e-300, 1 - 1e-16)
        yy = np.arange(m + 1)
        logw = yy[None, :] * np.log(p)[:, None] + (m - yy)[None, :] * np.log1p(-p)[:, None]
        logw -= logw.max(axis=0, keepdims=True)
        w = np.exp(logw)
        w /= w.sum(axis=0, keepdims=True)
        hit = (p > reference).astype(float)[:, None]
        final = (w * hit).sum(0)
        ess = 1.0 / (w**2).sum(0)
        # delta-method standard error of a self-normalised importance-sampling estimate
        mcse = np.sqrt((w**2 * (hit - final) ** 2).sum(0))
        return final, mcse, ess

    def predict(self, arm: str, m: int, reference: float, threshold: float) -> Prediction:
        """Predictive probability that ``P(p > reference) > threshold`` after ``m`` more patients."""
        draws = self._draws(arm)
        yy = np.arange(m + 1)
        ess = None
        uncertain = False
        if self.final_prob_fn is not None:
            final = np.asarray(self.final_prob_fn(arm, m, yy, reference), float)
            method = "posterior-predictive over the draws; final posterior from the injected computation"
            success = final > threshold
            crit, at, below = _boundary(final, success, m)
        else:
            final, mcse, ess_all = self.reweighted(arm, m, reference)
            success = final > threshold
            crit, at, below = _boundary(final, success, m)
            near = [i for i in (crit, (crit - 1) if crit is not None else m) if i is not None and i >= 0]
            ess = float(min(ess_all[i] for i in near)) if near else None
            uncertain = bool(
                any(abs(final[i] - threshold) < 2 * mcse[i] for i in near)
                or (ess is not None and ess < self.min_importance_ess)
            )
            method = (
                f"posterior-predictive over {draws.size} draws; final posterior by importance "
                "reweighting of the same draws (other arms' data as at the cutoff)"
            )
        # P(Y >= Y*) given each draw, Rao-Blackwellised; MCSE from its effective sample size
        if crit is None:
            est = Estimate(0.0, 0.0, 0)
        elif crit == 0:
            est = Estimate(1.0, 0.0, 0)
        else:
            from scipy import stats  # here: scipy.stats costs ~0.3 s to import (`adaptive simulate`)

            g = stats.binom.sf(crit - 1, m, np.clip(draws, 0.0, 1.0))
            if not np.all(np.diff(success.astype(int)) >= 0):
                # not monotone (Monte Carlo noise): sum over every succeeding count instead
                pmf = stats.binom.pmf(yy[None, None, :], m, np.clip(draws, 0.0, 1.0)[..., None])
                g = (pmf * success).sum(-1)
                uncertain = True
            est = indicator_estimate(g)
        return Prediction(
            estimate=est,
            remaining=int(m),
            critical_count=crit,
            final_prob_at_critical=at,
            final_prob_below_critical=below,
            method=method,
            importance_ess=ess,
            boundary_uncertain=uncertain,
        )
