"""Exact quantities of independent Beta posteriors, vectorized over leading dimensions.

For arms with independent posteriors ``p_k ~ Beta(a_k, b_k)`` (the conjugate independent model,
or any conjugate sensitivity analysis) these give the decision quantities without sampling:

* ``P(p_k > c)``: the regularised incomplete beta function.
* ``P(p_a > p_b)`` of two arms (``P(best)`` of a pair) when one of the four parameters is a whole
  number (integer priors such as the uniform, plus counts): exactly, by the finite sum of Cook
  (2005) over the smallest whole parameter (within 1e-12 of ``scipy.integrate.quad`` in the tests;
  ~0.4 us a row against ~8 us on the grid below).
* ``P(arm k is best)`` otherwise (and among more than two arms): ``int g_k(u) prod_{j != k} F_j(u) du`` over
  ``u = logit x``, where each ``logit p_j`` has the smooth, log-concave density
  ``x^a (1-x)^b / B(a, b)``: a trapezoid rule on a grid shared by the arms of a row, CDFs by the
  cumulative Simpson rule. The grid spacing is at most ``spacing`` times the narrowest arm's local
  sd: :data:`GRID_SPACING` (a quarter; the simulator's millions of rows) is accurate to about
  1e-7, :data:`LOOK_GRID_SPACING` (a sixty-fourth; one look's few rows, what :class:`BetaPosterior`
  uses) to about 1e-10 (the error falls with the fourth power of the spacing; tests compare both with
  ``scipy.integrate.quad``). Identical rows are computed once.
* ``P(p_a > p_b + margin)`` with a margin: Gauss-Legendre nodes in the probability scale of arm a,
  ``int_0^1 F_b(F_a^{-1}(u) - margin) du`` (more nodes at a look's spacing).

:class:`BetaPosterior` wraps them behind the interface of
:class:`~decision_rules.quantities.DrawsPosterior` (``prob_above``, ``prob_below``,
``prob_better``, ``prob_best``, ``mean``, ``median``, ``variance``, ``quantile``) with a Monte Carlo
standard error of 0, so the same rule objects evaluate on exact posteriors: the superiority
comparisons and the allocations of a look, and at a look every endpoint modelled ``independent``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt
from scipy import special

from decision_rules.quantities import Estimate

__all__ = [
    "GRID_SPACING",
    "LOOK_GRID_SPACING",
    "beta_prob_above",
    "beta_prob_better",
    "beta_prob_best",
    "beta_variance",
    "BetaPosterior",
]

_NODES = 256
#: Gauss-Legendre nodes of ``P(p_a > p_b + margin)`` at a look's spacing
_LOOK_NODES = 4096
# node counts of the logit grid of P(best), chosen per row by the span it must cover
_GRID_SIZES = np.array([81, 161, 321, 641, 1281, 2561, 5121])

#: spacing of the logit grid of P(best) in units of the narrowest arm's local sd: the simulator's
#: (fixed node counts :data:`_GRID_SIZES`, the compiled two-arm kernel; accurate to about 1e-7)
GRID_SPACING = 0.25
#: a look's spacing (:class:`BetaPosterior`): as many nodes as it takes; accurate to about 1e-10
LOOK_GRID_SPACING = 1.0 / 64.0


@functools.cache
def _legendre(n: int = _NODES) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on ``[0, 1]``.

    numpy's up to 256 nodes, scipy's above (numpy's eigenvalue method costs ``n^3``).
    """
    if n <= _NODES:
        x, w = np.polynomial.legendre.leggauss(n)
    else:
        x, w = special.roots_legendre(n)
    u, wts = 0.5 * (x + 1.0), 0.5 * w
    u.flags.writeable = wts.flags.writeable = False  # cached: shared by every call
    return u, wts


#: named Beta priors of a rate (``unit_information`` is centred on the arm's null rate)
BETA_PRIOR_NAMES = {
    "unit_information": "unit-information Beta(null, 1 - null)",
    "uniform": "uniform Beta(1, 1)",
    "jeffreys": "Jeffreys Beta(1/2, 1/2)",
}


class _HasAB(Protocol):
    a: float
    b: float


