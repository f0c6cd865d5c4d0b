"""Patient-level data: load a CSV / Parquet / SAS transport export and validate it.

One row per patient. Dates are ISO 8601 (``YYYY-MM-DD``), booleans ``true``/``false``
(case-insensitive), blank means unknown. Every problem is collected and reported together with
the file, the row (for CSV the 1-based line number, header = line 1) and the column.

Rejected (:class:`~adaptive.exceptions.DataError`): missing required columns, blank or duplicate
``subject_id``, unknown arms, unparseable dates or booleans, responses outside CR/CRi/PR/NR/NE, a
missing ``response_on`` for CR/CRi/PR, events dated before enrolment (response, death, relapse,
transplant, last contact), a response after death, a relapse without a prior CR/CRi or before the
response, unknown ``karyotype_risk`` values; in the optional baseline columns (``age``, ``sex``,
``ecog``, ``disease_status``, ``prior_hsct``, ``eln2022_risk``: :func:`parse_baseline`), values
outside their codes or ranges.

Warned (kept, reported): a patient whose arm contradicts the configured routing rules, a
``randomized`` flag that disagrees with the cohort, a last contact after death, MRD negativity
recorded for a non-responder.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from adaptive.columns import (
    AGE_RANGE,
    BASELINE_COLUMNS,
    BOOL_COLUMNS,
    CDISC_NAMES,
    DATE_COLUMNS,
    DISEASE_STATUSES,
    ECOG_GRADES,
    ELN2022_RISKS,
    ENGINE_COLUMNS,
    FLAG_COLUMNS,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    SEX_CODES,
    TREATMENT_START_COLUMN,
)
from adaptive.config import DataCfg, Design
from adaptive.exceptions import DataError, Problem
from adaptive.routing import route
from adaptive.schema_errors import did_you_mean as _did_you_mean

if TYPE_CHECKING:  # the reconciliation imports statsmodels (survival_data): not at load time
    from adaptive.reconcile import AdtteData

RESPONSES = ("CR", "CRi", "PR", "NR", "NE")
KARYOTYPE_RISKS = ("favorable", "intermediate", "adverse")


@dataclass(frozen=True)
class PatientTable:
    """Validated patients: typed columns, the source file's hash and the warnings found.

    ``frame`` has one row per patient with python ``date``/``None`` in date columns,
    ``True``/``False``/``None`` in boolean columns and ``None`` for blank strings, plus a
    ``row_label`` column ("line 14") used in messages.
    """

    frame: pd.DataFrame
    path: Path | None
    sha256: str
    warnings: tuple[Problem, ...] = field(default_factory=tuple)
    #: an ADaM folder's ADTTE records (reconciled with the engine's derivation), else ``None``
    adtte: AdtteData | None = None
    #: adverse events (an ADaM folder's ADAE), one row per event with the columns of
    #: :data:`~adaptive.columns.AE_COLUMNS`; ``None`` when the data hold none
    adverse_events: pd.DataFrame | None = None

    @property
    def source(self) -> str:
        return self.path.name if self.path else "<data>"


def _cell_str(v) -> str:
    """Normalise one cell of a Parquet / SAS frame to the CSV string convention."""
    if v is None:
        return ""
    if isinstance(v, bytes):
        v = v.decode("utf-8", errors="replace")
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, pd.Timestamp | date):
        # isoformat, not strftime: strftime("%Y") does not zero-pad a year before 1000 on Linux
        return "" if pd.isna(v) else v.isoformat()[:10]
    try:
        if pd.isna(v):
            return ""
    except (TypeError, ValueError):
        pass
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


#: at most this many characters of a bad value are echoed in a message
EXCERPT_CHARS = 60
#: at most this many malformed CSV rows are listed one by one
MAX_ROW_PROBLEMS = 20
#: dates before this are refused as implausible (a mistyped year such as 0001 or 1925)
EARLIEST_DATE = date(1990, 1, 1)
#: dates after this are refused as implausible (a mistyped year such as 2205)
LATEST_DATE = date(2100, 12, 31)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
#: an ISO 8601 date with a time of day (``T`` or a space, no time zone); the time is ignored
_ISO_DATETIME = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?")
#: SAS counts dates in days and datetimes in seconds from this day
SAS_EPOCH = date(1960, 1, 1)
#: a SAS number at least this large is a datetime (seconds); smaller, a date (days): 10**6 days is
#: the year 4697, 10**6 seconds is 12 days after the epoch, so the two never meet in a trial
SAS_SECONDS_FROM = 1_000_000
#: a "did you mean" column hint needs at least this similarity (difflib ratio): a looser match
#: sent an ADSL-shaped file's ``randomized`` to ``randdt``
COLUMN_HINT_CUTOFF = 0.85


def excerpt(value, limit: int = EXCERPT_CHARS) -> str:
    """``repr`` of a value, cut to ``limit`` characters of its text (with ``...``)."""
    s = str(value)
    if len(s) <= limit:
        return repr(s)
    return repr(s[:limit]) + f"... ({len(s)} characters)"


def _encoding_hint(raw: bytes) -> str:
    """A guess at the encoding of bytes that are not UTF-8."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "it looks like UTF-16 (it starts with a UTF-16 byte-order mark)"
    if b"\x00" in raw[:4096]:
        return "it holds NUL bytes: UTF-16 or a binary file, not a CSV text file"
    return "it looks like Latin-1 / Windows-1252 (e.g. an Excel 'CSV' export)"


