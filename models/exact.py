"""Exact and quadrature twins of the binary models.

These compute the same posteriors as :mod:`models.binary` without sampling, to numerical
accuracy:

* Independent Beta-binomial: closed form (``scipy.stats.beta``).
* Hierarchical logistic and EXNEX: nested quadrature. The hyperparameters ``(mu, tau)`` are
  integrated on a rectangular grid (``mu`` uniform over ``±8`` prior sd, ``log tau`` uniform from
  ``1e-4`` to a high quantile of the tau prior), with trapezoid weights. Given ``(mu, tau)`` the
  arms are independent; each arm's 1-D integral over ``delta_k`` uses a standardised grid centred
  at the conditional posterior mode (found by Newton steps: the integrand is log-concave), which
  makes the trapezoid rule spectrally accurate.

They serve as the independent check of every MCMC fit in the tests, and as the fast engine of
the operating-characteristics simulator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import numpy.typing as npt
from scipy import special, stats

if TYPE_CHECKING:  # models.binary imports this module
    from models.binary import (
        BinaryData,
        Exnex,
        HierarchicalLogistic,
        IndependentBetaBinomial,
        IndependentLogitNormal,
    )

    BinaryModel: TypeAlias = IndependentBetaBinomial | IndependentLogitNormal | HierarchicalLogistic | Exnex


@dataclass(frozen=True)
class ExactSummary:
    """Posterior summaries per arm: mean rate and ``P(p_k > threshold_k)``.

    Optional fields: ``prob_exchangeable`` (EXNEX: posterior probability that the arm belongs to
    an exchangeable component), ``var`` (posterior variance of ``p_k``) and ``prob_component``
    (EXNEX with several exchangeable components: ``(K, C)`` posterior membership probabilities).
    """

    mean: np.ndarray
    prob_above: np.ndarray
    prob_exchangeable: np.ndarray | None = None
    var: np.ndarray | None = None
    prob_component: np.ndarray | None = None


def _var(s: ExactSummary) -> np.ndarray:
    """The posterior variances of a summary that computes them (every summary of this module)."""
    if s.var is None:
        raise ValueError("this summary has no posterior variances")
    return s.var


def beta_binomial_summary(a: npt.ArrayLike, b: npt.ArrayLike, thresholds: npt.ArrayLike) -> ExactSummary:
    """Independent Beta posterior ``Beta(a, b)``: mean ``a/(a+b)``, variance and ``1 - F(threshold)``."""
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    return ExactSummary(
        mean=a / (a + b),
        prob_above=stats.beta.sf(np.asarray(thresholds), a, b),
        var=a * b / ((a + b) ** 2 * (a + b + 1.0)),
    )


def _log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


@dataclass(frozen=True)
class Conditional:
    """Integrals of one arm's ``delta`` given a ``Normal(mu, sd)`` prior and binomial data.

    ``log_l``: log marginal likelihood (without the binomial coefficient); ``mean``/``m2``: first
    two moments of ``p = expit(off + delta)``; ``prob_above[..., j]``: ``P(delta > thr_j)``;
    ``mode``/``scale``: centre and width of the standardised grid the integrals used;
    ``density``: the normalised density at the standardised nodes (last axis).
    """

    log_l: np.ndarray
    mean: np.ndarray
    m2: np.ndarray
    prob_above: np.ndarray
    mode: np.ndarray
    scale: np.ndarray
    density: np.ndarray | None = None


def cumulative_simpson(f: np.ndarray, du: float | np.ndarray) -> np.ndarray:
    """Cumulative integral of ``f`` (uniform spacing ``du``, last axis), fourth-order accurate.

    Even nodes by composite Simpson from the start; the first odd node by the three-point
    formula ``du (5 f0 + 8 f1 - f2) / 12``, later odd nodes by Simpson from it.

    Kept instead of ``scipy.integrate.cumulative_simpson`` (issue 17): scipy gives the same even
    nodes but takes each odd node from half of its pair's parabola (and the last interval of an
    even-length grid from a backward one), which is 3-6 times less accurate there; tail
    probabilities of the hierarchical / EXNEX quadrature would move by up to 3e-6 and the memo's
    and simulator's golden numbers with them. :func:`decision_rules.beta._cumulative_simpson` is the
    same rule (``decision_rules`` may not import ``models``, nor ``models`` ``decision_rules``);
    ``tests/test_quadrature.py`` pins both against scipy and the exact Beta CDF.
    """
    step = np.asarray(du, float)  # scalar, or broadcastable to f[..., 0]
    out = np.empty_like(f)
    out[..., 0] = 0.0
    first = step * (5.0 * f[..., 0] + 8.0 * f[..., 1] - f[..., 2]) / 12.0
    seg = step[..., None] * (f[..., :-2] + 4.0 * f[..., 1:-1] + f[..., 2:]) / 3.0  # over [k-2, k]
    out[..., 2::2] = np.cumsum(seg[..., 0::2], axis=-1)
    out[..., 1::2] = (
        first[..., None]
        + np.concatenate([np.zeros_like(first)[..., None], np.cumsum(seg[..., 1::2], axis=-1)], axis=-1)[
            ..., : out[..., 1::2].shape[-1]
        ]
    )
    return out


def hermite_cdf(
    cdf: np.ndarray, dens: np.ndarray, du: float, half_width: float, pos: np.ndarray
) -> np.ndarray:
    """CDF at standardised positions ``pos`` from node values of the CDF and density.

    ``cdf`` and ``dens`` have the node axis last (uniform nodes on ``[-half_width, half_width]``
    with spacing ``du``); ``pos`` broadcasts against ``cdf[..., 0]`` with an extra trailing axis
    of query points. Cubic Hermite interpolation (the CDF's derivative is the density).
    """
    n_nodes = cdf.shape[-1]
    x = np.clip((pos + half_width) / du, 0.0, n_nodes - 1.0)
    i0 = np.minimum(x.astype(np.int64), n_nodes - 2)
    s = x - i0
    c0 = np.take_along_axis(cdf, i0, -1)
    c1 = np.take_along_axis(cdf, i0 + 1, -1)
    f0 = np.take_along_axis(dens, i0, -1)
    f1 = np.take_along_axis(dens, i0 + 1, -1)
    s2 = s * s
    s3 = s2 * s
    return (
        (2 * s3 - 3 * s2 + 1) * c0
        + (s3 - 2 * s2 + s) * du * f0
        + (-2 * s3 + 3 * s2) * c1
        + (s3 - s2) * du * f1
    )


def conditional_integrals(
    n: npt.ArrayLike,
    y: npt.ArrayLike,
    off: npt.ArrayLike,
    mu: npt.ArrayLike,
    sd: npt.ArrayLike,
    thr: npt.ArrayLike,
    n_nodes: int = 161,
    half_width: float = 9.0,
) -> Conditional:
    """Per-arm integrals over ``delta`` under the prior ``Normal(mu, sd)``.

    Shapes: ``n, y, off`` broadcast to ``(K,)``; ``thr`` to ``(K, J)`` (thresholds on the delta
    scale); ``mu, sd`` broadcast against ``(..., 1)``. Returned arrays have shape
    ``broadcast(mu, sd) + (K,)`` (``prob_above``: ``+ (K, J)``).

    The integrand is log-concave: its mode is found by Newton steps, and a uniform grid of
    ``n_nodes`` standardised nodes over ``±half_width`` local standard deviations makes the
    trapezoid rule spectrally accurate for the integrals; tail probabilities use the cumulative
    Simpson rule with cubic Hermite interpolation (error ~1e-6 at the default settings).
    """
    n = np.asarray(n, float)
    y = np.asarray(y, float)
    off = np.asarray(off, float)
    mu = np.asarray(mu, float)[..., None]
    sd = np.asarray(sd, float)[..., None]
    shape = np.broadcast_shapes(mu.shape, sd.shape, n.shape, off.shape)
    prec = 1.0 / sd**2
    # Newton iterations for the mode of f(d) = loglik(d) + log N(d; mu, sd); f is concave. Start
    # from the precision-weighted mean of the prior and the (smoothed) likelihood mode.
    lik_mode = special.logit((y + 0.5) / (n + 1.0)) - off
    lik_prec = (y + 0.5) * (n - y + 0.5) / (n + 1.0)
    d = (mu * prec + lik_mode * lik_prec) / (prec + lik_prec)
    d = np.broadcast_to(d, shape).copy()
    for _ in range(60):
        s = special.expit(off + d)
        g = y - n * s - (d - mu) * prec
        h = -(n * s * (1.0 - s)) - prec
        step = -g / h
        d = d + np.clip(step, -2.0, 2.0)
        if np.max(np.abs(step)) < 1e-9:
            break
    s = special.expit(off + d)
    scale = 1.0 / np.sqrt(n * s * (1.0 - s) + prec)
    u = np.linspace(-half_width, half_width, n_nodes)
    du = u[1] - u[0]
    nodes = d[..., None] + scale[..., None] * u  # (..., K, nodes)
    eta = off[..., None] + nodes
    log_p = special.log_expit(eta)
    # log(1 - p) = log p - eta
    logf = (
        n[..., None] * log_p
        - (n - y)[..., None] * eta
        - 0.5 * ((nodes - mu[..., None]) ** 2) * prec[..., None]
        - 0.5 * np.log(2 * np.pi)
        - np.log(sd[..., None])
    )
    m = logf.max(axis=-1, keepdims=True)
    f = np.exp(logf - m)
    wts = np.full(n_nodes, du)
    wts[[0, -1]] *= 0.5
    integral = (f * wts).sum(-1)
    log_l = np.log(integral) + m[..., 0] + np.log(scale)
    post = f * wts / integral[..., None]
    p = np.exp(log_p)
    mean_p = (post * p).sum(-1)
    m2_p = (post * p * p).sum(-1)
    dens = f / integral[..., None]  # density in standardised units u
    cdf = cumulative_simpson(dens, du)
    thr = np.asarray(thr, float)
    if thr.ndim < 2:
        thr = np.broadcast_to(thr.reshape(-1, 1) if thr.ndim == 1 else thr, (shape[-1], 1))
    pos = (thr - d[..., None]) / scale[..., None]  # (..., K, J)
    below = hermite_cdf(cdf, dens, du, half_width, pos)
    prob_above = np.clip(1.0 - below, 0.0, 1.0)
    return Conditional(log_l, mean_p, m2_p, prob_above, d, scale, dens)


TAU_DISTS = ("half_normal", "half_cauchy", "inverse_gamma")
#: inverse-gamma tau grid: from the ``IG_TAIL`` quantile of tau to the ``1 - IG_TAIL`` quantile,
#: the latter capped at ``IG_TAU_CAP`` (a between-arm sd of 1000 on the log-odds scale)
IG_TAIL = 1e-6
IG_TAU_CAP = 1e3


def check_tau_prior(
    tau_dist: str, tau_scale: float, tau_shape: float | None = None, where: str = "tau"
) -> None:
    """Raise ``ValueError`` unless ``(tau_dist, tau_scale, tau_shape)`` is a valid tau prior.

    ``half_normal`` and ``half_cauchy`` take a scale of ``tau``; ``inverse_gamma`` is
    ``tau^2 ~ InverseGamma(shape a, scale b)`` with ``tau_shape = a`` and ``tau_scale = b``.
    """
    if tau_dist not in TAU_DISTS:
        raise ValueError(f"{where}: unknown tau prior {tau_dist!r}; use one of {', '.join(TAU_DISTS)}")
    if not (np.isfinite(tau_scale) and tau_scale > 0):
        raise ValueError(f"{where}: tau_scale must be a positive number, got {tau_scale!r}")
    if tau_dist == "inverse_gamma":
        if tau_shape is None or not (np.isfinite(tau_shape) and tau_shape > 0):
            raise ValueError(
                f"{where}: tau_dist='inverse_gamma' needs tau_shape (the shape a of "
                f"tau^2 ~ InverseGamma(a, b)) > 0, got {tau_shape!r}; tau_scale is b"
            )


def _tau_range(tau_dist, tau_scale, tau_shape=None, tau_min=1e-3) -> tuple[float, float]:
    """Lowest and highest node of the log-uniform tau grid.

    Half-normal: ``tau_min * scale`` to ``6 * scale``; half-Cauchy: ``tau_min * scale`` to
    ``2000 * scale``; inverse gamma: the ``IG_TAIL`` and ``1 - IG_TAIL`` quantiles of
    ``tau = sqrt(tau^2)``, the upper one capped at ``IG_TAU_CAP`` (heavy-tailed priors such as
    ``IG(0.001, 0.001)`` put most of their mass above it; the likelihood of ``K`` arms falls
    like ``tau^-K`` there, so that mass carries negligible posterior weight and is dropped).
    """
    check_tau_prior(tau_dist, tau_scale, tau_shape)
    if tau_dist == "half_normal":
        return tau_min * tau_scale, 6.0 * tau_scale
    if tau_dist == "half_cauchy":
        return tau_min * tau_scale, 2000.0 * tau_scale
    dist = stats.invgamma(tau_shape, scale=tau_scale)
    with np.errstate(divide="ignore"):
        lo = float(np.sqrt(dist.ppf(IG_TAIL)))
        hi = float(np.sqrt(dist.isf(IG_TAIL)))
    hi = min(hi, max(IG_TAU_CAP, 100.0 * lo)) if np.isfinite(hi) else max(IG_TAU_CAP, 100.0 * lo)
    return lo, hi


def _tau_log_density_cdf(tau, tau_dist, tau_scale, tau_shape=None):
    """Log density of ``log tau`` at ``tau`` and the CDF of tau at ``tau``."""
    tau = np.asarray(tau, float)
    if tau_dist == "inverse_gamma":
        dist = stats.invgamma(tau_shape, scale=tau_scale)
        # tau^2 has density g; tau has density 2 tau g(tau^2); log tau has density 2 tau^2 g(tau^2)
        return dist.logpdf(tau**2) + np.log(2.0) + 2.0 * np.log(tau), dist.cdf(tau**2)
    dist = stats.halfnorm(scale=tau_scale) if tau_dist == "half_normal" else stats.halfcauchy(scale=tau_scale)
    return dist.logpdf(tau) + np.log(tau), dist.cdf(tau)


def _hyper_grid(
    mu_mean,
    mu_sd,
    tau_dist,
    tau_scale,
    n_mu=241,
    n_tau=121,
    mu_halfwidth=8.0,
    tau_min=1e-3,
    mu_knots=(),
    tau_shape=None,
):
    """Rectangular grid over ``(mu, tau)`` with log prior cell masses.

    ``mu`` is uniform over ``mu_mean ± mu_halfwidth * mu_sd``, plus ``mu_knots``: at small ``tau``
    the conditional ``P(delta_k > c | mu, tau)`` is nearly a step at ``mu = c``, and the trapezoid
    rule integrates a step accurately only when the step sits on a node, so every threshold ``c``
    (on the delta scale) is made a node (a uniform node closer than a third of the spacing is moved
    onto it). ``tau`` is uniform in ``log tau`` between the limits of :func:`_tau_range` (for the
    half-normal and half-Cauchy priors from ``tau_min * tau_scale`` to a high prior quantile); the
    prior mass below the lowest ``tau`` (where every conditional quantity has reached its
    ``tau -> 0`` limit) is added to the lowest cell rather than dropped.
    """
    mu = np.linspace(mu_mean - mu_halfwidth * mu_sd, mu_mean + mu_halfwidth * mu_sd, n_mu)
    h = mu[1] - mu[0]
    for knot in np.unique(np.asarray(mu_knots, float)):
        if not (mu[0] < knot < mu[-1]):
            continue
        i = int(np.argmin(np.abs(mu - knot)))
        if abs(mu[i] - knot) < h / 3 and 0 < i < len(mu) - 1:
            mu[i] = knot
        else:
            mu = np.sort(np.append(mu, knot))
    n_mu = len(mu)
    lo, hi = _tau_range(tau_dist, tau_scale, tau_shape, tau_min)
    tau = np.exp(np.linspace(np.log(lo), np.log(hi), n_tau))
    w_mu = np.zeros(n_mu)  # trapezoid weights of a possibly non-uniform grid
    gaps = np.diff(mu)
    w_mu[:-1] += gaps / 2
    w_mu[1:] += gaps / 2
    log_prior = (
        stats.norm.logpdf(mu, mu_mean, mu_sd)[:, None]
        + _tau_cell_log_mass(tau, tau_dist, tau_scale, tau_shape)[None, :]
        + np.log(w_mu)[:, None]
    )
    return mu, tau, log_prior


def _tau_cell_log_mass(tau, tau_dist, tau_scale, tau_shape=None):
    """Log prior mass of each cell of a log-uniform tau grid (as in :func:`_hyper_grid`).

    The mass of a cell is the density of ``log tau`` at its node times its trapezoid weight in
    ``log tau``; the mass below the lowest node is added to the lowest cell.
    """
    check_tau_prior(tau_dist, tau_scale, tau_shape)
    log_tau = np.log(tau)
    w = np.full(len(tau), log_tau[1] - log_tau[0])
    w[[0, -1]] *= 0.5
    log_dens, cdf = _tau_log_density_cdf(tau, tau_dist, tau_scale, tau_shape)
    mass = np.exp(log_dens) * w
    mass[0] += cdf[0]
    with np.errstate(divide="ignore"):
        return np.log(mass)


def _delta_marginals(
    n,
    y,
    off,
    thr,
    mu,
    tau,
    log_l,
    *,
    mu_mean,
    mu_sd,
    tau_dist,
    tau_scale,
    tau_shape=None,
    wk=None,
    log_l_nex=None,
    nex_mean=0.0,
    nex_sd=2.0,
    n_gh=40,
):
    """Marginal posterior of each ``delta_k``, integrating ``mu`` first for every ``(tau, delta_k)``.

    Conditioning on ``(mu, tau)`` makes ``P(delta_k > c | mu, tau)`` a near step function of
    ``mu`` when ``tau`` is small, which a ``mu`` grid cannot integrate accurately. Here, for each
    ``tau`` level and each arm ``k``, the other arms' likelihoods and the ``mu`` prior form a smooth
    function ``S(mu)``; the prior of ``delta_k`` given ``tau`` is its convolution with
    ``N(0, tau)``: a trapezoid sum over the ``mu`` grid when ``tau`` spans several grid steps,
    otherwise Gauss-Hermite nodes on a cubic spline of ``S``. The marginal of ``delta_k`` then lives
    on a fine uniform grid, where tail probabilities come from the cumulative Simpson rule.

    Returns ``(mean_p, prob_above, m2_p)``, each ``(K,)`` (``m2_p``: ``E[p_k^2]``).
    """
    from scipy.interpolate import CubicSpline

    k_arms = len(n)
    h = mu[1] - mu[0]
    w_mu = np.full(len(mu), h)
    w_mu[[0, -1]] *= 0.5
    log_pmu = stats.norm.logpdf(mu, mu_mean, mu_sd)
    log_tau_mass = _tau_cell_log_mass(tau, tau_dist, tau_scale, tau_shape)
    d_grid = np.linspace(-12.0, 12.0, 2401)
    dd = d_grid[1] - d_grid[0]
    gh_x, gh_w = np.polynomial.hermite.hermgauss(n_gh)
    # per-arm total log-likelihood contributions (mixtures for EXNEX) on the (mu, tau) grid
    if wk is None:
        contrib = log_l
    else:
        with np.errstate(divide="ignore"):
            contrib = np.logaddexp(np.log(wk) + log_l, np.log1p(-wk) + log_l_nex)
    total = contrib.sum(-1)  # (n_mu, n_tau)
    mean_out = np.empty(k_arms)
    m2_out = np.empty(k_arms)
    prob_out = np.empty(k_arms)
    for k in range(k_arms):
        lik = y[k] * _log_sigmoid(off[k] + d_grid) + (n[k] - y[k]) * _log_sigmoid(-off[k] - d_grid)
        log_post = np.full((len(tau), len(d_grid)), -np.inf)
        for t, tv in enumerate(tau):
            s_mu = log_pmu + total[:, t] - contrib[:, t, k]  # S(mu): prior x other arms
            smax = s_mu.max()
            if tv >= 3 * h:
                kern = stats.norm.logpdf(d_grid[:, None], mu[None, :], tv) + np.log(w_mu)
                log_c = special.logsumexp(kern + (s_mu - smax), axis=1)
            else:
                spline = CubicSpline(mu, s_mu - smax, extrapolate=True)
                pts = d_grid[:, None] - np.sqrt(2.0) * tv * gh_x[None, :]
                vals = spline(np.clip(pts, mu[0], mu[-1]))
                vals = np.where((pts < mu[0]) | (pts > mu[-1]), -np.inf, vals)
                log_c = special.logsumexp(vals + np.log(gh_w / np.sqrt(np.pi)), axis=1)
            log_c = log_c + smax
            if wk is not None:
                log_z = special.logsumexp(s_mu + np.log(w_mu))  # mass of S: the NEX branch
                nex = stats.norm.logpdf(d_grid, nex_mean, nex_sd) + log_z
                with np.errstate(divide="ignore"):
                    log_c = np.logaddexp(np.log(wk[k]) + log_c, np.log1p(-wk[k]) + nex)
            log_post[t] = log_tau_mass[t] + log_c + lik
        m = log_post.max()
        dens = np.exp(log_post - m).sum(0)
        wts = np.full(len(d_grid), dd)
        wts[[0, -1]] *= 0.5
        z = (dens * wts).sum()
        dens /= z
        p_grid = special.expit(off[k] + d_grid)
        mean_out[k] = (dens * wts * p_grid).sum()
        m2_out[k] = (dens * wts * p_grid**2).sum()
        cdf = cumulative_simpson(dens, dd)
        pos = (thr[k] - d_grid[0]) / dd
        i0 = int(np.clip(np.floor(pos), 0, len(d_grid) - 2))
        sfrac = float(np.clip(pos - i0, 0.0, 1.0))
        below = (
            (2 * sfrac**3 - 3 * sfrac**2 + 1) * cdf[i0]
            + (sfrac**3 - 2 * sfrac**2 + sfrac) * dd * dens[i0]
            + (-2 * sfrac**3 + 3 * sfrac**2) * cdf[i0 + 1]
            + (sfrac**3 - sfrac**2) * dd * dens[i0 + 1]
        )
        prob_out[k] = float(np.clip(1.0 - below, 0.0, 1.0))
    return mean_out, prob_out, m2_out


def hierarchical_summary(
    n: npt.ArrayLike,
    y: npt.ArrayLike,
    null_rate: npt.ArrayLike,
    *,
    mu_mean: float = 0.0,
    mu_sd: float = 1.0,
    tau_dist: str = "half_normal",
    tau_scale: float = 0.5,
    thresholds: npt.ArrayLike | None = None,
    w: npt.ArrayLike | None = None,
    nex_mean: float = 0.0,
    nex_sd: float = 2.0,
    n_mu: int = 121,
    n_tau: int = 61,
    tau_shape: float | None = None,
) -> ExactSummary:
    """Posterior of the hierarchical logistic (``w=None``) or EXNEX model by quadrature.

    Parameters
    ----------
    n, y, null_rate
        Per-arm data and null rates (the model's offsets).
    thresholds
        Rates ``c_k``; returns ``P(p_k > c_k)``. Defaults to the null rates.
    w
        EXNEX prior probability of exchangeability (scalar or per arm); ``None`` for the plain
        hierarchical model. ``w = 0`` and ``w = 1`` are allowed (per arm too).
    tau_dist, tau_scale, tau_shape
        Prior of ``tau``: ``half_normal`` / ``half_cauchy`` with scale ``tau_scale``, or
        ``inverse_gamma``: ``tau^2 ~ InverseGamma(tau_shape, tau_scale)``.

    Returns
    -------
    ExactSummary
        ``mean``, ``var`` (posterior variance of ``p_k``), ``prob_above`` and, for EXNEX,
        ``prob_exchangeable``.
    """
    n = np.asarray(n, float)
    y = np.asarray(y, float)
    off = special.logit(np.asarray(null_rate, float))
    thr_rate = np.asarray(null_rate if thresholds is None else thresholds, float)
    thr = special.logit(thr_rate) - off  # threshold on the delta scale
    mu, tau, log_prior = _hyper_grid(mu_mean, mu_sd, tau_dist, tau_scale, n_mu, n_tau, tau_shape=tau_shape)
    c = conditional_integrals(n, y, off, mu[:, None], tau[None, :], thr[:, None])
    log_l, mean_p, p_above = c.log_l, c.mean, c.prob_above[..., 0]  # (n_mu, n_tau, K)
    common = dict(mu_mean=mu_mean, mu_sd=mu_sd, tau_dist=tau_dist, tau_scale=tau_scale, tau_shape=tau_shape)
    if w is None:
        mean, prob, m2 = _delta_marginals(n, y, off, thr, mu, tau, log_l, **common)
        return ExactSummary(mean=mean, prob_above=prob, var=np.maximum(m2 - mean**2, 0.0))
    wk = np.broadcast_to(np.asarray(w, float), n.shape)
    del mean_p, p_above
    cn = conditional_integrals(
        n, y, off, np.asarray(nex_mean, float), np.asarray(nex_sd, float), thr[:, None]
    )
    log_l_nex = cn.log_l  # (K,)
    with np.errstate(divide="ignore"):
        a = np.log(wk) + log_l
        b = np.log1p(-wk) + log_l_nex
    log_mix = np.logaddexp(a, b)
    pi_ex = np.exp(a - log_mix)
    log_joint = log_prior + log_mix.sum(-1)
    weights = np.exp(log_joint - log_joint.max())
    weights /= weights.sum()
    prob_ex = np.einsum("ij,ijk->k", weights, pi_ex)
    mean, prob, m2 = _delta_marginals(
        n,
        y,
        off,
        thr,
        mu,
        tau,
        log_l,
        **common,
        wk=wk,
        log_l_nex=log_l_nex,
        nex_mean=nex_mean,
        nex_sd=nex_sd,
    )
    return ExactSummary(
        mean=mean, prob_above=prob, prob_exchangeable=prob_ex, var=np.maximum(m2 - mean**2, 0.0)
    )


# ============================================================================= EXNEX, several components
def _component_fields(c) -> dict:
    """The fields of an exchangeable component (an object with attributes, or a mapping)."""
    keys = ("mu_mean", "mu_sd", "tau_dist", "tau_scale", "tau_shape", "w")
    get = c.get if isinstance(c, dict) else (lambda k, default=None: getattr(c, k, default))
    out = {k: get(k, None) for k in keys}
    out["mu_mean"] = 0.0 if out["mu_mean"] is None else out["mu_mean"]
    out["mu_sd"] = 1.0 if out["mu_sd"] is None else out["mu_sd"]
    out["tau_dist"] = out["tau_dist"] or "half_normal"
    out["tau_scale"] = 0.5 if out["tau_scale"] is None else out["tau_scale"]
    return out


def component_weights(components: Sequence[Any], k_arms: int) -> tuple[np.ndarray, np.ndarray]:
    """Prior weights ``(C, K)`` of the exchangeable components and ``(K,)`` of non-exchangeability.

    Each component's ``w`` is a scalar or one value per arm in ``[0, 1]``; the non-exchangeable
    weight ``1 - sum_c w_c`` must be ``>= 0`` (up to ``1e-9``; exactly 0 is allowed).
    """
    rows = []
    for i, c in enumerate(components):
        w = _component_fields(c)["w"]
        if w is None:
            raise ValueError(f"exchangeable component {i} has no prior weight w")
        w = np.asarray(w, float)
        if w.ndim > 1 or (w.ndim == 1 and w.shape != (k_arms,)):
            raise ValueError(
                f"exchangeable component {i}: w must be a scalar or one value per arm ({k_arms}), "
                f"got shape {w.shape}"
            )
        rows.append(np.broadcast_to(w, (k_arms,)))
    w_ex = np.array(rows, float).reshape(len(rows), k_arms)
    if np.any(~np.isfinite(w_ex)) or np.any((w_ex < 0) | (w_ex > 1)):
        raise ValueError(f"EXNEX weights must lie in [0, 1], got {w_ex.tolist()}")
    total = w_ex.sum(0)
    if np.any(total > 1.0 + 1e-9):
        bad = [int(k) for k in np.flatnonzero(total > 1.0 + 1e-9)]
        raise ValueError(
            f"EXNEX weights of the exchangeable components sum to more than 1 for arm(s) {bad} "
            f"(sums {total[bad].round(6).tolist()}); the non-exchangeable weight 1 - sum(w) must be >= 0"
        )
    return w_ex, np.clip(1.0 - total, 0.0, 1.0)


def _auto_n_mu(n, y, mu_sd, mu_halfwidth, base: int) -> int:
    """``mu`` nodes so that the spacing is at most 0.7 posterior sds of ``mu`` at full pooling.

    The grid spans the prior (``± mu_halfwidth`` prior sds), but the trapezoid rule needs a
    spacing below about one posterior sd of ``mu``; with much data the posterior is narrow. Its sd
    is at least ``1 / sqrt(I)`` with ``I = 1 / mu_sd^2 + sum_k n_k p_k (1 - p_k)`` the information
    about ``mu`` if every arm shared it (``tau = 0``), ``p_k`` the smoothed observed rates.
    """
    p = (np.asarray(y, float) + 0.5) / (np.asarray(n, float) + 1.0)
    info = 1.0 / mu_sd**2 + float(np.sum(np.asarray(n, float) * p * (1.0 - p)))
    needed = int(np.ceil(2.0 * mu_halfwidth * mu_sd * np.sqrt(info) / 0.7)) + 1
    return max(base, needed + (needed + 1) % 2)  # odd: the prior mean stays a node


def _enumeration_size(c_count: int, k_arms: int) -> int:
    """Number of membership assignments (every arm in one of C components or NEX)."""
    return (c_count + 1) ** k_arms


def exnex_summary(
    n: npt.ArrayLike,
    y: npt.ArrayLike,
    null_rate: npt.ArrayLike,
    components: Sequence[Any],
    *,
    nex_mean: float = 0.0,
    nex_sd: float = 2.0,
    thresholds: npt.ArrayLike | None = None,
    n_mu: int | None = None,
    n_tau: int | None = None,
    mu_halfwidth: float = 8.0,
    method: str = "auto",
    max_points: int = 50_000_000,
) -> ExactSummary:
    """Posterior of EXNEX with one or more exchangeable components, by quadrature.

    Component ``c`` has ``mu_c ~ Normal(mu_mean, mu_sd)``, its own tau prior (as in
    :func:`hierarchical_summary`) and prior weight ``w_c`` (scalar or per arm); an arm is
    non-exchangeable (``delta_k ~ Normal(nex_mean, nex_sd)``) with weight ``1 - sum_c w_c``.

    Each component's ``(mu_c, tau_c)`` lives on its own ``n_mu x n_tau`` grid
    (:func:`_hyper_grid`, thresholds as ``mu`` knots) and every arm's conditional integrals given
    each grid point are computed once (:func:`conditional_integrals`). Given all hyperparameters
    the arms are independent, so two algebraically identical sums are available:

    * ``method="product"``: the hyper grid is the product of the component grids; each arm
      contributes ``log(sum_c w_kc L_kc(theta_c) + w_k,nex L_k,nex)`` and its posterior
      quantities are the mixtures of the conditional ones with the membership
      responsibilities. Work grows like ``(n_mu n_tau)^C K``: for ``C >= 2`` keep the grids coarse
      (default 41 x 21 per component).
    * ``method="enumerate"``: expand the product over arms into a sum over membership
      assignments (each arm in one component or NEX, ``(C + 1)^K`` of them); given an assignment
      the components are independent, so each needs only sums over its own grid for the subset
      of arms it holds (``2^K`` subsets per component). Work grows like ``(C + 1)^K K`` and
      ``C 2^K n_mu n_tau K``: cheap for the arm counts of a platform trial, with the fine
      one-component grid (default 161 x 41).

    ``"auto"`` takes the product for one component and the enumeration for several while
    ``(C + 1)^K K <= 2e7``. The tests check that both give the same numbers on the same grid.

    Unlike :func:`hierarchical_summary` (which integrates ``mu`` first for each ``delta_k``), tail
    probabilities are averaged over the ``mu`` grid directly, so at small ``tau`` they are slightly
    less accurate (about 1e-4 on the default 161 x 41 grid, 3e-3 on 41 x 21); means and variances
    are smooth in ``mu`` and accurate to about 1e-6.

    Parameters
    ----------
    components
        Objects (or mappings) with ``mu_mean, mu_sd, tau_dist, tau_scale, tau_shape, w``, e.g.
        :class:`models.binary.ExComponent`.
    n_mu, n_tau, mu_halfwidth
        Grid of each component: ``n_mu`` points over ``mu_mean ± mu_halfwidth * mu_sd`` (plus the
        thresholds as knots) and ``n_tau`` points uniform in ``log tau``. By default ``n_mu`` is
        161 (41 for the product of several components), more when the data are so many that the
        posterior of ``mu`` is narrower than the spacing would resolve (:func:`_auto_n_mu`).
    method
        ``"auto"``, ``"product"`` or ``"enumerate"``.
    max_points
        The product method refuses grids of more than ``max_points`` points x arms.

    Returns
    -------
    ExactSummary
        ``mean``, ``var``, ``prob_above``, ``prob_exchangeable`` (summed over the components) and
        ``prob_component`` ``(K, C)``.
    """
    n = np.asarray(n, float)
    y = np.asarray(y, float)
    off = special.logit(np.asarray(null_rate, float))
    k_arms = len(n)
    thr_rate = np.asarray(null_rate if thresholds is None else thresholds, float)
    thr = np.broadcast_to(special.logit(thr_rate) - off, (k_arms,))
    comps = [_component_fields(c) for c in components]
    c_count = len(comps)
    if c_count == 0:
        raise ValueError("EXNEX needs at least one exchangeable component")
    w_ex, w_nex = component_weights(components, k_arms)
    if method == "auto":
        small = _enumeration_size(c_count, k_arms) * k_arms <= 20_000_000
        method = "product" if c_count == 1 or not small else "enumerate"
    if method not in ("product", "enumerate"):
        raise ValueError(f"unknown method {method!r}; use 'auto', 'product' or 'enumerate'")
    coarse = method == "product" and c_count > 1
    n_tau = int(n_tau if n_tau is not None else (21 if coarse else 41))
    grids = []
    for i, c in enumerate(comps):
        check_tau_prior(c["tau_dist"], c["tau_scale"], c["tau_shape"], where=f"component {i}")
        n_mu_c = (
            int(n_mu)
            if n_mu is not None
            else _auto_n_mu(n, y, c["mu_sd"], mu_halfwidth, 41 if coarse else 161)
        )
        mu, tau, log_prior = _hyper_grid(
            c["mu_mean"], c["mu_sd"], c["tau_dist"], c["tau_scale"], n_mu_c, n_tau,
            mu_halfwidth=mu_halfwidth, mu_knots=thr, tau_shape=c["tau_shape"],
        )  # fmt: skip
        ci = conditional_integrals(n, y, off, mu[:, None], tau[None, :], thr[:, None])
        g = log_prior.size
        q = np.stack(
            [ci.mean.reshape(g, k_arms), ci.m2.reshape(g, k_arms), ci.prob_above[..., 0].reshape(g, k_arms)]
        )
        grids.append((log_prior.reshape(g), ci.log_l.reshape(g, k_arms), q))
    cn = conditional_integrals(
        n, y, off, np.asarray(nex_mean, float), np.asarray(nex_sd, float), thr[:, None]
    )
    q_nex = np.stack([cn.mean, cn.m2, cn.prob_above[..., 0]])  # (3, K)
    with np.errstate(divide="ignore"):
        log_w = np.log(w_ex)  # (C, K)
        log_w_nex = np.log(w_nex) + cn.log_l  # (K,): NEX weight x likelihood
    if method == "product":
        acc, prob_component = _exnex_product(grids, log_w, log_w_nex, q_nex, max_points)
    else:
        acc, prob_component = _exnex_enumerate(grids, log_w, log_w_nex, q_nex)
    mean, m2, prob = acc[0], acc[1], np.clip(acc[2], 0.0, 1.0)
    return ExactSummary(
        mean=mean,
        prob_above=prob,
        prob_exchangeable=prob_component.sum(1),
        var=np.maximum(m2 - mean**2, 0.0),
        prob_component=prob_component,
    )


def _exnex_product(grids, log_w, log_w_nex, q_nex, max_points):
    """Posterior averages over the product of the component grids (chunked, running max)."""
    c_count, k_arms = log_w.shape
    sizes = [gr[0].size for gr in grids]
    total = int(np.prod(sizes, dtype=np.float64))
    if total * k_arms > max_points:
        raise ValueError(
            f"product grid of {total} points x {k_arms} arms is too large (max_points={max_points}); "
            "use coarser n_mu / n_tau or method='enumerate'"
        )
    chunk = max(1, 1_000_000 // (k_arms * (c_count + 1)))
    run_max = -np.inf
    z = 0.0
    acc = np.zeros((3, k_arms))  # mean, m2, prob_above
    acc_comp = np.zeros((k_arms, c_count))
    for start in range(0, total, chunk):
        idx = np.unravel_index(np.arange(start, min(total, start + chunk)), sizes)
        b = len(idx[0])
        terms = np.empty((b, k_arms, c_count + 1))
        lp = np.zeros(b)
        for c, (lpr, ll, _) in enumerate(grids):
            lp += lpr[idx[c]]
            terms[:, :, c] = log_w[c] + ll[idx[c]]
        terms[:, :, c_count] = log_w_nex
        lmix = special.logsumexp(terms, axis=-1)  # (B, K)
        lw = lp + lmix.sum(-1)
        new_max = max(run_max, float(lw.max()))
        if np.isfinite(run_max):
            factor = np.exp(run_max - new_max)
            z *= factor
            acc *= factor
            acc_comp *= factor
        run_max = new_max
        wt = np.exp(lw - run_max)  # (B,)
        z += wt.sum()
        wr = wt[:, None, None] * np.exp(terms - lmix[..., None])  # weight x responsibilities
        acc_comp += wr[..., :c_count].sum(0)
        for j in range(3):
            q = np.empty((b, k_arms, c_count + 1))
            for c, gr in enumerate(grids):
                q[:, :, c] = gr[2][j][idx[c]]
            q[:, :, c_count] = q_nex[j]
            acc[j] += np.einsum("bkc,bkc->k", wr, q)
    return acc / z, acc_comp / z


def _exnex_enumerate(grids, log_w, log_w_nex, q_nex):
    """Posterior averages as a sum over membership assignments (see :func:`exnex_summary`)."""
    c_count, k_arms = log_w.shape
    bits = 1 << np.arange(k_arms)
    subsets = ((np.arange(2**k_arms)[:, None] & bits) > 0).astype(float)  # (S, K)
    log_z = np.empty((c_count, len(subsets)))  # log sum over the grid, arms of the subset in c
    cond = np.empty((c_count, 3, len(subsets), k_arms))  # E[q_kc | subset in c]
    step = max(1, 4_000_000 // grids[0][0].size)
    for c, (lpr, ll, q) in enumerate(grids):
        for s0 in range(0, len(subsets), step):
            sub = subsets[s0 : s0 + step]
            lw = lpr[None, :] + sub @ ll.T  # (s, G)
            lz = special.logsumexp(lw, axis=1)
            wts = np.exp(lw - lz[:, None])
            log_z[c, s0 : s0 + step] = lz
            for j in range(3):
                cond[c, j, s0 : s0 + step] = wts @ q[j]
    # every assignment: arm k in component a[k] (C = NEX)
    a = np.indices((c_count + 1,) * k_arms).reshape(k_arms, -1).T  # (A, K)
    log_all = np.concatenate([log_w, log_w_nex[None, :]])  # (C + 1, K)
    lw = log_all[a, np.arange(k_arms)].sum(1)
    sub_idx = np.empty((c_count, len(a)), np.int64)
    for c in range(c_count):
        sub_idx[c] = ((a == c) * bits).sum(1)
        lw = lw + log_z[c, sub_idx[c]]
    prob = np.exp(lw - lw.max())
    prob /= prob.sum()
    acc = np.zeros((3, k_arms))
    prob_component = np.zeros((k_arms, c_count))
    for k in range(k_arms):
        for c in range(c_count):
            in_c = a[:, k] == c
            pc = prob[in_c]
            prob_component[k, c] = pc.sum()
            for j in range(3):
                acc[j, k] += pc @ cond[c, j, sub_idx[c, in_c], k]
        acc[:, k] += prob[a[:, k] == c_count].sum() * q_nex[:, k]
    return acc, prob_component


# ============================================================================= independent logit-normal
def logit_normal_summary(
    n: npt.ArrayLike,
    y: npt.ArrayLike,
    null_rate: npt.ArrayLike,
    mean: npt.ArrayLike,
    sd: npt.ArrayLike,
    thresholds: npt.ArrayLike | None = None,
) -> ExactSummary:
    """Independent logit-normal posterior per arm: ``delta_k ~ Normal(mean_k, sd_k)``.

    ``logit p_k = logit(null_k) + delta_k``. Each arm is a 1-D integral over ``delta_k``
    (:func:`conditional_integrals`: Newton mode, standardised trapezoid grid, error ~1e-6).

    Parameters
    ----------
    n, y, null_rate
        Per-arm data and null rates.
    mean, sd
        Prior of ``delta_k`` (scalars or one value per arm).
    thresholds
        Rates ``c_k``; returns ``P(p_k > c_k)``. Defaults to the null rates.

    Returns
    -------
    ExactSummary
        ``mean``, ``var`` and ``prob_above`` per arm.
    """
    n = np.atleast_1d(np.asarray(n, float))
    y = np.atleast_1d(np.asarray(y, float))
    off = special.logit(np.atleast_1d(np.asarray(null_rate, float)))
    k_arms = len(n)
    m = np.broadcast_to(np.asarray(mean, float), (k_arms,))
    s = np.broadcast_to(np.asarray(sd, float), (k_arms,))
    if np.any(~(s > 0)):
        raise ValueError(f"logit-normal prior sd must be > 0, got {s.tolist()}")
    thr_rate = np.broadcast_to(np.asarray(null_rate if thresholds is None else thresholds, float), (k_arms,))
    thr = special.logit(thr_rate) - off
    out = np.empty((3, k_arms))
    for k in range(k_arms):
        c = conditional_integrals(
            n[k : k + 1],
            y[k : k + 1],
            off[k : k + 1],
            m[k],
            s[k],
            thr[k : k + 1, None],
            n_nodes=321,
            half_width=10.0,
        )
        out[:, k] = c.mean[0], c.m2[0], c.prob_above[0, 0]
    mean_p = out[0]
    return ExactSummary(
        mean=mean_p, prob_above=np.clip(out[2], 0.0, 1.0), var=np.maximum(out[1] - mean_p**2, 0.0)
    )


@dataclass(frozen=True)
class DeltaGrid:
    """One arm's posterior of ``delta`` on a fine grid: ``nodes``, ``density`` and ``cdf``."""

    nodes: np.ndarray
    density: np.ndarray
    cdf: np.ndarray

    def quantile(self, q: npt.ArrayLike) -> np.ndarray:
        """Quantiles of ``delta`` (linear interpolation of the CDF between fine nodes)."""
        return np.interp(np.asarray(q, float), self.cdf, self.nodes)


def logit_normal_grid(
    n: float,
    y: float,
    null_rate: float,
    mean: float,
    sd: float,
    *,
    n_nodes: int = 4001,
    half_width: float = 12.0,
) -> DeltaGrid:
    """Posterior of ``delta`` for one arm with prior ``Normal(mean, sd)`` on a fine uniform grid.

    The grid is centred at the posterior mode with the local (Laplace) standard deviation as unit,
    ``half_width`` units each side; the CDF is the cumulative Simpson integral of the density
    (made monotone), normalised to end at 1. Used to draw ``delta`` by inverse-CDF sampling and
    for quantiles.
    """
    off = float(special.logit(null_rate))
    n = float(n)
    y = float(y)
    c = conditional_integrals(
        np.array([n]), np.array([y]), np.array([off]), float(mean), float(sd), np.zeros((1, 1))
    )
    mode, scale = float(c.mode[0]), float(c.scale[0])
    u = np.linspace(-half_width, half_width, n_nodes)
    nodes = mode + scale * u
    eta = off + nodes
    logf = y * special.log_expit(eta) + (n - y) * special.log_expit(-eta) + stats.norm.logpdf(nodes, mean, sd)
    f = np.exp(logf - logf.max())
    cdf = np.maximum.accumulate(np.maximum(cumulative_simpson(f, (u[1] - u[0]) * scale), 0.0))
    z = cdf[-1]
    return DeltaGrid(nodes=nodes, density=f / z, cdf=cdf / z)


# ============================================================================= effective sample sizes
def beta_moment_ess(mean: npt.ArrayLike, var: npt.ArrayLike) -> np.ndarray:
    """Effective sample size of a distribution on ``(0, 1)`` by moment matching a Beta.

    A ``Beta(a, b)`` has mean ``m = a / (a + b)`` and variance ``m (1 - m) / (a + b + 1)``, so the
    Beta with the same mean and variance has ``a + b = m (1 - m) / v - 1``: the number of
    patients' worth of information the distribution carries (a Beta prior ``Beta(a, b)`` "is"
    ``a + b`` patients). This is RBesT's ``ess(method = "moment")``; Morita, Thall & Müller (2008)
    define the ESS by matching the information (curvature) of the prior instead, which gives
    similar values for unimodal priors. For a Beta the moment ESS is exactly ``a + b``.
    """
    mean = np.asarray(mean, float)
    var = np.asarray(var, float)
    return mean * (1.0 - mean) / var - 1.0


def _exnex_prior_moments(off, components, nex_mean, nex_sd, n_tau=201):
    """Prior mean and ``E[p^2]`` of every arm under EXNEX components (no data): 1-D quadrature.

    Given ``tau_c``, ``delta_k | tau_c ~ Normal(mu_mean_c, sqrt(mu_sd_c^2 + tau_c^2))`` (``mu_c``
    integrated analytically); the logit-normal moments given ``tau_c`` are integrated over the
    log-tau grid with the prior cell masses (renormalised to the grid, as the posterior grids are).
    """
    k_arms = len(off)
    zeros = np.zeros(k_arms)
    w_ex, w_nex = component_weights(components, k_arms)
    mean = np.zeros(k_arms)
    m2 = np.zeros(k_arms)
    for i, c in enumerate(components):
        f = _component_fields(c)
        lo, hi = _tau_range(f["tau_dist"], f["tau_scale"], f["tau_shape"])
        tau = np.exp(np.linspace(np.log(lo), np.log(hi), n_tau))
        mass = np.exp(_tau_cell_log_mass(tau, f["tau_dist"], f["tau_scale"], f["tau_shape"]))
        mass /= mass.sum()
        sd = np.sqrt(f["mu_sd"] ** 2 + tau**2)
        ci = conditional_integrals(
            zeros, zeros, off, np.asarray(f["mu_mean"], float), sd, np.zeros((k_arms, 1))
        )
        mean += w_ex[i] * (mass @ ci.mean)
        m2 += w_ex[i] * (mass @ ci.m2)
    cn = conditional_integrals(
        zeros, zeros, off, np.asarray(nex_mean, float), np.asarray(nex_sd, float), zeros[:, None]
    )
    mean += w_nex * cn.mean
    m2 += w_nex * cn.m2
    return mean, m2


def _model_spec(model, data):
    """``("beta", a, b)``, ``("logit_normal", mean, sd)`` or ``("exnex", components, nex_mean, nex_sd)``."""
    from models.binary import Exnex, HierarchicalLogistic, IndependentBetaBinomial, IndependentLogitNormal

    if isinstance(model, IndependentBetaBinomial):
        a, b = model.prior_ab(data)
        return ("beta", a, b)
    if isinstance(model, IndependentLogitNormal):
        m, s = model.prior_mean_sd(data)
        return ("logit_normal", m, s)
    if isinstance(model, HierarchicalLogistic):
        comp = {
            "mu_mean": model.mu_mean,
            "mu_sd": model.mu_sd,
            "tau_dist": model.tau_dist,
            "tau_scale": model.tau_scale,
            "tau_shape": model.tau_shape,
            "w": 1.0,
        }
        return ("exnex", (comp,), model.nex_mean, model.nex_sd)
    if isinstance(model, Exnex):
        return ("exnex", model.ex_components(), model.nex_mean, model.nex_sd)
    raise TypeError(f"no quadrature twin for a {type(model).__name__}")


def prior_ess(model: BinaryModel, data: BinaryData) -> np.ndarray:
    """Per arm, the moment ESS (:func:`beta_moment_ess`) of the marginal prior of ``p_k``.

    The prior is the model's before any data: ``a + b`` for the Beta-binomial model (exactly);
    for the logistic models the mean and variance of ``p_k = expit(logit(null_k) + delta_k)`` by
    quadrature (no MCMC), with ``delta_k`` a mixture over the exchangeable components (each with
    ``mu`` and ``tau`` integrated out) and the non-exchangeable prior.

    Parameters
    ----------
    model
        :class:`~models.binary.IndependentBetaBinomial`, :class:`~models.binary.IndependentLogitNormal`,
        :class:`~models.binary.HierarchicalLogistic` or :class:`~models.binary.Exnex`.
    data
        :class:`~models.binary.BinaryData` (only the arms and null rates are used).
    """
    spec = _model_spec(model, data)
    if spec[0] == "beta":
        return np.asarray(spec[1] + spec[2], float)
    off = data.offset
    if spec[0] == "logit_normal":
        k = len(off)
        s = logit_normal_summary(np.zeros(k), np.zeros(k), data.null_rate, spec[1], spec[2])
        return beta_moment_ess(s.mean, _var(s))
    mean, m2 = _exnex_prior_moments(off, spec[1], spec[2], spec[3])
    return beta_moment_ess(mean, np.maximum(m2 - mean**2, 0.0))


@dataclass(frozen=True)
class BorrowingESS:
    """How much one arm borrows, in patients (moment ESS, :func:`beta_moment_ess`).

    Attributes
    ----------
    arm
        Arm id.
    n
        The arm's own evaluable patients.
    prior_ess
        ESS of the model's prior of ``p_k`` (no data).
    effective_prior_ess
        ESS of the arm's effective prior given the *other* arms' data only (its
        meta-analytic-predictive prior); equals ``prior_ess`` for independent models.
    posterior_ess
        ESS of the arm's posterior given all data.
    """

    arm: str
    n: int
    prior_ess: float
    effective_prior_ess: float
    posterior_ess: float

    @property
    def borrowed(self) -> float:
        """``effective_prior_ess - prior_ess``: patients' worth of information from the other arms."""
        return self.effective_prior_ess - self.prior_ess


def borrowed_ess(
    model: BinaryModel, data: BinaryData, *, n_mu: int | None = None, n_tau: int | None = None
) -> tuple[BorrowingESS, ...]:
    """Per arm: prior, effective-prior (given the other arms) and posterior moment ESS.

    The effective prior of arm ``k`` is the posterior of ``p_k`` when arm ``k``'s own data are
    left out (``n_k = y_k = 0``), i.e. the predictive of ``p_k`` given the other arms: the
    meta-analytic-predictive prior of arm ``k`` (for EXNEX, with its prior weights). Everything is
    computed by quadrature (:func:`exnex_summary` on the ``n_mu x n_tau`` grid per component; a
    Beta or logit-normal arm in closed form / 1-D quadrature).

    For independent models ``effective_prior_ess == prior_ess``. A rough reading: the arm's
    posterior carries ``posterior_ess`` patients' worth of information, ``n`` of them its own.
    """
    spec = _model_spec(model, data)
    n = np.asarray(data.n, float)
    y = np.asarray(data.y, float)
    prior = prior_ess(model, data)
    k_arms = len(n)
    if spec[0] == "beta":
        eff = prior
        post = spec[1] + spec[2] + n
    elif spec[0] == "logit_normal":
        eff = prior
        s = logit_normal_summary(n, y, data.null_rate, spec[1], spec[2])
        post = beta_moment_ess(s.mean, _var(s))
    else:
        kw = dict(nex_mean=spec[2], nex_sd=spec[3], n_mu=n_mu, n_tau=n_tau)
        s = exnex_summary(n, y, data.null_rate, spec[1], **kw)
        post = beta_moment_ess(s.mean, _var(s))
        eff = np.empty(k_arms)
        for k in range(k_arms):
            n0, y0 = n.copy(), y.copy()
            n0[k] = y0[k] = 0.0
            sk = exnex_summary(n0, y0, data.null_rate, spec[1], **kw)
            eff[k] = beta_moment_ess(sk.mean[k], _var(sk)[k])
    return tuple(
        BorrowingESS(str(a), int(n[k]), float(prior[k]), float(eff[k]), float(post[k]))
        for k, a in enumerate(data.arms)
    )


@dataclass(frozen=True)
class NoBorrowingSummary:
    """Each arm analysed on its own data only (arrays over arms).

    ``mean``, ``var``: posterior mean and variance of ``p_k``; ``lower``, ``upper``: equal-tailed
    credible interval at ``level``; ``prob_above``: ``P(p_k > c_k)``.
    """

    mean: np.ndarray
    var: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    prob_above: np.ndarray
    level: float = 0.95


def no_borrowing_summary(
    model: BinaryModel, data: BinaryData, thresholds: npt.ArrayLike | None = None, *, level: float = 0.95
) -> NoBorrowingSummary:
    """Each arm on its own data with the model's own-arm prior: the no-borrowing comparison.

    The prior is the model's non-exchangeable prior ``delta_k ~ Normal(nex_mean, nex_sd)`` for
    EXNEX and the hierarchical model (its ``nex_mean``/``nex_sd``, default ``Normal(0, 2)``), the
    arm's own prior for the independent models. Exact: Beta closed form, otherwise 1-D quadrature
    (:func:`logit_normal_summary`; interval from :func:`logit_normal_grid`).

    Parameters
    ----------
    thresholds
        Rates ``c_k`` (scalar or per arm); default the null rates.
    level
        Credible level of the equal-tailed interval.
    """
    spec = _model_spec(model, data)
    n = np.asarray(data.n, float)
    y = np.asarray(data.y, float)
    k_arms = len(n)
    null = np.asarray(data.null_rate, float)
    thr = np.broadcast_to(np.asarray(null if thresholds is None else thresholds, float), (k_arms,))
    q = np.array([(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    if spec[0] == "beta":
        a, b = spec[1] + y, spec[2] + n - y
        s = beta_binomial_summary(a, b, thr)
        lower, upper = stats.beta.ppf(q[:, None], a, b)
        return NoBorrowingSummary(s.mean, _var(s), lower, upper, s.prob_above, level)
    if spec[0] == "logit_normal":
        m = np.broadcast_to(np.asarray(spec[1], float), (k_arms,))
        sd = np.broadcast_to(np.asarray(spec[2], float), (k_arms,))
    else:
        m = np.full(k_arms, float(spec[2]))
        sd = np.full(k_arms, float(spec[3]))
    s = logit_normal_summary(n, y, null, m, sd, thr)
    bounds = np.empty((2, k_arms))
    for k in range(k_arms):
        grid = logit_normal_grid(n[k], y[k], null[k], m[k], sd[k])
        bounds[:, k] = special.expit(special.logit(null[k]) + grid.quantile(q))
    return NoBorrowingSummary(s.mean, _var(s), bounds[0], bounds[1], s.prob_above, level)
