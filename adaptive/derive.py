"""Endpoints derived from patient rows *as of a data cutoff*.

Rules (also in README.md, "Endpoint definitions"):

* A patient counts only if ``enrolled_on <= cutoff``. Any date after the cutoff is treated as not
  yet known: a death after the cutoff is ignored (the patient was alive at the cutoff), a
  response dated after the cutoff had not happened yet.
* **Response endpoints** (CRc = CR + CRi, ORR = CR + CRi + PR) are *responses by the arm's
  response landmark* (``arms.<arm>.response_landmark_days`` after enrolment; ELN 2022: about two
  cycles for intensive, about 180 days for non-intensive regimens). A patient counts once the
  landmark has passed, **whatever the outcome**: a *responder* with a qualifying response dated on
  or before the landmark, a *non-responder* when assessed without one (PR/NR/NE for CRc; NR/NE
  for ORR; NE counts as failure, intention to treat), with a response dated only after the
  landmark (flagged as a late response), or when they died without one. Before the landmark every
  patient is *pending*, responders and deaths included: counting outcomes as soon as they happen
  would let the *timing* of an outcome decide whether it is counted at an interim look (a
  responder on day 30 counted, a non-responder of the same day only on day 180), which biases the
  interim estimate upwards (simulated: the type I error of single-arm graduation rose from 3-4% to
  5.4-6.8%). A patient past the landmark with nothing recorded is pending and flagged as *overdue*.
* **MRD-negative CRc**: a CRc responder with ``mrd_negative = true`` is a responder; with
  ``false`` or a non-responder, a failure; a CRc responder with MRD still blank is pending.
* **30/60-day mortality**: an event when death is recorded on or before the cutoff and at most
  30 (60) days after enrolment; no event when the patient is known alive at day 30 (60): a death,
  last contact, response, relapse or transplant dated on/after that day (last contacts after
  the cutoff count as alive at the cutoff). Pending while the day has not been reached; when the
  day has passed but the last record is earlier, the patient is *lost* (not evaluable) and
  flagged in the warnings. When the export has a ``treatment_start_on`` column the days run from
  treatment start and only treated patients count (the registry's "patients treated"); a
  patient not treated as of the cutoff is counted in ``n_not_treated``, not in the denominator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from adaptive.config import Design
from adaptive.data import TREATMENT_START_COLUMN, PatientTable
from adaptive.exceptions import DataError, Problem
from adaptive.survival_data import SurvivalDerived, derive_survival

RESPONSE_SETS = {"crc": ("CR", "CRi"), "orr": ("CR", "CRi", "PR")}
MORTALITY_DAYS = {"mortality_30d": 30, "mortality_60d": 60}
#: endpoints whose pending patients include the overdue ones (no response assessment recorded)
OVERDUE_ENDPOINTS = (*RESPONSE_SETS, "mrd_negative_cr")


@dataclass(frozen=True)
class ArmCounts:
    """Counts of one binary endpoint in one arm."""

    n_evaluable: int
    responders: int
    n_pending: int
    n_lost: int = 0
    #: patients enrolled but not treated as of the cutoff (early mortality from treatment start)
    n_not_treated: int = 0
    #: of ``n_pending``, the patients past the arm's landmark with no assessment recorded
    #: (overdue: a missing outcome, not merely a future one); response endpoints only
    n_overdue: int = 0


@dataclass(frozen=True)
class DerivedData:
    """Everything an interim look takes from the data, as of the cutoff."""

    cutoff: date
    patients: pd.DataFrame  # one row per enrolled patient: subject_id, arm, <endpoint> (1/0/NA)
    n_enrolled: dict[str, int]
    counts: dict[str, dict[str, ArmCounts]]  # endpoint -> arm -> counts
    warnings: tuple[Problem, ...] = field(default_factory=tuple)
    #: OS / RFS / EFS per patient and the remission span (:mod:`adaptive.survival_data`)
    survival: SurvivalDerived | None = None

    def arrays(self, endpoint: str, arms: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """``(n_evaluable, responders)`` arrays in the order of ``arms``."""
        c = self.counts[endpoint]
        n = np.array([c[a].n_evaluable if a in c else 0 for a in arms], dtype=np.int64)
        y = np.array([c[a].responders if a in c else 0 for a in arms], dtype=np.int64)
        return n, y


def _known(d: date | None, cutoff: date) -> date | None:
    return d if d is not None and d <= cutoff else None


def derive_patient(rec: dict, cutoff: date, landmark_days: int, from_treatment_start: bool = False) -> dict:
    """Endpoint values of one patient as of ``cutoff``.

    Parameters
    ----------
    landmark_days
        The arm's response landmark: the response endpoints are responses by this day after
        enrolment, and a patient counts for them once it has passed (pending before).
    from_treatment_start
        Whether early mortality runs from ``treatment_start_on`` (treated patients only).

    Returns
    -------
    dict
        ``{endpoint: 1 | 0 | None}`` plus ``"_flags"``: a list of ``"overdue"``/``"lost_30d"``/
        ``"not_treated"``...
    """
    enr: date = rec["enrolled_on"]
    days_in = (cutoff - enr).days
    death = _known(rec["death_on"], cutoff)
    rdate = rec["response_on"]
    resp = rec["best_response"]
    flags = []
    # --- response by the arm's landmark, counted once the landmark has passed (whatever the outcome)
    landmark_day = enr + timedelta(days=landmark_days)
    landmark_passed = days_in >= landmark_days
    if resp is None or (rdate is not None and rdate > cutoff):
        known = None
    elif rdate is None and resp not in ("NR", "NE"):
        known = None  # (a CR/CRi/PR always has a date; validated)
    else:
        known = resp
    late = known in RESPONSE_SETS["orr"] and rdate is not None and rdate > landmark_day
    if landmark_passed and known is None and death is None:
        flags.append("overdue")
    if landmark_passed and late:
        flags.append("late_response")
    out: dict = {}
    for ep, ok in RESPONSE_SETS.items():
        if not landmark_passed:
            out[ep] = None  # pending until the landmark, whatever has happened (see the docstring)
        elif known in ok and not late:
            out[ep] = 1
        elif known is not None or death is not None:
            out[ep] = 0  # assessed without the response by the landmark, or died without it
        else:
            out[ep] = None  # overdue: nothing recorded
    if out["crc"] == 1:
        mrd = rec["mrd_negative"]
        out["mrd_negative_cr"] = None if mrd is None else int(mrd)
        if mrd is None:
            flags.append("mrd_missing")
    else:
        out["mrd_negative_cr"] = out["crc"]
    # --- early mortality, from enrolment or from treatment start
    origin: date | None = enr
    if from_treatment_start:
        origin = _known(rec.get("treatment_start_on"), cutoff)
    alive_dates = [
        _known(rec[c], cutoff) for c in ("response_on", "relapse_on", "hsct_on", "last_contact_on")
    ]
    if rec["last_contact_on"] is not None and rec["last_contact_on"] > cutoff:
        alive_dates.append(cutoff)
    if rec["death_on"] is not None and rec["death_on"] > cutoff:
        alive_dates.append(cutoff)
    alive_until = max([d for d in alive_dates if d is not None], default=enr)
    for ep, days in MORTALITY_DAYS.items():
        if origin is None:
            out[ep] = None
            continue
        day = origin + timedelta(days=days)
        if death is not None:
            out[ep] = int(death <= day)
        elif alive_until >= day:
            out[ep] = 0
        else:
            out[ep] = None
            if cutoff >= day:
                flags.append(f"lost_{days}d")
    if origin is None:
        flags.append("not_treated")
    out["_flags"] = flags
    return out


def check_enrolled(table: PatientTable, cutoff: date) -> None:
    """Refuse a cutoff before the first enrolment (no patient to analyse).

    Raises
    ------
    DataError
        Naming the file, the cutoff and the first enrolment date.
    """
    dates = [d for d in table.frame["enrolled_on"] if d is not None]
    if not any(d <= cutoff for d in dates):
        first = f"; the first enrolment is on {min(dates)}" if dates else ""
        raise DataError(
            [Problem(table.source, f"no patient was enrolled on or before the cutoff {cutoff}{first}.")]
        )


def derive(table: PatientTable, design: Design, cutoff: date) -> DerivedData:
    """Derive every binary endpoint per patient and per arm as of ``cutoff``.

    Public as ``adaptive.derive_endpoints``: what an interim look takes from the data, before any
    fit. Only patients enrolled on or before ``cutoff`` count, and a patient whose outcome is not
    yet known is pending (never a non-responder).

    Returns
    -------
    DerivedData
        ``patients`` (one row per enrolled patient: ``subject_id``, ``arm`` and each binary
        endpoint as 1 / 0 / missing), ``counts`` (endpoint -> arm -> :class:`ArmCounts`:
        evaluable, responders, pending, lost), ``n_enrolled`` per arm, ``warnings`` and the
        survival data (``survival``).

    Raises
    ------
    DataError
        When no patient was enrolled on or before ``cutoff`` (:func:`check_enrolled`).
    """
    check_enrolled(table, cutoff)
    frame = table.frame
    enrolled = frame[[d <= cutoff for d in frame["enrolled_on"]]]
    from_start = TREATMENT_START_COLUMN in frame.columns
    rows = []
    warnings: list[Problem] = []
    flag_text = {
        "overdue": "no response recorded although enrolled more than {landmark} days (the arm's "
        "response landmark) before the cutoff; counted as pending",
        "mrd_missing": "CR/CRi without MRD status; pending for MRD-negative CRc",
        "late_response": "response dated after the arm's response landmark ({landmark} days): counted "
        "as a failure for the response endpoints (a response by the landmark is the endpoint)",
        "lost_30d": "no record on or after day 30 and no death; not evaluable for 30-day mortality",
        "lost_60d": "no record on or after day 60 and no death; not evaluable for 60-day mortality",
    }
    latest = max(
        (
            d
            for c in ("enrolled_on", "response_on", "relapse_on", "death_on", "last_contact_on", "hsct_on")
            for d in frame[c]
            if d is not None
        ),
        default=cutoff,
    )
    if latest < cutoff:
        warnings.append(
            Problem(
                table.source,
                f"the cutoff {cutoff} is after the latest date in the data ({latest}): the export seems "
                "to end earlier, so patients will look overdue or lost. Use a cutoff on or before "
                f"{latest} unless the data really are complete to {cutoff}.",
            )
        )
    lost: dict[tuple[str, str], int] = {}
    not_treated: dict[str, int] = {}
    overdue: dict[str, int] = {}
    for rec in enrolled.to_dict("records"):
        landmark = design.arm(rec["arm"]).response_landmark_days
        d = derive_patient(rec, cutoff, landmark, from_start)
        for f in d.pop("_flags"):
            if f == "not_treated":
                not_treated[rec["arm"]] = not_treated.get(rec["arm"], 0) + 1
                continue
            if f == "overdue":
                overdue[rec["arm"]] = overdue.get(rec["arm"], 0) + 1
            warnings.append(
                Problem(
                    f"{table.source} {rec['row_label']}, subject {rec['subject_id']}",
                    flag_text[f].format(landmark=landmark),
                )
            )
            if f.startswith("lost_"):
                key = (f"mortality_{f.removeprefix('lost_')}", rec["arm"])
                lost[key] = lost.get(key, 0) + 1
        rows.append({"subject_id": rec["subject_id"], "arm": rec["arm"], **d})
    cols = ["subject_id", "arm", *RESPONSE_SETS, "mrd_negative_cr", *MORTALITY_DAYS]
    patients = pd.DataFrame(rows, columns=cols)
    n_enrolled = {a: int((patients["arm"] == a).sum()) for a in design.arm_ids}
    counts: dict[str, dict[str, ArmCounts]] = {}
    for ep in design.endpoints:
        per_arm = {}
        for a in design.arm_ids:
            vals = patients.loc[patients["arm"] == a, ep]
            known = vals.dropna()
            n_lost = lost.get((ep, a), 0)
            n_untreated = not_treated.get(a, 0) if ep in MORTALITY_DAYS else 0
            per_arm[a] = ArmCounts(
                n_evaluable=int(len(known)),
                responders=int(known.sum()) if len(known) else 0,
                n_pending=int(len(vals) - len(known)) - n_lost - n_untreated,
                n_lost=n_lost,
                n_not_treated=n_untreated,
                n_overdue=overdue.get(a, 0) if ep in OVERDUE_ENDPOINTS else 0,
            )
        counts[ep] = per_arm
    return DerivedData(
        cutoff=cutoff,
        patients=patients,
        n_enrolled=n_enrolled,
        counts=counts,
        warnings=tuple(warnings),
        survival=derive_survival(
            enrolled,
            design.arm_ids,
            cutoff,
            design.assessment.follow_up_days,
            censor_at_hsct=design.survival is not None and design.survival.censor_at_hsct,
            landmark_days={a.id: a.response_landmark_days for a in design.arms},
            endpoints=tuple(design.survival.endpoints) if design.survival is not None else (),
        ),
    )
