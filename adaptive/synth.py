"""Synthetic patient-level exports that look like the real thing.

Patients arrive as a Poisson process (``accrual_per_month``), at sites drawn by weight, with
routing characteristics drawn from the scenario's prevalences. They are routed by the *config's*
routing steps (the code that validates real data), restricted to active arms, and randomized by
the cohort's allocation weights. Outcomes then unfold in calendar time: best response assessed
``response_days`` after enrolment (the arm's own range when its truth gives one, else the
scenario's); deaths from a piecewise-constant hazard that reproduces the scenario's 30- and
60-day mortality and median OS; relapse after CR/CRi; transplant for some responders; dropout.
The export is taken ``export_lag_days`` after the last enrolment and shows only what had
happened by then (later responses blank, later deaths unknown).

Baseline characteristics (:func:`baseline`: age, sex, ECOG, relapsed vs refractory, prior HSCT,
ELN 2022 risk) are drawn last, from a child of the seed's random stream: adding them changed no
other column of an export made with the same seed.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from adaptive.config import Design, RoutingStep
from adaptive.data import BASELINE_COLUMNS, OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from adaptive.routing import route
from adaptive.scenario import ArmTruth, Scenario


def death_times(truth: ArmTruth, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF death times (days) of the scenario's piecewise hazard for uniforms ``u``.

    ``S(30) = 1 - m30``, ``S(60) = 1 - m60`` (constant hazard in each interval) and an exponential
    tail after day 60 with ``S(median_os_days) = 1/2``.
    """
    m30, m60, med = truth.mortality_30d, truth.mortality_60d, truth.median_os_days
    s = 1.0 - u  # survival probability reached at death
    h1 = -np.log(1.0 - m30) / 30.0
    h2 = -np.log((1.0 - m60) / (1.0 - m30)) / 30.0
    h3 = np.log(2.0 * (1.0 - m60)) / (med - 60.0)
    t = np.where(
        s >= 1.0 - m30,
        -np.log(s) / h1,
        np.where(
            s >= 1.0 - m60,
            30.0 + -np.log(s / (1.0 - m30)) / max(h2, 1e-12),
            60.0 + -np.log(s / (1.0 - m60)) / h3,
        ),
    )
    return t


def _active_routing(design: Design) -> tuple[RoutingStep, ...]:
    """Routing steps restricted to active arms (a step with none is skipped)."""
    active = {a.id for a in design.arms if a.status == "active"}
    steps = []
    for s in design.routing:
        arms = tuple(a for a in s.arms if a in active)
        if arms:
            alloc = {a: w for a, w in s.allocation.items() if a in arms}
            steps.append(RoutingStep(s.cohort, s.when, s.when_any, arms, alloc))
    return tuple(steps)


def _iso(d: date | None) -> str:
    return "" if d is None else d.isoformat()


def _b(x: bool | None) -> str:
    return "" if x is None else ("true" if x else "false")


