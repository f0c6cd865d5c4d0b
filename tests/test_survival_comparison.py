"""The hazard-ratio rule at a look: concurrently randomized patients, exact by quadrature.

* On the bundled look (examples/rr_aml_synthetic.csv, cutoff 2026-10-31) the rule
  ``dav_vs_hav_os`` reads 15 and 15 OS deaths (arm4, arm3): the concurrently randomized patients,
  as the log-rank/Cox companion does; the whole arm4 has 16 (S0066 and S0084 were not
  randomized, one of them died).
* The adapter is :class:`models.survival_batch.SurvivalBatch` on the pair's counts: equal to the
  engine called directly, to the same pair inside a larger batch where it is its own shape group,
  to a fine grid integration written here when there is one interval (exact), and to a NUTS fit
  of the PyMC model within 0.01 (slow).
* ``hr_quantiles`` inverts ``prob_hr_below``.
"""

from datetime import date

import numpy as np
import pytest
from scipy import stats

from adaptive.config import load_config
from adaptive.data import load_patients
from adaptive.derive import derive
from adaptive.interim import hazard_ratio_results, randomized_pairs, survival_comparisons
from adaptive.survival_comparison import PairSurvivalPosterior, pair_survival, pair_survival_batch
from decision_rules import HazardRatioSuperiority
from models.survival import SurvivalData
from models.survival_batch import SurvivalBatch
from tests.conftest import CONFIG, EXAMPLE

CUTS = (0, 30, 60, 120, 240, 365, 730)
LN2 = np.log(2.0)
#: P(HR_{arm4:arm3} < 1) of the bundled look on its 15 + 15 concurrently randomized deaths
#: (SurvivalBatch; the whole-arm PyMC fit, with arm4's non-randomized death, gave 85.9%)
BUNDLED_PROB = 0.8692924


@pytest.fixture(scope="module")
def bundled():
    design = load_config(CONFIG)
    table = load_patients(EXAMPLE, design)
    return design, table, derive(table, design, date(2026, 10, 31))


def _counts(rng, n_arms=2, follow=600):
    arm, time, event = [], [], []
    names = tuple(f"a{k}" for k in range(n_arms))
    for k in range(n_arms):
        n = int(rng.integers(10, 40))
        t = rng.exponential(rng.uniform(150, 450) / LN2, n)
        t = np.where(rng.random(n) < 0.1, rng.uniform(1, 60, n), t)
        c = rng.uniform(1, follow, n)
        arm += [names[k]] * n
        time.append(np.minimum(t, c))
        event.append((t <= c).astype(float))
    return SurvivalData.from_times(names, CUTS, np.array(arm), np.concatenate(time), np.concatenate(event))


def _pair(names: tuple[str, str], seed: int) -> PairSurvivalPosterior:
    """The pair posterior of random two-arm counts, both arms centred on a 240-day median."""
    data = _counts(np.random.default_rng(seed))
    batch = SurvivalBatch(CUTS, np.log(LN2 / np.array([240.0, 240.0])), 1.0, 0.5)
    return PairSurvivalPosterior(names, batch, data.events, data.exposure)


def test_bundled_hr_rule_reads_the_concurrently_randomized_patients(bundled):
    design, table, derived = bundled
    (rule,) = [r for r in design.rules if r.id == "dav_vs_hav_os"]
    assert derived.survival.n_events("os")["arm4"] == 16  # the whole arm, non-randomized death included
    (res,) = hazard_ratio_results(design, table, derived, rule)
    assert res.n_evaluable == (15, 15) and not res.evaluated  # min_events 20, counted in the population
    assert res.extra["population"] == "concurrently_randomized"
    assert res.extra["events_by_arm"] == {"arm4": 15, "arm3": 15}
    assert res.extra["patients_by_arm"] == {"arm4": 50, "arm3": 40}
    assert res.extra["excluded"] == {"not_randomized": 2, "outside_window": 0}
    assert res.extra["window"] == {"from": "2025-04-01", "to": "2026-10-31"}
    assert res.mcse == 0.0 and "(exact)" in res.sentence
    assert (
        "Analysis: concurrently randomized patients only (enrolled 2025-04-01 to 2026-10-31; 15 and 15 "
        "events in arm4 and arm3; left out: 2 not randomized)"
    ) in res.sentence
    assert res.arms == ("arm4", "arm3") and res.prob == pytest.approx(BUNDLED_PROB, abs=1e-6)
    p_ab = res.extra["prob_hr_arm4_arm3_below_margin"]
    assert p_ab + res.extra["prob_hr_arm3_arm4_below_margin"] == pytest.approx(1.0, abs=1e-5)  # quadrature
    assert res.extra["hr_ci95_low"] < res.extra["hr_median"] < 1.0 < res.extra["hr_ci95_high"]


