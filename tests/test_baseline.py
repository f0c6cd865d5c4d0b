"""Baseline characteristics and disposition (issue 15, item 4): the optional baseline columns, their
validation, synth's baseline draws, and the memo's baseline and disposition tables counted by hand."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adaptive.cli import main
from adaptive.columns import (
    AGE_RANGE,
    BASELINE_COLUMNS,
    DISEASE_STATUSES,
    ECOG_GRADES,
    ELN2022_RISKS,
    SEX_CODES,
)
from adaptive.data import parse_baseline, validate_frame
from adaptive.derive import derive
from adaptive.exceptions import DataError
from adaptive.report import data as rdata
from adaptive.scenario import load_scenario
from adaptive.synth import synthesize
from tests.conftest import CONFIG, EXAMPLE, SCENARIOS, rows_frame, write_csv

CUTOFF = date(2026, 6, 30)
#: four patients enrolled by the cutoff and one after it (S5), with every baseline column
HAND = {
    "age": ["50", "60", "70", "", "40"],
    "sex": ["M", "f", "m", "", "F"],
    "ecog": ["0", "1", "2", "1", "0"],
    "disease_status": ["relapsed", "REFRACTORY", "relapsed", "relapsed", "refractory"],
    "prior_hsct": ["Y", "N", "", "N", "N"],
    "eln2022_risk": ["adverse", "intermediate", "favorable", "adverse", "adverse"],
    "treatment_start_on": ["2026-01-03", "2026-01-02", "2026-01-05", "", ""],
}


def hand_frame() -> pd.DataFrame:
    df = rows_frame(
        # arm3: died without response by the landmark (evaluable, failure)
        {"arm": "arm3", "death_on": "2026-03-01", "last_contact_on": "2026-03-01"},
        # arm3: CR by the landmark, then a transplant before the cutoff
        {
            "arm": "arm3",
            "best_response": "CR",
            "response_on": "2026-02-15",
            "mrd_negative": "true",
            "hsct_on": "2026-04-01",
            "last_contact_on": "2026-05-01",
        },
        # arm4: nothing recorded after day 19: overdue for CRc (pending), lost for 60-day mortality
        {"arm": "arm4", "last_contact_on": "2026-01-20"},
        # arm4: enrolled 10 days before the cutoff (pending), not randomized, died after the cutoff
        {
            "arm": "arm4",
            "enrolled_on": "2026-06-20",
            "randomized": "false",
            "death_on": "2026-07-10",
            "last_contact_on": "2026-07-10",
        },
        # arm3: enrolled after the cutoff: in no count
        {"arm": "arm3", "enrolled_on": "2026-07-15"},
    )
    for c, v in HAND.items():
        df[c] = v
    return df


def look_of(table, design) -> SimpleNamespace:
    """What the tables read from a look: its cutoff and the per-arm counts of recommendations.json."""
    d = derive(table, design, CUTOFF)
    arms = [
        {
            "arm": a,
            "endpoints": {
                ep: {
                    "n_evaluable": c[a].n_evaluable,
                    "n_pending": c[a].n_pending,
                    "n_overdue": c[a].n_overdue,
                    "n_not_evaluable": c[a].n_lost,
                }
                for ep, c in d.counts.items()
            },
        }
        for a in design.arm_ids
    ]
    return SimpleNamespace(cutoff=CUTOFF, arms=arms)


def cells(rows: list[dict]) -> dict[tuple[str, str], list[str]]:
    """``{(heading, label): cells}`` of a table's rows."""
    out, heading = {}, ""
    for r in rows:
        if r.get("heading"):
            heading = r["label"]
        else:
            out[heading, r["label"]] = r["cells"]
    return out


@pytest.fixture
def hand(design):
    frame, _warnings = validate_frame(hand_frame(), design)
    table = SimpleNamespace(frame=frame, source="hand.csv")
    f = frame[[d <= CUTOFF for d in frame["enrolled_on"]]].reset_index(drop=True)
    arm = np.array(list(f["arm"]), dtype=object)
    masks = [arm == "arm3", arm == "arm4", np.ones(len(f), dtype=bool)]
    return table, f, masks