def synthesize(design: Design, scenario: Scenario, n: int, seed: int) -> pd.DataFrame:
    """Simulate a patient export of ``n`` enrolled patients (strings, as a CSV would hold them).

    Arms close when they reach their ``max_n``; patients whose cohort has no open arm are not
    enrolled; enrolment stops early when every arm is full.
    """
    rng = np.random.default_rng(seed)
    max_n = {a.id: a.max_n for a in design.arms}
    enrolled_n = dict.fromkeys(max_n, 0)
    full: set[str] = set()
    steps = _active_routing(design)
    sites = list(scenario.sites)
    site_p = np.array([scenario.sites[s] for s in sites], float)
    site_p /= site_p.sum()
    mean_gap = 30.4375 / scenario.accrual_per_month
    prev = scenario.prevalence
    kt = list(prev.karyotype_risk)
    kt_p = np.array([prev.karyotype_risk[k] for k in kt], float)
    kt_p /= kt_p.sum()
    patients = []  # (enrolment day, arm, characteristics, randomized, site)
    t = 0.0
    screened = 0
    while len(patients) < n and len(full) < len(max_n):
        t += rng.exponential(mean_gap)
        screened += 1
        flt3 = rng.random() < prev.flt3
        tkd = bool(flt3 and rng.random() < prev.flt3_tkd_given_flt3)
        pt = {
            "new_drug_eligible": bool(rng.random() < prev.new_drug_eligible),
            "idh1": bool(rng.random() < prev.idh1),
            "flt3_itd": bool(flt3 and not tkd),
            "flt3_tkd": tkd,
            "intensive_eligible": bool(rng.random() < prev.intensive_eligible),
            "prior_venetoclax_3m": bool(rng.random() < prev.prior_venetoclax_3m),
            "karyotype_risk": str(rng.choice(kt, p=kt_p)),
        }
        r = route(steps, pt)
        arms = [a for a in r.arms if a not in full]
        if not arms:
            continue  # the patient's cohort has no open arm: not enrolled
        step = next(s for s in steps if s.cohort == r.cohort)
        w = np.array([step.allocation[a] for a in arms], float)
        arm = str(rng.choice(arms, p=w / w.sum()))
        randomized = len(r.arms) > 1
        open_arms = sorted({a for s in steps for a in s.arms} - full)
        if scenario.routing_deviation and rng.random() < scenario.routing_deviation:
            arm = str(rng.choice(open_arms))
            randomized = False
        patients.append((int(t), arm, pt, randomized, str(rng.choice(sites, p=site_p))))
        enrolled_n[arm] += 1
        if enrolled_n[arm] >= max_n[arm]:
            full.add(arm)
    last_day = patients[-1][0] if patients else 0
    export = scenario.start_date + timedelta(days=last_day + scenario.export_lag_days)
    rows = []
    # baseline draws from a child stream (spawn key (0,)) of the seed: the outcome stream above and
    # below is the one it always was, so every other column keeps its values for a given seed
    child = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    for i, (day0, arm, pt, randomized, site) in enumerate(patients):
        enrolled = scenario.start_date + timedelta(days=day0)
        outcome = _outcomes(scenario.arms[arm], scenario, enrolled, export, rng)
        rows.append(
            {
                "subject_id": f"S{i + 1:04d}",
                "site": site,
                "arm": arm,
                "enrolled_on": enrolled.isoformat(),
                "randomized": _b(randomized),
                **{k: _b(v) if isinstance(v, bool) else v for k, v in pt.items()},
                **outcome,
                **baseline(pt, child),
            }
        )
    cols = list(REQUIRED_COLUMNS) + list(OPTIONAL_COLUMNS) + list(BASELINE_COLUMNS)
    out = pd.DataFrame(rows, columns=cols)
    out.attrs["export_date"] = export.isoformat()
    return out


#: ECOG 0-4 probabilities of patients fit for intensive treatment and of unfit patients
ECOG_P = {True: (0.40, 0.45, 0.15, 0.0, 0.0), False: (0.15, 0.45, 0.32, 0.08, 0.0)}
#: ELN 2022 risk given an intermediate karyotype (NPM1 or CEBPA bZIP favorable; TP53, ASXL1,
#: RUNX1 ... adverse); a favorable or adverse karyotype keeps its category, FLT3-ITD is intermediate
ELN_GIVEN_INTERMEDIATE = {"favorable": 0.20, "intermediate": 0.50, "adverse": 0.30}


