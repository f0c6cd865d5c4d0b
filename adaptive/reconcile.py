"""ADTTE reconciliation: the engine's OS / EFS / RFS as of the cutoff against data management's ADTTE.

When an ADaM folder holds ADTTE, every subject's ``AVAL`` (days) and ``CNSR`` (0 an event,
1 censored) of the parameters ``data.adtte`` names (defaults ``OS``, ``EFS``, ``RFS``) are
compared with the engine's own derivation (:mod:`adaptive.survival_data`) as of the look's cutoff.
The disagreements are a *data-quality finding* for the data manager, listed per subject in
``reconciliation.csv`` of the look folder and counted in ``recommendations.json``: neither side is
preferred silently, and the engine keeps analysing its own derivation.

Rules of the comparison:

* Only the endpoints ADTTE holds at least one record of are compared (a dataset with OS only is
  not told that every subject lacks EFS).
* **Tolerance: none.** Times are whole days, so ``AVAL`` must equal the engine's time in days
  exactly, and the event status must be the same (``CNSR = 0`` is an event). The engine's time
  is ``ADT - STARTDT`` (``data.adtte.aval_offset_days: 0``, the default) or that plus one
  (``aval_offset_days: 1``, the SAP convention "the start day is day 1"). An event on the start
  day, which the engine places at half a day, is day 0; an ELN 2022 treatment failure is day 1 in
  either convention (ELN dates it "on day 1").
* A subject in the engine's population without an ADTTE record, and an ADTTE record of a subject
  outside it (enrolled after the cutoff, EFS still pending, RFS without a CR/CRi on or before the
  cutoff), are disagreements too. Reasons name ``STARTDT`` and ``ADT`` when they explain the
  difference (another origin; an ``ADT`` after the cutoff, i.e. ADTTE from a later data cut).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

from adaptive.survival_data import SurvivalDerived

#: the endpoints ADTTE is reconciled on, in the order they are listed
RECONCILED = ("os", "efs", "rfs")
#: columns of the ADTTE records read from the dataset (:func:`adaptive.adam.load_adam`)
ADTTE_COLUMNS = ("subject_id", "endpoint", "paramcd", "aval", "cnsr", "startdt", "adt", "row_label")
#: columns of ``reconciliation.csv``
REPORT_COLUMNS = (
    "USUBJID",
    "PARAMCD",
    "endpoint",
    "engine_time",
    "engine_event",
    "adtte_aval",
    "adtte_cnsr",
    "reason",
    "adtte_record",
)
FILE_NAME = "reconciliation.csv"


@dataclass(frozen=True)
class AdtteData:
    """ADTTE records as read: one row per subject and parameter (:data:`ADTTE_COLUMNS`).

    ``aval`` is a float (days), ``cnsr`` 0 or 1, ``startdt``/``adt`` dates or ``None``;
    ``codes`` maps each engine endpoint to its ``PARAMCD``.
    """

    source: str
    frame: pd.DataFrame
    codes: dict[str, str]
    aval_offset_days: int = 0


@dataclass(frozen=True)
class Reconciliation:
    """The disagreements (``frame``, :data:`REPORT_COLUMNS`) and counts of one reconciliation."""

    source: str
    cutoff: date
    endpoints: tuple[str, ...]
    codes: dict[str, str]
    n_compared: dict[str, int]
    frame: pd.DataFrame
    aval_offset_days: int = 0

    @property
    def n_disagreements(self) -> int:
        return int(len(self.frame))

    def sentence(self) -> str:
        eps = ", ".join(self.codes[e] for e in self.endpoints) or "no reconciled parameter"
        n = self.n_disagreements
        head = f"{self.source} ({eps}) against the engine's derivation as of {self.cutoff}: "
        if not self.endpoints:
            return head + "ADTTE holds none of the parameters data.adtte names; nothing compared."
        if n == 0:
            return head + f"no disagreement ({sum(self.n_compared.values())} subject-endpoint pairs)."
        return (
            head + f"{n} disagreement(s), listed per subject in the look's {FILE_NAME}; the engine "
            "analyses its own derivation: ask data management which is right."
        )

    def to_dict(self) -> dict:
        """The ``reconciliation`` block of ``recommendations.json``."""
        by_ep = self.frame["endpoint"].value_counts() if len(self.frame) else pd.Series(dtype=int)
        return {
            "dataset": self.source,
            "parameters": {e: self.codes[e] for e in self.endpoints},
            "aval_convention": "AVAL = ADT - STARTDT" + (" + 1" if self.aval_offset_days else "") + " (days)",
            "tolerance": "none: the same whole number of days and the same event status",
            "n_compared": dict(self.n_compared),
            "n_disagreements": self.n_disagreements,
            "by_endpoint": {e: int(by_ep.get(e, 0)) for e in self.endpoints},
            "file": FILE_NAME,
            "sentence": self.sentence(),
        }

    def to_csv(self) -> str:
        """``reconciliation.csv`` (a header only when nothing disagrees); byte-reproducible."""
        return self.frame.to_csv(index=False, lineterminator="\n")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _engine_days(row: dict) -> float:
    """The engine's time as whole days from the origin (0.5, an event on the start day, is day 0)."""
    t = float(row["time"])
    return 0.0 if t == 0.5 and row["event"] and not row["day0"] else t


