"""Decisions a DSMB can act on: one vocabulary, the bundled look, coherence, validation, the simulator.

* The vocabulary is defined once: the config's rule kinds equal the rule registries and
  :class:`RuleKind`; statuses, actions and stages of the config, engine, simulator and memo are
  the vocabulary's.
* The bundled look (binary endpoints, conjugate models: exact draws, no MCMC): no arm of the open
  randomized pair is graduated; arm5 gets its final analysis (criterion not met) with its
  mortality signal named; each fired rule appears once.
* Coherence of a constructed recommendation set (no MCMC).
* Simulated trials of the bundled design follow the same judgement.
"""

from __future__ import annotations

import ast
import json
import typing
from datetime import date

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from adaptive.config import CONFIG_RULE_KINDS, ArmCfg, HarmTierCfg
from adaptive.recommend import build_recommendations, check_coherence
from decision_rules import RULE_KINDS, SURVIVAL_RULE_KINDS
from decision_rules.vocabulary import HARM_TIERS, PRECEDENCE, Action, ArmStatus, RuleKind, Stage
from tests.conftest import EXAMPLE, ROOT, config_dict, design_from, small_sampler, without_survival
from tests.test_recommend import by_arm, evaluate, make_derived, neutral, posterior

CUTOFF = date(2026, 10, 31)


# ============================================================================= one vocabulary
def test_rule_kinds_are_defined_once():
    assert CONFIG_RULE_KINDS == set(RULE_KINDS) | set(SURVIVAL_RULE_KINDS) == {str(k) for k in RuleKind}


def test_statuses_actions_and_tiers_come_from_the_vocabulary():
    from adaptive.report.data import ACTION_LABELS, STAGE_LABELS
    from adaptive.simulate.engine import DECISIONS, STAGES, STATUS_NAMES

    status = typing.get_args(ArmCfg.model_fields["status"].annotation) or tuple(
        ArmCfg.model_fields["status"].annotation
    )
    assert set(status) == set(ArmStatus)
    assert set(STATUS_NAMES.values()) <= set(ArmStatus)
    assert {d for d in DECISIONS if d is not None} <= set(Action)
    assert set(ACTION_LABELS) == set(Action) and set(STAGE_LABELS) == set(Stage)
    assert {Stage.INTERIM, Stage.FINAL_ANALYSIS} <= set(STAGES)
    assert set(typing.get_args(HarmTierCfg.model_fields["action"].annotation)) == set(HARM_TIERS)
    assert set(PRECEDENCE) <= set(Action)
    # a StrEnum is written to JSON as the plain word
    assert (
        json.dumps({"a": Action.DROP_HARM, "s": ArmStatus.COMPLETED})
        == '{"a": "drop_harm", "s": "completed"}'
    )


def test_vocabulary_is_a_leaf_module():
    tree = ast.parse((ROOT / "decision_rules" / "vocabulary.py").read_text())
    imported = {
        n.module if isinstance(n, ast.ImportFrom) else a.name
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in (n.names if isinstance(n, ast.Import) else [n])
    }
    assert imported <= {"__future__", "enum"}


# ============================================================================= the bundled look
@pytest.fixture(scope="module")
def bundled_look(tmp_path_factory):
    """The bundled config and data at the README's cutoff, binary endpoints only (exact draws)."""
    from adaptive.interim import run_interim

    root = tmp_path_factory.mktemp("bundled")
    doc = without_survival(small_sampler(config_dict(), draws=2000))
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    look = run_interim(path, EXAMPLE, CUTOFF, root / "look")
    return look.report


def test_bundled_look_never_graduates_the_open_randomized_pair(bundled_look):
    recs = by_arm(bundled_look["recommendations"])
    for arm in ("arm3", "arm4"):
        assert recs[arm]["action"] != "graduate"
        assert not [r for r in bundled_look["arms"][int(arm[-1]) - 1]["rules"] if r["kind"] == "efficacy"]
    (cmp,) = [c for c in bundled_look["comparisons"] if c["rule"] == "dav_vs_hav_crc"]
    assert cmp["extra"]["population"] == "concurrently_randomized"
    assert "concurrently randomized patients only" in cmp["sentence"] and "no borrowing" in cmp["sentence"]
    # HAV leads (P about 97.8%) but not beyond the 99% the comparison needs: the pair continues
    assert cmp["arms"] == ["arm4", "arm3"] and 0.95 < cmp["prob"] < 0.99 and not cmp["fired"]


