"""Recommendations, queued arms and borrowing on constructed posteriors (no MCMC)."""

import copy
from datetime import date

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from adaptive.borrowing import model_for_look
from adaptive.derive import ArmCounts, DerivedData
from adaptive.queue import evaluate_queue
from adaptive.randomization import allocate, allocation_rules
from adaptive.recommend import ACTIONS, PRECEDENCE, build_recommendations, closing_arms
from decision_rules import BetaPredictive, DrawsPosterior, MedianEfficacy, SurvivalPosterior
from decision_rules.rules import PREDICTIVE_KINDS
from models.binary import Exnex, HierarchicalLogistic, IndependentBetaBinomial
from tests.conftest import config_dict, design_from, in_shape_group

CUTOFF = date(2026, 10, 31)
ARMS = [f"arm{i}" for i in range(1, 8)]


def make_derived(design, n_eval=30, n_enrolled=None, responders=10, pending=0):
    """Constructed counts; enrolment stays below max_n unless ``n_enrolled`` says otherwise."""
    n_enrolled = {a: min(n_eval, design.arm(a).max_n - 1) for a in ARMS} | (n_enrolled or {})
    counts = {
        ep: {
            a: ArmCounts(n_eval if a in ARMS else 0, responders if a in ARMS else 0, pending)
            for a in design.arm_ids
        }
        for ep in design.endpoints
    }
    return DerivedData(
        cutoff=CUTOFF,
        patients=pd.DataFrame(columns=["subject_id", "arm", *design.endpoints]),
        n_enrolled={a: n_enrolled.get(a, 0) for a in design.arm_ids},
        counts=counts,
    )


