"""Time-to-event endpoints (OS, RFS, EFS) and the remission span, derived *as of a data cutoff*.

Definitions (also in README.md, "Endpoint definitions", and :data:`adaptive.endpoints.SURVIVAL_ENDPOINTS`):

* **OS**: every patient enrolled on or before the cutoff; from enrolment to death from any cause.
* **RFS**: patients whose best response CR or CRi is dated on or before the cutoff; from the
  response date to relapse or death, whichever is first (ELN 2022's definition).
* **EFS**: the RFS patients whose MRD status is known; from the response date to relapse, death or
  an *MRD-positive remission*, whichever is first. An MRD-positive remission is an event on the
  response date (day 0): the remission is not free of measurable residual disease. This mirrors
  ELN 2022 (Döhner et al., Blood 2022;140:1345, Table 9), whose EFS counts not reaching remission as
  an event on day 1 and whose response criteria make CR without MRD a category of its own. It is
  our protocol event, chosen because it is the one further event the data export records; the
  model gives day-0 events a point mass of their own (:class:`models.survival.PiecewiseExponential`).
  A CR/CRi whose MRD status is blank is left out of EFS (complete case, as for MRD-negative CRc)
  and counted in ``n_excluded``.

Follow-up and censoring, for every endpoint:

* Dates after the cutoff are unknown. A death or last contact dated after the cutoff shows that
  the patient was alive (and, without a relapse on record, relapse-free) at the cutoff.
* Follow-up ends ``assessment.follow_up_days`` (730) after *enrolment* (the protocol's window, the
  same for every endpoint) or at the cutoff, whichever is earlier. An event after that is not
  counted; the patient is censored at the end of the window.
* Without an event, a patient is censored at the last date known alive (and relapse-free): the
  latest response, relapse, transplant or last contact on or before the cutoff, or the cutoff
  itself when a death or last contact after it is on record (as for early mortality).
* With ``survival.censor_at_hsct: true`` (a sensitivity analysis; default off) follow-up is also
  censored at an allogeneic transplant on or before the cutoff. An event dated on the transplant
  day still counts; a transplant dated before the response date leaves an RFS/EFS patient with no
  time at risk.
* Times are whole days between dates. An event on day 0 (other than EFS's MRD-positive remission)
  is placed at half a day, the usual convention, so that it has some time at risk.

The **remission span**, the protocol's third primary measure, is the time from the first
patient's remission (CR/CRi response date on or before the cutoff) to the last one's, per arm and
for the trial: it shows how fast the evidence accrues.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from adaptive.endpoints import SURVIVAL_ENDPOINTS

REMISSION = ("CR", "CRi")
#: per-patient columns of each endpoint's frame
TIME_COLUMNS = ("subject_id", "arm", "time", "event", "day0", "event_type", "censored_at_hsct")


def _known(d: date | None, cutoff: date) -> date | None:
    return d if d is not None and d <= cutoff else None


def last_known_alive(rec: Mapping, cutoff: date) -> date:
    """The last date the patient is known alive as of ``cutoff`` (enrolment at the earliest).

    The latest response, relapse, transplant or last contact dated on or before the cutoff; the
    cutoff itself when a last contact or a death is dated after it (the same rule as the
    early-mortality endpoints in :mod:`adaptive.derive`).
    """
    dates = [_known(rec[c], cutoff) for c in ("response_on", "relapse_on", "hsct_on", "last_contact_on")]
    for c in ("last_contact_on", "death_on"):
        if rec[c] is not None and rec[c] > cutoff:
            dates.append(cutoff)
    return max([d for d in dates if d is not None], default=rec["enrolled_on"])


def _time_to_event(
    origin: date,
    events: Iterable[tuple[date | None, str]],
    at_risk_until: date,
    obs_end: date,
    hsct: date | None,
) -> dict:
    """Time (days) and status of one patient for one endpoint.

    ``events`` are candidate (date, type) pairs, already restricted to dates on or before the
    cutoff; the earliest counts when it is on or before ``obs_end`` (window and cutoff) and, when
    censoring at transplant, on or before ``hsct``. Otherwise the patient is censored at the
    earliest of ``at_risk_until``, ``obs_end`` and ``hsct``.
    """
    known = sorted((d, t) for d, t in events if d is not None)
    limit = obs_end if hsct is None else min(obs_end, hsct)
    if known and known[0][0] <= limit:
        d, kind = known[0]
        t = float((d - origin).days)
        day0 = kind == "mrd_positive"
        if t == 0.0 and not day0:
            t = 0.5
        return {"time": t, "event": 1, "day0": day0, "event_type": kind, "censored_at_hsct": False}
    end = limit if known else min(at_risk_until, limit)  # an event after the limit: event-free until it
    by_hsct = hsct is not None and end == hsct and hsct < min(at_risk_until, obs_end)
    if known and hsct is not None and known[0][0] > hsct and hsct <= obs_end:
        by_hsct = True
    return {
        "time": float(max((end - origin).days, 0)),
        "event": 0,
        "day0": False,
        "event_type": None,
        "censored_at_hsct": bool(by_hsct),
    }


def survival_patient(
    rec: Mapping, cutoff: date, follow_up_days: int, censor_at_hsct: bool = False
) -> dict[str, dict | None]:
    """OS, RFS and EFS of one patient as of ``cutoff``.

    Returns
    -------
    dict
        ``{endpoint: None | {time, event, day0, event_type, censored_at_hsct}}``; ``None`` when the
        patient is not in the endpoint's population (no CR/CRi by the cutoff; for EFS also an
        unknown MRD status: see ``"efs_excluded"``), plus ``"efs_excluded": bool``.
    """
    enr: date = rec["enrolled_on"]
    obs_end = min(cutoff, enr + timedelta(days=follow_up_days))
    death = _known(rec["death_on"], cutoff)
    relapse = _known(rec["relapse_on"], cutoff)
    hsct = _known(rec["hsct_on"], cutoff) if censor_at_hsct else None
    alive = last_known_alive(rec, cutoff)
    out: dict = {"os": _time_to_event(enr, [(death, "death")], alive, obs_end, hsct)}
    rdate = _known(rec["response_on"], cutoff)
    in_remission = rec["best_response"] in REMISSION and rdate is not None
    out["rfs"] = out["efs"] = None
    out["efs_excluded"] = False
    if in_remission:
        rfs_events = [(relapse, "relapse"), (death, "death")]
        out["rfs"] = _time_to_event(rdate, rfs_events, alive, obs_end, hsct)
        mrd = rec["mrd_negative"]
        if mrd is None:
            out["efs_excluded"] = True
        else:
            efs_events = rfs_events + ([(rdate, "mrd_positive")] if mrd is False else [])
            out["efs"] = _time_to_event(rdate, efs_events, alive, obs_end, hsct)
    return out


def km_median(time: np.ndarray, event: np.ndarray) -> float | None:
    """Kaplan-Meier median: the first time at which the product-limit estimate is 0.5 or below.

    ``None`` when the curve stays above 0.5 (median not reached) or there are no patients.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=bool)
    if time.size == 0:
        return None
    s = 1.0
    for t in np.unique(time[event]):
        at_risk = np.sum(time >= t)
        d = np.sum(event & (time == t))
        s *= 1.0 - d / at_risk
        if s <= 0.5 + 1e-12:
            return float(t)
    return None