def _csv_records(path: Path, raw: bytes) -> tuple[list[str], list[list[str]], list[int]]:
    """Split a CSV file into its header, records and each record's first physical line.

    Blank lines are skipped; a quoted field may span lines (the record's line is where it starts).
    A record with fewer or more fields than the header is refused (a truncated export would
    otherwise turn a dead patient into a pending one).
    """
    name = path.name
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            [
                Problem(
                    f"{name} line {line}",
                    f"the file is not UTF-8 text (byte {raw[exc.start : exc.start + 1]!r} at offset "
                    f"{exc.start}); {_encoding_hint(raw)}. Save or export it as UTF-8 CSV.",
                )
            ]
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise DataError([Problem(f"{name} line {line}", f"the file holds NUL bytes; {_encoding_hint(raw)}.")])
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    header_line = 0
    records: list[list[str]] = []
    lines: list[int] = []
    problems: list[Problem] = []
    n_bad = 0
    prev = 0
    try:
        for rec in reader:
            start, prev = prev + 1, reader.line_num
            if not rec or (len(rec) == 1 and not rec[0].strip()):
                continue  # a blank line
            if header is None:
                header, header_line = rec, start
                continue
            if len(rec) != len(header):
                n_bad += 1
                if n_bad <= MAX_ROW_PROBLEMS:
                    how = "fewer" if len(rec) < len(header) else "more"
                    what = (
                        "a truncated or cut-short row"
                        if how == "fewer"
                        else "an unquoted comma in a value, or a shifted row"
                    )
                    problems.append(
                        Problem(
                            f"{name} line {start}",
                            f"{len(rec)} fields, {how} than the {len(header)} columns of the header "
                            f"(line {header_line}): {what}. Re-export the file; no row is read with "
                            "missing or extra fields.",
                        )
                    )
                continue
            records.append(rec)
            lines.append(start)
    except csv.Error as exc:
        raise DataError(
            [Problem(f"{name} line {reader.line_num}", f"cannot parse the CSV: {exc}.")]
        ) from None
    if header is None:
        raise DataError([Problem(name, "the file is empty; expected a header line and one row per patient.")])
    if n_bad > MAX_ROW_PROBLEMS:
        problems.append(
            Problem(name, f"... and {n_bad - MAX_ROW_PROBLEMS} more row(s) with a wrong field count.")
        )
    if len(header) == 1:
        for delim, word in ((";", "semicolon"), ("\t", "tab"), ("|", "vertical bar")):
            if delim in header[0]:
                raise DataError(
                    [
                        Problem(
                            f"{name} line {header_line}",
                            f"the header is one column holding {word}s ({excerpt(header[0])}): the file "
                            f"looks {word}-separated. Export it comma-separated (CSV UTF-8).",
                        )
                    ]
                )
    seen: dict[str, int] = {}
    for j, col in enumerate(header, start=1):
        key = col.strip()
        if not key:
            continue  # an unnamed (e.g. trailing empty) column is ignored like any extra column
        if key in seen:
            problems.append(
                Problem(
                    f"{name} line {header_line}",
                    f"duplicate column {excerpt(key)} at positions {seen[key]} and {j}; each column "
                    "must appear once.",
                )
            )
        else:
            seen[key] = j
    if problems:
        raise DataError(problems)
    return [c.strip() or f"<unnamed column {j}>" for j, c in enumerate(header, start=1)], records, lines


