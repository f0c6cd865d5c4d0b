"""Exact posteriors for many data sets at once: the engine of the operating-characteristics simulator.

MCMC at every look of every virtual trial is far too slow, so the simulator computes the same
posteriors as :mod:`models.binary` exactly (Beta-binomial) or by quadrature (hierarchical and EXNEX
logistic models), vectorized over a leading *trial* axis. Every function takes counts shaped
``(T, K)`` (T data sets, K arms) and returns arrays with the same leading axis.

* The conjugate Beta-binomial model needs no tables: its exact quantities are in
  :mod:`decision_rules.beta` (vectorized over leading axes).
* :class:`HierarchicalBatch`: the hierarchical (``w=None``) or EXNEX model. The hyperparameters
  ``(mu, tau)`` live on a fixed grid (``mu`` uniform, ``log tau`` uniform). For every arm's offset
  and every possible ``(n, y)`` up to the arm's maximum sample size, the arm's conditional integrals
  given each grid point are tabulated once (:func:`models.exact.conditional_integrals`); a look
  then only gathers table rows, adds log-likelihoods across arms, normalises the grid weights and
  averages. Comparisons of arms (``P(p_a > p_b)``, ``P(best)``) are computed on the fly from the
  tabulated conditional modes and scales.

Accuracy is part of the contract: ``tests/test_batch.py`` compares every quantity with the
fine-grid single-data-set quadrature of :mod:`models.exact` (itself checked against
``scipy.integrate.quad`` and importance sampling) and with PyMC fits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from models.exact import _hyper_grid, conditional_integrals


def _tri_index(n: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row of the ``(n, y)`` pair in a triangular table (n = 0, 1, ...; y = 0..n)."""
    return n * (n + 1) // 2 + y


# ============================================================================= hierarchical / EXNEX
@dataclass(frozen=True)
class _OffsetTable:
    """Tabulated conditional integrals for one offset, rows indexed by ``(n, y)``."""

    n_max: int
    log_l: np.ndarray  # (rows, G)
    mean: np.ndarray  # (rows, G)
    m2: np.ndarray  # (rows, G)
    prob_above: np.ndarray  # (rows, G, J)
    mode: np.ndarray  # (rows, G)
    scale: np.ndarray  # (rows, G)
    density: np.ndarray | None  # (rows, G, nodes) float32, only for arms that are compared


