"""Time-to-event derivation as of a cutoff: hand-computed patients, Kaplan-Meier, remission span."""

from datetime import date

import numpy as np
import pytest

from adaptive.data import PatientTable, validate_frame
from adaptive.derive import derive
from adaptive.survival_data import km_median, survival_patient
from tests.conftest import rows_frame

CUTOFF = date(2026, 6, 30)


def derived_for(design, *rows, cutoff=CUTOFF):
    frame, warns = validate_frame(rows_frame(*rows), design, source="d.csv")
    table = PatientTable(frame=frame, path=None, sha256="x", warnings=warns)
    return derive(table, design, cutoff)


def patient(design, cutoff=CUTOFF, follow_up=730, hsct=False, **fields):
    """Survival outcomes of one hand-built patient, through the data validation."""
    frame, _ = validate_frame(rows_frame(fields), design, source="d.csv")
    rec = frame.to_dict("records")[0]
    return survival_patient(rec, cutoff, follow_up, censor_at_hsct=hsct)


def te(res):
    return None if res is None else (res["time"], res["event"], res["event_type"])


def test_alive_censored_at_last_contact(design):
    r = patient(design, enrolled_on="2026-01-01", last_contact_on="2026-03-02")
    assert te(r["os"]) == (60.0, 0, None)
    assert r["rfs"] is None and r["efs"] is None  # no remission


def test_death_is_an_os_event(design):
    r = patient(design, enrolled_on="2026-01-01", death_on="2026-02-15", last_contact_on="2026-02-15")
    assert te(r["os"]) == (45.0, 1, "death")


def test_relapsed_then_died(design):
    r = patient(
        design,
        enrolled_on="2026-01-01",
        best_response="CR",
        response_on="2026-01-31",
        mrd_negative="true",
        relapse_on="2026-04-01",
        death_on="2026-05-01",
        last_contact_on="2026-05-01",
    )
    assert te(r["os"]) == (120.0, 1, "death")
    assert te(r["rfs"]) == (60.0, 1, "relapse")  # from the response date to relapse
    assert te(r["efs"]) == (60.0, 1, "relapse")
    assert r["efs"]["day0"] is False


def test_death_in_remission_is_an_rfs_event(design):
    r = patient(
        design,
        enrolled_on="2026-01-01",
        best_response="CRi",
        response_on="2026-02-01",
        mrd_negative="true",
        death_on="2026-03-03",
    )
    assert te(r["rfs"]) == (30.0, 1, "death")


def test_cr_after_cutoff_is_not_in_rfs_or_efs(design):
    r = patient(
        design,
        enrolled_on="2026-06-01",
        best_response="CR",
        response_on="2026-07-10",
        mrd_negative="true",
        last_contact_on="2026-07-20",
    )
    assert r["rfs"] is None and r["efs"] is None
    assert te(r["os"]) == (29.0, 0, None)  # last contact after the cutoff: alive at the cutoff


def test_death_after_cutoff_is_unknown(design):
    r = patient(design, enrolled_on="2026-05-01", death_on="2026-07-05", last_contact_on="2026-07-05")
    assert te(r["os"]) == (60.0, 0, None)  # censored at the cutoff, alive then


def test_last_contact_after_cutoff_censors_at_cutoff(design):
    r = patient(design, enrolled_on="2026-04-01", last_contact_on="2026-09-01")
    assert te(r["os"]) == (90.0, 0, None)


def test_relapse_after_cutoff_is_unknown(design):
    r = patient(
        design,
        enrolled_on="2026-01-01",
        best_response="CR",
        response_on="2026-02-01",
        mrd_negative="true",
        relapse_on="2026-08-01",
        last_contact_on="2026-08-01",
    )
    assert te(r["rfs"]) == (149.0, 0, None)  # relapse-free at the cutoff, 2026-06-30


def test_transplant_ignored_by_default(design):
    r = patient(
        design,
        enrolled_on="2026-01-01",
        best_response="CR",
        response_on="2026-01-31",
        mrd_negative="true",
        hsct_on="2026-03-02",
        death_on="2026-04-01",
    )
    assert te(r["os"]) == (90.0, 1, "death")
    assert te(r["rfs"]) == (60.0, 1, "death")
    assert not r["os"]["censored_at_hsct"]