def baseline(pt: dict, rng: np.random.Generator) -> dict[str, str]:
    """Plausible R/R AML baseline characteristics of one patient (strings, as a CSV holds them).

    Age by fitness (fit for intensive treatment: about 56 +- 10 years; unfit: about 73 +- 6), so
    the fit cohorts are younger and the unfit (venetoclax + azacitidine) cohort older; 55% male;
    ECOG 0-2 mostly, 3 in some unfit patients (:data:`ECOG_P`); 65% relapsed, 35% refractory;
    prior allogeneic HSCT in a quarter of relapsed fit patients, fewer unfit, none refractory;
    ELN 2022 risk from the karyotype and FLT3-ITD (:data:`ELN_GIVEN_INTERMEDIATE`).
    """
    fit = bool(pt["intensive_eligible"])
    age = rng.normal(56.0, 10.0) if fit else rng.normal(73.0, 6.0)
    age = float(np.clip(np.round(age), 18 if fit else 60, 80 if fit else 90))
    sex = "M" if rng.random() < 0.55 else "F"
    ecog = int(rng.choice(5, p=ECOG_P[fit]))
    relapsed = bool(rng.random() < 0.65)
    prior_hsct = relapsed and bool(rng.random() < (0.25 if fit else 0.08))
    u = rng.random()  # drawn for every patient, used for an intermediate karyotype
    karyotype = pt["karyotype_risk"]
    if karyotype in ("favorable", "adverse"):
        eln = karyotype
    elif pt["flt3_itd"]:
        eln = "intermediate"
    else:
        cum = np.cumsum(list(ELN_GIVEN_INTERMEDIATE.values()))
        eln = next(k for k, c in zip(ELN_GIVEN_INTERMEDIATE, cum, strict=True) if u < c)
    return {
        "age": f"{age:.0f}",
        "sex": sex,
        "ecog": str(ecog),
        "disease_status": "relapsed" if relapsed else "refractory",
        "prior_hsct": _b(prior_hsct),
        "eln2022_risk": eln,
    }


def _outcomes(truth: ArmTruth, sc: Scenario, enrolled: date, export: date, rng) -> dict:
    day = lambda t: enrolled + timedelta(days=int(np.floor(t)))  # noqa: E731
    t_death = float(death_times(truth, rng.random(1))[0])
    t_dropout = float(rng.exponential(365.25 / sc.dropout_per_year)) if sc.dropout_per_year else np.inf
    t_export = (export - enrolled).days
    t_obs_end = min(t_dropout, t_export)  # follow-up ends at dropout or export
    lo, hi = truth.response_days if truth.response_days is not None else sc.response_days
    t_resp = float(rng.integers(lo, hi + 1))
    cats = ["CR", "CRi", "PR", "NE"]
    probs = [truth.cr, truth.cri, truth.pr, truth.ne]
    u = rng.random()
    cum = np.cumsum(probs)
    resp = next((c for c, c_p in zip(cats, cum, strict=True) if u < c_p), "NR")
    out = dict.fromkeys(
        (
            "best_response",
            "response_on",
            "mrd_negative",
            "relapse_on",
            "death_on",
            "last_contact_on",
            "hsct_on",
        ),
        "",
    )
    died = t_death <= t_obs_end
    if t_resp <= min(t_death, t_obs_end):  # assessed, alive and followed at assessment
        out["best_response"] = resp
        if resp in ("CR", "CRi", "PR") or rng.random() >= sc.response_date_missing_for_nr:
            out["response_on"] = _iso(day(t_resp))
        if resp in ("CR", "CRi"):
            if rng.random() >= sc.mrd_missing:
                out["mrd_negative"] = _b(bool(rng.random() < truth.mrd_negative_given_crc))
            t_rel = t_resp + float(rng.exponential(truth.median_relapse_days / np.log(2)))
            if t_rel < min(t_death, t_obs_end):
                out["relapse_on"] = _iso(day(t_rel))
            if rng.random() < truth.hsct_given_crc:
                t_hsct = t_resp + float(rng.integers(30, 121))
                if t_hsct < min(t_death, t_obs_end, t_rel):
                    out["hsct_on"] = _iso(day(t_hsct))
    elif died and t_death < t_resp:
        out["best_response"] = ""  # died before assessment: failure by derivation rules
    if died:
        out["death_on"] = _iso(day(t_death))
        out["last_contact_on"] = out["death_on"]
    else:
        out["last_contact_on"] = _iso(day(t_obs_end))
    # keep dates consistent after flooring to whole days
    if out["relapse_on"] and out["death_on"] and out["relapse_on"] > out["death_on"]:
        out["relapse_on"] = out["death_on"]
    return out


