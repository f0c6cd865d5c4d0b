"""Borrowing models of the basket-trial literature, each checked against an independent computation.

* Inverse-gamma prior on tau^2 (Thall et al. 2003, Berry et al. 2013): tau-cell masses vs
  scipy.stats.invgamma; quadrature vs importance sampling from the prior (tau^2 drawn as 1/Gamma);
  the PyMC log density vs a numpy transcription; NUTS vs quadrature (slow).
* EXNEX with several exchangeable components: product grid == membership enumeration (same grid);
  one component == the single-component quadrature; quadrature vs importance sampling; the PyMC
  log density vs numpy; NUTS vs quadrature (slow).
* EXNEX weights of exactly 0 and 1: identities with the hierarchical and the independent
  logit-normal models (quadrature vs quadrature; the simulator's tables too).
* Independent logit-normal: exact summary vs scipy.integrate.quad; seeded inverse-CDF draws vs the
  exact values (4 MCSE); NUTS on a PyMC transcription of the model (slow).
* Effective sample sizes: known answers (Beta, unit-information, tau -> 0 and tau large).
"""

import time

import numpy as np
import pytest
from scipy import integrate, optimize, special, stats

from decision_rules import DrawsPosterior
from models.batch import HierarchicalBatch
from models.binary import (
    BinaryData,
    ExComponent,
    Exnex,
    HierarchicalLogistic,
    IndependentBetaBinomial,
    IndependentLogitNormal,
    model_from_config,
)
from models.diagnostics import Limits, diagnose
from models.exact import (
    _hyper_grid,
    _tau_cell_log_mass,
    _tau_range,
    beta_moment_ess,
    borrowed_ess,
    exnex_summary,
    hierarchical_summary,
    logit_normal_grid,
    logit_normal_summary,
    no_borrowing_summary,
    prior_ess,
)
from models.sampling import SamplerSettings
from tests.test_models import _quad_logit_normal  # scipy.quad: P(delta > thr), E[p], Var[p]

ARMS = ("a", "b", "c", "d")
N = np.array([20, 15, 30, 12])
Y = np.array([7, 2, 16, 0])
NULL = np.array([0.15, 0.22, 0.35, 0.08])
DATA = BinaryData(ARMS, N, Y, NULL)
OFF = special.logit(NULL)

IG = dict(tau_dist="inverse_gamma", tau_scale=0.25, tau_shape=2.0)  # tau^2 ~ IG(2, 0.25): E tau^2 = 0.25

TWO = (
    ExComponent(mu_mean=0.8, mu_sd=0.5, tau_dist="half_normal", tau_scale=0.3, w=0.4, name="optimistic"),
    ExComponent(mu_mean=-0.5, mu_sd=0.5, **IG, w=0.4, name="pessimistic"),
)


def importance(delta, n=N, y=Y, null=NULL, thr=None):
    """Posterior summaries by weighting prior draws of delta (m, K) with the binomial likelihood."""
    p = special.expit(special.logit(null) + delta)
    logw = stats.binom.logpmf(y, n, p).sum(1)
    w = np.exp(logw - logw.max())
    w /= w.sum()
    mean = w @ p
    var = w @ p**2 - mean**2
    above = w @ (p > (null if thr is None else thr))
    return mean, var, above, 1.0 / np.sum(w**2), w


# ============================================================================= inverse-gamma tau prior
@pytest.mark.parametrize(
    ("a", "b"), [(2.0, 0.25), (1.0, 1.0), (0.5, 0.05), (50.0, 10.0), (0.0005, 5e-6), (0.001, 0.001)]
)
def test_inverse_gamma_tau_cells_match_scipy(a, b):
    """Cell masses of the log-tau grid vs invgamma probabilities of the cells' tau intervals.

    The cells of a log-uniform grid are the intervals between geometric midpoints; the first
    also holds the mass below the lowest node. The masses sum to P(tau <= highest node) (all of it
    up to 1e-6, or what lies under the cap of 1000 for the vague Berry-type priors, e.g. 1.3 %
    for IG(0.0005, 5e-6)); each cell is within 3e-4 of its probability on 61 nodes (O(h^2)).
    """
    lo, hi = _tau_range("inverse_gamma", b, a)
    tau = np.exp(np.linspace(np.log(lo), np.log(hi), 61))
    mass = np.exp(_tau_cell_log_mass(tau, "inverse_gamma", b, a))
    dist = stats.invgamma(a, scale=b)
    edges = np.sqrt(tau[:-1] * tau[1:])
    cdf = np.concatenate([[0.0], dist.cdf(edges**2), [dist.cdf(hi**2)]])
    assert mass.sum() == pytest.approx(dist.cdf(hi**2), abs=2e-6)
    assert np.abs(mass - np.diff(cdf)).max() < 4e-4
    assert np.abs(np.cumsum(mass) - cdf[1:]).max() < 1e-3
    assert dist.cdf(lo**2) == pytest.approx(1e-6, rel=1e-3)  # the lowest node: the 1e-6 quantile
    assert hi <= 1000.0
    # the grid of the hyperparameters uses the same masses
    _, tau_g, log_prior = _hyper_grid(0.0, 1.0, "inverse_gamma", b, 41, 61, tau_shape=a)
    assert np.allclose(tau_g, tau)
    mu_mass = stats.norm.cdf(8) - stats.norm.cdf(-8)
    assert np.exp(log_prior).sum() == pytest.approx(mass.sum() * mu_mass, rel=1e-3)