def posterior(values: dict[str, float], spread=0.0, n=4000) -> DrawsPosterior:
    """Draws of each arm's rate: uniform on ``values[arm] +- spread / 2`` (spread: number or per arm)."""
    rng = np.random.default_rng(0)
    arms = list(values)
    sp = spread if isinstance(spread, dict) else dict.fromkeys(arms, spread)
    draws = np.stack([values[a] + sp.get(a, 0.0) * (rng.random(n) - 0.5) for a in arms], axis=-1)
    return DrawsPosterior(
        xr.DataArray(draws.reshape(4, n // 4, len(arms)), dims=("chain", "draw", "arm"), coords={"arm": arms})
    )


def evaluate(design, derived, crc: dict, mortality: dict | None = None, spread=0.0):
    """Every non-predictive rule on constructed posteriors (mortality defaults to the null)."""
    mort = mortality or {a: design.arm(a).rates["mortality_30d"].null_rate for a in crc}
    posts = {
        "crc": posterior(crc, spread),
        "mortality_30d": posterior(mort),
        "mortality_60d": posterior(mort),
    }
    out = []
    for rule in design.rules:
        if rule.kind in PREDICTIVE_KINDS or rule.endpoint not in posts:
            continue
        n_eval = {a: c.n_evaluable for a, c in derived.counts[rule.endpoint].items()}
        out += rule.evaluate(posts[rule.endpoint], n_eval, design.labels)
    return out


@pytest.fixture(scope="module")
def design():
    return design_from(config_dict())


def neutral(design):
    """CRc rates between null and target for every arm: no rule fires."""
    return {
        a: (design.arm(a).rates["crc"].null_rate + design.arm(a).rates["crc"].target_rate) / 2 + 0.0
        for a in ARMS
    }


def by_arm(recs):
    return {r["arm"]: r for r in recs if r["arm"]}


def test_nothing_fires_every_open_arm_continues(design):
    derived = make_derived(design)
    crc = neutral(design)
    # spread so that neither P(> null) = 1 nor P(> target) = 0
    post = posterior(crc, spread=0.6)
    results = []
    for rule in design.rules:
        if rule.endpoint == "crc" and rule.kind not in PREDICTIVE_KINDS:
            results += rule.evaluate(post, {a: 30 for a in ARMS}, design.labels)
    results = [r for r in results if not r.fired]
    recs = build_recommendations(design, derived, results)
    assert [r["action"] for r in recs] == ["continue"] * 7
    assert all(r["action"] in ACTIONS for r in recs)
    assert "arm8" not in by_arm(recs)  # queued: handled by the queue, not here
    assert by_arm(recs)["arm1"]["sentence"].startswith(
        "No rule fires for arm1 (IDH1: ivosidenib-based): it continues"
    )


def test_precedence_harm_before_futility_before_efficacy(design):
    derived = make_derived(design)
    crc = neutral(design)
    # arm5: CRc certainly above null (15%) and certainly below the minimal worthwhile rate (24%)
    # -> efficacy AND futility fire; 30-day mortality certainly above its limit -> harm fires too
    crc["arm5"] = 0.20
    mort = {a: design.arm(a).rates["mortality_30d"].null_rate for a in ARMS}
    mort["arm5"] = 0.30
    results = evaluate(design, derived, crc, mort)
    fired = {r.rule for r in results if r.fired and r.arms == ("arm5",)}
    assert {"graduate_crc", "futility_crc", "harm_mortality_30d", "harm_mortality_60d"} <= fired
    rec = by_arm(build_recommendations(design, derived, results))["arm5"]
    assert rec["action"] == "drop_harm"
    assert {r["rule"] for r in rec["rules"]} == {"harm_mortality_30d", "harm_mortality_60d"}
    assert {r["rule"] for r in rec["also_fired"]} == {"graduate_crc", "futility_crc"}
    assert "by the precedence harm > suspension > futility > inferiority > efficacy > flag" in rec["sentence"]
    assert rec["sentence"].startswith("Recommend dropping arm5 (Ven+Aza) for harm.")
    # without the harm signal, futility wins over efficacy
    results = evaluate(design, derived, crc)
    rec = by_arm(build_recommendations(design, derived, results))["arm5"]
    assert rec["action"] == "drop_futility" and [r["rule"] for r in rec["also_fired"]] == ["graduate_crc"]
    assert "The DSMB should weigh both" in rec["sentence"]
    assert PRECEDENCE == (
        "drop_harm",
        "suspend_enrolment",
        "drop_futility",
        "drop_inferior",
        "graduate",
        "complete",
        "flag",
    )


def test_inferior_arm_of_the_randomized_pair(design):
    derived = make_derived(design)
    crc = neutral(design)
    # DAV uniform on [0.3, 0.7] (neither futile nor efficacious), HAV on [0.72, 0.9]: HAV better
    crc["arm3"], crc["arm4"] = 0.50, 0.81
    results = evaluate(design, derived, crc, spread={"arm3": 0.4, "arm4": 0.18})
    recs = by_arm(build_recommendations(design, derived, results))
    assert recs["arm3"]["action"] == "drop_inferior"
    assert "Recommend dropping arm3 (DAV) as inferior to arm4 (HAV)." in recs["arm3"]["sentence"]
    # the better arm is carried forward, never graduated while the comparison is open: no
    # single-arm efficacy rule covers the arms of the randomized cohort
    assert recs["arm4"]["action"] == "continue"
    assert not [r for r in results if r.arms == ("arm4",) and r.kind == "efficacy"]


def survival_posterior(medians: dict[str, float], log_hazard: dict[str, float], n=4000) -> SurvivalPosterior:
    """Fake survival draws: each arm's median (days) and log hazard ``eta``, jittered a little."""
    rng = np.random.default_rng(1)
    arms = list(medians)

    def stack(values, sd):
        draws = np.stack([values[a] + sd * rng.standard_normal(n) for a in arms], axis=-1)
        return draws.reshape(4, -1, len(arms))

    ds = xr.Dataset(
        {
            "median": (("chain", "draw", "arm"), stack(medians, 5.0)),
            "eta": (("chain", "draw", "arm"), stack(log_hazard, 0.1)),
        },
        coords={"arm": arms},
    )
    return SurvivalPosterior(ds)


def os_results(design, post, events=30):
    """The bundled survival rules (futility_os, dav_vs_hav_os) on a fake OS posterior."""
    out = []
    for rule in design.rules:
        if rule.family == "survival":
            out += rule.evaluate(post, dict.fromkeys(ARMS, events), design.labels)
    return out


def test_fired_hazard_ratio_rule_drops_the_worse_arm(design):
    derived = make_derived(design)
    crc = neutral(design)
    binary = [r for r in evaluate(design, derived, crc, spread=0.6) if not r.fired]
    medians = {a: 2 * design.arm(a).survival_benchmarks.os_median_days for a in ARMS}  # not futile
    eta = dict.fromkeys(ARMS, np.log(np.log(2) / 240))
    eta["arm4"] += 0.7  # HAV: hazard twice DAV's -> DAV better, P(HR_arm3:arm4 < 1) = 1
    results = binary + os_results(design, survival_posterior(medians, eta))
    (hr,) = [r for r in results if r.kind == "hazard_ratio"]
    assert hr.fired and hr.arms == ("arm3", "arm4")  # the better arm first
    assert hr.extra["better"] == "arm3" and hr.extra["inferior"] == "arm4"
    recs = by_arm(build_recommendations(design, derived, results))
    assert recs["arm4"]["action"] == "drop_inferior" and recs["arm4"]["reason"] == "hazard_ratio"
    assert recs["arm4"]["sentence"].startswith("Recommend dropping arm4 (HAV) as inferior to arm3 (DAV).")
    assert recs["arm3"]["action"] == "continue"  # the better arm is never dropped
    assert {r["action"] for a, r in recs.items() if a not in ("arm3", "arm4")} == {"continue"}
    # the reverse direction drops the other arm
    eta["arm4"], eta["arm3"] = eta["arm1"], eta["arm1"] + 0.7
    results = binary + os_results(design, survival_posterior(medians, eta))
    recs = by_arm(build_recommendations(design, derived, results))
    assert recs["arm3"]["action"] == "drop_inferior" and recs["arm4"]["action"] == "continue"


def test_survival_rule_actions_follow_the_precedence(design):
    derived = make_derived(design)
    binary = [r for r in evaluate(design, derived, neutral(design), spread=0.6) if not r.fired]
    bench = {a: design.arm(a).survival_benchmarks.os_median_days for a in ARMS}
    medians = {a: 2 * bench[a] for a in ARMS}
    medians["arm6"] = bench["arm6"] / 2  # P(median > benchmark) = 0 -> survival_futility fires
    eta = dict.fromkeys(ARMS, 0.0)
    results = binary + os_results(design, survival_posterior(medians, eta))
    recs = by_arm(build_recommendations(design, derived, results))
    assert recs["arm6"]["action"] == "drop_futility" and recs["arm6"]["reason"] == "survival_futility"
    # survival_efficacy recommends graduating; futility on another endpoint outranks it
    eff = MedianEfficacy(
        id="graduate_os", endpoint="os", endpoint_label="OS", threshold=0.9, references=bench
    )
    post = survival_posterior(medians, eta)
    fired_eff = [r for r in eff.evaluate(post, dict.fromkeys(ARMS, 30), design.labels) if r.fired]
    assert {r.arms[0] for r in fired_eff} == set(ARMS) - {"arm6"}
    recs = by_arm(build_recommendations(design, derived, binary + fired_eff))
    assert recs["arm1"]["action"] == "graduate" and recs["arm1"]["reason"] == "survival_efficacy"
    crc = neutral(design)
    crc["arm1"] = 0.01  # CRc futility for arm1 as well
    binary_fut = evaluate(design, derived, crc)
    recs = by_arm(build_recommendations(design, derived, binary_fut + fired_eff))
    assert recs["arm1"]["action"] == "drop_futility"
    assert [r["rule"] for r in recs["arm1"]["also_fired"]] == ["graduate_os"]
    # too few events: futility_os waits (min_events 10), and the sentence says what it waits for
    few = binary + os_results(design, survival_posterior(medians, eta), events=5)
    rec = by_arm(build_recommendations(design, derived, few))["arm6"]
    assert rec["action"] == "continue"
    assert "futility_os waits for more evaluable patients or events" in rec["sentence"]


def test_rules_wait_for_min_evaluable(design):
    derived = make_derived(design, n_eval=5)
    crc = neutral(design)
    crc["arm1"] = 0.01  # would be futile, but only 5 evaluable (< 15)
    results = evaluate(design, derived, crc)
    rec = by_arm(build_recommendations(design, derived, results))["arm1"]
    assert rec["action"] == "continue" and "wait for more evaluable patients" in rec["sentence"]


def test_accrual_complete_arm_waits_for_its_outcomes(design):
    derived = make_derived(design, n_enrolled={"arm6": 30}, pending=2)
    results = [r for r in evaluate(design, derived, neutral(design)) if not r.fired]
    summary = {
        "arm6": {
            "endpoints": {
                "crc": {
                    "null_rate": 0.08,
                    "target_rate": 0.25,
                    "prob_above_null": 0.9,
                    "prob_above_target": 0.2,
                }
            }
        }
    }
    rec = by_arm(build_recommendations(design, derived, results, arm_summaries=summary))["arm6"]
    assert rec["action"] == "continue" and rec["stage"] == "accrual_complete" and rec["complete"]
    assert rec["final_probabilities"]["crc"]["prob_above_null"] == 0.9
    assert "accrual complete (30 of 30 enrolled), follow-up continues" in rec["sentence"]
    assert "P(CRc > 8%) 90.0%, P(CRc > 25%) 20.0%" in rec["sentence"]
    assert "2 outcome(s) still pending; the final analysis follows once they are in" in rec["sentence"]


def _summary(design, arm, y, n, post_mean=None):
    """An arm summary as the look writes it (conjugate numbers for the primary endpoint)."""
    from scipy import stats

    r = design.arm(arm).rates["crc"]
    a, b = r.null_rate + y, 1 - r.null_rate + n - y
    return {
        "endpoints": {
            "crc": {
                "n_evaluable": n,
                "responders": y,
                "n_pending": 0,
                "observed_rate": y / n,
                "null_rate": r.null_rate,
                "target_rate": r.target_rate,
                "mean": a / (a + b) if post_mean is None else post_mean,
                "ci95_low": stats.beta.ppf(0.025, a, b),
                "ci95_high": stats.beta.ppf(0.975, a, b),
                "prob_above_null": stats.beta.sf(r.null_rate, a, b),
                "prob_above_target": stats.beta.sf(r.target_rate, a, b),
            }
        }
    }


@pytest.mark.parametrize(
    ("y", "action", "result"), [(10, "complete", "criterion_not_met"), (12, "graduate", "criterion_met")]
)
def test_final_analysis_gives_a_final_result_never_futility(design, y, action, result):
    """arm5 with its 40 patients and every outcome in: the efficacy rule decides, futility does not."""
    from scipy import stats

    from decision_rules import BetaPosterior

    derived = make_derived(design, n_eval=40, n_enrolled={"arm5": 40})
    derived.counts["crc"]["arm5"] = ArmCounts(40, y, 0)
    a, b = 0.15 + y, 0.85 + 40 - y
    post = BetaPosterior(["arm5"], [a], [b])
    results = []
    for rule in design.rules:
        if rule.endpoint == "crc" and rule.kind in ("efficacy", "futility"):
            results += [r for r in rule.evaluate(post, {"arm5": 40}, design.labels)]
    # 10/40: P(> 15%) = 94.0% < 97.5%; 12/40: 99.0% (the critical count is 12)
    assert bool(stats.beta.sf(0.15, a, b) > 0.975) is (action == "graduate")
    pp = next(r for r in design.rules if r.kind == "predictive_futility")
    from decision_rules import BetaPredictive

    results += pp.evaluate(BetaPredictive(["arm5"], [a], [b]), {"arm5": 40}, design.labels)
    assert any(r.fired for r in results if r.kind == "predictive_futility") is (y == 10)  # PP 0 at 10/40
    rec = by_arm(
        build_recommendations(
            design, derived, results, arm_summaries={"arm5": _summary(design, "arm5", y, 40)}
        )
    )["arm5"]
    assert rec["stage"] == "final_analysis" and rec["action"] == action and rec["final_result"] == result
    if action == "complete":
        assert rec["sentence"].startswith("Final analysis of arm5 (Ven+Aza): criterion not met (")
        assert "it would have needed at least 12 responders of 40 (observed 10)" in rec["sentence"]
        assert "CRc 10/40 (25.0%), posterior mean" in rec["sentence"]
        assert "Recommend closing arm5 (Ven+Aza) as completed (40 of 40 enrolled)." in rec["sentence"]
        assert "drop_futility" not in rec["sentence"] and "'pp_futility_crc'" in rec["sentence"]
    else:
        assert rec["sentence"].startswith("Final analysis of arm5 (Ven+Aza): criterion met.")


def test_closed_arms_get_nothing_and_suspended_arms_stay(design):
    doc = config_dict()
    doc["arms"]["arm1"]["status"] = "dropped"
    doc["arms"]["arm2"]["status"] = "graduated"
    doc["arms"]["arm5"]["status"] = "suspended"
    d = design_from(doc)
    derived = make_derived(d)
    results = [r for r in evaluate(d, derived, neutral(d)) if not r.fired]
    recs = by_arm(build_recommendations(d, derived, results))
    assert "arm1" not in recs and "arm2" not in recs
    assert recs["arm5"]["action"] == "continue" and "stays suspended" in recs["arm5"]["sentence"]


def _arm1_near_the_futility_threshold(design, n_high: int) -> dict:
    """arm1's recommendation when ``n_high`` of 400 draws of its CRc lie above 25% (the rest below)."""
    derived = make_derived(design)
    rng = np.random.default_rng(1)
    vals = np.r_[np.full(n_high, 0.40), np.full(400 - n_high, 0.20)]
    arms = {a: np.full(400, v) for a, v in neutral(design).items()}
    arms["arm1"] = rng.permutation(vals)
    post = DrawsPosterior(
        xr.DataArray(
            np.stack(list(arms.values()), -1).reshape(4, 100, 7),
            dims=("chain", "draw", "arm"),
            coords={"arm": list(arms)},
        )
    )
    rule = next(r for r in design.rules if r.id == "futility_crc")
    results = rule.evaluate(post, {a: 30 for a in ARMS}, design.labels)
    return by_arm(build_recommendations(design, derived, results))["arm1"]


def test_mc_uncertain_fired_rule_is_flagged(design):
    # P(CRc arm1 > 25%) just below 5% with sizeable Monte Carlo error: 19 of 400 draws
    rec = _arm1_near_the_futility_threshold(design, 19)
    assert rec["action"] == "drop_futility" and rec["mc_uncertain"]


def test_mc_uncertain_rule_that_does_not_fire_makes_continue_provisional(design):
    # just above 5%: 21 of 400 draws
    rec = _arm1_near_the_futility_threshold(design, 21)
    assert rec["action"] == "continue"
    # a fact for the DSMB, not an instruction it cannot act on
    assert "'no rule fires' is provisional" in rec["sentence"] and "refit" not in rec["sentence"]


def test_adjust_randomization_only_when_the_allocation_moves(design):
    derived = make_derived(design)
    rule = allocation_rules(design)[0]
    post = posterior({"arm3": 0.45, "arm4": 0.50}, spread=0.3)
    moved = allocate(design, derived, rule, post, previous=None, previous_source="")
    recs = build_recommendations(design, derived, [], allocations={rule.cohort: moved})
    (adj,) = [r for r in recs if r["action"] == "adjust_randomization"]
    assert adj["cohort"] == "fit_no_target" and adj["probabilities"] == moved.probabilities
    assert adj["sentence"].startswith("Recommend changing the randomization. Cohort fit_no_target: randomize")
    same = allocate(design, derived, rule, post, previous=dict(moved.probabilities), previous_source="look 1")
    recs = build_recommendations(design, derived, [], allocations={rule.cohort: same})
    assert not [r for r in recs if r["action"] == "adjust_randomization"]


def test_allocation_in_burn_in_and_after_a_drop(design):
    rule = allocation_rules(design)[0]
    post = posterior({"arm3": 0.45, "arm4": 0.60}, spread=0.1)
    burn = allocate(design, make_derived(design, n_eval=12), rule, post, previous=None, previous_source="")
    assert burn.burn_in_active and burn.probabilities == {"arm3": 0.5, "arm4": 0.5}
    after = allocate(design, make_derived(design, n_eval=30), rule, post, previous=None, previous_source="")
    assert after.probabilities["arm4"] == pytest.approx(0.65)  # capped at 0.5 + 0.15
    alt = allocate(
        design,
        make_derived(design, n_eval=30),
        rule,
        post,
        previous=None,
        previous_source="",
        closing={"arm3"},
    )
    assert alt.probabilities == {"arm3": 0.0, "arm4": 1.0}


# ----------------------------------------------------------------------------- queued arms
def queue_design(**changes):
    doc = config_dict()
    for arm, status in changes.items():
        doc["arms"][arm]["status"] = status
    return design_from(doc)


def test_queued_arm_waits_for_its_slot(design):
    (q,) = evaluate_queue(design, CUTOFF)
    assert q.arm == "arm8" and not q.opens
    met = {c["condition"]: c["met"] for c in q.conditions}
    assert met == {"earliest_on": True, "max_open_arms": False, "after_closure_of": False}
    assert "stays queued for cohort new_drug" in q.sentence and "arm7 is active" in q.sentence


def test_queued_arm_opens_when_its_slot_frees(design):
    d = queue_design(arm7="dropped")
    (q,) = evaluate_queue(d, CUTOFF)
    assert q.opens
    assert "arm7 (New-drug trial) has closed (dropped): its slot is free" in q.sentence
    assert "6 arms open, at most 7 allowed" in q.sentence
    recs = build_recommendations(d, make_derived(d), [], queue=[q])
    (add,) = [r for r in recs if r["action"] == "add_arm"]
    assert add["arm"] == "arm8" and add["cohort"] == "new_drug" and add["reason"] == "entry_conditions_met"
    assert add["sentence"].startswith("Recommend opening arm8 (New drug B) in cohort new_drug")
    assert "until it has 10 evaluable" in add["sentence"]
    # not before the earliest opening date
    (q,) = evaluate_queue(d, date(2026, 6, 30))
    assert not q.opens and "not reached by the cutoff 2026-06-30" in q.sentence


def test_one_closure_frees_one_slot_and_queue_order_holds():
    doc = config_dict()
    doc["arms"]["arm7"]["status"] = "dropped"
    doc["arms"]["arm9"] = {**copy.deepcopy(doc["arms"]["arm8"]), "label": "New drug C"}
    in_shape_group(doc, "arm9")
    d = design_from(doc)
    q8, q9 = evaluate_queue(d, CUTOFF)
    assert q8.opens and not q9.opens
    met9 = {c["condition"]: c["met"] for c in q9.conditions}
    assert met9["after_closure_of"] is False and "queue_order" not in met9
    assert "already taken by an earlier queued arm" in q9.sentence
    # an arm with no conditions of its own still waits behind an earlier queued arm of its cohort
    doc["arms"]["arm7"]["status"] = "active"
    doc["arms"]["arm9"]["entry"] = {"cohort": "new_drug"}
    q8, q9 = evaluate_queue(design_from(doc), CUTOFF)
    assert not q8.opens and not q9.opens
    assert q9.conditions[-1]["condition"] == "queue_order" and "still waiting" in q9.sentence


def test_cohort_that_lost_its_arm_and_max_open_arms():
    doc = config_dict()
    doc["arms"]["arm5"]["status"] = "dropped"  # the unfit cohort loses its only arm
    doc["arms"]["arm9"] = {
        **copy.deepcopy(doc["arms"]["arm5"]),
        "label": "Ven + decitabine",
        "status": "queued",
        "entry": {"cohort": "unfit", "when_cohort_has_no_open_arm": True, "max_open_arms": 7},
    }
    in_shape_group(doc, "arm9")
    d = design_from(doc)
    qs = {q.arm: q for q in evaluate_queue(d, CUTOFF)}
    assert qs["arm9"].opens and "cohort unfit has lost every open arm" in qs["arm9"].sentence
    # arm8 (needs arm7 closed) stays queued; max_open_arms counts arm9 opening at this look
    doc["arms"]["arm7"]["status"] = "dropped"
    doc["arms"]["arm8"]["entry"]["max_open_arms"] = 6
    d = design_from(doc)
    qs = {q.arm: q for q in evaluate_queue(d, CUTOFF)}
    assert qs["arm8"].opens  # 5 open (arm1-4, arm6) < 6
    assert qs["arm9"].opens and "6 arms open, at most 7 allowed" in qs["arm9"].sentence  # arm8 counts
    doc["arms"]["arm9"]["entry"]["max_open_arms"] = 6
    qs = {q.arm: q for q in evaluate_queue(design_from(doc), CUTOFF)}
    assert qs["arm8"].opens and not qs["arm9"].opens
    assert "6 arms open, at most 6 allowed" in qs["arm9"].sentence


def test_queued_arm_without_entry_is_never_recommended():
    doc = config_dict()
    del doc["arms"]["arm8"]["entry"]
    doc["arms"]["arm8"].pop("borrowing", None)
    (q,) = evaluate_queue(design_from(doc), CUTOFF)
    assert not q.opens and "opens only when the DSMB decides" in q.sentence


def test_closing_arms():
    recs = [
        {"action": "drop_harm", "arm": "a"},
        {"action": "graduate", "arm": "b"},
        {"action": "continue", "arm": "c"},
        {"action": "add_arm", "arm": "d"},
        {"action": "adjust_randomization", "arm": None},
    ]
    assert closing_arms(recs) == {"a", "b"}


# ----------------------------------------------------------------------------- borrowing of a new arm
BASKET = ["arm1", "arm2", "arm5", "arm6", "arm8"]  # a declared exchangeable set (for the test)


def borrowing_doc():
    """The bundled config with borrowing within a declared group (EXNEX on CRc, hierarchical ORR)."""
    doc = config_dict()
    prior = {"mu": {"mean": 0.0, "sd": 1.0}, "tau": {"dist": "half_normal", "scale": 0.5}}
    doc["endpoints"]["crc"]["model"] = {
        "kind": "exnex", "borrowing_group": BASKET, **prior, "nex": {"mean": 0.0, "sd": 2.0}, "w": 0.5,
    }  # fmt: skip
    doc["endpoints"]["orr"]["model"] = {"kind": "hierarchical", "borrowing_group": BASKET, **prior}
    doc["arms"]["arm8"]["monitoring"] = "full"
    doc["arms"]["arm8"]["status"] = "active"
    doc["arms"]["arm8"]["opened_on"] = "2026-09-01"
    return doc


def test_borrowing_only_within_the_declared_group_and_after_the_burn_in():
    d = design_from(borrowing_doc())
    derived = make_derived(d)  # arm8 has 0 evaluable
    in_group = [a in BASKET for a in d.modelled_arms]
    model, info = model_for_look(d, derived, "crc")  # EXNEX: w = 0.5 in the group, 0 outside
    assert isinstance(model, Exnex)
    assert model.w == tuple(
        0.5 if g and a != "arm8" else 0.0 for a, g in zip(d.modelled_arms, in_group, strict=True)
    )
    assert info["arm8"] == {
        "in_borrowing_group": True,
        "prior_weight_exchangeable": 0.0,
        "exchangeable_after": 10,
        "in_borrowing_burn_in": True,
    }
    assert info["arm3"]["in_borrowing_group"] is False and info["arm3"]["prior_weight_exchangeable"] == 0.0
    model, info = model_for_look(d, derived, "orr")  # hierarchical -> EXNEX with w in {0, 1}
    assert isinstance(model, Exnex)
    assert model.w == tuple(
        1.0 if g and a != "arm8" else 0.0 for a, g in zip(d.modelled_arms, in_group, strict=True)
    )
    assert (model.nex_mean, model.nex_sd) == (0.0, 2.0)
    model, info = model_for_look(d, derived, "mortality_30d")
    assert isinstance(model, IndependentBetaBinomial) and info == {}
    # with 10 evaluable arm8 is exchangeable; arms outside the group never are
    counts = {ep: {**c, "arm8": ArmCounts(10, 3, 0)} for ep, c in derived.counts.items()}
    later = DerivedData(CUTOFF, derived.patients, derived.n_enrolled, counts)
    orr_model, info = model_for_look(d, later, "orr")
    assert (
        orr_model.w == tuple(1.0 if g else 0.0 for g in in_group) and not info["arm8"]["in_borrowing_burn_in"]
    )
    # a group of every modelled arm gives the plain hierarchical model back
    doc = borrowing_doc()
    doc["endpoints"]["orr"]["model"]["borrowing_group"] = list(d.modelled_arms)
    doc["arms"]["arm7"]["monitoring"] = "full"
    doc["rules"] = [r for r in doc["rules"] if r["kind"] in ("harm",)]
    assert isinstance(model_for_look(design_from(doc), later, "orr")[0], HierarchicalLogistic)


def test_borrowing_group_is_required_and_never_descriptive():
    from adaptive.exceptions import ConfigError

    doc = borrowing_doc()
    del doc["endpoints"]["orr"]["model"]["borrowing_group"]
    with pytest.raises(
        ConfigError, match=r"endpoints.orr.model.borrowing_group: required: borrowing across arms"
    ):
        design_from(doc)
    doc = borrowing_doc()
    doc["endpoints"]["orr"]["model"]["borrowing_group"] = ["arm1", "arm7"]
    with pytest.raises(ConfigError, match=r"arm7 is descriptive: it never borrows"):
        design_from(doc)


def test_predictive_rule_on_an_independent_endpoint_is_exact(design):
    rule = next(r for r in design.rules if r.kind == "predictive_futility")
    src = BetaPredictive(["arm1"], [0.15 + 2], [0.85 + 18])
    (res,) = rule.evaluate(src, {"arm1": 20}, design.labels, {"arm1": (2, 20)})
    assert res.extra["method"] == "exact beta-binomial enumeration" and res.mcse == 0.0


def test_opposite_comparisons_drop_neither_arm(design):
    """CRc favours HAV while OS favours DAV: no drop_inferior for either arm, the conflict is named."""
    derived = make_derived(design)
    crc = neutral(design)
    crc["arm3"], crc["arm4"] = 0.50, 0.81  # HAV better on CRc (as in the test above)
    binary = evaluate(design, derived, crc, spread={"arm3": 0.4, "arm4": 0.18})
    medians = {a: 2 * design.arm(a).survival_benchmarks.os_median_days for a in ARMS}
    eta = dict.fromkeys(ARMS, np.log(np.log(2) / 240))
    eta["arm4"] += 0.7  # ... but DAV better on OS
    results = binary + os_results(design, survival_posterior(medians, eta))
    assert {r.rule for r in results if r.fired and r.action == "drop_inferior"} == {
        "dav_vs_hav_crc",
        "dav_vs_hav_os",
    }
    recs = by_arm(build_recommendations(design, derived, results))
    for arm, partner in (("arm3", "arm4"), ("arm4", "arm3")):
        rec = recs[arm]
        assert rec["action"] != "drop_inferior", arm
        assert "conflicts" in rec["sentence"] and partner in rec["sentence"]
    assert "dav_vs_hav_crc" in {x["rule"] for x in recs["arm3"]["also_fired"]}  # kept, not acted on
    assert "dav_vs_hav_os" in {x["rule"] for x in recs["arm4"]["also_fired"]}
    assert recs["arm3"]["action"] == "continue"  # DAV: only its (conflicting) comparisons fired
    assert recs["arm4"]["action"] == "continue"  # HAV: no single-arm efficacy rule covers it
    assert "arm3" not in closing_arms(build_recommendations(design, derived, results))


def test_concurrent_analysis_keeps_only_concurrently_randomized_patients(tmp_path):
    """Drift check by hand: arm4 opens on 2026-03-01, so earlier arm3 patients are not concurrent."""
    from scipy import integrate, stats

    from adaptive.data import load_patients
    from adaptive.derive import derive
    from adaptive.randomization import _beta, concurrent_counts, concurrent_window
    from tests.conftest import config_dict, design_from, rows_frame, write_csv

    doc = config_dict()
    doc["arms"]["arm4"]["opened_on"] = "2026-03-01"
    design = design_from(doc)
    # responses within the 56-day landmark of the concurrent patients (a later one is a failure)
    cr = {"best_response": "CR", "response_on": "2026-04-20"}
    nr = {"best_response": "NR", "response_on": "2026-04-20"}
    frame = rows_frame(
        {"arm": "arm3", "enrolled_on": "2026-01-10", **cr},  # before arm4 opened: outside window
        {"arm": "arm3", "enrolled_on": "2026-03-05", **cr},
        {"arm": "arm3", "enrolled_on": "2026-03-06", **nr},
        {"arm": "arm3", "enrolled_on": "2026-03-07", "randomized": "false", **cr},  # not randomized
        {"arm": "arm4", "enrolled_on": "2026-03-08", **nr},
        {"arm": "arm4", "enrolled_on": "2026-03-09", **nr},
        {"arm": "arm4", "enrolled_on": "2026-06-01"},  # no response yet: not evaluable
    )
    table = load_patients(write_csv(tmp_path, frame), design)
    cutoff = date(2026, 6, 30)
    derived = derive(table, design, cutoff)
    window = concurrent_window(design, table, ["arm3", "arm4"], cutoff)
    assert window == (date(2026, 3, 1), cutoff)
    n, y, excluded = concurrent_counts(design, table, derived, "crc", ["arm3", "arm4"], window)
    assert n == {"arm3": 2, "arm4": 2} and y == {"arm3": 1, "arm4": 0}
    assert excluded == {"not_randomized": 1, "outside_window": 1, "not_evaluable": 1}
    # the independent conjugate model Beta(null, 1 - null) + data, P(arm3 better) by quadrature
    p0 = 0.35
    a3, b3 = stats.beta(p0 + 1, 1 - p0 + 1), stats.beta(p0 + 0, 1 - p0 + 2)
    want = integrate.quad(lambda x: a3.pdf(x) * b3.cdf(x), 0, 1, limit=200)[0]
    post = _beta(design, "crc", ["arm3", "arm4"], n, y)
    assert post.prob_better("arm3", "arm4").prob == pytest.approx(want, abs=1e-6)


def test_a_survival_model_that_misfits_is_named_in_the_arm_sentence(design):
    from adaptive.recommend import arm_recommendation, model_misfits

    derived = make_derived(design)
    check = {
        "km_median_days": 120.0,
        "predictive_interval_km_median": [150.0, None],
        "km_median_inside": False,
        "p_value": 0.012,
        "n_rep": 400,
        "misfit": True,
    }
    summary = {
        "survival": {
            "os": {"model_check": check},
            "efs": {"model_check": {**check, "misfit": False}},
            "rfs": {"model_check": None},  # not estimable: no check
        }
    }
    (m,) = model_misfits(summary)
    assert m["endpoint"] == "os" and m["p_value"] == 0.012
    assert m["sentence"] == (
        "the OS model does not follow the arm's Kaplan-Meier curve (KM median 120 days, the model's 95% "
        "predictive interval 150-not reached; predictive p = 0.012)"
    )
    rec = arm_recommendation(design, derived, "arm5", [], summary)
    assert rec["model_misfits"] == [m]
    assert "Survival model check: the OS model does not follow" in rec["sentence"]
    assert arm_recommendation(design, derived, "arm5", [], {})["model_misfits"] == []


def test_randomization_capacity_says_when_the_randomized_comparison_ends():
    """The bundled look's numbers: arm3 40 and arm4 52 of 60 enrolled, 35% : 65% recommended."""
    from types import SimpleNamespace

    from adaptive.recommend import randomization_capacity

    design = design_from(config_dict())
    derived = SimpleNamespace(n_enrolled={"arm3": 40, "arm4": 52})
    alloc = SimpleNamespace(probabilities={"arm3": 0.35, "arm4": 0.65}, reference={"arm3": 1, "arm4": 1})
    cap = randomization_capacity(design, derived, "fit_no_target", alloc)
    assert cap["places"] == {
        "arm3": {"enrolled": 40, "max_n": 60, "left": 20},
        "arm4": {"enrolled": 52, "max_n": 60, "left": 8},
    }
    # arm4 fills first: 8 / 0.65 = 12.3 patients, when arm3 has 40 + 12.3 x 0.35 = 44.3
    assert cap["fills_first"] == "arm4" and cap["expected_patients_until_full"] == pytest.approx(8 / 0.65)
    assert (
        "arm4 is expected to fill after about 12 more randomized patients (arm3 about 44" in cap["sentence"]
    )
    assert "go to arm3 without randomization" in cap["sentence"]
    # the fixed 1:1 for comparison: arm4 fills after 8 / 0.5 = 16, arm3 at 48; 3.7 patients sooner
    assert cap["fixed_ratio"] == {"fills_first": "arm4", "expected_patients_until_full": 16.0}
    assert "At the fixed ratio arm4 would fill after about 16 (arm3 about 48)" in cap["sentence"]
    assert "ends the randomized comparison about 4 randomized patients sooner" in cap["sentence"]
    # at 90% : 10% arm3 fills first (20 / 0.9 = 22 patients), arm4 then at 52 + 2.2
    alloc.probabilities = {"arm3": 0.9, "arm4": 0.1}
    cap = randomization_capacity(design, derived, "fit_no_target", alloc)
    assert cap["fills_first"] == "arm3" and "after about 22 more" in cap["sentence"]
    alloc.probabilities = {"arm3": 1.0, "arm4": 0.0}  # one arm: nothing to say
    assert randomization_capacity(design, derived, "fit_no_target", alloc) is None