#: a Beta prior: its name (``unit_information``, ``uniform``, ``jeffreys``), ``(a, b)``, or an object
#: with ``a`` and ``b`` (the config's prior)
BetaPriorSpec = str | tuple[float, float] | _HasAB


def _ab(prior: BetaPriorSpec) -> tuple[float, float]:
    if isinstance(prior, str):
        raise ValueError(f"unknown Beta prior {prior!r}; use one of {', '.join(BETA_PRIOR_NAMES)} or (a, b)")
    return prior if isinstance(prior, tuple) else (prior.a, prior.b)


def beta_prior(prior: BetaPriorSpec, null_rate: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Prior ``(a, b)`` of a named Beta prior (or an ``(a, b)`` pair / object with ``a``, ``b``).

    ``unit_information`` is ``Beta(m, 1 - m)`` with ``m`` the null rate (one patient's worth,
    centred on the null); ``uniform`` ``Beta(1, 1)``; ``jeffreys`` ``Beta(1/2, 1/2)``.
    Vectorized over ``null_rate``.
    """
    m = np.asarray(null_rate, float)
    if prior == "unit_information":
        return m, 1.0 - m
    if prior == "uniform":
        return np.ones_like(m), np.ones_like(m)
    if prior == "jeffreys":
        return np.full_like(m, 0.5), np.full_like(m, 0.5)
    a, b = _ab(prior)
    return np.full_like(m, float(a)), np.full_like(m, float(b))


def beta_prior_name(prior: BetaPriorSpec) -> str:
    """Words for a Beta prior, for sentences."""
    if isinstance(prior, str):
        return BETA_PRIOR_NAMES[prior]
    a, b = _ab(prior)
    return f"Beta({a:g}, {b:g})"


def beta_prob_above(a: npt.ArrayLike, b: npt.ArrayLike, c: npt.ArrayLike) -> np.ndarray:
    """``P(p > c)`` for ``p ~ Beta(a, b)`` (broadcasting)."""
    return special.betaincc(np.asarray(a, float), np.asarray(b, float), np.clip(np.asarray(c, float), 0, 1))


def beta_variance(a: npt.ArrayLike, b: npt.ArrayLike) -> np.ndarray:
    """Variance of ``Beta(a, b)``."""
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    s = a + b
    return a * b / (s * s * (s + 1.0))


def beta_prob_better(
    a1: npt.ArrayLike,
    b1: npt.ArrayLike,
    a2: npt.ArrayLike,
    b2: npt.ArrayLike,
    margin: npt.ArrayLike = 0.0,
    *,
    higher_is_better: bool = True,
    spacing: float = GRID_SPACING,
) -> np.ndarray:
    """``P(p_1 > p_2 + margin)`` (or ``P(p_1 < p_2 - margin)``) for independent Beta posteriors.

    Without a margin this is ``P(best)`` of a pair (logit-scale quadrature, grid ``spacing``:
    :func:`beta_prob_best`); with a margin the integral is taken in the probability scale of arm 1,
    ``int_0^1 F_2(F_1^{-1}(u) - margin) du``, by Gauss-Legendre nodes (256; 4096 at a finer
    ``spacing`` than :data:`GRID_SPACING`).
    """
    if np.all(np.asarray(margin) == 0.0):
        a1, b1, a2, b2 = np.broadcast_arrays(*(np.asarray(v, float) for v in (a1, b1, a2, b2)))
        both = beta_prob_best(
            np.stack([a1, a2], -1), np.stack([b1, b2], -1), higher_is_better=higher_is_better, spacing=spacing
        )
        return both[..., 0]
    u, wts = _legendre(_NODES if spacing >= GRID_SPACING else _LOOK_NODES)
    a1, b1, a2, b2, margin = (np.asarray(v, float)[..., None] for v in (a1, b1, a2, b2, margin))
    x1 = special.betaincinv(a1, b1, u)  # (..., nodes) quantiles of p_1
    if higher_is_better:
        f = special.betainc(a2, b2, np.clip(x1 - margin, 0.0, 1.0))  # P(p_2 < x1 - margin)
    else:
        f = special.betaincc(a2, b2, np.clip(x1 + margin, 0.0, 1.0))  # P(p_2 > x1 + margin)
    return np.clip((f * wts).sum(-1), 0.0, 1.0)


def _cumulative_simpson(f: np.ndarray, du: npt.ArrayLike) -> np.ndarray:
    """Cumulative integral of ``f`` along the last axis (uniform spacing ``du``), fourth order.

    The rule of :func:`models.exact.cumulative_simpson` (this package may not import ``models``),
    and of the compiled two-arm kernel :func:`_pair_logit_grid_py`, which cannot call scipy: the
    two paths of :func:`beta_prob_best` must give the same numbers. Kept instead of
    ``scipy.integrate.cumulative_simpson``, whose odd nodes come from half of each pair's parabola:
    3-6 times less accurate there, and P(best) would move by up to 9e-6 (issue 17).
    """
    du = np.asarray(du, float)
    out = np.empty_like(f)
    out[..., 0] = 0.0
    first = du * (5.0 * f[..., 0] + 8.0 * f[..., 1] - f[..., 2]) / 12.0
    seg = du[..., None] * (f[..., :-2] + 4.0 * f[..., 1:-1] + f[..., 2:]) / 3.0
    out[..., 2::2] = np.cumsum(seg[..., 0::2], axis=-1)
    odd = np.cumsum(seg[..., 1::2], axis=-1)
    out[..., 1::2] = (
        first[..., None]
        + np.concatenate([np.zeros_like(first)[..., None], odd], axis=-1)[..., : out[..., 1::2].shape[-1]]
    )
    return out


def _prob_best_logit_grid(a: np.ndarray, b: np.ndarray, spacing: float = GRID_SPACING) -> np.ndarray:
    """``P(X_k > X_j for all j != k)`` for independent ``X_k ~ Beta(a_k, b_k)``; ``(U, m)`` arrays.

    All arms of a row share one grid in ``u = logit x``, where each ``logit X_k`` has the smooth,
    log-concave density ``x^a (1-x)^b / B(a, b)`` (mode ``log(a/b)``, local sd
    ``sqrt(1/a + 1/b)``). The grid spans every arm's mass (tails of small ``a`` or ``b`` decay
    slowly: ``exp(a u)``) with a spacing of at most ``spacing`` times the narrowest arm's sd
    (:data:`GRID_SPACING`: the node counts :data:`_GRID_SIZES`; a finer one: as many nodes as that
    takes). CDFs come from the cumulative Simpson rule, normalised to end at 1; the final integral
    is a trapezoid rule (spectrally accurate here). Rows are grouped by the number of nodes they need.
    """
    u_mode = np.log(a / b)
    sd = np.sqrt(1.0 / a + 1.0 / b)
    lo = (u_mode - np.maximum(10.0 * sd, 25.0 / a)).min(axis=1)
    hi = (u_mode + np.maximum(10.0 * sd, 25.0 / b)).max(axis=1)
    need = (hi - lo) / (spacing * sd.min(axis=1))
    out = np.empty_like(a)
    if spacing >= GRID_SPACING:
        sizes = _GRID_SIZES
        n_rows = sizes[np.minimum(np.searchsorted(sizes - 1, need), len(sizes) - 1)]
    else:  # an odd count of at least need + 1 nodes
        n_rows = 2 * np.ceil(need / 2.0).astype(int) + 1
    for n_nodes in np.unique(n_rows):
        rows = np.nonzero(n_rows == n_nodes)[0]
        n_nodes = int(n_nodes)
        t = np.linspace(0.0, 1.0, n_nodes)
        du = (hi[rows] - lo[rows]) / (n_nodes - 1)  # (R,)
        u = lo[rows, None] + (hi[rows] - lo[rows])[:, None] * t  # (R, nodes)
        ar, br = a[rows][..., None], b[rows][..., None]  # (R, m, 1)
        logg = (
            ar * special.log_expit(u)[:, None, :]
            + br * special.log_expit(-u)[:, None, :]
            - special.betaln(ar, br)
        )
        g = np.exp(logg)  # (R, m, nodes)
        cdf = _cumulative_simpson(g, du[:, None])
        cdf /= cdf[..., -1:]
        m = a.shape[1]
        wt = np.ones(n_nodes)
        wt[[0, -1]] = 0.5
        for k in range(m):
            prod = g[:, k, :].copy()
            for j in range(m):
                if j != k:
                    prod *= cdf[:, j, :]
            out[rows, k] = (prod * wt).sum(-1) * du
    return np.clip(out, 0.0, 1.0)


def _pair_logit_grid_py(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """:func:`_prob_best_logit_grid` for two arms, row by row (compiled with numba when present).

    The same grid, node counts, cumulative Simpson CDFs and trapezoid rule as the vectorized
    version, one row at a time: no ``(rows, arms, nodes)`` temporaries.
    """
    sizes = _GRID_SIZES
    g = np.empty((2, sizes[-1]))
    cdf = np.empty((2, sizes[-1]))
    for r in range(a.shape[0]):
        lo = np.inf
        hi = -np.inf
        sd_min = np.inf
        for k in range(2):
            mode = np.log(a[r, k] / b[r, k])
            sd = np.sqrt(1.0 / a[r, k] + 1.0 / b[r, k])
            lo = min(lo, mode - max(10.0 * sd, 25.0 / a[r, k]))
            hi = max(hi, mode + max(10.0 * sd, 25.0 / b[r, k]))
            sd_min = min(sd_min, sd)
        need = (hi - lo) / (0.25 * sd_min)
        n = sizes[-1]
        for s in sizes:
            if s - 1 >= need:
                n = s
                break
        du = (hi - lo) / (n - 1)
        lb0 = math.lgamma(a[r, 0]) + math.lgamma(b[r, 0]) - math.lgamma(a[r, 0] + b[r, 0])
        lb1 = math.lgamma(a[r, 1]) + math.lgamma(b[r, 1]) - math.lgamma(a[r, 1] + b[r, 1])
        for i in range(n):
            u = lo + (hi - lo) * (i / (n - 1))
            if u < 0.0:  # le = log expit(u), lm = log expit(-u) = le - u
                le = u - np.log1p(np.exp(u))
            else:
                le = -np.log1p(np.exp(-u))
            lm = le - u
            g[0, i] = np.exp(a[r, 0] * le + b[r, 0] * lm - lb0)
            g[1, i] = np.exp(a[r, 1] * le + b[r, 1] * lm - lb1)
        for k in range(2):
            cdf[k, 0] = 0.0
            cdf[k, 1] = du * (5.0 * g[k, 0] + 8.0 * g[k, 1] - g[k, 2]) / 12.0
            for i in range(2, n):
                cdf[k, i] = cdf[k, i - 2] + du * (g[k, i - 2] + 4.0 * g[k, i - 1] + g[k, i]) / 3.0
        for k in range(2):
            j = 1 - k
            norm = cdf[j, n - 1]
            acc = 0.5 * (g[k, 0] * cdf[j, 0] + g[k, n - 1] * cdf[j, n - 1]) / norm
            for i in range(1, n - 1):
                acc += g[k, i] * cdf[j, i] / norm
            out[r, k] = min(max(acc * du, 0.0), 1.0)


#: most terms :func:`_pair_exact` sums for a row (rows needing more go to the logit grid)
EXACT_MAX_TERMS = 5000


def _is_count(x: float) -> bool:
    return x >= 1.0 and x <= EXACT_MAX_TERMS and x == math.floor(x)


def _finite_sum(a1: float, b1: float, a2: float, b2: float) -> float:
    """``P(Y > X)`` for ``X ~ Beta(a1, b1)``, ``Y ~ Beta(a2, b2)``, ``a2`` a positive integer.

    The finite sum ``sum_{i<a2} B(a1 + i, b1 + b2) / ((b2 + i) B(1 + i, b2) B(a1, b1))`` (Cook
    2005, "Exact calculation of beta inequalities"; Miller 2015), by the ratio of successive terms
    ``(a1 + i)(b2 + i) / ((a1 + b1 + b2 + i)(1 + i))`` from the first term
    ``B(a1, b1 + b2) / B(a1, b1)``: positive terms, no cancellation, relative error ~1e-15 x the
    number of terms. The running sum is rescaled so that terms far below or above the first one
    neither underflow nor overflow.
    """
    log_first = math.lgamma(a1 + b1) + math.lgamma(b1 + b2) - math.lgamma(a1 + b1 + b2) - math.lgamma(b1)
    term = 1.0
    total = 0.0
    log_scale = 0.0
    for i in range(int(a2)):
        total += term
        term *= (a1 + i) * (b2 + i) / ((a1 + b1 + b2 + i) * (1.0 + i))
        if total > 1e250:
            total *= 1e-250
            term *= 1e-250
            log_scale += 575.6462732485114  # 250 ln 10
    if total <= 0.0:
        return 0.0
    return math.exp(log_first + math.log(total) + log_scale)


def _prob_greater(a: float, b: float, c: float, d: float) -> float:
    """``P(p > q)`` for ``p ~ Beta(a, b)``, ``q ~ Beta(c, d)`` by the shortest exact finite sum.

    Four expansions are exact when one of the four parameters is a whole number (the common
    case: integer priors such as the uniform plus counts): summing over ``a`` (``p`` as the
    larger), over ``d`` (``1 - q > 1 - p``), or one minus the sum over ``c`` or ``b`` (the other
    direction). The fewest terms win, direct sums first on ties. NaN when none is whole
    (the caller then uses the logit grid). A function of the ordered pair only, so the two
    columns of a row are each other's swap bit for bit.
    """
    best = -1
    n = EXACT_MAX_TERMS + 1.0
    for k, x in enumerate((a, d, c, b)):
        if _is_count(x) and x < n:
            best, n = k, x
    if best == 0:
        return _finite_sum(c, d, a, b)
    if best == 1:
        return _finite_sum(b, a, d, c)
    if best == 2:
        return 1.0 - _finite_sum(a, b, c, d)
    if best == 3:
        return 1.0 - _finite_sum(d, c, b, a)
    return np.nan


def _pair_exact_py(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Two-arm P(best) of the rows that :func:`_prob_greater` computes exactly.

    Writes ``out[r] = (P(arm 0 best), P(arm 1 best))`` for those rows and returns the indices
    of the others (no whole-number parameter, or too many terms), left for the logit grid.
    """
    todo = np.zeros(a.shape[0], np.bool_)
    for r in range(a.shape[0]):
        p0 = _prob_greater(a[r, 0], b[r, 0], a[r, 1], b[r, 1])
        p1 = _prob_greater(a[r, 1], b[r, 1], a[r, 0], b[r, 0])
        if np.isnan(p0) or np.isnan(p1):
            todo[r] = True
        else:
            out[r, 0] = min(max(p0, 0.0), 1.0)
            out[r, 1] = min(max(p1, 0.0), 1.0)
    return np.nonzero(todo)[0]


