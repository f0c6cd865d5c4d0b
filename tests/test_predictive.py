"""Predictive probability of success and exact Beta quantities (no MCMC)."""

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from decision_rules import DrawsPosterior
from decision_rules.beta import BetaPosterior, beta_prob_best, beta_prob_better
from decision_rules.predictive import (
    BetaPredictive,
    DrawsPredictive,
    beta_binomial_pmf,
    beta_final_prob,
    predictive_prob_success_beta,
)
from decision_rules.rules import PredictiveEfficacy, PredictiveFutility


def brute_force_pp(a0, b0, y, n, n_max, ref, theta):
    """Enumerate every future count with scipy's beta-binomial and Beta distributions."""
    m = n_max - n
    a, b = a0 + y, b0 + n - y
    pp = 0.0
    for yy in range(m + 1):
        final = stats.beta.sf(ref, a + yy, b + m - yy)
        if final > theta:
            pp += stats.betabinom.pmf(yy, m, a, b)
    return pp


def test_lee_liu_2008_published_example():
    """Lee & Liu (2008, Clin Trials 5:93), Beta(0.6, 0.4) prior, p0 = 0.6, theta_T = 0.9, Nmax = 40.

    With 16 responses in 23 patients they report PP = 0.5656; success needs 28 or more of 40.
    """
    res = predictive_prob_success_beta(0.6 + 16, 0.4 + 7, 17, 0.6, 0.9)
    assert float(res.prob) == pytest.approx(0.5656, abs=5e-5)
    assert int(res.critical_count) == 12  # 16 + 12 = 28 responses of 40


def test_beta_binomial_pmf_matches_scipy_and_is_ragged_safe():
    pmf = beta_binomial_pmf([3, 10], [2.5, 1.0], [4.0, 7.0])
    assert pmf.shape == (2, 11)
    np.testing.assert_allclose(pmf[0, :4], stats.betabinom.pmf(np.arange(4), 3, 2.5, 4.0), rtol=1e-12)
    assert np.all(pmf[0, 4:] == 0)
    np.testing.assert_allclose(pmf[1], stats.betabinom.pmf(np.arange(11), 10, 1.0, 7.0), rtol=1e-12)
    np.testing.assert_allclose(pmf.sum(-1), 1.0)


@pytest.mark.parametrize(
    ("a0", "b0", "y", "n", "n_max", "ref", "theta"),
    [
        (0.15, 0.85, 3, 14, 40, 0.15, 0.975),  # arm-1-like, unit-information prior on the null
        (0.35, 0.65, 9, 20, 60, 0.35, 0.975),  # DAV-like
        (1.0, 1.0, 0, 10, 30, 0.2, 0.9),
        (0.5, 0.5, 12, 12, 25, 0.4, 0.99),
        (0.08, 0.92, 1, 29, 30, 0.08, 0.975),  # one patient to go
    ],
)
def test_exact_pp_equals_brute_force_enumeration(a0, b0, y, n, n_max, ref, theta):
    res = predictive_prob_success_beta(a0 + y, b0 + n - y, n_max - n, ref, theta)
    assert float(res.prob) == pytest.approx(brute_force_pp(a0, b0, y, n, n_max, ref, theta), abs=1e-12)


def test_vectorized_over_trials_and_arms():
    rng = np.random.default_rng(0)
    n = rng.integers(0, 30, size=(20, 3))
    y = rng.binomial(n, 0.3)
    m = 30 - n
    res = predictive_prob_success_beta(0.3 + y, 0.7 + n - y, m, 0.3, 0.95)
    assert res.prob.shape == (20, 3)
    for i in range(20):
        for k in range(3):
            assert res.prob[i, k] == pytest.approx(
                brute_force_pp(0.3, 0.7, y[i, k], n[i, k], 30, 0.3, 0.95), abs=1e-12
            )