@dataclass(frozen=True)
class SurvivalDerived:
    """Per-patient times of every survival endpoint as of the cutoff, and the remission span.

    ``times[endpoint]`` has one row per patient in the endpoint's population with the columns
    :data:`TIME_COLUMNS`; ``n_excluded[endpoint][arm]`` counts patients left out (EFS: MRD status
    unknown).
    """

    cutoff: date
    follow_up_days: int
    censor_at_hsct: bool
    times: Mapping[str, pd.DataFrame]
    n_excluded: Mapping[str, Mapping[str, int]]
    remission_span: Mapping
    arms: tuple[str, ...] = field(default_factory=tuple)

    def arm_times(self, endpoint: str, arm: str) -> pd.DataFrame:
        f = self.times[endpoint]
        return f[f["arm"] == arm]

    def n_events(self, endpoint: str) -> dict[str, int]:
        """Events per arm (every arm of the design, zero when none)."""
        f = self.times[endpoint]
        return {a: int(f.loc[f["arm"] == a, "event"].sum()) for a in self.arms}

    def summary(self, endpoint: str, arm: str) -> dict:
        """Counts for the report: patients, events (by type), exposure, Kaplan-Meier median."""
        f = self.arm_times(endpoint, arm)
        types = f.loc[f["event"] == 1, "event_type"].value_counts()
        out = {
            "n": int(len(f)),
            "events": int(f["event"].sum()),
            "events_by_type": {k: int(types.get(k, 0)) for k in _EVENT_TYPES[endpoint]},
            "censored": int(len(f) - f["event"].sum()),
            "censored_at_hsct": int(f["censored_at_hsct"].sum()),
            "exposure_days": float(f["time"].sum()),
            "km_median_days": km_median(f["time"].to_numpy(), f["event"].to_numpy()),
        }
        if endpoint == "efs":
            out["day0_events"] = int(f["day0"].sum())
            out["n_excluded"] = int(self.n_excluded.get(endpoint, {}).get(arm, 0))
        return out