try:  # numba ships with nutpie/pytensor; the Python versions give the same numbers, slowly
    import numba

    _pair_logit_grid = numba.njit(cache=True, nogil=True)(_pair_logit_grid_py)
    _is_count = numba.njit(cache=True, nogil=True)(_is_count)
    _finite_sum = numba.njit(cache=True, nogil=True)(_finite_sum)
    _prob_greater = numba.njit(cache=True, nogil=True)(_prob_greater)
    _pair_exact = numba.njit(cache=True, nogil=True)(_pair_exact_py)
except ImportError:  # pragma: no cover
    _pair_logit_grid = _pair_logit_grid_py
    _pair_exact = _pair_exact_py


#: most two-arm results a :func:`beta_prob_best` memo keeps (then it starts again; ~400 bytes each)
MEMO_SIZE = 100_000


def beta_prob_best(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    *,
    higher_is_better: bool = True,
    is_open: npt.ArrayLike | None = None,
    memo: dict | None = None,
    spacing: float = GRID_SPACING,
) -> np.ndarray:
    """``P(arm k has the best rate)`` among the (open) arms, ``(..., K)`` in, ``(..., K)`` out.

    Closed arms (``is_open`` false) are left out of the comparison and get 0. Identical parameter
    rows are computed once (virtual trials repeat them a lot); with ``memo`` (a dict the caller
    keeps, e.g. one per simulated design) two-arm rows computed by earlier calls are looked up
    instead of computed again: each row is its own quadrature, so the numbers are the same.
    ``spacing``: of the logit grid (:func:`_prob_best_logit_grid`); the compiled two-arm kernel
    and ``memo`` serve :data:`GRID_SPACING` only, a finer grid (a look's) is always computed.
    Two-arm rows with a whole-number parameter are exact finite sums whatever the spacing.
    """
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    a, b = np.broadcast_arrays(a, b)
    shape = a.shape
    is_open = np.ones(shape, bool) if is_open is None else np.broadcast_to(np.asarray(is_open, bool), shape)
    if not higher_is_better:  # the lowest rate is best: P(p_k < others) = P(1 - p_k > 1 - others)
        a, b = b, a
    k = shape[-1]
    flat_a = a.reshape(-1, k)
    flat_b = b.reshape(-1, k)
    flat_open = is_open.reshape(-1, k)
    out = np.zeros(flat_a.shape)
    # rows with the same set of open arms are done together
    for mask in np.unique(flat_open, axis=0):
        rows = np.nonzero((flat_open == mask).all(axis=1))[0]
        cols = np.nonzero(mask)[0]
        if len(cols) == 0:
            continue
        if len(cols) == 1:
            out[rows, cols[0]] = 1.0
            continue
        sub_a, sub_b = flat_a[np.ix_(rows, cols)], flat_b[np.ix_(rows, cols)]
        if len(cols) == 2:
            # exact finite sums where a parameter is a whole number (cheaper than a lookup)
            res = np.empty((len(rows), 2))
            grid = _pair_exact(np.ascontiguousarray(sub_a), np.ascontiguousarray(sub_b), res)
            if len(grid) and spacing < GRID_SPACING:  # a look's finer grid: no memo
                res[grid] = _prob_best_logit_grid(sub_a[grid], sub_b[grid], spacing)
            elif len(grid):
                res[grid] = _pair_grid(sub_a[grid], sub_b[grid], memo)
            out[np.ix_(rows, cols)] = res
            continue
        keys = np.concatenate([sub_a, sub_b], axis=1)
        uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
        res = _prob_best_logit_grid(uniq[:, : len(cols)], uniq[:, len(cols) :], spacing)
        out[np.ix_(rows, cols)] = res[inverse.reshape(-1)]
    return out.reshape(shape)


