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
  of exchangeability, Rao-Blackwellised). Several exchangeable components (e.g. an
  "optimistic" and a "pessimistic" mean) are given as ``components``: a tuple of
  :class:`ExComponent`, each with its own ``mu_c``, ``tau_c`` prior and weight ``w_c``; the
  non-exchangeable weight is ``1 - sum_c w_c``. Weights of exactly 0 and 1 are allowed.
* :class:`IndependentLogitNormal`: ``logit p_k = logit(null_k) + delta_k``,
  ``delta_k ~ Normal(mean_k, sd_k)`` independently (no borrowing). One-dimensional per arm, so it
  is fitted without MCMC: each arm's posterior on a fine grid, then seeded inverse-CDF draws.

The between-arm sd ``tau`` has a half-normal or half-Cauchy prior with scale ``tau_scale``, or
(``tau_dist="inverse_gamma"``, Thall et al. 2003, Berry et al. 2013) the variance has an inverse
gamma prior ``tau^2 ~ InverseGamma(tau_shape, tau_scale)`` (shape ``a``, scale ``b``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

import arviz as az
import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from scipy import special

from models.exact import check_tau_prior, component_weights, logit_normal_grid
from models.sampling import SamplerSettings, sample_nuts

TauDist = Literal["half_normal", "half_cauchy", "inverse_gamma"]


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
    idata["posterior"].attrs = {"model": model}
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
        a, b = cast(tuple[float, float], self.prior)
        return np.full(k, float(a)), np.full(k, float(b))

    def posterior_ab(self, data: BinaryData) -> tuple[np.ndarray, np.ndarray]:
        """Posterior Beta parameters per arm (closed form)."""
        a, b = self.prior_ab(data)
        n = np.asarray(data.n, dtype=float)
        y = np.asarray(data.y, dtype=float)
        return a + y, b + n - y

    def fit(self, data: BinaryData, *, seed: int, settings: SamplerSettings) -> az.InferenceData:
        """Independent draws from the conjugate posterior, shaped like an MCMC run.

        The posterior's attributes carry its parameters (``posterior_a``, ``posterior_b``): an
        interim look computes this endpoint's quantities from them exactly
        (:func:`adaptive.interim.binary_posterior`); the draws are a record.
        """
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
        idata = _with_constant_data(idata, data, self.name)
        # the exact posterior these draws come from (netCDF attributes: numbers and strings)
        idata["posterior"].attrs.update(
            posterior_a=[float(v) for v in a],
            posterior_b=[float(v) for v in b],
            exact_posterior="Beta(posterior_a, posterior_b) per arm (conjugate, in the order of `arm`); "
            "the draws are independent draws from it",
        )
        return idata


# ----------------------------------------------------------------------------- hierarchical
def _tau_rv(dist: TauDist, scale, shape=None, name: str = "tau"):
    """The between-arm sd ``tau`` (a ``pm.Deterministic`` ``sqrt(tau^2)`` for the inverse gamma)."""
    if dist == "half_normal":
        return pm.HalfNormal(name, sigma=scale)
    if dist == "half_cauchy":
        return pm.HalfCauchy(name, beta=scale)
    if dist == "inverse_gamma":
        if shape is None:
            raise ValueError("tau_dist='inverse_gamma' needs tau_shape")
        tau2 = pm.InverseGamma(name.replace("tau", "tau2", 1), alpha=shape, beta=scale)
        return pm.Deterministic(name, pt.sqrt(tau2))
    raise ValueError(f"unknown tau prior {dist!r}")


def _tau_data(dist: TauDist, scale, shape) -> dict[str, np.ndarray]:
    """Data containers of a tau prior (``tau_shape`` only for the inverse gamma)."""
    d = {"tau_scale": np.asarray(scale, dtype=float)}
    if dist == "inverse_gamma":
        d["tau_shape"] = np.asarray(shape, dtype=float)
    return d


@dataclass(frozen=True)
class HierarchicalLogistic:
    """Partially pooled log-odds improvements over each arm's null rate.

    Parameters
    ----------
    mu_mean, mu_sd
        ``mu ~ Normal(mu_mean, mu_sd)``.
    tau_dist, tau_scale, tau_shape
        ``tau ~ HalfNormal(tau_scale)`` / ``HalfCauchy(tau_scale)``, or for ``"inverse_gamma"``
        ``tau^2 ~ InverseGamma(shape=tau_shape, scale=tau_scale)`` (``tau_shape`` required then,
        ignored otherwise).
    nex_mean, nex_sd
        Own prior ``delta_k ~ Normal(nex_mean, nex_sd)`` of an arm analysed without borrowing
        (not used by :meth:`fit`; see :func:`models.exact.no_borrowing_summary`, and EXNEX with
        ``w_k = 0`` during a borrowing burn-in).
    """

    mu_mean: float = 0.0
    mu_sd: float = 1.0
    tau_dist: TauDist = "half_normal"
    tau_scale: float = 0.5
    tau_shape: float | None = None
    nex_mean: float = 0.0
    nex_sd: float = 2.0
    name = "hierarchical"

    def __post_init__(self):
        check_tau_prior(self.tau_dist, self.tau_scale, self.tau_shape, where=type(self).__name__)

    def data_dict(self, data: BinaryData) -> dict[str, np.ndarray]:
        return {
            "n": np.asarray(data.n, dtype=np.int64),
            "y_obs": np.asarray(data.y, dtype=np.int64),
            "offset": data.offset,
            "mu_mean": np.asarray(self.mu_mean, dtype=float),
            "mu_sd": np.asarray(self.mu_sd, dtype=float),
            **_tau_data(self.tau_dist, self.tau_scale, self.tau_shape),
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
            tau_shape = pm.Data("tau_shape", d["tau_shape"]) if "tau_shape" in d else None
            mu = pm.Normal("mu", mu_mean, mu_sd)
            tau = _tau_rv(self.tau_dist, tau_scale, tau_shape)
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
class ExComponent:
    """One exchangeable component of an EXNEX model.

    Arms in the component have ``delta_k ~ Normal(mu_c, tau_c)`` with
    ``mu_c ~ Normal(mu_mean, mu_sd)`` and ``tau_c`` as in :class:`HierarchicalLogistic`
    (``tau_dist``, ``tau_scale``, ``tau_shape``); ``w`` is the prior probability that an arm
    belongs to the component (scalar or one value per arm); ``name`` labels the ``component``
    coordinate (default ``ex0``, ``ex1``, ...).
    """

    mu_mean: float = 0.0
    mu_sd: float = 1.0
    tau_dist: TauDist = "half_normal"
    tau_scale: float = 0.5
    tau_shape: float | None = None
    w: float | tuple[float, ...] = 0.5
    name: str | None = None

    def __post_init__(self):
        check_tau_prior(self.tau_dist, self.tau_scale, self.tau_shape, where="ExComponent")
        if not self.mu_sd > 0:
            raise ValueError(f"ExComponent: mu_sd must be > 0, got {self.mu_sd!r}")


@dataclass(frozen=True)
class Exnex:
    """EXNEX mixture of exchangeable and non-exchangeable arms (see module docstring).

    With one exchangeable component (the default) it is given by the scalar fields: ``w`` is
    the prior probability of exchangeability, a scalar or one value per arm. With ``components``
    (a tuple of :class:`ExComponent`), those define the exchangeable components and the scalar
    fields ``mu_mean, mu_sd, tau_dist, tau_scale, tau_shape, w`` are ignored; the
    non-exchangeable weight of arm ``k`` is ``1 - sum_c w_kc`` (must be ``>= 0``). Weights of
    exactly 0 and 1 are allowed.

    Posterior variables: ``p``, ``delta`` (the drawn membership's delta), ``prob_exchangeable``
    (Rao-Blackwellised, summed over the exchangeable components) and, with more than one
    component, ``prob_component`` of dims ``(chain, draw, arm, component)``.
    """

    mu_mean: float = 0.0
    mu_sd: float = 1.0
    tau_dist: TauDist = "half_normal"
    tau_scale: float = 0.5
    nex_mean: float = 0.0
    nex_sd: float = 2.0
    w: float | tuple[float, ...] = 0.5
    tau_shape: float | None = None
    components: tuple[ExComponent, ...] | None = None
    name = "exnex"

    def __post_init__(self):
        if self.components is None:
            check_tau_prior(self.tau_dist, self.tau_scale, self.tau_shape, where="Exnex")
        else:
            if len(self.components) == 0:
                raise ValueError("Exnex: components must hold at least one ExComponent (or be None)")
            if not all(isinstance(c, ExComponent) for c in self.components):
                raise TypeError("Exnex: components must be ExComponent objects")
            # a list would make the frozen model unhashable
            object.__setattr__(self, "components", tuple(self.components))
        if not self.nex_sd > 0:
            raise ValueError(f"Exnex: nex_sd must be > 0, got {self.nex_sd!r}")

    def ex_components(self) -> tuple[ExComponent, ...]:
        """The exchangeable components (one built from the scalar fields when none are given)."""
        if self.components is not None:
            return self.components
        return (ExComponent(self.mu_mean, self.mu_sd, self.tau_dist, self.tau_scale, self.tau_shape, self.w),)

    def component_labels(self) -> list[str]:
        return [c.name or f"ex{i}" for i, c in enumerate(self.ex_components())]

    def component_weights(self, data: BinaryData) -> tuple[np.ndarray, np.ndarray]:
        """Prior weights ``(C, K)`` of the exchangeable components and ``(K,)`` of NEX."""
        return component_weights(self.ex_components(), len(data.arms))

    def weights(self, data: BinaryData) -> np.ndarray:
        """Prior probability of exchangeability per arm (summed over the components)."""
        w_ex, _ = self.component_weights(data)
        return np.clip(w_ex.sum(0), 0.0, 1.0)

    # ------------------------------------------------------------------ one component
    def data_dict(self, data: BinaryData) -> dict[str, np.ndarray]:
        comps = self.ex_components()
        if len(comps) > 1:
            return self._data_dict_multi(data)
        c = comps[0]
        w = self.weights(data)
        with np.errstate(divide="ignore"):
            return {
                "n": np.asarray(data.n, dtype=np.int64),
                "y_obs": np.asarray(data.y, dtype=np.int64),
                "offset": data.offset,
                "mu_mean": np.asarray(c.mu_mean, dtype=float),
                "mu_sd": np.asarray(c.mu_sd, dtype=float),
                **_tau_data(c.tau_dist, c.tau_scale, c.tau_shape),
                "nex_mean": np.asarray(self.nex_mean, dtype=float),
                "nex_sd": np.asarray(self.nex_sd, dtype=float),
                "log_w": np.log(w),
                "log_1mw": np.log1p(-w),
            }

    def build(self, data: BinaryData) -> pm.Model:
        """PyMC model with the membership indicator marginalised out."""
        comps = self.ex_components()
        if len(comps) > 1:
            return self._build_multi(data)
        c = comps[0]
        d = self.data_dict(data)
        with pm.Model(coords={"arm": list(data.arms)}) as model:
            n = pm.Data("n", d["n"], dims="arm")
            y = pm.Data("y_obs", d["y_obs"], dims="arm")
            off = pm.Data("offset", d["offset"], dims="arm")
            mu_mean = pm.Data("mu_mean", d["mu_mean"])
            mu_sd = pm.Data("mu_sd", d["mu_sd"])
            tau_scale = pm.Data("tau_scale", d["tau_scale"])
            tau_shape = pm.Data("tau_shape", d["tau_shape"]) if "tau_shape" in d else None
            nex_mean = pm.Data("nex_mean", d["nex_mean"])
            nex_sd = pm.Data("nex_sd", d["nex_sd"])
            log_w = pm.Data("log_w", d["log_w"], dims="arm")
            log_1mw = pm.Data("log_1mw", d["log_1mw"], dims="arm")
            mu = pm.Normal("mu", mu_mean, mu_sd)
            tau = _tau_rv(c.tau_dist, tau_scale, tau_shape)
            z = pm.Normal("z", 0.0, 1.0, dims="arm")
            delta_ex = pm.Deterministic("delta_ex", mu + tau * z, dims="arm")
            delta_nex = pm.Normal("delta_nex", nex_mean, nex_sd, dims="arm")
            ll_ex = pm.logp(pm.Binomial.dist(n=n, p=pm.math.invlogit(off + delta_ex)), y)
            ll_nex = pm.logp(pm.Binomial.dist(n=n, p=pm.math.invlogit(off + delta_nex)), y)
            pm.Potential("likelihood", pt.sum(pt.logaddexp(log_w + ll_ex, log_1mw + ll_nex)))
        return model

    # ------------------------------------------------------------------ several components
    def _data_dict_multi(self, data: BinaryData) -> dict[str, np.ndarray]:
        comps = self.ex_components()
        w_ex, w_nex = self.component_weights(data)
        d = {
            "n": np.asarray(data.n, dtype=np.int64),
            "y_obs": np.asarray(data.y, dtype=np.int64),
            "offset": data.offset,
            "mu_mean": np.array([c.mu_mean for c in comps], dtype=float),
            "mu_sd": np.array([c.mu_sd for c in comps], dtype=float),
            "tau_scale": np.array([c.tau_scale for c in comps], dtype=float),
            "nex_mean": np.asarray(self.nex_mean, dtype=float),
            "nex_sd": np.asarray(self.nex_sd, dtype=float),
        }
        if any(c.tau_dist == "inverse_gamma" for c in comps):
            d["tau_shape"] = np.array([c.tau_shape or 1.0 for c in comps], dtype=float)
        with np.errstate(divide="ignore"):
            d["log_w"] = np.log(w_ex)
            d["log_w_nex"] = np.log(w_nex)
        return d

    def _build_multi(self, data: BinaryData) -> pm.Model:
        """Several exchangeable components: membership marginalised by a log-sum-exp over them."""
        comps = self.ex_components()
        d = self._data_dict_multi(data)
        coords = {"arm": list(data.arms), "component": self.component_labels()}
        with pm.Model(coords=coords) as model:
            n = pm.Data("n", d["n"], dims="arm")
            y = pm.Data("y_obs", d["y_obs"], dims="arm")
            off = pm.Data("offset", d["offset"], dims="arm")
            mu_mean = pm.Data("mu_mean", d["mu_mean"], dims="component")
            mu_sd = pm.Data("mu_sd", d["mu_sd"], dims="component")
            tau_scale = pm.Data("tau_scale", d["tau_scale"], dims="component")
            tau_shape = pm.Data("tau_shape", d["tau_shape"], dims="component") if "tau_shape" in d else None
            nex_mean = pm.Data("nex_mean", d["nex_mean"])
            nex_sd = pm.Data("nex_sd", d["nex_sd"])
            log_w = pm.Data("log_w", d["log_w"], dims=("component", "arm"))
            log_w_nex = pm.Data("log_w_nex", d["log_w_nex"], dims="arm")
            mu = pm.Normal("mu", mu_mean, mu_sd, dims="component")
            taus = [
                _tau_rv(
                    c.tau_dist, tau_scale[i], None if tau_shape is None else tau_shape[i], name=f"tau_{i}"
                )
                for i, c in enumerate(comps)
            ]
            tau = pm.Deterministic("tau", pt.stack(taus), dims="component")
            z = pm.Normal("z", 0.0, 1.0, dims=("component", "arm"))
            delta_ex = pm.Deterministic("delta_ex", mu[:, None] + tau[:, None] * z, dims=("component", "arm"))
            delta_nex = pm.Normal("delta_nex", nex_mean, nex_sd, dims="arm")
            ll_ex = pm.logp(
                pm.Binomial.dist(n=n[None, :], p=pm.math.invlogit(off[None, :] + delta_ex)), y[None, :]
            )
            ll_nex = pm.logp(pm.Binomial.dist(n=n, p=pm.math.invlogit(off + delta_nex)), y)
            terms = pt.concatenate([log_w + ll_ex, (log_w_nex + ll_nex)[None, :]], axis=0)
            pm.Potential("likelihood", pt.sum(pm.math.logsumexp(terms, axis=0)))
        return model

    def cache_key(self, data: BinaryData) -> tuple:
        """Compiled-model cache key: the model structure (tau priors, components) and the arms."""
        comps = self.ex_components()
        if len(comps) == 1:
            return (self.name, comps[0].tau_dist, data.arms)
        return (
            self.name,
            "components",
            tuple(c.tau_dist for c in comps),
            tuple(self.component_labels()),
            data.arms,
        )

    def fit(self, data: BinaryData, *, seed: int, settings: SamplerSettings) -> az.InferenceData:
        """Fit with NUTS, then draw memberships from their exact conditional (seeded)."""
        idata = sample_nuts(
            self.build(data),
            cache_key=self.cache_key(data),
            data=self.data_dict(data),
            settings=settings,
            seed=seed,
        )
        post = idata["posterior"]
        n = np.asarray(data.n, dtype=float)
        y = np.asarray(data.y, dtype=float)
        off = data.offset
        w_ex, w_nex = self.component_weights(data)
        c_count = w_ex.shape[0]

        def loglik(delta: np.ndarray) -> np.ndarray:
            eta = off + delta
            # binomial log-likelihood up to the constant, stable for large |eta|
            return y * -np.logaddexp(0.0, -eta) + (n - y) * -np.logaddexp(0.0, eta)

        d_nex = post["delta_nex"].transpose("chain", "draw", "arm").values
        if c_count == 1:
            d_ex = post["delta_ex"].transpose("chain", "draw", "arm").values[..., None, :]
        else:
            d_ex = post["delta_ex"].transpose("chain", "draw", "component", "arm").values
        # log prior weight + log-likelihood of every membership: (chain, draw, C + 1, arm)
        with np.errstate(divide="ignore"):
            logs = np.concatenate(
                [np.log(w_ex) + loglik(d_ex), (np.log(w_nex) + loglik(d_nex))[..., None, :]], axis=-2
            )
        probs = np.exp(logs - special.logsumexp(logs, axis=-2, keepdims=True))
        rng = np.random.default_rng([seed, 1])
        u = rng.random(d_nex.shape)
        # membership: the first index whose cumulative probability exceeds u (NEX is the last)
        cum = np.cumsum(probs, axis=-2)
        member = np.minimum((cum < u[..., None, :]).sum(axis=-2), c_count)
        deltas = np.concatenate([d_ex, d_nex[..., None, :]], axis=-2)
        delta = np.take_along_axis(deltas, member[..., None, :], axis=-2)[..., 0, :]
        dims = ("chain", "draw", "arm")
        prob_ex = probs[..., :c_count, :].sum(axis=-2)
        if c_count == 1:
            # the single-component draws exactly as before: exchangeable when u < P(ex)
            with np.errstate(divide="ignore"):
                a = logs[..., 0, :]
                b = np.log1p(-w_ex[0]) + loglik(d_nex)
            prob_ex = np.exp(a - np.logaddexp(a, b))
            delta = np.where(u < prob_ex, d_ex[..., 0, :], d_nex)
        else:
            post["prob_component"] = (
                ("chain", "draw", "arm", "component"),
                np.moveaxis(probs[..., :c_count, :], -2, -1),
            )
        post["prob_exchangeable"] = (dims, prob_ex)
        post["delta"] = (dims, delta)
        post["p"] = (dims, special.expit(off + delta))
        return _with_constant_data(idata, data, self.name)


# ----------------------------------------------------------------------------- independent logit-normal
@dataclass(frozen=True)
class IndependentLogitNormal:
    """Independent logit-normal model per arm (no borrowing), fitted by quadrature, not MCMC.

    ``logit p_k = logit(null_k) + delta_k``, ``delta_k ~ Normal(mean_k, sd_k)`` independently.

    Parameters
    ----------
    prior
        ``"unit_information"``: ``mean_k = 0`` and ``sd_k = 1 / sqrt(null_k (1 - null_k))``, the
        unit-information prior of Neuenschwander et al. (2016) / RBesT (one patient's worth of
        information on the log-odds scale, centred on the null rate); or ``"normal"``: the
        explicit ``mean`` and ``sd``.
    mean, sd
        Scalars or one value per arm (``prior="normal"`` only; ``sd`` required then).
    """

    prior: Literal["unit_information", "normal"] = "unit_information"
    mean: float | tuple[float, ...] = 0.0
    sd: float | tuple[float, ...] | None = None
    name = "independent_logit_normal"

    def __post_init__(self):
        if self.prior == "unit_information":
            if self.sd is not None or np.any(np.asarray(self.mean, float) != 0.0):
                raise ValueError(
                    "IndependentLogitNormal: prior='unit_information' fixes mean 0 and "
                    "sd 1/sqrt(null (1 - null)); give prior='normal' with mean and sd for another prior"
                )
        elif self.prior == "normal":
            if self.sd is None:
                raise ValueError("IndependentLogitNormal: prior='normal' needs sd (and optionally mean)")
            if np.any(~(np.asarray(self.sd, float) > 0)):
                raise ValueError(f"IndependentLogitNormal: sd must be > 0, got {self.sd!r}")
        else:
            raise ValueError(
                f"IndependentLogitNormal: unknown prior {self.prior!r}; use 'unit_information' or 'normal'"
            )

    def prior_mean_sd(self, data: BinaryData) -> tuple[np.ndarray, np.ndarray]:
        """Prior mean and sd of ``delta_k`` per arm."""
        k = len(data.arms)
        if self.prior == "unit_information":
            m = np.asarray(data.null_rate, dtype=float)
            return np.zeros(k), 1.0 / np.sqrt(m * (1.0 - m))
        try:
            mean = np.broadcast_to(np.asarray(self.mean, dtype=float), (k,)).copy()
            sd = np.broadcast_to(np.asarray(self.sd, dtype=float), (k,)).copy()
        except ValueError:
            raise ValueError(
                f"IndependentLogitNormal: mean and sd must be scalars or one value per arm ({k})"
            ) from None
        return mean, sd

    def fit(self, data: BinaryData, *, seed: int, settings: SamplerSettings) -> az.InferenceData:
        """Independent draws from each arm's exact posterior (fine grid, inverse CDF), shaped like MCMC."""
        mean, sd = self.prior_mean_sd(data)
        rng = np.random.default_rng(seed)
        shape = (settings.chains, settings.draws)
        k = len(data.arms)
        u = rng.random((*shape, k))
        delta = np.empty((*shape, k))
        for j in range(k):
            grid = logit_normal_grid(data.n[j], data.y[j], data.null_rate[j], mean[j], sd[j])
            delta[..., j] = grid.quantile(u[..., j])
        coords = {
            "chain": np.arange(settings.chains),
            "draw": np.arange(settings.draws),
            "arm": list(data.arms),
        }
        dims = ("chain", "draw", "arm")
        post = xr.Dataset(
            {"delta": (dims, delta), "p": (dims, special.expit(data.offset + delta))},
            coords=coords,
        )
        stats = xr.Dataset(
            {"diverging": (("chain", "draw"), np.zeros(shape, bool))},
            coords={"chain": post.chain, "draw": post.draw},
        )
        idata = az.InferenceData(posterior=post, sample_stats=stats)
        return _with_constant_data(idata, data, self.name)


def _tau_kwargs(tau_cfg) -> dict:
    """``tau_dist``, ``tau_scale``, ``tau_shape`` from a config ``tau:`` block."""
    return {
        "tau_dist": tau_cfg.dist,
        "tau_scale": tau_cfg.scale,
        "tau_shape": getattr(tau_cfg, "shape", None),
    }


def model_from_config(
    cfg: Any,
) -> IndependentBetaBinomial | IndependentLogitNormal | HierarchicalLogistic | Exnex:
    """Build a model object from a config ``model:`` block (pydantic object).

    Kinds: ``independent``; ``independent_logit_normal`` (``prior``: ``unit_information`` or an
    object with ``mean`` and ``sd``); ``hierarchical`` and ``exnex`` (``tau`` may carry
    ``shape`` for ``dist: inverse_gamma``; ``exnex`` may carry ``components``, each with ``mu``,
    ``tau``, ``w`` and optionally ``name``).
    """
    kind = cfg.kind
    if kind == "independent":
        prior = cfg.prior if isinstance(cfg.prior, str) else (cfg.prior.a, cfg.prior.b)
        return IndependentBetaBinomial(prior=prior)
    if kind == "independent_logit_normal":
        prior = getattr(cfg, "prior", "unit_information")
        if isinstance(prior, str):  # the schema allows "unit_information" only
            return IndependentLogitNormal(prior=cast(Literal["unit_information", "normal"], prior))
        return IndependentLogitNormal(prior="normal", mean=prior.mean, sd=prior.sd)
    nex: Any = getattr(cfg, "nex", None)  # a config section (pydantic), or None
    if kind == "exnex" and nex is None:
        raise ValueError("an exnex model needs its non-exchangeable prior `nex`")
    comps = getattr(cfg, "components", None) if kind == "exnex" else None
    if comps:
        components = tuple(
            ExComponent(
                mu_mean=c.mu.mean,
                mu_sd=c.mu.sd,
                **_tau_kwargs(c.tau),
                w=tuple(c.w) if isinstance(c.w, list | tuple) else c.w,
                name=getattr(c, "name", None),
            )
            for c in comps
        )
        return Exnex(nex_mean=nex.mean, nex_sd=nex.sd, components=components)
    common = dict(mu_mean=cfg.mu.mean, mu_sd=cfg.mu.sd, **_tau_kwargs(cfg.tau))
    if kind == "hierarchical":
        if nex is not None:
            common.update(nex_mean=nex.mean, nex_sd=nex.sd)
        return HierarchicalLogistic(**common)
    if kind == "exnex":
        return Exnex(**common, nex_mean=nex.mean, nex_sd=nex.sd, w=cfg.w)
    raise ValueError(f"unknown model kind {kind!r}")