def test_baseline_table_counted_by_hand(hand):
    _table, f, masks = hand
    got = cells(rdata.baseline_rows(f, masks))
    assert got == {
        ("", "Patients enrolled by the cutoff"): ["2", "2", "4"],
        ("", "Age, years: median (range)"): ["55 (50-60)", "70 (70-70)", "60 (50-70)"],
        ("", "Age not recorded"): ["0 (0%)", "1 (50%)", "1 (25%)"],
        ("Sex", "Male"): ["1 (50%)", "1 (50%)", "2 (50%)"],
        ("Sex", "Female"): ["1 (50%)", "0 (0%)", "1 (25%)"],
        ("Sex", "Not recorded"): ["0 (0%)", "1 (50%)", "1 (25%)"],
        ("ECOG performance status", "ECOG 0"): ["1 (50%)", "0 (0%)", "1 (25%)"],
        ("ECOG performance status", "ECOG 1"): ["1 (50%)", "1 (50%)", "2 (50%)"],
        ("ECOG performance status", "ECOG 2"): ["0 (0%)", "1 (50%)", "1 (25%)"],
        ("Disease status at enrolment", "Relapsed"): ["1 (50%)", "2 (100%)", "3 (75%)"],
        ("Disease status at enrolment", "Primary refractory"): ["1 (50%)", "0 (0%)", "1 (25%)"],
        ("Prior allogeneic HSCT", "Yes"): ["1 (50%)", "0 (0%)", "1 (25%)"],
        ("Prior allogeneic HSCT", "No"): ["1 (50%)", "1 (50%)", "2 (50%)"],
        ("Prior allogeneic HSCT", "Not recorded"): ["0 (0%)", "1 (50%)", "1 (25%)"],
        ("ELN 2022 genetic risk", "Favorable"): ["0 (0%)", "1 (50%)", "1 (25%)"],
        ("ELN 2022 genetic risk", "Intermediate"): ["1 (50%)", "0 (0%)", "1 (25%)"],
        ("ELN 2022 genetic risk", "Adverse"): ["1 (50%)", "1 (50%)", "2 (50%)"],
    }


def test_disposition_table_counted_by_hand(hand, design):
    table, f, masks = hand
    rows = rdata.disposition_rows(look_of(table, design), f, masks, [["arm3"], ["arm4"], ["arm3", "arm4"]])
    got = {r["label"]: r["cells"] for r in rows}
    want = {
        "Enrolled by the cutoff": ["2", "2", "4"],
        "Randomized": ["2 (100%)", "1 (50%)", "3 (75%)"],
        "Treated": ["2 (100%)", "1 (50%)", "3 (75%)"],
        "Evaluable for CRc (primary endpoint)": ["2 (100%)", "0 (0%)", "2 (50%)"],
        # arm4's second patient: landmark after the cutoff; its first: landmark passed, nothing recorded
        "CRc pending: landmark not reached": ["0 (0%)", "1 (50%)", "1 (25%)"],
        "CRc overdue": ["0 (0%)", "1 (50%)", "1 (25%)"],
        "Died": ["1 (50%)", "0 (0%)", "1 (25%)"],  # the death after the cutoff is not counted
        "Allogeneic HSCT": ["1 (50%)", "0 (0%)", "1 (25%)"],
        # the bundled design monitors 60-day mortality: arm4's first patient is lost for it
        "Lost to follow-up by day 60": ["0 (0%)", "1 (50%)", "1 (25%)"],
    }
    assert got == want


def test_absent_baseline_columns_have_no_rows_and_no_treated_row(design):
    df = hand_frame().drop(columns=["age", "ecog", "treatment_start_on"])
    frame, _ = validate_frame(df, design)
    assert "age" not in frame.columns and "ecog" not in frame.columns and "sex" in frame.columns
    f = frame[[d <= CUTOFF for d in frame["enrolled_on"]]].reset_index(drop=True)
    masks = [np.ones(len(f), dtype=bool)]
    labels = {r["label"] for r in rdata.baseline_rows(f, masks)}
    assert not any("Age" in x or "ECOG" in x for x in labels) and "Sex" in labels
    table = SimpleNamespace(frame=frame, source="hand.csv")
    disp = rdata.disposition_rows(look_of(table, design), f, masks, [list(design.arm_ids)])
    assert "Treated" not in {r["label"] for r in disp}
    # and an export without any baseline column validates as before, with none in its table
    plain, _ = validate_frame(hand_frame().drop(columns=list(HAND)), design)
    assert not set(BASELINE_COLUMNS) & set(plain.columns)


# ============================================================================= validation
@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("age", "17", "age '17' is outside 18-110 years"),
        ("age", "sixty", "age 'sixty' is not a number"),
        ("sex", "X", "'X' is not one of M, F, U"),
        ("ecog", "5", "ECOG '5' is not a performance status; use an integer 0-4"),
        ("ecog", "1.5", "ECOG '1.5' is not a performance status"),
        ("disease_status", "remission", "'remission' is not one of relapsed, refractory"),
        ("prior_hsct", "maybe", "'maybe' is not a boolean"),
        ("eln2022_risk", "adverse-risk", "'adverse-risk' is not one of favorable, intermediate, adverse"),
    ],
)
def test_bad_baseline_value_is_named_by_file_line_and_column(tmp_path, column, value, message):
    df = hand_frame()
    df.loc[2, column] = value
    path = write_csv(tmp_path, df, "export.csv")
    res = CliRunner().invoke(
        main, ["validate", "--config", str(CONFIG), "--data", str(path), "--cutoff", "2026-06-30"]
    )
    assert res.exit_code == 2, res.output
    assert f"export.csv line 4, column '{column}': {message}" in res.output
    assert "Traceback" not in res.output


def test_every_bad_baseline_value_is_listed_together(design):
    df = hand_frame()
    df.loc[0, "age"] = "200"
    df.loc[3, "sex"] = "male"
    with pytest.raises(DataError) as exc:
        validate_frame(df, design, source="e.csv")
    text = str(exc.value)
    assert "e.csv line 2, column 'age'" in text and "e.csv line 5, column 'sex'" in text
    assert len(exc.value.problems) == 2


