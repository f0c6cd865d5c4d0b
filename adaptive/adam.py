"""CDISC ADaM input: a folder holding ADSL and ADRS (optionally ADTTE, ADAE), read into the patient table.

ADSL gives one row per subject (standard variables by default: ``USUBJID``, ``SITEID``, ``ARMCD``
or else ``TRT01A``, ``RANDFL``, ``RANDDT``, ``TRTSDT``, ``DTHDT``, ``LSTALVDT``; the trial-specific
flags and ``hsct_on`` under the names given in the config's ``data.columns``; the optional baseline
characteristics from ``AGE``, ``SEX``, ``ECOGBL``, ``DISSTAT``, ``PRHSCTFL``, ``ELN2022`` unless
``data.columns`` names others, blank when ADSL lacks them). ADRS gives, per
subject, one record of each parameter (``data.adrs``): best response (``AVALC`` CR/CRi/PR/NR/NE,
``ADT`` its date), relapse (``ADT`` the relapse date) and MRD (``AVALC`` a flag: true = MRD
negative). Each dataset may be ``.xpt`` (SAS transport v5 or v8), ``.csv`` or ``.parquet``.
A trial-specific variable neither mapped nor present under the engine's name is looked for under
its v5 name (:data:`ADSL_TRIAL_NAMES`, what ``adaptive synth --format adam`` writes).

ADTTE, when present, gives one record per subject and parameter (``data.adtte``: ``OS``, ``EFS``,
``RFS`` by default): ``USUBJID``, ``PARAMCD``, ``AVAL`` (days), ``CNSR`` (0 an event, 1
censored) and, when there, ``STARTDT`` and ``ADT``. It is not analysed: it is reconciled with the
engine's own derivation at each look (:mod:`adaptive.reconcile`).

An ADAE dataset, when the folder has one, gives the adverse events (:func:`read_adae`) shown in
the memo; it does not enter the table, the endpoints or any rule.

The wide table is then validated by :func:`adaptive.data.validate_frame` like a flat export; every
problem names the dataset, the row and its ``USUBJID``, and the variable.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from adaptive.columns import ADAE_VARIABLES, AE_COLUMNS, AE_GRADES, BASELINE_COLUMNS, ENGINE_COLUMNS
from adaptive.config import DataCfg, Design
from adaptive.exceptions import DataError, Problem
from adaptive.reconcile import ADTTE_COLUMNS, AdtteData

#: ADSL variables read for the engine's columns unless ``data.columns`` names others
ADSL_DEFAULTS = {
    "subject_id": "USUBJID",
    "site": "SITEID",
    "arm": "ARMCD",
    "randomized": "RANDFL",
    "enrolled_on": "RANDDT",
    "treatment_start_on": "TRTSDT",
    "death_on": "DTHDT",
    "last_contact_on": "LSTALVDT",
    # baseline characteristics (optional): ADSL's standard AGE and SEX; the others have no CDISC
    # standard name, so these defaults (8 characters at most, SAS v5) are overridden in data.columns
    "age": "AGE",
    "sex": "SEX",
    "ecog": "ECOGBL",
    "disease_status": "DISSTAT",
    "prior_hsct": "PRHSCTFL",
    "eln2022_risk": "ELN2022",
}
#: v5 names (at most 8 characters) of the trial-specific ADSL variables, read when ADSL lacks the
#: engine's own name and ``data.columns`` names none (``adaptive synth --format adam`` writes them)
ADSL_TRIAL_NAMES = {
    "idh1": "IDH1FL",
    "flt3_itd": "FLT3ITD",
    "flt3_tkd": "FLT3TKD",
    "intensive_eligible": "INTELFL",
    "prior_venetoclax_3m": "PRIORVEN",
    "new_drug_eligible": "NEWDRGFL",
    "karyotype_risk": "KARYRISK",
    "hsct_on": "HSCTDT",
}
#: ADTTE variables the reconciliation needs, and those read when present
ADTTE_REQUIRED = ("USUBJID", "PARAMCD", "AVAL", "CNSR")
ADTTE_OPTIONAL = ("STARTDT", "ADT")
#: the engine columns that come from ADRS, not ADSL
ADRS_COLUMNS = ("best_response", "response_on", "relapse_on", "mrd_negative")
#: engine columns ADSL may lack (blank for every subject)
OPTIONAL_ADSL = ("new_drug_eligible", "karyotype_risk", "treatment_start_on", *BASELINE_COLUMNS)
SUFFIXES = (".xpt", ".csv", ".parquet", ".pq")


def _record_problem(
    where: str, sid: str, code: str, n, codes, verb: str, section: str, subjects, adsl: str, first: dict
) -> Problem | None:
    """What is wrong with one record of a parameter dataset (ADRS, ADTTE), or ``None``.

    An unknown ``PARAMCD``, a subject not in ADSL, or a second record of a subject and parameter
    (``first`` remembers where each one was seen, and learns this record when it is fine).
    """
    from adaptive.data import excerpt  # adaptive.data imports this module

    if code not in codes:
        return Problem(
            f"{where}, variable 'PARAMCD'",
            f"unknown parameter {excerpt(code)}; the engine {verb} {', '.join(codes)} "
            f"(data.{section} in the config names them; data.{section}.ignore skips others).",
        )
    if sid not in subjects:
        return Problem(f"{where}, variable 'USUBJID'", f"subject {excerpt(sid)} is not in {adsl}.")
    if (sid, code) in first:
        return Problem(
            f"{where}, variable 'PARAMCD'",
            f"a second {code} record for this subject (first at {first[sid, code]}); one per "
            "subject and parameter.",
        )
    first[sid, code] = f"row {n}"
    return None


def _find(folder: Path, dataset: str) -> Path | None:
    hits = [p for p in folder.iterdir() if p.stem.lower() == dataset.lower() and p.suffix.lower() in SUFFIXES]
    if len(hits) > 1:
        raise DataError(
            [
                Problem(
                    f"{folder.name}/",
                    f"{dataset.upper()} is there {len(hits)} times "
                    f"({', '.join(sorted(p.name for p in hits))}); keep one.",
                )
            ]
        )
    return hits[0] if hits else None


def _read(path: Path, roles: dict[str, str]) -> tuple[pd.DataFrame, bytes]:
    """A dataset as strings; ``roles`` (engine column -> variable) drive the SAS date reading."""
    from adaptive.data import read_table

    df, raw, row_word = read_table(path, DataCfg(columns=roles))
    if row_word == "line":
        df.attrs["row_numbers"] = df.attrs["line_numbers"]
    else:
        df.attrs["row_numbers"] = list(range(1, len(df) + 1))
    return df, raw


def _var(df: pd.DataFrame, name: str) -> str | None:
    """The dataset's own spelling of variable ``name`` (any case), or ``None``."""
    for c in df.columns:
        if str(c).strip().upper() == name.upper():
            return c
    return None