def test_transplant_censoring_sensitivity(design):
    fields = dict(
        enrolled_on="2026-01-01",
        best_response="CR",
        response_on="2026-01-31",
        mrd_negative="true",
        hsct_on="2026-03-02",
        death_on="2026-04-01",
    )
    r = patient(design, hsct=True, **fields)
    assert te(r["os"]) == (60.0, 0, None) and r["os"]["censored_at_hsct"]
    assert te(r["rfs"]) == (30.0, 0, None) and r["rfs"]["censored_at_hsct"]
    # an event on the transplant day still counts
    r = patient(design, hsct=True, **{**fields, "death_on": "2026-03-02"})
    assert te(r["os"]) == (60.0, 1, "death") and not r["os"]["censored_at_hsct"]


def test_transplant_after_last_contact_changes_nothing_flagged(design):
    r = patient(
        design, hsct=True, enrolled_on="2026-01-01", hsct_on="2026-02-01", last_contact_on="2026-02-01"
    )
    assert te(r["os"]) == (31.0, 0, None)
    assert not r["os"]["censored_at_hsct"]  # the transplant is the last record anyway


def test_mrd_positive_remission_is_an_efs_event_on_day_0(design):
    r = patient(
        design,
        enrolled_on="2026-01-01",
        best_response="CR",
        response_on="2026-01-31",
        mrd_negative="false",
        last_contact_on="2026-05-01",
    )
    assert te(r["efs"]) == (0.0, 1, "mrd_positive") and r["efs"]["day0"]
    assert te(r["rfs"]) == (90.0, 0, None)


def test_mrd_unknown_is_excluded_from_efs_only(design):
    r = patient(design, enrolled_on="2026-01-01", best_response="CR", response_on="2026-01-31")
    assert r["efs"] is None and r["efs_excluded"]
    assert r["rfs"] is not None


def test_follow_up_window_truncates_at_730_days_after_enrolment(design):
    # death on day 800: censored at day 730 (the protocol's window)
    r = patient(
        design,
        cutoff=date(2028, 6, 30),
        enrolled_on="2026-01-01",
        best_response="CR",
        response_on="2026-01-31",
        mrd_negative="true",
        death_on="2028-03-11",
    )
    assert te(r["os"]) == (730.0, 0, None)
    assert te(r["rfs"]) == (700.0, 0, None)  # the window ends 730 days after *enrolment*
    # death on day 730 itself counts
    r = patient(design, cutoff=date(2028, 6, 30), enrolled_on="2026-01-01", death_on="2028-01-01")
    assert te(r["os"]) == (730.0, 1, "death")
    # a shorter window
    r = patient(design, follow_up=100, enrolled_on="2026-01-01", death_on="2026-05-01")
    assert te(r["os"]) == (100.0, 0, None)


def test_same_day_event_is_placed_at_half_a_day(design):
    r = patient(design, enrolled_on="2026-01-01", death_on="2026-01-01")
    assert te(r["os"]) == (0.5, 1, "death")
    r = patient(
        design,
        enrolled_on="2026-01-01",
        best_response="CR",
        response_on="2026-02-01",
        mrd_negative="true",
        relapse_on="2026-02-01",
    )
    assert te(r["rfs"]) == (0.5, 1, "relapse")


def test_transplant_before_remission_leaves_no_time_at_risk(design):
    r = patient(
        design,
        hsct=True,
        enrolled_on="2026-01-01",
        best_response="CR",
        response_on="2026-02-15",
        mrd_negative="false",
        hsct_on="2026-02-01",
        death_on="2026-04-01",
    )
    assert te(r["rfs"]) == (0.0, 0, None) and te(r["efs"]) == (0.0, 0, None)
    assert te(r["os"]) == (31.0, 0, None)


