"""Routing from the config, and the synthetic-trial generator."""

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from adaptive.cli import main
from adaptive.data import validate_frame
from adaptive.exceptions import ScenarioError
from adaptive.routing import route
from adaptive.scenario import ArmTruth, load_scenario, parse_scenario
from adaptive.synth import death_times, synthesize
from tests.conftest import CONFIG, EXAMPLE, SCENARIOS

PATIENT = {
    "new_drug_eligible": False,
    "idh1": False,
    "flt3_itd": False,
    "flt3_tkd": False,
    "intensive_eligible": True,
    "prior_venetoclax_3m": False,
    "karyotype_risk": "adverse",
}


@pytest.mark.parametrize(
    ("changes", "cohort", "arms"),
    [
        ({}, "fit_no_target", ("arm3", "arm4")),
        ({"intensive_eligible": False}, "unfit", ("arm5",)),
        ({"new_drug_eligible": True, "idh1": True}, "new_drug", ("arm7",)),
        ({"idh1": True, "flt3_itd": True}, "idh1", ("arm1",)),
        ({"flt3_tkd": True}, "flt3", ("arm2",)),
        ({"prior_venetoclax_3m": True}, "post_venetoclax", ("arm6",)),
        ({"prior_venetoclax_3m": True, "flt3_itd": True}, "flt3", ("arm2",)),
    ],
)
def test_protocol_routing(design, changes, cohort, arms):
    r = route(design.routing, {**PATIENT, **changes})
    assert (r.cohort, r.arms, r.determined) == (cohort, arms, True)


def test_unknown_value_makes_route_undetermined(design):
    r = route(design.routing, {**PATIENT, "idh1": None})
    assert not r.determined and "idh1 unknown" in r.reason
    # an unknown value after the deciding step does not matter
    r = route(design.routing, {**PATIENT, "new_drug_eligible": True, "idh1": None})
    assert r.cohort == "new_drug"


@pytest.mark.parametrize("mortality", [(0.05, 0.10, 200.0), (0.2, 0.4, 75.0), (0.07, 0.07, 300.0)])
def test_death_time_distribution_hits_its_targets(mortality):
    m30, m60, med = mortality
    truth = ArmTruth(cr=0.3, cri=0.1, mortality_30d=m30, mortality_60d=m60, median_os_days=med)
    u = (np.arange(200_000) + 0.5) / 200_000  # quasi-random uniforms: exact quantiles
    t = death_times(truth, u)
    assert np.mean(t <= 30) == pytest.approx(m30, abs=1e-4)
    assert np.mean(t <= 60) == pytest.approx(m60, abs=1e-4)
    assert np.median(t) == pytest.approx(med, rel=1e-3)


def test_synthetic_export_validates_and_respects_routing_and_max_n(design):
    sc = load_scenario(SCENARIOS / "realistic.yaml", design)
    df = synthesize(design, sc, n=300, seed=3)
    frame, warns = validate_frame(df, design, source="synth.csv")
    counts = frame["arm"].value_counts()
    for a in design.arms:
        assert counts.get(a.id, 0) <= a.max_n
    # only the deliberate routing deviations (1%) contradict routing
    contradictions = [w for w in warns if "routing rules send them" in w.message]
    assert len(contradictions) <= 10
    assert frame["enrolled_on"].is_monotonic_increasing


def test_synthetic_rates_match_truth(design):
    """With many patients per arm the observed CRc rate matches the scenario within 4 SE."""
    sc = parse_scenario((SCENARIOS / "realistic.yaml").read_text(), "realistic.yaml", design)
    big = design.__class__(
        **{
            **design.__dict__,
            "arms": tuple(a.__class__(**{**a.__dict__, "max_n": 5000}) for a in design.arms),
        }
    )
    df = synthesize(big, sc.model_copy(update={"routing_deviation": 0.0}), n=6000, seed=11)
    sub = df[(df["arm"] == "arm4")]
    assessed = sub[sub["best_response"] != ""]
    crc = assessed["best_response"].isin(["CR", "CRi"]).mean()
    # early deaths before assessment remove some responders: compare with the truth among the assessed
    truth = sc.arms["arm4"].crc
    se = np.sqrt(truth * (1 - truth) / len(assessed))
    assert abs(crc - truth) < 4 * se + 0.01


def test_synth_is_reproducible(design):
    sc = load_scenario(SCENARIOS / "realistic.yaml", design)
    a = synthesize(design, sc, n=50, seed=1)
    b = synthesize(design, sc, n=50, seed=1)
    pd.testing.assert_frame_equal(a, b)


def test_bundled_example_is_what_synth_makes(tmp_path):
    """examples/rr_aml_synthetic.csv is regenerated exactly by the command in README."""
    out = tmp_path / "data.csv"
    res = CliRunner().invoke(
        main,
        [
            "synth",
            "--config",
            str(CONFIG),
            "--scenario",
            str(SCENARIOS / "realistic.yaml"),
            "--n",
            "220",
            "--seed",
            "7",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert out.read_bytes() == EXAMPLE.read_bytes()
    res = CliRunner().invoke(
        main,
        [
            "synth",
            "--config",
            str(CONFIG),
            "--scenario",
            str(SCENARIOS / "realistic.yaml"),
            "--n",
            "5",
            "--seed",
            "7",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 2 and "never overwrites" in res.output


def test_scenario_errors(design):
    with pytest.raises(ScenarioError, match=r"arms.arm1.crr: unknown key 'crr'. Did you mean 'cr'\?"):
        parse_scenario(
            "name: x\narms:\n  arm1: {crr: 0.2, cri: 0.1, mortality_30d: 0.05, mortality_60d: 0.1, "
            "median_os_days: 200}\n",
            "s.yaml",
        )
    with pytest.raises(ScenarioError, match=r"exceeds 1"):
        parse_scenario(
            "name: x\narms:\n  arm1: {cr: 0.8, cri: 0.3, mortality_30d: 0.05, mortality_60d: 0.1, "
            "median_os_days: 200}\n",
            "s.yaml",
        )
    with pytest.raises(ScenarioError, match=r"no truth given for open arm 'arm2'"):
        parse_scenario(
            "name: x\narms:\n  arm1: {cr: 0.2, cri: 0.1, mortality_30d: 0.05, mortality_60d: 0.1, "
            "median_os_days: 200}\n",
            "s.yaml",
            design,
        )