def test_inverse_gamma_needs_a_shape():
    msg = "needs tau_shape"
    with pytest.raises(ValueError, match=msg):
        HierarchicalLogistic(tau_dist="inverse_gamma", tau_scale=0.25)
    with pytest.raises(ValueError, match=msg):
        Exnex(tau_dist="inverse_gamma", tau_scale=0.25)
    with pytest.raises(ValueError, match=msg):
        ExComponent(tau_dist="inverse_gamma", tau_scale=0.25)
    with pytest.raises(ValueError, match=msg):
        hierarchical_summary(N, Y, NULL, tau_dist="inverse_gamma", tau_scale=0.25)
    with pytest.raises(ValueError, match=msg):
        HierarchicalBatch(NULL, 5, NULL, tau_dist="inverse_gamma", tau_scale=0.25)
    with pytest.raises(ValueError, match="unknown tau prior 'gamma'"):
        HierarchicalLogistic(tau_dist="gamma")
    # the shape is ignored by the other priors
    assert (
        HierarchicalLogistic(tau_shape=3.0).data_dict(DATA).keys()
        == HierarchicalLogistic().data_dict(DATA).keys()
    )


@pytest.mark.parametrize(("a", "b"), [(2.0, 0.25), (0.5, 0.02)])
def test_hierarchical_inverse_gamma_quadrature_matches_importance_sampling(a, b):
    """2 million prior draws with tau^2 = 1 / Gamma(a, rate b) (no scipy.invgamma involved)."""
    rng = np.random.default_rng(31)
    m = 2_000_000
    mu = rng.normal(0.0, 1.0, m)
    tau = np.sqrt(1.0 / rng.gamma(a, 1.0 / b, m))
    delta = mu[:, None] + tau[:, None] * rng.normal(size=(m, len(ARMS)))
    mean_is, var_is, above_is, ess, _ = importance(delta)
    ex = hierarchical_summary(N, Y, NULL, tau_dist="inverse_gamma", tau_scale=b, tau_shape=a)
    se = np.sqrt(above_is * (1 - above_is) / ess)
    assert ess > 20_000
    assert np.all(np.abs(ex.prob_above - above_is) < 4 * se + 1e-3)
    assert np.all(np.abs(ex.mean - mean_is) < 2e-3)
    assert np.allclose(ex.var, var_is, rtol=0.03)
    # the grid-averaging twin (used for the ESS) agrees with the mu-first one; not to 1e-6 for the
    # heavy IG(0.5, 0.02): the mu-first delta grid stops at |delta| = 12, which cuts a little of arm
    # d's posterior (y = 0) at large tau (7e-6 on its mean)
    g = exnex_summary(
        N, Y, NULL, [dict(mu_mean=0.0, mu_sd=1.0, tau_dist="inverse_gamma", tau_scale=b, tau_shape=a, w=1.0)]
    )
    assert np.abs(g.mean - ex.mean).max() < (1e-6 if a > 1 else 2e-5)
    assert np.abs(g.var - ex.var).max() < (1e-7 if a > 1 else 2e-6)
    assert np.abs(g.prob_above - ex.prob_above).max() < 3e-4


def test_exnex_inverse_gamma_quadrature_matches_importance_sampling():
    rng = np.random.default_rng(32)
    m = 2_000_000
    k = len(ARMS)
    mu = rng.normal(0.0, 1.0, m)
    tau = np.sqrt(1.0 / rng.gamma(2.0, 1.0 / 0.25, m))
    ex_delta = mu[:, None] + tau[:, None] * rng.normal(size=(m, k))
    is_ex = rng.random((m, k)) < 0.6
    delta = np.where(is_ex, ex_delta, rng.normal(0.0, 1.5, (m, k)))
    mean_is, var_is, above_is, ess, w = importance(delta)
    ex = hierarchical_summary(N, Y, NULL, w=0.6, nex_sd=1.5, **IG)
    se = np.sqrt(above_is * (1 - above_is) / ess)
    assert np.all(np.abs(ex.prob_above - above_is) < 4 * se + 1e-3)
    assert np.all(np.abs(ex.mean - mean_is) < 3e-3)
    assert np.allclose(ex.var, var_is, rtol=0.04)
    assert np.all(np.abs(ex.prob_exchangeable - w @ is_ex) < 0.01)


def test_batch_inverse_gamma_matches_quadrature():
    """The simulator's tables with an inverse-gamma prior vs the single-data-set quadrature."""
    null = np.array([0.15, 0.35, 0.35, 0.08])
    batch = HierarchicalBatch(null, np.array([10, 10, 10, 8]), null, **IG)
    n = np.array([[10, 10, 8, 6], [5, 3, 10, 8]])
    y = np.array([[3, 6, 1, 0], [1, 1, 9, 3]])
    post = batch.posterior(n, y)
    mean, var = post.mean_var()
    pa = post.prob_above()[..., 0]
    for t in range(len(n)):
        ex = hierarchical_summary(n[t], y[t], null, **IG)
        assert np.abs(mean[t] - ex.mean).max() < 5e-4
        assert np.abs(pa[t] - ex.prob_above).max() < 5e-3
        assert np.abs(var[t] - ex.var).max() < 1e-5


