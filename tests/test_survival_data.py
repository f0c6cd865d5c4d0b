"""Time-to-event derivation as of a cutoff: hand-computed patients, Kaplan-Meier, remission span."""

from datetime import date

import numpy as np
import pytest

from adaptive.data import PatientTable, validate_frame
from adaptive.derive import derive
from adaptive.survival_data import cumulative_incidence, km_median, survival_patient
from tests.conftest import rows_frame

CUTOFF = date(2026, 6, 30)


def derived_for(design, *rows, cutoff=CUTOFF):
    frame, warns = validate_frame(rows_frame(*rows), design, source="d.csv")
    table = PatientTable(frame=frame, path=None, sha256="x", warnings=warns)
    return derive(table, design, cutoff)


def patient(design, cutoff=CUTOFF, follow_up=730, hsct=False, landmark=56, **fields):
    """Survival outcomes of one hand-built patient, through the data validation."""
    frame, _ = validate_frame(rows_frame(fields), design, source="d.csv")
    rec = frame.to_dict("records")[0]
    return survival_patient(rec, cutoff, follow_up, censor_at_hsct=hsct, landmark_days=landmark)


def te(res):
    return None if res is None else (res["time"], res["event"], res["event_type"])


def test_alive_censored_at_last_contact(design):
    r = patient(design, enrolled_on="2026-01-01", last_contact_on="2026-03-02")
    assert te(r["os"]) == (60.0, 0, None)
    assert r["os"]["max_time"] == 180.0  # would have been followed to the cutoff (2026-06-30)
    assert r["rfs"] is None and r["efs_mrd"] is None  # no remission
    assert r["efs"] is None and r["efs_pending"]  # day 60 of 56: no assessment recorded (overdue)


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
    assert te(r["efs_mrd"]) == (60.0, 1, "relapse")
    assert r["efs_mrd"]["day0"] is False
    assert te(r["efs"]) == (90.0, 1, "relapse")  # ELN 2022: from enrolment


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
    assert r["rfs"] is None and r["efs_mrd"] is None
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
    assert te(r["efs_mrd"]) == (0.0, 1, "mrd_positive") and r["efs_mrd"]["day0"]
    assert te(r["rfs"]) == (90.0, 0, None)


def test_mrd_unknown_is_excluded_from_efs_only(design):
    r = patient(design, enrolled_on="2026-01-01", best_response="CR", response_on="2026-01-31")
    assert r["efs_mrd"] is None and r["efs_mrd_excluded"]
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
    assert te(r["rfs"]) == (0.0, 0, None) and te(r["efs_mrd"]) == (0.0, 0, None)
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
    efs = sv.summary("efs", "arm3")  # ELN 2022: every patient, from enrolment
    # the death on day 45 without CR/CRi: a treatment failure on day 1, not a death on day 45
    assert (efs["n"], efs["events"], efs["treatment_failures"], efs["n_pending"]) == (4, 2, 1, 0)
    assert efs["events_by_type"] == {"treatment_failure": 1, "relapse": 1, "death": 0}
    assert efs["exposure_days"] == 90 + 2 * 151  # the point-mass failure has no time at risk
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
        "max_follow_up_days": None,
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
    # S(5) = 0.5 on a flat segment to the next event at 10: R's survfit takes the midpoint
    assert km_median(np.array([5.0, 10.0]), np.array([1, 1])) == 7.5
    assert km_median(np.array([5.0, 10.0]), np.array([1, 0])) == 5.0  # flat at 0.5 to the end


# ----------------------------------------------------------------------------- ELN 2022 EFS
def test_eln_efs_no_remission_by_the_landmark_is_an_event_on_day_1(design):
    # assessed NR on day 40, alive; landmark 56 has passed by the cutoff
    r = patient(
        design,
        enrolled_on="2026-01-01",
        best_response="NR",
        response_on="2026-02-10",
        last_contact_on="2026-06-01",
    )
    assert te(r["efs"]) == (1.0, 1, "treatment_failure") and r["efs"]["day0"]
    assert r["rfs"] is None  # not a responder


