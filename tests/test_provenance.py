"""Provenance of reference values: the config block, the references of a recommendation, the note.

Known answers from configs/rr_aml.yaml and shared/reference/benchmarks_aml.md: arm2's CRc null
0.22 is ADMIRAL's salvage-chemotherapy CRc 21.8%, a recalled, unverified number ([M]); arm3's CRc
target 0.60 is FLAG-IDA+ven's R/R composite CR 61% ([V]). Rules run on constructed posteriors
(no MCMC); the memo and terminal are tested in tests/test_memo.py.
"""

from __future__ import annotations

import re

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptive.config import load_config, parse_config, reference_values
from adaptive.exceptions import ConfigError
from adaptive.provenance import reference_note, result_references
from adaptive.recommend import build_recommendations
from decision_rules.vocabulary import Grade
from tests.conftest import CONFIG, config_dict, design_from, with_provenance
from tests.test_recommend import ARMS, by_arm, evaluate, make_derived, neutral, os_results, survival_posterior

ARM2_NULL = "arms.arm2.rates.crc.null_rate"


@pytest.fixture(scope="module")
def design():
    """The bundled config with its provenance block (every value it sets)."""
    return design_from(with_provenance(config_dict()))


def _line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


# ============================================================================= the config block
def test_bundled_config_records_every_reference_value_with_its_grade():
    design = load_config(CONFIG)
    values = reference_values(design.raw)
    # 8 arms x 5 binary endpoints x 2 rates, a CRc futility rate in arms 1-6, 8 OS and 1 RFS benchmark
    assert set(design.provenance) == set(values) and len(values) == 95
    arm2 = design.provenance[ARM2_NULL]
    assert values[ARM2_NULL] == 0.22 and arm2.grade == Grade.UNVERIFIED and "21.8%" in arm2.source
    # a verified number of another composite or regimen is a design choice (the config's convention)
    assert design.provenance["arms.arm3.rates.crc.target_rate"].grade == Grade.DESIGN
    assert design.provenance["arms.arm3.survival_benchmarks.os_median_days"].grade == Grade.VERIFIED
    assert values["arms.arm3.survival_benchmarks.os_median_days"] == 271
    # anchored values are keyed per arm: arm5's 60-day mortality reference (frontline data) is [D]
    assert design.provenance["arms.arm5.rates.mortality_60d.null_rate"].grade == Grade.DESIGN


def test_provenance_block_is_optional():
    assert design_from(config_dict()).provenance == {}


def test_unknown_provenance_key_is_an_error_naming_its_line():
    text = CONFIG.read_text().replace(f"  {ARM2_NULL}:", "  arms.arm2.rates.crc.null_rat:", 1)
    line = _line_of(text, "  arms.arm2.rates.crc.null_rat:")
    with pytest.raises(ConfigError) as err:
        parse_config(text, "rr_aml.yaml")
    msg = str(err.value)
    assert f"rr_aml.yaml line {line}: provenance.arms.arm2.rates.crc.null_rat" in msg
    assert f"Did you mean '{ARM2_NULL}'?" in msg and "1 configuration problem" in msg


def test_provenance_of_a_value_the_arm_does_not_set_is_an_error():
    doc = with_provenance(config_dict())
    doc["provenance"]["arms.arm7.rates.crc.futility_rate"] = {"grade": "D", "source": "x"}  # arm7 has none
    with pytest.raises(ConfigError, match=r"provenance\.arms\.arm7\.rates\.crc\.futility_rate: .* names no"):
        design_from(doc)


def test_bad_grade_is_an_error_naming_its_line():
    old = f"  {ARM2_NULL}: {{grade: M,"
    text = CONFIG.read_text().replace(old, f"  {ARM2_NULL}: {{grade: verified,", 1)
    line = _line_of(text, f"  {ARM2_NULL}:")
    with pytest.raises(
        ConfigError, match=rf"rr_aml.yaml line {line}: provenance\.{re.escape(ARM2_NULL)}\.grade: "
    ):
        parse_config(text, "rr_aml.yaml")


@settings(max_examples=25, deadline=None)
@given(grade=st.text(min_size=1, max_size=6).filter(lambda g: g.strip() == g and g not in set(Grade)))
def test_only_the_grade_vocabulary_is_accepted(grade):
    doc = {**config_dict(), "provenance": {ARM2_NULL: {"grade": grade, "source": "s"}}}
    with pytest.raises(ConfigError, match=r"provenance\..*\.grade"):
        parse_config(yaml.safe_dump(doc, sort_keys=False), "t.yaml")


@pytest.mark.parametrize("grade", list(Grade))
def test_every_grade_of_the_vocabulary_parses(grade):
    doc = {**config_dict(), "provenance": {ARM2_NULL: {"grade": str(grade), "source": "s"}}}
    assert design_from(doc).provenance[ARM2_NULL].grade == grade