def test_arm_frames_and_summary(design):
    d = derived_for(
        design,
        # arm3: died day 45; CR MRD- relapsed; CR MRD+ alive; CR MRD unknown
        {"enrolled_on": "2026-01-01", "death_on": "2026-02-15"},
        {
            "enrolled_on": "2026-01-01",
            "best_response": "CR",
            "response_on": "2026-01-31",
            "mrd_negative": "true",
            "relapse_on": "2026-04-01",
            "last_contact_on": "2026-06-01",
        },
        {
            "enrolled_on": "2026-01-01",
            "best_response": "CRi",
            "response_on": "2026-01-31",
            "mrd_negative": "false",
            "last_contact_on": "2026-06-01",
        },
        {
            "enrolled_on": "2026-01-01",
            "best_response": "CR",
            "response_on": "2026-01-31",
            "last_contact_on": "2026-06-01",
        },
        {"arm": "arm4", "enrolled_on": "2026-03-01", "last_contact_on": "2026-06-30"},
    )
    sv = d.survival
    os_ = sv.summary("os", "arm3")
    assert os_["n"] == 4 and os_["events"] == 1 and os_["censored"] == 3
    assert os_["exposure_days"] == 45 + 3 * 151  # 2026-01-01 -> 2026-06-01 is 151 days
    rfs = sv.summary("rfs", "arm3")
    assert (rfs["n"], rfs["events"], rfs["events_by_type"]) == (3, 1, {"relapse": 1, "death": 0})
    efs = sv.summary("efs", "arm3")
    assert (efs["n"], efs["events"], efs["day0_events"], efs["n_excluded"]) == (2, 2, 1, 1)
    assert efs["events_by_type"] == {"mrd_positive": 1, "relapse": 1, "death": 0}
    assert efs["km_median_days"] == 0.0  # half of the EFS patients failed on day 0
    assert sv.n_events("os") == {a: int(a == "arm3") for a in design.arm_ids}
    assert sv.summary("os", "arm4")["exposure_days"] == 121.0
    assert sv.summary("rfs", "arm5") == {
        "n": 0,
        "events": 0,
        "events_by_type": {"relapse": 0, "death": 0},
        "censored": 0,
        "censored_at_hsct": 0,
        "exposure_days": 0.0,
        "km_median_days": None,
    }


def test_remission_span(design):
    d = derived_for(
        design,
        {"best_response": "CR", "response_on": "2026-02-01", "mrd_negative": "true"},
        {"best_response": "CRi", "response_on": "2026-05-11", "mrd_negative": "true"},
        {"best_response": "PR", "response_on": "2026-01-15"},  # not a remission
        {"arm": "arm4", "best_response": "CR", "response_on": "2026-03-01", "mrd_negative": "true"},
        {"arm": "arm4", "best_response": "CR", "response_on": "2026-07-10", "mrd_negative": "true"},  # after
    )
    span = d.survival.remission_span
    assert span["trial"] == {
        "n_remissions": 3,
        "first_remission_on": "2026-02-01",
        "last_remission_on": "2026-05-11",
        "span_days": 99,
    }
    assert span["by_arm"]["arm3"]["span_days"] == 99
    assert span["by_arm"]["arm4"] == {
        "n_remissions": 1,
        "first_remission_on": "2026-03-01",
        "last_remission_on": "2026-03-01",
        "span_days": 0,
    }
    assert span["by_arm"]["arm5"]["n_remissions"] == 0 and span["by_arm"]["arm5"]["span_days"] is None


def test_censor_at_hsct_comes_from_the_config(design):
    import dataclasses

    from adaptive.config import SurvivalCfg

    row = {
        "enrolled_on": "2026-01-01",
        "best_response": "CR",
        "response_on": "2026-01-31",
        "mrd_negative": "true",
        "hsct_on": "2026-03-02",
        "death_on": "2026-04-01",
    }
    assert derived_for(design, row).survival.summary("os", "arm3")["events"] == 1
    sv = SurvivalCfg(**{**design.survival.model_dump(), "censor_at_hsct": True})
    d = derived_for(dataclasses.replace(design, survival=sv), row)
    assert d.survival.summary("os", "arm3")["events"] == 0
    assert d.survival.summary("os", "arm3")["censored_at_hsct"] == 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_km_median_matches_lifelines(seed):
    from lifelines import KaplanMeierFitter

    rng = np.random.default_rng(seed)
    t = np.round(rng.exponential(200, 60))
    c = np.round(rng.uniform(50, 700, 60))
    time, event = np.minimum(t, c), t <= c
    kmf = KaplanMeierFitter().fit(time, event)
    expected = kmf.median_survival_time_
    got = km_median(time, event)
    assert (got is None and np.isinf(expected)) or got == pytest.approx(expected)


def test_km_median_not_reached_and_empty():
    assert km_median(np.array([10.0, 20.0, 30.0]), np.array([1, 0, 0])) is None
    assert km_median(np.array([]), np.array([])) is None
    assert km_median(np.array([5.0, 10.0]), np.array([1, 1])) == 5.0  # S(5) = 0.5
