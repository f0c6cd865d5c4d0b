"""What changed in the data since the previous look: data cleaning made visible to the DSMB.

Each look stores a canonical per-patient snapshot of the validated export (every schema column,
dates as ISO strings, booleans as booleans, blanks as null) in the look ledger. The next look
compares its export with that snapshot, patient by patient, for the patients who were already in
the previous look's data:

* every changed field, as an ``addition`` (blank -> value), ``removal`` (value -> blank) or
  ``change`` (value -> another value);
* whether the patient's change is **routine follow-up** (new information dated after the previous
  cutoff: a response, relapse, transplant or death recorded since; a later last contact; a best
  response improving with a later response date; an MRD result arriving) or **data cleaning**
  (anything else: a response recoded, a date moved or removed, a baseline field changed, an event
  dated on or before the previous cutoff entered late);
* its effect on the previous look: the patient's endpoint values derived *as of the previous
  cutoff* from the old and from the new record (e.g. CRc 1 -> 0), i.e. how the previous look's
  counts would differ with today's data.

Patients who disappeared from the export, and new patients enrolled on or before the previous
cutoff (late registrations), are listed too.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from datetime import date, timedelta

from adaptive.columns import AE_COLUMNS, AE_KEY
from adaptive.data import (
    BASELINE_COLUMNS,
    DATE_COLUMNS,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    TREATMENT_START_COLUMN,
    PatientTable,
)
from adaptive.derive import derive_patient

COLUMNS = tuple(c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c != "subject_id")
FOLLOW_UP_DATES = ("response_on", "relapse_on", "death_on", "hsct_on", "last_contact_on")
RESPONSE_RANK = {"CR": 4, "CRi": 3, "PR": 2, "NR": 1, "NE": 1}
ENDPOINTS = ("crc", "orr", "mrd_negative_cr", "mortality_30d", "mortality_60d")


def _json_value(v):
    if v is None:
        return None
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, bool | int | float) and v == v:  # a flag, an ECOG grade, an age (not nan)
        return v
    try:
        import pandas as pd

        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return str(v)


def snapshot(table: PatientTable) -> dict[str, dict]:
    """Canonical per-patient records of a validated export: ``{subject_id: {column: value}}``."""
    out = {}
    cols = COLUMNS + ((TREATMENT_START_COLUMN,) if TREATMENT_START_COLUMN in table.frame.columns else ())
    cols += tuple(c for c in BASELINE_COLUMNS if c in table.frame.columns)
    for rec in table.frame.to_dict("records"):
        out[str(rec["subject_id"])] = {c: _json_value(rec.get(c)) for c in cols}
    events = getattr(table, "adverse_events", None)  # a table-like object may have none
    if events is not None:  # each patient's events (ADAE), for the memo; never diffed
        for rec in out.values():
            rec[AE_KEY] = []
        for ev in events.to_dict("records"):
            out[str(ev["subject_id"])][AE_KEY].append([_json_value(ev[c]) for c in AE_COLUMNS[1:]])
    return dict(sorted(out.items()))


def encode(snap: dict) -> bytes:
    """Compressed canonical JSON of a snapshot (what the ledger stores)."""
    return zlib.compress(json.dumps(snap, sort_keys=True, separators=(",", ":")).encode(), 9)


def decode(blob: bytes) -> dict:
    """Inverse of :func:`encode`."""
    return json.loads(zlib.decompress(blob).decode())


def _typed(rec: dict) -> dict:
    out = dict(rec)
    for c in (*DATE_COLUMNS, TREATMENT_START_COLUMN):
        if out.get(c) is not None:
            out[c] = date.fromisoformat(out[c])
    return out


def _shown(v) -> str:
    return "blank" if v is None else str(v).lower() if isinstance(v, bool) else str(v)


def _after(d: str | None, cutoff: date) -> bool:
    return d is not None and date.fromisoformat(d) > cutoff


def _routine(field: str, old, new, cur: dict, prev: dict, prev_cutoff: date, window: int) -> bool:
    """Whether one field change is ordinary follow-up since the previous cutoff."""
    if field in FOLLOW_UP_DATES:
        if old is None and new is not None:
            return _after(new, prev_cutoff)
        if field == "last_contact_on" and old is not None and new is not None:
            return new > old and _after(new, prev_cutoff)
        if field == "response_on" and old is not None and new is not None:
            # a best response that improved later moves its date forward
            improved = RESPONSE_RANK.get(cur.get("best_response"), 0) > RESPONSE_RANK.get(
                prev.get("best_response"), 0
            )
            return improved and new > old and _after(new, prev_cutoff)
        return False
    if field == "best_response":
        resp_on = cur.get("response_on")
        if old is None and new is not None:
            if resp_on is not None:
                return _after(resp_on, prev_cutoff)
            enrolled = cur.get("enrolled_on")
            due = None if enrolled is None else date.fromisoformat(enrolled) + timedelta(days=window)
            return due is not None and due > prev_cutoff
        if old is not None and new is not None:
            better = RESPONSE_RANK.get(new, 0) > RESPONSE_RANK.get(old, 0)
            old_on = prev.get("response_on")
            return better and _after(resp_on, prev_cutoff) and (old_on is None or resp_on > old_on)
        return False
    if field == "mrd_negative":
        return old is None and new is not None
    return False


def _previous_look_effect(old: dict, new: dict, cutoff: date, window_days: int) -> dict:
    """Endpoint values as of ``cutoff`` that differ between the old and the new record.

    ``window_days``: the patient's arm's response landmark.
    """
    counted = [rec["enrolled_on"] is not None and rec["enrolled_on"] <= cutoff for rec in (old, new)]
    if counted[0] != counted[1]:
        return {"counted_at_previous_cutoff": counted}
    if not counted[0]:
        return {}
    from_start = TREATMENT_START_COLUMN in old or TREATMENT_START_COLUMN in new
    before = derive_patient(old, cutoff, window_days, from_start)
    after = derive_patient(new, cutoff, window_days, from_start)
    return {ep: [before[ep], after[ep]] for ep in ENDPOINTS if before[ep] != after[ep]}


def diff(
    previous: dict,
    current: dict,
    *,
    previous_cutoff: date,
    window_days: int | Mapping[str, int],
    previous_look: int,
    previous_data_sha256: str,
    current_data_sha256: str,
) -> dict:
    """Compare two snapshots (see the module docstring); JSON-ready.

    ``window_days``: the response landmark in days, one for every arm or per arm id.
    """
    changed = []
    for sid in sorted(set(previous) & set(current)):
        old, new = previous[sid], current[sid]
        fields = [c for c in (*COLUMNS, TREATMENT_START_COLUMN) if old.get(c) != new.get(c)]
        window = window_days if isinstance(window_days, int) else window_days.get(new.get("arm"), 56)
        if not fields:
            continue
        changes = []
        routine = True
        for f in fields:
            o, n = old.get(f), new.get(f)
            kind = "addition" if o is None else "removal" if n is None else "change"
            r = _routine(f, o, n, new, old, previous_cutoff, window)
            routine &= r
            changes.append({"field": f, "previous": o, "current": n, "kind": kind, "routine": r})
        effect = _previous_look_effect(_typed(old), _typed(new), previous_cutoff, window)
        what = ", ".join(f"{c['field']} {_shown(c['previous'])} -> {_shown(c['current'])}" for c in changes)
        sentence = f"{sid} ({new.get('arm')}): {what} ({'routine follow-up' if routine else 'data cleaning'}"
        if effect:
            eff = ", ".join(f"{ep} {_shown(a)} -> {_shown(b)}" for ep, (a, b) in effect.items())
            sentence += f"; as of the previous cutoff {previous_cutoff}: {eff}"
        sentence += ")."
        changed.append(
            {
                "subject_id": sid,
                "arm": new.get("arm"),
                "routine": routine,
                "changes": changes,
                "previous_look_effect": effect,
                "sentence": sentence,
            }
        )
    removed = [{"subject_id": s, "arm": previous[s].get("arm")} for s in sorted(set(previous) - set(current))]
    new_ids = sorted(set(current) - set(previous))
    late = [
        {"subject_id": s, "arm": current[s].get("arm"), "enrolled_on": current[s].get("enrolled_on")}
        for s in new_ids
        if current[s].get("enrolled_on") and date.fromisoformat(current[s]["enrolled_on"]) <= previous_cutoff
    ]
    cleaning = [c for c in changed if not c["routine"]]
    affects = [c for c in changed if c["previous_look_effect"]]
    identical = not changed and not removed and not new_ids
    if identical:
        sentence = f"The data are unchanged since look {previous_look}."
    else:
        sentence = (
            f"Since look {previous_look} (cutoff {previous_cutoff}): {len(new_ids)} new patient(s)"
            f" ({len(late)} enrolled on or before that cutoff: late registrations), "
            f"{len(changed) - len(cleaning)} patient(s) with routine follow-up, "
            f"{len(cleaning)} with data cleaning, {len(removed)} removed from the export; "
            f"{len(affects)} patient(s) would count differently at the previous cutoff."
        )
        if cleaning:
            sentence += " Data cleaning: " + " ".join(c["sentence"] for c in cleaning[:20])
            if len(cleaning) > 20:
                sentence += f" ... and {len(cleaning) - 20} more (listed in changed_patients)."
        if removed:
            sentence += " Removed: " + ", ".join(r["subject_id"] for r in removed) + "."
    return {
        "previous_look": previous_look,
        "previous_cutoff": previous_cutoff.isoformat(),
        "previous_data_sha256": previous_data_sha256,
        "current_data_sha256": current_data_sha256,
        "identical": identical,
        "n_previous": len(previous),
        "n_current": len(current),
        "n_new_patients": len(new_ids),
        "late_registrations": late,
        "removed_patients": removed,
        "n_changed": len(changed),
        "n_routine": len(changed) - len(cleaning),
        "n_cleaning": len(cleaning),
        "n_affecting_previous_look": len(affects),
        "changed_patients": changed,
        "sentence": sentence,
    }