def _check_column_names(names: list[str], name: str) -> None:
    """Refuse a column name that appears twice, naming both positions."""
    problems = []
    for c in dict.fromkeys(names):
        pos = [str(j + 1) for j, x in enumerate(names) if x == c]
        if len(pos) > 1:
            problems.append(
                Problem(
                    name,
                    f"duplicate column {excerpt(c)} at positions {' and '.join(pos)}; each column must "
                    "appear once.",
                )
            )
    if problems:
        raise DataError(problems)


def _check_dtypes(df: pd.DataFrame, name: str, roles: dict[str, str], *, sas: bool = False) -> None:
    """One problem per Parquet / SAS column whose type cannot hold its values (not one per cell).

    ``roles`` maps the export's column names to the engine's. SAS has no date or boolean type:
    in a SAS file (``sas``) a number in a date column is a SAS date or datetime (converted by
    :func:`_sas_dates`) and a number in a boolean column is a 1/0 flag.
    """
    _check_column_names(list(df.columns), name)
    problems = []
    for j, col in enumerate(df.columns):
        role = roles.get(col)
        values = df.iloc[:, j]
        dtype = values.dtype
        shown = _shown(col, role)
        if role in DATE_COLUMNS or role == TREATMENT_START_COLUMN:
            numeric = pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
            if numeric and not values.isna().all() and not (sas and not pd.api.types.is_bool_dtype(dtype)):
                problems.append(
                    Problem(
                        f"{name}, column {shown}",
                        f"has type {dtype}; expected dates (a date or timestamp type, or "
                        "YYYY-MM-DD text). SAS dates need a date format (e.g. DATE9. or YYMMDD10.).",
                    )
                )
        elif role in FLAG_COLUMNS:
            numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
            if numeric and not sas and not values.isna().all():
                problems.append(
                    Problem(
                        f"{name}, column {shown}",
                        f"has type {dtype}; expected booleans (a boolean type, or true/false text).",
                    )
                )
    if problems:
        raise DataError(problems)


def _sas_date(v) -> str:
    """A SAS date (days since 1960-01-01) or datetime (seconds since then) as ``YYYY-MM-DD``.

    A fractional day count or a number out of range is returned as written, to be refused as an
    unparseable date with its value.
    """
    if v is None or pd.isna(v):
        return ""
    try:
        if abs(v) >= SAS_SECONDS_FROM:
            return (datetime(1960, 1, 1) + timedelta(seconds=float(v))).date().isoformat()
        if float(v).is_integer():
            return (SAS_EPOCH + timedelta(days=int(v))).isoformat()
    except (OverflowError, ValueError):
        pass
    return f"{v} (a SAS date number)"


def _sas_dates(df: pd.DataFrame, roles: dict[str, str]) -> pd.DataFrame:
    """Numeric date columns of a SAS file (no date format) converted to ``YYYY-MM-DD`` strings."""
    numeric = [
        j
        for j, col in enumerate(df.columns)
        if (roles.get(col) in DATE_COLUMNS or roles.get(col) == TREATMENT_START_COLUMN)
        and pd.api.types.is_numeric_dtype(df.iloc[:, j].dtype)
        and not pd.api.types.is_bool_dtype(df.iloc[:, j].dtype)
    ]
    df = df.astype(object)
    for j in numeric:
        df.iloc[:, j] = df.iloc[:, j].map(_sas_date)
    return df


def _shown(col: str, role: str | None) -> str:
    """A column named in a message: the export's name, and the engine's when they differ."""
    if role is None or str(col).strip().lower() == role:
        return f"'{role or col}'"
    return f"'{col}' (mapped to '{role}')"


