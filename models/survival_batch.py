"""Posterior of the piecewise-exponential survival model for many data sets at once (the simulator's).

The model is :class:`models.survival.PiecewiseExponential` of kind ``independent``: arm ``k``'s
hazard in interval ``j`` is ``log h_kj = eta_k + gamma_{g(k), j}``, ``eta_k ~ Normal(m_k, s)``
independently, and each shape group ``g`` has its own baseline shape ``gamma_g``, the centred
random walk of ``eps_g ~ Normal(0, I_{J-1})`` with step sd ``sigma``. ``adaptive simulate`` needs
its decision probabilities (``P(median_k > t)``, ``P(HR_{a:b} < r)``) at every look of thousands
of virtual trials, where a NUTS fit per look is out of the question. This module computes them
from the model's structure, with errors that are measured rather than assumed:

* **Groups are independent a posteriori**: no parameter is shared between shape groups, so each
  group is computed on its own.
* **Given the group's shape, the arm levels are independent**, each with the one-dimensional
  posterior ``p(eta_k | eps) ∝ exp(D_k eta - Ẽ_k e^eta) Normal(eta; m_k, s)`` (``D_k`` the arm's
  events, ``Ẽ_k = sum_j E_kj e^gamma_j`` its shape-weighted days at risk). It is integrated on
  a grid of ``grid`` (25) points spanning -9 to +6 of its curvature sd around its mode (the
  mode in closed form by the Lambert W function): the grid gives the normaliser ``Z_k(eps)``
  (trapezoid rule, spectrally accurate for this smooth, fast-decaying integrand) and the
  distribution function (Euler-Maclaurin-corrected trapezoid at the points, the integral of
  the cubic Hermite interpolant in between), within 5e-4 of a 40,001-point integration.
* **The shape is integrated by a fifth-degree Gaussian cubature around the Laplace
  approximation**: the mode of the joint posterior of ``(eta, eps)`` (Newton's method; the log
  posterior is concave) and the shape block of the inverse Hessian there give a Normal ``q``;
  the ``2n^2 + 1`` points of the fifth-degree rule for ``q`` (``n = J - 1``; Stroud's rule, as
  in the fifth-degree cubature Kalman filter of Jia, Xin & Cheng 2013) carry the ratio
  ``Normal(eps) prod_k Z_k(eps) exp(sum_kj d_kj gamma_j) / q(eps)`` (self-normalised). The
  rule is deterministic: results do not depend on how data sets are batched. On 300 data sets
  from 3 to 45 patients per arm and 60 to 700 days of follow-up its decision probabilities are
  within 0.0013 of 4,096-point quasi-Monte Carlo importance sampling (``method="qmc"``; 64
  points were off by up to 0.013).

Then ``P(median_k > t) = E[F_k(log ln 2 - log sum_j o_j(t) e^gamma_j | eps)]`` (``o_j(t)`` the
days of interval ``j`` before ``t``; the last interval continues, as in the model), and for two
arms of one group ``P(eta_a - eta_b < log r) = E[ int f_b(y) F_a(y + log r) dy | eps ]``.

With one interval there is no shape and the result is exact (the tests compare it with
:mod:`models.survival_exact`); with several it is checked against NUTS fits of the PyMC model
(``tests/test_survival_batch.py``: decision probabilities within 0.01 of the fits). The
hierarchical kind is not covered: the simulator refuses rules that would need it.

**Point mass** (ELN 2022 EFS: treatment failures on day ``p = point_mass_days``). The model
gives arm ``k`` an event at ``p`` with probability ``pi_k ~ Beta(a, b)``
(:data:`POINT_MASS_PRIOR`), independent of the hazards in prior and likelihood, so its posterior
is ``Beta(a + d0_k, b + n0_k - d0_k)`` (``n0_k`` the arm's patients, ``d0_k`` its point-mass
events) and ``S_k(t) = (1 - pi_k) exp(-H_k(t))`` for ``t >= p``. The median exceeds ``t >= p``
exactly when ``pi_k < 1/2`` and ``H_k(t) < log(2 (1 - pi_k))``
(:func:`models.survival.median_survival`), so

    P(median_k > t) = int_0^{1/2} Beta(pi | a + d0, b + n0 - d0)
                      E[F_k(log log(2 (1 - pi)) - log sum_j o_j(t) e^gamma_j | eps)] dpi,

integrated by Gauss-Legendre (:data:`PI_NODES` nodes) on the window of ``pi`` that carries the
Beta posterior (mean ± :data:`PI_WINDOW_SD` sds, clipped to ``[0, 1/2]``); see
:meth:`SurvivalBatchPosterior.prob_median_above`. The hazard ratio is ``exp(eta_a - eta_b)``, of
the continuous part only (as :class:`decision_rules.survival.SurvivalPosterior` reads it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numba
import numpy as np
from scipy import special
from scipy.stats import qmc

LN2 = float(np.log(2.0))
#: the level grid, in curvature sds around the conditional mode (the left tail of a log hazard is
#: the longer one)
GRID_SPAN = (-9.0, 6.0)
#: ``(a, b)`` of the Beta prior of a point-mass probability (the PyMC model's default ``day0_prior``)
POINT_MASS_PRIOR = (1.0, 1.0)
#: Gauss-Legendre nodes over the window of the point-mass probability ``pi``, and the window's
#: half-width in posterior sds of ``pi``. The Beta mass outside ``mean ± 12 sd`` is below 3e-6 for
#: every ``(a, b)`` with ``a, b >= 1`` (the worst case, ``Beta(1, b)``, has an exponential tail
#: beyond ``(1 + 12) / b``: ``e^-13``), and 64 nodes integrate the Beta density times the
#: smooth, monotone ``P(S_cont(t) > 1 / (2 (1 - pi)))`` over that window within 1e-5 of
#: :func:`scipy.integrate.quad` (80 data sets, 0 to 400 patients, pi up to 0.6, references near
#: the median: worst 4e-6; 48 nodes: 8e-5, when pi's window reaches 1/2 with 400 patients,
#: where that probability falls steeply; ``tests/test_survival_batch.py`` keeps such a battery).
PI_NODES = 64
PI_WINDOW_SD = 12.0


def walk_matrix(n_intervals: int, sigma: float) -> np.ndarray:
    """``A`` with ``gamma = A eps``: the centred random walk of ``J - 1`` standard normal steps."""
    j = n_intervals
    low = np.tril(np.ones((j, j - 1)), k=-1)  # g_1 = 0, g_j = sum of the first j - 1 steps
    centre = np.eye(j) - 1.0 / j
    return sigma * centre @ low


def overlap(cut_points: Sequence[float], t: float) -> np.ndarray:
    """Days of each interval before ``t`` (the last interval continues beyond its end)."""
    b = np.asarray(cut_points, float)
    widths = np.diff(b)
    widths[-1] = np.inf
    return np.clip(t - b[:-1], 0.0, widths)


@numba.njit(cache=True, nogil=True)
def _lambertw_exp(log_x: float) -> float:
    """``W(exp(log_x))``, the principal branch, without overflow for large ``log_x``."""
    if log_x > 1.0:  # w + log w = log_x, Newton from the asymptotic expansion
        w = log_x - np.log(log_x)
        for _ in range(50):
            step = (w + np.log(w) - log_x) / (1.0 + 1.0 / w)
            w -= step
            if abs(step) < 1e-13 * w:
                break
        return w
    x = np.exp(log_x)
    w = np.log1p(x)  # w e^w = x, Newton (W(x) <= log(1 + x))
    for _ in range(50):
        ew = np.exp(w)
        step = (w * ew - x) / (ew * (1.0 + w))
        w -= step
        if abs(step) < 1e-15:
            break
    return w


@numba.njit(cache=True, nogil=True)
def _levels_kernel(dd, ee, m, s2, u, need, x0, h, f, fp, cum, log_z):
    """The grid posterior of every level given the shape (see :meth:`SurvivalBatch._levels`).

    ``dd``, ``ee``: ``(N, K)`` events and shape-weighted days at risk; ``m`` ``(K,)``; ``u`` the
    standardised grid. Fills ``x0`` (first grid point), ``h`` (step) and ``log_z`` ``(N, K)``, and
    for the arms with ``need[k]`` the density ``f``, its derivative ``fp`` and the distribution
    function ``cum`` at the grid points ``(K, N, G)`` (arm first: one arm's grids are contiguous).
    """
    n_rows, k_arms = dd.shape
    g_pts = u.shape[0]
    du = u[1] - u[0]
    c0 = -0.5 * np.log(2.0 * np.pi * s2)
    lf = np.empty(g_pts)
    mu = np.empty(g_pts)
    for r in range(n_rows):
        for k in range(k_arms):
            d = dd[r, k]
            e = ee[r, k]
            mk = m[k]
            c = mk + s2 * d
            # mode: D - E e^eta - (eta - m)/s^2 = 0  <=>  eta = m + s^2 D - W(s^2 E exp(m + s^2 D))
            mode = c - _lambertw_exp(np.log(s2 * e) + c) if e > 0 else c
            sd = 1.0 / np.sqrt(e * np.exp(mode) + 1.0 / s2)
            step = sd * du
            # e^x along the grid as a geometric progression (one exp per grid point in all)
            ratio = np.exp(step)
            ex = np.exp(mode + sd * u[0])
            mx = -np.inf
            for g in range(g_pts):
                xg = mode + sd * u[g]
                mu[g] = e * ex
                ex *= ratio
                v = d * xg - mu[g] - 0.5 * (xg - mk) ** 2 / s2 + c0
                lf[g] = v
                if v > mx:
                    mx = v
            tot = 0.0
            for g in range(g_pts):
                lf[g] = np.exp(lf[g] - mx)
                tot += lf[g]
            lz = mx + np.log(tot) + np.log(step)
            log_z[r, k] = lz
            x0[r, k] = mode + sd * u[0]
            h[r, k] = step
            if need[k]:
                norm = 1.0 / (tot * step)
                for g in range(g_pts):
                    xg = mode + sd * u[g]
                    fg = lf[g] * norm
                    f[k, r, g] = fg
                    fp[k, r, g] = fg * (d - mu[g] - (xg - mk) / s2)
                cum[k, r, 0] = 0.0
                for g in range(1, g_pts):
                    cum[k, r, g] = (
                        cum[k, r, g - 1]
                        + step * (f[k, r, g - 1] + f[k, r, g]) / 2.0
                        + step * step * (fp[k, r, g - 1] - fp[k, r, g]) / 12.0
                    )


@numba.njit(cache=True, nogil=True)
def _cdf_kernel(x0, h, f, fp, cum, at, out):
    """``P(eta <= at)`` per row from one level's grid.

    ``x0``, ``h`` ``(N,)``; ``f``, ``fp``, ``cum`` ``(N, G)``; ``at``, ``out`` ``(N, M)``. Between
    grid points the density is the cubic Hermite interpolant of ``f`` and ``fp``, integrated
    exactly (so the function matches the end-corrected trapezoid at the points).
    """
    n_rows, n_at = at.shape
    g_pts = f.shape[1]
    for r in range(n_rows):
        step = h[r]
        total = cum[r, g_pts - 1]
        for a in range(n_at):
            pos = (at[r, a] - x0[r]) / step
            if pos <= 0.0:
                out[r, a] = 0.0
                continue
            if pos >= g_pts - 1:
                out[r, a] = 1.0
                continue
            j = int(np.floor(pos))
            t = pos - j
            t2 = t * t
            t3 = t2 * t
            t4 = t3 * t
            part = step * (
                f[r, j] * (t4 / 2 - t3 + t)
                + f[r, j + 1] * (t3 - t4 / 2)
                + step * fp[r, j] * (t4 / 4 - 2 * t3 / 3 + t2 / 2)
                + step * fp[r, j + 1] * (t4 / 4 - t3 / 3)
            )
            v = (cum[r, j] + part) / total
            out[r, a] = min(max(v, 0.0), 1.0)


@dataclass
class SurvivalBatch:
    """The model's prior and numerical settings; :meth:`posterior` for many data sets.

    Parameters
    ----------
    cut_points
        Interval boundaries ``0 = b_0 < ... < b_J`` in days.
    level_means
        ``m_k = log(ln 2 / median_k)`` per arm.
    level_sd, smoothing_sd
        ``s`` and ``sigma`` of the model.
    groups
        Shape group of each arm (``0 .. G-1``); ``None``: one shape.
    method, n_draws, seed
        How the shape is integrated: ``"cubature"`` (the fifth-degree rule, the default) or
        ``"qmc"`` (``n_draws`` scrambled Sobol points in antithetic pairs, seeded: the slow
        reference the tests compare the rule with).
    grid
        Grid points of each level's conditional posterior.
    point_mass_days, point_mass_prior
        The day of the point mass (``None``: none) and the Beta prior of its probability.
    """

    cut_points: tuple[float, ...]
    level_means: np.ndarray
    level_sd: float
    smoothing_sd: float
    groups: tuple[int, ...] | None = None
    method: str = "cubature"
    n_draws: int = 4096
    grid: int = 25
    seed: int = 20260101
    point_mass_days: float | None = None
    point_mass_prior: tuple[float, float] = POINT_MASS_PRIOR
    _members: list[np.ndarray] = field(init=False, repr=False)

    def __post_init__(self):
        self.level_means = np.asarray(self.level_means, float)
        k = len(self.level_means)
        groups = np.zeros(k, int) if self.groups is None else np.asarray(self.groups, int)
        if len(groups) != k:
            raise ValueError(f"groups has {len(groups)} entries for {k} arms")
        self.group_of = groups
        self._members = [np.nonzero(groups == g)[0] for g in range(int(groups.max()) + 1 if k else 0)]
        self.n_intervals = len(self.cut_points) - 1
        self.walk = walk_matrix(self.n_intervals, self.smoothing_sd)
        steps = self.n_intervals - 1
        if self.method not in ("cubature", "qmc"):
            raise ValueError(f"method must be 'cubature' or 'qmc', got {self.method!r}")
        if steps and self.method == "cubature":
            # fifth-degree cubature for Normal(0, I) (2n^2 + 1 points: the origin, the axes at
            # sqrt(n + 2) and the pairs at sqrt((n + 2) / 2) (±e_i ± e_j))
            n = steps
            r = np.sqrt(n + 2.0)
            pts = [np.zeros(n)]
            wts = [2.0 / (n + 2)]
            for i in range(n):
                for sgn in (1.0, -1.0):
                    v = np.zeros(n)
                    v[i] = sgn * r
                    pts.append(v)
                    wts.append((4.0 - n) / (2.0 * (n + 2) ** 2))
            for i in range(n):
                for k in range(i + 1, n):
                    for si in (1.0, -1.0):
                        for sk in (1.0, -1.0):
                            v = np.zeros(n)
                            v[i], v[k] = si * r / np.sqrt(2.0), sk * r / np.sqrt(2.0)
                            pts.append(v)
                            wts.append(1.0 / (n + 2) ** 2)
            self._t = np.array(pts)
            self._log_q = -0.5 * np.sum(self._t**2, 1)
            self._c = np.array(wts)
        elif steps:
            half = (self.n_draws + 1) // 2
            pts = qmc.Sobol(steps + 1, scramble=True, seed=self.seed).random(half)
            pts = np.clip(pts, 1e-12, 1 - 1e-12)
            z = special.ndtri(pts[:, :steps])
            self._t = np.concatenate([z, -z])
            self._log_q = -0.5 * np.sum(self._t**2, 1)
            self._c = np.full(len(self._t), 1.0 / len(self._t))
        else:
            self._t = np.zeros((1, 0))
            self._log_q = np.zeros(1)
            self._c = np.ones(1)
        self._u = np.linspace(*GRID_SPAN, self.grid)

    def posterior(
        self,
        events: np.ndarray,
        exposure: np.ndarray,
        need: Sequence[int] | None = None,
        n0: np.ndarray | None = None,
        d0: np.ndarray | None = None,
    ) -> SurvivalBatchPosterior:
        """The posterior of every data set: ``events`` and ``exposure`` are ``(T, K, J)``.

        ``need``: the arms whose quantities will be asked for (default: all). With a point mass
        (``point_mass_days`` set), ``n0`` and ``d0`` ``(T, K)``: each arm's patients (with and
        without a point-mass event) and point-mass events (:class:`models.survival.SurvivalData`'s
        ``n`` and ``day0_events``); ``events`` and ``exposure`` are those of the other patients.
        """
        d = np.asarray(events, float)
        e = np.asarray(exposure, float)
        k = len(self.level_means)
        if d.shape != e.shape or d.ndim != 3 or d.shape[1:] != (k, self.n_intervals):
            raise ValueError(f"events and exposure must be (T, {k}, {self.n_intervals})")
        if (self.point_mass_days is None) != (n0 is None or d0 is None):
            raise ValueError("n0 and d0 are given exactly when the model has a point mass (point_mass_days)")
        mass = None
        if n0 is not None and d0 is not None:
            n0, d0 = np.asarray(n0, float), np.asarray(d0, float)
            if n0.shape != (len(d), k) or d0.shape != n0.shape:
                raise ValueError(f"n0 and d0 must be ({len(d)}, {k})")
            if np.any(d0 > n0) or np.any(d0 < 0):
                raise ValueError("point-mass events must lie between 0 and the number of patients")
            mass = (n0, d0)
        wanted = np.ones(k, bool)
        if need is not None:
            wanted[:] = False
            wanted[list(need)] = True
        return SurvivalBatchPosterior(self, d, e, wanted, mass)

    # ------------------------------------------------------------------ one group
    def _mode(self, d, e, m) -> tuple[np.ndarray, np.ndarray]:
        """Mode of the joint posterior of ``(eta, eps)`` of one group and the eps block of its covariance."""
        t, n, j = d.shape
        a = self.walk
        p = n + j - 1
        s2 = self.level_sd**2
        eta = np.broadcast_to(m, (t, n)).copy()
        eps = np.zeros((t, j - 1))
        prior_prec = np.concatenate([np.full(n, 1.0 / s2), np.ones(j - 1)])
        for _ in range(100):
            x = eta[..., None] + (eps @ a.T)[:, None, :]
            mu = e * np.exp(x)
            r = d - mu
            grad = np.concatenate([r.sum(-1) - (eta - m) / s2, r.sum(1) @ a - eps], axis=1)
            neg_h = np.zeros((t, p, p))
            ii = np.arange(n)
            neg_h[:, ii, ii] = mu.sum(-1)
            cross = mu @ a  # (t, n, j-1)
            neg_h[:, :n, n:] = cross
            neg_h[:, n:, :n] = np.swapaxes(cross, 1, 2)
            neg_h[:, n:, n:] = np.einsum("ji,tj,jk->tik", a, mu.sum(1), a)
            neg_h[:, np.arange(p), np.arange(p)] += prior_prec
            step = np.linalg.solve(neg_h, grad[..., None])[..., 0]
            step = np.clip(step, -2.0, 2.0)
            eta += step[:, :n]
            eps += step[:, n:]
            if np.max(np.abs(step)) < 1e-9:
                break
        cov = np.linalg.inv(neg_h)[:, n:, n:]
        return eps, cov

    def _levels(self, dd, ee, m, need):
        """Grid posterior of each level given the shape (:func:`_levels_kernel`).

        ``dd``, ``ee`` ``(t, S, n)`` events and shape-weighted days at risk, ``m`` ``(n,)``
        centres, ``need`` ``(n,)`` the levels whose distribution function is wanted (the others
        only contribute their normaliser to the shape's weights).
        """
        t, s, n = dd.shape
        g = self.grid
        rows = t * s
        x0, h, log_z = (np.empty((rows, n)) for _ in range(3))
        size = (n, rows, g) if need.any() else (n, 1, g)
        f, fp, cum = (np.zeros(size) for _ in range(3))
        _levels_kernel(
            np.ascontiguousarray(dd.reshape(rows, n)), np.ascontiguousarray(ee.reshape(rows, n)),
            np.asarray(m, float), float(self.level_sd**2), self._u, np.asarray(need, np.bool_),
            x0, h, f, fp, cum, log_z,
        )  # fmt: skip
        shape = (t, s, n)
        return {
            "x0": x0.reshape(shape),
            "h": h.reshape(shape),
            "log_z": log_z.reshape(shape),
            "f": f,  # (n, t * S, g)
            "fp": fp,
            "cum": cum,
            "t_s": (t, s),
        }

    def _group(self, d, e, g: int, need: np.ndarray) -> dict:
        """Everything the decision quantities of group ``g`` need (grids of the ``need`` arms)."""
        arms = self._members[g]
        d, e = d[:, arms], e[:, arms]
        m = self.level_means[arms]
        j = self.n_intervals
        if j > 1:
            mode, cov = self._mode(d, e, m)
            chol = np.linalg.cholesky(cov + 1e-12 * np.eye(j - 1))
            eps = mode[:, None, :] + np.einsum("tij,sj->tsi", chol, self._t)  # (t, S, j-1)
            gamma = eps @ self.walk.T  # (t, S, j)
            log_prior = -0.5 * np.sum(eps**2, -1)
        else:
            gamma = np.zeros((len(d), 1, 1))
            log_prior = np.zeros((len(d), 1))
        eg = np.exp(gamma)
        ee = np.einsum("tkj,tsj->tsk", e, eg)  # shape-weighted days at risk
        dd = np.broadcast_to(d.sum(-1)[:, None, :], ee.shape)
        lev = self._levels(dd, ee, m, need[arms])
        dgamma = np.einsum("tkj,tsj->ts", d, gamma)
        logw = log_prior + lev["log_z"].sum(-1) + dgamma - self._log_q[None, :]
        logw = logw - logw.max(axis=1, keepdims=True)
        wt = self._c[None, :] * np.exp(logw)
        lev["is"] = wt / wt.sum(axis=1, keepdims=True)
        lev["arms"] = arms
        lev["eg"] = eg
        return lev


def _legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on ``[0, 1]``."""
    x, w = np.polynomial.legendre.leggauss(n)
    return (x + 1.0) / 2.0, w / 2.0


def _cdf(lev: dict, i: int, at: np.ndarray) -> np.ndarray:
    """``P(eta_i <= at)`` of level ``i`` of a group, ``at`` of shape ``(t, S, M)``."""
    t, s, m = at.shape
    out = np.empty((t * s, m))
    _cdf_kernel(
        np.ascontiguousarray(lev["x0"][:, :, i]).reshape(-1),
        np.ascontiguousarray(lev["h"][:, :, i]).reshape(-1),
        lev["f"][i], lev["fp"][i], lev["cum"][i], np.ascontiguousarray(at.reshape(t * s, m)), out,
    )  # fmt: skip
    return out.reshape(t, s, m)


class SurvivalBatchPosterior:
    """Decision quantities of many data sets (see :class:`SurvivalBatch`)."""

    def __init__(
        self,
        batch: SurvivalBatch,
        events: np.ndarray,
        exposure: np.ndarray,
        need: np.ndarray,
        mass: tuple[np.ndarray, np.ndarray] | None = None,
    ):
        self.batch = batch
        self.need = need
        self.events = events
        self.exposure = exposure
        self.mass = mass  # (n0, d0) of the point mass, (T, K) each
        self._groups: dict[int, dict] = {}

    def _of(self, arm: int) -> tuple[dict, int]:
        g = int(self.batch.group_of[arm])
        if not self.need[arm]:
            raise ValueError(f"arm {arm} was not among the arms asked for (need)")
        if g not in self._groups:
            self._groups[g] = self.batch._group(self.events, self.exposure, g, self.need)
        grp = self._groups[g]
        return grp, int(np.nonzero(grp["arms"] == arm)[0][0])

    def prob_median_above(self, arm: int, days: float) -> np.ndarray:
        """``P(median_arm > days)`` per data set (with a point mass: ``days >= point_mass_days``)."""
        grp, i = self._of(arm)
        o = overlap(self.batch.cut_points, days)
        with np.errstate(divide="ignore"):
            log_o = np.log(grp["eg"] @ o)  # (t, S)
        if self.mass is None:
            f = _cdf(grp, i, (np.log(LN2) - log_o)[..., None])[..., 0]
            return np.sum(grp["is"] * f, axis=1)
        if days < float(self.batch.point_mass_days or 0.0):
            raise ValueError(f"a median reference of {days:g} days lies before the point mass")
        pi, dens = self.point_mass_nodes(arm)  # (t, M)
        with np.errstate(divide="ignore"):
            # median > t  <=>  pi < 1/2 and H(t) < log(2 (1 - pi))
            at = np.log(LN2 + np.log1p(-pi))[:, None, :] - log_o[..., None]  # (t, S, M)
        f = _cdf(grp, i, at)
        return np.sum(dens * np.sum(grp["is"][..., None] * f, axis=1), axis=1)

    def point_mass_nodes(self, arm: int) -> tuple[np.ndarray, np.ndarray]:
        """Quadrature nodes of ``pi`` on ``[0, 1/2]`` and the Beta posterior's weights, ``(T, M)`` each.

        ``sum(weights * g(nodes))`` approximates ``int_0^{1/2} Beta(pi | a + d0, b + n0 - d0) g(pi) dpi``
        (Gauss-Legendre on the window of :data:`PI_WINDOW_SD` posterior sds around the mean).
        """
        if self.mass is None:
            raise ValueError("the model has no point mass")
        n0, d0 = self.mass[0][:, arm], self.mass[1][:, arm]
        a0, b0 = self.batch.point_mass_prior
        a, b = a0 + d0, b0 + n0 - d0
        mean = a / (a + b)
        sd = np.sqrt(mean * (1.0 - mean) / (a + b + 1.0))
        lo = np.clip(mean - PI_WINDOW_SD * sd, 0.0, 0.5)
        hi = np.clip(mean + PI_WINDOW_SD * sd, 0.0, 0.5)
        x, w = _legendre(PI_NODES)
        pi = lo[:, None] + (hi - lo)[:, None] * x[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            logpdf = (
                (a - 1.0)[:, None] * np.log(pi)
                + (b - 1.0)[:, None] * np.log1p(-pi)
                - special.betaln(a, b)[:, None]
            )
        dens = np.where(hi > lo, 1.0, 0.0)[:, None] * np.exp(logpdf) * ((hi - lo)[:, None] * w[None, :])
        return pi, np.nan_to_num(dens)

    def prob_hr_below(self, a: int, b: int, bound: float = 1.0) -> np.ndarray:
        """``P(HR_{a:b} < bound)`` per data set (``a`` and ``b`` in one shape group)."""
        grp, i = self._of(a)
        grp_b, k = self._of(b)
        if grp_b is not grp:
            raise ValueError("a hazard ratio needs two arms of one shape group")
        # P(eta_a - eta_b < log r) = int f_b(y) F_a(y + log r) dy, trapezoid on b's grid
        t, n_s = grp["t_s"]
        wb = grp["f"][k].reshape(t, n_s, -1) * grp["h"][:, :, k, None]
        xb = grp["x0"][:, :, k, None] + grp["h"][:, :, k, None] * np.arange(self.batch.grid)
        fa = _cdf(grp, i, xb + np.log(bound))
        return np.sum(grp["is"] * np.sum(wb * fa, -1), axis=1)
