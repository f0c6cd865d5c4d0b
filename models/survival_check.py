"""Posterior predictive check of the piecewise-exponential model against Kaplan-Meier, per arm.

For ``n_rep`` posterior draws (a seeded subsample), a replicated data set is simulated with the
observed patients' potential censoring times from the draw's piecewise-exponential distribution
(with its point mass), and two things are compared with the observed data:

(a) **the Kaplan-Meier median**: the replicated KM medians (``inf`` when the replicate's KM never
    falls to 1/2) give a ``1 - alpha`` predictive interval ``[lo, hi]`` (the ``alpha/2`` and
    ``1 - alpha/2`` order statistics, no interpolation, so ``hi`` is ``inf`` when more than
    ``alpha/2`` of the replicates do not reach their median). The observed KM median is inside
    when ``lo <= median_obs <= hi``, with "not reached" ordered above every day: an observed
    median that is not reached is inside exactly when ``P(replicate not reached) >= alpha/2``,
    and a reached one is outside (too long) only when more than ``1 - alpha/2`` of the
    replicates reach theirs earlier.
(b) **a discrepancy**: ``D = sup_t |KM(t) - S_draw(t)|`` over a grid (the observed event times,
    the point-mass day when an observed patient has a point-mass event, and the cut points, all
    up to the largest observed time), for the observed data and for each replicate against the
    same draw's ``S``; the posterior predictive p-value is ``P(D_rep >= D_obs)``.

**Rule**: ``misfit = p_value < alpha or not median_inside`` (``alpha = 0.05``). It is a screening
flag: with seven arms and three endpoints per look about one flag per look is expected by chance
when every model fits, so a flag calls for a look at the KM and model curves, not an action.

The model behind the replicates is the mixture of :func:`models.survival.median_survival`: an
event at ``point_mass_days`` with probability ``pi``, else a piecewise-exponential time; a
point-mass event is observed when the patient's potential censoring time is at least
``point_mass_days`` (always with the default day 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import arviz as az

#: S(t) this close to 1/2 counts as having reached the median (the product of the KM factors is
#: not exact in floating point: 3/4 x 2/3 must reach 1/2)
_MEDIAN_TOL = 1e-12


# ----------------------------------------------------------------------------- Kaplan-Meier
# Our own Kaplan-Meier, vectorised over the replicates (rows): one lexsort and one cumprod for
# all 400 replicates at once. lifelines' KaplanMeierFitter builds a pandas event table per fit, and
# 400 fits per arm take ~100x longer than this; tests check the two agree to 1e-12.
def _km_sorted(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Times sorted per row and the KM survival just after each sorted entry, shape ``(R, n)``.

    Ties: events before censorings (a patient censored at ``t`` is at risk at ``t``); tied events
    multiply ``(1 - 1/n_i)`` per patient, which telescopes to ``1 - d/n`` for the tied block.
    """
    time = np.atleast_2d(np.asarray(time, dtype=float))
    event = np.atleast_2d(np.asarray(event, dtype=bool))
    order = np.lexsort((~event, time), axis=-1)
    t_sorted = np.take_along_axis(time, order, -1)
    e_sorted = np.take_along_axis(event, order, -1)
    n = time.shape[-1]
    at_risk = n - np.arange(n, dtype=float)
    factor = np.where(e_sorted, 1.0 - 1.0 / at_risk, 1.0)
    return t_sorted, np.cumprod(factor, axis=-1)


def kaplan_meier(time: np.ndarray, event: np.ndarray, grid: Sequence[float]) -> np.ndarray:
    """Kaplan-Meier survival at ``grid`` (right-continuous: events at ``t`` count at ``t``).

    ``time``/``event`` are ``(n,)`` or ``(R, n)`` (one data set per row); returns ``(R, len(grid))``.
    """
    t_sorted, surv = _km_sorted(time, event)
    at = np.asarray(grid, dtype=float)
    if t_sorted.shape[-1] == 0:
        return np.ones((t_sorted.shape[0], at.size))
    count = np.sum(t_sorted[:, :, None] <= at[None, None, :], axis=1)  # entries at or before t
    idx = np.maximum(count - 1, 0)
    return np.where(count > 0, np.take_along_axis(surv, idx, -1), 1.0)