def _resolve_columns(columns, data: DataCfg | None, source: str) -> tuple[dict[str, str], list[Problem]]:
    """Which export column holds each engine column, as ``{export name: engine name}``.

    Headers match case-insensitively; ``data.columns`` gives another export name for an engine
    column. A mapped column the export lacks is a problem named at the config's mapping line.
    """
    mapping = dict(data.columns) if data is not None else {}
    by_key: dict[str, list[str]] = {}
    for c in columns:
        by_key.setdefault(str(c).strip().lower(), []).append(c)
    roles: dict[str, str] = {}
    problems: list[Problem] = []
    # mapped columns first: an export name the config maps wins over an engine name's own column
    for col in sorted(ENGINE_COLUMNS, key=lambda c: c not in mapping):
        want = mapping.get(col, col)
        hits = [h for h in by_key.get(want.strip().lower(), []) if h not in roles]
        if len(hits) > 1:
            problems.append(
                Problem(
                    source,
                    f"columns {' and '.join(repr(h) for h in hits)} differ only in case and both would "
                    f"be {col!r}; keep one.",
                )
            )
        elif hits:
            roles[hits[0]] = col
        elif col in mapping:
            problems.append(
                Problem(
                    data.where(col),
                    f"maps {col!r} to {want!r}, but {source} has no column {want!r} (its columns: "
                    f"{excerpt(', '.join(map(str, columns)), 200)}).{_column_hint(want, columns)}",
                )
            )
    return roles, problems


def _column_hint(wanted: str, columns) -> str:
    """`` Did you mean 'x'?`` only for a close match (see :data:`COLUMN_HINT_CUTOFF`); or ``""``."""
    lower = {str(c).strip().lower(): str(c) for c in columns}
    close = difflib.get_close_matches(wanted.lower(), list(lower), n=1, cutoff=COLUMN_HINT_CUTOFF)
    return f" Did you mean {lower[close[0]]!r}?" if close else ""


def _missing_hint(missing: str, extra) -> str:
    """A hint for a missing engine column: the mapping line for a CDISC name, or a close match."""
    for c in extra:
        if CDISC_NAMES.get(str(c).strip().upper()) == missing:
            return (
                f" The export has the CDISC variable {c!r}: map it in the config "
                f"(data: columns: {missing}: {c})."
            )
    return _column_hint(missing, extra)


def read_table(path: str | Path, data: DataCfg | None = None) -> tuple[pd.DataFrame, bytes, str]:
    """Read a patient export as strings, with the export's own column names.

    ``data`` (the config's ``data`` section) tells which column holds which engine column, for the
    type checks of Parquet / SAS columns and SAS numeric dates.

    Returns
    -------
    frame, raw_bytes, row_word
        ``frame`` holds only strings ("" for blank); ``row_word`` is ``"line"`` for CSV
        (row labels are file line numbers, kept in ``frame.attrs["line_numbers"]``: the physical
        line where each record starts) and ``"row"`` otherwise (1-based data rows).
    """
    path = Path(path)
    try:
        if not path.is_file():
            what = "a folder" if path.is_dir() else "not a regular file (a pipe, device or socket)"
            if not path.exists():
                what = "missing"
            raise DataError([Problem(str(path), f"cannot read the data file: it is {what}.")])
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError([Problem(str(path), f"cannot read the data file: {exc.strerror}")]) from None
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        header, records, lines = _csv_records(path, raw)
        df = pd.DataFrame(records, columns=header, dtype=object)
        df = df.map(lambda s: s.strip())
        df.attrs["line_numbers"] = lines
        return df, raw, "line"
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            _check_column_names(pq.read_schema(path).names, path.name)
            df = pd.read_parquet(path)
        elif suffix == ".xpt":
            import pyreadstat

            # SAS transport v5 or v8; dates with a SAS date format arrive as dates, others as
            # numbers (days or seconds since 1960); names are matched case-insensitively later
            df, _meta = pyreadstat.read_xport(str(path))
        else:
            raise DataError(
                [Problem(path.name, f"unsupported file type {suffix!r}; use .csv, .parquet or .xpt")]
            )
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is a data problem for the user
        raise DataError([Problem(path.name, f"cannot parse the file: {excerpt(exc, 200)}")]) from None
    roles, _problems = _resolve_columns(list(df.columns), data, path.name)  # reported by validate_frame
    sas = suffix == ".xpt"
    _check_dtypes(df, path.name, roles, sas=sas)
    if sas:
        df = _sas_dates(df, roles)
    df = df.astype(object).map(_cell_str)
    return df, raw, "row"