def test_bundled_look_gives_arm5_its_final_analysis_with_its_mortality_signal(bundled_look):
    rec = by_arm(bundled_look["recommendations"])["arm5"]
    assert rec["stage"] == "final_analysis" and rec["action"] == "complete"
    assert rec["final_result"] == "criterion_not_met"
    assert rec["sentence"].startswith("Final analysis of arm5 (Ven+Aza): criterion not met (")
    assert "drop_futility" not in rec["sentence"]
    signals = {s["endpoint"]: s for s in rec["safety_signals"]}
    assert signals["mortality_30d"]["events"] == 6 and signals["mortality_30d"]["n_evaluable"] == 40
    assert signals["mortality_30d"]["prob_above_reference"] > 0.95
    assert "Safety signal: 30-day mortality 6/40 (15.0%) against the arm's reference of 5%" in rec["sentence"]
    # the predictive rule has nothing left to predict: reported as not applied
    arm5 = bundled_look["arms"][4]
    (pp,) = [r for r in arm5["rules"] if r["kind"] == "predictive_futility"]
    assert not pp["evaluated"] and not pp["fired"] and pp["extra"]["not_applied"] == "final_analysis"


def test_bundled_look_names_each_fired_rule_once(bundled_look):
    fired = [(r["rule"], tuple(r["arms"])) for a in bundled_look["arms"] for r in a["rules"] if r["fired"]]
    fired += [(c["rule"], tuple(c["arms"])) for c in bundled_look["comparisons"] if c["fired"]]
    assert len(fired) == len(set(fired))
    assert len(bundled_look["fired"]) == len(fired)
    for rec in bundled_look["recommendations"]:
        rules = [x["rule"] for x in rec.get("rules", []) + rec.get("also_fired", []) if x.get("fired")]
        assert len(rules) == len(set(rules)), rec["sentence"]


def test_bundled_look_descriptive_arm_and_no_borrowing(bundled_look):
    arm7 = bundled_look["arms"][6]
    assert arm7["monitoring"] == "descriptive"
    assert {r["kind"] for r in arm7["rules"]} == {"harm"}
    assert {a["endpoints"]["crc"]["model"] for a in bundled_look["arms"]} == {"independent"}


def test_bundled_look_closing_recommendations_state_their_consequence(bundled_look):
    for rec in bundled_look["recommendations"]:
        if rec["action"] in ("drop_harm", "drop_futility", "drop_inferior", "graduate", "complete"):
            assert "If this look's recommendations are accepted:" in rec["sentence"]
            assert rec["if_accepted"]["sentence"]
    arm6 = by_arm(bundled_look["recommendations"])["arm6"]
    assert arm6["action"] == "drop_futility"
    assert (
        "cohort post_venetoclax would have no open arm: its patients would not be enrolled in the trial"
        in arm6["sentence"]
    )


# ============================================================================= coherence
def _reallocate_fixed(design):
    from adaptive.randomization import allocate, allocation_rules

    rule = allocation_rules(design)[0]
    post = posterior({"arm3": 0.45, "arm4": 0.60}, spread=0.1)

    def reallocate(cohort, stopping):
        return allocate(
            design, make_derived(design), rule, post, previous=None, previous_source="", closing=stopping
        )

    return rule, post, reallocate


def test_coherence_drops_the_allocation_change_of_an_arm_recommended_to_close():
    """arm4 (HAV) must be dropped for harm while the same look moves the allocation to 35:65."""
    from adaptive.randomization import allocate

    design = design_from(config_dict())
    derived = make_derived(design)
    mort = {a: design.arm(a).rates["mortality_30d"].null_rate for a in neutral(design)}
    mort["arm4"] = 0.40  # far above its 15% limit: drop_harm
    results = evaluate(design, derived, neutral(design), mort)
    rule, post, reallocate = _reallocate_fixed(design)
    moved = allocate(design, derived, rule, post, previous=None, previous_source="")
    recs = build_recommendations(design, derived, results, allocations={rule.cohort: moved})
    assert {r["action"] for r in recs} >= {"drop_harm", "adjust_randomization"}  # the incoherent pair
    recs, notes = check_coherence(design, derived, recs, results, reallocate=reallocate)
    assert not [r for r in recs if r["action"] == "adjust_randomization"]
    (note,) = [n for n in notes if n["check"] == "allocation_of_stopping_arm"]
    assert note["arms"] == ["arm4"]
    (platform,) = [n for n in notes if n["check"] == "platform_after_acceptance"]
    assert "arm4" not in platform["open_arms"] and "arm3" in platform["open_arms"]
    assert "arm3 would be the only open arm of fit_no_target" in note["resolution"]
    arm4 = by_arm(recs)["arm4"]
    assert arm4["action"] == "drop_harm"  # safety always stands
    assert "every patient of cohort fit_no_target would go to arm3 (DAV), unrandomized" in arm4["sentence"]


