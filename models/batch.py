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

The compiled kernels are what a simulated look costs (issue 14): the grid weights add each arm's
table row over the whole grid at once (contiguous reads; per grid point still in arm order) and
compute no exponential for points below ``e^-40`` of the largest weight (about half the grid:
together they weigh less than 1e-14 and no summary keeps them); the summaries list the kept
points once per data set and average one quantity per pass; ``P(p_a > p_b)`` places arm a's nodes
on arm b's node scale by a recurrence (two divisions per grid point, not per node). The summaries
are those of a point-by-point loop to the last bit; the weights move by at most the left-out mass
(1e-14) and the pair probabilities by rounding (4e-16).

Accuracy is part of the contract: ``tests/test_batch.py`` compares every quantity with the
fine-grid single-data-set quadrature of :mod:`models.exact` (itself checked against
``scipy.integrate.quad`` and importance sampling) and with PyMC fits.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy import special

from models.exact import _hyper_grid, check_tau_prior, conditional_integrals


def _cache_key(*parts) -> str:
    """A file-name-safe hash of everything the tables depend on (and the table format)."""
    h = hashlib.sha256(f"batch-tables-v1|{np.__version__}".encode())
    for p in parts:
        h.update(repr(np.asarray(p).tolist() if isinstance(p, np.ndarray) else p).encode())
    return h.hexdigest()[:24]