def load_adam(folder: str | Path, design: Design):
    """Read ADSL + ADRS from ``folder`` into a validated :class:`~adaptive.data.PatientTable`.

    Raises
    ------
    DataError
        With every problem found (dataset, row and USUBJID, variable, rule broken).
    """
    from adaptive.data import PatientTable, _data_cfg, excerpt, validate_frame

    folder = Path(folder)
    data = _data_cfg(design)
    problems: list[Problem] = []
    paths = {d: _find(folder, d) for d in ("adsl", "adrs")}
    tte_path = _find(folder, "adtte")
    for d, p in paths.items():
        if p is None:
            problems.append(
                Problem(
                    f"{folder.name}/",
                    f"no {d.upper()} dataset ({d}.xpt, {d}.csv or {d}.parquet); an ADaM folder holds "
                    "ADSL and ADRS.",
                )
            )
    if problems:
        raise DataError(problems)
    adsl_vars = {**ADSL_DEFAULTS, **{c: v for c, v in data.columns.items() if c not in ADRS_COLUMNS}}
    adsl, raw_sl = _read(paths["adsl"], adsl_vars)
    fallback = {
        c: v
        for c, v in ADSL_TRIAL_NAMES.items()
        if c not in data.columns and _var(adsl, c) is None and _var(adsl, v) is not None
    }
    if fallback:  # read again: the v5 names' SAS dates are converted by their roles
        adsl_vars |= fallback
        adsl, raw_sl = _read(paths["adsl"], adsl_vars)
    adrs, raw_rs = _read(paths["adrs"], {"response_on": "ADT"})
    sl, rs = paths["adsl"].name, paths["adrs"].name

    # ------------------------------------------------------------------ ADSL variables
    wide: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    for col in ENGINE_COLUMNS:
        if col in ADRS_COLUMNS:
            continue
        want = adsl_vars.get(col, col)
        have = _var(adsl, want)
        if have is None and col == "arm" and "arm" not in data.columns:
            have = _var(adsl, "TRT01A")
        if have is None:
            if col in OPTIONAL_ADSL:
                continue
            how = (
                f"the config maps it ({data.where(col)}); correct that mapping."
                if col in data.columns
                else f"name the ADSL variable in the config (data: columns: {col}: <VARIABLE>)."
            )
            if col in ADSL_TRIAL_NAMES and col not in data.columns:
                how += f" Neither {col!r} nor {ADSL_TRIAL_NAMES[col]!r} is in {sl}."
            problems.append(
                Problem(f"{sl}, variable {want!r}", f"missing: the engine's {col!r} is read from it; {how}")
            )
            continue
        wide[have] = list(adsl[have])
        names[col] = have
    for v in ("USUBJID", "PARAMCD", "AVALC", "ADT"):
        if _var(adrs, v) is None:
            problems.append(
                Problem(f"{rs}, variable {v!r}", "missing: ADRS needs USUBJID, PARAMCD, AVALC, ADT.")
            )
    if problems:
        raise DataError(problems)
    sid_var = names["subject_id"]
    ids = list(adsl[sid_var])
    labels = [
        f"row {n} (USUBJID {excerpt(s, 30)})" for n, s in zip(adsl.attrs["row_numbers"], ids, strict=True)
    ]

    # ------------------------------------------------------------------ ADRS records
    codes = {
        data.adrs.best_response: "best_response",
        data.adrs.relapse: "relapse",
        data.adrs.mrd_negative: "mrd_negative",
    }
    index = {s: i for i, s in enumerate(ids) if s}
    u, p, a, d = (_var(adrs, v) for v in ("USUBJID", "PARAMCD", "AVALC", "ADT"))
    per: dict[str, dict[str, tuple[str, str]]] = {}
    first: dict[tuple[str, str], str] = {}
    for n, sid, code, avalc, adt in zip(
        adrs.attrs["row_numbers"], adrs[u], adrs[p], adrs[a], adrs[d], strict=True
    ):
        where = f"{rs} row {n} (USUBJID {excerpt(sid, 30)})"
        if code in data.adrs.ignore:
            continue
        bad = _record_problem(where, sid, code, n, codes, "reads", "adrs", index, sl, first)
        if bad is not None:
            problems.append(bad)
            continue
        per.setdefault(sid, {})[codes[code]] = (avalc, adt)

    def adrs_col(key: str, part: int) -> list[str]:
        return [per.get(s, {}).get(key, ("", ""))[part] for s in ids]

    adtte = raw_tte = None
    if tte_path is not None:
        adtte, raw_tte, tte_problems = read_adtte(tte_path, data, set(index), sl)
        problems += tte_problems

    wide[f"ADRS {data.adrs.best_response} AVALC"] = adrs_col("best_response", 0)
    wide[f"ADRS {data.adrs.best_response} ADT"] = adrs_col("best_response", 1)
    wide[f"ADRS {data.adrs.relapse} ADT"] = adrs_col("relapse", 1)
    wide[f"ADRS {data.adrs.mrd_negative} AVALC"] = adrs_col("mrd_negative", 0)
    roles = dict(names) | {
        "best_response": f"ADRS {data.adrs.best_response} AVALC",
        "response_on": f"ADRS {data.adrs.best_response} ADT",
        "relapse_on": f"ADRS {data.adrs.relapse} ADT",
        "mrd_negative": f"ADRS {data.adrs.mrd_negative} AVALC",
    }
    ae_path = _find(folder, "adae")  # checked before the merged table, so listed with its problems
    events = ae_file = None
    if ae_path is not None:
        events, raw_ae, ae_problems = read_adae(ae_path, index, data)
        problems += ae_problems
        ae_file = (ae_path.name, raw_ae)
    frame = pd.DataFrame(wide, dtype=object)
    frame.attrs["row_labels"] = labels
    cfg = DataCfg(columns=roles, values=data.values, adrs=data.adrs, arm_codes=data.arm_codes)
    try:
        typed, warnings = validate_frame(frame, design, source=sl, row_word="row", data=cfg)
    except DataError as err:  # the ADSL / merged-record problems, listed with ADRS's
        raise DataError(problems + err.problems) from None
    if problems:
        raise DataError(problems)
    digest = hashlib.sha256()
    files = [(sl, raw_sl), (rs, raw_rs)]
    if tte_path is not None and raw_tte is not None:
        files.append((tte_path.name, raw_tte))
    if ae_file is not None:  # ADAE only when there is one: the hash of the other datasets is unchanged
        files.append(ae_file)
    for name, raw in files:
        digest.update(f"{name}\0{hashlib.sha256(raw).hexdigest()}\n".encode())
    return PatientTable(
        frame=typed,
        path=folder,
        sha256=digest.hexdigest(),
        warnings=warnings,
        adtte=adtte,
        adverse_events=events,
    )