# ============================================================================= PyMC log densities
def _logp_numpy(model: Exnex | HierarchicalLogistic, point: dict, data: BinaryData) -> float:
    """The model's joint log density at an unconstrained point, transcribed with scipy."""
    comps = (
        model.ex_components()
        if isinstance(model, Exnex)
        else (ExComponent(model.mu_mean, model.mu_sd, model.tau_dist, model.tau_scale, model.tau_shape, 1.0),)
    )
    c_count = len(comps)
    mu = np.atleast_1d(point["mu"])
    z = np.asarray(point["z"]).reshape(c_count, -1)
    lp = stats.norm.logpdf(mu, [c.mu_mean for c in comps], [c.mu_sd for c in comps]).sum()
    lp += stats.norm.logpdf(z).sum()
    taus = []
    for i, c in enumerate(comps):
        if c.tau_dist == "inverse_gamma":
            key = "tau2_log__" if c_count == 1 else f"tau2_{i}_log__"
            v = float(point[key])
            lp += stats.invgamma.logpdf(np.exp(v), c.tau_shape, scale=c.tau_scale) + v
            taus.append(np.sqrt(np.exp(v)))
        else:
            key = "tau_log__" if c_count == 1 else f"tau_{i}_log__"
            v = float(point[key])
            dist = stats.halfnorm if c.tau_dist == "half_normal" else stats.halfcauchy
            lp += dist.logpdf(np.exp(v), scale=c.tau_scale) + v
            taus.append(np.exp(v))
    delta_ex = mu[:, None] + np.array(taus)[:, None] * z
    ll_ex = stats.binom.logpmf(data.y, data.n, special.expit(data.offset + delta_ex))  # (C, K)
    if isinstance(model, HierarchicalLogistic):
        return lp + ll_ex.sum()
    dn = np.asarray(point["delta_nex"])
    lp += stats.norm.logpdf(dn, model.nex_mean, model.nex_sd).sum()
    ll_nex = stats.binom.logpmf(data.y, data.n, special.expit(data.offset + dn))
    w_ex, w_nex = model.component_weights(data)
    with np.errstate(divide="ignore"):
        terms = np.concatenate([np.log(w_ex) + ll_ex, (np.log(w_nex) + ll_nex)[None]])
    return lp + special.logsumexp(terms, axis=0).sum()


@pytest.mark.parametrize(
    "model",
    [
        HierarchicalLogistic(**IG),
        Exnex(w=0.5, nex_sd=1.5, **IG),
        Exnex(w=1.0, **IG),
        Exnex(w=0.0),
        Exnex(w=(1.0, 0.0, 1.0, 0.0), tau_dist="half_cauchy", tau_scale=0.3),
        Exnex(nex_sd=1.5, components=TWO),
        Exnex(components=(TWO[0], ExComponent(**IG, w=(0.6, 0.0, 0.5, 0.3)))),  # NEX weight 0 for arm a
    ],
    ids=["hier-ig", "exnex-ig", "exnex-w1", "exnex-w0", "exnex-w01", "two-components", "two-nex0"],
)
def test_pymc_log_density_matches_numpy(model):
    """The PyMC graph (priors, transforms, marginalised membership) vs an independent transcription.

    Also: the gradient is finite with weights of exactly 0 and 1 (log weights of -inf).
    """
    pm_model = model.build(DATA)
    logp = pm_model.compile_logp()
    dlogp = pm_model.compile_dlogp()
    rng = np.random.default_rng(0)
    for _ in range(3):
        point = {k: v + rng.normal(0.0, 0.5, np.shape(v)) for k, v in pm_model.initial_point().items()}
        assert logp(point) == pytest.approx(_logp_numpy(model, point, DATA), abs=1e-8)
        assert np.all(np.isfinite(dlogp(point)))


def test_exnex_structures_get_their_own_compiled_models():
    keys = {
        Exnex().cache_key(DATA),
        Exnex(**IG).cache_key(DATA),
        Exnex(components=TWO).cache_key(DATA),
        Exnex(components=(TWO[1], TWO[0])).cache_key(DATA),
    }
    assert len(keys) == 4
    # one component given as `components` is the single-component structure
    assert Exnex(components=(ExComponent(w=0.5),)).cache_key(DATA) == Exnex().cache_key(DATA)
    assert Exnex(components=(ExComponent(w=0.3),)).data_dict(DATA).keys() == Exnex().data_dict(DATA).keys()


# ============================================================================= several EX components
def test_component_weights_validated():
    with pytest.raises(ValueError, match="sum to more than 1 for arm"):
        Exnex(components=(ExComponent(w=0.6), ExComponent(w=0.5))).component_weights(DATA)
    with pytest.raises(ValueError, match="must lie in"):
        Exnex(components=(ExComponent(w=-0.1),)).component_weights(DATA)
    with pytest.raises(ValueError, match="one value per arm"):
        Exnex(components=(ExComponent(w=(0.5, 0.5)),)).component_weights(DATA)
    with pytest.raises(ValueError, match="at least one"):
        Exnex(components=())
    w_ex, w_nex = Exnex(components=(ExComponent(w=0.7), ExComponent(w=0.3 + 1e-10))).component_weights(DATA)
    assert np.all(w_nex == 0.0) and w_ex.shape == (2, 4)
    assert np.allclose(Exnex(components=TWO).weights(DATA), 0.8)


