"""Forgiving flat exports (issue 15.3): column and value maps, any-case headers, ISO datetimes, SAS dates.

The reference of every check is the canonical export (the bundled synthetic trial, lower-case
headers, ``true``/``false``, ``YYYY-MM-DD``): a re-encoded export must validate to the same frame.
"""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adaptive.cli import main
from adaptive.columns import CDISC_NAMES, FLAG_COLUMNS
from adaptive.config import load_config, parse_config
from adaptive.data import BOOL_COLUMNS, DATE_COLUMNS, load_patients, validate_frame
from adaptive.exceptions import ConfigError, DataError
from tests.conftest import CONFIG, EXAMPLE, rows_frame, write_csv

#: how the synthetic trial's columns are named in the "data management" export of these tests
EXPORT_NAMES = {
    "subject_id": "USUBJID",
    "site": "SITEID",
    "arm": "ARMCD",
    "enrolled_on": "RANDDT",
    "randomized": "RANDFL",
    "idh1": "IDH1FL",
    "flt3_itd": "FLT3ITD",
    "flt3_tkd": "FLT3TKD",
    "intensive_eligible": "INTELFL",
    "prior_venetoclax_3m": "PRIORVEN",
    "best_response": "BESTRSP",
    "response_on": "RSPDT",
    "mrd_negative": "MRDNEGFL",
    "relapse_on": "RELDT",
    "death_on": "DTHDT",
    "last_contact_on": "LSTALVDT",
    "hsct_on": "HSCTDT",
    "new_drug_eligible": "NEWDRGFL",
    "karyotype_risk": "KARYRISK",
    "age": "AGE",
    "sex": "SEX",
    "ecog": "ECOGBL",
    "disease_status": "DISSTAT",
    "prior_hsct": "PRHSCTFL",
    "eln2022_risk": "ELN2022",
}


def data_section(columns: dict[str, str] | None = None, values: str = "") -> str:
    lines = ["", "data:"]
    if columns:
        lines.append("  columns:")
        lines += [f"    {k}: {v}" for k, v in columns.items()]
    if values:
        lines.append(values)
    return "\n".join(lines) + "\n"


def config_with(tmp_path, section: str):
    path = tmp_path / "trial.yaml"
    path.write_text(CONFIG.read_text() + section)
    return path


def config_line(path, text: str) -> int:
    """The 1-based line of the first line of ``path`` holding ``text``."""
    return next(i for i, ln in enumerate(path.read_text().splitlines(), start=1) if text in ln)


def canonical(design):
    return load_patients(EXAMPLE, design).frame.drop(columns="row_label")


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def export_df():
    return pd.read_csv(EXAMPLE, dtype=str, keep_default_na=False)


