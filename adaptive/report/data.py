"""Data assembly for the DSMB memo: a look's outputs -> the numbers each report shows.

Never refits anything. Sources, all of them outputs of ``adaptive interim``:

* ``recommendations.json`` of the look (the config as run is rebuilt from its ``config`` block);
* ``posterior.nc`` (one InferenceData group per endpoint) for posterior densities, rank plots and,
  when survival endpoints were modelled, the posterior survival bands;
* the look ledger (``adaptive.ledger``) for the looks up to this one: allocation and
  probabilities across looks, and the per-patient snapshot of this look's export;
* the patient-level export, for enrolment over time, Kaplan-Meier curves and data completeness:
  ``--data FILE`` (its SHA-256 must equal the look's ``data_sha256``), else the ledger's snapshot
  of this look's export (recorded with that same hash). Without either, those parts say so.

:func:`closed_data` assembles everything of the unblinded report; :func:`open_data` builds the
open report from **pooled** quantities only, by construction: it sums over arms before anything
else and passes nothing keyed by arm on (a test checks that the open report is unchanged when the
patients' arms are permuted).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy import stats

from adaptive.columns import AE_COLUMNS, AE_KEY, DISEASE_STATUSES, ECOG_GRADES, ELN2022_RISKS, SEX_CODES
from adaptive.companions import AT_RISK_DAYS, LABEL, binary_text, km_text, numbers_at_risk
from adaptive.config import Design, parse_config
from adaptive.data import (
    BASELINE_COLUMNS,
    DATE_COLUMNS,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    TREATMENT_START_COLUMN,
    PatientTable,
    load_patients,
)
from adaptive.derive import DerivedData, derive
from adaptive.endpoints import BINARY_ENDPOINTS, SURVIVAL_ENDPOINTS
from adaptive.exceptions import AdaptiveError, LedgerError, MemoError
from adaptive.ledger import LookRecord, look_summary, read_looks, relative_path
from adaptive.provenance import grade_tag, is_decisive
from adaptive.survival_data import kaplan_meier_fit
from decision_rules.vocabulary import GRADE_MEANINGS, PRECEDENCE, PRIMARY_ENDPOINT, Action, Grade, Stage
from decision_rules.vocabulary import fmt_prob as vocab_fmt_prob

SCHEMA = "rr-aml-adaptive/interim/v1"
SURVIVAL = {ep: e.label for ep, e in SURVIVAL_ENDPOINTS.items()}
SURVIVAL_NAMES = {
    "os": "Overall survival",
    "efs": "Event-free survival, ELN 2022",
    "rfs": "Relapse-free survival, responders only (not randomized)",
    "efs_mrd": "Responder EFS with MRD, responders only (not randomized)",
}
#: the memo's words for each action of the one vocabulary (a test checks every action has one)
ACTION_LABELS = {
    Action.CONTINUE: "Continue",
    Action.FLAG: "Flag for safety review",
    Action.SUSPEND_ENROLMENT: "Suspend enrolment (safety review)",
    Action.DROP_FUTILITY: "Drop for futility",
    Action.DROP_HARM: "Drop for harm",
    Action.DROP_INFERIOR: "Drop (inferior to its randomized comparator)",
    Action.GRADUATE: "Graduate",
    Action.COMPLETE: "Close as completed (final analysis)",
    Action.ADD_ARM: "Open a queued arm",
    Action.ADJUST_RANDOMIZATION: "Adjust the randomization",
}
STAGE_LABELS = {
    Stage.INTERIM: "enrolling",
    Stage.ACCRUAL_COMPLETE: "accrual complete",
    Stage.FINAL_ANALYSIS: "final analysis",
}
#: band grid points and posterior draws used for survival bands
_BAND_POINTS = 121
_BAND_DRAWS = 1000


# ============================================================================= formatting
def fmt_pct(x: float | None, digits: int = 1) -> str:
    """``0.4474 -> '44.7%'``; ``None -> '-'``."""
    return "-" if x is None else f"{100 * x:.{digits}f}%"


def fmt_prob(p: float | None, exact: bool = False) -> str:
    """A posterior probability: the engine's one formatter (:func:`decision_rules.vocabulary.fmt_prob`)."""
    return vocab_fmt_prob(p, exact=exact)


def fmt_interval(lo: float | None, hi: float | None) -> str:
    """A 95% interval of rates: ``'31.1-60.7%'``."""
    return "-" if lo is None or hi is None else f"{100 * lo:.1f}-{100 * hi:.1f}%"


def fmt_days(x: float | None) -> str:
    """Days, no decimals; ``None -> '-'``."""
    return "-" if x is None else f"{x:.0f}"


# ============================================================================= the look
@dataclass
class Look:
    """One look's outputs, loaded for the memo (read-only)."""

    folder: Path
    report: dict
    report_sha256: str
    design: Design
    posterior_path: Path | None
    groups: tuple[str, ...]
    ledger_path: Path | None = None
    history: list[LookRecord] = field(default_factory=list)
    table: PatientTable | None = None
    derived: DerivedData | None = None
    data_source: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def cutoff(self) -> date:
        return date.fromisoformat(self.report["cutoff"])

    @property
    def number(self) -> int | None:
        return (self.report.get("look") or {}).get("number")

    @property
    def refused(self) -> bool:
        return self.report.get("status") != "ok"

    @property
    def arms(self) -> list[dict]:
        return self.report["arms"]

    @property
    def labels(self) -> dict[str, str]:
        return {a["arm"]: a["label"] for a in self.arms}

    def posterior(self, group: str):
        """The InferenceData of one endpoint (``None`` if the file has no such group)."""
        if self.posterior_path is None or group not in self.groups:
            return None
        import arviz as az

        return az.InferenceData.from_netcdf(str(self.posterior_path), base_group=group)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _netcdf_groups(path: Path) -> tuple[str, ...]:
    import h5py

    with h5py.File(path, "r") as fh:
        return tuple(k for k in fh if isinstance(fh[k], h5py.Group))


def design_as_run(report: dict) -> Design:
    """The design the look ran with, rebuilt from ``config`` of ``recommendations.json``."""
    text = yaml.safe_dump(report["config"], sort_keys=False)
    return parse_config(text, source="recommendations.json: config (as run)")


def table_from_snapshot(snapshot: Mapping[str, Mapping], data_file: str | None) -> PatientTable:
    """A validated patient table rebuilt from a ledger snapshot (typed values, as recorded)."""
    rows = []
    events: list[list] | None = None
    for sid, rec in snapshot.items():
        rec = dict(rec)
        if AE_KEY in rec:
            events = events if events is not None else []
            events += [[sid, *ev] for ev in rec.pop(AE_KEY)]
        row = {"subject_id": sid, **rec}
        for c in (*DATE_COLUMNS, TREATMENT_START_COLUMN):
            if row.get(c) is not None:
                row[c] = date.fromisoformat(row[c])
        row["row_label"] = f"subject {sid}"
        rows.append(row)
    has_start = any(TREATMENT_START_COLUMN in r for r in rows)
    baseline = [c for c in BASELINE_COLUMNS if any(c in r for r in rows)]
    cols = [
        *REQUIRED_COLUMNS,
        *OPTIONAL_COLUMNS,
        *([TREATMENT_START_COLUMN] if has_start else []),
        *baseline,
        "row_label",
    ]
    frame = pd.DataFrame(rows, columns=cols).astype(object)
    frame = frame.where(pd.notna(frame), None)
    ae = None
    if events is not None:
        ae = pd.DataFrame(events, columns=list(AE_COLUMNS), dtype=object)
        ae["start_on"] = [None if d is None else date.fromisoformat(d) for d in ae["start_on"]]
    return PatientTable(
        frame=frame, path=Path(data_file) if data_file else None, sha256="", adverse_events=ae
    )


def load_look(
    folder: str | Path, *, data: str | Path | None = None, ledger: str | Path | None = None
) -> Look:
    """Load a look folder for the memo.

    Parameters
    ----------
    folder
        The look's output folder (``recommendations.json``, ``posterior.nc``).
    data
        The patient export the look was made from; its SHA-256 must equal the look's
        ``data_sha256``. Default: the ledger's snapshot of this look's export.
    ledger
        The look ledger. Default: the ``look.ledger`` named in ``recommendations.json``, in the
        folder that holds the look folder.

    Raises
    ------
    MemoError
        Not a look folder, or a data file that is not the one the look was made from.
    """
    folder = Path(folder)
    rec_path = folder / "recommendations.json"
    if not rec_path.is_file():
        raise MemoError(
            f"{folder} is not a look folder: it has no recommendations.json. Point adaptive memo at "
            "the --out folder of an adaptive interim run."
        )
    raw = rec_path.read_bytes()
    try:
        report = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise MemoError(f"{rec_path} is not valid JSON ({exc}).") from None
    if report.get("schema") != SCHEMA:
        raise MemoError(f"{rec_path} has schema {report.get('schema')!r}; this memo reads {SCHEMA!r}.")
    try:
        design = design_as_run(report)
    except AdaptiveError as exc:
        raise MemoError(f"the config recorded in {rec_path} cannot be read back: {exc}") from None
    post = folder / "posterior.nc"
    groups = _netcdf_groups(post) if post.is_file() else ()
    look = Look(
        folder=folder,
        report=report,
        report_sha256=hashlib.sha256(raw).hexdigest(),
        design=design,
        posterior_path=post if post.is_file() else None,
        groups=groups,
    )
    if look.posterior_path is None:
        look.notes.append(f"{folder} has no posterior.nc: posterior densities and rank plots are left out.")
    own = _load_history(look, ledger)
    _load_patients(look, data, own)
    return look