def test_product_grid_equals_membership_enumeration():
    """Two algebraically identical sums over the same grid: equal to rounding."""
    comps = (TWO[0], ExComponent(mu_mean=-0.5, mu_sd=0.5, **IG, w=(0.4, 0.2, 0.0, 0.5)))
    kw = dict(nex_sd=1.5, n_mu=31, n_tau=15, thresholds=NULL + 0.1)
    a = exnex_summary(N, Y, NULL, comps, method="product", **kw)
    b = exnex_summary(N, Y, NULL, comps, method="enumerate", **kw)
    for f in ("mean", "var", "prob_above", "prob_exchangeable", "prob_component"):
        assert np.allclose(getattr(a, f), getattr(b, f), rtol=0, atol=1e-12), f
    assert np.allclose(a.prob_component[2], [a.prob_component[2, 0], 0.0])


@pytest.mark.parametrize("w", [0.5, (0.3, 0.9, 0.5, 0.1)])
def test_one_component_equals_single_component_quadrature(w):
    """exnex_summary (grid averaging) vs hierarchical_summary (mu-first): two integration orders."""
    ex = hierarchical_summary(N, Y, NULL, w=np.asarray(w), nex_sd=1.5, **IG)
    got = exnex_summary(N, Y, NULL, [ExComponent(**IG, w=w)], nex_sd=1.5)
    assert np.abs(got.mean - ex.mean).max() < 1e-6
    assert np.abs(got.var - ex.var).max() < 1e-7
    assert np.abs(got.prob_exchangeable - ex.prob_exchangeable).max() < 1e-6
    assert np.abs(got.prob_above - ex.prob_above).max() < 2e-4
    assert got.prob_component.shape == (4, 1)


def test_two_components_quadrature_matches_importance_sampling():
    """2 million draws from the two-component EXNEX prior, weighted by the likelihood.

    Measured agreement: means within 1e-3, probabilities within 4 IS standard errors + 1e-3,
    variances within 3 %, component memberships within 0.01.
    """
    rng = np.random.default_rng(33)
    m = 2_000_000
    k = len(ARMS)
    mu1 = rng.normal(0.8, 0.5, m)
    tau1 = np.abs(rng.normal(0.0, 0.3, m))
    mu2 = rng.normal(-0.5, 0.5, m)
    tau2 = np.sqrt(1.0 / rng.gamma(2.0, 1.0 / 0.25, m))
    d1 = mu1[:, None] + tau1[:, None] * rng.normal(size=(m, k))
    d2 = mu2[:, None] + tau2[:, None] * rng.normal(size=(m, k))
    dn = rng.normal(0.0, 1.5, (m, k))
    u = rng.random((m, k))
    member = (u >= 0.4).astype(int) + (u >= 0.8)  # 0, 1: EX components; 2: NEX
    delta = np.choose(member, [d1, d2, dn])
    mean_is, var_is, above_is, ess, w = importance(delta)
    ex = exnex_summary(N, Y, NULL, TWO, nex_sd=1.5)
    se = np.sqrt(above_is * (1 - above_is) / ess)
    assert ess > 10_000
    assert np.all(np.abs(ex.prob_above - above_is) < 4 * se + 1e-3)
    assert np.all(np.abs(ex.mean - mean_is) < 2e-3)
    assert np.allclose(ex.var, var_is, rtol=0.03)
    for c in range(2):
        assert np.all(np.abs(ex.prob_component[:, c] - w @ (member == c)) < 0.01)
    assert np.allclose(ex.prob_exchangeable, ex.prob_component.sum(1))


def test_batch_supports_one_component_only():
    with pytest.raises(NotImplementedError, match="supports one exchangeable EXNEX component"):
        HierarchicalBatch(NULL, 5, NULL, components=TWO)
    one = HierarchicalBatch(NULL, 6, NULL, components=(ExComponent(**IG, w=0.5),), n_mu=21, n_tau=9)
    plain = HierarchicalBatch(NULL, 6, NULL, w=0.5, n_mu=21, n_tau=9, **IG)
    n, y = np.array([[6, 3, 5, 2]]), np.array([[2, 0, 4, 1]])
    assert np.array_equal(one.posterior(n, y).prob_above(), plain.posterior(n, y).prob_above())


# ============================================================================= weights 0 and 1
def test_exnex_weight_one_is_the_hierarchical_model():
    hier = hierarchical_summary(N, Y, NULL, **IG)
    ex = hierarchical_summary(N, Y, NULL, w=1.0, **IG)
    assert np.allclose(ex.mean, hier.mean, atol=1e-12) and np.allclose(
        ex.prob_above, hier.prob_above, atol=1e-12
    )
    assert np.allclose(ex.var, hier.var, atol=1e-12) and np.allclose(ex.prob_exchangeable, 1.0, atol=1e-12)
    g = exnex_summary(N, Y, NULL, [ExComponent(**IG, w=1.0)])
    assert np.abs(g.mean - hier.mean).max() < 1e-6 and np.abs(g.prob_above - hier.prob_above).max() < 2e-4


def test_exnex_weight_zero_is_independent_logit_normal():
    ln = logit_normal_summary(N, Y, NULL, 0.3, 1.5)
    for ex in (
        hierarchical_summary(N, Y, NULL, w=0.0, nex_mean=0.3, nex_sd=1.5, n_mu=31, n_tau=21),
        exnex_summary(N, Y, NULL, [ExComponent(w=0.0)], nex_mean=0.3, nex_sd=1.5, n_mu=31, n_tau=21),
        exnex_summary(N, Y, NULL, [ExComponent(w=0.0), ExComponent(**IG, w=0.0)], nex_mean=0.3, nex_sd=1.5),
    ):
        assert np.abs(ex.mean - ln.mean).max() < 1e-9
        assert np.abs(ex.var - ln.var).max() < 1e-9
        assert np.abs(ex.prob_above - ln.prob_above).max() < 2e-5  # 161 vs 321 standardised nodes
        assert np.all(ex.prob_exchangeable == 0.0)