def test_coherence_withholds_closing_the_leading_arm_of_an_open_comparison():
    """A single-arm graduation explicitly allowed on HAV, which leads DAV: withheld, never silent."""
    doc = config_dict()
    graduate = next(r for r in doc["rules"] if r["id"] == "graduate_crc")
    graduate["arms"] = ["arm1", "arm2", "arm4", "arm5"]
    graduate["allow_in_randomized"] = True
    design = design_from(doc)
    derived = make_derived(design)
    crc = neutral(design)
    crc["arm3"], crc["arm4"] = 0.47, 0.55  # HAV leads without a decided comparison
    results = evaluate(design, derived, crc, spread={"arm3": 0.3, "arm4": 0.3})
    assert any(r.fired and r.rule == "graduate_crc" and r.arms == ("arm4",) for r in results)
    assert not any(r.fired for r in results if r.kind == "superiority")
    recs = build_recommendations(design, derived, results)
    assert by_arm(recs)["arm4"]["action"] == "graduate"
    recs, notes = check_coherence(design, derived, recs, results)
    arm4 = by_arm(recs)["arm4"]
    assert arm4["action"] == "continue" and arm4["withheld"]["action"] == "graduate"
    assert "the trailing arm of the randomized comparison" in arm4["sentence"]
    assert [n["check"] for n in notes if n["check"] != "platform_after_acceptance"] == ["trailing_arm_left"]


def test_coherence_withholds_comparisons_that_find_opposite_arms_inferior():
    """CRc finds DAV inferior and OS finds HAV inferior at one look: neither arm is closed."""
    design = design_from(config_dict())
    derived = make_derived(design)
    recs = [
        {"arm": "arm3", "action": "drop_inferior", "reason": "dav_vs_hav_crc", "sentence": "Drop DAV (CRc).",
         "rules": [{"rule": "dav_vs_hav_crc", "fired": True}]},
        {"arm": "arm4", "action": "drop_inferior", "reason": "dav_vs_hav_os", "sentence": "Drop HAV (OS).",
         "rules": [{"rule": "dav_vs_hav_os", "fired": True}]},
    ]  # fmt: skip
    out, notes = check_coherence(design, derived, recs, [])
    for arm, words in (("arm3", "Drop DAV (CRc)."), ("arm4", "Drop HAV (OS).")):
        rec = by_arm(out)[arm]
        assert rec["action"] == "continue" and rec["reason"] == "conflicting_comparisons"
        assert rec["withheld"]["action"] == "drop_inferior"
        assert rec["sentence"].endswith(words) and "opposite arms inferior" in rec["sentence"]
    assert [n["check"] for n in notes] == ["conflicting_comparisons"]
    # one comparison alone still closes its inferior arm
    out, notes = check_coherence(design, derived, recs[:1], [])
    assert by_arm(out)["arm3"]["action"] == "drop_inferior"


def test_simulated_pairs_are_never_both_dropped_as_inferior_at_one_look(realistic_trials):
    _, _, frame = realistic_trials
    inf = frame[(frame.decision == "drop_inferior") & frame.arm.isin(["arm3", "arm4"])]
    assert not inf.duplicated(["trial", "decision_look"]).any()