def _load_history(look: Look, ledger: str | Path | None) -> LookRecord | None:
    """The ledger's looks up to this one; returns this look's own record (or ``None``)."""
    info = look.report.get("look") or {}
    if ledger is None and info.get("ledger"):
        candidate = look.folder.resolve().parent / info["ledger"]
        ledger = candidate if candidate.is_file() else None
    if ledger is None:
        look.notes.append(
            "No look ledger was found: the randomization history and the probability trajectories "
            "show this look only (pass --ledger FILE)."
        )
        return None
    ledger = Path(ledger)
    try:
        records = read_looks(ledger)
    except LedgerError as exc:
        raise MemoError(str(exc)) from None
    own = next((r for r in records if r.report_sha256 == look.report_sha256), None)
    if own is None:
        look.notes.append(
            f"The ledger {relative_path(ledger, look.folder.parent)} does not record this look (no look "
            "with the SHA-256 of its recommendations.json): the randomization history and the probability "
            "trajectories show this look only."
        )
        return None
    look.ledger_path = ledger
    # looks up to this one in cutoff order (the ledger's order: cutoff, then number)
    look.history = records[: records.index(own) + 1]
    return own


def _load_patients(look: Look, data: str | Path | None, own: LookRecord | None) -> None:
    want = look.report.get("data_sha256")
    if data is not None:
        data = Path(data)
        folder = None
        if data.is_dir():  # an ADaM folder: its hash is that of its datasets (adaptive.adam)
            folder = load_patients(data, look.design)
            got = folder.sha256
        elif not data.is_file():
            raise MemoError(f"--data {data}: no such file or folder.")
        else:
            got = _sha256(data)
        if got != want:
            raise MemoError(
                f"--data {data} has SHA-256 {got[:16]}..., but the look was made from "
                f"{look.report.get('data_file')} with SHA-256 {str(want)[:16]}...: pass the export this "
                "look was made from (or leave --data out to use the ledger's snapshot of it)."
            )
        look.table = folder if folder is not None else load_patients(data, look.design)
        look.data_source = f"{data.name} (SHA-256 verified against the look)"
    elif own is not None and own.snapshot and own.data_sha256 == want:
        from adaptive.datadiff import decode

        look.table = table_from_snapshot(decode(own.snapshot), look.report.get("data_file"))
        look.data_source = (
            f"the ledger's snapshot of {look.report.get('data_file')} recorded with look {own.look} "
            f"(SHA-256 {str(want)[:16]}...)"
        )
    else:
        look.notes.append(
            "No patient-level data: enrolment over time, Kaplan-Meier curves and data completeness "
            "are left out. Pass --data with the export the look was made from "
            f"({look.report.get('data_file')})."
        )
        return
    look.derived = derive(look.table, look.design, look.cutoff)


def survival_times(look: Look) -> dict[str, pd.DataFrame] | None:
    """Per-patient times of the survival endpoints as of the cutoff, from the project's derivation.

    ``{endpoint: frame with columns arm, time, event}`` or ``None`` when this engine has no
    survival derivation (``DerivedData.survival`` / ``adaptive.survival_data``) or no patient data.
    """
    if look.derived is None:
        return None
    surv = getattr(look.derived, "survival", None)
    if surv is None:
        try:  # the survival module, where it exists, derives OS / EFS / RFS per patient
            from adaptive.survival_data import derive_survival  # type: ignore[import-not-found]
        except ImportError:
            return None
        cutoff = look.cutoff
        frame = look.table.frame
        enrolled = frame[[d <= cutoff for d in frame["enrolled_on"]]]
        raw_surv = look.report["config"].get("survival") or {}
        surv = derive_survival(
            enrolled,
            look.design.arm_ids,
            cutoff,
            look.design.assessment.follow_up_days,
            censor_at_hsct=bool(raw_surv.get("censor_at_hsct", False)),
            landmark_days={a.id: a.response_landmark_days for a in look.design.arms},
            endpoints=tuple((raw_surv.get("endpoints") or {}).keys()),
        )
    return {ep: f for ep, f in surv.times.items()}


# ============================================================================= survival math
def kaplan_meier(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Product-limit estimate as a step function: ``(t, S(t))`` starting at ``(0, 1)``.

    The curve is statsmodels' (:func:`adaptive.survival_data.kaplan_meier_fit`, the estimator of
    the frequentist companions), extended to the longest follow-up for plotting.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float)
    ts, ss = [0.0], [1.0]
    sf = kaplan_meier_fit(time, event)
    if sf is not None:
        ts += [float(t) for t in sf.surv_times]
        ss += [float(v) for v in sf.surv_prob]
    s = ss[-1]
    if time.size and time.max() > ts[-1]:
        ts.append(float(time.max()))
        ss.append(s)
    return np.array(ts), np.array(ss)