def test_per_arm_mix_of_zero_and_one():
    """w = (1, 0, 1, 0): arms a, c form a hierarchical model on their own data; b, d are alone."""
    w = np.array([1.0, 0.0, 1.0, 0.0])
    ex_arms, nex_arms = [0, 2], [1, 3]
    hier = hierarchical_summary(N[ex_arms], Y[ex_arms], NULL[ex_arms], **IG)
    ln = logit_normal_summary(N[nex_arms], Y[nex_arms], NULL[nex_arms], 0.0, 2.0)
    mixed = hierarchical_summary(N, Y, NULL, w=w, **IG)
    grid = exnex_summary(N, Y, NULL, [ExComponent(**IG, w=tuple(w))])
    two = exnex_summary(N, Y, NULL, [ExComponent(**IG, w=tuple(w)), ExComponent(w=0.0)])
    for s, tol_p in ((mixed, 1e-9), (grid, 2e-4), (two, 2e-4)):
        assert np.abs(s.mean[ex_arms] - hier.mean).max() < 1e-6
        assert np.abs(s.prob_above[ex_arms] - hier.prob_above).max() < tol_p
        assert np.abs(s.mean[nex_arms] - ln.mean).max() < 1e-8  # 161 vs 321 standardised nodes
        assert np.abs(s.prob_above[nex_arms] - ln.prob_above).max() < 2e-5
        assert np.allclose(s.prob_exchangeable, w, rtol=0, atol=1e-12)
    # the simulator's tables
    batch = HierarchicalBatch(NULL, np.array([20, 15, 30, 12]), NULL, w=w, **IG)
    post = batch.posterior(N[None], Y[None])
    mean, _ = post.mean_var()
    assert np.abs(mean[0, ex_arms] - hier.mean).max() < 5e-4
    assert np.abs(mean[0, nex_arms] - ln.mean).max() < 1e-6
    assert np.abs(post.prob_above()[0, :, 0][ex_arms] - hier.prob_above).max() < 5e-3
    assert np.array_equal(post.prob_exchangeable()[0], w)


# ============================================================================= independent logit-normal
def test_logit_normal_summary_matches_scipy_quad():
    thr = np.array([0.3, 0.1, 0.5, 0.05])
    m, s = np.array([0.0, 0.5, -0.3, 0.0]), np.array([2.8, 1.0, 2.0, 0.7])
    ex = logit_normal_summary(N, Y, NULL, m, s, thr)
    for k in range(len(ARMS)):
        above, mean, var = _quad_logit_normal(N[k], Y[k], OFF[k], m[k], s[k], special.logit(thr[k]) - OFF[k])
        assert ex.prob_above[k] == pytest.approx(above, abs=2e-6)
        assert ex.mean[k] == pytest.approx(mean, abs=1e-8)
        assert ex.var[k] == pytest.approx(var, abs=1e-9)


def test_unit_information_prior():
    mean, sd = IndependentLogitNormal().prior_mean_sd(DATA)
    assert np.all(mean == 0) and np.allclose(sd, 1 / np.sqrt(NULL * (1 - NULL)))
    m, s = IndependentLogitNormal(prior="normal", mean=(0, 1, 0, 0), sd=2.0).prior_mean_sd(DATA)
    assert np.array_equal(m, [0, 1, 0, 0]) and np.all(s == 2.0)
    with pytest.raises(ValueError, match="prior='normal' needs sd"):
        IndependentLogitNormal(prior="normal")
    with pytest.raises(ValueError, match="fixes mean 0"):
        IndependentLogitNormal(sd=1.0)
    with pytest.raises(ValueError, match="unknown prior"):
        IndependentLogitNormal(prior="flat")
    with pytest.raises(ValueError, match="one value per arm"):
        IndependentLogitNormal(prior="normal", sd=(1.0, 2.0)).prior_mean_sd(DATA)


def test_logit_normal_draws_match_exact():
    """Inverse-CDF draws (4 x 5000, independent) vs the exact posterior: within 4 MCSE."""
    model = IndependentLogitNormal()
    settings = SamplerSettings(chains=4, draws=5000)
    idata = model.fit(DATA, seed=12, settings=settings)
    assert idata.posterior["p"].dims == ("chain", "draw", "arm")
    assert list(idata.posterior.arm.values) == list(ARMS)
    assert idata.posterior.attrs["model"] == "independent_logit_normal"
    assert not idata.sample_stats["diverging"].any()
    assert np.array_equal(idata.constant_data["n"].values, N)
    post = DrawsPosterior(idata.posterior["p"])
    mean, sd = model.prior_mean_sd(DATA)
    for thr in (NULL, NULL + 0.1):
        exact = logit_normal_summary(N, Y, NULL, mean, sd, thr)
        for k, arm in enumerate(ARMS):
            est = post.prob_above(arm, thr[k])
            assert abs(est.prob - exact.prob_above[k]) < 4 * max(est.mcse, 1e-4), (arm, thr[k])
            assert abs(post.mean(arm) - exact.mean[k]) < 4 * np.sqrt(exact.var[k] / 20_000)
    draws = idata.posterior["p"].values.reshape(-1, 4)
    assert np.allclose(draws.var(0), exact.var, rtol=0.05)