def read_adae(path: Path, subjects, data: DataCfg) -> tuple[pd.DataFrame, bytes, list[Problem]]:
    """Read and check ADAE: ``(events, raw bytes, problems)``, one row per adverse event.

    ``subjects`` holds ADSL's USUBJIDs. Each record needs a subject in ADSL, a system organ class
    (``AEBODSYS``), a grade (``ATOXGR``, 1-5, blank when not graded), flags ``AESER`` and
    ``TRTEMFL`` (blank: no) and a start date (``ASTDT``); ``AESDTH`` = Y or grade 5 makes the event
    fatal. The events have the columns of :data:`~adaptive.columns.AE_COLUMNS`.
    """
    from adaptive.data import _parse_bool, _parse_date, excerpt

    df, raw = _read(path, {"response_on": "ASTDT"})  # "response_on": read ASTDT as a (SAS) date
    name = path.name
    problems: list[Problem] = []
    names = {v: _var(df, v) for v in (*ADAE_VARIABLES, "AESDTH")}
    missing = [v for v in ADAE_VARIABLES if names[v] is None]
    if missing:
        return (
            pd.DataFrame(columns=list(AE_COLUMNS)),
            raw,
            [
                Problem(
                    f"{name}, variable {v!r}",
                    f"missing: ADAE needs {', '.join(ADAE_VARIABLES)} (AESDTH optional).",
                )
                for v in missing
            ],
        )
    true, false = data.flag_values("TRTEMFL")
    rows = []
    for n, rec in zip(df.attrs["row_numbers"], df.to_dict("records"), strict=True):
        sid = rec[names["USUBJID"]]
        where = f"{name} row {n} (USUBJID {excerpt(sid, 30)})"

        def bad(var: str, msg: str, where=where) -> None:
            problems.append(Problem(f"{where}, variable {var!r}", msg))

        if sid not in subjects:
            bad("USUBJID", f"subject {excerpt(sid)} is not in ADSL.")
            continue
        soc = rec[names["AEBODSYS"]]
        if not soc:
            bad("AEBODSYS", "the system organ class is blank; every event needs one.")
        grade = None
        g = rec[names["ATOXGR"]]
        if g:
            try:
                grade = int(float(g)) if float(g).is_integer() else None
            except ValueError:
                grade = None
            if grade not in AE_GRADES:
                bad("ATOXGR", f"grade {excerpt(g)} is not a CTCAE grade 1-5 (blank: not graded).")
                grade = None
        flags = {}
        for var in ("AESER", "TRTEMFL", "AESDTH"):
            v = rec[names[var]] if names[var] is not None else ""
            try:
                flags[var] = _parse_bool(v, true, false) if v else False
            except ValueError:
                bad(
                    var,
                    f"{excerpt(v)} is not a flag; use {', '.join(sorted(true))} (yes) or "
                    f"{', '.join(sorted(false))} (no), any case, or blank (no).",
                )
                flags[var] = False
        start = None
        d = rec[names["ASTDT"]]
        if not d:
            bad("ASTDT", "the start date is blank; it places the event before or after the cutoff.")
        else:
            try:
                start = _parse_date(d)
            except ValueError:
                bad("ASTDT", f"cannot parse date {excerpt(d)}; a SAS date or YYYY-MM-DD.")
        rows.append(
            (
                sid,
                soc,
                rec[names["AEDECOD"]] or None,
                grade,
                flags["AESER"],
                flags["TRTEMFL"],
                start,
                grade == 5 or flags["AESDTH"],
            )
        )
    return pd.DataFrame(rows, columns=list(AE_COLUMNS), dtype=object), raw, problems


