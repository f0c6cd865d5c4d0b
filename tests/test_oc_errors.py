"""Error rates a platform trial needs (issue 14, items 3 and 4), against independent computations.

* The family-wise error, the expected number of false graduations, false futility and the bias
  by decision equal the same quantities computed here from the per-trial table alone.
* Coverage of the final 95% interval reproduces the exact frequentist coverage of the Beta
  posterior interval (enumeration over the binomial outcomes) when nothing stops the arm early.
* ``power`` is left out for arms no rule can graduate (a comparison-only design).
* ``adaptive calibrate --criterion fwer`` over two null scenarios keeps the worst scenario's
  family-wise error at or below the target and warns when its MCSE is too large.
"""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from scipy import stats
from test_simulate import _arm, build, scenario, single_arm_config, two_arm_config

from adaptive.cli import main
from adaptive.simulate.engine import simulate_chunk
from adaptive.simulate.summary import per_trial_frame, summarise


def three_arm_config(efficacy=0.9) -> dict:
    """Three arms with their own futility and efficacy rules (a non-comparative design)."""
    cfg = single_arm_config(efficacy=efficacy)
    cfg["arms"] = {k: _arm(k.upper(), null=0.3, target=0.5, max_n=30) for k in "xyz"}
    cfg["routing"] = [{"cohort": "all", "arms": ["x", "y", "z"], "allocation": {"x": 1, "y": 1, "z": 1}}]
    cfg["looks"]["max_patients"] = 90
    for rule in cfg["rules"]:  # three independent single-arm questions sharing one enrolment
        rule["allow_in_randomized"] = True
    return cfg


@pytest.fixture(scope="module")
def three_arm():
    spec = build(three_arm_config(), scenario({"x": 0.3, "y": 0.3, "z": 0.5}))
    res = simulate_chunk(spec, 11, np.arange(600))
    return summarise(spec, res), per_trial_frame(spec, res, "mixed")


def test_family_wise_error_equals_the_per_trial_count(three_arm):
    s, trials = three_arm
    assert s["null_arms"] == ["x", "y"]
    false_grad = trials[trials.arm.isin(["x", "y"])].assign(hit=lambda f: f.decision == "graduate")
    per_trial = false_grad.groupby("trial").hit.agg(["any", "sum"])
    fwer = per_trial["any"].mean()
    assert 0 < fwer < 1
    assert s["fwer"]["estimate"] == pytest.approx(fwer)
    assert s["fwer"]["mcse"] == pytest.approx(np.sqrt(fwer * (1 - fwer) / 600))
    assert s["expected_false_graduations"]["estimate"] == pytest.approx(per_trial["sum"].mean())
    # the family-wise error is at least the largest per-arm error, at most their sum
    per_arm = [a["type_i_error"]["estimate"] for a in s["arms"][:2]]
    assert max(per_arm) <= fwer <= sum(per_arm)
    top = s["error_summary"]["max_arm_type_i_error"]
    assert top["arm"] == ["x", "y"][int(np.argmax(per_arm))] and top["estimate"] == max(per_arm)


def test_false_futility_timing_and_bias_by_decision_from_the_per_trial_table(three_arm):
    s, trials = three_arm
    z = trials[trials.arm == "z"]
    arm_z = s["arms"][2]
    assert arm_z["false_futility"]["estimate"] == pytest.approx(np.mean(z.decision == "drop_futility"))
    assert arm_z["power"]["estimate"] == pytest.approx(np.mean(z.decision == "graduate"))
    assert s["arms"][0]["false_futility"] is None  # at its null, not its target
    for arm, a in zip("xyz", s["arms"], strict=True):
        t = trials[trials.arm == arm]
        err = t.final_mean_crc - t.true_crc
        for decision, b in a["bias_by_decision"].items():
            hit = t.decision == decision
            assert b["share"] == pytest.approx(hit.mean())
            assert b["estimate"] == pytest.approx(err[hit].mean())
        timing = a["decision_timing"]
        decided = t[t.decision.notna()]
        assert timing["look_mean"]["estimate"] == pytest.approx(decided.decision_look.mean())
        assert sum(timing["by_look"].values()) == pytest.approx(1.0)
        final = np.mean(decided.decision_stage == "final_analysis")
        assert timing["by_look"]["final_analysis"] == pytest.approx(final)
    # selection bias: graduated null arms are overestimated, futile ones underestimated
    x = s["arms"][0]["bias_by_decision"]
    assert x["graduate"]["estimate"] > 0.05 and x["drop_futility"]["estimate"] < -0.05


