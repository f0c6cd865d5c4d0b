"""Decision rules on fake posteriors (no MCMC): thresholds, flips, minimum sizes, MCSE, sentences."""

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from decision_rules import (
    BetaPosterior,
    DrawsPosterior,
    Efficacy,
    Futility,
    Harm,
    Superiority,
    indicator_estimate,
)
from decision_rules.rules import DropHarmTier, FlagTier, SuspendTier
from decision_rules.vocabulary import fmt_prob, fmt_rate


def fake_posterior(columns: dict[str, np.ndarray], chains: int = 4) -> DrawsPosterior:
    arms = list(columns)
    draws = np.stack([np.asarray(columns[a]).reshape(chains, -1) for a in arms], axis=-1)
    return DrawsPosterior(xr.DataArray(draws, dims=("chain", "draw", "arm"), coords={"arm": arms}))


def exact_fraction_posterior(
    frac_above: float, ref: float = 0.3, n: int = 4000, arm: str = "a"
) -> DrawsPosterior:
    """Draws of which exactly ``frac_above`` lie above ``ref``."""
    k = int(round(frac_above * n))
    vals = np.r_[np.full(k, ref + 0.1), np.full(n - k, ref - 0.1)]
    return fake_posterior({arm: np.random.default_rng(0).permutation(vals)})


def test_iid_mcse_is_binomial():
    rng = np.random.default_rng(1)
    x = rng.random((4, 5000)) < 0.3
    est = indicator_estimate(x)
    p = x.mean()
    assert est.prob == pytest.approx(p)
    # for independent draws ESS ~ N, so MCSE ~ sqrt(p(1-p)/N) (ArviZ's ESS estimate is noisy ~5%)
    assert est.mcse == pytest.approx(np.sqrt(p * (1 - p) / x.size), rel=0.1)


def test_constant_indicator_has_zero_mcse():
    est = indicator_estimate(np.ones((2, 100), bool))
    assert (est.prob, est.mcse, est.n_draws) == (1.0, 0.0, 200)


def test_autocorrelated_draws_have_larger_mcse():
    rng = np.random.default_rng(2)
    # AR(1) chains with strong autocorrelation
    z = np.zeros((4, 4000))
    for t in range(1, 4000):
        z[:, t] = 0.95 * z[:, t - 1] + rng.normal(size=4)
    est = indicator_estimate(z > 0)
    iid = np.sqrt(est.prob * (1 - est.prob) / z.size)
    assert est.mcse > 3 * iid


@pytest.mark.parametrize(("frac", "fires"), [(0.975, False), (0.97525, True), (0.9745, False), (0.99, True)])
def test_efficacy_flips_exactly_at_threshold(frac, fires):
    rule = Efficacy(id="g", endpoint="crc", threshold=0.975, references={"a": 0.3})
    post = exact_fraction_posterior(frac)
    (res,) = rule.evaluate(post, {"a": 30})
    assert res.prob == pytest.approx(round(frac * 4000) / 4000)
    assert res.fired is fires
    assert rule.decide(res.prob, 30) is fires
    assert (res.margin > 0) is fires


def test_futility_fires_below_threshold():
    rule = Futility(id="f", endpoint="crc", threshold=0.05, references={"a": 0.3})
    assert rule.evaluate(exact_fraction_posterior(0.04), {"a": 20})[0].fired
    assert not rule.evaluate(exact_fraction_posterior(0.05), {"a": 20})[0].fired
    assert not rule.evaluate(exact_fraction_posterior(0.06), {"a": 20})[0].fired


def test_min_evaluable_blocks_firing_but_reports_probability():
    rule = Efficacy(id="g", endpoint="crc", threshold=0.9, min_evaluable=20, references={"a": 0.3})
    post = exact_fraction_posterior(0.99)
    (res,) = rule.evaluate(post, {"a": 19})
    assert res.prob == pytest.approx(0.99)
    assert not res.evaluated and not res.fired
    assert "not evaluated yet" in res.sentence and "at least 20" in res.sentence
    (res,) = rule.evaluate(post, {"a": 20})
    assert res.evaluated and res.fired


def harm(*tiers, min_evaluable=0, references=None):
    """A tiered harm rule from ``(tier class, threshold, reference)`` triples."""
    common = dict(id="h", endpoint="mortality_30d", min_evaluable=min_evaluable)
    return Harm(
        **common,
        tiers=tuple(
            cls(**common, threshold=thr, references=references or {"a": ref}, reference_name=f"{ref:g}")
            for cls, thr, ref in tiers
        ),
    )


def test_harm_rule_on_beta_posterior_matches_beta_sf():
    rng = np.random.default_rng(3)
    a, b = 1 + 6, 1 + 14  # 6 deaths in 20 under a uniform prior
    post = fake_posterior({"a": rng.beta(a, b, 40000)})
    rule = harm((DropHarmTier, 0.8, 0.15))
    (res,) = rule.evaluate(post, {"a": 20})
    exact = stats.beta.sf(0.15, a, b)
    assert abs(res.prob - exact) < 4 * res.mcse
    assert res.fired is bool(exact > 0.8) and res.action == "drop_harm"