def test_logit_normal_fit_is_seeded_and_leaves_global_state_alone():
    s = SamplerSettings(chains=2, draws=100)
    m = IndependentLogitNormal(prior="normal", mean=0.2, sd=1.5)
    state = np.random.get_state()[1].copy()
    a = m.fit(DATA, seed=1, settings=s).posterior.p.values
    assert np.array_equal(a, m.fit(DATA, seed=1, settings=s).posterior.p.values)
    assert not np.array_equal(a, m.fit(DATA, seed=2, settings=s).posterior.p.values)
    assert np.array_equal(state, np.random.get_state()[1])


def test_logit_normal_grid_quantiles_match_scipy():
    """Quantiles of the fine grid vs brentq on the scipy.quad CDF."""
    n, y, null, m, s = 15, 2, 0.22, 0.0, 2.0
    off = special.logit(null)
    f = lambda d: stats.binom.pmf(y, n, special.expit(off + d)) * stats.norm.pdf(d, m, s)  # noqa: E731
    z = integrate.quad(f, -25, 25, limit=400)[0]
    grid = logit_normal_grid(n, y, null, m, s)
    for q in (0.001, 0.025, 0.5, 0.975, 0.999):
        want = optimize.brentq(lambda x, q=q: integrate.quad(f, -25, x, limit=400)[0] / z - q, -20, 20)
        assert grid.quantile(q) == pytest.approx(want, abs=1e-4)


@pytest.mark.slow
def test_logit_normal_nuts_matches_quadrature_fit():
    """A PyMC transcription of the model (second implementation) sampled with NUTS."""
    import pymc as pm

    model = IndependentLogitNormal()
    mean, sd = model.prior_mean_sd(DATA)
    with pm.Model(coords={"arm": list(ARMS)}):
        delta = pm.Normal("delta", mean, sd, dims="arm")
        p = pm.Deterministic("p", pm.math.invlogit(OFF + delta), dims="arm")
        pm.Binomial("y", n=N, p=p, observed=Y, dims="arm")
        idata = pm.sample(draws=3000, tune=1000, chains=4, cores=2, random_seed=8, progressbar=False)
    nuts = DrawsPosterior(idata.posterior["p"])
    grid = DrawsPosterior(
        model.fit(DATA, seed=8, settings=SamplerSettings(chains=4, draws=3000)).posterior["p"]
    )
    exact = logit_normal_summary(N, Y, NULL, mean, sd)
    for k, arm in enumerate(ARMS):
        assert abs(nuts.prob_above(arm, NULL[k]).prob - exact.prob_above[k]) < 0.01
        assert abs(nuts.prob_above(arm, NULL[k]).prob - grid.prob_above(arm, NULL[k]).prob) < 0.015
        assert nuts.mean(arm) == pytest.approx(exact.mean[k], abs=0.005)


# ============================================================================= effective sample sizes
def test_beta_moment_ess_is_a_plus_b():
    for a, b in [(0.15, 0.85), (1, 1), (2, 3), (30, 70)]:
        m, v = a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))
        assert beta_moment_ess(m, v) == pytest.approx(a + b, rel=1e-12)
    assert np.array_equal(prior_ess(IndependentBetaBinomial(), DATA), np.ones(4))
    assert np.array_equal(prior_ess(IndependentBetaBinomial((2.0, 3.0)), DATA), np.full(4, 5.0))
    res = borrowed_ess(IndependentBetaBinomial((2.0, 3.0)), DATA)
    assert [r.effective_prior_ess for r in res] == [5.0] * 4
    assert [r.posterior_ess for r in res] == list(5.0 + N)
    assert [r.n for r in res] == list(N)


def test_unit_information_logit_normal_has_moment_ess_about_one():
    """Moment ESS of the unit-information logit-normal prior, by scipy.quad.

    Values: 0.51 (null 0.05), 0.79 (0.10), 1.00 (0.15), 1.16 (0.20), 1.38 (0.30), 1.54 (0.50):
    one patient's worth of information on the logit scale is about one patient on the rate
    scale, exactly so near a null rate of 0.15 (the moment ESS is not invariant to the scale).
    """
    want = {0.05: 0.515, 0.10: 0.792, 0.15: 1.002, 0.20: 1.163, 0.30: 1.382, 0.50: 1.536}
    null = np.array(list(want))
    data = BinaryData(tuple(map(str, null)), np.zeros(6, int), np.zeros(6, int), null)
    got = prior_ess(IndependentLogitNormal(), data)
    for k, m in enumerate(null):
        s = 1 / np.sqrt(m * (1 - m))
        mom = [
            integrate.quad(
                lambda d, j=j, m=m, s=s: special.expit(special.logit(m) + d) ** j * stats.norm.pdf(d, 0, s),
                -15 * s,
                15 * s,
            )[0]
            for j in (1, 2)
        ]
        assert got[k] == pytest.approx(beta_moment_ess(mom[0], mom[1] - mom[0] ** 2), rel=1e-6)
        assert got[k] == pytest.approx(want[m], abs=1e-3)