def _parse_bool(s: str, true: frozenset[str], false: frozenset[str]):
    """``True``/``False`` for a string in ``true``/``false`` (lower-cased sets), else ``ValueError``."""
    low = s.lower()
    if low in true:
        return True
    if low in false:
        return False
    raise ValueError


def _parse_date(s: str) -> date:
    """A strict ``YYYY-MM-DD`` date, or an ISO date-time with the time checked and then ignored.

    The date-time is ``YYYY-MM-DDThh:mm[:ss[.fff]]`` (``T`` or a space). No ISO week dates, no
    missing zeros, no time zones.
    """
    if _ISO_DATE.fullmatch(s):
        return date.fromisoformat(s)
    m = _ISO_DATETIME.fullmatch(s)
    if not m:
        raise ValueError
    hh, mm, ss = int(m[2]), int(m[3]), int(m[4] or 0)
    if hh > 23 or mm > 59 or ss > 59:
        raise ValueError
    return date.fromisoformat(m[1])


def parse_baseline(col: str, s: str, flag: tuple[frozenset[str], frozenset[str]] | None = None):
    """The typed value of one baseline cell (``None`` for blank), or ``ValueError`` saying the rule.

    ``age``: a number of years in :data:`~adaptive.columns.AGE_RANGE` (a float); ``sex``: a CDISC
    code M/F/U (any case; upper-cased); ``ecog``: an integer grade 0-4; ``disease_status``:
    relapsed/refractory and ``eln2022_risk``: favorable/intermediate/adverse (any case;
    lower-cased); ``prior_hsct``: a flag, spelled as ``flag`` (true and false spellings) says.
    """
    if not s:
        return None
    if col == "age":
        try:
            age = float(s)
        except ValueError:
            raise ValueError(f"age {excerpt(s)} is not a number; expected years, e.g. 63.") from None
        lo, hi = AGE_RANGE
        if not lo <= age <= hi:  # also refuses nan
            raise ValueError(f"age {excerpt(s)} is outside {lo}-{hi} years; a mistyped age?")
        return age
    if col == "ecog":
        try:
            grade = float(s)
        except ValueError:
            grade = float("nan")
        if not (grade.is_integer() and int(grade) in ECOG_GRADES):
            raise ValueError(
                f"ECOG {excerpt(s)} is not a performance status; use an integer "
                f"{ECOG_GRADES[0]}-{ECOG_GRADES[-1]} or blank."
            )
        return int(grade)
    if col == "prior_hsct":
        true, false = flag if flag is not None else (frozenset(), frozenset())
        try:
            return _parse_bool(s, true, false)
        except ValueError:
            raise ValueError(
                f"{excerpt(s)} is not a boolean; use {', '.join(sorted(true))} (true), "
                f"{', '.join(sorted(false))} (false), any case, or blank."
            ) from None
    allowed = {"sex": SEX_CODES, "disease_status": DISEASE_STATUSES, "eln2022_risk": ELN2022_RISKS}[col]
    value = s.upper() if col == "sex" else s.lower()
    if value not in allowed:
        raise ValueError(
            f"{excerpt(s)} is not one of {', '.join(allowed)} (any case) or blank."
            f"{_did_you_mean(value, allowed)}"
        )
    return value


def load_patients(path: str | Path, design: Design) -> PatientTable:
    """Load and validate a patient export (or a folder of ADaM datasets) against a design.

    Raises
    ------
    DataError
        With every problem found (file, row/line, column, rule broken).
    """
    path = Path(path)
    if path.is_dir():
        from adaptive.adam import load_adam

        return load_adam(path, design)
    df, raw, row_word = read_table(path, _data_cfg(design))
    if not len(df):
        raise DataError(
            [Problem(path.name, "the file holds a header but no patient rows; expected one row per patient.")]
        )
    table = validate_frame(df, design, source=path.name, row_word=row_word)
    return PatientTable(frame=table[0], path=path, sha256=hashlib.sha256(raw).hexdigest(), warnings=table[1])


