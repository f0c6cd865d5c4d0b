"""Binary models checked against independent computations.

* Independent Beta-binomial draws vs the Beta CDF (closed form).
* The quadrature twin (models.exact) vs scipy.integrate.quad and vs importance sampling from the
  prior: an independent check of the checker.
* NUTS fits (nutpie, and PyMC's own sampler as a second sampler) vs the quadrature twin: slow.
"""

import arviz as az
import numpy as np
import pytest
import xarray as xr
from scipy import integrate, special, stats

from decision_rules import DrawsPosterior
from models.binary import BinaryData, Exnex, HierarchicalLogistic, IndependentBetaBinomial
from models.diagnostics import Limits, diagnose
from models.exact import beta_binomial_summary, hierarchical_summary
from models.fitting import fit_with_retries
from models.sampling import SamplerSettings, derive_seed

ARMS = ("a", "b", "c", "d")
N = np.array([20, 15, 30, 12])
Y = np.array([7, 2, 16, 0])
NULL = np.array([0.15, 0.22, 0.35, 0.08])
DATA = BinaryData(ARMS, N, Y, NULL)


# ----------------------------------------------------------------------------- independent
@pytest.mark.parametrize("prior", ["unit_information", "uniform", "jeffreys", (2.0, 3.0)])
def test_independent_prob_above_equals_beta_cdf(prior):
    model = IndependentBetaBinomial(prior=prior)
    idata = model.fit(DATA, seed=11, settings=SamplerSettings(chains=4, draws=5000))
    post = DrawsPosterior(idata.posterior["p"])
    a, b = model.posterior_ab(DATA)
    exact = beta_binomial_summary(a, b, NULL)
    for k, arm in enumerate(ARMS):
        est = post.prob_above(arm, NULL[k])
        assert abs(est.prob - stats.beta.sf(NULL[k], a[k], b[k])) < 4 * max(est.mcse, 1e-4)
        assert abs(post.mean(arm) - exact.mean[k]) < 4 * np.sqrt(
            a[k] * b[k] / ((a[k] + b[k]) ** 2 * (a[k] + b[k] + 1)) / 20000
        )


def test_unit_information_prior_is_one_patient():
    a, b = IndependentBetaBinomial().prior_ab(DATA)
    assert np.allclose(a + b, 1.0) and np.allclose(a, NULL)


def test_independent_fit_is_seeded():
    s = SamplerSettings(chains=2, draws=100)
    m = IndependentBetaBinomial()
    assert np.array_equal(
        m.fit(DATA, seed=1, settings=s).posterior.p, m.fit(DATA, seed=1, settings=s).posterior.p
    )
    assert not np.array_equal(
        m.fit(DATA, seed=1, settings=s).posterior.p, m.fit(DATA, seed=2, settings=s).posterior.p
    )


def test_binary_data_validation():
    with pytest.raises(ValueError, match="0 <= y <= n"):
        BinaryData(("a",), np.array([3]), np.array([4]), np.array([0.2]))
    with pytest.raises(ValueError, match="shape"):
        BinaryData(("a", "b"), np.array([3]), np.array([1]), np.array([0.2]))


# ----------------------------------------------------------------------------- quadrature checks
def _quad_logit_normal(n, y, off, m, s, thr):
    """P(delta > thr), E[p], Var[p] for y ~ Bin(n, expit(off + delta)), delta ~ N(m, s), by scipy.quad."""
    f = lambda d: stats.binom.pmf(y, n, special.expit(off + d)) * stats.norm.pdf(d, m, s)  # noqa: E731
    lo, hi = m - 12 * s, m + 12 * s
    z = integrate.quad(f, lo, hi, points=[thr], limit=400)[0]
    above = integrate.quad(f, thr, hi, limit=400)[0] / z
    mean = integrate.quad(lambda d: f(d) * special.expit(off + d), lo, hi, limit=400)[0] / z
    m2 = integrate.quad(lambda d: f(d) * special.expit(off + d) ** 2, lo, hi, limit=400)[0] / z
    return above, mean, m2 - mean**2


def test_exnex_with_w_zero_reduces_to_independent_logit_normal():
    thr = np.array([0.3, 0.3, 0.5, 0.2])
    ex = hierarchical_summary(N, Y, NULL, thresholds=thr, w=0.0, nex_mean=0.3, nex_sd=1.5, n_mu=31, n_tau=21)
    off = special.logit(NULL)
    for k in range(len(ARMS)):
        above, mean, _ = _quad_logit_normal(N[k], Y[k], off[k], 0.3, 1.5, special.logit(thr[k]) - off[k])
        assert ex.prob_above[k] == pytest.approx(above, abs=2e-5)
        assert ex.mean[k] == pytest.approx(mean, abs=1e-5)