def test_prior_ess_of_the_logistic_models_by_monte_carlo():
    """Quadrature prior ESS vs a million prior draws (moments of p by Monte Carlo)."""
    rng = np.random.default_rng(40)
    m = 1_000_000
    k = len(ARMS)
    models = {
        "hier": HierarchicalLogistic(**IG),
        "exnex": Exnex(w=(0.5, 1.0, 0.0, 0.2), nex_sd=1.5, **IG),
        "two": Exnex(nex_sd=1.5, components=TWO),
    }
    mu2 = rng.normal(0.0, 1.0, m)
    tau2 = np.sqrt(1.0 / rng.gamma(2.0, 1.0 / 0.25, m))
    ig = mu2[:, None] + tau2[:, None] * rng.normal(size=(m, k))
    nex = rng.normal(0.0, 1.5, (m, k))
    u = rng.random((m, k))
    opt = rng.normal(0.8, 0.5, m)[:, None] + np.abs(rng.normal(0, 0.3, m))[:, None] * rng.normal(size=(m, k))
    pess = rng.normal(-0.5, 0.5, m)[:, None] + tau2[:, None] * rng.normal(size=(m, k))
    draws = {
        "hier": ig,
        "exnex": np.where(u < np.array([0.5, 1.0, 0.0, 0.2]), ig, nex),
        "two": np.choose((u >= 0.4).astype(int) + (u >= 0.8), [opt, pess, nex]),
    }
    for name, model in models.items():
        p = special.expit(OFF + draws[name])
        mc = beta_moment_ess(p.mean(0), p.var(0))
        assert np.allclose(prior_ess(model, DATA), mc, rtol=0.01), name


def test_effective_prior_without_other_data_is_the_prior():
    """With no data in the other arms, the effective prior of arm a is its prior (two codes agree)."""
    data = BinaryData(ARMS, np.array([20, 0, 0, 0]), np.array([7, 0, 0, 0]), NULL)
    for model in (HierarchicalLogistic(**IG), Exnex(w=0.5), Exnex(components=TWO)):
        res = borrowed_ess(model, data, n_mu=81, n_tau=25)
        prior = prior_ess(model, data)
        assert res[0].effective_prior_ess == pytest.approx(prior[0], rel=2e-4)
        assert res[0].prior_ess == prior[0]


def test_effective_prior_ess_grows_with_the_other_arms_when_tau_is_tiny():
    """tau^2 ~ IG(100, 99e-6) (tau ~ 0.001): full pooling, so arm a's effective prior carries
    about its prior ESS plus the other arms' patients (weighted by p(1-p), equal here)."""
    model = HierarchicalLogistic(tau_dist="inverse_gamma", tau_scale=99e-6, tau_shape=100.0)
    null = np.full(4, 0.2)
    eff = []
    for other in (0, 10, 40, 160, 320):
        n = np.array([10, other, other, other])
        res = borrowed_ess(model, BinaryData(ARMS, n, np.round(n * 0.25).astype(int), null), n_tau=25)
        eff.append(res[0].effective_prior_ess)
        assert res[0].effective_prior_ess == pytest.approx(res[0].prior_ess + 3 * other, rel=0.02)
        # the moment ESS is nearly additive: own patients add about their number
        assert res[0].posterior_ess == pytest.approx(res[0].effective_prior_ess + 10, abs=0.5)
    assert np.all(np.diff(eff) > 0)


def test_effective_prior_ess_is_the_prior_ess_when_tau_is_large():
    """tau^2 ~ IG(100, 9900) (tau ~ 10): the other arms say nothing about arm a."""
    model = HierarchicalLogistic(tau_dist="inverse_gamma", tau_scale=9900.0, tau_shape=100.0)
    for other in (0, 20, 320):
        n = np.array([10, other, other, other])
        res = borrowed_ess(
            model, BinaryData(ARMS, n, np.round(n * 0.25).astype(int), np.full(4, 0.2)), n_tau=25
        )
        assert res[0].effective_prior_ess == pytest.approx(res[0].prior_ess, rel=0.02)
        assert abs(res[0].borrowed) < 0.01


def test_no_borrowing_summary_is_the_arm_alone():
    thr = NULL + 0.05
    for model, (m, s) in (
        (HierarchicalLogistic(), (0.0, 2.0)),
        (Exnex(nex_mean=0.3, nex_sd=1.5, components=TWO), (0.3, 1.5)),
        (IndependentLogitNormal(prior="normal", mean=0.1, sd=1.2), (0.1, 1.2)),
    ):
        res = no_borrowing_summary(model, DATA, thr)
        for k in range(len(ARMS)):
            above, mean, var = _quad_logit_normal(N[k], Y[k], OFF[k], m, s, special.logit(thr[k]) - OFF[k])
            assert res.prob_above[k] == pytest.approx(above, abs=2e-6)
            assert res.mean[k] == pytest.approx(mean, abs=1e-8)
            assert res.var[k] == pytest.approx(var, abs=1e-9)

            def f(d, k=k, m=m, s=s):
                return stats.binom.pmf(Y[k], N[k], special.expit(OFF[k] + d)) * stats.norm.pdf(d, m, s)

            z = integrate.quad(f, -25, 25, limit=400)[0]
            if k not in (1, 3):  # intervals by nested quad are slow: arms b (y=2) and d (y=0)
                continue
            for q, got in ((0.025, res.lower[k]), (0.975, res.upper[k])):
                d = optimize.brentq(
                    lambda x, q=q, f=f, z=z: integrate.quad(f, -25, x, limit=400)[0] / z - q, -20, 20
                )
                assert got == pytest.approx(special.expit(OFF[k] + d), abs=2e-5)
    beta = no_borrowing_summary(IndependentBetaBinomial((1.0, 1.0)), DATA)
    assert np.allclose(beta.lower, stats.beta.ppf(0.025, 1 + Y, 1 + N - Y))
    assert np.allclose(beta.prob_above, stats.beta.sf(NULL, 1 + Y, 1 + N - Y))