# ============================================================================= recommendations
def test_graduation_lists_the_unverified_null_it_was_compared_against(design):
    derived = make_derived(design, n_eval=30)
    crc = neutral(design) | {"arm2": 0.6}  # P(CRc > 0.22) = 1: graduate_crc fires for arm2
    recs = by_arm(build_recommendations(design, derived, evaluate(design, derived, crc, spread=0.6)))
    rec = recs["arm2"]
    assert rec["action"] == "graduate"
    (ref,) = rec["references"]
    assert ref["key"] == ARM2_NULL and ref["value"] == 0.22 and ref["grade"] == "M"
    assert ref["rules"] == ["graduate_crc"] and "ADMIRAL" in ref["source"]
    assert rec["rests_on_unverified"] is True
    assert rec["reference_note"] == "Rests on an unverified published figure ([M] arm2 CRc null 0.22)."


def test_harm_tiers_and_survival_benchmarks_are_keyed_to_the_arm(design):
    derived = make_derived(design)
    mort = {a: design.arm(a).rates["mortality_30d"].null_rate for a in ARMS} | {"arm3": 0.5}
    results = evaluate(design, derived, neutral(design), mortality=mort, spread=0.6)
    harm = next(r for r in results if r.rule == "harm_mortality_30d" and r.arms == ("arm3",))
    refs = result_references(design, harm)
    # three tiers on one limit: one value
    assert {r["key"] for r in refs} == {"arms.arm3.rates.mortality_30d.limit_rate"}
    assert refs[0]["value"] == 0.15 and refs[0]["grade"] == "D"
    bench = {a: design.arm(a).survival_benchmarks.os_median_days for a in ARMS}
    surv = os_results(design, survival_posterior({a: 2 * bench[a] for a in ARMS}, dict.fromkeys(ARMS, 0.0)))
    fut = next(r for r in surv if r.rule == "futility_os" and r.arms == ("arm3",))
    (ref,) = result_references(design, fut)
    assert ref == {
        "key": "arms.arm3.survival_benchmarks.os_median_days",
        "value": 271.0,
        "grade": "V",
        "source": design.provenance["arms.arm3.survival_benchmarks.os_median_days"].source,
        "label": "arm3 OS benchmark median 271 days",
        "rules": ["futility_os"],
    }
    # a randomized comparison compares the arms with each other: no reference value
    assert all(result_references(design, r) == [] for r in surv if r.kind == "hazard_ratio")


def test_a_value_without_provenance_is_unverified():
    bare = design_from(config_dict())
    derived = make_derived(bare)
    crc = neutral(bare) | {"arm2": 0.6}
    rec = by_arm(build_recommendations(bare, derived, evaluate(bare, derived, crc, spread=0.6)))["arm2"]
    assert rec["references"][0]["grade"] is None and rec["references"][0]["source"] is None
    assert rec["reference_note"] == "Rests on a value with no recorded provenance ([?] arm2 CRc null 0.22)."


def test_only_verified_references_leave_no_note():
    refs = [{"grade": "V", "label": "a"}, {"grade": Grade.VERIFIED, "label": "b"}]
    assert reference_note(refs) == ""
    two = [{"grade": "M", "label": "arm2 CRc null 0.22"}, {"grade": "none", "label": "x"}]
    assert reference_note(two) == (
        "Rests on an unverified published figure ([M] arm2 CRc null 0.22) and a value with no "
        "published benchmark ([none] x)."
    )
    three = [{"grade": "D", "label": "a"}, {"grade": "D", "label": "b"}, {"grade": None, "label": "c"}]
    assert reference_note(three) == (
        "Rests on design choices ([D] a; [D] b) and a value with no recorded provenance ([?] c)."
    )


def test_validate_counts_the_reference_values_by_grade(tmp_path):
    from click.testing import CliRunner

    from adaptive.cli import main

    text = CONFIG.read_text()
    counts = {g: text.count(f"{{grade: {g},") for g in ("V", "M", "D", "none")}
    assert counts == {"V": 6, "M": 9, "D": 80, "none": 0}  # grep of configs/rr_aml.yaml
    res = CliRunner().invoke(main, ["validate", "--config", str(CONFIG)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert (
        "reference values: 95; provenance [V] 6, [M] 9, [D] 80, [none] 0, [?] 0 (not [V]: 89," in res.output
    )
    # without the block every value is unrecorded
    path = tmp_path / "bare.yaml"
    path.write_text(yaml.safe_dump(config_dict(), sort_keys=False))
    res = CliRunner().invoke(main, ["validate", "--config", str(path)], catch_exceptions=False)
    assert (
        "reference values: 95; provenance [V] 0, [M] 0, [D] 0, [none] 0, [?] 95 (not [V]: 95," in res.output
    )


def test_a_predictive_rule_is_compared_with_its_success_rules_reference(design):
    from decision_rules import BetaPredictive

    rule = next(r for r in design.rules if r.kind == "predictive_futility")
    (res,) = rule.evaluate(BetaPredictive(["arm1"], [0.15 + 2], [0.85 + 18]), {"arm1": 20}, design.labels)
    (ref,) = result_references(design, res)
    assert (ref["key"], ref["value"], ref["grade"]) == ("arms.arm1.rates.crc.null_rate", 0.15, "D")
    assert ref["rules"] == ["pp_futility_crc"]
    assert reference_note([ref]) == "Rests on a design choice ([D] arm1 CRc null 0.15)."
