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


# ============================================================================= ADAE
AE_VARS = ["USUBJID", "AEBODSYS", "AEDECOD", "ATOXGR", "AESER", "TRTEMFL", "ASTDT", "AESDTH"]
BLOOD, INFECT = "Blood and lymphatic system disorders", "Infections and infestations"
GI, CARDIAC = "Gastrointestinal disorders", "Cardiac disorders"
#: events of the first six patients of the bundled export (arm4: S0001, S0002, S0005; arm2: S0004;
#: arm5: S0006; arm7: S0003), counted by hand in the test below at the cutoff 2025-12-31
HAND_AE = [
    ("S0001", BLOOD, "Febrile neutropenia", "3", "Y", "Y", "2025-04-20", ""),
    ("S0001", INFECT, "Pneumonia", "2", "N", "Y", "2025-05-01", ""),
    ("S0002", INFECT, "Sepsis", "5", "Y", "Y", "2025-06-01", "Y"),
    ("S0005", GI, "Nausea", "1", "N", "", "2025-04-10", ""),  # not treatment-emergent
    ("S0005", BLOOD, "Febrile neutropenia", "4", "N", "Y", "2026-02-01", ""),  # after the cutoff
    ("S0006", GI, "Nausea", "1", "N", "Y", "2025-05-01", ""),
    ("S0004", CARDIAC, "Atrial fibrillation", "", "N", "Y", "2025-06-01", "N"),  # not graded
]


def adae_frame(records) -> pd.DataFrame:
    """ADAE as SAS would hold it: numeric grade and start date, Y/N flags."""
    df = pd.DataFrame(records, columns=AE_VARS)
    df["ATOXGR"] = df["ATOXGR"].map(lambda g: float(g) if g else float("nan"))
    df["ASTDT"] = df["ASTDT"].map(sas_days)
    return df


def write_adae(folder, adae):
    import pyreadstat

    pyreadstat.write_xport(adae, str(folder / "adae.xpt"), file_format_version=5, table_name="ADAE")
    return folder


def test_adae_tables_counted_by_hand(tmp_path, cfg, flat):
    from types import SimpleNamespace

    from adaptive.report import data as rdata

    folder = write_adae(write_adam(tmp_path / "adam", *adam_of(flat.head(6))), adae_frame(HAND_AE))
    table = load_patients(folder, load_config(cfg))
    assert len(table.adverse_events) == len(HAND_AE)
    without = load_patients(write_adam(tmp_path / "adam2", *adam_of(flat.head(6))), load_config(cfg))
    assert without.adverse_events is None and without.sha256 != table.sha256
    arms = [{"arm": a} for a in ("arm2", "arm4", "arm5", "arm7")]
    look = SimpleNamespace(table=table, cutoff=date(2025, 12, 31), arms=arms)
    got = rdata.adverse_events_section(look, pooled=False)
    assert got["columns"] == ["arm2", "arm4", "arm5", "arm7", "Total"]
    assert got["n_patients"] == ["1", "3", "1", "1", "6"] and got["n_events"] == 5
    rows = {r["label"]: r["cells"] for r in got["summary"]}
    assert rows == {
        "Any treatment-emergent AE": ["1 (100%)", "2 (67%)", "1 (100%)", "0 (0%)", "4 (67%)"],
        "Grade 3 or higher": ["0 (0%)", "2 (67%)", "0 (0%)", "0 (0%)", "2 (33%)"],
        "Serious": ["0 (0%)", "2 (67%)", "0 (0%)", "0 (0%)", "2 (33%)"],
        "Fatal (grade 5, or resulting in death)": ["0 (0%)", "1 (33%)", "0 (0%)", "0 (0%)", "1 (17%)"],
    }
    assert [(r["label"], r["cells"][1], r["cells"][-1]) for r in got["soc_any"]] == [
        (INFECT, "2 (67%)", "2 (33%)"),
        (BLOOD, "1 (33%)", "1 (17%)"),
        (CARDIAC, "0 (0%)", "1 (17%)"),
        (GI, "0 (0%)", "1 (17%)"),
    ]
    assert [(r["label"], r["cells"][1]) for r in got["soc_g3"]] == [(BLOOD, "1 (33%)"), (INFECT, "1 (33%)")]
    pooled = rdata.adverse_events_section(look, pooled=True)
    assert pooled["columns"] == ["All patients"]
    assert [r["cells"] for r in pooled["summary"]] == [["4 (67%)"], ["2 (33%)"], ["2 (33%)"], ["1 (17%)"]]
    assert [r["label"] for r in pooled["soc_any"]] == [INFECT, BLOOD, CARDIAC, GI]


def test_adae_problems_name_dataset_row_usubjid_and_variable(tmp_path, cfg, flat):
    bad = [
        ("S9999", BLOOD, "Febrile neutropenia", "3", "Y", "Y", "2025-04-20", ""),
        ("S0001", "", "Pneumonia", "6", "perhaps", "Y", "", ""),
    ]
    folder = write_adae(write_adam(tmp_path / "adam", *adam_of(flat.head(3))), adae_frame(bad))
    msg = _problems(folder, cfg)
    assert "adae.xpt row 1 (USUBJID 'S9999'), variable 'USUBJID': subject 'S9999' is not in ADSL" in msg
    assert "adae.xpt row 2 (USUBJID 'S0001'), variable 'AEBODSYS': the system organ class is blank" in msg
    assert "adae.xpt row 2 (USUBJID 'S0001'), variable 'ATOXGR': grade '6' is not a CTCAE grade 1-5" in msg
    assert "adae.xpt row 2 (USUBJID 'S0001'), variable 'AESER': 'perhaps' is not a flag" in msg
    assert "adae.xpt row 2 (USUBJID 'S0001'), variable 'ASTDT': the start date is blank" in msg
    folder = write_adae(
        write_adam(tmp_path / "adam2", *adam_of(flat.head(3))), adae_frame(HAND_AE[:1]).drop(columns="AESER")
    )
    assert "adae.xpt, variable 'AESER': missing: ADAE needs" in _problems(folder, cfg)
    res = cli("validate", "--config", cfg, "--data", folder)
    assert res.exit_code == 2 and "Traceback" not in res.output


