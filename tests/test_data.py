"""Patient data validation: every rejection names file, row and column; warnings do not fail."""

import string

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adaptive.data import DATE_COLUMNS, load_patients, validate_frame
from adaptive.exceptions import DataError
from tests.conftest import EXAMPLE, rows_frame, write_csv


def check(df, design):
    return validate_frame(df, design, source="data.csv", row_word="line")


def test_valid_rows_pass(design):
    frame, warns = check(
        rows_frame({}, {"arm": "arm4", "best_response": "CR", "response_on": "2026-02-01"}), design
    )
    assert list(frame["subject_id"]) == ["S1", "S2"]
    assert frame.loc[1, "best_response"] == "CR"
    assert warns == ()


def test_duplicate_ids(design):
    df = rows_frame({}, {}, {})
    df.loc[2, "subject_id"] = "S1"
    with pytest.raises(
        DataError,
        match=r"data.csv line 4, column 'subject_id': duplicate subject_id 'S1' \(first seen at line 2\)",
    ):
        check(df, design)


def test_unknown_arm(design):
    with pytest.raises(DataError, match=r"data.csv line 2, column 'arm': unknown arm 'arm33'.*Did you mean"):
        check(rows_frame({"arm": "arm33"}), design)


@pytest.mark.parametrize("bad", ["2026-13-01", "01/02/2026", "2026-1-5", "yesterday"])
def test_unparseable_dates(design, bad):
    with pytest.raises(
        DataError, match=rf"line 2, column 'death_on': cannot parse date '{bad}'; expected ISO 8601"
    ):
        check(rows_frame({"death_on": bad}), design)


def test_response_before_enrolment(design):
    df = rows_frame({"best_response": "CR", "response_on": "2025-12-01"})
    with pytest.raises(
        DataError,
        match=r"line 2, column 'response_on': response_on 2025-12-01 is before enrolled_on 2026-01-01",
    ):
        check(df, design)


def test_death_before_enrolment(design):
    with pytest.raises(
        DataError, match=r"line 2, column 'death_on': death_on 2025-12-31 is before enrolled_on"
    ):
        check(rows_frame({"death_on": "2025-12-31"}), design)


def test_response_outside_list(design):
    with pytest.raises(
        DataError,
        match=r"line 2, column 'best_response': 'cr' is not a response category.*Did you mean 'CR'\?",
    ):
        check(rows_frame({"best_response": "cr", "response_on": "2026-02-01"}), design)


@pytest.mark.parametrize("resp", ["CR", "CRi", "PR"])
def test_response_date_missing(design, resp):
    with pytest.raises(
        DataError, match=rf"line 2, column 'response_on': best_response is {resp} but response_on is blank"
    ):
        check(rows_frame({"best_response": resp}), design)


def test_nr_without_date_is_allowed(design):
    frame, _ = check(rows_frame({"best_response": "NR"}), design)
    assert frame.loc[0, "response_on"] is None


def test_bad_boolean(design):
    with pytest.raises(
        DataError,
        match=r"column 'idh1': 'maybe' is not a boolean; use 1, true, y, yes \(true\), 0, false, n, no "
        r"\(false\), any case, or blank",
    ):
        check(rows_frame({"idh1": "maybe"}), design)


def test_booleans_case_insensitive(design):
    frame, _ = check(rows_frame({"idh1": "FALSE", "randomized": "True"}), design)
    assert frame.loc[0, "idh1"] is False and frame.loc[0, "randomized"] is True


def test_relapse_without_remission(design):
    with pytest.raises(DataError, match=r"column 'relapse_on': relapse_on is set but best_response is PR"):
        check(
            rows_frame({"best_response": "PR", "response_on": "2026-02-01", "relapse_on": "2026-05-01"}),
            design,
        )


def test_response_after_death(design):
    df = rows_frame({"best_response": "CR", "response_on": "2026-03-01", "death_on": "2026-02-01"})
    with pytest.raises(DataError, match=r"response_on 2026-03-01 is after death_on 2026-02-01"):
        check(df, design)


def test_missing_columns_with_hint(design):
    df = rows_frame({}).rename(columns={"enrolled_on": "enroled_on"})
    with pytest.raises(
        DataError, match=r"missing required column\(s\): 'enrolled_on' Did you mean 'enroled_on'\?"
    ):
        check(df, design)


def test_all_problems_listed(design):
    df = rows_frame({"arm": "armX"}, {"death_on": "bad"}, {"best_response": "XX"})
    with pytest.raises(DataError) as exc:
        check(df, design)
    assert len(exc.value.problems) == 3
    lines = [p.where for p in exc.value.problems]
    assert lines == [
        "data.csv line 2, column 'arm'",
        "data.csv line 3, column 'death_on'",
        "data.csv line 4, column 'best_response'",
    ]