_EVENT_TYPES = {"os": ("death",), "rfs": ("relapse", "death"), "efs": ("mrd_positive", "relapse", "death")}


def remission_span(patients: pd.DataFrame, arms: Iterable[str], cutoff: date) -> dict:
    """First and last remission (CR/CRi) date on or before ``cutoff``, per arm and for the trial."""

    def span(dates: list[date]) -> dict:
        if not dates:
            return {
                "n_remissions": 0,
                "first_remission_on": None,
                "last_remission_on": None,
                "span_days": None,
            }
        first, last = min(dates), max(dates)
        return {
            "n_remissions": len(dates),
            "first_remission_on": first.isoformat(),
            "last_remission_on": last.isoformat(),
            "span_days": (last - first).days,
        }

    rem = patients[
        [
            r in REMISSION and d is not None and d <= cutoff
            for r, d in zip(patients["best_response"], patients["response_on"], strict=True)
        ]
    ]
    return {
        "definition": "Time from the first patient's remission (CR/CRi response date) to the last "
        "patient's, among remissions dated on or before the cutoff; the protocol's third primary "
        "measure (how fast the evidence accrues).",
        "trial": span(list(rem["response_on"])),
        "by_arm": {a: span(list(rem.loc[rem["arm"] == a, "response_on"])) for a in arms},
    }


def derive_survival(
    enrolled: pd.DataFrame,
    arms: tuple[str, ...],
    cutoff: date,
    follow_up_days: int,
    censor_at_hsct: bool = False,
) -> SurvivalDerived:
    """Derive OS, RFS and EFS per patient and the remission span.

    Parameters
    ----------
    enrolled
        Validated patient rows (:class:`adaptive.data.PatientTable` frame) already restricted to
        patients enrolled on or before ``cutoff``.
    arms
        The design's arm ids (for per-arm counts, in order).
    """
    rows: dict[str, list[dict]] = {ep: [] for ep in SURVIVAL_ENDPOINTS}
    excluded = {ep: dict.fromkeys(arms, 0) for ep in SURVIVAL_ENDPOINTS}
    for rec in enrolled.to_dict("records"):
        res = survival_patient(rec, cutoff, follow_up_days, censor_at_hsct)
        if res.pop("efs_excluded"):
            excluded["efs"][rec["arm"]] = excluded["efs"].get(rec["arm"], 0) + 1
        for ep in SURVIVAL_ENDPOINTS:
            if res[ep] is not None:
                rows[ep].append({"subject_id": rec["subject_id"], "arm": rec["arm"], **res[ep]})
    times = {}
    for ep, recs in rows.items():
        f = pd.DataFrame(recs, columns=list(TIME_COLUMNS))
        times[ep] = f.astype(
            {"time": float, "event": np.int64, "day0": bool, "censored_at_hsct": bool}
        ).reset_index(drop=True)
    return SurvivalDerived(
        cutoff=cutoff,
        follow_up_days=follow_up_days,
        censor_at_hsct=censor_at_hsct,
        times=times,
        n_excluded=excluded,
        remission_span=remission_span(enrolled, arms, cutoff),
        arms=tuple(arms),
    )