# ============================================================================= config wiring
class _Cfg:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def test_model_from_config_new_kinds():
    normal = lambda m, s: _Cfg(mean=m, sd=s)  # noqa: E731
    assert (
        model_from_config(_Cfg(kind="independent_logit_normal", prior="unit_information"))
        == IndependentLogitNormal()
    )
    assert model_from_config(
        _Cfg(kind="independent_logit_normal", prior=normal(0.1, 1.5))
    ) == IndependentLogitNormal(prior="normal", mean=0.1, sd=1.5)
    tau = _Cfg(dist="inverse_gamma", shape=2.0, scale=0.25)
    hier = model_from_config(_Cfg(kind="hierarchical", mu=normal(0, 1), tau=tau, nex=normal(0, 2)))
    assert hier == HierarchicalLogistic(**IG)
    comps = [
        _Cfg(mu=normal(0.8, 0.5), tau=_Cfg(dist="half_normal", scale=0.3), w=0.4, name="optimistic"),
        _Cfg(mu=normal(-0.5, 0.5), tau=tau, w=0.4, name="pessimistic"),
    ]
    ex = model_from_config(_Cfg(kind="exnex", mu=None, tau=None, nex=normal(0, 1.5), w=0.5, components=comps))
    assert ex == Exnex(nex_sd=1.5, components=TWO)


# ============================================================================= NUTS vs quadrature
def _check(idata, exact, tol_prob=0.015, tol_mean=0.01, data=DATA):
    post = DrawsPosterior(idata.posterior["p"])
    for k, arm in enumerate(data.arms):
        assert post.mean(arm) == pytest.approx(exact.mean[k], abs=tol_mean), arm
        est = post.prob_above(arm, data.null_rate[k])
        assert abs(est.prob - exact.prob_above[k]) < max(tol_prob, 4 * est.mcse), arm


@pytest.mark.slow
def test_hierarchical_inverse_gamma_nuts_matches_quadrature():
    t0 = time.perf_counter()
    model = HierarchicalLogistic(**IG)
    idata = model.fit(
        DATA, seed=21, settings=SamplerSettings(chains=4, draws=2500, tune=1000, target_accept=0.95)
    )
    assert diagnose(idata, Limits(min_ess_bulk=400)).converged
    assert "tau2" in idata.posterior and np.allclose(idata.posterior["tau"] ** 2, idata.posterior["tau2"])
    _check(idata, hierarchical_summary(N, Y, NULL, **IG))
    print(f"hierarchical IG NUTS: {time.perf_counter() - t0:.1f} s")


@pytest.mark.slow
def test_exnex_inverse_gamma_with_weights_zero_and_one_nuts():
    """w = (1, 0, 0.5, 1): memberships fixed where w is 0 or 1; NUTS vs quadrature."""
    w = (1.0, 0.0, 0.5, 1.0)
    model = Exnex(w=w, nex_sd=1.5, **IG)
    idata = model.fit(
        DATA, seed=22, settings=SamplerSettings(chains=4, draws=2500, tune=1000, target_accept=0.95)
    )
    assert diagnose(idata, Limits(min_ess_bulk=400)).converged
    post = idata.posterior
    pe = post["prob_exchangeable"].values
    assert np.all(pe[..., [0, 3]] == 1.0) and np.all(pe[..., 1] == 0.0)
    assert np.array_equal(post["delta"].values[..., 0], post["delta_ex"].values[..., 0])
    assert np.array_equal(post["delta"].values[..., 1], post["delta_nex"].values[..., 1])
    exact = hierarchical_summary(N, Y, NULL, w=np.array(w), nex_sd=1.5, **IG)
    _check(idata, exact)
    assert abs(float(pe[..., 2].mean()) - exact.prob_exchangeable[2]) < 0.02


SMALL = BinaryData(("a", "b", "c"), np.array([10, 8, 12]), np.array([5, 0, 3]), np.array([0.2, 0.2, 0.25]))


@pytest.mark.slow
def test_two_component_exnex_nuts_matches_quadrature():
    model = Exnex(nex_sd=1.5, components=TWO)
    idata = model.fit(
        SMALL, seed=23, settings=SamplerSettings(chains=4, draws=3000, tune=1500, target_accept=0.95)
    )
    assert diagnose(idata, Limits(min_ess_bulk=400)).converged
    post = idata.posterior
    assert post["prob_component"].dims == ("chain", "draw", "arm", "component")
    assert list(post.component.values) == ["optimistic", "pessimistic"]
    assert np.allclose(post["prob_component"].sum("component"), post["prob_exchangeable"])
    exact = exnex_summary(SMALL.n, SMALL.y, SMALL.null_rate, TWO, nex_sd=1.5)
    _check(idata, exact, data=SMALL)
    pc = post["prob_component"].mean(("chain", "draw")).values
    assert np.abs(pc - exact.prob_component).max() < 0.02