def validate_frame(
    df: pd.DataFrame,
    design: Design,
    *,
    source: str = "<data>",
    row_word: str = "line",
    data: DataCfg | None = None,
) -> tuple[pd.DataFrame, tuple[Problem, ...]]:
    """Validate a frame of strings and return ``(typed_frame, warnings)``.

    ``data`` replaces the design's ``data`` section (column names and flag spellings); the frame's
    ``attrs["row_labels"]``, when given, name its rows in messages.

    Raises
    ------
    DataError
        With every problem found.
    """
    problems: list[Problem] = []
    warnings: list[Problem] = []
    data = data if data is not None else _data_cfg(design)
    given_labels = df.attrs.get("row_labels")
    roles, problems = _resolve_columns(list(df.columns), data, source)
    missing = [c for c in REQUIRED_COLUMNS if c not in roles.values()]
    if missing:
        extra = [c for c in df.columns if c not in roles]
        hints = [f"{m!r}{_missing_hint(m, extra)}" for m in missing]
        problems.append(
            Problem(
                source,
                f"missing required column(s): {'; '.join(hints)}. A column named otherwise in the "
                "export is mapped in the config's data.columns.",
            )
        )
    if problems:
        raise DataError(problems)
    export_name = {role: col for col, role in roles.items()}
    lines = df.attrs.get("line_numbers")
    df = df[list(roles)].rename(columns=roles)
    for c in OPTIONAL_COLUMNS:
        if c not in df.columns:
            df[c] = ""
    baseline = tuple(c for c in BASELINE_COLUMNS if c in df.columns)  # absent columns stay absent
    offset = 2 if row_word == "line" else 1
    if lines is None or len(lines) != len(df):
        lines = [i + offset for i in range(len(df))]
    labels = [f"{row_word} {n}" for n in lines]
    if given_labels is not None and len(given_labels) == len(df):
        labels = list(given_labels)
    trial = getattr(getattr(design, "raw", None), "trial", None)
    start_date = getattr(trial, "start_date", None)

    def where(i: int, col: str) -> str:
        return f"{source} {labels[i]}, column {_shown(export_name.get(col, col), col)}"

    flags = {c: data.flag_values(c) for c in FLAG_COLUMNS}
    flag_words = {
        c: f"{', '.join(sorted(t))} (true), {', '.join(sorted(f))} (false)" for c, (t, f) in flags.items()
    }

    extra_dates = (TREATMENT_START_COLUMN,) if TREATMENT_START_COLUMN in df.columns else ()
    typed: dict[str, list] = {c: [] for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, *extra_dates, *baseline)}
    arm_ids = design.arm_ids
    arm_codes = dict(data.arm_codes)
    seen: dict[str, int] = {}
    for i, row in enumerate(df[list(typed)].itertuples(index=False, name=None)):
        rec = dict(zip(typed, row, strict=True))
        out: dict = {}
        sid = rec["subject_id"]
        if not sid:
            problems.append(Problem(where(i, "subject_id"), "subject_id is blank; every row needs one."))
        elif sid in seen:
            problems.append(
                Problem(
                    where(i, "subject_id"),
                    f"duplicate subject_id {excerpt(sid)} (first seen at {labels[seen[sid]]}); one row "
                    "per patient.",
                )
            )
        else:
            seen[sid] = i
        out["subject_id"] = sid or None
        out["site"] = rec["site"] or None
        arm = arm_codes.get(rec["arm"], rec["arm"])
        if not arm:
            problems.append(Problem(where(i, "arm"), "arm is blank."))
        elif arm not in arm_ids:
            codes = f" or a code of data.arm_codes ({', '.join(arm_codes)})" if arm_codes else ""
            problems.append(
                Problem(
                    where(i, "arm"),
                    f"unknown arm {excerpt(arm)}; the config defines {', '.join(arm_ids)}{codes}."
                    f"{_did_you_mean(arm, arm_ids)}"
                    + (
                        ""
                        if arm_codes
                        else " An export with its own treatment codes maps them in data.arm_codes."
                    ),
                )
            )
        out["arm"] = arm or None
        for col in BOOL_COLUMNS:
            s = rec[col]
            if not s:
                out[col] = None
                continue
            try:
                out[col] = _parse_bool(s, *flags[col])
            except ValueError:
                problems.append(
                    Problem(
                        where(i, col),
                        f"{excerpt(s)} is not a boolean; use {flag_words[col]}, any case, or blank "
                        "(other spellings: data.values in the config).",
                    )
                )
                out[col] = None
        for col in (*DATE_COLUMNS, *extra_dates):
            s = rec[col]
            if not s:
                out[col] = None
                continue
            try:
                out[col] = _parse_date(s)
            except ValueError:
                problems.append(
                    Problem(
                        where(i, col),
                        f"cannot parse date {excerpt(s)}; expected ISO 8601 YYYY-MM-DD (a time after "
                        "it, YYYY-MM-DDThh:mm[:ss], is ignored).",
                    )
                )
                out[col] = None
                continue
            if not EARLIEST_DATE <= out[col] <= LATEST_DATE:
                problems.append(
                    Problem(
                        where(i, col),
                        f"{col} {out[col]} is implausible (dates must lie between {EARLIEST_DATE} and "
                        f"{LATEST_DATE}); a mistyped year?",
                    )
                )
                out[col] = None
        if start_date is not None and out["enrolled_on"] is not None and out["enrolled_on"] < start_date:
            warnings.append(
                Problem(
                    where(i, "enrolled_on"),
                    f"enrolled_on {out['enrolled_on']} is before the trial's start_date {start_date} "
                    "(trial.start_date in the config).",
                )
            )
        if out["enrolled_on"] is None and not rec["enrolled_on"]:
            problems.append(Problem(where(i, "enrolled_on"), "enrolled_on is blank; it is required."))
        resp = rec["best_response"]
        if resp and resp not in RESPONSES:
            problems.append(
                Problem(
                    where(i, "best_response"),
                    f"{excerpt(resp)} is not a response category; use one of {', '.join(RESPONSES)} or "
                    f"blank (not yet assessed).{_did_you_mean(resp, RESPONSES)}",
                )
            )
            resp = ""
        out["best_response"] = resp or None
        kr = rec["karyotype_risk"]
        if kr and kr not in KARYOTYPE_RISKS:
            problems.append(
                Problem(
                    where(i, "karyotype_risk"),
                    f"{excerpt(kr)} is not one of {', '.join(KARYOTYPE_RISKS)}."
                    f"{_did_you_mean(kr, KARYOTYPE_RISKS)}",
                )
            )
            kr = ""
        out["karyotype_risk"] = kr or None
        for col in baseline:
            try:
                out[col] = parse_baseline(col, rec[col], flags.get(col))
            except ValueError as exc:
                problems.append(Problem(where(i, col), str(exc)))
                out[col] = None
        _check_dates(out, i, where, problems, warnings)
        for c in typed:
            typed[c].append(out[c])
    frame = pd.DataFrame(typed, dtype=object)
    frame["row_label"] = labels
    if problems:
        raise DataError(problems)
    warnings += _routing_warnings(frame, design, source, export_name)
    return frame, tuple(warnings)