def test_hierarchical_quadrature_matches_importance_sampling():
    """Posterior by weighting 2 million prior draws by the likelihood: fully independent code."""
    rng = np.random.default_rng(2024)
    m = 2_000_000
    mu = rng.normal(0.0, 1.0, m)
    tau = np.abs(rng.normal(0.0, 0.5, m))
    delta = mu[:, None] + tau[:, None] * rng.normal(size=(m, len(ARMS)))
    p = special.expit(special.logit(NULL) + delta)
    logw = stats.binom.logpmf(Y, N, p).sum(1)
    w = np.exp(logw - logw.max())
    w /= w.sum()
    ess = 1.0 / np.sum(w**2)
    mean_is = w @ p
    above_is = w @ (p > NULL)
    ex = hierarchical_summary(N, Y, NULL)
    se = np.sqrt(above_is * (1 - above_is) / ess)
    assert ess > 20_000
    assert np.all(np.abs(ex.prob_above - above_is) < 4 * se + 1e-3)
    assert np.all(np.abs(ex.mean - mean_is) < 2e-3)


def test_exnex_quadrature_matches_importance_sampling():
    rng = np.random.default_rng(7)
    m = 2_000_000
    k = len(ARMS)
    mu = rng.normal(0.0, 1.0, m)
    tau = np.abs(rng.normal(0.0, 0.5, m))
    ex_delta = mu[:, None] + tau[:, None] * rng.normal(size=(m, k))
    nex_delta = rng.normal(0.0, 2.0, size=(m, k))
    is_ex = rng.random((m, k)) < 0.5
    delta = np.where(is_ex, ex_delta, nex_delta)
    p = special.expit(special.logit(NULL) + delta)
    logw = stats.binom.logpmf(Y, N, p).sum(1)
    w = np.exp(logw - logw.max())
    w /= w.sum()
    ess = 1.0 / np.sum(w**2)
    ex = hierarchical_summary(N, Y, NULL, w=0.5, nex_sd=2.0)
    above_is = w @ (p > NULL)
    se = np.sqrt(above_is * (1 - above_is) / ess)
    assert np.all(np.abs(ex.prob_above - above_is) < 4 * se + 1e-3)
    assert np.all(np.abs(ex.mean - w @ p) < 3e-3)
    assert np.all(np.abs(ex.prob_exchangeable - w @ is_ex) < 0.01)


def test_tiny_tau_pools_completely():
    """With tau ~ 0 every arm shares delta = mu: compare with a 1-D quadrature over mu."""
    ex = hierarchical_summary(N, Y, NULL, tau_scale=1e-4, n_tau=41)
    off = special.logit(NULL)
    f = lambda d: np.exp(stats.binom.logpmf(Y, N, special.expit(off + d)).sum()) * stats.norm.pdf(d)  # noqa: E731
    z = integrate.quad(f, -8, 8, limit=400)[0]
    for k in range(len(ARMS)):
        mean = integrate.quad(lambda d, k=k: f(d) * special.expit(off[k] + d), -8, 8, limit=400)[0] / z
        assert ex.mean[k] == pytest.approx(mean, abs=1e-4)
        above = integrate.quad(f, 0, 8, limit=400)[0] / z
        assert ex.prob_above[k] == pytest.approx(above, abs=2e-3)


# ----------------------------------------------------------------------------- diagnostics
def _idata(chains):
    arr = np.asarray(chains)[..., None]
    post = xr.Dataset({"p": (("chain", "draw", "arm"), arr)}, coords={"arm": ["a"]})
    stats_ = xr.Dataset({"diverging": (("chain", "draw"), np.zeros(arr.shape[:2], bool))})
    return az.InferenceData(posterior=post, sample_stats=stats_)


def test_diagnostics_flag_disagreeing_chains():
    rng = np.random.default_rng(0)
    good = _idata(rng.normal(size=(4, 1000)))
    assert diagnose(good, Limits()).converged
    bad = _idata(rng.normal(size=(4, 1000)) + np.array([[0], [0], [0], [3]]))
    d = diagnose(bad, Limits())
    assert not d.converged and d.max_rhat > 1.1
    assert any("R-hat" in f for f in d.failures)


