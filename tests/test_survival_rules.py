"""Survival rules on fake posteriors (no MCMC): flips at the threshold, minimum events, MCSE, sentences."""

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from decision_rules import (
    SURVIVAL_RULE_KINDS,
    HazardRatioSuperiority,
    MedianEfficacy,
    MedianFutility,
    SurvivalPosterior,
)


def fake(
    medians: dict[str, np.ndarray], eta: dict[str, np.ndarray] | None = None, chains=4
) -> SurvivalPosterior:
    arms = list(medians)
    eta = eta or {a: np.zeros(np.size(medians[a])) for a in arms}

    def stack(cols):
        return np.stack([np.asarray(cols[a], float).reshape(chains, -1) for a in arms], axis=-1)

    ds = xr.Dataset(
        {
            "median": (("chain", "draw", "arm"), stack(medians)),
            "eta": (("chain", "draw", "arm"), stack(eta)),
        },
        coords={"arm": arms},
    )
    return SurvivalPosterior(ds)


def exact_fraction(frac: float, ref: float = 200.0, n: int = 4000, arm: str = "a") -> SurvivalPosterior:
    """Median draws of which exactly ``frac`` lie above ``ref`` days."""
    k = int(round(frac * n))
    vals = np.r_[np.full(k, ref + 30.0), np.full(n - k, ref - 30.0)]
    return fake({arm: np.random.default_rng(0).permutation(vals)})


@pytest.mark.parametrize(("frac", "fires"), [(0.975, False), (0.97525, True), (0.9745, False), (0.99, True)])
def test_median_efficacy_flips_exactly_at_threshold(frac, fires):
    rule = MedianEfficacy(
        id="os_eff", endpoint="os", endpoint_label="OS", threshold=0.975, references={"a": 200.0}
    )
    (res,) = rule.evaluate(exact_fraction(frac), {"a": 30})
    assert res.prob == pytest.approx(round(frac * 4000) / 4000)
    assert res.fired is fires and rule.decide(res.prob, 30) is fires
    assert res.action == "graduate" and res.kind == "survival_efficacy"


def test_median_futility_fires_below_threshold():
    rule = MedianFutility(id="os_fut", endpoint="os", threshold=0.1, references={"a": 200.0})
    assert rule.evaluate(exact_fraction(0.09), {"a": 20})[0].fired
    assert not rule.evaluate(exact_fraction(0.10), {"a": 20})[0].fired
    assert not rule.evaluate(exact_fraction(0.5), {"a": 20})[0].fired
    assert rule.evaluate(exact_fraction(0.09), {"a": 20})[0].action == "drop_futility"


def test_min_events_blocks_firing_and_says_events():
    rule = MedianFutility(
        id="os_fut",
        endpoint="os",
        endpoint_label="OS",
        threshold=0.1,
        min_evaluable=10,
        references={"a": 200.0},
    )
    (res,) = rule.evaluate(exact_fraction(0.01), {"a": 9})
    assert not res.evaluated and not res.fired and res.prob == pytest.approx(0.01)
    assert "9 events for OS, it needs at least 10" in res.sentence
    (res,) = rule.evaluate(exact_fraction(0.01), {"a": 10})
    assert res.evaluated and res.fired


def test_median_rule_on_lognormal_posterior_matches_closed_form():
    rng = np.random.default_rng(1)
    draws = np.exp(rng.normal(np.log(250), 0.3, 40000))
    rule = MedianEfficacy(id="e", endpoint="os", threshold=0.8, references={"a": 200.0})
    (res,) = rule.evaluate(fake({"a": draws}), {"a": 40})
    exact = stats.norm.sf(np.log(200), np.log(250), 0.3)
    assert abs(res.prob - exact) < 4 * res.mcse
    assert res.mcse == pytest.approx(np.sqrt(exact * (1 - exact) / 40000), rel=0.1)
    assert res.fired is bool(exact > 0.8)


def test_median_sentence_and_str():
    rule = MedianFutility(
        id="futility_os",
        endpoint="os",
        endpoint_label="OS",
        threshold=0.1,
        min_evaluable=10,
        references={"arm5": 204.0},
        reference_name="benchmark",
    )
    (res,) = rule.evaluate(exact_fraction(0.05, 204.0, arm="arm5"), {"arm5": 30}, {"arm5": "Ven+Aza"})
    assert res.sentence.startswith("P(median OS > 204 days) is 5.0% (MCSE ")
    assert "for arm5 (Ven+Aza), below the limit of 10%" in res.sentence
    assert res.sentence.endswith("fires (recommend: drop_futility).")
    assert res.extra == {"reference": 204.0, "reference_name": "benchmark"}
    assert str(rule) == (
        "survival_futility rule 'futility_os' (recommend drop_futility): P(median OS > benchmark) < 10%, "
        "once at least 10 events have occurred"
    )


def test_median_rule_skips_arms_not_in_posterior():
    rule = MedianEfficacy(id="e", endpoint="os", threshold=0.9, references={"a": 100.0, "zz": 100.0})
    assert [r.arms for r in rule.evaluate(exact_fraction(0.95, 100.0), {"a": 5})] == [("a",)]


