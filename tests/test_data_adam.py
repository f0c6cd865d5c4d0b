"""ADaM input (issue 15, item 1): ADSL + ADRS in a folder give the same table as the flat export."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from adaptive.config import load_config
from adaptive.data import load_patients
from adaptive.exceptions import DataError
from tests.conftest import CONFIG, EXAMPLE
from tests.test_data_mapping import cli

#: trial-specific ADSL variables (v5 names) named in the config's data.columns
TRIAL_VARS = {
    "idh1": "IDH1FL",
    "flt3_itd": "FLT3ITD",
    "flt3_tkd": "FLT3TKD",
    "intensive_eligible": "INTELFL",
    "prior_venetoclax_3m": "PRIORVEN",
    "hsct_on": "HSCTDT",
    "new_drug_eligible": "NEWDRGFL",
    "karyotype_risk": "KARYRISK",
}
STANDARD = {
    "subject_id": "USUBJID",
    "site": "SITEID",
    "arm": "ARMCD",
    "enrolled_on": "RANDDT",
    "randomized": "RANDFL",
    "death_on": "DTHDT",
    "last_contact_on": "LSTALVDT",
}

#: baseline characteristics under the ADSL names the engine reads by default (AGE, SEX standard)
BASELINE = {
    "age": "AGE",
    "sex": "SEX",
    "ecog": "ECOGBL",
    "disease_status": "DISSTAT",
    "prior_hsct": "PRHSCTFL",
    "eln2022_risk": "ELN2022",
}


def sas_days(s: str) -> float:
    return float((date.fromisoformat(s) - date(1960, 1, 1)).days) if s else float("nan")


def adam_of(flat: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ADSL and ADRS of the flat export: SAS numeric dates, Y/N flags, one ADRS record per parameter."""
    base = [c for c in BASELINE if c in flat.columns]
    adsl = flat[list(STANDARD) + list(TRIAL_VARS) + base].rename(
        columns={**STANDARD, **TRIAL_VARS, **BASELINE}
    )
    if base:  # SAS numbers for AGE and ECOGBL, CDISC-style upper-case codes, a Y/N flag
        adsl["AGE"] = adsl["AGE"].map(lambda s: float(s) if s else float("nan"))
        adsl["ECOGBL"] = adsl["ECOGBL"].map(lambda s: float(s) if s else float("nan"))
        adsl["DISSTAT"] = adsl["DISSTAT"].str.upper()
        adsl["ELN2022"] = adsl["ELN2022"].str.upper()
        adsl["PRHSCTFL"] = adsl["PRHSCTFL"].map({"true": "Y", "false": "N", "": ""})
    for c in ("RANDDT", "DTHDT", "LSTALVDT", "HSCTDT"):
        adsl[c] = adsl[c].map(sas_days)
    for c in ("RANDFL", "IDH1FL", "FLT3ITD", "FLT3TKD", "INTELFL", "PRIORVEN", "NEWDRGFL"):
        adsl[c] = adsl[c].map({"true": "Y", "false": "N", "": ""})
    recs = []
    for r in flat.to_dict("records"):
        if r["best_response"]:
            recs.append((r["subject_id"], "BOR", r["best_response"], sas_days(r["response_on"])))
        if r["relapse_on"]:
            recs.append((r["subject_id"], "RELAPSE", "Y", sas_days(r["relapse_on"])))
        if r["mrd_negative"]:
            recs.append((r["subject_id"], "MRD", "Y" if r["mrd_negative"] == "true" else "N", float("nan")))
    adrs = pd.DataFrame(recs, columns=["USUBJID", "PARAMCD", "AVALC", "ADT"])
    return adsl, adrs


def write_adam(folder, adsl, adrs):
    import pyreadstat

    folder.mkdir(exist_ok=True)
    pyreadstat.write_xport(adsl, str(folder / "adsl.xpt"), file_format_version=5, table_name="ADSL")
    pyreadstat.write_xport(adrs, str(folder / "adrs.xpt"), file_format_version=5, table_name="ADRS")
    return folder


@pytest.fixture(scope="module")
def flat():
    return pd.read_csv(EXAMPLE, dtype=str, keep_default_na=False)


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "trial.yaml"
    lines = ["", "data:", "  columns:", *[f"    {k}: {v}" for k, v in TRIAL_VARS.items()]]
    path.write_text(CONFIG.read_text() + "\n".join(lines) + "\n")
    return path


def test_adam_folder_gives_the_flat_table(tmp_path, cfg, flat, design):
    folder = write_adam(tmp_path / "adam", *adam_of(flat))
    got = load_patients(folder, load_config(cfg))
    want = load_patients(EXAMPLE, design)
    pd.testing.assert_frame_equal(got.frame.drop(columns="row_label"), want.frame.drop(columns="row_label"))
    assert got.frame["row_label"].iloc[0] == "row 1 (USUBJID 'S0001')"
    assert [w.message for w in got.warnings] == [w.message for w in want.warnings]
    res = cli("validate", "--config", cfg, "--data", folder)
    assert res.exit_code == 0, res.output
    assert "OK (220 patients" in res.output


def _problems(folder, cfg) -> str:
    with pytest.raises(DataError) as exc:
        load_patients(folder, load_config(cfg))
    return str(exc.value)


def test_missing_dataset_and_variable(tmp_path, cfg, flat):
    adsl, adrs = adam_of(flat.head(5))
    folder = write_adam(tmp_path / "adam", adsl, adrs)
    (folder / "adrs.xpt").unlink()
    assert "adam/: no ADRS dataset" in _problems(folder, cfg)
    folder = write_adam(tmp_path / "adam2", adsl.drop(columns=["DTHDT", "IDH1FL"]), adrs)
    msg = _problems(folder, cfg)
    assert "adsl.xpt, variable 'DTHDT': missing: the engine's 'death_on' is read from it" in msg
    assert (
        "adsl.xpt, variable 'IDH1FL': missing: the engine's 'idh1' is read from it; the config maps it" in msg
    )


