"""Per-arm response days and response landmarks in the simulator, against the look's derivation.

* A scenario arm may give its own ``response_days`` (validated), used by the simulator's draws, the
  ITT CRc truth, the final analysis's delay and ``adaptive synth``.
* The day on which a simulated patient's response endpoint (CRc, ORR, MRD-negative CRc) becomes
  known, and its value, are what :func:`adaptive.derive.derive_patient` gives with the arm's
  ``response_landmark_days`` at every cutoff: a responder on the response day, a patient without
  the response at death or once assessed and past the landmark.
"""

from datetime import date, timedelta

import numpy as np
import pytest
import yaml

from adaptive.config import load_config, parse_config
from adaptive.derive import derive_patient
from adaptive.exceptions import ScenarioError
from adaptive.scenario import load_scenario, parse_scenario
from adaptive.simulate.engine import _Chunk, _survival, compile_spec, itt_crc
from adaptive.synth import synthesize
from tests.conftest import ROOT

LANDMARK = {"slow": 180, "fast": None}  # "fast" takes assessment.response_window_days (56)
TRUTH = {"cr": 0.2, "cri": 0.1, "pr": 0.1, "ne": 0.05, "mrd_negative_given_crc": 0.5}
MORT = {"mortality_30d": 0.05, "mortality_60d": 0.1, "median_os_days": 300}
# uniforms of the response draw per category (cumulative 0.2, 0.3, 0.4, 0.45 as in TRUTH)
U_RESP = {"CR": 0.1, "CRi": 0.25, "PR": 0.35, "NE": 0.42, "NR": 0.8}
ENDPOINTS = ("crc", "orr", "mrd_negative_cr")


def _arm(label, landmark):
    arm = {
        "label": label,
        "max_n": 40,
        "rates": {
            "crc": {"null_rate": 0.2, "target_rate": 0.4},
            "orr": {"null_rate": 0.3, "target_rate": 0.5},
            "mrd_negative_cr": {"null_rate": 0.1, "target_rate": 0.2},
            "mortality_30d": {"null_rate": 0.05, "limit_rate": 0.5},
        },
    }
    if landmark is not None:
        arm["response_landmark_days"] = landmark
    return arm


def design_dict() -> dict:
    model = {"model": {"kind": "independent", "prior": "uniform"}}
    return {
        "schema_version": 1,
        "trial": {"name": "landmark design"},
        "endpoints": {e: model for e in (*ENDPOINTS, "mortality_30d")},
        "arms": {a: _arm(a, lm) for a, lm in LANDMARK.items()},
        "routing": [
            {"cohort": "idh1", "when": {"idh1": True}, "arms": ["slow"]},
            {"cohort": "others", "arms": ["fast"]},
        ],
        "rules": [
            {"id": f"eff_{e}", "kind": "efficacy", "endpoint": e, "reference": 0.1, "threshold": 0.99}
            for e in ENDPOINTS
        ],
    }


def scenario_dict(slow_days=(28, 150)) -> dict:
    return {
        "name": "landmarks",
        "response_days": [21, 56],
        "arms": {
            "slow": {**TRUTH, **MORT, "response_days": list(slow_days)},
            "fast": {**TRUTH, **MORT},
        },
    }


@pytest.fixture(scope="module")
def design():
    return parse_config(yaml.safe_dump(design_dict()), "design.yaml")


@pytest.fixture(scope="module")
def spec(design):
    return compile_spec(design, parse_scenario(yaml.safe_dump(scenario_dict()), "scenario.yaml", design))


# ----------------------------------------------------------------------------- scenario files
def test_an_arm_overrides_the_scenario_response_days(design):
    sc = parse_scenario(yaml.safe_dump(scenario_dict()), "scenario.yaml", design)
    assert sc.response_days_of("slow") == (28, 150)
    assert sc.response_days_of("fast") == (21, 56)


@pytest.mark.parametrize(
    ("days", "message"), [((0, 30), "first possible day is 1"), ((60, 40), "ends before")]
)
def test_arm_response_days_are_validated(design, days, message):
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(yaml.safe_dump(scenario_dict(days)), "scenario.yaml", design)