def _adsl_names() -> dict[str, str]:
    """ADSL variables (v5 names) written for the engine's columns: the ADaM reader's defaults.

    The standard ones (:data:`adaptive.adam.ADSL_DEFAULTS`, without the optional treatment start
    and baseline characteristics, written apart) and then the trial-specific ones
    (:data:`adaptive.adam.ADSL_TRIAL_NAMES`), in that order (the XPT's column order).
    """
    from adaptive.adam import ADSL_DEFAULTS, ADSL_TRIAL_NAMES

    core = {c: v for c, v in ADSL_DEFAULTS.items() if c != "treatment_start_on" and c not in BASELINE_COLUMNS}
    return core | ADSL_TRIAL_NAMES


_PARAM = {
    "os": "Overall Survival (days)",
    "efs": "Event-Free Survival, ELN 2022 (days)",
    "rfs": "Relapse-Free Survival (days)",
}


def _sas_day(s: str) -> date | None:
    return date.fromisoformat(s) if s else None


def _yn(s: str) -> str:
    return {"true": "Y", "false": "N"}.get(s, "")


def adam_datasets(flat: pd.DataFrame, design: Design, export: date) -> dict[str, pd.DataFrame]:
    """ADSL, ADRS and ADTTE of a synthetic export (strings as :func:`synthesize` gives them).

    Variable names are SAS v5 names (at most 8 characters; the ADaM reader's defaults, see
    :data:`adaptive.adam.ADSL_TRIAL_NAMES`); flags are ``Y``/``N``, dates python dates (SAS dates
    with a ``DATE9.`` format once written). ADTTE holds OS, EFS and RFS as the engine derives them
    at ``export`` (:func:`adaptive.derive.derive`), in the config's ``data.adtte`` codes and day
    convention, so that the reconciliation of a look at the export date finds no disagreement.
    """
    from adaptive.adam import ADRS_COLUMNS, ADSL_DEFAULTS
    from adaptive.columns import BOOL_COLUMNS, DATE_COLUMNS
    from adaptive.data import PatientTable, validate_frame
    from adaptive.derive import derive

    names = _adsl_names()
    adsl = pd.DataFrame({v: flat[c] for c, v in names.items() if c not in ADRS_COLUMNS})
    for c, v in names.items():
        if c in DATE_COLUMNS:
            adsl[v] = adsl[v].map(_sas_day)
        elif c in BOOL_COLUMNS:
            adsl[v] = adsl[v].map(_yn)
    for c in BASELINE_COLUMNS:  # under the reader's default names: AGE, SEX, ECOGBL, ...
        if c in flat.columns:
            v = ADSL_DEFAULTS[c]
            if c in ("age", "ecog"):  # SAS numbers
                adsl[v] = flat[c].map(lambda s: float(s) if s else float("nan"))
            else:
                adsl[v] = flat[c].map(_yn) if c == "prior_hsct" else flat[c]
    codes = design.raw.data.adrs
    recs = []
    for r in flat.to_dict("records"):
        if r["best_response"]:
            recs.append(
                (r["subject_id"], codes.best_response, r["best_response"], _sas_day(r["response_on"]))
            )
        if r["relapse_on"]:
            recs.append((r["subject_id"], codes.relapse, "Y", _sas_day(r["relapse_on"])))
        if r["mrd_negative"]:
            recs.append((r["subject_id"], codes.mrd_negative, _yn(r["mrd_negative"]), None))
    adrs = pd.DataFrame(recs, columns=["USUBJID", "PARAMCD", "AVALC", "ADT"])
    typed, _warnings = validate_frame(flat.copy(), design, source="synth", row_word="line")
    survival = derive(PatientTable(frame=typed, path=None, sha256=""), design, export).survival
    assert survival is not None
    tte_cfg = design.raw.data.adtte
    offset = tte_cfg.aval_offset_days
    code = {"os": tte_cfg.os, "efs": tte_cfg.efs, "rfs": tte_cfg.rfs}
    origin = {
        "os": dict(zip(typed["subject_id"], typed["enrolled_on"], strict=True)),
        "efs": dict(zip(typed["subject_id"], typed["enrolled_on"], strict=True)),
        "rfs": dict(zip(typed["subject_id"], typed["response_on"], strict=True)),
    }
    order = {s: i for i, s in enumerate(typed["subject_id"])}
    tte = []
    for ep in ("os", "efs", "rfs"):
        for r in survival.times[ep].to_dict("records"):
            # whole days (an event on the start day, placed at half a day, is day 0)
            days = 0 if r["time"] == 0.5 and r["event"] and not r["day0"] else int(r["time"])
            failure = bool(r["day0"]) and r["event_type"] == "treatment_failure"
            aval = days if failure else days + offset
            start = origin[ep][r["subject_id"]]
            tte.append(
                (
                    order[r["subject_id"]],
                    r["subject_id"],
                    code[ep],
                    _PARAM[ep],
                    float(aval),
                    float(1 - r["event"]),
                    start,
                    start + timedelta(days=days),
                    (r["event_type"] or "").replace("_", " ").upper(),
                )
            )
    tte.sort(key=lambda t: t[0])
    adtte = pd.DataFrame(
        [t[1:] for t in tte],
        columns=["USUBJID", "PARAMCD", "PARAM", "AVAL", "CNSR", "STARTDT", "ADT", "EVNTDESC"],
    )
    return {"adsl": adsl, "adrs": adrs, "adtte": adtte}