def _pair_grid(a: np.ndarray, b: np.ndarray, memo: dict | None) -> np.ndarray:
    """Two-arm P(best) on the logit grid, identical rows once (and from ``memo`` if given)."""
    uniq, inverse = np.unique(np.concatenate([a, b], axis=1), axis=0, return_inverse=True)
    if memo is not None:
        res = _pair_memoized(uniq, memo)
    else:
        res = np.empty((len(uniq), 2))
        _pair_logit_grid(np.ascontiguousarray(uniq[:, :2]), np.ascontiguousarray(uniq[:, 2:]), res)
    return res[inverse.reshape(-1)]


def _pair_memoized(uniq: np.ndarray, memo: dict) -> np.ndarray:
    """Two-arm P(best) of the rows ``(a1, a2, b1, b2)``, from ``memo`` where it has them."""
    keys = list(map(tuple, uniq.tolist()))
    found = [memo.get(k) for k in keys]
    todo = [r for r, v in enumerate(found) if v is None]
    if todo:
        rows = uniq[todo]
        new = np.empty((len(todo), 2))
        _pair_logit_grid(np.ascontiguousarray(rows[:, :2]), np.ascontiguousarray(rows[:, 2:]), new)
        if len(memo) + len(todo) > MEMO_SIZE:
            memo.clear()
        for r, v in zip(todo, map(tuple, new.tolist()), strict=True):
            found[r] = memo[keys[r]] = v
    return np.array(found, float).reshape(len(keys), 2)