def triangle(n_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Every ``(n, y)`` with ``0 <= y <= n <= n_max``, in the row order of :func:`tri_index`."""
    rows_n = np.concatenate([np.full(n + 1, n) for n in range(n_max + 1)])
    rows_y = np.concatenate([np.arange(n + 1) for n in range(n_max + 1)])
    return rows_n, rows_y


def tri_index(n: np.ndarray, y: np.ndarray) -> np.ndarray:
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
    tau_dist, tau_scale, tau_shape
        Prior of ``tau`` (``half_normal``, ``half_cauchy`` or ``inverse_gamma``:
        ``tau^2 ~ InverseGamma(tau_shape, tau_scale)``), as in :class:`models.binary.HierarchicalLogistic`.
    w
        ``None`` for the hierarchical model; for EXNEX the prior probability of exchangeability
        (scalar or per arm, 0 and 1 allowed); a per-arm ``w`` can be changed at evaluation time
        (``w=`` argument), e.g. for a new arm that is non-exchangeable during its burn-in.
    components
        Optional EXNEX components (:class:`models.binary.ExComponent`); the simulator supports
        exactly one, which then replaces ``mu_mean, mu_sd, tau_*`` and ``w``. More than one raises
        ``NotImplementedError`` (use :func:`models.exact.exnex_summary` for single data sets).
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
        cache_dir: str | Path | None = None,
        tau_shape: float | None = None,
        components=None,
    ):
        if components is not None:
            components = tuple(components)
            if len(components) != 1:
                raise NotImplementedError(
                    f"the simulator (HierarchicalBatch) supports one exchangeable EXNEX component, got "
                    f"{len(components)}; simulate with one component or use models.exact.exnex_summary"
                )
            (c,) = components
            mu_mean, mu_sd, tau_dist, tau_scale = c.mu_mean, c.mu_sd, c.tau_dist, c.tau_scale
            tau_shape, w = c.tau_shape, c.w
        check_tau_prior(tau_dist, tau_scale, tau_shape, where="HierarchicalBatch")
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
            tau_shape=tau_shape,
        )
        n_mu = len(mu)
        self.mu = np.repeat(mu, n_tau)
        self.tau = np.tile(tau, n_mu)
        self.log_prior = log_prior.reshape(-1)
        compared = {int(c) for c in compare}
        self._cache_key = _cache_key(
            self.null_rate, self.n_max, self.thresholds, sorted(compared), mu_mean, mu_sd, tau_dist,
            tau_scale, w is not None, nex_mean, nex_sd, n_mu, n_tau, mu_halfwidth, n_nodes, half_width,
            *((tau_shape,) if tau_dist == "inverse_gamma" else ()),
        )  # fmt: skip
        if cache_dir is not None and self._load(Path(cache_dir) / self._cache_key, k):
            return
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
            dens = any(a in compared for a in arms)
            self._tables.append(self._tabulate(arms[0], n_tab, self.mu, self.tau, dens))
            self._nex.append(
                self._tabulate(arms[0], n_tab, np.array([nex_mean]), np.array([nex_sd]), dens)
                if self.exnex
                else None
            )
        for arm in range(k):
            key = (float(self.offset[arm]), tuple(np.nan_to_num(self.thresholds[arm], nan=-99.0)))
            self._arm_table.append(index[key])
        self._stack()
        if cache_dir is not None:
            self._save(Path(cache_dir) / self._cache_key)

    # ------------------------------------------------------------------ disk cache
    _FIELDS = ("log_l", "mean", "m2", "prob_above", "mode", "scale", "density")

    def _save(self, folder: Path) -> None:
        """Write the tables as .npy files (then renamed into place: readers never see a half)."""
        tmp = folder.with_name(folder.name + f".tmp-{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
        for kind, tabs in (("ex", self._tables), ("nex", self._nex)):
            for i, tab in enumerate(tabs):
                if tab is None:
                    continue
                for f in self._FIELDS:
                    v = getattr(tab, f)
                    if v is not None:
                        np.save(tmp / f"{kind}{i}_{f}.npy", v)
                np.save(tmp / f"{kind}{i}_n_max.npy", np.array(tab.n_max))
        np.save(tmp / "arm_table.npy", np.array(self._arm_table))
        try:
            os.rename(tmp, folder)
        except OSError:  # another process saved the same tables first
            shutil.rmtree(tmp, ignore_errors=True)

    def _load(self, folder: Path, k: int) -> bool:
        """Memory-map cached tables; ``False`` when there are none."""
        if not (folder / "arm_table.npy").exists():
            return False

        def load(kind, i):
            if not (folder / f"{kind}{i}_log_l.npy").exists():
                return None
            vals = {
                f: (
                    np.load(folder / f"{kind}{i}_{f}.npy", mmap_mode="r")
                    if (folder / f"{kind}{i}_{f}.npy").exists()
                    else None
                )
                for f in self._FIELDS
            }
            return _OffsetTable(n_max=int(np.load(folder / f"{kind}{i}_n_max.npy")), **vals)

        self._arm_table = [int(x) for x in np.load(folder / "arm_table.npy")]
        n_tab = max(self._arm_table) + 1
        self._tables = [load("ex", i) for i in range(n_tab)]
        self._nex = [load("nex", i) for i in range(n_tab)]
        self._stack()
        return True

    def _stack(self) -> None:
        """Concatenate the tables (rows of all offsets one after another) for the kernels."""
        starts = np.cumsum([0] + [t.log_l.shape[0] for t in self._tables])
        self._row0 = np.array([starts[i] for i in self._arm_table], np.int64)  # per arm
        j = self.thresholds.shape[1]
        self._ll = np.concatenate([t.log_l for t in self._tables])
        self._mean = np.concatenate([t.mean for t in self._tables])
        self._m2 = np.concatenate([t.m2 for t in self._tables])
        self._pa = np.concatenate([t.prob_above for t in self._tables])
        if self.exnex:
            nex = [t for t in self._nex if t is not None]  # with EXNEX every table has its NEX twin
            self._nll = np.concatenate([t.log_l[:, 0] for t in nex])
            self._nmean = np.concatenate([t.mean[:, 0] for t in nex])
            self._nm2 = np.concatenate([t.m2[:, 0] for t in nex])
            self._npa = np.concatenate([t.prob_above[:, 0] for t in nex])
            with np.errstate(over="ignore"):  # N / L_g: inf where L_g underflows next to N
                self._ratio = np.exp(self._nll[:, None] - self._ll)
        else:
            r = self._ll.shape[0]
            self._nll = np.zeros(r)
            self._nmean = np.zeros(r)
            self._nm2 = np.zeros(r)
            self._npa = np.zeros((r, j))
            self._ratio = np.zeros((r, 1))

    # ------------------------------------------------------------------ tables
    def _tabulate(self, arm, n_max, mu, sd, keep_density) -> _OffsetTable:
        rows_n, rows_y = triangle(n_max)
        off = self.offset[arm]
        thr = special.logit(self.thresholds[arm]) - off  # delta scale; NaN stays NaN
        thr = np.where(np.isfinite(thr), thr, 0.0)
        g = len(mu)
        out: dict[str, list[np.ndarray]] = {
            k: [] for k in ("log_l", "mean", "m2", "prob_above", "mode", "scale", "density")
        }
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
            if keep_density and c.density is not None:  # conditional_integrals always returns it
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
        return tri_index(n, y)

    def posterior(self, n: npt.ArrayLike, y: npt.ArrayLike, w: npt.ArrayLike | None = None) -> BatchPosterior:
        """Posterior of count arrays ``n``, ``y`` of shape ``(T, K)``.

        ``w`` overrides the EXNEX weights per arm (shape ``(K,)`` or ``(T, K)``).
        """
        n = np.atleast_2d(n)
        y = np.atleast_2d(y)
        rows = self._rows(n, y) + self._row0  # global rows of the stacked tables
        t, k = n.shape
        if self.exnex:
            wk = np.broadcast_to(np.asarray(self.w if w is None else w, float), (t, k))
        else:
            wk = np.ones((t, k))
        wk = np.ascontiguousarray(wk)
        weights = _grid_weights(self.log_prior, self._ll, self._nll, self._ratio, rows, wk, self.exnex)
        return BatchPosterior(self, n, y, rows, weights, wk)


class BatchPosterior:
    """Posterior of many data sets under :class:`HierarchicalBatch` (grid weights + tables)."""

    def __init__(self, model: HierarchicalBatch, n, y, rows, weights, w):
        self.model = model
        self.n = n
        self.y = y
        self.rows = rows  # (T, K) rows of the stacked tables
        self.weights = weights  # (T, G) posterior weights of the hyper grid
        self.w = w  # (T, K) EXNEX prior weights (1 for the plain hierarchical model)
        self._summary = None

    def _summaries(self):
        if self._summary is None:
            m = self.model
            # grid points below 1e-8 / G are left out: together they weigh at most 1e-8, which
            # bounds the error this adds to every mean and probability (no sort needed)
            g = self.weights.shape[1]
            cutoff = np.full(self.weights.shape[0], _SUMMARY_MASS / g)
            self._summary = _summary_kernel(
                self.weights, cutoff, self.rows, self.w, m.exnex,
                m._ratio, m._mean, m._m2, m._pa, m._nmean, m._nm2, m._npa,
            )  # fmt: skip
        return self._summary

    def mean_var(self) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and variance of every arm's rate, each ``(T, K)``."""
        mean, m2, _, _ = self._summaries()
        return mean, np.maximum(m2 - mean**2, 0.0)

    def prob_above(self) -> np.ndarray:
        """``P(p_k > c_kj)`` for the tabulated thresholds, shape ``(T, K, J)``."""
        return self._summaries()[2]

    def prob_exchangeable(self) -> np.ndarray:
        """EXNEX posterior probability that each arm is exchangeable, ``(T, K)``."""
        if not self.model.exnex:
            raise ValueError("not an EXNEX model")
        return self._summaries()[3]

    def _pis(self, arm: int) -> np.ndarray:
        """``P(arm exchangeable | grid point, data)`` for every grid point, ``(T, G)``."""
        m = self.model
        wcol = self.w[:, arm]
        if not m.exnex or np.all(wcol >= 1.0):
            return np.ones_like(self.weights)
        if np.all(wcol <= 0.0):
            return np.zeros_like(self.weights)
        r = self.rows[:, arm]
        wk = wcol[:, None]
        with np.errstate(divide="ignore"):
            a = np.log(wk) + m._ll[r]
            b = np.log1p(-wk) + m._nll[r][:, None]
        return np.exp(a - np.logaddexp(a, b))

    def prob_better(
        self,
        i: int,
        j: int,
        higher_is_better: bool = True,
        mass: float = 1e-6,
        rows: np.ndarray | None = None,
    ) -> np.ndarray:
        """``P(p_i > p_j)`` (``<`` when lower is better), shape ``(T,)``.

        Given the hyperparameters the two arms are independent, so the probability is the grid
        average of ``∫ f_i(d) F_j(d + off_i - off_j) dd``: arm i's tabulated density at its
        standardised nodes, arm j's CDF by cumulative Simpson and cubic Hermite interpolation.
        Grid points are visited in order of weight until all but ``mass`` of the posterior
        weight is covered (the error this adds is at most ``mass``). ``rows`` restricts the
        computation to some data sets (the others get NaN).
        """
        if rows is not None:
            out = np.full(self.weights.shape[0], np.nan)
            if len(rows):
                sub = BatchPosterior(
                    self.model, self.n[rows], self.y[rows], self.rows[rows], self.weights[rows], self.w[rows]
                )
                out[rows] = sub.prob_better(i, j, higher_is_better, mass)
            return out
        m = self.model
        tabs = []
        for a in (i, j):
            t_id = m._arm_table[a]
            tab, nex = m._tables[t_id], m._nex[t_id]
            if tab.density is None:
                raise ValueError(f"arm {a} was not declared in `compare` when tabulating")
            local = (self.rows[:, a] - m._row0[a]).astype(np.int64)
            nex_parts: tuple[np.ndarray | None, np.ndarray, np.ndarray]
            if nex is None:
                nex_parts = (tab.density[:, :1], tab.mode[:, :1], tab.scale[:, :1])
            else:
                nex_parts = (nex.density, nex.mode, nex.scale)
            tabs.append((local, tab.density, tab.mode, tab.scale, *nex_parts))
        cutoff = _mass_cutoff(self.weights, mass)
        (ri, d_i, m_i, s_i, nd_i, nm_i, ns_i), (rj, d_j, m_j, s_j, nd_j, nm_j, ns_j) = tabs
        p = _pair_kernel(
            self.weights, cutoff, ri, rj, self._pis(i), self._pis(j), m.exnex,
            float(m.offset[i] - m.offset[j]), float(m.du), float(m.half_width),
            d_i, m_i, s_i, nd_i, nm_i, ns_i, d_j, m_j, s_j, nd_j, nm_j, ns_j,
        )  # fmt: skip
        p = np.clip(p, 0.0, 1.0)
        return p if higher_is_better else 1.0 - p

    def prob_best(self, arms: Sequence[int], higher_is_better: bool = True) -> np.ndarray:
        """``P(arm has the best rate among arms)`` for two arms, shape ``(T, 2)``."""
        arms = list(arms)
        if len(arms) != 2:
            raise NotImplementedError("P(best) among more than two arms: not tabulated yet")
        p = self.prob_better(arms[0], arms[1], higher_is_better)
        return np.stack([p, 1.0 - p], axis=1)


_SUMMARY_MASS = 1e-8
#: grid points whose weight is below ``exp(_LOG_NEGLIGIBLE)`` times the largest get weight 0 (no
#: exponential computed: about half the grid at a typical look). Together they weigh less than
#: ``G e^-40`` (4e-15 for G = 2,000), far below the ``_SUMMARY_MASS / G`` of a point the summaries
#: and comparisons keep, so no summary reads them; only the normalising sum moves, by that much.
_LOG_NEGLIGIBLE = -40.0


def _mass_cutoff(weights: np.ndarray, mass: float) -> np.ndarray:
    """Per row, the smallest weight still needed so that the kept weights sum to >= 1 - mass."""
    srt = -np.sort(-weights, axis=1)
    cum = np.cumsum(srt, axis=1)
    k = np.minimum((cum < 1.0 - mass).sum(axis=1), weights.shape[1] - 1)
    return srt[np.arange(len(srt)), k]


def _grid_weights_py(log_prior, ll, nll, ratio, rows, w, exnex):
    """Normalised posterior weights of the hyper grid, ``(T, G)``.

    An EXNEX arm with ``0 < w < 1`` contributes ``log(w L_g + (1 - w) N)`` with ``L_g`` its
    marginal likelihood given grid point g and ``N`` the non-exchangeable one:
    ``log w + log L_g + log1p(c D_g)``, ``c = (1 - w) / w`` and ``D_g = N / L_g`` tabulated
    (``ratio``), one logarithm per arm and grid point.

    Arm by arm over the whole grid (each table row read contiguously); per grid point the
    terms are still added in arm order, so the sums are those of a grid-point-major loop.
    """
    t_count, k_count = rows.shape
    g_count = log_prior.shape[0]
    out = np.empty((t_count, g_count))
    acc = np.empty(g_count)
    prod = np.empty(g_count)  # product of the factors 1 + c D_g (at most 1e30 each): one log per g
    for t in range(t_count):
        mixed = False
        for g in range(g_count):
            acc[g] = log_prior[g]
        for k in range(k_count):
            r = rows[t, k]
            wk = w[t, k]
            if not exnex or wk >= 1.0:
                for g in range(g_count):
                    acc[g] += ll[r, g]
            elif wk <= 0.0:
                lnex = nll[r]
                for g in range(g_count):
                    acc[g] += lnex
            else:
                if not mixed:
                    mixed = True
                    for g in range(g_count):
                        prod[g] = 1.0
                lw = np.log(wk)
                lnex = np.log1p(-wk) + nll[r]
                c = (1.0 - wk) / wk
                for g in range(g_count):
                    v = c * ratio[r, g]
                    if v <= 1e30:
                        acc[g] += lw + ll[r, g]
                        prod[g] *= 1.0 + v
                    elif v <= 1e300:
                        acc[g] += lw + ll[r, g] + np.log1p(v)
                    else:  # L_g negligible next to N
                        acc[g] += lnex
        mx = -np.inf
        for g in range(g_count):
            if acc[g] > mx:
                mx = acc[g]
        total = 0.0
        for g in range(g_count):
            d = acc[g] + np.log(prod[g]) - mx if mixed else acc[g] - mx
            v = np.exp(d) if d > _LOG_NEGLIGIBLE else 0.0
            out[t, g] = v
            total += v
        for g in range(g_count):
            out[t, g] /= total
    return out


def _summary_kernel_py(weights, cutoff, rows, w, exnex, ratio, mean_t, m2_t, pa_t, nmean, nm2, npa):
    """Posterior means of the tabulated conditionals (EXNEX: mixed by P(exchangeable | g)).

    ``P(exchangeable | g, data) = 1 / (1 + c D_g)`` (see :func:`_grid_weights_py`); the
    non-exchangeable part does not depend on g, so it is added once per arm at the end.
    The grid points kept (weight at least ``cutoff``) and their weights are listed once per data
    set, then each arm's table rows are averaged over them, one quantity per pass so that every
    running sum stays in a register (contiguous reads; each sum in grid order).
    """
    t_count, k_count = rows.shape
    g_count = weights.shape[1]
    j_count = pa_t.shape[2]
    mean = np.zeros((t_count, k_count))
    m2 = np.zeros((t_count, k_count))
    pa = np.zeros((t_count, k_count, j_count))
    pex = np.zeros((t_count, k_count))
    idx = np.empty(g_count, np.int64)
    wt = np.empty(g_count)  # weight of the kept point, times P(exchangeable | g) for EXNEX
    for t in range(t_count):
        kept = 0.0
        n_kept = 0
        for g in range(g_count):
            wg = weights[t, g]
            if wg < cutoff[t]:
                continue
            kept += wg
            idx[n_kept] = g
            n_kept += 1
        for k in range(k_count):
            r = rows[t, k]
            wk = w[t, k]
            n_arm = n_kept
            if not exnex or wk >= 1.0:
                for i in range(n_kept):
                    wt[i] = weights[t, idx[i]]
            elif wk > 0.0:
                c = (1.0 - wk) / wk
                for i in range(n_kept):
                    g = idx[i]
                    wt[i] = weights[t, g] / (1.0 + c * ratio[r, g])
            else:  # non-exchangeable only
                n_arm = 0
            s_mean = 0.0
            s_m2 = 0.0
            s_pex = 0.0
            for i in range(n_arm):
                g = idx[i]
                s_mean += wt[i] * mean_t[r, g]
                s_m2 += wt[i] * m2_t[r, g]
                s_pex += wt[i]
            q = kept - s_pex  # weight of the non-exchangeable part
            for j in range(j_count):
                s_pa = 0.0
                for i in range(n_arm):
                    s_pa += wt[i] * pa_t[r, idx[i], j]
                pa[t, k, j] = (s_pa + q * npa[r, j]) / kept
            mean[t, k] = (s_mean + q * nmean[r]) / kept
            m2[t, k] = (s_m2 + q * nm2[r]) / kept
            pex[t, k] = s_pex / kept
    return mean, m2, pa, pex


def _simpson_cdf(dens, du, out):
    """Cumulative Simpson of ``dens`` into ``out`` (same formula as models.exact)."""
    n_nodes = dens.shape[0]
    out[0] = 0.0
    out[1] = du * (5.0 * dens[0] + 8.0 * dens[1] - dens[2]) / 12.0
    for k in range(2, n_nodes):
        out[k] = out[k - 2] + du * (dens[k - 2] + 4.0 * dens[k - 1] + dens[k]) / 3.0


def _inner(dens_a, ma, sa, dens_b, cdf_b, mb, sb, c, du, hw):
    """``∫ f_a(d) F_b(d + c) dd`` with both densities on standardised nodes.

    Node k of a (``d = ma + sa (k du - hw)``) lies at ``xx = x0 + k dx`` on b's node scale,
    ``x0 = (ma - sa hw + c - mb) / (sb du) + hw / du`` and ``dx = sa / sb``: two divisions per
    call instead of two per node.
    """
    n_nodes = dens_a.shape[0]
    top = n_nodes - 1
    x0 = (ma - sa * hw + c - mb) / (sb * du) + hw / du
    dx = sa / sb
    inner = 0.0
    for k in range(n_nodes):
        xx = x0 + k * dx
        if xx <= 0.0:
            continue
        fa = dens_a[k]
        if xx >= top:
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
        inner += (du if 0 < k < top else 0.5 * du) * fa * fb
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
            a = pi_i[t, g]
            b = pi_j[t, g]
            if not exnex or (a == 1.0 and b == 1.0):
                total += w * ee
                continue
            en = _inner(dens_i, m_i[ri, g], s_i[ri, g], dens_jn, cdf_nex, nm_j[rj, 0], ns_j[rj, 0], c, du, hw)
            ne = _inner(dens_in, nm_i[ri, 0], ns_i[ri, 0], dens_j, cdf_ex, m_j[rj, g], s_j[rj, g], c, du, hw)
            total += w * (a * b * ee + a * (1 - b) * en + (1 - a) * b * ne + (1 - a) * (1 - b) * nn)
        out[t] = total / kept
    return out


try:  # numba ships with nutpie/pytensor; fall back to Python (slow but exact) without it
    import numba

    _simpson_cdf = numba.njit(cache=True, nogil=True)(_simpson_cdf)
    _inner = numba.njit(cache=True, nogil=True)(_inner)
    _pair_kernel = numba.njit(cache=True, nogil=True)(_pair_kernel_py)
    _grid_weights = numba.njit(cache=True, nogil=True)(_grid_weights_py)
    _summary_kernel = numba.njit(cache=True, nogil=True)(_summary_kernel_py)
except ImportError:  # pragma: no cover
    _pair_kernel = _pair_kernel_py
    _grid_weights = _grid_weights_py
    _summary_kernel = _summary_kernel_py