@pytest.mark.parametrize("p", [0.2, 0.45])
def test_coverage_equals_the_exact_coverage_without_early_stopping(p):
    cfg = single_arm_config()
    cfg["rules"] = [r for r in cfg["rules"] if r["id"] == "eff"]  # decided at n = 30 only
    spec = build(cfg, scenario({"x": p}))
    n_trials = 3000
    res = simulate_chunk(spec, 2, np.arange(n_trials))
    y = np.arange(31)
    lo, hi = stats.beta.ppf(0.025, 1 + y, 31 - y), stats.beta.ppf(0.975, 1 + y, 31 - y)
    exact = float(np.sum(stats.binom.pmf(y, 30, p) * ((lo <= p) & (p <= hi))))
    got = summarise(spec, res)["arms"][0]["coverage_95"]
    assert abs(got["estimate"] - exact) < 4 * np.sqrt(exact * (1 - exact) / n_trials), (got, exact)
    # the per-trial intervals are the Beta posterior's after every patient is known
    frame = per_trial_frame(spec, res, "s")
    yy = frame.responders_crc.to_numpy()
    assert np.allclose(frame.final_lo_crc, stats.beta.ppf(0.025, 1 + yy, 31 - yy))


def test_a_null_arm_no_rule_can_graduate_is_no_family_wise_error():
    # z at its null but left out of every efficacy rule: it cannot make a false positive, so it
    # is not a null arm of the family (it was, with a vacuous type I error of 0%)
    cfg = three_arm_config()
    for rule in cfg["rules"]:
        if rule["kind"] == "efficacy":
            rule["arms"] = ["x", "y"]
    spec = build(cfg, scenario({"x": 0.3, "y": 0.5, "z": 0.3}))
    s = summarise(spec, simulate_chunk(spec, 11, np.arange(200)))
    assert s["null_arms"] == ["x"]
    assert [a["type_i_error"] is None for a in s["arms"]] == [False, True, True]
    assert s["fwer"]["estimate"] == s["arms"][0]["type_i_error"]["estimate"]
    cfg["rules"] = [r for r in cfg["rules"] if r["kind"] != "efficacy"]
    spec = build(cfg, scenario({"x": 0.3, "y": 0.3, "z": 0.3}))
    s = summarise(spec, simulate_chunk(spec, 11, np.arange(20)))
    assert s["null_arms"] == [] and s["fwer"] is None and s["error_summary"]["fwer"] is None


def test_power_is_not_reported_for_arms_no_rule_can_graduate():
    spec = build(two_arm_config(), scenario({"a": 0.5, "b": 0.5}))
    s = summarise(spec, simulate_chunk(spec, 1, np.arange(50)))
    assert [a["power"] for a in s["arms"]] == [None, None]
    assert s["fwer"] is None and s["null_arms"] == []


def test_calibrate_on_the_family_wise_error_over_two_null_scenarios(tmp_path):
    cfg = tmp_path / "design.yaml"
    cfg.write_text(yaml.safe_dump(three_arm_config()))
    all_null = tmp_path / "all_null.yaml"
    all_null.write_text(yaml.safe_dump(scenario({"x": 0.3, "y": 0.3, "z": 0.3}, "all_null")))
    one_null = tmp_path / "one_null.yaml"
    one_null.write_text(yaml.safe_dump(scenario({"x": 0.3, "y": 0.5, "z": 0.5}, "one_null")))
    out = tmp_path / "cal"
    res = CliRunner().invoke(
        main,
        ["calibrate", "--config", cfg, "--scenario", all_null, "--scenario", one_null, "--rule", "eff",
         "--criterion", "fwer", "--target", "0.1", "--trials", 300, "--out", out, "--workers", 1,
         "--lo", "0.8", "--hi", "0.999", "--iterations", "4"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "calibration.json").read_text())
    assert rep["criterion"] == "fwer" and [s["scenario"] for s in rep["scenarios"]] == [
        "all_null",
        "one_null",
    ]
    for e in rep["evaluations"]:
        worst = max(e["by_scenario"], key=lambda b: b["type_i_error"])
        assert (e["type_i_error"], e["worst_scenario"]) == (worst["type_i_error"], worst["scenario"])
    chosen = rep["type_i_error_at_chosen"]
    assert chosen["type_i_error"] <= 0.1 and chosen["worst_scenario"] == "all_null"
    # 300 trials: the MCSE near a 10% error is about 1.7 points, more than a tenth of the target
    assert rep["warnings"] and "Monte Carlo standard error" in rep["warnings"][0]
    assert "warning:" in res.output and "family-wise error" in res.output


