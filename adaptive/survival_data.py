"""Time-to-event endpoints (OS, RFS, EFS) and the remission span, derived *as of a data cutoff*.

Definitions (also in README.md, "Endpoint definitions", and :data:`adaptive.endpoints.SURVIVAL_ENDPOINTS`):

* **OS**: every patient enrolled on or before the cutoff; from enrolment to death from any cause.
* **RFS**: patients whose best response CR or CRi is dated on or before the cutoff; from the
  response date to relapse or death, whichever is first (ELN 2022's definition).
* **EFS** (ELN 2022, Dohner et al., Blood 2022;140:1345, Table 9): every patient enrolled on or
  before the cutoff; from enrolment to treatment failure, relapse from CR/CRi, or death from any
  cause. *Treatment failure*, no CR/CRi by the arm's response landmark (a CR/CRi dated after the
  landmark, and a death before the landmark without CR/CRi, included), is an event on **day 1**;
  a patient alive with a response "not evaluable" (NE) is not known to be refractory and is
  censored on day 1. A patient counts once the arm's landmark has passed, whatever has
  happened by then (as for the response endpoints, :mod:`adaptive.derive`); before it, or past it
  with no assessment recorded (overdue), the patient is *pending*, left out of this look and
  counted in ``n_pending``. Leaving patients out by enrolment date alone does not bias the
  estimate; leaving out only those whose failure is not yet known would. The model gives the day-1
  failures a point mass of their own (:class:`models.survival.PiecewiseExponential`).
* **EFS-MRD** (``efs_mrd``, only when configured): this project's earlier responder endpoint,
  the RFS patients whose MRD status is known, from the response date to relapse, death or an
  MRD-positive remission (an event on day 0, the response date); a CR/CRi with MRD blank is left
  out (``n_excluded``). It conditions on response: descriptive, never a randomized comparison.
* **Competing risks** (descriptive, Aalen-Johansen): the cumulative incidence of relapse (CIR)
  in the RFS population with death without relapse competing, and bridging to transplant (HSCT)
  in every enrolled patient from enrolment with death before transplant competing.

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
* Times are whole days between dates. An event on day 0 (other than a point-mass event) is placed
  at half a day, the usual convention, so that it has some time at risk.

The **remission span** is the time from the first patient's remission (CR/CRi response date on
or before the cutoff) to the last one's, per arm and for the trial. In the registry it is the
*time frame* of the CRc outcome, not an endpoint: descriptive, it shows how fast evidence accrues.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # imported where used: statsmodels (with scipy.stats) costs ~0.5 s and pandas
    # ~0.2 s, and `adaptive simulate` reaches this module (TREATMENT_FAILURE_DAY) without
    # estimating any curve or building any frame
    import pandas as pd
    from statsmodels.duration.survfunc import SurvfuncRight

from adaptive.endpoints import CUMULATIVE_INCIDENCE_ENDPOINTS, SURVIVAL_ENDPOINTS

REMISSION = ("CR", "CRi")
#: event types that sit on a point mass at the origin (not from a continuous hazard)
POINT_MASS_EVENTS = ("mrd_positive", "treatment_failure")
#: the day ELN 2022 dates a treatment failure at
TREATMENT_FAILURE_DAY = 1.0
#: horizons (days) of the cumulative-incidence summaries
CI_HORIZONS = (180, 365, 730)
#: per-patient columns of each endpoint's frame
#: ``max_time``: days from the origin to the end of observation (cutoff or window), the time at which
#: the patient would have been censored without an event (the posterior predictive check uses it)
TIME_COLUMNS = ("subject_id", "arm", "time", "event", "day0", "event_type", "censored_at_hsct", "max_time")


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
        day0 = kind in POINT_MASS_EVENTS
        if t == 0.0 and not day0:
            t = 0.5
        return {
            "time": t,
            "event": 1,
            "day0": day0,
            "event_type": kind,
            "censored_at_hsct": False,
            "max_time": float(max((obs_end - origin).days, 0)),
        }
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
        "max_time": float(max((obs_end - origin).days, 0)),
    }


def _eln_efs(
    rec: Mapping, cutoff: date, landmark_days: int, alive: date, obs_end: date, hsct: date | None
) -> dict | None:
    """ELN 2022 EFS of one patient (see the module docstring); ``None`` when pending."""
    enr: date = rec["enrolled_on"]
    landmark = enr + timedelta(days=landmark_days)
    death = _known(rec["death_on"], cutoff)
    relapse = _known(rec["relapse_on"], cutoff)
    rdate = _known(rec["response_on"], cutoff)
    resp = rec["best_response"]
    if rec["response_on"] is not None and rec["response_on"] > cutoff:
        resp = None  # assessed after the cutoff: not known yet (as adaptive.derive.derive_patient)
    remission = resp in REMISSION and rdate is not None
    if cutoff < landmark:
        return None  # counted once the landmark has passed, whatever happened (as the responses)
    if remission and rdate <= landmark:
        return _time_to_event(enr, [(relapse, "relapse"), (death, "death")], alive, obs_end, hsct)
    day1 = {
        "time": TREATMENT_FAILURE_DAY,
        "censored_at_hsct": False,
        "max_time": float(max((obs_end - enr).days, 0)),
    }
    if resp == "NE" and death is None and not remission:
        # alive and not evaluable: not known to be refractory, censored on day 1 (ELN 2022)
        return {**day1, "event": 0, "day0": False, "event_type": None}
    assessed = resp is not None and (rdate is not None or resp in ("NR", "NE"))
    if remission or assessed or death is not None:
        # no CR/CRi by the landmark, alive or dead: treatment failure on day 1 (a death before the
        # landmark too: dating it at death would score a non-responder who died on day 170 better
        # than one alive on day 181)
        return {**day1, "event": 1, "day0": True, "event_type": "treatment_failure"}
    return None  # landmark not reached, or overdue: not known yet


def survival_patient(
    rec: Mapping,
    cutoff: date,
    follow_up_days: int,
    censor_at_hsct: bool = False,
    landmark_days: int = 56,
) -> dict[str, dict | None]:
    """OS, EFS (ELN 2022), RFS, EFS-MRD and time to transplant of one patient as of ``cutoff``.

    Returns
    -------
    dict
        ``{endpoint: None | {time, event, day0, event_type, censored_at_hsct}}`` for ``os``,
        ``efs``, ``rfs``, ``efs_mrd`` and ``hsct`` (time to transplant, death competing);
        ``None`` when the patient is not in the endpoint's population (RFS: no CR/CRi by the
        cutoff; EFS: pending, see ``"efs_pending"``; EFS-MRD: also an unknown MRD status, see
        ``"efs_mrd_excluded"``).
    """
    enr: date = rec["enrolled_on"]
    obs_end = min(cutoff, enr + timedelta(days=follow_up_days))
    death = _known(rec["death_on"], cutoff)
    relapse = _known(rec["relapse_on"], cutoff)
    hsct_on = _known(rec["hsct_on"], cutoff)
    hsct = hsct_on if censor_at_hsct else None
    alive = last_known_alive(rec, cutoff)
    out: dict = {"os": _time_to_event(enr, [(death, "death")], alive, obs_end, hsct)}
    out["efs"] = _eln_efs(rec, cutoff, landmark_days, alive, obs_end, hsct)
    out["efs_pending"] = out["efs"] is None
    out["hsct"] = _time_to_event(enr, [(hsct_on, "hsct"), (death, "death")], alive, obs_end, None)
    rdate = _known(rec["response_on"], cutoff)
    in_remission = rec["best_response"] in REMISSION and rdate is not None
    out["rfs"] = out["efs_mrd"] = None
    out["efs_mrd_excluded"] = False
    if in_remission:
        rfs_events = [(relapse, "relapse"), (death, "death")]
        out["rfs"] = _time_to_event(rdate, rfs_events, alive, obs_end, hsct)
        mrd = rec["mrd_negative"]
        if mrd is None:
            out["efs_mrd_excluded"] = True
        else:
            efs_events = rfs_events + ([(rdate, "mrd_positive")] if mrd is False else [])
            out["efs_mrd"] = _time_to_event(rdate, efs_events, alive, obs_end, hsct)
    return out


def _ci_at(times: np.ndarray, cinc: np.ndarray, se: np.ndarray, horizons, last: float) -> dict:
    """Cumulative incidence at each horizon with a log(-log) 95% interval (``None`` past ``last``)."""
    at: dict = {}
    for h in horizons:
        if h > last:
            at[int(h)] = None
            continue
        k = np.searchsorted(times, h, side="right") - 1
        if k < 0:
            at[int(h)] = {"estimate": 0.0, "ci95_low": None, "ci95_high": None}
            continue
        est, s = float(cinc[k]), float(se[k])
        if 0.0 < est < 1.0 and s > 0:
            z = 1.959963984540054 * s / (est * np.log(est))
            lo, hi = est ** np.exp(-z), est ** np.exp(z)
            at[int(h)] = {"estimate": est, "ci95_low": float(min(lo, hi)), "ci95_high": float(max(lo, hi))}
        else:
            at[int(h)] = {"estimate": est, "ci95_low": None, "ci95_high": None}
    return at


def cumulative_incidence(
    time: np.ndarray, cause: np.ndarray, horizons: Iterable[float] = CI_HORIZONS
) -> dict:
    """Aalen-Johansen cumulative incidence of cause 1 and of the competing cause 2 (0 censored).

    Computed with statsmodels' :class:`~statsmodels.duration.survfunc.CumIncidenceRight`;
    the 95% interval uses its standard error on the log(-log) scale (it stays inside (0, 1)).

    Returns
    -------
    dict
        ``{"n", "events", "competing", "at": {horizon: {"estimate", "ci95_low", "ci95_high"}},
        "competing_at": {...}}`` (``competing_at``: the competing cause, e.g. death without
        relapse); values are ``None`` when no patient is left or the horizon is beyond the last
        time.
    """
    horizons = tuple(horizons)
    time = np.asarray(time, dtype=float)
    cause = np.asarray(cause, dtype=int)
    out: dict = {"n": int(time.size), "events": int((cause == 1).sum()), "competing": int((cause == 2).sum())}
    if time.size == 0:
        out["at"] = {int(h): None for h in horizons}
        out["competing_at"] = {int(h): None for h in horizons}
        return out
    last = float(time.max())
    zero = {"estimate": 0.0, "ci95_low": None, "ci95_high": None}
    if not (cause > 0).any():
        out["at"] = {int(h): dict(zero) if h <= last else None for h in horizons}
        out["competing_at"] = {int(h): dict(zero) if h <= last else None for h in horizons}
        return out
    # statsmodels numbers the causes 1..max: a cause that never occurs gets a zero curve
    from statsmodels.duration.survfunc import CumIncidenceRight

    with np.errstate(divide="ignore", invalid="ignore"):
        f = CumIncidenceRight(time, cause)
    times = np.asarray(f.times, dtype=float)
    curves = {c: (f.cinc[c - 1], f.cinc_se[c - 1]) for c in range(1, len(f.cinc) + 1)}
    for key, c in (("at", 1), ("competing_at", 2)):
        if not (cause == c).any():
            out[key] = {int(h): dict(zero) if h <= last else None for h in horizons}
        else:
            out[key] = _ci_at(times, *curves[c], horizons, last)
    return out


def kaplan_meier_fit(time: np.ndarray, event: np.ndarray) -> SurvfuncRight | None:
    """The product-limit estimate of statsmodels (Greenwood standard errors), ``None`` without patients."""
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float)
    if time.size == 0:
        return None
    from statsmodels.duration.survfunc import SurvfuncRight

    return SurvfuncRight(time, event)


def km_median(time: np.ndarray, event: np.ndarray) -> float | None:
    """Kaplan-Meier median in days, R survival's convention, on statsmodels' curve.

    The curve is statsmodels' :class:`~statsmodels.duration.survfunc.SurvfuncRight`. Conventions
    differ only when the curve sits *exactly* at 0.5 on a flat segment (from event time ``t1`` to
    the next event time ``t2``): statsmodels' ``quantile(0.5)`` takes the first time with
    S(t) < 0.5 (SAS, a strict inequality: ``t2``); lifelines and this engine before issue 13 the
    first with S(t) <= 0.5 (``t1``); R's ``survfit`` the midpoint ``(t1 + t2) / 2``, which is what
    this returns (``t1`` when no event follows: the curve stays at 0.5 to the end of follow-up).
    Elsewhere all three agree. ``None`` when the curve stays above 0.5 (median not reached) or
    there are no patients.
    """
    sf = kaplan_meier_fit(time, event)
    if sf is None or not len(sf.surv_prob):
        return None
    t, s = np.asarray(sf.surv_times, dtype=float), np.asarray(sf.surv_prob, dtype=float)
    at_half = np.flatnonzero(np.isclose(s, 0.5, rtol=0.0, atol=1e-12))
    if at_half.size:
        k = at_half[0]
        return float((t[k] + t[k + 1]) / 2) if k + 1 < len(t) else float(t[k])
    below = np.flatnonzero(s < 0.5)
    return float(t[below[0]]) if below.size else None


@dataclass(frozen=True)
class SurvivalDerived:
    """Per-patient times of every survival endpoint as of the cutoff, and the remission span.

    ``times[endpoint]`` has one row per patient in the endpoint's population with the columns
    :data:`TIME_COLUMNS`; ``n_excluded[endpoint][arm]`` counts patients left out (EFS: pending;
    EFS-MRD: MRD status unknown). ``competing[name]`` (``cir``, ``hsct``) has the columns
    ``subject_id, arm, time, cause`` (1 the event, 2 the competing death, 0 censored).
    """

    cutoff: date
    follow_up_days: int
    censor_at_hsct: bool
    times: Mapping[str, pd.DataFrame]
    n_excluded: Mapping[str, Mapping[str, int]]
    remission_span: Mapping
    arms: tuple[str, ...] = field(default_factory=tuple)
    competing: Mapping[str, pd.DataFrame] = field(default_factory=dict)

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
            "events_by_type": {k: int(types.get(k, 0)) for k in EVENT_TYPES[endpoint]},
            "censored": int(len(f) - f["event"].sum()),
            "censored_at_hsct": int(f["censored_at_hsct"].sum()),
            # days at risk of the continuous hazard: point-mass events (ELN treatment failures) have none
            "exposure_days": float(f.loc[~f["day0"], "time"].sum()),
            "km_median_days": km_median(f["time"].to_numpy(), f["event"].to_numpy()),
            # the longest follow-up: model estimates beyond it are extrapolations
            "max_follow_up_days": float(f["time"].max()) if len(f) else None,
        }
        if endpoint == "efs":
            out["treatment_failures"] = int(f["day0"].sum())
            out["n_pending"] = int(self.n_excluded.get(endpoint, {}).get(arm, 0))
            # censored on the failure day (alive, response NE): failure status unknown, so not in
            # the failure share's denominator (models.survival.SurvivalData.n)
            unknown = (f["event"] == 0) & (f["time"] <= TREATMENT_FAILURE_DAY)
            out["n_failure_status_unknown"] = int(unknown.sum())
        elif endpoint == "efs_mrd":
            out["day0_events"] = int(f["day0"].sum())
            out["n_excluded"] = int(self.n_excluded.get(endpoint, {}).get(arm, 0))
        return out

    def competing_summary(self, name: str, arm: str) -> dict:
        """Aalen-Johansen cumulative incidence of ``name`` (``cir`` or ``hsct``) in ``arm``."""
        f = self.competing[name]
        f = f[f["arm"] == arm]
        out = cumulative_incidence(f["time"].to_numpy(), f["cause"].to_numpy())
        if name == "hsct":
            hs = f.loc[f["cause"] == 1, "time"]
            out["proportion_transplanted"] = float(len(hs) / len(f)) if len(f) else None
            out["median_days_to_transplant"] = float(np.median(hs)) if len(hs) else None
        return out


#: event types of each endpoint, in the order reports list them
EVENT_TYPES = {
    "os": ("death",),
    "efs": ("treatment_failure", "relapse", "death"),
    "rfs": ("relapse", "death"),
    "efs_mrd": ("mrd_positive", "relapse", "death"),
}


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
        "patient's, among remissions dated on or before the cutoff. In the registry this is the "
        "time frame of the CRc outcome, not an endpoint: descriptive (how fast evidence accrues).",
        "trial": span(list(rem["response_on"])),
        "by_arm": {a: span(list(rem.loc[rem["arm"] == a, "response_on"])) for a in arms},
    }


def derive_survival(
    enrolled: pd.DataFrame,
    arms: tuple[str, ...],
    cutoff: date,
    follow_up_days: int,
    censor_at_hsct: bool = False,
    landmark_days: Mapping[str, int] | int = 56,
    endpoints: Iterable[str] = ("os", "efs", "rfs"),
) -> SurvivalDerived:
    """Derive the survival endpoints per patient, the competing-risk times and the remission span.

    Parameters
    ----------
    enrolled
        Validated patient rows (:class:`adaptive.data.PatientTable` frame) already restricted to
        patients enrolled on or before ``cutoff``.
    arms
        The design's arm ids (for per-arm counts, in order).
    landmark_days
        Each arm's response landmark (ELN EFS treatment failure), or one for every arm.
    endpoints
        Survival endpoints to derive (OS, EFS and RFS always are; ``efs_mrd`` only when asked).
    """
    import pandas as pd

    wanted = [ep for ep in SURVIVAL_ENDPOINTS if ep in ("os", "efs", "rfs") or ep in set(endpoints)]
    rows: dict[str, list[dict]] = {ep: [] for ep in wanted}
    competing: dict[str, list[dict]] = {name: [] for name in CUMULATIVE_INCIDENCE_ENDPOINTS}
    excluded = {ep: dict.fromkeys(arms, 0) for ep in ("efs", "efs_mrd")}
    cause_of = {"relapse": 1, "hsct": 1, "death": 2}
    for rec in enrolled.to_dict("records"):
        arm = rec["arm"]
        lm = landmark_days if isinstance(landmark_days, int) else landmark_days.get(arm, 56)
        res = survival_patient(rec, cutoff, follow_up_days, censor_at_hsct, lm)
        if res.pop("efs_pending"):
            excluded["efs"][arm] = excluded["efs"].get(arm, 0) + 1
        if res.pop("efs_mrd_excluded"):
            excluded["efs_mrd"][arm] = excluded["efs_mrd"].get(arm, 0) + 1
        for ep in wanted:
            if res[ep] is not None:
                rows[ep].append({"subject_id": rec["subject_id"], "arm": arm, **res[ep]})
        for name, src in (("cir", res["rfs"]), ("hsct", res["hsct"])):
            if src is not None:
                cause = cause_of[src["event_type"]] if src["event"] else 0
                competing[name].append(
                    {"subject_id": rec["subject_id"], "arm": arm, "time": src["time"], "cause": cause}
                )
    times = {}
    for ep, recs in rows.items():
        f = pd.DataFrame(recs, columns=list(TIME_COLUMNS))
        times[ep] = f.astype(
            {"time": float, "event": np.int64, "day0": bool, "censored_at_hsct": bool, "max_time": float}
        ).reset_index(drop=True)
    comp = {
        name: pd.DataFrame(recs, columns=["subject_id", "arm", "time", "cause"]).astype(
            {"time": float, "cause": np.int64}
        )
        for name, recs in competing.items()
    }
    return SurvivalDerived(
        cutoff=cutoff,
        follow_up_days=follow_up_days,
        censor_at_hsct=censor_at_hsct,
        times=times,
        n_excluded=excluded,
        remission_span=remission_span(enrolled, arms, cutoff),
        arms=tuple(arms),
        competing=comp,
    )