#: a SAS transport v5 header's created/modified stamp (``ddMMMyy:hh:mm:ss``)
_XPT_STAMP = re.compile(rb"\d{2}[A-Z]{3}\d{2}:\d{2}:\d{2}:\d{2}")
#: the record after which an XPT v5 member's observations start (the headers are before it)
_XPT_OBS = b"HEADER RECORD*******OBS     HEADER RECORD"


def pin_xpt_stamps(path: Path, when: date) -> None:
    """Set the created/modified stamps of an XPT v5 file's headers to ``when`` (midnight).

    pyreadstat writes the wall-clock time into the library and member headers and has no option
    to set it; a file written from the same data must be byte-identical (its hash is a look's
    data identity), so the 16-byte stamps are rewritten here, in the header records only (before
    the observations, whose bytes are never touched). Format: SAS transport v5 (TS-140).
    """
    raw = path.read_bytes()
    end = raw.find(_XPT_OBS)
    if end < 0:
        raise ValueError(f"{path.name} is not a SAS transport v5 file (no OBS header record)")
    stamp = when.strftime("%d%b%y").upper().encode("ascii") + b":00:00:00"
    head = _XPT_STAMP.sub(lambda _: stamp, raw[:end])
    path.write_bytes(head + raw[end:])


def write_adam(datasets: dict[str, pd.DataFrame], folder: Path, stamp: date) -> None:
    """Write each dataset as ``<name>.xpt``, SAS transport v5 (pyreadstat), dates as ``DATE9.``.

    The files go into ``folder`` (which must not exist yet or be empty) through a temporary folder
    renamed at the end. Their header stamps are ``stamp`` (the export date), not the time of
    writing, so that the same trial gives byte-identical files.
    """
    import pyreadstat

    from adaptive.output import atomic_dir

    with atomic_dir(folder) as tmp:
        for name, df in datasets.items():
            fmt = {c: "DATE9" for c in df.columns if df[c].map(lambda v: isinstance(v, date)).any()}
            pyreadstat.write_xport(
                df,
                str(tmp / f"{name}.xpt"),
                file_format_version=5,
                table_name=name.upper(),
                variable_format=fmt,
            )
            pin_xpt_stamps(tmp / f"{name}.xpt", stamp)
