"""Models of a binary endpoint across arms.

Three models, all with the same interface: ``fit(data, *, seed, settings) -> InferenceData`` with
a posterior variable ``p`` of dims ``(chain, draw, arm)`` (the arm's response / event rate),
plus ``constant_data`` holding ``n``, ``y`` and ``null_rate``. Models hold no fitted state and never
touch global random state. Each has an exact twin in :mod:`models.exact` used by the tests (and
by the simulator).

* :class:`IndependentBetaBinomial`: ``p_k ~ Beta(a_k, b_k)``, no borrowing. Conjugate: the
  posterior ``Beta(a_k + y_k, b_k + n_k - y_k)`` is drawn from directly (independent draws).
* :class:`HierarchicalLogistic`: ``logit p_k = logit(null_k) + delta_k``,
  ``delta_k ~ Normal(mu, tau)``, ``mu ~ Normal(m, s)``, ``tau ~ HalfNormal | HalfCauchy``.
  Non-centred (``delta_k = mu + tau z_k``), fitted with NUTS.
* :class:`Exnex`: Neuenschwander et al. (2016). With prior probability ``w`` arm ``k`` is
  exchangeable (``delta_k = mu + tau z_k``), otherwise non-exchangeable
  (``delta_k = nex_k ~ Normal(m_nex, s_nex)``). The discrete membership is marginalised out of
  the likelihood, ``w Bin(y | ex) + (1 - w) Bin(y | nex)``, so NUTS sees a smooth density; after
  sampling, membership is drawn from its exact conditional given each draw (seeded), which gives
  draws of ``p_k`` from the EXNEX posterior and ``prob_exchangeable`` (the posterior probability
  of exchangeability, Rao-Blackwellised).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import arviz as az
import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from scipy import special

from models.sampling import SamplerSettings, sample_nuts

TauDist = Literal["half_normal", "half_cauchy"]


@dataclass(frozen=True)
class BinaryData:
    """Per-arm binomial data of one endpoint.

    Parameters
    ----------
    arms
        Arm ids (the ``arm`` coordinate).
    n, y
        Evaluable patients and responders (events) per arm.
    null_rate
        Each arm's null (reference) rate; the logistic models are centred on it.
    """

    arms: tuple[str, ...]
    n: np.ndarray
    y: np.ndarray
    null_rate: np.ndarray

    def __post_init__(self):
        k = len(self.arms)
        for name in ("n", "y", "null_rate"):
            v = np.asarray(getattr(self, name))
            if v.shape != (k,):
                raise ValueError(f"{name} must have shape ({k},), got {v.shape}")
        if np.any(np.asarray(self.y) < 0) or np.any(np.asarray(self.y) > np.asarray(self.n)):
            raise ValueError("need 0 <= y <= n in every arm")
        nr = np.asarray(self.null_rate)
        if np.any((nr <= 0) | (nr >= 1)):
            raise ValueError("null rates must lie in (0, 1)")

    @property
    def offset(self) -> np.ndarray:
        """``logit(null_rate)``."""
        return special.logit(np.asarray(self.null_rate, dtype=float))

    def constant_data(self) -> xr.Dataset:
        return xr.Dataset(
            {
                "n": ("arm", np.asarray(self.n, dtype=np.int64)),
                "y": ("arm", np.asarray(self.y, dtype=np.int64)),
                "null_rate": ("arm", np.asarray(self.null_rate, dtype=float)),
            },
            coords={"arm": list(self.arms)},
        )


def _with_constant_data(idata: az.InferenceData, data: BinaryData, model: str) -> az.InferenceData:
    idata.add_groups(constant_data=data.constant_data())
    idata.posterior.attrs = {"model": model}
    return idata


# ----------------------------------------------------------------------------- independent
@dataclass(frozen=True)
class IndependentBetaBinomial:
    """Independent conjugate Beta-binomial per arm.

    Parameters
    ----------
    prior
        ``"unit_information"`` (``Beta(m, 1 - m)``, m = null rate), ``"uniform"``, ``"jeffreys"``
        or an ``(a, b)`` pair used for every arm.
    """

    prior: str | tuple[float, float] = "unit_information"
    name = "independent"

    def prior_ab(self, data: BinaryData) -> tuple[np.ndarray, np.ndarray]:
        """Prior Beta parameters per arm."""
        k = len(data.arms)
        if self.prior == "unit_information":
            m = np.asarray(data.null_rate, dtype=float)
            return m, 1.0 - m
        if self.prior == "uniform":
            return np.ones(k), np.ones(k)
        if self.prior == "jeffreys":
            return np.full(k, 0.5), np.full(k, 0.5)
        a, b = self.prior  # type: ignore[misc]
        return np.full(k, float(a)), np.full(k, float(b))

    def posterior_ab(self, data: BinaryData) -> tuple[np.ndarray, np.ndarray]:
        """Posterior Beta parameters per arm (closed form)."""
        a, b = self.prior_ab(data)
        n = np.asarray(data.n, dtype=float)
        y = np.asarray(data.y, dtype=float)
        return a + y, b + n - y

    def fit(self, data: BinaryData, *, seed: int, settings: SamplerSettings) -> az.InferenceData:
        """Independent draws from the conjugate posterior, shaped like an MCMC run."""
        a, b = self.posterior_ab(data)
        rng = np.random.default_rng(seed)
        draws = rng.beta(a, b, size=(settings.chains, settings.draws, len(data.arms)))
        post = xr.Dataset(
            {"p": (("chain", "draw", "arm"), draws)},
            coords={
                "chain": np.arange(settings.chains),
                "draw": np.arange(settings.draws),
                "arm": list(data.arms),
            },
        )
        stats = xr.Dataset(
            {"diverging": (("chain", "draw"), np.zeros((settings.chains, settings.draws), bool))},
            coords={"chain": post.chain, "draw": post.draw},
        )
        idata = az.InferenceData(posterior=post, sample_stats=stats)
        return _with_constant_data(idata, data, self.name)


# ----------------------------------------------------------------------------- hierarchical
def _tau_rv(dist: TauDist, scale):
    if dist == "half_normal":
        return pm.HalfNormal("tau", sigma=scale)
    if dist == "half_cauchy":
        return pm.HalfCauchy("tau", beta=scale)
    raise ValueError(f"unknown tau prior {dist!r}")


@dataclass(frozen=True)
class HierarchicalLogistic:
    """Partially pooled log-odds improvements over each arm's null rate."""

    mu_mean: float = 0.0
    mu_sd: float = 1.0
    tau_dist: TauDist = "half_normal"
    tau_scale: float = 0.5
    name = "hierarchical"

    def data_dict(self, data: BinaryData) -> dict[str, np.ndarray]:
        return {
            "n": np.asarray(data.n, dtype=np.int64),
            "y_obs": np.asarray(data.y, dtype=np.int64),
            "offset": data.offset,
            "mu_mean": np.asarray(self.mu_mean, dtype=float),
            "mu_sd": np.asarray(self.mu_sd, dtype=float),
            "tau_scale": np.asarray(self.tau_scale, dtype=float),
        }

    def build(self, data: BinaryData) -> pm.Model:
        """The PyMC model (data in ``pm.Data`` containers so a compiled model can be reused)."""
        d = self.data_dict(data)
        with pm.Model(coords={"arm": list(data.arms)}) as model:
            n = pm.Data("n", d["n"], dims="arm")
            y = pm.Data("y_obs", d["y_obs"], dims="arm")
            off = pm.Data("offset", d["offset"], dims="arm")
            mu_mean = pm.Data("mu_mean", d["mu_mean"])
            mu_sd = pm.Data("mu_sd", d["mu_sd"])
            tau_scale = pm.Data("tau_scale", d["tau_scale"])
            mu = pm.Normal("mu", mu_mean, mu_sd)
            tau = _tau_rv(self.tau_dist, tau_scale)
            z = pm.Normal("z", 0.0, 1.0, dims="arm")
            delta = pm.Deterministic("delta", mu + tau * z, dims="arm")
            p = pm.Deterministic("p", pm.math.invlogit(off + delta), dims="arm")
            pm.Binomial("y", n=n, p=p, observed=y, dims="arm")
        return model

    def fit(self, data: BinaryData, *, seed: int, settings: SamplerSettings) -> az.InferenceData:
        """Fit with NUTS."""
        idata = sample_nuts(
            self.build(data),
            cache_key=(self.name, self.tau_dist, data.arms),
            data=self.data_dict(data),
            settings=settings,
            seed=seed,
        )
        return _with_constant_data(idata, data, self.name)