def km_at(t_step: np.ndarray, s_step: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The step function evaluated at ``times`` (right-continuous)."""
    idx = np.searchsorted(t_step, times, side="right") - 1
    return s_step[np.clip(idx, 0, len(s_step) - 1)]


def survival_band(idata, arm: str, horizon: float, seed: int = 0) -> tuple[np.ndarray, ...] | None:
    """Posterior median and 95% band of ``S(t)`` on ``[0, horizon]`` from a survival fit.

    Uses the piecewise-constant ``hazard`` (draws x interval) with the interval bounds of
    ``constant_data`` (the last interval's hazard continues beyond its end) and, with day-0
    events (EFS), ``S(t) = (1 - prob_day0_event) exp(-H(t))``.
    """
    post = idata.posterior
    if "hazard" not in post or "constant_data" not in idata.groups():
        return None
    cd = idata.constant_data
    if "interval_start" not in cd:
        return None
    hz = post["hazard"].sel(arm=arm).stack(s=("chain", "draw")).transpose("s", "interval").values
    rng = np.random.default_rng(seed)
    if hz.shape[0] > _BAND_DRAWS:
        keep = np.sort(rng.choice(hz.shape[0], _BAND_DRAWS, replace=False))
        hz = hz[keep]
    else:
        keep = np.arange(hz.shape[0])
    start = np.asarray(cd["interval_start"].values, dtype=float)
    end = np.asarray(cd["interval_end"].values, dtype=float)
    width = end - start
    width[-1] = np.inf
    t = np.linspace(0.0, horizon, _BAND_POINTS)
    overlap = np.clip(t[:, None] - start[None, :], 0.0, width[None, :])  # (T, J)
    cum = hz @ overlap.T  # (S, T)
    surv = np.exp(-cum)
    if "prob_day0_event" in post:
        pi = post["prob_day0_event"].sel(arm=arm).stack(s=("chain", "draw")).values[keep]
        surv = surv * (1.0 - pi[:, None])
    lo, mid, hi = np.quantile(surv, [0.025, 0.5, 0.975], axis=0)
    return t, lo, mid, hi


# ============================================================================= closed report
def _cohort_of(design: Design) -> dict[str, str]:
    out = {}
    for step in design.routing:
        for a in step.arms:
            out.setdefault(a, step.cohort)
    for a in design.arms:
        if a.entry is not None:
            out.setdefault(a.id, a.entry.cohort)
    return out


def _enrolled_frame(look: Look) -> pd.DataFrame | None:
    if look.table is None:
        return None
    f = look.table.frame
    return f[[d <= look.cutoff for d in f["enrolled_on"]]]


def enrolment(look: Look) -> dict:
    """Enrolment by arm, cohort and site: dates for the figures and count tables."""
    cohort = _cohort_of(look.design)
    arm_rows = []
    f = _enrolled_frame(look)
    for a in look.arms:
        dates = sorted(f.loc[f["arm"] == a["arm"], "enrolled_on"]) if f is not None else []
        arm_rows.append(
            {
                "arm": a["arm"],
                "label": a["label"],
                "cohort": cohort.get(a["arm"], "-"),
                "status": a["status"],
                "n": a["n_enrolled"],
                "max_n": a["max_n"],
                "share": a["n_enrolled"] / a["max_n"] if a["max_n"] else None,
                "first": dates[0].isoformat() if dates else "-",
                "last": dates[-1].isoformat() if dates else "-",
            }
        )
    out: dict = {
        "arms": arm_rows,
        "has_dates": f is not None,
        "total": sum(a["n_enrolled"] for a in look.arms),
    }
    if f is None:
        return out
    arms = [a["arm"] for a in look.arms]
    out["by_arm"] = {a: sorted(f.loc[f["arm"] == a, "enrolled_on"]) for a in arms}
    cohorts = list(dict.fromkeys(cohort.get(a, "-") for a in arms))
    out["by_cohort"] = {
        c: sorted(d for a, d in zip(f["arm"], f["enrolled_on"], strict=True) if cohort.get(a, "-") == c)
        for c in cohorts
    }
    sites = sorted(set(f["site"]))
    out["by_site"] = {s: sorted(f.loc[f["site"] == s, "enrolled_on"]) for s in sites}
    counts = pd.crosstab(f["site"], f["arm"]).reindex(index=sites, columns=arms, fill_value=0)
    out["site_table"] = {
        "arms": arms,
        "rows": [
            {"site": s, "counts": [int(counts.loc[s, a]) for a in arms], "total": int(counts.loc[s].sum())}
            for s in sites
        ],
        "totals": [int(counts[a].sum()) for a in arms],
    }
    return out


# ============================================================================= baseline and disposition
#: categorical baseline characteristics in table order: column -> (heading, ((value, label), ...));
#: the values are the loader's codes (:mod:`adaptive.columns`)
BASELINE_CATEGORIES: dict[str, tuple[str, tuple[tuple[object, str], ...]]] = {
    "sex": ("Sex", tuple(zip(SEX_CODES, ("Male", "Female", "Unknown"), strict=True))),
    "ecog": ("ECOG performance status", tuple((g, f"ECOG {g}") for g in ECOG_GRADES)),
    "disease_status": (
        "Disease status at enrolment",
        tuple(zip(DISEASE_STATUSES, ("Relapsed", "Primary refractory"), strict=True)),
    ),
    "prior_hsct": ("Prior allogeneic HSCT", ((True, "Yes"), (False, "No"))),
    "eln2022_risk": (
        "ELN 2022 genetic risk",
        tuple(zip(ELN2022_RISKS, ("Favorable", "Intermediate", "Adverse"), strict=True)),
    ),
}


def count_pct(k: int, n: int) -> str:
    """``k`` and its share of ``n`` as a memo cell: ``'12 (55%)'``; ``'0'`` for ``n = 0``.

    The whole percent is rounded half up in integers (23 of 40 is 58%): ``fmt_pct(23 / 40, 0)``
    would print 57%, since 100 * 0.575 is 57.4999... in floating point. A share that rounds to
    0% or 100% without being so is ``<1%`` / ``>99%`` (one patient of 220 is not "0%").
    """
    if not n:
        return str(k)
    pct = (200 * k + n) // (2 * n)
    if pct == 0 and k > 0:
        return f"{k} (<1%)"
    if pct == 100 and k < n:
        return f"{k} (>99%)"
    return f"{k} ({pct}%)"


def _years(x: float) -> str:
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.1f}"


def baseline_rows(f: pd.DataFrame, masks: list[np.ndarray]) -> list[dict]:
    """Rows of the baseline table: one cell per column of patients (``masks`` over ``f``'s rows).

    ``f`` holds the patients enrolled by the cutoff; a characteristic whose column the export
    lacks has no rows. Shares are of the column's patients (not recorded ones included); a
    category nobody in ``f`` has is left out (decided on all of ``f``, never per column, so that
    the pooled table of the open report says nothing about any arm).
    """
    ns = [int(m.sum()) for m in masks]
    rows: list[dict] = [
        {"label": "Patients enrolled by the cutoff", "heading": False, "cells": list(map(str, ns))}
    ]
    if "age" in f.columns:
        ages = np.array([np.nan if v is None else float(v) for v in f["age"]], dtype=float)
        cells = []
        for m in masks:
            a = ages[m & ~np.isnan(ages)]
            cells.append(
                f"{_years(float(np.median(a)))} ({_years(a.min())}-{_years(a.max())})" if len(a) else "-"
            )
        rows.append({"label": "Age, years: median (range)", "heading": False, "cells": cells})
        if np.isnan(ages).any():
            rows.append(
                {
                    "label": "Age not recorded",
                    "heading": False,
                    "sub": True,
                    "cells": [
                        count_pct(int((m & np.isnan(ages)).sum()), n) for m, n in zip(masks, ns, strict=True)
                    ],
                }
            )
    for col, (title, cats) in BASELINE_CATEGORIES.items():
        if col not in f.columns:
            continue
        values = list(f[col])
        rows.append({"label": title, "heading": True, "cells": [""] * len(masks)})
        for value, label in (*cats, (None, "Not recorded")):
            hit = np.array([v == value if value is not None else v is None for v in values], dtype=bool)
            if not hit.any():
                continue
            rows.append(
                {
                    "label": label,
                    "heading": False,
                    "sub": True,
                    "cells": [count_pct(int((m & hit).sum()), n) for m, n in zip(masks, ns, strict=True)],
                }
            )
    for r in rows:
        r.setdefault("sub", False)
    return rows


def disposition_rows(
    look: Look, f: pd.DataFrame, masks: list[np.ndarray], arms: list[list[str]]
) -> list[dict]:
    """Rows of the disposition (CONSORT-style) table as of the cutoff, one cell per column of patients.

    ``arms`` names the arms of each column, for the counts the look itself made (evaluable and
    pending for the primary endpoint, not evaluable for 60-day mortality: the engine's
    :func:`adaptive.derive.derive` definitions, read from ``recommendations.json``); the other
    rows count dates on or before the cutoff in ``f`` (the patients enrolled by the cutoff).
    """
    cutoff = look.cutoff
    ns = [int(m.sum()) for m in masks]

    def by_date(col: str) -> np.ndarray:
        return np.array([d is not None and d <= cutoff for d in f[col]], dtype=bool)

    def row(
        label: str, hit: np.ndarray | None = None, counts: list[int] | None = None, note: str = ""
    ) -> dict:
        if counts is None:
            counts = [int((m & hit).sum()) for m in masks]
        cells = [count_pct(k, n) for k, n in zip(counts, ns, strict=True)]
        return {"label": label, "note": note, "cells": cells}

    def from_look(endpoint: str, key: str) -> list[int]:
        blocks = {a["arm"]: (a["endpoints"].get(endpoint) or {}) for a in look.arms}
        return [sum(int(blocks.get(a, {}).get(key) or 0) for a in group) for group in arms]

    rows = [
        {"label": "Enrolled by the cutoff", "note": "", "cells": list(map(str, ns))},
        row("Randomized", np.array([v is True for v in f["randomized"]], dtype=bool)),
    ]
    if TREATMENT_START_COLUMN in f.columns:
        rows.append(
            row("Treated", by_date(TREATMENT_START_COLUMN), note="treatment_start_on on or before the cutoff")
        )
    label = BINARY_ENDPOINTS[PRIMARY_ENDPOINT].label
    rows += [
        row(
            f"Evaluable for {label} (primary endpoint)",
            counts=from_look(PRIMARY_ENDPOINT, "n_evaluable"),
            note="past the arm's response landmark, as counted by the look",
        ),
        *_pending_rows(
            label, from_look(PRIMARY_ENDPOINT, "n_pending"), from_look(PRIMARY_ENDPOINT, "n_overdue"), row
        ),
        row("Died", by_date("death_on"), note="death on or before the cutoff, any cause"),
        row("Allogeneic HSCT", by_date("hsct_on"), note="transplant on or before the cutoff"),
    ]
    if any("mortality_60d" in a["endpoints"] for a in look.arms):
        rows.append(
            row(
                "Lost to follow-up by day 60",
                counts=from_look("mortality_60d", "n_not_evaluable"),
                note="alive not known on day 60 though it has passed: not evaluable for 60-day mortality",
            )
        )
    return rows


def _pending_rows(label: str, pending: list[int], overdue: list[int], row) -> list[dict]:
    """The primary endpoint's pending patients: landmark still to come, and overdue.

    Overdue: the landmark passed with no assessment recorded (a missing outcome, not a future one).
    A look made before overdue patients were counted apart gives one row.
    """
    if not any(overdue):
        return [
            row(f"{label} pending", counts=pending, note="landmark not reached, or no assessment recorded")
        ]
    return [
        row(
            f"{label} pending: landmark not reached",
            counts=[p - o for p, o in zip(pending, overdue, strict=True)],
            note="the arm's response landmark is after the cutoff",
        ),
        row(
            f"{label} overdue",
            counts=overdue,
            note="landmark passed, no assessment recorded: a missing outcome (see the data warnings)",
        ),
    ]


def _patient_columns(
    look: Look, f: pd.DataFrame, *, pooled: bool
) -> tuple[pd.DataFrame, list[str], list[list[str]], list[np.ndarray]]:
    """``(f, column headings, arms of each column, row masks)`` of a table of patients.

    By arm and in total; with ``pooled`` one column of all patients, and ``f`` loses its arm
    column before anything is counted.
    """
    all_arms = [a["arm"] for a in look.arms]
    f = f.reset_index(drop=True)
    if pooled:
        f = f.drop(columns=["arm"])
        return f, ["All patients"], [all_arms], [np.ones(len(f), dtype=bool)]
    arm_of = np.array(list(f["arm"]), dtype=object)
    masks = [arm_of == a for a in all_arms] + [np.ones(len(f), dtype=bool)]
    return f, [*all_arms, "Total"], [[a] for a in all_arms] + [all_arms], masks


#: the adverse-event summary rows: (key, label); a patient counts once per row
AE_SUMMARY = (
    ("any", "Any treatment-emergent AE"),
    ("grade3", "Grade 3 or higher"),
    ("serious", "Serious"),
    ("fatal", "Fatal (grade 5, or resulting in death)"),
)


def adverse_events_section(look: Look, *, pooled: bool) -> dict:
    """Treatment-emergent adverse events (ADAE) as of the cutoff: patients with at least one event.

    An event counts when ``TRTEMFL`` is yes and it started on or before the cutoff, in a patient
    enrolled by the cutoff (treated by it, when the export has ``treatment_start_on``: the safety
    population). Summary rows (:data:`AE_SUMMARY`) and, per system organ class, any grade and grade
    3 or higher; by arm and in total, or pooled only (``pooled``: arms dropped first).
    """
    t = look.table
    f = _enrolled_frame(look)
    if t is None or f is None or t.adverse_events is None:
        return {"has_ae": False}
    cutoff = look.cutoff
    treated = TREATMENT_START_COLUMN in f.columns
    if treated:
        f = f[[d is not None and d <= cutoff for d in f[TREATMENT_START_COLUMN]]]
    f, columns, _groups, masks = _patient_columns(look, f, pooled=pooled)
    ns = [int(m.sum()) for m in masks]
    pos = {sid: i for i, sid in enumerate(f["subject_id"])}
    ev = [
        e
        for e in t.adverse_events.to_dict("records")
        if e["teae"] is True
        and e["start_on"] is not None
        and e["start_on"] <= cutoff
        and e["subject_id"] in pos
    ]

    def patients(events) -> np.ndarray:
        hit = np.zeros(len(f), dtype=bool)
        hit[[pos[e["subject_id"]] for e in events]] = True
        return hit

    def cells(hit: np.ndarray) -> list[str]:
        return [count_pct(int((m & hit).sum()), n) for m, n in zip(masks, ns, strict=True)]

    def by_soc(events) -> list[dict]:
        hits = {c: patients([e for e in events if e["soc"] == c]) for c in {e["soc"] for e in events}}
        order = sorted(hits, key=lambda c: (-int(hits[c].sum()), c))  # decided on all patients of f
        return [{"label": c, "cells": cells(hits[c])} for c in order]

    g3 = [e for e in ev if e["grade"] is not None and e["grade"] >= 3]
    which = {
        "any": ev,
        "grade3": g3,
        "serious": [e for e in ev if e["serious"] is True],
        "fatal": [e for e in ev if e["fatal"] is True],
    }
    return {
        "has_ae": True,
        "columns": columns,
        "population": "treated by the cutoff" if treated else "enrolled by the cutoff",
        "n_patients": list(map(str, ns)),
        "summary": [{"label": label, "cells": cells(patients(which[key]))} for key, label in AE_SUMMARY],
        "soc_any": by_soc(ev),
        "soc_g3": by_soc(g3),
        "n_events": len(ev),
    }


def baseline_section(look: Look, *, pooled: bool) -> dict:
    """The baseline and disposition tables: by arm and in total (closed), or pooled only (open).

    With ``pooled`` the patients' arms are dropped before anything is counted, and the look's
    per-arm counts are summed over all arms.
    """
    f = _enrolled_frame(look)
    if f is None:
        return {
            "has_patients": False,
            "columns": [],
            "baseline": [],
            "disposition": [],
            "has_baseline": False,
        }
    f, columns, groups, masks = _patient_columns(look, f, pooled=pooled)
    present = [c for c in BASELINE_COLUMNS if c in f.columns]
    return {
        "has_patients": True,
        "columns": columns,
        "has_baseline": bool(present),
        "baseline": baseline_rows(f, masks) if present else [],
        "disposition": disposition_rows(look, f, masks, groups),
        "missing": [c for c in BASELINE_COLUMNS if c not in f.columns],
    }


def endpoint_tables(look: Look) -> list[dict]:
    """Per endpoint, one row per arm: counts, posterior mean, 95% interval, P(> null), P(> target)."""
    tables = []
    endpoints = list(look.report["config"]["endpoints"])
    companions = look.report.get("companions") or {}
    for ep in endpoints:
        spec = BINARY_ENDPOINTS.get(ep)
        rows = []
        mortality = False
        for a in look.arms:
            e = a["endpoints"].get(ep)
            if e is None:
                continue
            mortality = mortality or e.get("limit_rate") is not None
            comp = ((companions.get("arms") or {}).get(a["arm"]) or {}).get("binary", {}).get(ep)
            rows.append(
                {
                    "arm": a["arm"],
                    "label": a["label"],
                    "status": a["status"],
                    "y": e["responders"],
                    "n": e["n_evaluable"],
                    "pending": e["n_pending"],
                    "not_evaluable": e.get("n_not_evaluable", 0),
                    "observed": fmt_pct(e.get("observed_rate")),
                    "mean": fmt_pct(e.get("mean")),
                    "interval": fmt_interval(e.get("ci95_low"), e.get("ci95_high")),
                    "null": fmt_pct(e.get("null_rate"), 0),
                    "p_null": fmt_prob(e.get("prob_above_null")),
                    "futility": fmt_pct(e.get("futility_rate"), 0)
                    if e.get("futility_rate") is not None
                    else "-",
                    "p_futility": fmt_prob(e.get("prob_above_futility")),
                    "target": fmt_pct(e.get("target_rate"), 0) if e.get("target_rate") is not None else "-",
                    "p_target": fmt_prob(e.get("prob_above_target")),
                    "limit": fmt_pct(e.get("limit_rate"), 0) if e.get("limit_rate") is not None else "-",
                    "p_limit": fmt_prob(e.get("prob_above_limit")),
                    "model": e.get("model", "-"),
                    "p_exch": fmt_prob(e.get("prob_exchangeable")) if "prob_exchangeable" in e else None,
                    "borrow": _borrow_text(e.get("without_borrowing")),
                    "companion": binary_text(comp) if comp else "",
                }
            )
        tables.append(
            {
                "endpoint": ep,
                "label": spec.label if spec else ep,
                "definition": look.report.get("endpoint_definitions", {}).get(ep, ""),
                "mortality": mortality,
                "has_exch": any(r["p_exch"] is not None for r in rows),
                "has_borrow": any(r["borrow"] for r in rows),
                "has_futility": any(r["futility"] != "-" for r in rows),
                "has_companion": any(r["companion"] for r in rows),
                "companion_pairs": [
                    p["sentence"]
                    for p in companions.get("pairs") or []
                    if p["kind"] == "binary" and p["endpoint"] == ep
                ],
                "rows": rows,
            }
        )
    return tables


def _borrow_text(w: Mapping | None) -> str:
    """The no-borrowing column: mean, P(> null), P(> target) of the arm alone, and the ESS it borrows."""
    if not w:
        return ""
    ess = w.get("ess") or {}
    parts = [f"mean {fmt_pct(w.get('mean'))}", f"P(> null) {fmt_prob(w.get('prob_above_null'))}"]
    if w.get("prob_above_target") is not None:
        parts.append(f"P(> target) {fmt_prob(w.get('prob_above_target'))}")
    if ess:
        given = ess["effective_prior_given_other_arms"]
        parts.append(
            f"prior ESS {ess['prior']:.1f}, given the other arms {given:.1f}; "
            f"posterior ESS {ess['posterior']:.1f} with {ess['n_own']} own"
        )
    return "; ".join(parts)


def crc_density_inputs(look: Look, endpoint: str = "crc") -> dict | None:
    """The CRc posterior per modelled arm, with each arm's null and target and the look's probabilities.

    ``draws``: the posterior draws (posterior.nc); ``beta``: the exact ``(a, b)`` per arm of a
    conjugate endpoint (the posterior's ``posterior_a`` / ``posterior_b`` attributes), else
    ``None``; ``prob_above_null`` / ``prob_above_target``: the look's own numbers
    (recommendations.json), so that the figure prints what the tables print.
    """
    if look.refused:
        return None
    idata = look.posterior(endpoint)
    if idata is None or "p" not in idata.posterior:
        return None
    p = idata.posterior["p"]
    arms = [str(a) for a in p.coords["arm"].values]
    by_arm = {a["arm"]: a for a in look.arms}
    attrs = idata.posterior.attrs
    beta = None
    if "posterior_a" in attrs and "posterior_b" in attrs:
        a_, b_ = np.atleast_1d(attrs["posterior_a"]), np.atleast_1d(attrs["posterior_b"])
        beta = {a: (float(a_[i]), float(b_[i])) for i, a in enumerate(arms)}
    summary = {a: by_arm[a]["endpoints"][endpoint] for a in arms}
    return {
        "draws": {a: p.sel(arm=a).values.ravel() for a in arms},
        "beta": beta,
        "null": {a: summary[a]["null_rate"] for a in arms},
        "target": {a: summary[a].get("target_rate") for a in arms},
        "prob_above_null": {a: summary[a].get("prob_above_null") for a in arms},
        "prob_above_target": {a: summary[a].get("prob_above_target") for a in arms},
    }


def forest_rows(look: Look) -> list[dict]:
    """Posterior mean, interval, null and target/limit per arm and endpoint (modelled arms)."""
    rows = []
    for a in look.arms:
        if a["status"] == "queued":
            continue
        for ep, e in a["endpoints"].items():
            rows.append(
                {
                    "arm": a["arm"],
                    "label": a["label"],
                    "endpoint": ep,
                    "mean": e.get("mean"),
                    "lo": e.get("ci95_low"),
                    "hi": e.get("ci95_high"),
                    "null": e["null_rate"],
                    "target": e.get("target_rate"),
                    "limit": e.get("limit_rate"),
                }
            )
    return rows


def _interval_text(block: Mapping | None, scale: float = 1.0, pct: bool = False) -> str:
    if not block or block.get("median") is None:
        return "-"
    if pct:
        return f"{100 * block['median']:.0f}% ({100 * block['ci95_low']:.0f}-{100 * block['ci95_high']:.0f}%)"
    return f"{block['median'] * scale:.0f} ({block['ci95_low'] * scale:.0f}-{block['ci95_high'] * scale:.0f})"


def survival_section(look: Look) -> dict:
    """Survival tables, Kaplan-Meier inputs and posterior bands, where the look modelled survival."""
    present = [ep for ep in SURVIVAL if any(ep in (a.get("survival") or {}) for a in look.arms)]
    if not present:
        return {"present": False, "endpoints": []}
    times = survival_times(look)
    horizon = float(look.design.assessment.follow_up_days)
    companions = look.report.get("companions") or {}
    risk_days = [d for d in AT_RISK_DAYS if d <= horizon]
    out = []
    for ep in present:
        idata = None if look.refused else look.posterior(ep)
        rows, panels = [], []
        for a in look.arms:
            s = (a.get("survival") or {}).get(ep)
            if s is None or a["status"] == "queued":
                continue
            not_estimable = s.get("estimable") is False
            comp = ((companions.get("arms") or {}).get(a["arm"]) or {}).get("survival", {}).get(ep)
            rows.append(
                {
                    "arm": a["arm"],
                    "label": a["label"],
                    "n": s.get("n", "-"),
                    "events": s.get("events", "-"),
                    "km_median": km_text(comp) if comp else fmt_days(s.get("km_median_days")),
                    "km_at": _km_at_text(comp),
                    "median": "not estimable" if not_estimable else _interval_text(s.get("median_days")),
                    "note": s.get("not_estimable_reason") or "",
                    "check": _check_text(s.get("model_check")),
                    **{
                        f"s{h}": "beyond follow-up"
                        if s.get("max_follow_up_days") is not None and h > s["max_follow_up_days"]
                        else _interval_text(s.get(f"s{h}"), pct=True)
                        for h in (180, 365, 730)
                    },
                    "failure": _interval_text(s.get("prob_point_mass_event"), pct=True)
                    if s.get("prob_point_mass_event")
                    else "",
                    "pending": s.get("n_pending", ""),
                    "few_events": 0 < (s.get("events") or 0) < 5,
                    "benchmark": fmt_days(s.get("benchmark_median_days")),
                    "p_benchmark": fmt_prob(s.get("prob_median_above_benchmark")),
                }
            )
            panel = {"arm": a["arm"], "label": a["label"], "n": s.get("n", 0), "events": s.get("events", 0)}
            if times is not None and ep in times:
                f = times[ep]
                f = f[f["arm"] == a["arm"]]
                if len(f):
                    t, sv = kaplan_meier(f["time"].to_numpy(), f["event"].to_numpy())
                    panel["km"] = (t, sv)
                    cens = f.loc[f["event"] == 0, "time"].to_numpy(dtype=float)
                    panel["censored"] = (cens, km_at(t, sv, cens))
                    panel["n"], panel["events"] = int(len(f)), int(f["event"].sum())
                    panel["at_risk"] = numbers_at_risk(f["time"].to_numpy(), risk_days)
            if (
                idata is not None
                and not not_estimable
                and "hazard" in idata.posterior
                and a["arm"] in [str(x) for x in idata.posterior["hazard"].coords["arm"].values]
            ):
                panel["band"] = survival_band(idata, a["arm"], horizon)
            panels.append(panel)
        comps = [c for c in look.report.get("survival_comparisons") or [] if c.get("endpoint") == ep]
        comp_pairs = [
            p for p in companions.get("pairs") or [] if p["kind"] == "survival" and p["endpoint"] == ep
        ]
        drawn = {p["arm"] for p in panels if "km" in p}
        overlays = [
            tuple(x["arms"])
            for x in (comp_pairs or comps)
            if len(x.get("arms") or ()) == 2 and set(x["arms"]) <= drawn
        ]
        out.append(
            {
                "endpoint": ep,
                "label": SURVIVAL[ep],
                "name": SURVIVAL_NAMES[ep],
                "definition": look.report.get("endpoint_definitions", {}).get(ep, ""),
                "rows": rows,
                "panels": panels,
                "has_km": any("km" in p for p in panels),
                "overlays": list(dict.fromkeys(overlays)),
                "at_risk_days": risk_days,
                "at_risk": [
                    {"arm": p["arm"], "counts": p["at_risk"]} for p in panels if p.get("at_risk") is not None
                ],
                "has_km_companion": any(r["km_at"] for r in rows),
                "companion_pairs": [p["sentence"] for p in comp_pairs],
                "has_band": any(p.get("band") is not None for p in panels),
                "not_estimable": [f"{r['arm']}: {r['note']}" for r in rows if r["note"]],
                "few_events": [r["arm"] for r in rows if r["few_events"] and not r["note"]],
                "point_mass": any(r["failure"] for r in rows),
                "comparisons": [
                    {
                        # experimental : reference, as the engine prints every hazard ratio
                        "arms": " : ".join(c["arms"]),
                        "hr": _hr_text(c.get("hr")),
                        # exact (quadrature) for a randomized pair's hazard ratio: MCSE 0
                        "p": fmt_prob(c.get("prob_hr_below_1"), exact=c.get("mcse_prob_hr_below_1") == 0.0),
                        "sentence": c.get("sentence", ""),
                    }
                    for c in comps
                ],
            }
        )
    return {
        "present": True,
        "endpoints": out,
        "horizon": horizon,
        "km_available": times is not None,
        "competing": competing_risks_rows(look),
    }


def _km_at_text(comp: Mapping | None) -> str:
    """Kaplan-Meier S(180) / S(365) / S(730) with Greenwood 95% intervals, in one table cell."""
    if not comp:
        return ""

    def one(x):
        if x is None:
            return "beyond follow-up"
        if x["ci95_low"] is None:
            return f"{100 * x['survival']:.0f}%"
        return f"{100 * x['survival']:.0f}% ({100 * x['ci95_low']:.0f}-{100 * x['ci95_high']:.0f})"

    return " / ".join(one(x) for x in comp["at"].values())


def _check_text(chk: Mapping | None) -> str:
    """The model's posterior predictive check against Kaplan-Meier, in a table cell."""
    if not chk:
        return "-"
    lo, hi = chk.get("predictive_interval_km_median") or (None, None)
    pi = "" if lo is None else f"; KM median PI {lo:.0f}-{'NR' if hi is None else f'{hi:.0f}'}"
    return f"{'MISFIT' if chk.get('misfit') else 'fits'} (p {chk['p_value']:.2f}{pi})"


def competing_risks_rows(look: Look) -> list[dict]:
    """One row per arm and competing-risk endpoint (CIR, HSCT): counts and cumulative incidences."""

    def pct(at: Mapping | None) -> str:
        if not at:
            return "-"
        est = f"{100 * at['estimate']:.0f}%"
        if at.get("ci95_low") is None:
            return est
        return f"{est} ({100 * at['ci95_low']:.0f}-{100 * at['ci95_high']:.0f})"

    rows = []
    for a in look.arms:
        for name, c in (a.get("competing_risks") or {}).items():
            if a["status"] == "queued":
                continue
            at = c.get("at") or {}
            comp = c.get("competing_at") or {}
            rows.append(
                {
                    "endpoint": name.upper(),
                    "d180": pct(comp.get(180) or comp.get("180")),
                    "d365": pct(comp.get(365) or comp.get("365")),
                    "arm": a["arm"],
                    "n": c["n"],
                    "events": c["events"],
                    "competing": c["competing"],
                    "c180": pct(at.get(180) or at.get("180")),
                    "c365": pct(at.get(365) or at.get("365")),
                    "proportion": "-"
                    if c.get("proportion_transplanted") is None
                    else f"{100 * c['proportion_transplanted']:.0f}%",
                }
            )
    return rows


def _hr_text(hr: Mapping | None) -> str:
    if not hr or hr.get("median") is None:
        return "-"
    return f"{hr['median']:.2f} ({hr['ci95_low']:.2f}-{hr['ci95_high']:.2f})"


def history_points(look: Look) -> list[dict]:
    """Per look (up to this one): cutoff, status and the per-arm summary the ledger keeps."""
    if look.history:
        return [
            {
                "look": r.look,
                "cutoff": r.cutoff,
                "status": r.status,
                "arms": r.summary.get("arms", {}),
                "allocation": r.summary.get("allocation", {}),
            }
            for r in look.history
        ]
    summary = look_summary(look.report)
    return [
        {
            "look": look.number or 1,
            "cutoff": look.report["cutoff"],
            "status": look.report["status"],
            "arms": summary["arms"],
            "allocation": {c: b["probabilities"] for c, b in (look.report.get("allocation") or {}).items()},
        }
    ]


def randomization(look: Look) -> list[dict]:
    """Per randomized cohort: this look's allocation and its history across looks."""
    points = history_points(look)
    out = []
    rand_cfg = look.report["config"].get("randomization") or []
    cohorts = list(dict.fromkeys([c["cohort"] for c in rand_cfg] + list(look.report.get("allocation") or {})))
    for cohort in cohorts:
        block = (look.report.get("allocation") or {}).get(cohort)
        step = next((s for s in look.design.routing if s.cohort == cohort), None)
        arms = list(step.arms) if step else list((block or {}).get("probabilities", {}))
        hist = [
            {"look": p["look"], "cutoff": p["cutoff"], "allocation": p["allocation"][cohort]}
            for p in points
            if cohort in (p.get("allocation") or {})
        ]
        if step is not None and hist:  # the cohort's fixed ratio, used before the first look
            total = sum(step.allocation.values())
            start = {a: w / total for a, w in step.allocation.items()}
            hist.insert(0, {"look": "start", "cutoff": "fixed ratio", "allocation": start})
        rows = []
        if block:
            inp = block.get("inputs") or {}
            conc = (block.get("concurrent") or {}).get("arms") or {}
            for a in arms:
                rows.append(
                    {
                        "arm": a,
                        "label": look.labels.get(a, a),
                        "n": (inp.get("n_evaluable") or {}).get(a, "-"),
                        "p_best": fmt_prob((inp.get("prob_best") or {}).get(a)),
                        "p_best_concurrent": fmt_prob((conc.get(a) or {}).get("prob_best")),
                        "previous": fmt_pct((block.get("previous") or {}).get(a)),
                        "now": fmt_pct((block.get("probabilities") or {}).get(a)),
                        "reference": fmt_pct((block.get("reference") or {}).get(a)),
                    }
                )
        out.append(
            {
                "cohort": cohort,
                "arms": arms,
                "rule": (block or {}).get("rule", ""),
                "sentence": (block or {}).get("sentence", ""),
                "drift": ((block or {}).get("concurrent") or {}).get("sentence", ""),
                "time_adjusted": [x["sentence"] for x in (block or {}).get("time_adjusted") or []],
                "accepted": ((block or {}).get("if_recommendations_accepted") or {}).get("sentence", ""),
                "rows": rows,
                "history": hist,
            }
        )
    return out


def _rule_thresholds(look: Look, endpoint: str, kind: str, reference: str) -> list[tuple[float, str]]:
    out = []
    for r in look.report["config"].get("rules") or []:
        if r.get("endpoint") == endpoint and r.get("kind") == kind and r.get("reference") == reference:
            word = "graduate above" if kind == "efficacy" else "futility below"
            out.append((float(r["threshold"]), f"{r['id']}: {word} {fmt_pct(r['threshold'])}"))
    return out


def trajectories(look: Look) -> dict:
    """Probabilities per arm across looks (ledger), with the thresholds of the rules on them."""
    points = [p for p in history_points(look)]
    panels = [
        {
            "title": "P(CRc > null rate)",
            "key": "prob_above_null",
            "thresholds": _rule_thresholds(look, "crc", "efficacy", "null_rate"),
        },
        {
            "title": "P(CRc > target rate)",
            "key": "prob_above_target",
            "thresholds": _rule_thresholds(look, "crc", "futility", "target_rate"),
        },
    ]
    if any(a.get("prob_best") is not None for p in points for a in p["arms"].values()):
        panels.append(
            {"title": "P(best CRc) within the randomized cohort", "key": "prob_best", "thresholds": []}
        )
    arms = [a["arm"] for a in look.arms if a["status"] != "queued" or a["n_enrolled"]]
    table = []
    for arm in arms:
        cells = []
        for p in points:
            s = p["arms"].get(arm) or {}
            cells.append(
                {
                    "n": s.get("n_enrolled"),
                    "crc": f"{s['crc_responders']}/{s['crc_evaluable']}"
                    if s.get("crc_evaluable") is not None
                    else "-",
                    "p_null": fmt_prob(s.get("prob_above_null")),
                    "p_target": fmt_prob(s.get("prob_above_target")),
                    "status": s.get("status") or "-",
                    "actions": ", ".join(s.get("actions") or []) or "-",
                }
            )
        table.append({"arm": arm, "label": look.labels.get(arm, arm), "cells": cells})
    return {
        "points": [
            {"look": p["look"], "cutoff": p["cutoff"], "status": p["status"], "arms": p["arms"]}
            for p in points
        ],
        "panels": panels,
        "table": table,
        "n_looks": len(points),
    }


def diagnostics(look: Look) -> dict:
    """Per-endpoint convergence diagnostics with every fit attempt, and the configured limits."""
    d = look.report["diagnostics"]
    lim = (look.report["config"].get("sampler") or {}).get("limits") or {}
    rows = []
    for ep, b in d.get("by_endpoint", {}).items():
        rows.append(
            {
                "endpoint": ep,
                "model": b.get("model", "-"),
                "rhat": f"{b['max_rhat']:.3f}" if b.get("max_rhat") is not None else "-",
                "ess_bulk": f"{b['min_ess_bulk']:.0f}" if b.get("min_ess_bulk") is not None else "-",
                "ess_tail": f"{b['min_ess_tail']:.0f}" if b.get("min_ess_tail") is not None else "-",
                "divergences": b.get("divergences", "-"),
                "converged": b.get("converged"),
                "failures": "; ".join(b.get("failures") or []),
                "attempts": [
                    f"tune {x['tune']}, target_accept {x['target_accept']}, seed {x['seed']}: "
                    + ("converged" if x.get("converged") else "; ".join(x.get("failures") or ["failed"]))
                    for x in b.get("attempts", [])
                ],
            }
        )
    sampler = look.report["config"].get("sampler") or {}
    return {
        "rows": rows,
        "limits": lim,
        "sampler": {k: sampler.get(k) for k in ("backend", "chains", "draws", "tune", "target_accept")},
        "converged": bool(d.get("converged")),
    }


def summary(look: Look) -> dict:
    """First page: status, refusal in words, recommendations with their reasons."""
    r = look.report
    failed = [
        {
            "endpoint": ep,
            "failures": "; ".join(b.get("failures") or []),
            "attempts": len(b.get("attempts", [])),
        }
        for ep, b in r["diagnostics"].get("by_endpoint", {}).items()
        if not b.get("converged")
    ]
    recs = [
        {
            "action": x["action"],
            "action_label": ACTION_LABELS.get(x["action"], x["action"]),
            "arm": x.get("arm") or ", ".join(x.get("arms") or []) or "-",
            "label": x.get("label") or "",
            "stage": STAGE_LABELS.get(x.get("stage"), ""),
            "reason": short_reason(x),
            "sentence": x["sentence"],
            "mc_uncertain": bool(x.get("mc_uncertain")),
            # beside an action only: the note in full, and its grades for the first page
            "reference_note": x.get("reference_note", "") if is_decisive(x) else "",
            "reference_tags": reference_tags(x),
        }
        for x in r.get("recommendations") or []
    ]
    order = {a: i for i, a in enumerate(PRECEDENCE)}
    recs.sort(key=lambda x: order.get(x["action"], len(order)) if x["action"] != Action.CONTINUE else 99)
    signals = [
        {
            "arm": x["arm"],
            "label": x.get("label") or "",
            "sentence": sig["sentence"],
            # the reference's provenance grade (V, M, D), "" when the config declares none
            "grade": sig.get("reference_grade") or "",
        }
        for x in r.get("recommendations") or []
        for sig in x.get("safety_signals") or []
    ]
    return {
        "refused": look.refused,
        "refusal": r.get("refusal") or "",
        "failed": failed,
        "recommendations": recs,
        "safety_signals": signals,
        "coherence": [c["sentence"] for c in r.get("coherence") or []],
        "n_action": sum(x["action"] != Action.CONTINUE for x in recs),
        "comparisons": [c["sentence"] for c in r.get("comparisons") or []],
        "opening_checks": [c["short"] for c in r.get("opening_checks") or []],
        "survival_comparisons": [c["sentence"] for c in r.get("survival_comparisons") or []],
        "queue": [q["sentence"] for q in r.get("queue") or []],
        "data_changes": {
            k: (r.get("data_changes") or {}).get(k)
            for k in (
                "previous_look",
                "n_new_patients",
                "n_routine",
                "n_cleaning",
                "n_affecting_previous_look",
            )
        }
        if r.get("data_changes")
        else None,
        "n_enrolled": sum(a["n_enrolled"] for a in look.arms),
        "n_reconciliation": (r.get("reconciliation") or {}).get("n_disagreements"),
        "schedule": ((r.get("look") or {}).get("schedule") or {}).get("sentence"),
        "n_warnings": len(r.get("warnings") or []),
        "deviations": {
            "routing": sum("the routing rules send them" in w for w in r.get("warnings") or []),
            "randomized_flag": sum("column 'randomized'" in w for w in r.get("warnings") or []),
        },
    }


def reference_tags(rec: Mapping) -> str:
    """The grades of an acting recommendation's unverified references (``"[M] [D]"``), else ``""``.

    The first page prints them beside the action; the values and sources follow in "Recommendations
    in full" (the note) and in the appendix table.
    """
    if not (rec.get("reference_note") and is_decisive(rec)):
        return ""
    refs = rec.get("references") or []
    tags = [grade_tag(x.get("grade")) for x in refs if x.get("grade") != Grade.VERIFIED]
    return " ".join(dict.fromkeys(tags))


def short_reason(rec: Mapping) -> str:
    """A recommendation's reason in a line, for the first page (the full sentence follows later)."""
    act = rec["action"]
    if act == Action.ADJUST_RANDOMIZATION:
        probs = rec.get("probabilities") or {}
        return "randomize " + " : ".join(f"{a} {fmt_pct(p, 0)}" for a, p in probs.items() if p > 0)
    if act == Action.ADD_ARM:
        return f"entry conditions met (cohort {rec.get('cohort')})"
    parts = []
    final = rec.get("final_result")
    if final:
        parts.append(final.replace("_", " "))
    if act != Action.CONTINUE or rec.get("withheld"):
        for x in rec.get("rules") or []:
            if x.get("fired") or final:
                parts.append(f"{x['rule']} {fmt_prob(x['prob'])} vs {fmt_pct(x['threshold'])}")
    if rec.get("withheld"):
        parts.append(f"{rec['withheld']['action']} withheld (coherence)")
    if act == Action.CONTINUE and not parts:
        parts.append("no rule fires")
    for sig in rec.get("safety_signals") or []:
        label = BINARY_ENDPOINTS[sig["endpoint"]].label
        parts.append(
            f"safety signal: {label} {sig['events']}/{sig['n_evaluable']} vs reference "
            f"{fmt_pct(sig['reference_rate'], 0)} (P {fmt_prob(sig['prob_above_reference'])})"
        )
    for f in rec.get("fragile") or []:
        parts.append(f"FRAGILE: {f['rule']} flips under {', '.join(f['flips_under'])}")
    for c in rec.get("prior_data_conflict") or []:
        parts.append(f"prior-data conflict on {c['endpoint']} (tail probability {fmt_prob(c['conflict_p'])})")
    # what accepting it means is stated once for the whole platform on the first page (coherence)
    # and per recommendation in "Recommendations in full"
    return "; ".join(parts)


def robustness_section(look: Look) -> dict:
    """The robustness grid: each evaluated decision under each declared alternative analysis."""
    panel = look.report.get("robustness") or {}
    analyses = [a["id"] for a in panel.get("analyses") or []]
    rows = []
    for x in panel.get("results") or []:
        by = {a["analysis"]: a for a in x["alternatives"]}
        cells = []
        for a in analyses:
            alt = by.get(a)
            cells.append(
                None
                if alt is None
                else {
                    "prob": fmt_prob(alt["prob"]),
                    "flips": alt["fired"] != x["fired"],
                    "fired": alt["fired"],
                }
            )
        rows.append(
            {
                "rule": x["rule"],
                "arms": ", ".join(x["arms"]),
                "action": x["action"],
                "threshold": fmt_pct(x["threshold"]),
                "prob": fmt_prob(x["prob"]),
                "fired": x["fired"],
                "fragile": x["fragile"],
                "cells": cells,
            }
        )
    rows.sort(key=lambda r: (not r["fragile"], not r["fired"], r["rule"], r["arms"]))
    priors = [
        {**c, "conflict_p": fmt_prob(c["conflict_p"]), "ess": f"{c['prior_ess']:.3g} {c['ess_unit']}"}
        for c in panel.get("priors") or []
    ]
    return {
        "present": bool(panel),
        "analyses": panel.get("analyses") or [],
        "ids": analyses,
        "rows": rows,
        "n_fragile": sum(r["fragile"] for r in rows),
        "priors": priors,
        "conflict_level": fmt_pct(panel.get("conflict_level")) if panel else "",
        "conflicts": [c for c in priors if c["conflict"]],
    }


def data_changes(look: Look) -> dict:
    """The ledger's data-change report since the previous look (per patient, closed report only)."""
    dc = look.report.get("data_changes")
    if not dc:
        return {"present": False}
    return {
        "present": True,
        "sentence": dc.get("sentence", ""),
        "identical": dc.get("identical", False),
        "counts": {
            k: dc.get(k)
            for k in (
                "n_previous",
                "n_current",
                "n_new_patients",
                "n_changed",
                "n_routine",
                "n_cleaning",
                "n_affecting_previous_look",
            )
        },
        "patients": [
            {
                "subject": p["subject_id"],
                "arm": p.get("arm", "-"),
                "kind": "routine follow-up" if p.get("routine") else "data cleaning",
                "changes": "; ".join(
                    f"{c['field']}: {_shown(c['previous'])} -> {_shown(c['current'])}" for c in p["changes"]
                ),
                "effect": ", ".join(
                    f"{ep} {v[0]} -> {v[1]}" for ep, v in (p.get("previous_look_effect") or {}).items()
                )
                or "-",
            }
            for p in dc.get("changed_patients") or []
        ],
        "late": dc.get("late_registrations") or [],
        "removed": dc.get("removed_patients") or [],
        "previous_look": dc.get("previous_look"),
        "previous_cutoff": dc.get("previous_cutoff"),
    }


def _shown(v) -> str:
    if v is None:
        return "blank"
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


def reproducibility(look: Look) -> dict:
    """Hashes, seed, versions, the command to rerun, definitions and the config as run."""
    from adaptive.output import versions

    r = look.report
    post_sha = _sha256(look.posterior_path) if look.posterior_path else None
    memo_versions = {}
    from importlib import metadata

    for pkg in ("rr-aml-adaptive", "matplotlib", "arviz", "jinja2", "weasyprint"):
        try:
            memo_versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            memo_versions[pkg] = "not installed"
    cmd = (
        f"adaptive interim --config {r.get('config_file') or 'CONFIG'} --data {r.get('data_file') or 'DATA'} "
        f"--cutoff {r['cutoff']} --seed {r['seed']} --out NEW_FOLDER"
    )
    own = next((h for h in look.history if h.report_sha256 == look.report_sha256), None)
    # relative to the study folder (the look folder's parent): no home folder or user name in the memo
    where = (
        f"ledger {relative_path(look.ledger_path, look.folder.parent)}" if look.ledger_path else "no ledger"
    )
    return {
        "rows": [
            ("Look", f"{look.number if look.number is not None else '-'} ({where})"),
            ("Recorded (UTC)", own.recorded_at if own else "-"),
            ("Data cutoff", r["cutoff"]),
            ("Seed", str(r["seed"])),
            ("Config file", f"{r.get('config_file')} (SHA-256 {r.get('config_sha256')})"),
            ("Data file", f"{r.get('data_file')} (SHA-256 {r.get('data_sha256')})"),
            ("recommendations.json", f"SHA-256 {look.report_sha256}"),
            ("posterior.nc", f"SHA-256 {post_sha}" if post_sha else "absent"),
            ("Patient data used by this memo", look.data_source or "none"),
        ],
        "versions": r.get("versions") or {},
        "memo_versions": memo_versions,
        "memo_engine": versions().get("rr-aml-adaptive"),
        "command": cmd,
        "definitions": r.get("endpoint_definitions") or {},
        "estimands": r.get("estimands") or {},
        "config_yaml": yaml.safe_dump(r.get("config"), sort_keys=False, width=100),
        "warnings": r.get("warnings") or [],
        "reconciliation": r.get("reconciliation"),
    }


def reference_values(look: Look) -> dict:
    """The appendix table "Reference values and their sources".

    Every reference value this look's recommendations were compared against
    (``recommendations[].references``), with its grade and source as the config records them, and
    the grades in words.
    """
    rows: dict[str, dict] = {}
    for rec in look.report.get("recommendations") or []:
        for ref in rec.get("references") or []:
            ident = ref.get("key") or ref["label"]
            row = rows.setdefault(
                ident,
                {
                    "key": ref.get("key") or "-",
                    "label": ref["label"],
                    "value": f"{ref['value']:g}",
                    "grade": grade_tag(ref.get("grade")),
                    "verified": ref.get("grade") == Grade.VERIFIED,
                    "source": ref.get("source") or "no provenance recorded in the config",
                    "rules": [],
                },
            )
            row["rules"] += [x for x in ref.get("rules") or [] if x not in row["rules"]]
    return {
        "rows": [rows[k] for k in sorted(rows)],
        "legend": [(grade_tag(g), words) for g, words in GRADE_MEANINGS.items()],
    }


def closed_data(look: Look) -> dict:
    """Everything the closed (unblinded) report shows, in section order."""
    return {
        "look": _header(look),
        "summary": summary(look),
        "enrolment": enrolment(look),
        "baseline": baseline_section(look, pooled=False),
        "tables": endpoint_tables(look),
        "adverse_events": adverse_events_section(look, pooled=False),
        "densities": crc_density_inputs(look),
        "forest": forest_rows(look) if not look.refused else [],
        "survival": survival_section(look),
        "robustness": robustness_section(look),
        "companion_label": LABEL,
        "randomization": randomization(look),
        "trajectories": trajectories(look),
        "data_changes": data_changes(look),
        "diagnostics": diagnostics(look),
        "appendix": reproducibility(look),
        "references": reference_values(look),
        "notes": list(look.notes),
    }


def _header(look: Look) -> dict:
    r = look.report
    return {
        "trial": r.get("trial", ""),
        "cutoff": r["cutoff"],
        "number": look.number,
        "status": r.get("status"),
        "previous": ((r.get("look") or {}).get("previous_look") or {}),
    }


# ============================================================================= open report
def jeffreys(y: int, n: int) -> tuple[float | None, float | None, float | None]:
    """Observed rate and the equal-tailed 95% Jeffreys interval (Beta(y + 1/2, n - y + 1/2))."""
    if n <= 0:
        return None, None, None
    lo = 0.0 if y == 0 else float(stats.beta.ppf(0.025, y + 0.5, n - y + 0.5))
    hi = 1.0 if y == n else float(stats.beta.ppf(0.975, y + 0.5, n - y + 0.5))
    return y / n, lo, hi


def pooled_counts(report: dict) -> dict[str, dict[str, int]]:
    """Per endpoint: evaluable, events, pending and not-evaluable patients summed over all arms."""
    out: dict[str, dict[str, int]] = {}
    for a in report["arms"]:
        for ep, e in a["endpoints"].items():
            c = out.setdefault(ep, {"n": 0, "y": 0, "pending": 0, "not_evaluable": 0})
            c["n"] += int(e["n_evaluable"])
            c["y"] += int(e["responders"])
            c["pending"] += int(e["n_pending"])
            c["not_evaluable"] += int(e.get("n_not_evaluable") or 0)
    return out


#: fields checked for completeness: (column, who is expected to have it, description)
_COMPLETENESS = (
    ("site", "all", "every enrolled patient"),
    (
        "best_response",
        "past_window",
        "enrolled at least the arm's response landmark before the cutoff, alive or not",
    ),
    ("mrd_negative", "crc", "in CR/CRi"),
    ("last_contact_on", "alive", "not known to have died by the cutoff"),
    ("karyotype_risk", "all", "every enrolled patient"),
    ("intensive_eligible", "all", "every enrolled patient"),
    ("prior_venetoclax_3m", "all", "every enrolled patient"),
)


def _completeness(look: Look, f: pd.DataFrame) -> list[dict]:
    cutoff = look.cutoff
    landmark = {a.id: a.response_landmark_days for a in look.design.arms}
    default = look.design.assessment.response_window_days
    arms = f["arm"] if "arm" in f.columns else [None] * len(f)
    known = {
        "all": np.ones(len(f), dtype=bool),
        # the arm's landmark; the open report's frame has no arm column: the default landmark
        "past_window": np.array(
            [
                (cutoff - d).days >= landmark.get(a, default)
                for d, a in zip(f["enrolled_on"], arms, strict=True)
            ],
            dtype=bool,
        ),
        "crc": np.array(
            [
                r in ("CR", "CRi") and d is not None and d <= cutoff
                for r, d in zip(f["best_response"], f["response_on"], strict=True)
            ],
            dtype=bool,
        ),
        "alive": np.array([d is None or d > cutoff for d in f["death_on"]], dtype=bool),
    }
    rows = []
    for col, who, text in _COMPLETENESS:
        if col not in f.columns:
            continue
        mask = known[who]
        vals = f.loc[mask, col]
        n = int(mask.sum())
        if col == "best_response":
            rec = int(
                sum(
                    v is not None and (d is None or d <= cutoff)
                    for v, d in zip(vals, f.loc[mask, "response_on"], strict=True)
                )
            )
        elif col == "last_contact_on":
            rec = int(sum(v is not None for v in vals))
        else:
            rec = int(sum(v is not None for v in vals))
        rows.append(
            {"field": col, "expected": text, "n": n, "recorded": rec, "share": rec / n if n else None}
        )
    return rows


def open_data(look: Look) -> dict:
    """Everything the open report shows: pooled over all arms, nothing per arm.

    The per-arm blocks of the look are summed before anything else is computed; patient rows are
    used without their arm column.
    """
    r = look.report
    pooled = pooled_counts(r)
    labels = {ep: (BINARY_ENDPOINTS[ep].label if ep in BINARY_ENDPOINTS else ep) for ep in pooled}
    outcomes = []
    for ep, c in pooled.items():
        rate, lo, hi = jeffreys(c["y"], c["n"])
        outcomes.append(
            {
                "endpoint": ep,
                "label": labels[ep],
                "y": c["y"],
                "n": c["n"],
                "pending": c["pending"],
                "not_evaluable": c["not_evaluable"],
                "rate": rate,
                "lo": lo,
                "hi": hi,
                "rate_text": fmt_pct(rate),
                "interval_text": fmt_interval(lo, hi),
                "definition": r.get("endpoint_definitions", {}).get(ep, ""),
            }
        )
    f = _enrolled_frame(look)
    accrual: dict = {"total": sum(int(a["n_enrolled"]) for a in r["arms"]), "has_dates": f is not None}
    completeness: list[dict] = []
    if f is not None:
        f = f.drop(columns=["arm"])  # from here on the open report never sees an arm
        dates = sorted(f["enrolled_on"])
        months = pd.period_range(dates[0], look.cutoff, freq="M") if dates else []
        per_month = pd.Series([pd.Period(d, "M") for d in dates]).value_counts()
        accrual.update(
            dates=dates,
            first=dates[0].isoformat() if dates else "-",
            last=dates[-1].isoformat() if dates else "-",
            monthly={str(m): int(per_month.get(m, 0)) for m in months},
            sites=[
                {
                    "site": s,
                    "n": int((f["site"] == s).sum()),
                    "first": min(f.loc[f["site"] == s, "enrolled_on"]).isoformat(),
                    "last": max(f.loc[f["site"] == s, "enrolled_on"]).isoformat(),
                }
                for s in sorted(set(f["site"]))
            ],
            last_90_days=int(sum(d > look.cutoff - timedelta(days=90) for d in dates)),
        )
        completeness = _completeness(look, f)
    dc = r.get("data_changes") or {}
    return {
        "look": _header(look),
        "accrual": accrual,
        "outcomes": outcomes,
        "completeness": completeness,
        "baseline": baseline_section(look, pooled=True),
        "adverse_events": adverse_events_section(look, pooled=True),
        "schedule": ((r.get("look") or {}).get("schedule") or {}).get("sentence"),
        "data_changes": {
            k: dc.get(k)
            for k in (
                "previous_look",
                "previous_cutoff",
                "n_new_patients",
                "n_routine",
                "n_cleaning",
                "n_affecting_previous_look",
            )
        }
        if dc
        else None,
        "appendix": {
            "config_sha256": r.get("config_sha256"),
            "data_sha256": r.get("data_sha256"),
            "data_file": r.get("data_file"),
            "report_sha256": look.report_sha256,
        },
        "has_patients": f is not None,
    }