def _data_cfg(design: Design) -> DataCfg:
    """The config's ``data`` section (defaults for a design object without one)."""
    data = getattr(getattr(design, "raw", None), "data", None)
    return data if isinstance(data, DataCfg) else DataCfg()


def _check_dates(out: dict, i: int, where, problems: list, warnings: list) -> None:
    enr = out["enrolled_on"]
    resp = out["best_response"]
    rdate = out["response_on"]
    if resp in ("CR", "CRi", "PR") and rdate is None:
        problems.append(
            Problem(where(i, "response_on"), f"best_response is {resp} but response_on is blank.")
        )
    if resp is None and rdate is not None:
        warnings.append(
            Problem(
                where(i, "response_on"),
                f"response_on {rdate} is set but best_response is blank; the response date is "
                "ignored (the patient counts as not yet assessed).",
            )
        )
    if enr is not None:
        for col in ("response_on", "death_on", "relapse_on", "hsct_on", "last_contact_on"):
            d = out[col]
            if d is not None and d < enr:
                problems.append(Problem(where(i, col), f"{col} {d} is before enrolled_on {enr}."))
    death = out["death_on"]
    start = out.get(TREATMENT_START_COLUMN)
    if start is not None:
        if enr is not None and start < enr:
            problems.append(
                Problem(
                    where(i, TREATMENT_START_COLUMN),
                    f"{TREATMENT_START_COLUMN} {start} is before enrolled_on {enr}.",
                )
            )
        if death is not None and start > death:
            problems.append(
                Problem(
                    where(i, TREATMENT_START_COLUMN),
                    f"{TREATMENT_START_COLUMN} {start} is after death_on {death}.",
                )
            )
    if death is not None and rdate is not None and rdate > death:
        problems.append(Problem(where(i, "response_on"), f"response_on {rdate} is after death_on {death}."))
    relapse = out["relapse_on"]
    if relapse is not None:
        if resp not in ("CR", "CRi"):
            problems.append(
                Problem(
                    where(i, "relapse_on"),
                    f"relapse_on is set but best_response is {resp or 'blank'}; "
                    "a relapse needs a prior CR or CRi.",
                )
            )
        elif rdate is not None and relapse < rdate:
            problems.append(
                Problem(where(i, "relapse_on"), f"relapse_on {relapse} is before response_on {rdate}.")
            )
        if death is not None and relapse > death:
            problems.append(
                Problem(where(i, "relapse_on"), f"relapse_on {relapse} is after death_on {death}.")
            )
    last = out["last_contact_on"]
    if death is not None and last is not None and last > death:
        warnings.append(
            Problem(where(i, "last_contact_on"), f"last contact {last} is after death on {death}.")
        )
    if out["mrd_negative"] is True and resp not in ("CR", "CRi"):
        warnings.append(
            Problem(
                where(i, "mrd_negative"),
                f"mrd_negative is true but best_response is {resp or 'blank'}; it only counts with CR/CRi.",
            )
        )