@pytest.mark.parametrize(
    ("frac", "action", "fired"),
    [
        (0.79, "flag", False),  # below every tier: reports the least severe
        (0.81, "flag", True),
        (0.90, "flag", True),  # 0.90 is not above 0.90
        (0.91, "suspend_enrolment", True),
        (0.975, "suspend_enrolment", True),
        (0.976, "drop_harm", True),
    ],
)
def test_harm_tiers_fire_at_their_thresholds(frac, action, fired):
    """Tiers flag > 80%, suspend > 90%, drop > 97.5% on one reference: the most severe that fires."""
    rule = harm((FlagTier, 0.8, 0.15), (SuspendTier, 0.9, 0.15), (DropHarmTier, 0.975, 0.15))
    (res,) = rule.evaluate(exact_fraction_posterior(frac, 0.15, n=8000), {"a": 30})
    assert (res.action, res.fired) == (action, fired)
    tiers = {t["action"]: t for t in res.extra["tiers"]}
    assert [t["fired"] for t in res.extra["tiers"]] == [frac > 0.8, frac > 0.9, frac > 0.975]
    assert tiers[action]["prob"] == pytest.approx(round(frac * 8000) / 8000)
    assert "tiers of 'h'" in res.sentence
    if fired:
        assert f"fires at tier {action} (recommend: {action})." in res.sentence


def test_harm_tiers_with_their_own_references_and_minimum():
    """A flag on the reference rate and a drop on the limit: each tier reads its own reference."""
    rng = np.random.default_rng(8)
    a, b = 0.5 + 5, 0.5 + 15  # 5 deaths in 20, Jeffreys prior
    post = fake_posterior({"a": rng.beta(a, b, 40000)})
    rule = harm((FlagTier, 0.9, 0.07), (DropHarmTier, 0.95, 0.15), min_evaluable=10)
    (res,) = rule.evaluate(post, {"a": 20})
    p_ref, p_lim = stats.beta.sf(0.07, a, b), stats.beta.sf(0.15, a, b)
    assert p_ref > 0.9 > p_lim  # the flag fires, the drop does not
    assert res.action == "flag" and res.fired
    flag, drop = res.extra["tiers"]
    assert abs(flag["prob"] - p_ref) < 4 * max(flag["mcse"], 1e-3)
    assert abs(drop["prob"] - p_lim) < 4 * drop["mcse"]
    (res,) = rule.evaluate(post, {"a": 9})  # below min_evaluable: nothing fires, the sentence says why
    assert not res.fired and not res.evaluated and "needs at least 10" in res.sentence


def test_harm_tiers_must_be_ordered():
    with pytest.raises(ValueError, match="ordered least to most severe"):
        harm((DropHarmTier, 0.95, 0.15), (FlagTier, 0.8, 0.15))


def test_sentence_reads_like_crmpack():
    rule = Efficacy(
        id="graduate_crc",
        endpoint="crc",
        endpoint_label="CRc",
        threshold=0.975,
        references={"arm3": 0.35},
        reference_name="null_rate",
    )
    (res,) = rule.evaluate(exact_fraction_posterior(0.982, 0.35, arm="arm3"), {"arm3": 40}, {"arm3": "DAV"})
    assert res.sentence.startswith("P(CRc > 35%) is 98.2% (MCSE ")
    assert "for arm3 (DAV), above the required 97.5%" in res.sentence
    assert res.sentence.endswith("fires (recommend: graduate).")
    assert str(rule) == (
        "efficacy rule 'graduate_crc' (recommend graduate): P(CRc > null_rate) > 97.5%, "
        "once at least 0 patients are evaluable"
    )


def test_mc_uncertain_flag_near_threshold():
    rng = np.random.default_rng(4)
    # P(p > 0.3) close to 0.975 with only 400 draws: the MCSE (~0.8%) covers the threshold
    x = np.where(rng.random(400) < 0.976, 0.4, 0.2)
    post = fake_posterior({"a": x}, chains=4)
    rule = Efficacy(id="g", endpoint="crc", threshold=0.975, references={"a": 0.3})
    (res,) = rule.evaluate(post, {"a": 50})
    assert res.mc_uncertain
    assert "Monte Carlo standard errors" in res.sentence


def test_superiority_on_its_own_beta_posterior_matches_quadrature():
    """The comparison reads an independent conjugate posterior from counts, with its prior."""
    from scipy import integrate

    rule = Superiority(
        id="s", endpoint="crc", threshold=0.99, arms=("hav", "dav"), min_evaluable=20,
        prior={"hav": (0.35, 0.65), "dav": (0.35, 0.65)},
    )  # fmt: skip
    a, b = rule.posterior_ab({"hav": 45, "dav": 38}, {"hav": 31, "dav": 17})
    assert (a["hav"], b["hav"]) == pytest.approx((31.35, 14.65))
    (res,) = rule.evaluate(BetaPosterior(["hav", "dav"], a, b), {"hav": 45, "dav": 38}, source_note="Note.")
    h, d = stats.beta(a["hav"], b["hav"]), stats.beta(a["dav"], b["dav"])
    want = integrate.quad(lambda x: h.pdf(x) * d.cdf(x), 0, 1, limit=200)[0]
    assert res.prob == pytest.approx(want, abs=1e-6) and res.mcse == 0.0
    assert res.arms == ("hav", "dav") and not res.fired  # ~97.8% < 99%
    assert "(exact)" in res.sentence and res.sentence.endswith("does not fire. Note.")