@settings(max_examples=60, deadline=None)
@given(
    age=st.floats(AGE_RANGE[0], AGE_RANGE[1]).map(lambda x: round(x, 1)),
    sex=st.sampled_from(SEX_CODES),
    ecog=st.sampled_from(ECOG_GRADES),
    status=st.sampled_from(DISEASE_STATUSES),
    eln=st.sampled_from(ELN2022_RISKS),
    upper=st.booleans(),
)
def test_valid_baseline_values_round_trip_in_any_case(age, sex, ecog, status, eln, upper):
    case = str.upper if upper else str.lower
    assert parse_baseline("age", f"{age}") == age
    assert parse_baseline("sex", case(sex)) == sex
    assert parse_baseline("ecog", str(ecog)) == ecog and parse_baseline("ecog", f"{ecog}.0") == ecog
    assert parse_baseline("disease_status", case(status)) == status
    assert parse_baseline("eln2022_risk", case(eln)) == eln
    assert all(parse_baseline(c, "") is None for c in BASELINE_COLUMNS)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    column=st.sampled_from(["age", "sex", "ecog", "disease_status", "eln2022_risk"]),
    value=st.one_of(
        st.text(min_size=1, max_size=12).filter(lambda s: s.strip() == s and s),
        st.floats(allow_nan=True, allow_infinity=True).map(str),
        st.integers(-1000, 1000).map(str),
    ),
)
def test_any_value_outside_the_codes_is_refused(column, value):
    allowed = {
        "sex": {c.lower() for c in SEX_CODES},
        "disease_status": set(DISEASE_STATUSES),
        "eln2022_risk": set(ELN2022_RISKS),
    }
    try:
        number = float(value)
    except ValueError:
        number = None
    if column == "age":
        ok = number is not None and AGE_RANGE[0] <= number <= AGE_RANGE[1]
    elif column == "ecog":
        ok = number is not None and number.is_integer() and int(number) in ECOG_GRADES
    else:
        ok = value.lower() in allowed[column]
    if ok:
        parse_baseline(column, value)
    else:
        with pytest.raises(ValueError, match="not|outside"):
            parse_baseline(column, value)


# ============================================================================= synth
def test_synth_baseline_is_plausible_and_leaves_the_other_columns_alone(design):
    sc = load_scenario(SCENARIOS / "realistic.yaml", design)
    df = synthesize(design, sc, n=220, seed=7)
    bundled = pd.read_csv(EXAMPLE, dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(df, bundled)  # the bundled example, baseline columns included
    assert list(df.columns[-len(BASELINE_COLUMNS) :]) == list(BASELINE_COLUMNS)
    age = df["age"].astype(float)
    fit = df["intensive_eligible"] == "true"
    assert 58 <= age.median() <= 66 and age.min() >= 18 and age.max() <= 90
    assert age[fit].median() < 60 < age[~fit].median()
    assert age[df["arm"] == "arm5"].median() > age[df["arm"].isin(["arm3", "arm4"])].median() + 10
    assert 0.45 < (df["sex"] == "M").mean() < 0.65
    assert (df["ecog"].astype(int) <= 2).mean() > 0.9
    assert set(df["disease_status"]) == set(DISEASE_STATUSES)
    assert not ((df["prior_hsct"] == "true") & (df["disease_status"] == "refractory")).any()
    # an adverse karyotype is ELN 2022 adverse; a favorable one favorable
    kr = df["karyotype_risk"]
    assert (df.loc[kr == "adverse", "eln2022_risk"] == "adverse").all()
    assert (df.loc[kr == "favorable", "eln2022_risk"] == "favorable").all()
    # another seed: other baseline values
    other = synthesize(design, sc, n=220, seed=8)
    assert not other["age"].equals(df["age"])


@pytest.mark.parametrize(
    ("k", "n", "cell"),
    [(23, 40, "23 (58%)"), (1, 220, "1 (<1%)"), (219, 220, "219 (>99%)"), (0, 5, "0 (0%)"), (5, 5, "5 (100%)"),
     (3, 0, "3"), (1, 200, "1 (1%)")],
)  # fmt: skip
def test_count_pct_never_prints_zero_for_a_patient(k, n, cell):
    assert rdata.count_pct(k, n) == cell


def test_without_overdue_patients_pending_is_one_row(hand, design):
    """A look with no overdue patient (or made before they were counted) keeps one pending row."""
    table, f, masks = hand
    look = look_of(table, design)
    for a in look.arms:
        for e in a["endpoints"].values():
            e.pop("n_overdue")
    rows = rdata.disposition_rows(look, f, masks, [["arm3"], ["arm4"], ["arm3", "arm4"]])
    got = {r["label"]: r["cells"] for r in rows}
    assert got["CRc pending"] == ["0 (0%)", "2 (100%)", "2 (50%)"] and "CRc overdue" not in got