def test_coherence_consequences_name_the_cohort_routing_and_the_queue():
    design = design_from(config_dict())
    derived = make_derived(design)
    crc = neutral(design)
    crc["arm6"] = 0.01  # futile
    mort = {a: design.arm(a).rates["mortality_30d"].null_rate for a in crc}
    mort["arm7"] = 0.6  # harmful: the new-drug slot closes and passes its patients on; arm8 may open
    results = evaluate(design, derived, crc, mort)
    recs, notes = check_coherence(design, derived, build_recommendations(design, derived, results), results)
    arm6, arm7 = by_arm(recs)["arm6"], by_arm(recs)["arm7"]
    assert arm6["action"] == "drop_futility" and arm7["action"] == "drop_harm"
    assert (
        "cohort post_venetoclax would have no open arm: its patients would not be enrolled in the trial"
        in arm6["sentence"]
    )
    assert "would be routed on to the trial's next routing step" in arm7["sentence"]
    assert arm7["if_accepted"]["queued_arms_may_open"] == ["arm8"]
    (platform,) = [n for n in notes if n["check"] == "platform_after_acceptance"]
    assert {"new_drug", "post_venetoclax"} <= set(platform["cohorts_without_open_arm"])
    assert "queued arms that could open: arm8" in platform["sentence"]


# ============================================================================= validation
def _validate(tmp_path, doc) -> tuple[int, str]:
    from adaptive.cli import main

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    res = CliRunner().invoke(main, ["validate", "--config", str(path)])
    return res.exit_code, res.output


def test_validate_refuses_single_arm_efficacy_on_a_randomized_arm(tmp_path):
    doc = config_dict()
    next(r for r in doc["rules"] if r["id"] == "graduate_crc")["arms"] = ["arm1", "arm3"]
    code, out = _validate(tmp_path, doc)
    assert code == 2
    assert "rules.0 (graduate_crc).arms: it covers arm3 of the randomized cohort fit_no_target" in out
    assert "allow_in_randomized: true" in out and "Traceback" not in out


@pytest.mark.parametrize("rate", [0.10, 0.15, 0.35, 0.5])
def test_validate_refuses_a_futility_rate_outside_null_and_target(tmp_path, rate):
    doc = config_dict()
    doc["arms"]["arm1"]["rates"]["crc"]["futility_rate"] = rate
    code, out = _validate(tmp_path, doc)
    assert code == 2
    assert (
        f"arms.arm1.rates.crc.futility_rate: futility_rate {rate} must lie strictly between null_rate 0.15"
        in out
    )


def test_validate_refuses_a_futility_rate_on_mortality_and_tiers_out_of_order(tmp_path):
    doc = config_dict()
    doc["arms"]["arm1"]["rates"]["mortality_30d"]["futility_rate"] = 0.10
    next(r for r in doc["rules"] if r["id"] == "harm_mortality_30d")["tiers"][1]["threshold"] = 0.99
    code, out = _validate(tmp_path, doc)
    assert code == 2
    assert "futility_rate applies to response endpoints only" in out
    assert "tier drop_harm is more severe than suspend_enrolment on the same reference (limit_rate)" in out


# ============================================================================= the simulator
@pytest.fixture(scope="module")
def realistic_trials():
    from adaptive.scenario import load_scenario
    from adaptive.simulate.engine import compile_spec, simulate_chunk
    from adaptive.simulate.summary import per_trial_frame

    design = design_from(config_dict())
    spec = compile_spec(design, load_scenario(ROOT / "configs" / "scenarios" / "realistic.yaml", design))
    res = simulate_chunk(spec, 5, np.arange(300))
    return spec, res, per_trial_frame(spec, res, "realistic")


def test_simulated_randomized_arms_are_never_graduated_and_futility_never_after_accrual(realistic_trials):
    spec, res, frame = realistic_trials
    assert not ((frame.arm.isin(["arm3", "arm4"])) & (frame.decision == "graduate")).any()
    fut = frame[frame.decision == "drop_futility"]
    max_n = {a: spec.design.arm(a).max_n for a in spec.arms}
    assert (fut.n_enrolled < fut.arm.map(max_n)).all()  # futility only while enrolling
    final = frame[frame.decision_stage == "final_analysis"]
    assert set(final.decision) <= {"graduate", "complete", "drop_inferior", "drop_harm"}
    assert set(frame.status) <= {str(s) for s in ArmStatus}
    assert (frame[frame.arm == "arm7"].decision.isin([None, "complete", "drop_harm"])).all()