class BetaPosterior:
    """Independent ``Beta(a_k, b_k)`` posteriors with the interface of ``DrawsPosterior``.

    Every quantity is exact (MCSE 0, no draws: printed "exact"): tail probabilities by the
    regularised incomplete beta function, quantiles by its inverse, comparisons and P(best) by
    quadrature on a grid of ``spacing`` (:data:`LOOK_GRID_SPACING` by default: about 1e-10).

    Parameters
    ----------
    arms
        Arm ids.
    a, b
        Posterior Beta parameters per arm (mappings or sequences in the order of ``arms``).
    spacing
        Grid spacing of ``prob_better`` / ``prob_best`` (:func:`beta_prob_best`).
    """

    def __init__(
        self,
        arms: Sequence[str],
        a: Mapping[str, float] | npt.ArrayLike,
        b: Mapping[str, float] | npt.ArrayLike,
        *,
        spacing: float = LOOK_GRID_SPACING,
    ) -> None:
        self.arms: tuple[str, ...] = tuple(arms)
        as_arr = lambda v: np.array(  # noqa: E731
            [v[x] for x in self.arms] if isinstance(v, Mapping) else v, dtype=float
        )
        self.a = as_arr(a)
        self.b = as_arr(b)
        self.spacing = spacing
        if self.a.shape != (len(self.arms),) or self.b.shape != (len(self.arms),):
            raise ValueError("a and b need one value per arm")
        if np.any(self.a <= 0) or np.any(self.b <= 0):
            raise ValueError("Beta parameters must be positive")

    def _i(self, arm: str) -> int:
        if arm not in self.arms:
            raise KeyError(f"arm {arm!r} is not in the posterior (arms: {', '.join(self.arms)})")
        return self.arms.index(arm)

    def mean(self, arm: str) -> float:
        """Posterior mean ``a / (a + b)`` of the rate of ``arm``."""
        i = self._i(arm)
        return float(self.a[i] / (self.a[i] + self.b[i]))

    def variance(self, arm: str) -> float:
        """Posterior variance of the rate of ``arm``."""
        i = self._i(arm)
        return float(beta_variance(self.a[i], self.b[i]))

    def sd(self, arm: str) -> float:
        """Posterior standard deviation of the rate of ``arm``."""
        return math.sqrt(self.variance(arm))

    def quantile(self, arm: str, q: Sequence[float]) -> list[float]:
        """Posterior quantiles of the rate of ``arm`` (the inverse regularised incomplete beta)."""
        i = self._i(arm)
        return [float(v) for v in special.betaincinv(self.a[i], self.b[i], np.asarray(q, float))]

    def median(self, arm: str) -> float:
        """Posterior median of the rate of ``arm``."""
        return self.quantile(arm, [0.5])[0]

    def prob_above(self, arm: str, value: float) -> Estimate:
        """``P(p_arm > value)``, exact."""
        i = self._i(arm)
        return Estimate(float(beta_prob_above(self.a[i], self.b[i], value)), 0.0, 0)

    def prob_below(self, arm: str, value: float) -> Estimate:
        """``P(p_arm < value)``, exact (the regularised incomplete beta, not ``1 - P(above)``)."""
        i = self._i(arm)
        return Estimate(float(special.betainc(self.a[i], self.b[i], np.clip(value, 0.0, 1.0))), 0.0, 0)

    def prob_better(self, a: str, b: str, *, margin: float = 0.0, higher_is_better: bool = True) -> Estimate:
        """``P(p_a > p_b + margin)`` (or ``P(p_a < p_b - margin)`` when lower is better), by quadrature."""
        i, j = self._i(a), self._i(b)
        p = beta_prob_better(
            self.a[i],
            self.b[i],
            self.a[j],
            self.b[j],
            margin,
            higher_is_better=higher_is_better,
            spacing=self.spacing,
        )
        return Estimate(float(p), 0.0, 0)

    def prob_best(self, arms: Sequence[str], *, higher_is_better: bool = True) -> Mapping[str, Estimate]:
        """``P(arm has the best rate among arms)`` for each of ``arms``, by quadrature."""
        idx = [self._i(x) for x in arms]
        p = beta_prob_best(self.a[idx], self.b[idx], higher_is_better=higher_is_better, spacing=self.spacing)
        return {x: Estimate(float(v), 0.0, 0) for x, v in zip(arms, p, strict=True)}