def test_bundled_survival_comparison_is_the_rule_analysis(bundled):
    """The look's "OS hazard ratio" line is the rule's number (one number for the DSMB)."""
    design, table, derived = bundled
    assert randomized_pairs(design) == [("arm3", "arm4")]
    # the whole-arm fit is not read for a randomized OS pair: no fit needed
    fits = {ep: type("Fit", (), {"idata": _fake_idata()})() for ep in ("os", "efs", "rfs")}
    comps = survival_comparisons(design, fits, derived, table)
    (os_cmp,) = [c for c in comps if c["endpoint"] == "os"]
    assert os_cmp["arms"] == ["arm4", "arm3"] and os_cmp["population"] == "concurrently_randomized"
    assert os_cmp["events_by_arm"] == {"arm4": 15, "arm3": 15}
    assert os_cmp["prob_hr_below_1"] == pytest.approx(BUNDLED_PROB, abs=1e-6)
    assert os_cmp["mcse_prob_hr_below_1"] == 0.0
    assert "P(HR < 1) 86.9%." in os_cmp["sentence"]
    assert "Concurrently randomized patients only (enrolled 2025-04-01" in os_cmp["sentence"]
    (rfs,) = [c for c in comps if c["endpoint"] == "rfs"]
    assert "population" not in rfs and "Not randomized" in rfs["sentence"]  # descriptive: the fit


def _fake_idata():
    """A whole-arm posterior the OS line must not read (its HR is 1 exactly, P(HR < 1) 0)."""
    import arviz as az

    arms = [f"arm{i}" for i in range(1, 9)]
    z = np.zeros((2, 10, len(arms)))
    surv = np.full((2, 10, len(arms), 3), 0.5)
    return az.from_dict(
        posterior={"eta": z, "median": z + 200, "survival": surv},
        coords={"arm": arms, "horizon": [180, 365, 730]},
        dims={"eta": ["arm"], "median": ["arm"], "survival": ["arm", "horizon"]},
    )


def test_pair_posterior_is_survival_batch_on_the_same_counts():
    rng = np.random.default_rng(3)
    data = _counts(rng)
    meds = np.array([240.0, 180.0])
    batch = SurvivalBatch(CUTS, np.log(LN2 / meds), 1.0, 0.5)
    post = PairSurvivalPosterior(("x", "y"), batch, data.events, data.exposure)
    direct = batch.posterior(data.events[None], data.exposure[None])
    for r in (0.6, 1.0, 1.4):
        assert post.prob_hr_below("x", "y", r).prob == direct.prob_hr_below(0, 1, r)[0]
        assert post.prob_hr_below("y", "x", r).prob == direct.prob_hr_below(1, 0, r)[0]
    est = post.prob_hr_below("x", "y")
    assert est.mcse == 0.0 and est.n_draws == 0
    # the pair as its own shape group of a larger batch: other arms do not enter
    other = _counts(np.random.default_rng(4))
    big = SurvivalBatch(
        CUTS, np.log(LN2 / np.array([300.0, 240.0, 180.0, 200.0])), 1.0, 0.5, groups=(1, 0, 0, 1)
    )
    ev = np.stack([other.events[0], data.events[0], data.events[1], other.events[1]])[None]
    ex = np.stack([other.exposure[0], data.exposure[0], data.exposure[1], other.exposure[1]])[None]
    assert big.posterior(ev, ex).prob_hr_below(1, 2)[0] == pytest.approx(
        post.prob_hr_below("x", "y").prob, abs=1e-12
    )


def test_one_interval_pair_is_exact():
    """One interval: P(eta_a - eta_b < log r) by a fine grid of each arm's posterior (written here)."""
    d, e = np.array([[7.0], [12.0]]), np.array([[2100.0], [2600.0]])
    m = np.log(LN2 / np.array([240.0, 180.0]))
    post = PairSurvivalPosterior(("a", "b"), SurvivalBatch((0, 730), m, 1.0, 0.5), d, e)
    x = np.linspace(-12, 0, 24001)

    def dens(k):
        logp = d[k, 0] * x - e[k, 0] * np.exp(x) + stats.norm.logpdf(x, m[k], 1.0)
        f = np.exp(logp - logp.max())
        return f / f.sum()

    fa, fb = dens(0), dens(1)
    cdf_a = np.cumsum(fa)
    for r in (0.5, 1.0, 1.7):
        ref = float(np.sum(fb * np.interp(x + np.log(r), x, cdf_a)))
        assert post.prob_hr_below("a", "b", r).prob == pytest.approx(ref, abs=1e-3)