def to_yn(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in FLAG_COLUMNS:
        if c in out:
            out[c] = out[c].map({"true": "Y", "false": "N", "": ""})
    return out


# --------------------------------------------------------------------------- mapped exports
def test_mapped_csv_of_the_synthetic_trial_gives_the_same_frame(tmp_path, design, export_df):
    cfg = load_config(config_with(tmp_path, data_section(EXPORT_NAMES)))
    path = write_csv(tmp_path, to_yn(export_df).rename(columns=EXPORT_NAMES), "adsl_like.csv")
    table = load_patients(path, cfg)
    pd.testing.assert_frame_equal(table.frame.drop(columns="row_label"), canonical(design))
    assert table.frame["row_label"].iloc[0] == "line 2"


def test_upper_case_csv_and_parquet_headers_are_accepted(tmp_path, design, export_df):
    upper = export_df.rename(columns=str.upper)
    got = load_patients(write_csv(tmp_path, upper, "upper.csv"), design).frame
    pd.testing.assert_frame_equal(got.drop(columns="row_label"), canonical(design))
    upper.to_parquet(tmp_path / "upper.parquet", index=False)
    got = load_patients(tmp_path / "upper.parquet", design).frame
    pd.testing.assert_frame_equal(got.drop(columns="row_label"), canonical(design))


def test_a_mapped_column_is_named_by_both_names(tmp_path, export_df):
    cfg = load_config(config_with(tmp_path, data_section({"randomized": "RANDFL"})))
    df = export_df.rename(columns={"randomized": "RANDFL"}).head(3)
    df.loc[1, "RANDFL"] = "perhaps"
    with pytest.raises(DataError) as exc:
        load_patients(write_csv(tmp_path, df, "d.csv"), cfg)
    assert "d.csv line 3, column 'RANDFL' (mapped to 'randomized'): 'perhaps' is not a boolean" in str(
        exc.value
    )


def test_value_maps_per_column_and_global(tmp_path, design, export_df):
    values = "\n".join(
        [
            "  values:",
            "    true_values: ['J']",
            "    false_values: ['N']",
            "    columns:",
            "      idh1: {true_values: [MUTATED], false_values: [WILD-TYPE]}",
        ]
    )
    cfg = load_config(config_with(tmp_path, data_section(values=values)))
    df = export_df.copy()
    for c in FLAG_COLUMNS:
        df[c] = df[c].map({"true": "j", "false": "N", "": ""})
    df["idh1"] = export_df["idh1"].map({"true": "Mutated", "false": "wild-type", "": ""})
    got = load_patients(write_csv(tmp_path, df), cfg).frame
    pd.testing.assert_frame_equal(got.drop(columns="row_label"), canonical(design))
    # the global list replaces the defaults: Y is no longer a flag
    df.loc[0, "randomized"] = "Y"
    with pytest.raises(DataError, match=r"line 2, column 'randomized': 'Y' is not a boolean; use j \(true\)"):
        load_patients(write_csv(tmp_path, df), cfg)


# --------------------------------------------------------------------------- hypothesis
def _cased(draw, word: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(ch.upper() if f else ch.lower() for ch, f in zip(word, flips, strict=True))


@st.composite
def flag_encoding(draw, value: bool) -> str:
    word = draw(st.sampled_from(["true", "y", "yes", "1"] if value else ["false", "n", "no", "0"]))
    return _cased(draw, word)


@st.composite
def datetime_encoding(draw, d: date) -> str:
    t = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2000, 1, 1, 23, 59, 59, 999999)))
    sep = draw(st.sampled_from(["T", " "]))
    form = draw(st.sampled_from(["minutes", "seconds", "milliseconds", "microseconds", "date"]))
    if form == "date":
        return d.isoformat()
    return f"{d.isoformat()}{sep}{t.time().isoformat(timespec=form)}"


rows = st.lists(st.fixed_dictionaries({c: st.booleans() for c in BOOL_COLUMNS}), min_size=1, max_size=4)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), flags=rows)
def test_flag_and_datetime_encodings_round_trip(design, data, flags):
    plain = rows_frame(*[{c: str(v).lower() for c, v in r.items()} for r in flags])
    plain["response_on"] = "2026-02-01"
    plain["best_response"] = "CR"
    plain["last_contact_on"] = "2026-03-01"
    encoded = plain.copy()
    for i, r in enumerate(flags):
        for c, v in r.items():
            encoded.loc[i, c] = data.draw(flag_encoding(v))
        for c in ("enrolled_on", "response_on", "last_contact_on"):
            encoded.loc[i, c] = data.draw(datetime_encoding(date.fromisoformat(plain.loc[i, c])))
    want = validate_frame(plain, design, source="d.csv")
    got = validate_frame(encoded, design, source="d.csv")
    pd.testing.assert_frame_equal(got[0], want[0])
    assert [w.message for w in got[1]] == [w.message for w in want[1]]


@pytest.mark.parametrize(
    "bad",
    [
        "2026-1-5",
        "2025-W15-2",
        "2026-01-05T25:00",
        "2026-01-05T10:60",
        "2026-01-05T10:00Z",
        "2026-01-05T10:00+01:00",
        "2026-01-05T10",
        "2026-01-05T",
    ],
)
def test_everything_else_stays_strict(design, bad):
    with pytest.raises(
        DataError, match=r"column 'death_on': cannot parse date .*expected ISO 8601 YYYY-MM-DD"
    ):
        validate_frame(rows_frame({"death_on": bad}), design, source="d.csv")


# --------------------------------------------------------------------------- config and CLI
def test_a_mapping_to_a_missing_column_names_the_config_line(tmp_path, export_df):
    config = config_with(tmp_path, data_section({"randomized": "RANDFL"}))
    data = write_csv(tmp_path, export_df.head(3), "d.csv")
    res = cli("validate", "--config", config, "--data", data)
    assert res.exit_code == 2
    line = config_line(config, "randomized: RANDFL")
    assert (
        f"trial.yaml line {line}: data.columns.randomized: maps 'randomized' to 'RANDFL', but d.csv has no column 'RANDFL'"
        in res.output
    )