def read_adtte(
    path: Path, data: DataCfg, subjects: set[str], adsl_name: str
) -> tuple[AdtteData | None, bytes, list[Problem]]:
    """ADTTE's records of the reconciled parameters, with every problem found (not raised).

    Each problem names the dataset, the row and its ``USUBJID``, and the variable: a missing
    variable, an unknown ``PARAMCD`` (``data.adtte.ignore`` skips others), a subject absent from
    ADSL, a second record of one subject and parameter, an ``AVAL`` that is not a number of days
    >= 0, a ``CNSR`` other than 0 or 1, an unparseable ``STARTDT``/``ADT`` (SAS date or ISO text).
    """
    from adaptive.data import _parse_date, excerpt

    tte, raw = _read(path, {"enrolled_on": "STARTDT", "response_on": "ADT"})
    name = path.name
    problems = [
        Problem(
            f"{name}, variable {v!r}",
            f"missing: ADTTE needs {', '.join(ADTTE_REQUIRED)} (and reads {', '.join(ADTTE_OPTIONAL)} "
            "when there).",
        )
        for v in ADTTE_REQUIRED
        if _var(tte, v) is None
    ]
    if problems:
        return None, raw, problems
    cfg = data.adtte
    codes = cfg.endpoints()
    u, p, a, c = (_var(tte, v) for v in ADTTE_REQUIRED)
    optional = {v: _var(tte, v) for v in ADTTE_OPTIONAL}
    rows: list[tuple] = []
    first: dict[tuple[str, str], str] = {}
    for i, n in enumerate(tte.attrs["row_numbers"]):
        sid, code, aval_s, cnsr_s = (tte[v].iloc[i] for v in (u, p, a, c))
        label = f"row {n} (USUBJID {excerpt(sid, 30)})"
        where = f"{name} {label}"
        if code in cfg.ignore:
            continue
        bad = _record_problem(where, sid, code, n, codes, "reconciles", "adtte", subjects, adsl_name, first)
        if bad is not None:
            problems.append(bad)
            continue
        ok = True
        try:
            aval = float(aval_s)
            if not aval >= 0 or aval == float("inf"):
                raise ValueError
        except ValueError:
            ok = False
            problems.append(
                Problem(
                    f"{where}, variable {a!r}",
                    f"AVAL {excerpt(aval_s)} is not a time: expected a number of days >= 0.",
                )
            )
        if cnsr_s not in ("0", "1"):
            ok = False
            problems.append(
                Problem(
                    f"{where}, variable {c!r}",
                    f"CNSR {excerpt(cnsr_s)} is neither 0 (an event) nor 1 (censored).",
                )
            )
        dates = {}
        for v, have in optional.items():
            s = tte[have].iloc[i] if have is not None else ""
            dates[v] = None
            if not s:
                continue
            try:
                dates[v] = _parse_date(s)
            except ValueError:
                ok = False
                problems.append(
                    Problem(
                        f"{where}, variable {have!r}",
                        f"cannot parse date {excerpt(s)}; expected a SAS date (days since 1960-01-01, a "
                        "whole number, or with a date format) or ISO 8601 YYYY-MM-DD.",
                    )
                )
        if ok:
            rows.append((sid, codes[code], code, aval, int(cnsr_s), dates["STARTDT"], dates["ADT"], label))
    frame = pd.DataFrame(rows, columns=list(ADTTE_COLUMNS))
    adtte = AdtteData(
        source=name,
        frame=frame,
        codes={e: c for c, e in codes.items()},
        aval_offset_days=cfg.aval_offset_days,
    )
    return adtte, raw, problems