def test_superiority_reports_better_arm_and_both_directions():
    rng = np.random.default_rng(5)
    post = fake_posterior({"dav": rng.beta(20, 30, 8000), "hav": rng.beta(35, 15, 8000)})
    rule = Superiority(id="s", endpoint="crc", threshold=0.975, arms=("dav", "hav"), min_evaluable=10)
    (res,) = rule.evaluate(post, {"dav": 50, "hav": 50})
    assert res.arms == ("hav", "dav")
    assert res.extra["inferior"] == "dav"
    assert res.prob == pytest.approx(res.extra["prob_hav_better"])
    assert res.extra["prob_dav_better"] + res.extra["prob_hav_better"] == pytest.approx(1.0)
    assert res.fired and res.action == "drop_inferior"


def test_superiority_lower_is_better():
    rng = np.random.default_rng(6)
    post = fake_posterior({"a": rng.beta(2, 38, 8000), "b": rng.beta(12, 28, 8000)})
    rule = Superiority(id="s", endpoint="m", threshold=0.9, arms=("a", "b"), higher_is_better=False)
    (res,) = rule.evaluate(post, {"a": 40, "b": 40})
    assert res.arms == ("a", "b")  # a has fewer deaths: better
    assert res.fired


def test_rule_validation():
    with pytest.raises(ValueError, match="threshold must lie strictly between 0 and 1"):
        Efficacy(id="x", endpoint="crc", threshold=1.0)
    with pytest.raises(ValueError, match="min_evaluable must be >= 0"):
        Efficacy(id="x", endpoint="crc", threshold=0.9, min_evaluable=-1)
    with pytest.raises(ValueError, match="two different arms"):
        Superiority(id="x", endpoint="crc", threshold=0.9, arms=("a", "a"))


def test_posterior_requires_dims():
    with pytest.raises(ValueError, match="missing"):
        DrawsPosterior(xr.DataArray(np.zeros((2, 3)), dims=("chain", "draw")))


def test_prob_best_sums_to_one():
    rng = np.random.default_rng(7)
    post = fake_posterior({a: rng.beta(10 + i, 20, 4000) for i, a in enumerate("abc")})
    pb = post.prob_best(["a", "b", "c"])
    assert sum(e.prob for e in pb.values()) == pytest.approx(1.0)
    assert pb["c"].prob > pb["a"].prob


@pytest.mark.parametrize(
    ("p", "exact", "text"),
    [
        (0.975, False, "97.5%"),
        (0.5, False, "50.0%"),
        (0.99951, False, ">99.9%"),  # would round to 100.0%
        (0.99949, False, "99.9%"),
        (1.0, False, ">99.9%"),  # all of the draws: not certainty
        (1.0, True, "100%"),  # an exact computation
        (0.0004, False, "<0.1%"),
        (0.0, False, "<0.1%"),
        (0.0, True, "0%"),
        (None, False, "-"),
        # the file's six decimals and the unrounded value print alike (half up at 4 decimals of %)
        (0.0255, False, "2.6%"),  # as recommendations.json stores arm3's P(CRc > 60%)
        (0.025500123, False, "2.6%"),  # the value the terminal printed
        (0.0254996, False, "2.6%"),  # stored as 0.0255
        (0.02549, False, "2.5%"),
    ],
)
def test_one_probability_formatter(p, exact, text):
    assert fmt_prob(p, exact=exact) == text


def test_fmt_prob_never_prints_100_below_one():
    for p in np.linspace(0.99, 0.999999, 500):
        assert fmt_prob(p) not in ("100.0%", "100%")
    for p in np.linspace(1e-7, 0.01, 500):
        assert fmt_prob(p) not in ("0.0%", "0%")


@pytest.mark.parametrize(
    ("x", "trim", "text"),
    [(0.35, True, "35%"), (0.975, True, "97.5%"), (0.13, False, "13.0%"), (None, True, "-")],
)
def test_fmt_rate(x, trim, text):
    assert fmt_rate(x, trim=trim) == text


@pytest.mark.parametrize(
    ("mcse", "digits", "text"),
    [
        (0.3, 1, "0.3"),
        (0.049, 1, "0.05"),
        (0.004, 1, "0.004"),
        (0.0, 1, "0.0"),
        (0.12, 1, "0.1"),
        (0.0004, 2, "0.0004"),
    ],
)
def test_fmt_mcse_is_never_a_false_zero(mcse, digits, text):
    from decision_rules.vocabulary import fmt_mcse

    assert fmt_mcse(mcse, digits) == text