def test_two_engine_columns_on_one_export_column_is_a_config_error(tmp_path):
    config = config_with(tmp_path, data_section({"death_on": "DTHDT", "last_contact_on": "dthdt"}))
    res = cli("validate", "--config", config)
    assert res.exit_code == 2
    line = config_line(config, "last_contact_on: dthdt")
    assert (
        f"trial.yaml line {line}: data.columns.last_contact_on: maps 'last_contact_on' to 'dthdt', which is already mapped to 'death_on'"
        in res.output
    )


def test_config_problems_of_the_data_section():
    base = CONFIG.read_text()
    with pytest.raises(ConfigError) as exc:
        parse_config(
            base + data_section({"randomised": "RANDFL"}, "  values:\n    true_values: [yes]\n"), "t.yaml"
        )
    assert "data.values.true_values: True is a YAML boolean" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        parse_config(
            base
            + data_section(
                {"randomised": "RANDFL"},
                "  values:\n    columns:\n      site: {true_values: ['x']}\n"
                "      idh1: {true_values: ['N']}\n",
            ),
            "t.yaml",
        )
    msg = str(exc.value)
    assert "data.columns.randomised: 'randomised' is not a column the engine reads" in msg
    assert "Did you mean 'randomized'?" in msg
    assert "data.values.columns.site: 'site' is not a boolean column" in msg
    assert "data.values.columns.idh1: n would mean both true and false in 'idh1'" in msg


def test_validate_through_the_cli_on_a_mapped_export(tmp_path, export_df):
    config = config_with(tmp_path, data_section(EXPORT_NAMES))
    data = write_csv(tmp_path, to_yn(export_df).rename(columns=EXPORT_NAMES), "export.csv")
    res = cli("validate", "--config", config, "--data", data)
    assert res.exit_code == 0, res.output
    assert "data " in res.output and ": OK (220 patients" in res.output


# --------------------------------------------------------------------------- hints
def test_adsl_shaped_file_gets_the_mapping_line_not_a_wrong_guess(tmp_path, design, export_df):
    adsl = export_df.rename(columns={k: v for k, v in EXPORT_NAMES.items() if v in CDISC_NAMES})
    with pytest.raises(DataError) as exc:
        load_patients(write_csv(tmp_path, adsl, "adsl.csv"), design)
    msg = str(exc.value)
    assert "'randomized' The export has the CDISC variable 'RANDFL': map it in the config" in msg
    assert "(data: columns: randomized: RANDFL)" in msg
    assert "(data: columns: subject_id: USUBJID)" in msg
    assert "(data: columns: enrolled_on: RANDDT)" in msg
    # a lower-case randdt column without RANDFL: no hint that randomized is randdt
    no_flag = export_df.drop(columns="randomized").rename(columns={"enrolled_on": "randdt"})
    with pytest.raises(DataError) as exc:
        load_patients(write_csv(tmp_path, no_flag, "adsl.csv"), design)
    msg = str(exc.value)
    assert "'randomized'" in msg and "randdt'?" not in msg.split("'randomized'")[1].split(";")[0]


def test_close_names_still_get_a_hint(design):
    df = rows_frame({}).rename(columns={"last_contact_on": "lastcontact_on"})
    with pytest.raises(DataError, match=r"'last_contact_on' Did you mean 'lastcontact_on'\?"):
        validate_frame(df, design)


# --------------------------------------------------------------------------- SAS transport
def _sas_days(s: str):
    return float((date.fromisoformat(s) - date(1960, 1, 1)).days) if s else float("nan")


def test_sas_v5_export_through_the_mapping(tmp_path, design, export_df):
    import pyreadstat

    cfg = load_config(config_with(tmp_path, data_section(EXPORT_NAMES)))
    df = export_df.rename(columns=EXPORT_NAMES)
    assert max(len(c) for c in df.columns) <= 8  # v5 names
    path = tmp_path / "adsl.xpt"
    pyreadstat.write_xport(df, str(path), file_format_version=5)
    got = load_patients(path, cfg).frame
    pd.testing.assert_frame_equal(got.drop(columns="row_label"), canonical(design))
    assert got["row_label"].iloc[0] == "row 1"