def test_eln_efs_pending_before_the_landmark(design):
    # NR on day 40; with a 180-day landmark (non-intensive) the response can still come
    kw = dict(
        enrolled_on="2026-03-01", best_response="NR", response_on="2026-04-10", last_contact_on="2026-06-01"
    )
    r = patient(design, landmark=180, **kw)
    assert r["efs"] is None and r["efs_pending"]
    assert te(patient(design, landmark=56, **kw)["efs"]) == (1.0, 1, "treatment_failure")


def test_eln_efs_assessment_dated_after_the_cutoff_is_not_known_yet(design):
    # NR assessed on day 200 (after the cutoff, day 180), landmark 56 passed, alive at the
    # cutoff: not known yet, pending (overdue) as for CRc in adaptive.derive, not a failure
    kw = dict(
        enrolled_on="2026-01-01", best_response="NR", response_on="2026-07-20", last_contact_on="2026-07-20"
    )
    r = patient(design, cutoff=date(2026, 6, 30), **kw)
    assert r["efs"] is None and r["efs_pending"]
    assert derived_for(design, kw).patients["crc"].isna().all()
    late = patient(design, cutoff=date(2026, 7, 31), **kw)
    assert te(late["efs"]) == (1.0, 1, "treatment_failure")


def test_eln_efs_cr_after_the_landmark_is_a_treatment_failure(design):
    kw = dict(
        enrolled_on="2026-01-01",
        best_response="CR",
        response_on="2026-04-11",
        mrd_negative="true",
        last_contact_on="2026-06-01",
    )  # CR on day 100
    assert te(patient(design, landmark=56, **kw)["efs"]) == (1.0, 1, "treatment_failure")
    # with a 180-day landmark the same CR counts: censored at the last contact (day 151)
    assert te(patient(design, landmark=180, **kw)["efs"]) == (151.0, 0, None)


def test_eln_efs_death_before_the_landmark_is_a_treatment_failure_on_day_1(design):
    # died on day 20 without CR/CRi: no CR by the landmark; dating it at death would score this
    # patient better than a non-responder alive at the landmark
    r = patient(design, landmark=180, enrolled_on="2026-01-01", death_on="2026-01-21")
    assert te(r["efs"]) == (1.0, 1, "treatment_failure")
    # pending while the landmark has not passed, whatever happened
    r = patient(
        design, landmark=180, cutoff=date(2026, 5, 1), enrolled_on="2026-01-01", death_on="2026-01-21"
    )
    assert r["efs"] is None and r["efs_pending"]


def test_eln_efs_alive_not_evaluable_is_censored_on_day_1(design):
    r = patient(
        design,
        enrolled_on="2026-01-01",
        best_response="NE",
        response_on="2026-02-10",
        last_contact_on="2026-06-01",
    )
    assert te(r["efs"]) == (1.0, 0, None) and not r["efs"]["day0"]
    r = patient(
        design, enrolled_on="2026-01-01", best_response="NE", response_on="2026-02-10", death_on="2026-04-01"
    )
    assert te(r["efs"]) == (1.0, 1, "treatment_failure")


def test_eln_efs_relapse_and_censoring_from_enrolment(design):
    r = patient(
        design,
        enrolled_on="2026-01-01",
        best_response="CRi",
        response_on="2026-02-01",
        mrd_negative="false",
        relapse_on="2026-05-01",
    )
    assert te(r["efs"]) == (120.0, 1, "relapse")
    r = patient(
        design,
        enrolled_on="2026-01-01",
        best_response="CR",
        response_on="2026-02-01",
        last_contact_on="2026-06-20",
    )
    assert te(r["efs"]) == (170.0, 0, None)  # MRD unknown does not matter for ELN EFS