def test_per_trial_table_has_the_final_intervals(three_arm):
    _, trials = three_arm
    t = trials.dropna(subset=["final_lo_crc"])
    assert isinstance(trials, pd.DataFrame) and len(t) == len(trials)
    assert np.all((t.final_lo_crc <= t.final_mean_crc) & (t.final_mean_crc <= t.final_hi_crc))


def test_false_harm_counts_only_arms_at_or_below_their_mortality_reference():
    cfg = three_arm_config()
    cfg["rules"].append(
        {"id": "harm30", "kind": "harm", "endpoint": "mortality_30d", "reference": "limit_rate",
         "min_evaluable": 5, "tiers": [{"action": "drop_harm", "threshold": 0.8}]}
    )  # fmt: skip
    for arm in cfg["arms"].values():
        arm["rates"]["mortality_30d"] = {"null_rate": 0.05, "limit_rate": 0.2}
    sc = scenario({"x": 0.3, "y": 0.3, "z": 0.5})
    sc["arms"]["x"].update(mortality_30d=0.4, mortality_60d=0.45)  # above its limit of 0.2
    sc["arms"]["y"].update(mortality_30d=0.2, mortality_60d=0.25)  # exactly at it
    spec = build(cfg, sc)
    res = simulate_chunk(spec, 4, np.arange(400))
    s = summarise(spec, res)
    trials = per_trial_frame(spec, res, "harm")
    assert s["harm_reference_arms"] == ["y", "z"]
    harm = trials.assign(hit=trials.decision == "drop_harm").pivot(index="trial", columns="arm", values="hit")
    assert s["arms"][0]["false_harm"] is None and s["arms"][0]["prob_drop_harm"]["estimate"] > 0.5
    assert s["arms"][1]["false_harm"]["estimate"] == pytest.approx(harm["y"].mean())
    assert 0 < harm["y"].mean() < 0.5  # at the limit the rule fires sometimes, not mostly
    assert s["prob_any_false_harm"]["estimate"] == pytest.approx((harm["y"] | harm["z"]).mean())


def test_a_comparison_of_equal_arms_reports_its_false_selections():
    """Equal ITT rates: any superiority decision is the comparison's type I error (DSMB review)."""
    spec = build(two_arm_config(threshold=0.95), scenario({"a": 0.4, "b": 0.4}))
    res = simulate_chunk(spec, 3, np.arange(400))
    s = summarise(spec, res)
    trials = per_trial_frame(spec, res, "equal")
    (comp,) = s["comparisons"]
    inferior = trials[trials.decision == "drop_inferior"].groupby("trial").size()
    assert comp["truly_better"] is None and comp["prob_select_better"] is None
    assert comp["prob_false_selection"]["estimate"] == pytest.approx(len(inferior) / 400)
    assert 0 < comp["prob_false_selection"]["estimate"] < 0.5
    assert s["error_summary"]["max_comparison_false_selection"] == {
        "rule": comp["rule"],
        **comp["prob_false_selection"],
    }
    # unequal arms: no false selection to report
    spec2 = build(two_arm_config(threshold=0.95), scenario({"a": 0.3, "b": 0.5}))
    s2 = summarise(spec2, simulate_chunk(spec2, 3, np.arange(100)))
    assert s2["comparisons"][0]["prob_false_selection"] is None
    assert s2["error_summary"]["max_comparison_false_selection"] is None
