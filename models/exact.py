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

from dataclasses import dataclass

import numpy as np
from scipy import special, stats


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


def beta_binomial_summary(a, b, thresholds) -> ExactSummary:
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


def cumulative_simpson(f: np.ndarray, du: float) -> np.ndarray:
    """Cumulative integral of ``f`` (uniform spacing ``du``, last axis), fourth-order accurate.

    Even nodes by composite Simpson from the start; the first odd node by the three-point
    formula ``du (5 f0 + 8 f1 - f2) / 12``, later odd nodes by Simpson from it.
    """
    du = np.asarray(du, float)  # scalar, or broadcastable to f[..., 0]
    out = np.empty_like(f)
    out[..., 0] = 0.0
    first = du * (5.0 * f[..., 0] + 8.0 * f[..., 1] - f[..., 2]) / 12.0
    seg = du[..., None] * (f[..., :-2] + 4.0 * f[..., 1:-1] + f[..., 2:]) / 3.0  # over [k-2, k]
    out[..., 2::2] = np.cumsum(seg[..., 0::2], axis=-1)
    out[..., 1::2] = (
        first[..., None]
        + np.concatenate([np.zeros_like(first)[..., None], np.cumsum(seg[..., 1::2], axis=-1)], axis=-1)[
            ..., : out[..., 1::2].shape[-1]
        ]
    )
    return out


def hermite_cdf(cdf: np.ndarray, dens: np.ndarray, du: float, half_width: float, pos: np.ndarray):
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


def conditional_integrals(n, y, off, mu, sd, thr, n_nodes=161, half_width=9.0) -> Conditional:
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


def check_tau_prior(tau_dist, tau_scale, tau_shape=None, where="tau") -> None:
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
    n,
    y,
    null_rate,
    *,
    mu_mean=0.0,
    mu_sd=1.0,
    tau_dist="half_normal",
    tau_scale=0.5,
    thresholds=None,
    w=None,
    nex_mean=0.0,
    nex_sd=2.0,
    n_mu=121,
    n_tau=61,
    tau_shape=None,
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