def test_eln_efs_per_arm_landmarks_through_derive(design):
    import dataclasses

    arms = tuple(
        dataclasses.replace(a, response_landmark_days=180) if a.id == "arm5" else a for a in design.arms
    )
    d5 = dataclasses.replace(design, arms=arms)
    row = {
        "enrolled_on": "2026-03-01",
        "best_response": "NR",
        "response_on": "2026-04-10",
        "last_contact_on": "2026-06-01",
        "intensive_eligible": "false",
    }
    d = derived_for(d5, {**row, "arm": "arm5"}, {**row, "arm": "arm3", "intensive_eligible": "true"})
    assert d.survival.summary("efs", "arm5")["n_pending"] == 1
    assert d.survival.summary("efs", "arm3")["treatment_failures"] == 1
    # the binary endpoints follow the same landmark: pending in arm5, a failure in arm3
    assert d.counts["crc"]["arm5"].n_pending == 1 and d.counts["crc"]["arm5"].n_evaluable == 0
    assert d.counts["crc"]["arm3"].n_evaluable == 1 and d.counts["crc"]["arm3"].responders == 0


# ----------------------------------------------------------------------------- competing risks
def test_cir_with_a_competing_death_by_hand(design):
    d = derived_for(
        design,
        # four responders (CR day 30): relapse day 90 (RFS 60), death in remission day 60 (RFS 30),
        # censored at RFS 121 and RFS 150
        {
            "best_response": "CR",
            "response_on": "2026-01-31",
            "relapse_on": "2026-04-01",
            "last_contact_on": "2026-06-01",
        },
        {"best_response": "CR", "response_on": "2026-01-31", "death_on": "2026-03-02"},
        {"best_response": "CRi", "response_on": "2026-01-31", "last_contact_on": "2026-06-01"},
        {"best_response": "CR", "response_on": "2026-01-31", "last_contact_on": "2026-06-30"},
    )
    cir = d.survival.competing_summary("cir", "arm3")
    assert (cir["n"], cir["events"], cir["competing"]) == (4, 1, 1)
    assert cir["competing_at"][180] is None  # beyond the last follow-up
    f0 = d.survival.competing["cir"]
    nrm = cumulative_incidence(f0["time"].to_numpy(), f0["cause"].to_numpy(), horizons=(45,))
    assert nrm["competing_at"][45]["estimate"] == pytest.approx(0.25)  # the death in remission at 30
    # AJ by hand: S(t-) = 3/4 after the death at 30; relapse at 60 with 3 at risk: 3/4 * 1/3
    assert cir["at"][180] is None  # beyond the last follow-up (150 days)
    f = d.survival.competing["cir"]
    res = cumulative_incidence(f["time"].to_numpy(), f["cause"].to_numpy(), horizons=(45, 100, 150))
    assert res["at"][45]["estimate"] == pytest.approx(0.0)
    assert res["at"][100]["estimate"] == pytest.approx(0.25)
    assert res["at"][150]["estimate"] == pytest.approx(0.25)


def test_hsct_bridging_by_hand(design):
    d = derived_for(
        design,
        {
            "best_response": "CR",
            "response_on": "2026-01-31",
            "hsct_on": "2026-03-02",
            "last_contact_on": "2026-06-30",
        },  # transplant on day 60
        {"death_on": "2026-01-21"},  # died on day 20 before any transplant
        {"best_response": "CR", "response_on": "2026-01-31", "last_contact_on": "2026-06-30"},
        {
            "best_response": "NR",
            "response_on": "2026-02-20",
            "hsct_on": "2026-04-11",
            "last_contact_on": "2026-06-30",
        },  # transplant on day 100
    )
    h = d.survival.competing_summary("hsct", "arm3")
    assert (h["n"], h["events"], h["competing"]) == (4, 2, 1)
    assert h["proportion_transplanted"] == 0.5 and h["median_days_to_transplant"] == 80.0
    # after the death (1/4) three remain; transplants at 60 and 100: 3/4 * (1/3 + 1/2 * 2/3) = 1/2
    assert h["at"][180]["estimate"] == pytest.approx(0.5)