def test_hazard_ratio_reports_lower_hazard_first_and_both_directions():
    rng = np.random.default_rng(2)
    eta_dav = rng.normal(-6.0, 0.1, 8000)
    eta_hav = rng.normal(-6.4, 0.1, 8000)  # lower hazard: HAV better
    post = fake({"dav": np.full(8000, 200.0), "hav": np.full(8000, 300.0)}, {"dav": eta_dav, "hav": eta_hav})
    rule = HazardRatioSuperiority(
        id="hr", endpoint="os", endpoint_label="OS", threshold=0.975, arms=("dav", "hav")
    )
    (res,) = rule.evaluate(post, {"dav": 40, "hav": 40}, {"dav": "DAV", "hav": "HAV"})
    assert res.arms == ("hav", "dav") and res.extra["inferior"] == "dav"
    exact = stats.norm.cdf(0, -0.4, np.sqrt(0.02))  # P(eta_hav - eta_dav < 0)
    assert abs(res.prob - exact) < 4 * max(res.mcse, 1e-4)
    assert res.extra["prob_hr_dav_hav_below_margin"] + res.extra[
        "prob_hr_hav_dav_below_margin"
    ] == pytest.approx(1)
    assert res.extra["hr_ci95_low"] < res.extra["hr_median"] < res.extra["hr_ci95_high"]
    assert res.fired and res.action == "drop_inferior"
    assert res.sentence.startswith("P(OS hazard ratio dav:hav > 1) is ")  # experimental : reference
    assert "for hav (HAV) versus dav (DAV)" in res.sentence
    assert res.extra["hr_arms"] == ["dav", "hav"]
    assert res.extra["hr_median"] == pytest.approx(np.exp(0.4), rel=0.02)
    # the other orientation (HAV experimental, DAV reference): same decision, HR printed hav:dav
    flipped = HazardRatioSuperiority(
        id="hr", endpoint="os", endpoint_label="OS", threshold=0.975, arms=("hav", "dav")
    )
    (res2,) = flipped.evaluate(post, {"dav": 40, "hav": 40}, {"dav": "DAV", "hav": "HAV"})
    assert res2.extra["inferior"] == "dav" and res2.prob == pytest.approx(res.prob)
    assert res2.sentence.startswith("P(OS hazard ratio hav:dav < 1) is ")
    assert res2.extra["hr_median"] == pytest.approx(np.exp(-0.4), rel=0.02)


def test_hazard_ratio_margin_and_min_events():
    rng = np.random.default_rng(3)
    post = fake(
        {"a": np.full(8000, 1.0), "b": np.full(8000, 1.0)},
        {"a": rng.normal(np.log(0.85), 0.05, 8000), "b": np.zeros(8000)},
    )
    plain = HazardRatioSuperiority(id="hr", endpoint="os", threshold=0.9, arms=("a", "b"))
    strict = HazardRatioSuperiority(id="hr", endpoint="os", threshold=0.9, arms=("a", "b"), hr_margin=0.8)
    assert plain.evaluate(post, {"a": 50, "b": 50})[0].fired  # P(HR < 1) ~ 0.9994
    (res,) = strict.evaluate(post, {"a": 50, "b": 50})  # P(HR < 0.8) ~ 0.11: not enough
    assert res.prob == pytest.approx(stats.norm.cdf(np.log(0.8), np.log(0.85), 0.05), abs=0.02)
    assert not res.fired and "< 0.8" in res.quantity
    blocked = HazardRatioSuperiority(id="hr", endpoint="os", threshold=0.9, arms=("a", "b"), min_evaluable=20)
    (res,) = blocked.evaluate(post, {"a": 50, "b": 19})
    assert not res.evaluated and "50/19 events" in res.sentence and "per arm" in res.sentence


def test_hazard_ratio_absent_arm_gives_nothing():
    rule = HazardRatioSuperiority(id="hr", endpoint="os", threshold=0.9, arms=("a", "zz"))
    assert rule.evaluate(exact_fraction(0.5), {"a": 10}) == []


def test_rule_validation():
    with pytest.raises(ValueError, match="must be > 0 days"):
        MedianEfficacy(id="x", endpoint="os", threshold=0.9, references={"a": 0.0})
    with pytest.raises(ValueError, match="must be > 0 days"):
        MedianFutility(id="x", endpoint="os", threshold=0.9, references={"a": None})
    with pytest.raises(ValueError, match="threshold must lie strictly between 0 and 1"):
        MedianEfficacy(id="x", endpoint="os", threshold=1.0, references={"a": 100.0})
    with pytest.raises(ValueError, match="two different arms"):
        HazardRatioSuperiority(id="x", endpoint="os", threshold=0.9, arms=("a", "a"))
    with pytest.raises(ValueError, match=r"hr_margin must lie in \(0, 1\]"):
        HazardRatioSuperiority(id="x", endpoint="os", threshold=0.9, arms=("a", "b"), hr_margin=1.2)
    assert set(SURVIVAL_RULE_KINDS) == {"survival_efficacy", "survival_futility", "hazard_ratio"}
    assert all(k.family == "survival" for k in SURVIVAL_RULE_KINDS.values())


def test_survival_posterior_requires_its_variables():
    with pytest.raises(ValueError, match="missing"):
        SurvivalPosterior(xr.Dataset({"median": (("chain", "draw", "arm"), np.zeros((1, 2, 1)))}))
    with pytest.raises(KeyError, match="not in the posterior"):
        exact_fraction(0.5).median("zz")


def test_decision_rules_never_import_pymc():
    import subprocess
    import sys

    code = "import sys, decision_rules.survival; print(any(m in sys.modules for m in ('pymc', 'models')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