def test_shared_boundaries_equal_direct_enumeration_for_many_trials():
    """The fast path (one boundary per distinct arm setting) equals enumerating every future count."""
    rng = np.random.default_rng(7)
    t = 400
    a0 = rng.choice([0.15, 0.35, 1.0, 0.5], size=(t, 1)) * np.ones((1, 3))
    b0 = 1.0 - np.minimum(a0, 0.5) + rng.choice([0.0, 2.0], size=(t, 1))
    n = rng.integers(0, 45, size=(t, 3))
    y = rng.binomial(n, 0.3)
    m = rng.integers(0, 30, size=(t, 3))
    ref, theta = np.array([0.15, 0.3, 0.35]), np.array([0.975, 0.9, 0.95])
    fast = predictive_prob_success_beta(a0 + y, b0 + n - y, m, ref, theta)
    pmf = beta_binomial_pmf(m, a0 + y, b0 + n - y)
    final = beta_final_prob(a0 + y, b0 + n - y, m, ref)
    valid = np.arange(pmf.shape[-1]) <= m[..., None]
    success = valid & (final > theta[..., None])
    np.testing.assert_allclose(fast.prob, (pmf * success).sum(-1), atol=1e-12)
    direct_crit = np.where(success.any(-1), success.argmax(-1), m + 1)
    np.testing.assert_array_equal(fast.critical_count, direct_crit)


def test_final_success_flips_exactly_at_the_critical_count():
    a, b, m, ref, theta = 0.35 + 9, 0.65 + 11, 40, 0.35, 0.975
    final = beta_final_prob(a, b, m, ref)
    assert np.all(np.diff(final) > 0)  # monotone in the future count
    crit = int(predictive_prob_success_beta(a, b, m, ref, theta).critical_count)
    assert final[crit] > theta >= final[crit - 1]
    # the same flip seen directly on the final Beta posteriors
    assert stats.beta.sf(ref, a + crit, b + m - crit) > theta
    assert stats.beta.sf(ref, a + crit - 1, b + m - crit + 1) <= theta


def _futility_rule(threshold=0.05, min_evaluable=10):
    return PredictiveFutility(
        id="pp_futility_crc",
        endpoint="crc",
        endpoint_label="CRc",
        threshold=threshold,
        min_evaluable=min_evaluable,
        success_rule="graduate_crc",
        success_references={"arm1": 0.15},
        success_threshold=0.975,
        success_reference_name="null_rate",
        max_n={"arm1": 40},
    )


def test_predictive_futility_decision_flips_at_a_critical_interim_count():
    rule = _futility_rule()
    n = 20
    pps = []
    for y in range(n + 1):
        src = BetaPredictive(["arm1"], [0.15 + y], [0.85 + n - y])
        (res,) = rule.evaluate(src, {"arm1": n})
        pps.append(res.prob)
        assert res.prob == pytest.approx(brute_force_pp(0.15, 0.85, y, n, 40, 0.15, 0.975), abs=1e-12)
        assert res.fired is (res.prob < 0.05)
    assert np.all(np.diff(pps) >= -1e-12)
    y_fire = max(y for y, p in enumerate(pps) if p < 0.05)
    # fires at y_fire responders of 20, not at one more
    assert pps[y_fire] < 0.05 <= pps[y_fire + 1]
    src = BetaPredictive(["arm1"], [0.15 + y_fire], [0.85 + n - y_fire])
    (res,) = rule.evaluate(src, {"arm1": n}, labels={"arm1": "IDH1"}, counts={"arm1": (y_fire, n)})
    assert res.fired and res.action == "drop_futility" and res.kind == "predictive_futility"
    assert res.extra["remaining"] == 20 and res.extra["method"] == "exact beta-binomial enumeration"
    assert "To meet 'graduate_crc' at n = 40 it needs at least" in res.sentence
    assert f"(now {y_fire}/20;" in res.sentence
    # the vectorized entry point (the simulator) gives the same decision
    prob, evaluated, fired = rule.decide_beta_arrays(
        0.15 + np.arange(n + 1), 0.85 + n - np.arange(n + 1), np.full(n + 1, n), "arm1"
    )
    np.testing.assert_allclose(prob, pps, atol=1e-14)
    assert fired.tolist() == [p < 0.05 for p in pps] and evaluated.all()


def test_predictive_rule_respects_min_evaluable_and_final_result():
    rule = _futility_rule(min_evaluable=15)
    (res,) = rule.evaluate(BetaPredictive(["arm1"], [0.15], [0.85 + 10]), {"arm1": 10})
    assert not res.evaluated and not res.fired and "not evaluated yet" in res.sentence
    # at max_n the predictive probability is the final result, 0 or 1
    (res,) = rule.evaluate(BetaPredictive(["arm1"], [0.15 + 12], [0.85 + 28]), {"arm1": 40})
    assert res.prob == 1.0 and not res.fired and "this is its final result" in res.sentence
    (res,) = rule.evaluate(BetaPredictive(["arm1"], [0.15 + 2], [0.85 + 38]), {"arm1": 40})
    assert res.prob == 0.0 and res.fired
    assert "predictive probability that 'graduate_crc'" in str(rule)