def test_simulated_decisions_name_their_rule(realistic_trials):
    _, _, frame = realistic_trials
    decided = frame[frame.decision.notna() & (frame.decision_stage == "interim")]
    assert decided.decision_rule.notna().all()
    by = decided.groupby("decision").decision_rule.unique().to_dict()
    assert set(by["drop_futility"]) <= {"futility_crc", "pp_futility_crc", "futility_os"}
    # the survival rules are simulated: OS futility and the randomized OS comparison act too
    assert "futility_os" in set(by["drop_futility"])
    assert set(by["drop_inferior"]) <= {"dav_vs_hav_crc", "dav_vs_hav_os"}


def test_simulated_closed_cohort_does_not_spill_into_other_arms():
    """Every patient is post-venetoclax: once arm6 closes nobody else is enrolled."""
    from adaptive.scenario import parse_scenario
    from adaptive.simulate.engine import compile_spec, simulate_chunk

    design = design_from(config_dict())
    sc = yaml.safe_load((ROOT / "configs" / "scenarios" / "global_null.yaml").read_text())
    sc["prevalence"] = {"new_drug_eligible": 0.0, "idh1": 0.0, "flt3": 0.0, "prior_venetoclax_3m": 1.0}
    spec = compile_spec(design, parse_scenario(yaml.safe_dump(sc), "s.yaml", design))
    res = simulate_chunk(spec, 3, np.arange(50))
    i6 = spec.arms.index("arm6")
    assert (res.n_enrolled.sum(1) == res.n_enrolled[:, i6]).all()
    assert (res.n_enrolled[:, i6] > 0).all()


def test_simulated_harm_tiers_suspend_and_drop_a_harmful_arm():
    from adaptive.scenario import load_scenario
    from adaptive.simulate.engine import compile_spec, simulate_chunk
    from adaptive.simulate.summary import summarise

    design = design_from(config_dict())
    spec = compile_spec(design, load_scenario(ROOT / "configs" / "scenarios" / "harmful_arm.yaml", design))
    summary = summarise(spec, simulate_chunk(spec, 11, np.arange(300)))
    arm5 = next(a for a in summary["arms"] if a["arm"] == "arm5")  # 30-day mortality 30%, limit 15%
    assert arm5["prob_ever_flagged"]["estimate"] > 0.9
    assert arm5["prob_drop_harm"]["estimate"] + arm5["prob_ever_suspended"]["estimate"] > 0.8
    others = [a["prob_drop_harm"]["estimate"] for a in summary["arms"] if a["arm"] not in ("arm5", "arm8")]
    assert max(others) < 0.03
    comparison = summary["comparisons"][0]
    assert comparison["truly_better"] == "arm4" and comparison["prob_select_worse"]["estimate"] < 0.02


# ============================================================================= borrowing models in the config
def _with_crc_model(model: dict) -> dict:
    from tests.test_recommend import borrowing_doc

    doc = borrowing_doc()
    doc["endpoints"]["crc"]["model"] = model
    return doc


GROUP = ["arm1", "arm2", "arm5", "arm6", "arm8"]


def test_inverse_gamma_tau_prior_needs_its_shape():
    from adaptive.exceptions import ConfigError

    model = {
        "kind": "hierarchical",
        "borrowing_group": GROUP,
        "mu": {"mean": 0, "sd": 1},
        "tau": {"dist": "inverse_gamma", "scale": 0.25},
    }
    with pytest.raises(
        ConfigError, match=r"endpoints.crc.model.tau: dist inverse_gamma \(on tau\^2\) needs shape"
    ):
        design_from(_with_crc_model(model))
    model["tau"]["shape"] = 2.0
    d = design_from(_with_crc_model(model))
    from models.binary import model_from_config

    m = model_from_config(d.endpoints["crc"].model)
    assert (m.tau_dist, m.tau_scale, m.tau_shape) == ("inverse_gamma", 0.25, 2.0)