def test_itt_crc_uses_each_arms_own_response_days(spec):
    tr = spec.truth
    slow, fast = spec.arms.index("slow"), spec.arms.index("fast")
    for i, (lo, hi) in ((slow, (28, 150)), (fast, (21, 56))):
        alive = np.mean([_survival(0.05, 0.1, 300.0, float(d)) for d in range(lo, hi + 1)])
        assert tr["crc_itt"][i] == pytest.approx(0.3 * alive, rel=1e-12)
    assert tr["crc_itt"][slow] < tr["crc_itt"][fast]  # later responses: more deaths before them
    # one pair for every arm still works, and equals the per-arm call with equal ranges
    same = itt_crc(tr, (21, 56))
    assert same == pytest.approx(np.full(2, tr["crc_itt"][fast]))


def test_final_analysis_waits_for_the_latest_landmark(spec):
    landmarks = dict(zip(spec.arms, spec.truth["landmark"].tolist(), strict=True))
    assert landmarks == {"slow": 180.0, "fast": 56.0}
    assert spec.max_delay == 180.0


def _itt(sc):
    arms = list(sc.arms)
    fields = {"cr": "cr", "cri": "cri", "m30": "mortality_30d", "m60": "mortality_60d"}
    fields["median_os"] = "median_os_days"
    truth = {k: np.array([getattr(sc.arms[a], f) for a in arms], float) for k, f in fields.items()}
    return dict(zip(arms, itt_crc(truth, [sc.response_days_of(a) for a in arms]), strict=True))


NON_INTENSIVE = ("arm1", "arm2", "arm5")  # response landmark 180 days (arm6: 56, natural history ~2.4 months)


def test_bundled_scenarios_solve_itt_to_the_configured_rates():
    """`global_null` and `all_effective` set CR + CRi so that the ITT CRc is the null / target;
    the scenarios "as realistic" give the non-intensive arms realistic's ITT CRc."""
    design = load_config(ROOT / "configs" / "rr_aml.yaml")
    load = lambda name: load_scenario(ROOT / "configs" / "scenarios" / f"{name}.yaml", design)  # noqa: E731
    for name, attr in (("global_null", "null_rate"), ("all_effective", "target_rate")):
        sc = load(name)
        for a, rate in _itt(sc).items():
            want = getattr(design.arm(a).rates["crc"], attr)
            assert abs(rate - want) < 0.0005, (name, a, rate, want)
            assert sc.response_days_of(a) == ((28, 150) if a in NON_INTENSIVE else (21, 56))
    realistic = _itt(load("realistic"))
    for name in ("dav_better", "drift", "harmful_arm"):
        sc = load(name)
        itt = _itt(sc)
        for a in NON_INTENSIVE:
            assert sc.response_days_of(a) == (28, 150)
            if (name, a) != ("harmful_arm", "arm5"):
                assert abs(itt[a] - realistic[a]) < 0.0005, (name, a)
    assert abs(itt["arm5"] - 0.1829) < 0.0005  # harmful_arm's arm5: its ITT rate with [21, 56]


def test_synth_draws_the_arms_own_response_days():
    design = load_config(ROOT / "configs" / "rr_aml.yaml")
    doc = yaml.safe_load((ROOT / "configs" / "scenarios" / "realistic.yaml").read_text())
    doc["arms"]["arm3"]["response_days"] = [100, 100]
    sc = parse_scenario(yaml.safe_dump(doc), "scenario.yaml", design)
    df = synthesize(design, sc, n=150, seed=3)
    rows = df[(df["response_on"] != "") & df["arm"].isin(["arm3", "arm4"])]
    lag = {
        a: {
            (date.fromisoformat(r) - date.fromisoformat(e)).days
            for r, e in zip(g["response_on"], g["enrolled_on"], strict=True)
        }
        for a, g in rows.groupby("arm")
    }
    assert lag["arm3"] == {100}
    assert lag["arm4"] <= set(range(21, 57)) and len(lag["arm4"]) > 1


# ----------------------------------------------------------------------------- known times
def _death_u(m30, m60, med, day):
    """The uniform whose death time is ``day`` (inverse of the simulator's draw)."""
    return 1.0 - _survival(m30, m60, med, float(day))