# ----------------------------------------------------------------------------- EXNEX
@dataclass(frozen=True)
class Exnex:
    """EXNEX mixture of exchangeable and non-exchangeable arms (see module docstring).

    ``w`` is the prior probability of exchangeability, a scalar or one value per arm.
    """

    mu_mean: float = 0.0
    mu_sd: float = 1.0
    tau_dist: TauDist = "half_normal"
    tau_scale: float = 0.5
    nex_mean: float = 0.0
    nex_sd: float = 2.0
    w: float | tuple[float, ...] = 0.5
    name = "exnex"

    def weights(self, data: BinaryData) -> np.ndarray:
        w = np.broadcast_to(np.asarray(self.w, dtype=float), (len(data.arms),)).copy()
        if np.any((w < 0) | (w > 1)):
            raise ValueError("EXNEX weights must lie in [0, 1]")
        return w

    def data_dict(self, data: BinaryData) -> dict[str, np.ndarray]:
        w = self.weights(data)
        with np.errstate(divide="ignore"):
            return {
                "n": np.asarray(data.n, dtype=np.int64),
                "y_obs": np.asarray(data.y, dtype=np.int64),
                "offset": data.offset,
                "mu_mean": np.asarray(self.mu_mean, dtype=float),
                "mu_sd": np.asarray(self.mu_sd, dtype=float),
                "tau_scale": np.asarray(self.tau_scale, dtype=float),
                "nex_mean": np.asarray(self.nex_mean, dtype=float),
                "nex_sd": np.asarray(self.nex_sd, dtype=float),
                "log_w": np.log(w),
                "log_1mw": np.log1p(-w),
            }

    def build(self, data: BinaryData) -> pm.Model:
        """PyMC model with the membership indicator marginalised out."""
        d = self.data_dict(data)
        with pm.Model(coords={"arm": list(data.arms)}) as model:
            n = pm.Data("n", d["n"], dims="arm")
            y = pm.Data("y_obs", d["y_obs"], dims="arm")
            off = pm.Data("offset", d["offset"], dims="arm")
            mu_mean = pm.Data("mu_mean", d["mu_mean"])
            mu_sd = pm.Data("mu_sd", d["mu_sd"])
            tau_scale = pm.Data("tau_scale", d["tau_scale"])
            nex_mean = pm.Data("nex_mean", d["nex_mean"])
            nex_sd = pm.Data("nex_sd", d["nex_sd"])
            log_w = pm.Data("log_w", d["log_w"], dims="arm")
            log_1mw = pm.Data("log_1mw", d["log_1mw"], dims="arm")
            mu = pm.Normal("mu", mu_mean, mu_sd)
            tau = _tau_rv(self.tau_dist, tau_scale)
            z = pm.Normal("z", 0.0, 1.0, dims="arm")
            delta_ex = pm.Deterministic("delta_ex", mu + tau * z, dims="arm")
            delta_nex = pm.Normal("delta_nex", nex_mean, nex_sd, dims="arm")
            ll_ex = pm.logp(pm.Binomial.dist(n=n, p=pm.math.invlogit(off + delta_ex)), y)
            ll_nex = pm.logp(pm.Binomial.dist(n=n, p=pm.math.invlogit(off + delta_nex)), y)
            pm.Potential("likelihood", pt.sum(pt.logaddexp(log_w + ll_ex, log_1mw + ll_nex)))
        return model

    def fit(self, data: BinaryData, *, seed: int, settings: SamplerSettings) -> az.InferenceData:
        """Fit with NUTS, then draw memberships from their exact conditional (seeded)."""
        idata = sample_nuts(
            self.build(data),
            cache_key=(self.name, self.tau_dist, data.arms),
            data=self.data_dict(data),
            settings=settings,
            seed=seed,
        )
        post = idata.posterior
        n = np.asarray(data.n, dtype=float)
        y = np.asarray(data.y, dtype=float)
        off = data.offset
        w = self.weights(data)

        def loglik(delta: np.ndarray) -> np.ndarray:
            eta = off + delta
            # binomial log-likelihood up to the constant, stable for large |eta|
            return y * -np.logaddexp(0.0, -eta) + (n - y) * -np.logaddexp(0.0, eta)

        d_ex = post["delta_ex"].transpose("chain", "draw", "arm").values
        d_nex = post["delta_nex"].transpose("chain", "draw", "arm").values
        with np.errstate(divide="ignore"):
            a = np.log(w) + loglik(d_ex)
            b = np.log1p(-w) + loglik(d_nex)
        prob_ex = np.exp(a - np.logaddexp(a, b))
        rng = np.random.default_rng([seed, 1])
        is_ex = rng.random(prob_ex.shape) < prob_ex
        delta = np.where(is_ex, d_ex, d_nex)
        dims = ("chain", "draw", "arm")
        post["prob_exchangeable"] = (dims, prob_ex)
        post["delta"] = (dims, delta)
        post["p"] = (dims, special.expit(off + delta))
        return _with_constant_data(idata, data, self.name)


def model_from_config(cfg) -> IndependentBetaBinomial | HierarchicalLogistic | Exnex:
    """Build a model object from a config ``model:`` block (pydantic object or dict)."""
    kind = cfg.kind
    if kind == "independent":
        prior = cfg.prior if isinstance(cfg.prior, str) else (cfg.prior.a, cfg.prior.b)
        return IndependentBetaBinomial(prior=prior)
    common = dict(mu_mean=cfg.mu.mean, mu_sd=cfg.mu.sd, tau_dist=cfg.tau.dist, tau_scale=cfg.tau.scale)
    if kind == "hierarchical":
        return HierarchicalLogistic(**common)
    if kind == "exnex":
        return Exnex(**common, nex_mean=cfg.nex.mean, nex_sd=cfg.nex.sd, w=cfg.w)
    raise ValueError(f"unknown model kind {kind!r}")