def test_exnex_components_scale_per_arm_outside_the_group_and_in_burn_in():
    from adaptive.borrowing import model_for_look
    from adaptive.exceptions import ConfigError

    def comp(m, w):
        return {
            "name": f"c{m}",
            "mu": {"mean": m, "sd": 1},
            "tau": {"dist": "half_normal", "scale": 0.5},
            "w": w,
        }

    model = {
        "kind": "exnex",
        "borrowing_group": GROUP,
        "nex": {"mean": 0, "sd": 2},
        "components": [comp(0, 0.6), comp(1, 0.5)],
    }
    with pytest.raises(ConfigError, match="the components' weights sum to 1.1; at most 1"):
        design_from(_with_crc_model(model))
    model["components"][1]["w"] = 0.3
    d = design_from(_with_crc_model(model))
    derived = make_derived(d)  # arm8 (late entrant) has 0 evaluable: burn-in
    fitted, info = model_for_look(d, derived, "crc")
    w0, w1 = (c.w for c in fitted.ex_components())
    arms = d.modelled_arms
    for k, a in enumerate(arms):
        on = a in GROUP and a != "arm8"
        assert (w0[k], w1[k]) == pytest.approx((0.6, 0.3) if on else (0.0, 0.0)), a
        assert info[a]["prior_weight_exchangeable"] == pytest.approx(0.9 if on else 0.0)
    assert [c.name for c in fitted.ex_components()] == ["c0", "c1"]


def test_independent_logit_normal_model_parses_and_does_not_borrow():
    from adaptive.borrowing import model_for_look
    from models.binary import IndependentLogitNormal

    d = design_from(_with_crc_model({"kind": "independent_logit_normal"}))
    model, info = model_for_look(d, make_derived(d), "crc")
    assert isinstance(model, IndependentLogitNormal) and info == {}


@pytest.mark.parametrize(
    ("model", "what"),
    [
        ({"kind": "independent_logit_normal"}, "independent logit-normal models"),
        (
            {
                "kind": "exnex",
                "borrowing_group": GROUP,
                "nex": {"mean": 0, "sd": 2},
                "components": [
                    {"mu": {"mean": m, "sd": 1}, "tau": {"dist": "half_normal", "scale": 0.5}, "w": 0.4}
                    for m in (0, 1)
                ],
            },
            "EXNEX models with more than one exchangeable component",
        ),
    ],
)
def test_simulator_refuses_models_it_cannot_simulate(model, what):
    from adaptive.scenario import load_scenario
    from adaptive.simulate.engine import compile_spec

    d = design_from(_with_crc_model(model))
    sc = load_scenario(ROOT / "configs" / "scenarios" / "realistic.yaml", d)
    with pytest.raises(ValueError, match=rf"cannot simulate endpoint 'crc': {what}"):
        compile_spec(d, sc)


@pytest.mark.slow
def test_a_borrowing_look_shows_each_borrowed_probability_beside_the_arm_alone(tmp_path):
    """EXNEX within a declared group: every borrowed P is shown with the arm alone, and the ESS."""
    from adaptive.interim import run_interim
    from models.exact import logit_normal_summary
    from tests.test_recommend import borrowing_doc

    doc = without_survival(small_sampler(borrowing_doc()))
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    report = run_interim(path, EXAMPLE, CUTOFF, tmp_path / "look").report
    by = {a["arm"]: a for a in report["arms"]}
    for arm in ("arm1", "arm2", "arm5", "arm6"):
        crc = by[arm]["endpoints"]["crc"]
        w = crc["without_borrowing"]
        # the arm alone: logit-normal N(0, 2) on its log-odds improvement, checked independently
        exact = logit_normal_summary([crc["n_evaluable"]], [crc["responders"]], [crc["null_rate"]], 0.0, 2.0)
        assert w["prob_above_null"] == pytest.approx(float(exact.prob_above[0]), abs=1e-6)
        assert w["ci95_low"] < w["mean"] < w["ci95_high"]
        ess = w["ess"]
        assert ess["n_own"] == crc["n_evaluable"] and ess["prior"] > 0
        assert ess["effective_prior_given_other_arms"] >= ess["prior"] - 1e-6
        rules = [
            r for r in by[arm]["rules"] if r["endpoint"] == "crc" and r["kind"] in ("efficacy", "futility")
        ]
        for r in rules:
            if r["evaluated"]:
                assert "Without borrowing (the arm alone on its own prior)" in r["sentence"]
                assert 0 <= r["extra"]["prob_without_borrowing"] <= 1
    for arm in ("arm3", "arm4", "arm7"):  # outside the group: nothing borrowed, nothing beside
        assert "without_borrowing" not in by[arm]["endpoints"]["crc"]