def test_cumulative_incidence_matches_lifelines_aalen_johansen():
    from lifelines import AalenJohansenFitter

    rng = np.random.default_rng(3)
    n = 300
    t1, t2, c = rng.exponential(300, n), rng.exponential(500, n), rng.uniform(50, 900, n)
    time = np.minimum(np.minimum(t1, t2), c)
    cause = np.where(time == c, 0, np.where(t1 < t2, 1, 2))
    horizons = (90.0, 180.0, 365.0, 600.0)
    ours = cumulative_incidence(time, cause, horizons)
    aj = AalenJohansenFitter(calculate_variance=False).fit(time, cause, event_of_interest=1)
    cd = aj.cumulative_density_.iloc[:, 0]
    for h in horizons:
        ref = float(cd[cd.index <= h].iloc[-1])
        assert ours["at"][int(h)]["estimate"] == pytest.approx(ref, abs=1e-6)


def test_cumulative_incidence_edge_cases():
    assert cumulative_incidence(np.array([]), np.array([]))["at"][180] is None
    res = cumulative_incidence(np.array([10.0, 400.0]), np.array([0, 0]))
    assert res["at"][180]["estimate"] == 0.0 and res["events"] == 0
    # no competing event at all: the Kaplan-Meier complement
    res = cumulative_incidence(np.array([10.0, 20.0, 400.0, 500.0]), np.array([1, 0, 0, 1]), (100,))
    assert res["at"][100]["estimate"] == pytest.approx(0.25)
    assert res["competing_at"][100]["estimate"] == 0.0
    # only the competing event: the event's curve is zero, the competing one the KM complement
    res = cumulative_incidence(np.array([10.0, 20.0, 400.0, 500.0]), np.array([2, 0, 0, 2]), (100,))
    assert res["at"][100]["estimate"] == 0.0 and res["competing_at"][100]["estimate"] == pytest.approx(0.25)


# ----------------------------------------------------------------------------- treatment start
def test_mortality_from_treatment_start_in_treated_patients(design):
    import pandas as pd

    rows = rows_frame(
        {"enrolled_on": "2026-01-01", "death_on": "2026-02-05"},  # day 35 from enrolment
        {"enrolled_on": "2026-01-01", "last_contact_on": "2026-06-01"},  # never treated
        {"enrolled_on": "2026-06-20"},  # not treated yet
    )
    rows["treatment_start_on"] = pd.Series(["2026-01-10", "", ""])  # death on treatment day 26
    frame, warns = validate_frame(rows, design, source="d.csv")
    d = derive(PatientTable(frame=frame, path=None, sha256="x", warnings=warns), design, CUTOFF)
    c30 = d.counts["mortality_30d"]["arm3"]
    assert (c30.n_evaluable, c30.responders, c30.n_not_treated, c30.n_pending) == (1, 1, 2, 0)
    # without the column the same death is on day 35: no 30-day event; two evaluable alive
    d0 = derived_for(
        design,
        {"enrolled_on": "2026-01-01", "death_on": "2026-02-05"},
        {"enrolled_on": "2026-01-01", "last_contact_on": "2026-06-01"},
    )
    c = d0.counts["mortality_30d"]["arm3"]
    assert (c.n_evaluable, c.responders, c.n_not_treated) == (2, 0, 0)


def test_treatment_start_before_enrolment_is_refused(design):
    from adaptive.exceptions import DataError

    rows = rows_frame({"enrolled_on": "2026-01-10"})
    rows["treatment_start_on"] = ["2026-01-05"]
    with pytest.raises(DataError, match=r"column 'treatment_start_on'.*before enrolled_on"):
        validate_frame(rows, design, source="d.csv")