class HierarchicalBatch:
    """Hierarchical logistic or EXNEX posteriors for many data sets, by tabulated quadrature.

    Parameters
    ----------
    null_rate
        Per-arm null rates (offsets ``logit p0_k``), shape ``(K,)``.
    n_max
        Per-arm largest possible number of evaluable patients (table size).
    thresholds
        Per-arm rates ``c`` whose ``P(p_k > c)`` will be asked for: a ``(K, J)`` array (pad with
        NaN where an arm has fewer thresholds).
    compare
        Arms that will be compared with each other (``prob_better``/``prob_best``): their
        conditional densities are tabulated too.
    w
        ``None`` for the hierarchical model; for EXNEX the prior probability of exchangeability
        (scalar or per arm); a per-arm ``w`` can be changed at evaluation time (``w=`` argument),
        e.g. for a new arm that is non-exchangeable during its burn-in.
    n_mu, n_tau, mu_halfwidth
        Hyper grid: ``n_mu`` points over ``mu_mean ± mu_halfwidth * mu_sd`` and ``n_tau`` points
        uniform in ``log tau``.
    n_nodes, half_width
        Standardised nodes of each conditional integral over ``delta``.
    """

    def __init__(
        self,
        null_rate: Sequence[float],
        n_max: Sequence[int],
        thresholds,
        *,
        compare: Sequence[int] = (),
        mu_mean: float = 0.0,
        mu_sd: float = 1.0,
        tau_dist: str = "half_normal",
        tau_scale: float = 0.5,
        w=None,
        nex_mean: float = 0.0,
        nex_sd: float = 2.0,
        n_mu: int = 81,
        n_tau: int = 25,
        mu_halfwidth: float = 5.0,
        n_nodes: int = 41,
        half_width: float = 8.0,
    ):
        self.null_rate = np.asarray(null_rate, float)
        self.offset = special.logit(self.null_rate)
        k = len(self.null_rate)
        self.n_max = np.broadcast_to(np.asarray(n_max, int), (k,)).copy()
        thr = np.asarray(thresholds, float)
        if thr.ndim == 1:
            thr = thr[:, None]
        self.thresholds = np.broadcast_to(thr, (k, thr.shape[-1])).copy()
        self.exnex = w is not None
        self.w = None if w is None else np.broadcast_to(np.asarray(w, float), (k,)).copy()
        self.n_nodes = n_nodes
        self.half_width = half_width
        self.du = 2.0 * half_width / (n_nodes - 1)
        self.nex_prior = (float(nex_mean), float(nex_sd))
        knots = special.logit(self.thresholds) - self.offset[:, None]
        mu, tau, log_prior = _hyper_grid(
            mu_mean,
            mu_sd,
            tau_dist,
            tau_scale,
            n_mu,
            n_tau,
            mu_halfwidth=mu_halfwidth,
            mu_knots=knots[np.isfinite(knots)],
        )
        n_mu = len(mu)
        self.mu = np.repeat(mu, n_tau)
        self.tau = np.tile(tau, n_mu)
        self.log_prior = log_prior.reshape(-1)
        compare = set(int(c) for c in compare)
        # one table per distinct (offset, thresholds); density kept if any of its arms is compared
        self._arm_table: list[int] = []
        self._tables: list[_OffsetTable] = []
        self._nex: list[_OffsetTable | None] = []
        groups: dict[tuple, list[int]] = {}
        for arm in range(k):
            key = (float(self.offset[arm]), tuple(np.nan_to_num(self.thresholds[arm], nan=-99.0)))
            groups.setdefault(key, []).append(arm)
        index = {}
        for key, arms in groups.items():
            index[key] = len(self._tables)
            n_tab = int(self.n_max[arms].max())
            dens = any(a in compare for a in arms)
            self._tables.append(self._tabulate(arms[0], n_tab, self.mu, self.tau, dens))
            self._nex.append(
                self._tabulate(arms[0], n_tab, np.array([nex_mean]), np.array([nex_sd]), dens)
                if self.exnex
                else None
            )
        for arm in range(k):
            key = (float(self.offset[arm]), tuple(np.nan_to_num(self.thresholds[arm], nan=-99.0)))
            self._arm_table.append(index[key])

    # ------------------------------------------------------------------ tables
    def _tabulate(self, arm, n_max, mu, sd, keep_density) -> _OffsetTable:
        rows_n = np.concatenate([np.full(n + 1, n) for n in range(n_max + 1)])
        rows_y = np.concatenate([np.arange(n + 1) for n in range(n_max + 1)])
        off = self.offset[arm]
        thr = special.logit(self.thresholds[arm]) - off  # delta scale; NaN stays NaN
        thr = np.where(np.isfinite(thr), thr, 0.0)
        g = len(mu)
        out = {k: [] for k in ("log_l", "mean", "m2", "prob_above", "mode", "scale", "density")}
        chunk = max(1, 3_000_000 // (len(rows_n) * self.n_nodes))
        for s in range(0, g, chunk):
            c = conditional_integrals(
                rows_n,
                rows_y,
                off,
                mu[s : s + chunk],
                sd[s : s + chunk],
                np.broadcast_to(thr, (len(rows_n), len(thr))),
                n_nodes=self.n_nodes,
                half_width=self.half_width,
            )  # (chunk, rows[, ...])
            for k in out:
                if k != "density":
                    out[k].append(getattr(c, k))
            if keep_density:
                out["density"].append(c.density.astype(np.float32))
        cat = {k: np.concatenate(v, axis=0) for k, v in out.items() if v}  # (G, rows, ...)
        return _OffsetTable(
            n_max=n_max,
            log_l=np.ascontiguousarray(cat["log_l"].T),
            mean=np.ascontiguousarray(cat["mean"].T),
            m2=np.ascontiguousarray(cat["m2"].T),
            prob_above=np.ascontiguousarray(np.moveaxis(cat["prob_above"], 0, 1)),
            mode=np.ascontiguousarray(cat["mode"].T),
            scale=np.ascontiguousarray(cat["scale"].T),
            density=np.ascontiguousarray(np.moveaxis(cat["density"], 0, 1)) if keep_density else None,
        )

    # ------------------------------------------------------------------ evaluation
    def _rows(self, n, y) -> np.ndarray:
        n = np.asarray(n, np.int64)
        y = np.asarray(y, np.int64)
        if np.any(n > self.n_max) or np.any(y > n) or np.any(y < 0):
            raise ValueError("counts outside the tabulated range (0 <= y <= n <= n_max)")
        return _tri_index(n, y)

    def posterior(self, n, y, w=None) -> BatchPosterior:
        """Posterior summaries for count arrays ``n``, ``y`` of shape ``(T, K)``.

        ``w`` overrides the EXNEX weights per arm (shape ``(K,)`` or ``(T, K)``).
        """
        n = np.atleast_2d(n)
        y = np.atleast_2d(y)
        rows = self._rows(n, y)
        t, k = n.shape
        g = len(self.mu)
        loglik = np.zeros((t, g))
        pis = []
        for arm in range(k):
            tab = self._tables[self._arm_table[arm]]
            ll = tab.log_l[rows[:, arm]]  # (T, G)
            if self.exnex:
                wk = np.broadcast_to(self.w if w is None else np.asarray(w, float), (t, k))[:, arm]
                nex = self._nex[self._arm_table[arm]]
                ll_nex = nex.log_l[rows[:, arm], 0][:, None]
                with np.errstate(divide="ignore"):
                    a = np.log(wk)[:, None] + ll
                    b = np.log1p(-wk)[:, None] + ll_nex
                mix = np.logaddexp(a, b)
                pis.append(np.exp(a - mix))
                ll = mix
            loglik += ll
        logw = self.log_prior + loglik
        logw -= logw.max(axis=1, keepdims=True)
        wts = np.exp(logw)
        wts /= wts.sum(axis=1, keepdims=True)
        return BatchPosterior(self, n, y, rows, wts, pis if self.exnex else None)


class BatchPosterior:
    """Posterior of many data sets under :class:`HierarchicalBatch` (grid weights + tables)."""

    def __init__(self, model: HierarchicalBatch, n, y, rows, weights, pis):
        self.model = model
        self.n = n
        self.y = y
        self.rows = rows
        self.weights = weights  # (T, G)
        self.pis = pis  # per arm (T, G) conditional P(exchangeable | g, data), or None

    def _arm_quantity(self, arm: int, name: str) -> np.ndarray:
        """Posterior mean of a tabulated conditional quantity for one arm, shape (T, ...)."""
        m = self.model
        tab = m._tables[m._arm_table[arm]]
        vals = getattr(tab, name)[self.rows[:, arm]]  # (T, G, ...)
        if self.pis is not None:
            nex = getattr(m._nex[m._arm_table[arm]], name)[self.rows[:, arm], 0]  # (T, ...)
            pi = self.pis[arm].reshape(self.pis[arm].shape + (1,) * (vals.ndim - 2))
            vals = pi * vals + (1.0 - pi) * nex[:, None]
        w = self.weights.reshape(self.weights.shape + (1,) * (vals.ndim - 2))
        return (w * vals).sum(axis=1)

    def mean_var(self) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and variance of every arm's rate, each ``(T, K)``."""
        k = self.n.shape[1]
        mean = np.stack([self._arm_quantity(a, "mean") for a in range(k)], axis=1)
        m2 = np.stack([self._arm_quantity(a, "m2") for a in range(k)], axis=1)
        return mean, np.maximum(m2 - mean**2, 0.0)

    def prob_above(self) -> np.ndarray:
        """``P(p_k > c_kj)`` for the tabulated thresholds, shape ``(T, K, J)``."""
        k = self.n.shape[1]
        return np.stack([self._arm_quantity(a, "prob_above") for a in range(k)], axis=1)

    def prob_exchangeable(self) -> np.ndarray:
        """EXNEX posterior probability that each arm is exchangeable, ``(T, K)``."""
        if self.pis is None:
            raise ValueError("not an EXNEX model")
        return np.stack([(self.weights * pi).sum(1) for pi in self.pis], axis=1)

    def prob_better(self, i: int, j: int, higher_is_better: bool = True, mass: float = 1e-6):
        """``P(p_i > p_j)`` (``<`` when lower is better), shape ``(T,)``.

        Given the hyperparameters the two arms are independent, so the probability is the grid
        average of ``∫ f_i(d) F_j(d + off_i - off_j) dd``: arm i's tabulated density at its
        standardised nodes, arm j's CDF by cumulative Simpson and cubic Hermite interpolation.
        Grid points are visited in order of weight until all but ``mass`` of the posterior
        weight is covered (the error this adds is at most ``mass``).
        """
        m = self.model
        for a in (i, j):
            if m._tables[m._arm_table[a]].density is None:
                raise ValueError(f"arm {a} was not declared in `compare` when tabulating")
        cutoff = _mass_cutoff(self.weights, mass)
        tab_i = m._tables[m._arm_table[i]]
        tab_j = m._tables[m._arm_table[j]]
        t = self.n.shape[0]
        ones = np.ones((t, len(m.mu)))
        pi_i = ones if self.pis is None else self.pis[i]
        pi_j = ones if self.pis is None else self.pis[j]
        if self.pis is None:
            nex_i = nex_j = None
        else:
            nex_i, nex_j = m._nex[m._arm_table[i]], m._nex[m._arm_table[j]]
        args = []
        for tab, nex in ((tab_i, nex_i), (tab_j, nex_j)):
            if nex is None:
                args += [
                    tab.density,
                    tab.mode,
                    tab.scale,
                    tab.density[:, :1],
                    tab.mode[:, :1],
                    tab.scale[:, :1],
                ]
            else:
                args += [tab.density, tab.mode, tab.scale, nex.density, nex.mode, nex.scale]
        p = _pair_kernel(
            self.weights,
            cutoff,
            self.rows[:, i].astype(np.int64),
            self.rows[:, j].astype(np.int64),
            pi_i,
            pi_j,
            self.pis is not None,
            float(m.offset[i] - m.offset[j]),
            float(m.du),
            float(m.half_width),
            *args,
        )
        p = np.clip(p, 0.0, 1.0)
        return p if higher_is_better else 1.0 - p

    def prob_best(self, arms: Sequence[int], higher_is_better: bool = True) -> np.ndarray:
        """``P(arm has the best rate among arms)`` for two arms, shape ``(T, 2)``."""
        arms = list(arms)
        if len(arms) != 2:
            raise NotImplementedError("P(best) among more than two arms: not tabulated yet")
        p = self.prob_better(arms[0], arms[1], higher_is_better)
        return np.stack([p, 1.0 - p], axis=1)


def _mass_cutoff(weights: np.ndarray, mass: float) -> np.ndarray:
    """Per row, the smallest weight still needed so that the kept weights sum to >= 1 - mass."""
    srt = -np.sort(-weights, axis=1)
    cum = np.cumsum(srt, axis=1)
    k = np.minimum((cum < 1.0 - mass).sum(axis=1), weights.shape[1] - 1)
    return srt[np.arange(len(srt)), k]


def _simpson_cdf(dens, du, out):
    """Cumulative Simpson of ``dens`` into ``out`` (same formula as models.exact)."""
    n_nodes = dens.shape[0]
    out[0] = 0.0
    out[1] = du * (5.0 * dens[0] + 8.0 * dens[1] - dens[2]) / 12.0
    for k in range(2, n_nodes):
        out[k] = out[k - 2] + du * (dens[k - 2] + 4.0 * dens[k - 1] + dens[k]) / 3.0


def _inner(dens_a, ma, sa, dens_b, cdf_b, mb, sb, c, du, hw):
    """``∫ f_a(d) F_b(d + c) dd`` with both densities on standardised nodes."""
    n_nodes = dens_a.shape[0]
    inner = 0.0
    for k in range(n_nodes):
        fa = dens_a[k]
        if fa == 0.0:
            continue
        x = ma + sa * (-hw + k * du) + c
        xx = ((x - mb) / sb + hw) / du
        if xx <= 0.0:
            continue
        if xx >= n_nodes - 1:
            fb = 1.0
        else:
            i0 = int(xx)
            s = xx - i0
            s2 = s * s
            s3 = s2 * s
            fb = (
                (2 * s3 - 3 * s2 + 1) * cdf_b[i0]
                + (s3 - 2 * s2 + s) * du * dens_b[i0]
                + (-2 * s3 + 3 * s2) * cdf_b[i0 + 1]
                + (s3 - s2) * du * dens_b[i0 + 1]
            )
        inner += (du if 0 < k < n_nodes - 1 else 0.5 * du) * fa * fb
    return inner


def _pair_kernel_py(
    weights, cutoff, rows_i, rows_j, pi_i, pi_j, exnex, c, du, hw,
    d_i, m_i, s_i, nd_i, nm_i, ns_i, d_j, m_j, s_j, nd_j, nm_j, ns_j,
):  # fmt: skip
    """``P(delta_i + c > delta_j)`` per trial (see BatchPosterior.prob_better); numba-compiled.

    For EXNEX each arm's conditional given the grid point is the mixture of its exchangeable
    part (tabulated per grid point) and its non-exchangeable part (one per trial).
    """
    t_count, g_count = weights.shape
    n_nodes = d_i.shape[-1]
    out = np.zeros(t_count)
    cdf_ex = np.empty(n_nodes)
    cdf_nex = np.empty(n_nodes)
    dens_j = np.empty(n_nodes)
    dens_jn = np.empty(n_nodes)
    dens_i = np.empty(n_nodes)
    dens_in = np.empty(n_nodes)
    for t in range(t_count):
        ri = rows_i[t]
        rj = rows_j[t]
        nn = 0.0
        if exnex:
            for k in range(n_nodes):
                dens_jn[k] = nd_j[rj, 0, k]
                dens_in[k] = nd_i[ri, 0, k]
            _simpson_cdf(dens_jn, du, cdf_nex)
            nn = _inner(
                dens_in, nm_i[ri, 0], ns_i[ri, 0], dens_jn, cdf_nex, nm_j[rj, 0], ns_j[rj, 0], c, du, hw
            )
        total = 0.0
        kept = 0.0
        for g in range(g_count):
            w = weights[t, g]
            if w < cutoff[t]:
                continue
            kept += w
            for k in range(n_nodes):
                dens_j[k] = d_j[rj, g, k]
                dens_i[k] = d_i[ri, g, k]
            _simpson_cdf(dens_j, du, cdf_ex)
            ee = _inner(dens_i, m_i[ri, g], s_i[ri, g], dens_j, cdf_ex, m_j[rj, g], s_j[rj, g], c, du, hw)
            if not exnex:
                total += w * ee
                continue
            a = pi_i[t, g]
            b = pi_j[t, g]
            en = _inner(dens_i, m_i[ri, g], s_i[ri, g], dens_jn, cdf_nex, nm_j[rj, 0], ns_j[rj, 0], c, du, hw)
            ne = _inner(dens_in, nm_i[ri, 0], ns_i[ri, 0], dens_j, cdf_ex, m_j[rj, g], s_j[rj, g], c, du, hw)
            total += w * (a * b * ee + a * (1 - b) * en + (1 - a) * b * ne + (1 - a) * (1 - b) * nn)
        out[t] = total / kept
    return out


try:  # numba ships with nutpie/pytensor; fall back to Python (slow but exact) without it
    import numba

    _simpson_cdf = numba.njit(cache=True)(_simpson_cdf)
    _inner = numba.njit(cache=True)(_inner)
    _pair_kernel = numba.njit(cache=True)(_pair_kernel_py)
except ImportError:  # pragma: no cover
    _pair_kernel = _pair_kernel_py