def test_diagnostics_count_divergences():
    rng = np.random.default_rng(1)
    idata = _idata(rng.normal(size=(2, 1000)))
    idata.sample_stats["diverging"][0, :3] = True
    d = diagnose(idata, Limits(max_divergences=0))
    assert d.divergences == 3 and not d.converged
    assert diagnose(idata, Limits(max_divergences=5)).converged


class _FlakyModel:
    """Returns a non-converged fit until the target acceptance reaches 0.99."""

    def fit(self, data, *, seed, settings):
        rng = np.random.default_rng(seed)
        shift = 0.0 if settings.target_accept >= 0.99 else 3.0
        return _idata(rng.normal(size=(4, 500)) + np.array([[0], [0], [0], [shift]]))


def test_retry_until_converged_and_record_attempts():
    res = fit_with_retries(
        _FlakyModel(),
        DATA,
        seed=5,
        label="crc",
        settings=SamplerSettings(),
        limits=Limits(min_ess_bulk=100, min_ess_tail=100),
        retries=((2000, 0.95), (4000, 0.99)),
    )
    assert res.converged
    assert [(a.tune, a.target_accept) for a in res.attempts] == [(1000, 0.9), (2000, 0.95), (4000, 0.99)]
    assert [a.diagnostics.converged for a in res.attempts] == [False, False, True]
    assert res.attempts[0].seed == derive_seed(5, "crc", 0)


def test_retry_gives_up():
    res = fit_with_retries(
        _FlakyModel(),
        DATA,
        seed=5,
        label="crc",
        settings=SamplerSettings(),
        limits=Limits(min_ess_bulk=100, min_ess_tail=100),
        retries=((2000, 0.95),),
    )
    assert not res.converged and len(res.attempts) == 2


# ----------------------------------------------------------------------------- NUTS vs quadrature
def _check_against_quadrature(idata, exact, tol_mean=0.01, tol_prob=0.02):
    post = DrawsPosterior(idata.posterior["p"])
    for k, arm in enumerate(ARMS):
        assert post.mean(arm) == pytest.approx(exact.mean[k], abs=tol_mean), arm
        est = post.prob_above(arm, NULL[k])
        assert abs(est.prob - exact.prob_above[k]) < max(tol_prob, 4 * est.mcse), arm


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["nutpie", "pymc"])
def test_hierarchical_nuts_matches_quadrature(backend):
    """Posterior means within 0.01 and P(p_k > null_k) within 0.02 of the quadrature twin."""
    model = HierarchicalLogistic(mu_mean=0.0, mu_sd=1.0, tau_scale=0.5)
    settings = SamplerSettings(backend=backend, chains=4, draws=2000, tune=1000, target_accept=0.95)
    idata = model.fit(DATA, seed=3, settings=settings)
    assert diagnose(idata, Limits(min_ess_bulk=400)).converged
    _check_against_quadrature(idata, hierarchical_summary(N, Y, NULL, mu_sd=1.0, tau_scale=0.5))


@pytest.mark.slow
def test_hierarchical_half_cauchy_matches_quadrature():
    model = HierarchicalLogistic(tau_dist="half_cauchy", tau_scale=0.25)
    idata = model.fit(DATA, seed=4, settings=SamplerSettings(draws=2000, tune=1500, target_accept=0.95))
    _check_against_quadrature(idata, hierarchical_summary(N, Y, NULL, tau_dist="half_cauchy", tau_scale=0.25))


@pytest.mark.slow
def test_exnex_nuts_matches_quadrature():
    model = Exnex(mu_sd=1.0, tau_scale=0.5, nex_mean=0.0, nex_sd=2.0, w=0.5)
    idata = model.fit(DATA, seed=5, settings=SamplerSettings(draws=3000, tune=1000))
    assert diagnose(idata, Limits()).converged
    exact = hierarchical_summary(N, Y, NULL, w=0.5, nex_sd=2.0)
    _check_against_quadrature(idata, exact)
    prob_ex = idata.posterior["prob_exchangeable"].mean(("chain", "draw")).values
    assert np.allclose(prob_ex, exact.prob_exchangeable, atol=0.02)


@pytest.mark.slow
def test_nutpie_is_reproducible():
    model = HierarchicalLogistic()
    s = SamplerSettings(chains=2, draws=300, tune=300)
    a = model.fit(DATA, seed=9, settings=s).posterior["p"].values
    b = model.fit(DATA, seed=9, settings=s).posterior["p"].values
    assert np.array_equal(a, b)