def test_sas_numeric_dates_datetimes_and_flags(tmp_path, design, export_df):
    import pyreadstat

    df = export_df.rename(columns=EXPORT_NAMES)
    dates = [EXPORT_NAMES[c] for c in DATE_COLUMNS]
    for c in dates:
        df[c] = df[c].map(_sas_days)
    # a datetime (seconds since 1960-01-01 00:00) at 09:30 in one column
    df["RANDDT"] = df["RANDDT"] * 86400 + 9.5 * 3600
    for c in BOOL_COLUMNS:
        df[EXPORT_NAMES[c]] = export_df[c].map({"true": 1.0, "false": 0.0, "": float("nan")})
    path = tmp_path / "adsl.xpt"
    pyreadstat.write_xport(df, str(path), file_format_version=5)
    raw, _meta = pyreadstat.read_xport(str(path))
    assert pd.api.types.is_float_dtype(raw["DTHDT"])  # no date format: pyreadstat gives numbers
    cfg = load_config(config_with(tmp_path, data_section(EXPORT_NAMES)))
    got = load_patients(path, cfg).frame
    pd.testing.assert_frame_equal(got.drop(columns="row_label"), canonical(design))


def test_a_fractional_sas_day_is_refused_with_its_value(tmp_path, export_df):
    import pyreadstat

    df = export_df.rename(columns=EXPORT_NAMES).head(3)
    df["DTHDT"] = [float("nan"), 24000.5, float("nan")]
    path = tmp_path / "adsl.xpt"
    pyreadstat.write_xport(df, str(path), file_format_version=5)
    cfg = load_config(config_with(tmp_path, data_section(EXPORT_NAMES)))
    with pytest.raises(
        DataError, match=r"adsl.xpt row 2, column 'DTHDT' \(mapped to 'death_on'\): cannot parse"
    ):
        load_patients(path, cfg)


def test_headers_equal_but_for_case_are_refused(tmp_path, design, export_df):
    df = export_df.head(3).copy()
    df["ARM"] = df["arm"]
    with pytest.raises(
        DataError, match=r"d.csv: columns 'arm' and 'ARM' differ only in case and both would be 'arm'"
    ):
        load_patients(write_csv(tmp_path, df, "d.csv"), design)


# --------------------------------------------------------------------------- arm codes
ARM_CODES = {"IVO": "arm1", "GIL": "arm2", "DAV": "arm3", "HAV": "arm4", "VENAZA": "arm5"}


def arm_codes_section() -> str:
    return "\ndata:\n  arm_codes:\n" + "".join(f"    {k}: {v}\n" for k, v in ARM_CODES.items())


def test_arm_codes_map_the_exports_treatment_codes(tmp_path, design, export_df):
    cfg = load_config(config_with(tmp_path, arm_codes_section()))
    back = {v: k for k, v in ARM_CODES.items()}
    coded = export_df.assign(arm=export_df["arm"].map(lambda a: back.get(a, a)))
    assert set(coded["arm"]) >= {"IVO", "DAV", "arm6"}  # arms without a code keep their id
    table = load_patients(write_csv(tmp_path, coded, "coded.csv"), cfg)
    pd.testing.assert_frame_equal(table.frame.drop(columns="row_label"), canonical(design))


def test_an_unknown_code_names_the_mapping(tmp_path, export_df):
    cfg = load_config(config_with(tmp_path, arm_codes_section()))
    bad = export_df.assign(arm=["IVOX"] + list(export_df["arm"][1:]))
    with pytest.raises(DataError) as exc:
        load_patients(write_csv(tmp_path, bad, "bad.csv"), cfg)
    msg = str(exc.value)
    assert "bad.csv line 2, column 'arm': unknown arm 'IVOX'" in msg
    assert "or a code of data.arm_codes (IVO, GIL, DAV, HAV, VENAZA)" in msg
    # without codes, the message says where such codes go
    with pytest.raises(DataError, match="An export with its own treatment codes maps them in data.arm_codes"):
        load_patients(write_csv(tmp_path, bad, "bad2.csv"), load_config(CONFIG))


def test_a_code_mapped_to_no_arm_is_a_config_error():
    with pytest.raises(ConfigError) as exc:
        parse_config(CONFIG.read_text() + "\ndata:\n  arm_codes:\n    IVO: arm11\n", "t.yaml")
    assert "data.arm_codes.IVO: maps 'IVO' to 'arm11', which is not an arm of the config" in str(exc.value)
    assert "Did you mean 'arm1'?" in str(exc.value)