def _expected_aval(row: dict, offset: int) -> float:
    if row["day0"] and row["event_type"] == "treatment_failure":
        return float(row["time"])  # ELN 2022: a treatment failure on day 1, in either convention
    return _engine_days(row) + offset


def _why_absent(endpoint: str, rec: dict | None, cutoff: date) -> str:
    """Why the engine has no time for this endpoint."""
    if rec is None or rec["enrolled_on"] is None or rec["enrolled_on"] > cutoff:
        return "the subject was enrolled after the cutoff"
    if endpoint == "efs":
        return "the engine's EFS is pending (response landmark not passed, or no assessment recorded yet)"
    if endpoint == "rfs":
        return "not in the engine's RFS population (no CR/CRi dated on or before the cutoff)"
    return "not in the engine's population"


def reconcile(
    adtte: AdtteData, survival: SurvivalDerived, patients: pd.DataFrame, cutoff: date
) -> Reconciliation:
    """Compare ADTTE's ``AVAL``/``CNSR`` with the engine's OS / EFS / RFS as of ``cutoff``.

    Parameters
    ----------
    patients
        The validated patient frame (``subject_id``, ``enrolled_on``, ``response_on``): the
        engine's origins and why a subject is outside an endpoint's population.
    """
    recs = {r["subject_id"]: r for r in patients.to_dict("records")}
    order = {s: i for i, s in enumerate(patients["subject_id"])}
    tte = adtte.frame
    endpoints = tuple(e for e in RECONCILED if (tte["endpoint"] == e).any())
    offset = adtte.aval_offset_days
    rows: list[tuple] = []
    compared: dict[str, int] = {}
    for ep in endpoints:
        code = adtte.codes[ep]
        engine = {r["subject_id"]: r for r in survival.times[ep].to_dict("records")}
        theirs = {r["subject_id"]: r for r in tte[tte["endpoint"] == ep].to_dict("records")}
        compared[ep] = len(engine.keys() & theirs.keys())
        for sid in sorted(engine.keys() | theirs.keys(), key=lambda s: (order.get(s, len(order)), s)):
            e, t = engine.get(sid), theirs.get(sid)
            if t is None:
                assert e is not None
                rows.append(
                    (sid, code, ep, _num(e["time"]), e["event"], "", "", f"no {code} record in ADTTE", "")
                )
                continue
            if e is None:
                rows.append(
                    (
                        sid,
                        code,
                        ep,
                        "",
                        "",
                        _num(t["aval"]),
                        t["cnsr"],
                        f"ADTTE has {code} but the engine has none: {_why_absent(ep, recs.get(sid), cutoff)}",
                        t["row_label"],
                    )
                )
                continue
            reasons = []
            their_event = 1 - int(t["cnsr"])
            if their_event != int(e["event"]):
                reasons.append(
                    "ADTTE has an event (CNSR=0), the engine censors"
                    if their_event
                    else "ADTTE censors (CNSR=1), the engine has an event"
                    + (f" ({e['event_type'].replace('_', ' ')})" if e["event_type"] else "")
                )
            want = _expected_aval(e, offset)
            if float(t["aval"]) != want:
                diff = float(t["aval"]) - want
                reasons.append(
                    f"AVAL {_num(t['aval'])} vs the engine's {_num(want)} days "
                    f"(ADTTE {_num(abs(diff))} days {'longer' if diff > 0 else 'shorter'})"
                )
            if not reasons:
                continue
            rec = recs.get(sid) or {}
            origin = rec.get("response_on") if ep == "rfs" else rec.get("enrolled_on")
            if t["startdt"] is not None and origin is not None and t["startdt"] != origin:
                reasons.append(f"STARTDT {t['startdt']} vs the engine's origin {origin}")
            if t["adt"] is not None and t["adt"] > cutoff:
                reasons.append(f"ADT {t['adt']} is after the cutoff {cutoff} (ADTTE from a later data cut?)")
            rows.append(
                (
                    sid,
                    code,
                    ep,
                    _num(e["time"]),
                    e["event"],
                    _num(t["aval"]),
                    t["cnsr"],
                    "; ".join(reasons),
                    t["row_label"],
                )
            )
    frame = pd.DataFrame(rows, columns=list(REPORT_COLUMNS), dtype=object)
    return Reconciliation(
        source=adtte.source,
        cutoff=cutoff,
        endpoints=endpoints,
        codes=dict(adtte.codes),
        n_compared=compared,
        frame=frame,
        aval_offset_days=offset,
    )