def test_predictive_efficacy_rule():
    rule = PredictiveEfficacy(
        id="pp_efficacy",
        endpoint="crc",
        threshold=0.95,
        success_rule="graduate_crc",
        success_references={"a": 0.35},
        success_threshold=0.975,
        max_n={"a": 60},
    )
    (res,) = rule.evaluate(BetaPredictive(["a"], [0.35 + 22], [0.65 + 8]), {"a": 30})
    assert res.fired and res.action == "graduate" and res.prob > 0.95


def _iid_draws(a, b, n=40_000, seed=1):
    x = np.random.default_rng(seed).beta(a, b, size=(4, n // 4))
    return DrawsPosterior(xr.DataArray(x[..., None], dims=("chain", "draw", "arm"), coords={"arm": ["arm1"]}))


@pytest.mark.parametrize(("y", "n"), [(3, 14), (6, 20), (9, 25)])
def test_draws_predictive_agrees_with_exact_enumeration(y, n):
    """Importance reweighting of posterior draws reproduces the exact beta-binomial answer."""
    a, b = 0.15 + y, 0.85 + n - y
    exact = BetaPredictive(["arm1"], [a], [b]).predict("arm1", 40 - n, 0.15, 0.975)
    est = DrawsPredictive(_iid_draws(a, b)).predict("arm1", 40 - n, 0.15, 0.975)
    assert est.critical_count == exact.critical_count
    assert abs(est.estimate.prob - exact.estimate.prob) < max(4 * est.estimate.mcse, 1e-3)
    assert est.importance_ess > 1000
    # the reweighted final probabilities match the conjugate update
    final, mcse, _ = DrawsPredictive(_iid_draws(a, b)).reweighted("arm1", 40 - n, 0.15)
    exact_final = beta_final_prob(a, b, 40 - n, 0.15)
    near = slice(max(exact.critical_count - 3, 0), exact.critical_count + 3)
    assert np.all(np.abs(final[near] - exact_final[near]) < 4 * mcse[near] + 1e-3)


def test_boundary_flag_when_the_critical_count_is_monte_carlo_uncertain():
    # 12 of 40 gives P(CRc > 15%) = 97.37%, 0.13 points below the 97.5% threshold: with few
    # draws the reweighted final probability cannot tell, and the prediction says so
    a, b = 0.15 + 6, 0.85 + 14
    few = DrawsPredictive(_iid_draws(a, b, n=400)).predict("arm1", 20, 0.15, 0.975)
    assert few.boundary_uncertain
    # far from any boundary (success threshold 0.9) and many draws: certain
    many = DrawsPredictive(_iid_draws(a, b)).predict("arm1", 20, 0.15, 0.9)
    exact = BetaPredictive(["arm1"], [a], [b]).predict("arm1", 20, 0.15, 0.9)
    assert (
        abs(exact.final_prob_at_critical - 0.9) > 0.02 and abs(exact.final_prob_below_critical - 0.9) > 0.02
    )
    assert not many.boundary_uncertain and many.critical_count == exact.critical_count


def test_draws_predictive_with_injected_final_probability():
    a, b = 0.15 + 6, 0.85 + 14
    injected = DrawsPredictive(
        _iid_draws(a, b), final_prob=lambda arm, m, yy, ref: beta_final_prob(a, b, m, ref)[: len(yy)]
    )
    exact = BetaPredictive(["arm1"], [a], [b]).predict("arm1", 20, 0.15, 0.975)
    est = injected.predict("arm1", 20, 0.15, 0.975)
    assert est.critical_count == exact.critical_count
    assert abs(est.estimate.prob - exact.estimate.prob) < 4 * est.estimate.mcse


# ----------------------------------------------------------------------------- exact Beta quantities
def test_beta_prob_best_and_better_against_monte_carlo():
    rng = np.random.default_rng(5)
    a = np.array([3.35, 8.35, 1.2])
    b = np.array([10.65, 5.65, 0.8])
    x = rng.beta(a, b, size=(1_000_000, 3))
    mc = np.bincount(x.argmax(1), minlength=3) / len(x)
    np.testing.assert_allclose(beta_prob_best(a, b), mc, atol=2e-3)
    np.testing.assert_allclose(
        beta_prob_best(a, b, higher_is_better=False),
        np.bincount(x.argmin(1), minlength=3) / len(x),
        atol=2e-3,
    )
    assert float(beta_prob_better(a[1], b[1], a[0], b[0], 0.05)) == pytest.approx(
        (x[:, 1] > x[:, 0] + 0.05).mean(), abs=2e-3
    )
    # singular prior-like posterior (a < 1) is handled in the probability scale
    assert float(beta_prob_better(0.35, 0.65, 0.35, 20.65)) == pytest.approx(
        (rng.beta(0.35, 0.65, 10**6) > rng.beta(0.35, 20.65, 10**6)).mean(), abs=2e-3
    )


def test_two_arm_prob_best_is_prob_better_and_closed_arms_get_zero():
    a, b = np.array([12.35, 7.35]), np.array([8.65, 13.65])
    pb = beta_prob_best(a, b)
    assert pb[0] == pytest.approx(float(beta_prob_better(a[0], b[0], a[1], b[1])), abs=1e-6)
    pb3 = beta_prob_best([12.35, 7.35, 30.0], [8.65, 13.65, 1.0], is_open=[True, True, False])
    np.testing.assert_allclose(pb3, [*pb, 0.0], atol=1e-12)


def test_beta_posterior_has_the_draws_posterior_interface():
    post = BetaPosterior(["a", "b"], {"a": 12.35, "b": 7.35}, {"a": 8.65, "b": 13.65})
    assert post.mean("a") == pytest.approx(12.35 / 21)
    assert post.prob_above("a", 0.35).prob == pytest.approx(stats.beta.sf(0.35, 12.35, 8.65))
    assert post.prob_above("a", 0.35).mcse == 0.0
    best = post.prob_best(["a", "b"])
    assert best["a"].prob + best["b"].prob == pytest.approx(1.0)
    assert post.quantile("a", [0.5])[0] == pytest.approx(stats.beta.median(12.35, 8.65))
    with pytest.raises(KeyError, match="not in the posterior"):
        post.mean("z")


# ----------------------------------------------------------------------------- a look's precision
def _quad_prob_best(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """``P(X_k > X_j for all j != k)`` by ``scipy.integrate.quad`` in ``u = logit x``, split at the mode."""
    from scipy import integrate, special

    def f(u):
        dens = np.exp(a[k] * special.log_expit(u) + b[k] * special.log_expit(-u) - special.betaln(a[k], b[k]))
        return dens * np.prod(
            [special.betainc(a[j], b[j], special.expit(u)) for j in range(len(a)) if j != k]
        )

    m, s = np.log(a[k] / b[k]), np.sqrt(1 / a[k] + 1 / b[k])
    cuts = [-np.inf, m - 10 * s, m, m + 10 * s, np.inf]
    return sum(
        integrate.quad(f, lo, hi, epsabs=1e-14, epsrel=1e-12, limit=500)[0]
        for lo, hi in zip(cuts, cuts[1:], strict=False)
    )


# (a, b) of two arms: the bundled look's DAV and HAV CRc, an arm with no responder, rare events,
# Jeffreys priors, large counts (the slowest convergence of the grid)
PAIRS = [
    ((28.35, 17.35), (15.65, 21.65)),
    ((0.35, 1.35), (16.65, 8.65)),
    ((3.35, 28.35), (13.65, 15.65)),
    ((0.5, 1.0), (0.5, 1.0)),
    ((200.5, 190.5), (100.5, 110.5)),
]


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_prob_better_at_a_looks_spacing_matches_quad_to_1e9(a, b):
    """A look's grid (LOOK_GRID_SPACING) gives P(p_1 > p_2) within 1e-9 of quad; the simulator's
    (GRID_SPACING, unchanged) within 5e-7, its documented 'about 1e-7'."""
    from decision_rules.beta import LOOK_GRID_SPACING

    a, b = np.array(a), np.array(b)
    want = _quad_prob_best(a, b, 0)
    assert float(beta_prob_better(a[0], b[0], a[1], b[1], spacing=LOOK_GRID_SPACING)) == pytest.approx(
        want, abs=1e-9
    )
    assert float(beta_prob_better(a[0], b[0], a[1], b[1])) == pytest.approx(want, abs=5e-7)
    post = BetaPosterior(["x", "y"], a, b)  # a look's posterior: the fine grid by default
    assert post.prob_better("x", "y").prob == pytest.approx(want, abs=1e-9)


def test_prob_best_of_three_arms_at_a_looks_spacing_matches_quad():
    a, b = np.array([28.35, 17.35, 5.2]), np.array([15.65, 21.65, 3.1])
    post = BetaPosterior(["x", "y", "z"], a, b)
    best = post.prob_best(["x", "y", "z"])
    for k, arm in enumerate("xyz"):
        assert best[arm].prob == pytest.approx(_quad_prob_best(a, b, k), abs=1e-9)
        assert best[arm].mcse == 0.0 and best[arm].n_draws == 0
    low = post.prob_best(["x", "y", "z"], higher_is_better=False)  # lowest rate best: 1 - p is Beta(b, a)
    assert low["y"].prob == pytest.approx(_quad_prob_best(b, a, 1), abs=1e-9)


@pytest.mark.parametrize("margin", [0.05, -0.05, 0.1])
def test_prob_better_with_a_margin_at_a_looks_spacing_matches_quad(margin):
    """``P(p_1 > p_2 + margin)``: Gauss-Legendre, 4096 nodes at a look, within 1e-9 of quad."""
    from scipy import integrate, special

    a1, b1, a2, b2 = 28.35, 15.65, 17.35, 21.65

    def f(u):  # density of logit p_1 times P(p_2 < p_1 - margin)
        dens = np.exp(a1 * special.log_expit(u) + b1 * special.log_expit(-u) - special.betaln(a1, b1))
        return dens * special.betainc(a2, b2, np.clip(special.expit(u) - margin, 0.0, 1.0))

    # the integrand starts at p_1 = margin and has a kink where p_1 - margin reaches 1
    lo = special.logit(margin) if margin > 0 else -60.0
    kinks = [special.logit(1.0 + margin)] if margin < 0 else []
    cuts = [lo, *sorted(c for c in (-1.0, 0.6, 2.0, *kinks) if c > lo), np.inf]
    want = sum(
        integrate.quad(f, x0, x1, epsabs=1e-14, epsrel=1e-12, limit=500)[0]
        for x0, x1 in zip(cuts, cuts[1:], strict=False)
    )
    post = BetaPosterior(["x", "y"], [a1, a2], [b1, b2])
    assert post.prob_better("x", "y", margin=margin).prob == pytest.approx(want, abs=1e-9)
    # lower is better: P(p_1 < p_2 - margin) = P(1 - p_1 > (1 - p_2) + margin)
    flipped = BetaPosterior(["x", "y"], [b1, b2], [a1, a2])
    assert flipped.prob_better("x", "y", margin=margin, higher_is_better=False).prob == pytest.approx(
        want, abs=1e-9
    )


def test_beta_posterior_estimates_against_independent_computations():
    """Tail probabilities, median, quantiles and sd of BetaPosterior against quad and Monte Carlo."""
    from scipy import integrate

    a, b = 3.35, 13.65  # arm1's CRc at the bundled look: 3/16 on Beta(0.35, 0.65)
    post = BetaPosterior(["arm1"], [a], [b])
    pdf = stats.beta(a, b).pdf
    q = lambda lo, hi: integrate.quad(pdf, lo, hi, epsabs=1e-14, epsrel=1e-13, limit=200)[0]  # noqa: E731
    assert post.prob_above("arm1", 0.15).prob == pytest.approx(q(0.15, 1.0), abs=1e-12)
    assert post.prob_below("arm1", 0.15).prob == pytest.approx(q(0.0, 0.15), abs=1e-12)
    assert post.prob_below("arm1", 0.15).mcse == 0.0 and post.prob_below("arm1", 0.15).n_draws == 0
    assert q(0.0, post.median("arm1")) == pytest.approx(0.5, abs=1e-12)
    lo, hi = post.quantile("arm1", [0.025, 0.975])
    assert q(0.0, lo) == pytest.approx(0.025, abs=1e-12) and q(hi, 1.0) == pytest.approx(0.025, abs=1e-12)
    mean = integrate.quad(lambda x: x * pdf(x), 0, 1, epsabs=1e-14)[0]
    var = integrate.quad(lambda x: (x - mean) ** 2 * pdf(x), 0, 1, epsabs=1e-14)[0]
    assert post.mean("arm1") == pytest.approx(mean, abs=1e-12)
    assert post.sd("arm1") == pytest.approx(np.sqrt(var), abs=1e-10)
    draws = np.random.default_rng(3).beta(a, b, 10**6)  # and a large Monte Carlo sample
    np.testing.assert_allclose(
        np.quantile(draws, [0.025, 0.5, 0.975]), [lo, post.median("arm1"), hi], atol=2e-3
    )