def kaplan_meier_median(time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """KM median per row, R survival's convention; ``inf`` when the curve stays above 1/2.

    The first time with ``S(t) <= 1/2``, except when the curve sits exactly at 1/2 on a flat
    segment from ``t1`` to the next event time ``t2``: then ``(t1 + t2) / 2`` as R's ``survfit``
    (``t1`` when no event follows). The engine's reported median
    (``adaptive.survival_data.km_median``) uses the same convention, so the model check compares
    like with like.
    """
    t_sorted, surv = _km_sorted(time, event)
    if t_sorted.shape[-1] == 0:
        return np.full(t_sorted.shape[0], np.inf)
    reached = surv <= 0.5 + _MEDIAN_TOL
    first = np.argmax(reached, axis=-1)
    t_first = np.take_along_axis(t_sorted, first[:, None], -1)[:, 0]
    at_half = np.abs(np.take_along_axis(surv, first[:, None], -1)[:, 0] - 0.5) <= _MEDIAN_TOL
    below = surv < 0.5 - _MEDIAN_TOL  # non-increasing: the first such entry is the next event
    t_next = np.take_along_axis(t_sorted, np.argmax(below, axis=-1)[:, None], -1)[:, 0]
    med = np.where(at_half & below.any(axis=-1), (t_first + t_next) / 2, t_first)
    return np.where(reached.any(axis=-1), med, np.inf)


# ----------------------------------------------------------------------------- the model's side
def _survival(hazard, pi, cut_points, grid, point_mass_days):
    """``S(t)`` per draw at ``grid``: ``(1 - pi) e^-H`` from the point-mass day, ``pi + ...`` before."""
    b = np.asarray(cut_points, dtype=float)
    widths = np.diff(b)
    widths[-1] = np.inf
    overlap = np.clip(grid[:, None] - b[None, :-1], 0.0, widths[None, :])  # (G, J)
    cum = hazard @ overlap.T  # (R, G)
    cont = (1.0 - pi[:, None]) * np.exp(-cum)
    return np.where(grid[None, :] >= point_mass_days, cont, pi[:, None] + cont)


def _simulate(rng, hazard, pi, cut_points, censor_time, point_mass_days):
    """Replicated (time, event), shape ``(R, n)``, with the given potential censoring times."""
    r, n = hazard.shape[0], censor_time.size
    b = np.asarray(cut_points, dtype=float)
    widths = np.diff(b)
    h_start = np.concatenate([np.zeros((r, 1)), np.cumsum(hazard * widths, axis=-1)[:, :-1]], -1)
    e = rng.standard_exponential((r, n))
    u = rng.random((r, n))
    j = np.sum(h_start[:, None, :] <= e[:, :, None], axis=-1) - 1
    rows = np.arange(r)[:, None]
    with np.errstate(divide="ignore"):
        t = b[:-1][j] + (e - h_start[rows, j]) / hazard[rows, j]
    t = np.where(u < pi[:, None], point_mass_days, t)
    return np.minimum(t, censor_time[None, :]), t <= censor_time[None, :]


# ----------------------------------------------------------------------------- the check
def km_predictive_check(
    hazard_draws: np.ndarray,
    cut_points: Sequence[float],
    time: np.ndarray,
    event: np.ndarray,
    censor_time: np.ndarray,
    *,
    day0_draws: np.ndarray | None = None,
    point_mass_days: float = 0.0,
    observed_day0: np.ndarray | None = None,
    n_rep: int = 400,
    seed: int | Sequence[int],
    alpha: float = 0.05,
) -> dict:
    """Posterior predictive check of one arm's fit against its Kaplan-Meier curve (module docstring).

    Parameters
    ----------
    hazard_draws
        ``(S, J)`` posterior draws of the arm's hazards per interval.
    cut_points
        The model's cut points ``0 = b_0 < ... < b_J``.
    time, event
        Per patient: observed time (days) and event flag of the continuous part. Patients flagged
        in ``observed_day0`` had a point-mass event: their ``time``/``event`` are replaced by
        ``point_mass_days``/``True``.
    censor_time
        Per patient, the potential (administrative) censoring time: the observed time of a
        censored patient; for a patient with an event (point-mass ones included) the time it
        would have been censored without it. Must be ``>= time`` for the continuous part.
    day0_draws
        ``(S,)`` draws of the point-mass probability (``None``: no point mass).
    point_mass_days
        Day of the point-mass events (0, or 1 for ELN 2022 EFS treatment failure).
    observed_day0
        Per-patient flags of observed point-mass events (``None``: none).
    n_rep
        Replicates: posterior draws subsampled with ``seed`` (without replacement when there are
        at least ``n_rep`` draws).
    seed
        Seed of the subsample and the simulation (the result is deterministic given it).
    alpha
        Level of the p-value and of the ``1 - alpha`` predictive interval of the median.

    Returns
    -------
    dict
        ``km_median`` (observed; ``inf`` when not reached), ``median_interval`` ``(lo, hi)``
        (``hi`` may be ``inf``), ``median_inside``, ``prob_median_not_reached`` (replicates),
        ``p_value`` (``P(D_rep >= D_obs)``), ``discrepancy`` (posterior mean of ``D_obs``),
        ``n_rep`` and ``misfit`` (``p_value < alpha or not median_inside``).
    """
    hazard_draws = np.atleast_2d(np.asarray(hazard_draws, dtype=float))
    b = np.asarray(cut_points, dtype=float)
    if hazard_draws.shape[-1] != b.size - 1:
        raise ValueError(f"hazard_draws must have {b.size - 1} intervals, got {hazard_draws.shape}")
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=bool)
    censor_time = np.asarray(censor_time, dtype=float)
    n = time.size
    if n == 0 or event.shape != (n,) or censor_time.shape != (n,):
        raise ValueError("time, event and censor_time must be non-empty and of the same length")
    flags = np.zeros(n, bool) if observed_day0 is None else np.asarray(observed_day0, dtype=bool)
    if flags.shape != (n,):
        raise ValueError("observed_day0 must have one flag per patient")
    if flags.any() and day0_draws is None:
        raise ValueError("observed point-mass events need day0_draws")
    if np.any(censor_time[~flags] < time[~flags]):
        raise ValueError("censor_time must be >= the observed time")
    p = float(point_mass_days)
    s = hazard_draws.shape[0]
    pi_all = np.zeros(s) if day0_draws is None else np.asarray(day0_draws, dtype=float).reshape(s)

    rng = np.random.default_rng(seed)
    pick = rng.choice(s, size=n_rep, replace=s < n_rep)
    hazard, pi = hazard_draws[pick], pi_all[pick]

    t_obs = np.where(flags, p, time)
    e_obs = event | flags
    follow = t_obs.max()
    grid = np.unique(np.concatenate([t_obs[e_obs], b]))
    grid = grid[grid <= follow]

    t_rep, e_rep = _simulate(rng, hazard, pi, b, censor_time, p)
    s_model = _survival(hazard, pi, b, grid, p)  # (R, G)
    d_obs = np.max(np.abs(kaplan_meier(t_obs, e_obs, grid) - s_model), axis=-1)
    d_rep = np.max(np.abs(kaplan_meier(t_rep, e_rep, grid) - s_model), axis=-1)
    p_value = float(np.mean(d_rep >= d_obs))

    med_obs = float(kaplan_meier_median(t_obs, e_obs)[0])
    med_rep = np.sort(kaplan_meier_median(t_rep, e_rep))
    lo = float(med_rep[int(np.floor(alpha / 2 * (n_rep - 1)))])
    hi = float(med_rep[int(np.ceil((1 - alpha / 2) * (n_rep - 1)))])
    inside = bool(lo <= med_obs <= hi)
    return {
        "km_median": med_obs,
        "median_interval": (lo, hi),
        "median_inside": inside,
        "prob_median_not_reached": float(np.mean(np.isinf(med_rep))),
        "p_value": p_value,
        "discrepancy": float(np.mean(d_obs)),
        "n_rep": int(n_rep),
        "misfit": bool(p_value < alpha or not inside),
    }


def arm_draws(idata: az.InferenceData, arm: str) -> tuple[np.ndarray, np.ndarray | None]:
    """``(hazard (S, J), prob_day0_event (S,) or None)`` of one arm from a survival fit."""
    post = idata["posterior"]
    hz = post["hazard"].sel(arm=arm).transpose("chain", "draw", "interval").values
    hz = hz.reshape(-1, hz.shape[-1])
    pi = None
    if "prob_day0_event" in post:
        pi = post["prob_day0_event"].sel(arm=arm).transpose("chain", "draw").values.ravel()
    return hz, pi