def _simulate(spec, patients):
    """Known days and values of ``patients`` (arm, category, response day, death day) enrolled on day 0."""
    drawn = _Chunk(spec, 1, np.arange(1)).patients
    arms = {a: i for i, a in enumerate(spec.arms)}
    for p, (arm, cat, rday, dday) in enumerate(patients):
        i = arms[arm]
        lo, hi = spec.truth["resp_lo"][i], spec.truth["resp_hi"][i]
        assert lo <= rday <= hi
        drawn.u["resp"][0, p] = U_RESP[cat]
        drawn.u["delay"][0, p] = (rday - lo + 0.5) / (hi - lo + 1)
        drawn.u["death"][0, p] = _death_u(
            MORT["mortality_30d"], MORT["mortality_60d"], MORT["median_os_days"], dday
        )
        drawn.u["mrd"][0, p] = 0.2 if p % 2 else 0.9  # MRD negative for odd patients
    n = len(patients)
    arm_idx = np.array([arms[a] for a, *_ in patients])
    tr = spec.truth
    drawn.draw(
        np.zeros(n, np.int64), np.arange(n), arm_idx, np.zeros(n), tr["cr"][arm_idx], tr["cri"][arm_idx]
    )
    return {e: (drawn.known[e][0, :n], drawn.value[e][0, :n]) for e in ENDPOINTS}


def _record(cat, rday, dday, mrd_negative):
    d0 = date(2025, 1, 6)
    assessed = dday >= rday
    return {
        "enrolled_on": d0,
        "best_response": cat if assessed else None,
        "response_on": d0 + timedelta(days=rday) if assessed else None,
        "death_on": d0 + timedelta(days=dday),
        "mrd_negative": mrd_negative if assessed and cat in ("CR", "CRi") else None,
        "relapse_on": None,
        "hsct_on": None,
        "last_contact_on": d0 + timedelta(days=dday),
    }


def _compare(spec, design, patients, cutoffs):
    sim = _simulate(spec, patients)
    for p, (arm, cat, rday, dday) in enumerate(patients):
        rec = _record(cat, rday, dday, bool(p % 2))
        landmark = design.arm(arm).response_landmark_days
        for c in cutoffs:
            got = derive_patient(rec, rec["enrolled_on"] + timedelta(days=c), landmark)
            for e in ENDPOINTS:
                known, value = sim[e][0][p], sim[e][1][p]
                # the simulator's times are continuous: a cutoff on day c sees everything up to c + 1/2
                sim_value = int(value) if known <= c + 0.5 else None
                assert sim_value == got[e], (arm, cat, rday, dday, c, e, known)


def test_non_responders_of_a_180_day_arm_are_pending_until_the_landmark(spec, design):
    """NR assessed on day 40: pending at a cutoff on day 100, failures on day 200 (sim and derive);
    a PR of day 40 counts for ORR only from day 180 too."""
    patients = [("slow", "NR", 40, 5000), ("slow", "NE", 40, 5000), ("slow", "PR", 40, 5000)]
    sim = _simulate(spec, patients)
    for e in ("crc", "mrd_negative_cr"):
        assert sim[e][0].tolist() == [180.0, 180.0, 180.0] and sim[e][1].tolist() == [0, 0, 0]
    # every outcome, the PR (an ORR responder) included, is counted at the landmark
    assert sim["orr"][0].tolist() == [180.0, 180.0, 180.0] and sim["orr"][1].tolist() == [0, 0, 1]
    for cat in ("NR", "NE"):
        rec = _record(cat, 40, 5000, None)
        at_100 = derive_patient(rec, rec["enrolled_on"] + timedelta(days=100), 180)
        at_200 = derive_patient(rec, rec["enrolled_on"] + timedelta(days=200), 180)
        assert [at_100[e] for e in ENDPOINTS] == [None, None, None]
        assert [at_200[e] for e in ENDPOINTS] == [0, 0, 0]
    # the same patient on the 56-day arm is a failure by day 100
    fast = _simulate(spec, [("fast", "NR", 40, 5000)])
    assert fast["crc"][0].tolist() == [56.0]
    _compare(spec, design, patients, cutoffs=(39, 40, 100, 179, 180, 200))


def test_simulator_known_times_match_derive_patient(spec, design):
    """Every category, response day and death relative to the landmark, at many cutoffs."""
    patients = []
    for arm, rdays in (("slow", (28, 90, 150)), ("fast", (21, 40, 56))):
        landmark = design.arm(arm).response_landmark_days
        for cat in U_RESP:
            for rday in rdays:
                # death before the response, between the response and the landmark, after both
                deaths = {rday - 5, rday + 1, max(rday, landmark) + 30, 3000}
                if rday + 1 >= landmark:
                    deaths.discard(rday + 1)
                patients += [(arm, cat, rday, d) for d in sorted(deaths) if d > 0]
    cutoffs = sorted(
        {0, 1, 20, 27, 28, 45, 55, 56, 57, 60, 89, 90, 91, 100, 149, 150, 151, 179, 180, 181, 210, 400}
    )
    _compare(spec, design, patients, cutoffs)