def test_routing_contradiction_warns_not_fails(design):
    # IDH1-mutated, unfit patient in arm5: routing sends IDH1 to arm1
    df = rows_frame({"arm": "arm5", "idh1": "true", "intensive_eligible": "false", "randomized": "false"})
    frame, warns = check(df, design)
    assert len(frame) == 1
    assert any(
        "patient is in arm5 but the routing rules send them to cohort 'idh1' (arm1)" in str(w) for w in warns
    )
    assert "line 2, subject S1, column 'arm'" in str(warns[0])


def test_unknown_routing_values_give_no_warning(design):
    # IDH1 unknown: arm1 cannot be ruled out, so arm3 is not a contradiction
    _, warns = check(rows_frame({"idh1": ""}), design)
    assert warns == ()


def test_randomized_flag_checked(design):
    _, warns = check(rows_frame({"randomized": "false"}), design)
    assert any("randomized is false but arm3 is only entered by randomization" in str(w) for w in warns)


def test_load_csv_file_reports_file_name(tmp_path, design):
    path = write_csv(tmp_path, rows_frame({}, {"enrolled_on": "2026/01/02"}), "export.csv")
    with pytest.raises(DataError, match=r"export.csv line 3, column 'enrolled_on'"):
        load_patients(path, design)


def test_parquet_and_csv_agree(tmp_path, design):
    csv = load_patients(EXAMPLE, design)
    df = pd.read_csv(EXAMPLE, dtype=str, keep_default_na=False)
    # typed parquet: booleans as bool, dates as datetime, blanks as nulls
    typed = df.copy()
    for c in DATE_COLUMNS:
        typed[c] = pd.to_datetime(typed[c].replace("", None))
    for c in ("randomized", "idh1", "intensive_eligible"):
        typed[c] = typed[c].map({"true": True, "false": False, "": None})
    path = tmp_path / "export.parquet"
    typed.to_parquet(path, index=False)
    pq = load_patients(path, design)
    cols = [c for c in csv.frame.columns if c != "row_label"]
    pd.testing.assert_frame_equal(csv.frame[cols], pq.frame[cols])
    assert pq.frame["row_label"].iloc[0] == "row 1"


def test_sas_transport(tmp_path, design):
    import pyreadstat

    df = pd.read_csv(EXAMPLE, dtype=str, keep_default_na=False).head(20)
    path = tmp_path / "export.xpt"
    # SAS transport v8 (long variable names), upper-case names as SAS writes them
    pyreadstat.write_xport(df.rename(columns=str.upper), str(path), file_format_version=8)
    table = load_patients(path, design)
    csv = validate_frame(df, design)[0]
    cols = [c for c in csv.columns if c != "row_label"]
    pd.testing.assert_frame_equal(csv[cols], table.frame[cols])


def test_bundled_example_is_valid(design):
    table = load_patients(EXAMPLE, design)
    assert len(table.frame) == 220
    assert table.frame["subject_id"].is_unique


# --------------------------------------------------------------------------- hypothesis
cell = st.text(alphabet=string.ascii_letters + string.digits + "-/ .", max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    col=st.sampled_from(["enrolled_on", "death_on", "idh1", "best_response", "arm", "karyotype_risk"]),
    value=cell,
)
def test_arbitrary_cells_never_crash(design, col, value):
    """Any text in any cell either validates or raises DataError naming that cell.

    A value that is valid alone but inconsistent with another cell (best_response CR without a
    response date) is located at the other cell and names this one in its message.
    """
    df = rows_frame({col: value})
    try:
        check(df, design)
    except DataError as exc:
        assert any(f"column '{col}'" in p.where or f"{col} is" in p.message for p in exc.problems), str(exc)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    enrol=st.dates(min_value=pd.Timestamp("2024-01-01").date(), max_value=pd.Timestamp("2027-01-01").date()),
    offset=st.integers(-400, 400),
)
def test_death_date_rule_is_exact(design, enrol, offset):
    death = enrol + pd.Timedelta(days=offset).to_pytimedelta()
    df = rows_frame({"enrolled_on": enrol.isoformat(), "death_on": death.isoformat()})
    if offset < 0:
        with pytest.raises(DataError, match="death_on .* is before enrolled_on"):
            check(df, design)
    else:
        frame, _ = check(df, design)
        assert frame.loc[0, "death_on"] == death