def adae_of(flat: pd.DataFrame) -> pd.DataFrame:
    """A made-up ADAE for every patient of an export (deterministic: by position in the file)."""
    from datetime import timedelta

    recs = []
    for i, r in enumerate(flat.to_dict("records")):
        day = date.fromisoformat(r["enrolled_on"])
        on = lambda k, day=day: (day + timedelta(days=k)).isoformat()  # noqa: E731
        if i % 2 == 0:
            recs.append((r["subject_id"], BLOOD, "Febrile neutropenia", "3", "Y", "Y", on(10), ""))
        if i % 3 == 0:
            recs.append((r["subject_id"], INFECT, "Pneumonia", "2", "N", "Y", on(20), ""))
        if i % 7 == 0:
            recs.append((r["subject_id"], INFECT, "Sepsis", "5", "Y", "Y", on(30), "Y"))
        if i % 5 == 0:
            recs.append((r["subject_id"], GI, "Nausea", "1", "N", "", on(3), ""))
        if i % 11 == 0:
            recs.append((r["subject_id"], CARDIAC, "Atrial fibrillation", "4", "N", "Y", on(40), ""))
    return adae_frame(recs)


def test_interim_memo_on_an_adam_folder_has_baseline_and_adverse_event_tables(tmp_path, flat):
    """``interim --memo`` passes the ADaM folder to the memo, which checks its hash (of the datasets);
    the closed memo has the baseline and AE tables by arm, the open memo pooled ones only, and a memo
    from the ledger's snapshot shows the same tables."""
    import json
    import re

    import yaml

    from adaptive.report import memo_paths
    from tests.test_memo import fast_doc, html_text, interim

    doc = fast_doc()
    doc["data"] = {"columns": dict(TRIAL_VARS)}
    cfg = tmp_path / "fast.yaml"
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    folder = write_adae(write_adam(tmp_path / "adam", *adam_of(flat)), adae_of(flat))
    out = tmp_path / "looks" / "2026-10-31"
    res = interim(cfg, folder, "2026-10-31", out, "--memo")
    assert res.exit_code == 0, res.output
    paths = memo_paths(out)
    closed = html_text(paths["closed_html"])
    n_m = int((flat[flat["enrolled_on"] <= "2026-10-31"]["sex"] == "M").sum())
    assert "Disposition as of the cutoff" in closed and f" {n_m} (" in closed
    report = json.loads((out / "recommendations.json").read_text())
    arms = [a["arm"] for a in report["arms"]]
    part = closed[closed.index("Patients with at least one treatment-emergent") :]
    assert "By system organ class, grade 3 or higher" in part and INFECT in part
    # fatal events by arm, counted here: the Sepsis record of every 7th patient, 30 days after
    # enrolment (so not yet for those enrolled in the last 30 days before the cutoff)
    enrolled = flat[flat["enrolled_on"] <= "2026-10-31"].reset_index()
    by_cutoff = pd.to_datetime(enrolled["enrolled_on"]) + pd.Timedelta(days=30) <= "2026-10-31"
    fatal = {a: int(((enrolled["index"] % 7 == 0) & by_cutoff & (enrolled["arm"] == a)).sum()) for a in arms}
    n = {a: int((enrolled["arm"] == a).sum()) for a in arms}

    def cell(k: int, m: int) -> str:
        return f"{k} ({(200 * k + m) // (2 * m)}%)" if m else str(k)

    row = " ".join([*(cell(fatal[a], n[a]) for a in arms), cell(sum(fatal.values()), len(enrolled))])
    assert f"Fatal (grade 5, or resulting in death) {row}" in part
    opened = html_text(paths["open_html"])
    part = opened[opened.index("Patients with at least one treatment-emergent") :]
    part = part[: part.index("Data completeness")]
    assert f"Fatal (grade 5, or resulting in death) {cell(sum(fatal.values()), len(enrolled))}" in part
    assert not any(re.search(rf"\b{a}\b", part) for a in arms)
    # every cell of the open AE tables is the closed tables' total of its row, in the same order
    from adaptive.report import data as rdata

    look = rdata.load_look(out)
    by_arm = rdata.adverse_events_section(look, pooled=False)
    totals = [r["cells"][-1] for k in ("summary", "soc_any", "soc_g3") for r in by_arm[k]]
    assert re.findall(r"\d+ \(\d+%\)", part) == totals
    closed_part = closed[closed.index("Patients with at least one treatment-emergent") :]
    closed_part = closed_part[: closed_part.index("Posterior distributions of CRc")]
    # memo from the ledger's snapshot (no --data): the same AE tables
    res = cli("memo", out, "--force")
    assert res.exit_code == 0, res.output
    again = html_text(paths["closed_html"])
    again = again[again.index("Patients with at least one treatment-emergent") :]
    assert again[: again.index("Posterior distributions of CRc")] == closed_part
    res = cli("memo", out, "--data", folder, "--force")
    assert res.exit_code == 0, res.output
    assert "SHA-256 verified against the look" in html_text(paths["closed_html"])