def _routing_warnings(
    frame: pd.DataFrame, design: Design, source: str, export_name: dict[str, str] | None = None
) -> list[Problem]:
    """Patients whose arm contradicts the routing rules (kept, but reported)."""
    if not design.routing:
        return []
    warnings = []
    cols = (
        "new_drug_eligible",
        "idh1",
        "flt3_itd",
        "flt3_tkd",
        "intensive_eligible",
        "prior_venetoclax_3m",
        "karyotype_risk",
    )
    randomized_arms = {a for s in design.routing if s.is_randomized for a in s.arms}

    def shown(col: str) -> str:
        return _shown((export_name or {}).get(col, col), col)

    for rec in frame.to_dict("records"):
        r = route(design.routing, {c: rec[c] for c in cols})
        where = f"{source} {rec['row_label']}, subject {rec['subject_id']}"
        if r.determined and r.cohort is not None and rec["arm"] not in r.arms:
            warnings.append(
                Problem(
                    f"{where}, column {shown('arm')}",
                    f"patient is in {rec['arm']} but the routing rules send them to cohort "
                    f"{r.cohort!r} ({', '.join(r.arms)}) because {r.reason}.",
                )
            )
        elif r.determined and r.cohort is None:
            warnings.append(
                Problem(
                    f"{where}, column {shown('arm')}",
                    f"no routing step applies to this patient ({r.reason}).",
                )
            )
        if rec["randomized"] is True and rec["arm"] not in randomized_arms:
            warnings.append(
                Problem(
                    f"{where}, column {shown('randomized')}",
                    f"randomized is true but {rec['arm']} is not in a randomized cohort.",
                )
            )
        elif rec["randomized"] is False and rec["arm"] in randomized_arms:
            warnings.append(
                Problem(
                    f"{where}, column {shown('randomized')}",
                    f"randomized is false but {rec['arm']} is only entered by randomization.",
                )
            )
    return warnings
