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
from scipy import integrate, special, stats


@dataclass(frozen=True)
class ExactSummary:
    """Posterior summaries per arm: mean rate and ``P(p_k > threshold_k)``."""

    mean: np.ndarray
    prob_above: np.ndarray
    prob_exchangeable: np.ndarray | None = None


def beta_binomial_summary(a, b, thresholds) -> ExactSummary:
    """Independent Beta posterior ``Beta(a, b)``: mean ``a/(a+b)`` and ``1 - F(threshold)``."""
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    return ExactSummary(mean=a / (a + b), prob_above=stats.beta.sf(np.asarray(thresholds), a, b))


def _log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def _conditional_integrals(n, y, off, mu, sd, thr, n_nodes=161, half_width=9.0):
    """Per-arm integrals over ``delta`` under the prior ``Normal(mu, sd)``.

    ``log L = log ∫ Bin(y | expit(off + d)) N(d; mu, sd) dd`` (without the binomial coefficient),
    ``E[expit(off + d) | y]`` and ``P(d > thr | y)``.

    Shapes broadcast: ``n, y, off, thr`` are ``(K,)``; ``mu, sd`` broadcast against ``(..., 1)``.
    Returns arrays of shape ``broadcast(mu, sd) + (K,)``.
    """
    n = np.asarray(n, float)
    y = np.asarray(y, float)
    mu = np.asarray(mu, float)[..., None]
    sd = np.asarray(sd, float)[..., None]
    shape = np.broadcast_shapes(mu.shape, sd.shape, n.shape)
    prec = 1.0 / sd**2
    # Newton iterations for the mode of f(d) = loglik(d) + log N(d; mu, sd); f is concave.
    d = np.broadcast_to(mu, shape).copy()
    for _ in range(50):
        s = special.expit(off + d)
        g = y - n * s - (d - mu) * prec
        h = -(n * s * (1.0 - s)) - prec
        step = -g / h
        d = d + np.clip(step, -2.0, 2.0)
        if np.max(np.abs(step)) < 1e-10:
            break
    s = special.expit(off + d)
    scale = 1.0 / np.sqrt(n * s * (1.0 - s) + prec)
    u = np.linspace(-half_width, half_width, n_nodes)
    du = u[1] - u[0]
    nodes = d[..., None] + scale[..., None] * u  # (..., K, nodes)
    eta = off[..., None] + nodes
    logf = (
        y[..., None] * _log_sigmoid(eta)
        + (n - y)[..., None] * _log_sigmoid(-eta)
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
    mean_p = (post * special.expit(eta)).sum(-1)
    # P(d > thr): cumulative Simpson of the normalised density, then cubic Hermite interpolation
    # of the CDF inside the cut cell (the CDF's derivative, the density, is known at the nodes)
    dens = f / integral[..., None]  # density in standardised units u
    cdf = integrate.cumulative_simpson(dens, dx=du, axis=-1, initial=0.0)
    pos = (np.broadcast_to(np.asarray(thr, float), shape) - d) / scale
    x = np.clip((pos + half_width) / du, 0.0, n_nodes - 1.0)
    i0 = np.minimum(x.astype(int), n_nodes - 2)
    s = x - i0

    def at(a, i):
        return np.take_along_axis(a, i[..., None], -1)[..., 0]

    c0, c1 = at(cdf, i0), at(cdf, i0 + 1)
    f0, f1 = at(dens, i0), at(dens, i0 + 1)
    below = (
        (2 * s**3 - 3 * s**2 + 1) * c0
        + (s**3 - 2 * s**2 + s) * du * f0
        + (-2 * s**3 + 3 * s**2) * c1
        + (s**3 - s**2) * du * f1
    )
    prob_above = np.clip(1.0 - below, 0.0, 1.0)
    return log_l, mean_p, prob_above


def _hyper_grid(mu_mean, mu_sd, tau_dist, tau_scale, n_mu=241, n_tau=121):
    mu = np.linspace(mu_mean - 8 * mu_sd, mu_mean + 8 * mu_sd, n_mu)
    if tau_dist == "half_normal":
        hi = 6.0 * tau_scale
        logprior_tau = lambda t: stats.halfnorm.logpdf(t, scale=tau_scale)  # noqa: E731
    elif tau_dist == "half_cauchy":
        hi = 2000.0 * tau_scale
        logprior_tau = lambda t: stats.halfcauchy.logpdf(t, scale=tau_scale)  # noqa: E731
    else:
        raise ValueError(f"unknown tau prior {tau_dist!r}")
    log_tau = np.linspace(np.log(1e-4 * tau_scale), np.log(hi), n_tau)
    tau = np.exp(log_tau)
    w_mu = np.full(n_mu, mu[1] - mu[0])
    w_mu[[0, -1]] *= 0.5
    w_lt = np.full(n_tau, log_tau[1] - log_tau[0])
    w_lt[[0, -1]] *= 0.5
    # log prior mass of each grid cell: prior densities times the Jacobian d tau = tau d log tau
    log_prior = (
        stats.norm.logpdf(mu, mu_mean, mu_sd)[:, None]
        + (logprior_tau(tau) + log_tau)[None, :]
        + np.log(w_mu)[:, None]
        + np.log(w_lt)[None, :]
    )
    return mu, tau, log_prior


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
    n_mu=241,
    n_tau=121,
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
        hierarchical model.
    """
    n = np.asarray(n, float)
    y = np.asarray(y, float)
    off = special.logit(np.asarray(null_rate, float))
    thr_rate = np.asarray(null_rate if thresholds is None else thresholds, float)
    thr = special.logit(thr_rate) - off  # threshold on the delta scale
    mu, tau, log_prior = _hyper_grid(mu_mean, mu_sd, tau_dist, tau_scale, n_mu, n_tau)
    log_l, mean_p, p_above = _conditional_integrals(
        n, y, off, mu[:, None], tau[None, :], thr
    )  # (n_mu, n_tau, K)
    if w is None:
        log_joint = log_prior + log_l.sum(-1)
        weights = np.exp(log_joint - log_joint.max())
        weights /= weights.sum()
        mean = np.einsum("ij,ijk->k", weights, mean_p)
        prob = np.einsum("ij,ijk->k", weights, p_above)
        return ExactSummary(mean=mean, prob_above=prob)
    wk = np.broadcast_to(np.asarray(w, float), n.shape)
    log_l_nex, mean_nex, p_nex = _conditional_integrals(
        n, y, off, np.asarray(nex_mean, float), np.asarray(nex_sd, float), thr
    )  # (K,)
    with np.errstate(divide="ignore"):
        a = np.log(wk) + log_l
        b = np.log1p(-wk) + log_l_nex
    log_mix = np.logaddexp(a, b)
    pi_ex = np.exp(a - log_mix)
    log_joint = log_prior + log_mix.sum(-1)
    weights = np.exp(log_joint - log_joint.max())
    weights /= weights.sum()
    mean = np.einsum("ij,ijk->k", weights, pi_ex * mean_p + (1 - pi_ex) * mean_nex)
    prob = np.einsum("ij,ijk->k", weights, pi_ex * p_above + (1 - pi_ex) * p_nex)
    prob_ex = np.einsum("ij,ijk->k", weights, pi_ex)
    return ExactSummary(mean=mean, prob_above=prob, prob_exchangeable=prob_ex)