def test_hr_quantiles_invert_prob_hr_below():
    post = _pair(("x", "y"), seed=5)
    qs = [0.025, 0.25, 0.5, 0.75, 0.975]
    hr = post.hr_quantiles("x", "y", qs)
    assert hr == sorted(hr)
    for q, r in zip(qs, hr, strict=True):
        assert post.prob_hr_below("x", "y", r).prob == pytest.approx(q, abs=1e-8)
    # HR_{y:x} = 1 / HR_{x:y} (the two directions are two quadratures: within 1e-5 in probability)
    back = post.hr_quantiles("y", "x", [1 - q for q in qs])
    assert np.allclose(back, 1.0 / np.array(hr), rtol=1e-3)


def test_rule_reads_the_pair_posterior():
    post = _pair(("hav", "dav"), seed=6)
    rule = HazardRatioSuperiority(id="hr", endpoint="os", threshold=0.5, min_evaluable=1, arms=("hav", "dav"))
    (res,) = rule.evaluate(post, {"hav": 5, "dav": 5}, source_note="Note.", extra={"population": "p"})
    p_ab, p_ba = post.prob_hr_below("hav", "dav").prob, post.prob_hr_below("dav", "hav").prob
    assert res.prob == max(p_ab, p_ba) and res.sentence.endswith("Note.")
    assert p_ab + p_ba == pytest.approx(1.0, abs=1e-5)
    assert res.extra["population"] == "p" and res.mcse == 0.0


def test_pair_batch_is_the_endpoints_prior_over_the_pair(bundled):
    design, table, derived = bundled
    batch = pair_survival_batch(design, "os", ("arm4", "arm3"))
    medians, _ = design.survival_prior("os", ("arm4", "arm3"))
    cfg = design.survival.endpoints["os"].model
    assert np.allclose(batch.level_means, np.log(LN2 / np.array(medians)))
    assert batch.level_sd == cfg.level.sd and batch.smoothing_sd == cfg.smoothing_sd
    assert tuple(batch.group_of) == (0, 0) and batch.point_mass_days is None
    # without a patient table: every patient of the two arms (the whole arm4, its 16 deaths)
    assert pair_survival(design, None, derived, "os", ("arm4", "arm3")).events == {"arm4": 16, "arm3": 15}


@pytest.mark.slow
def test_pair_posterior_matches_the_pymc_fit():
    """Against a NUTS fit of the interim's model on the same two arms (4 x 4,000 draws, MCSE ~0.004)."""
    from models.sampling import SamplerSettings
    from models.survival import PiecewiseExponential

    data = _counts(np.random.default_rng(7))
    meds = (240.0, 180.0)
    post = PairSurvivalPosterior(
        ("a0", "a1"), SurvivalBatch(CUTS, np.log(LN2 / np.array(meds)), 1.0, 0.5), data.events, data.exposure
    )
    model = PiecewiseExponential(kind="independent", level_median_days=meds, level_sd=1.0, smoothing_sd=0.5)
    idata = model.fit(data, seed=2, settings=SamplerSettings(chains=4, draws=4000, tune=1000))
    eta = idata.posterior["eta"].values.reshape(-1, 2)
    for r in (0.7, 1.0, 1.3):
        assert post.prob_hr_below("a0", "a1", r).prob == pytest.approx(
            np.mean(eta[:, 0] - eta[:, 1] < np.log(r)), abs=0.01
        )
    lo, med, hi = post.hr_quantiles("a0", "a1", [0.025, 0.5, 0.975])
    assert med == pytest.approx(float(np.exp(np.median(eta[:, 0] - eta[:, 1]))), rel=0.03)


def test_robustness_level_sd_reads_the_rule_population(bundled):
    """The panel's `survival_level_sd` alternative of a hazard-ratio rule: same patients, another sd."""
    from types import SimpleNamespace

    from adaptive.robustness import _alternative, _Context

    design, table, derived = bundled
    (rule,) = [r for r in design.rules if r.id == "dav_vs_hav_os"]
    (res,) = hazard_ratio_results(design, table, derived, rule)
    alt = SimpleNamespace(
        survival_level_sd=2.0, survival_benchmark_scale=None, binary_prior=None, reference_shift=None
    )
    got = _alternative(_Context(design, derived, {}, table), rule, res, alt)
    pair = pair_survival(design, table, derived, "os", ("arm4", "arm3"), level_sd=2.0)
    assert pair.events == {"arm4": 15, "arm3": 15}
    assert got["prob"] == pytest.approx(pair.posterior.prob_hr_below("arm4", "arm3").prob, abs=1e-12)
    assert got["prob"] != pytest.approx(res.prob, abs=1e-4)  # the sd matters