def test_row_problems_name_dataset_row_usubjid_and_variable(tmp_path, cfg, flat):
    adsl, adrs = adam_of(flat.head(6))
    adsl.loc[3, "USUBJID"] = adsl.loc[1, "USUBJID"]  # duplicate subject
    adrs = adrs[adrs["USUBJID"] != "S0004"]
    adsl.loc[2, "DTHDT"] = 24000.5  # not a whole SAS day
    adrs = pd.concat(
        [
            adrs,
            pd.DataFrame(
                [("S9999", "BOR", "CR", 24000.0), ("S0001", "OVRLRESP", "CR", 24000.0)],
                columns=adrs.columns,
            ),
        ],
        ignore_index=True,
    )
    n = len(adrs)
    assert "OVRLRESP" not in _problems(write_adam(tmp_path / "adam", adsl, adrs.iloc[:-1]), cfg)
    msg = _problems(write_adam(tmp_path / "adam", adsl, adrs), cfg)
    assert (
        f"adrs.xpt row {n - 1} (USUBJID 'S9999'), variable 'USUBJID': subject 'S9999' is not in adsl.xpt"
        in msg
    )
    assert f"adrs.xpt row {n} (USUBJID 'S0001'), variable 'PARAMCD': unknown parameter 'OVRLRESP'" in msg
    # listed together with ADRS's problems
    assert "adsl.xpt row 4 (USUBJID 'S0002'), column 'USUBJID' (mapped to 'subject_id'): duplicate" in msg
    assert "adsl.xpt row 3 (USUBJID 'S0003'), column 'DTHDT' (mapped to 'death_on'): cannot parse date" in msg


def test_ignored_parameters_are_skipped(tmp_path, cfg, flat, design):
    adsl, adrs = adam_of(flat.head(4))
    visits = pd.DataFrame([("S0001", "OVRLRESP", "PR", 24000.0)], columns=adrs.columns)
    cfg.write_text(cfg.read_text() + "  adrs:\n    ignore: [OVRLRESP]\n")
    got = load_patients(write_adam(tmp_path / "adam", adsl, pd.concat([adrs, visits])), load_config(cfg))
    want = load_patients(write_adam(tmp_path / "adam2", adsl, adrs), load_config(cfg))
    pd.testing.assert_frame_equal(got.frame, want.frame)
    assert got.sha256 != want.sha256


def test_a_second_record_of_one_parameter_is_refused(tmp_path, cfg, flat):
    adsl, adrs = adam_of(flat.head(4))
    adrs = pd.concat([adrs, adrs.iloc[[0]]], ignore_index=True)
    msg = _problems(write_adam(tmp_path / "adam", adsl, adrs), cfg)
    assert f"adrs.xpt row {len(adrs)} (USUBJID 'S0001'), variable 'PARAMCD': a second BOR record" in msg


def test_adsl_baseline_variables_mapped_missing_and_refused(tmp_path, cfg, flat):
    adsl, adrs = adam_of(flat.head(5))
    # another name for ECOG in data.columns; no DISSTAT, PRHSCTFL or ELN2022: those are left out
    adsl = adsl.rename(columns={"ECOGBL": "ECOG"}).drop(columns=["DISSTAT", "PRHSCTFL", "ELN2022"])
    cfg.write_text(cfg.read_text() + "    ecog: ECOG\n")
    got = load_patients(write_adam(tmp_path / "adam", adsl, adrs), load_config(cfg)).frame
    assert {"age", "sex", "ecog"} <= set(got.columns)
    assert not {"disease_status", "prior_hsct", "eln2022_risk"} & set(got.columns)
    assert list(got["age"]) == [float(a) for a in flat["age"].head(5)]
    assert list(got["ecog"]) == [int(e) for e in flat["ecog"].head(5)]
    assert list(got["sex"]) == list(flat["sex"].head(5))
    # a bad value names the dataset, row, USUBJID and the variable (AGE and ECOG: the same name in any case)
    adsl.loc[1, "AGE"] = 7.0
    adsl.loc[3, "ECOG"] = 6.0
    msg = _problems(write_adam(tmp_path / "adam2", adsl, adrs), cfg)
    assert "adsl.xpt row 2 (USUBJID 'S0002'), column 'age': age '7' is outside 18-110" in msg
    assert "adsl.xpt row 4 (USUBJID 'S0004'), column 'ecog': ECOG '6' is not a" in msg


def test_interim_memo_on_an_adam_folder_has_the_baseline_table(tmp_path, flat):
    """``interim --memo`` passes the ADaM folder to the memo, which checks its hash (of the datasets)."""
    import yaml

    from adaptive.report import memo_paths
    from tests.test_memo import fast_doc, html_text, interim

    doc = fast_doc()
    doc["data"] = {"columns": dict(TRIAL_VARS)}
    cfg = tmp_path / "fast.yaml"
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    folder = write_adam(tmp_path / "adam", *adam_of(flat))
    out = tmp_path / "looks" / "2026-10-31"
    res = interim(cfg, folder, "2026-10-31", out, "--memo")
    assert res.exit_code == 0, res.output
    text = html_text(memo_paths(out)["closed_html"])
    n_m = int((flat[flat["enrolled_on"] <= "2026-10-31"]["sex"] == "M").sum())
    assert "Disposition as of the cutoff" in text and "Male " in text and f" {n_m} (" in text
    res = cli("memo", out, "--data", folder, "--force")
    assert res.exit_code == 0, res.output
    assert "SHA-256 verified against the look" in html_text(memo_paths(out)["closed_html"])
