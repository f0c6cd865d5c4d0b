"""ADTTE in an ADaM folder and its reconciliation; ``adaptive synth --format adam`` (issue 15, items 1, 2, 5).

The look comparison uses the binary-only ``fast_config`` (no MCMC for survival); the
reconciliation itself is pure data and is tested on derived tables.
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adaptive.adam import read_adtte
from adaptive.config import DataCfg, load_config
from adaptive.data import load_patients
from adaptive.derive import derive
from adaptive.exceptions import ConfigError, DataError
from adaptive.interim import look_reconciliation
from adaptive.reconcile import REPORT_COLUMNS, AdtteData, reconcile
from adaptive.synth import adam_datasets, write_adam
from tests.conftest import CONFIG, EXAMPLE, SCENARIOS, config_dict, design_from
from tests.test_data_mapping import cli

#: the export date of the bundled synthetic trial (``synth`` prints it): ADTTE is derived as of it
EXPORT = date(2026, 11, 3)


def synth_adam(out: Path, n: int = 220, seed: int = 7):
    """``adaptive synth --format adam`` of the realistic scenario into ``out``."""
    args = ["synth", "--config", CONFIG, "--scenario", SCENARIOS / "realistic.yaml", "--n", n, "--seed", seed]
    return cli(*args, "--format", "adam", "--out", out)


@pytest.fixture(scope="module")
def adam(tmp_path_factory) -> Path:
    """The bundled synthetic trial written by ``adaptive synth --format adam`` (the README's line)."""
    out = tmp_path_factory.mktemp("synth") / "adam"
    res = synth_adam(out)
    assert res.exit_code == 0, res.output
    assert f"export date {EXPORT}" in res.output
    return out


@pytest.fixture(scope="module")
def flat() -> pd.DataFrame:
    return pd.read_csv(EXAMPLE, dtype=str, keep_default_na=False)


def _design():
    return load_config(CONFIG)


def test_synth_writes_v5_xpt_files_of_the_flat_trial(adam, design):
    assert sorted(p.name for p in adam.iterdir()) == ["adrs.xpt", "adsl.xpt", "adtte.xpt"]
    for p in adam.iterdir():
        head = p.read_bytes()[:80]
        assert head.startswith(b"HEADER RECORD*******LIBRARY HEADER RECORD!!!!!!!")  # v5, not LIBV8
        df, meta = pyreadstat.read_xport(str(p))
        assert all(len(c) <= 8 for c in df.columns), p.name
        assert meta.table_name == p.stem.upper()
    got = load_patients(adam, design)
    want = load_patients(EXAMPLE, design)
    pd.testing.assert_frame_equal(got.frame.drop(columns="row_label"), want.frame.drop(columns="row_label"))
    assert got.adtte is not None and set(got.adtte.frame["paramcd"]) == {"OS", "EFS", "RFS"}
    # the folder's hash covers all three datasets
    assert got.sha256 != want.sha256


def test_synth_adam_is_byte_identical_across_runs(adam, tmp_path):
    """The headers carry the export date, not the time of writing: same trial, same bytes."""
    again = tmp_path / "again"
    assert synth_adam(again).exit_code == 0
    for p in adam.iterdir():
        assert (again / p.name).read_bytes() == p.read_bytes(), p.name
        stamp = EXPORT.strftime("%d%b%y").upper().encode() + b":00:00:00"
        assert p.read_bytes()[:400].count(stamp) == 2  # the library header's created and modified


def test_pinning_stamps_leaves_the_observations_alone(tmp_path):
    from adaptive.synth import pin_xpt_stamps

    df = pd.DataFrame({"USUBJID": ["01JAN26:10:11:12", "x"], "AVAL": [1.0, 2.0]})
    path = tmp_path / "t.xpt"
    pyreadstat.write_xport(df, str(path), file_format_version=5, table_name="T")
    pin_xpt_stamps(path, date(2026, 11, 3))
    back, _ = pyreadstat.read_xport(str(path))
    assert back["USUBJID"].tolist() == ["01JAN26:10:11:12", "x"]  # a value shaped like a stamp stays
    assert b"03NOV26:00:00:00" in path.read_bytes()
    (tmp_path / "not.xpt").write_bytes(b"plain text")
    with pytest.raises(ValueError, match="not a SAS transport v5 file"):
        pin_xpt_stamps(tmp_path / "not.xpt", date(2026, 11, 3))


def test_synth_adam_refuses_to_overwrite(adam):
    before = {p.name: p.read_bytes() for p in adam.iterdir()}
    res = synth_adam(adam, n=5, seed=1)
    assert res.exit_code == 2
    assert "exists; synth never overwrites" in res.output
    assert {p.name: p.read_bytes() for p in adam.iterdir()} == before
    assert not [p for p in adam.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_reconciliation_is_silent_on_synth_adtte(adam, design):
    table = load_patients(adam, design)
    recon = look_reconciliation(table, derive(table, design, EXPORT))
    assert recon is not None
    assert recon.n_disagreements == 0
    assert recon.n_compared == {"os": 220, "efs": 204, "rfs": 84}  # every ADTTE record compared
    assert recon.n_compared == {
        ep: int((table.adtte.frame["endpoint"] == ep).sum()) for ep in ("os", "efs", "rfs")
    }
    assert recon.to_csv() == ",".join(REPORT_COLUMNS) + "\n"
    assert "no disagreement (508 subject-endpoint pairs)" in recon.sentence()


def _planted(table, change) -> AdtteData:
    frame = table.adtte.frame.copy()
    change(frame)
    return AdtteData(table.adtte.source, frame, table.adtte.codes, table.adtte.aval_offset_days)


def test_reconciliation_finds_a_planted_os_disagreement(adam, design):
    table = load_patients(adam, design)
    derived = derive(table, design, EXPORT)
    os_ = table.adtte.frame.index[(table.adtte.frame["endpoint"] == "os")]
    died = [i for i in os_ if table.adtte.frame.at[i, "cnsr"] == 0]
    i, j = died[0], os_[-1]
    sid_i, sid_j = table.adtte.frame.at[i, "subject_id"], table.adtte.frame.at[j, "subject_id"]
    aval_i = table.adtte.frame.at[i, "aval"]

    def more_days(f):
        f.loc[i, "aval"] += 7

    r = reconcile(_planted(table, more_days), derived.survival, table.frame, EXPORT)
    assert r.n_disagreements == 1
    row = r.frame.iloc[0].to_dict()
    assert (row["USUBJID"], row["PARAMCD"], row["endpoint"]) == (sid_i, "OS", "os")
    assert (row["engine_time"], row["engine_event"], row["adtte_aval"], row["adtte_cnsr"]) == (
        str(int(aval_i)),
        1,
        str(int(aval_i) + 7),
        0,
    )
    assert row["reason"] == (
        f"AVAL {int(aval_i) + 7} vs the engine's {int(aval_i)} days (ADTTE 7 days longer)"
    )
    assert row["adtte_record"].startswith("row ") and f"(USUBJID '{sid_i}')" in row["adtte_record"]

    def flipped(f):
        f.loc[i, "cnsr"] = 1

    r = reconcile(_planted(table, flipped), derived.survival, table.frame, EXPORT)
    assert r.n_disagreements == 1
    assert r.frame.iloc[0]["reason"] == "ADTTE censors (CNSR=1), the engine has an event (death)"

    def dropped(f):
        f.drop(index=j, inplace=True)

    r = reconcile(_planted(table, dropped), derived.survival, table.frame, EXPORT)
    assert r.frame[["USUBJID", "reason"]].values.tolist() == [[sid_j, "no OS record in ADTTE"]]
    assert r.to_dict()["by_endpoint"] == {"os": 1, "efs": 0, "rfs": 0}


def test_reconciliation_at_an_earlier_cutoff_names_the_later_data_cut(adam, design):
    table = load_patients(adam, design)
    cutoff = EXPORT - timedelta(days=3)
    r = look_reconciliation(table, derive(table, design, cutoff))
    assert r.n_disagreements > 0
    later = r.frame["reason"].str.contains(f"is after the cutoff {cutoff} \\(ADTTE from a later data cut")
    pending = r.frame["reason"].str.endswith(
        "the engine's EFS is pending (response landmark not passed, or no assessment recorded yet)"
    )
    assert (later | pending).all() and later.sum() > 100 and pending.sum() >= 1


def test_reconciliation_only_on_parameters_adtte_holds(adam, design):
    table = load_patients(adam, design)
    derived = derive(table, design, EXPORT)
    only_os = _planted(table, lambda f: f.drop(index=f.index[f["endpoint"] != "os"], inplace=True))
    r = reconcile(only_os, derived.survival, table.frame, EXPORT)
    assert r.endpoints == ("os",) and r.n_disagreements == 0


def test_the_plus_one_day_convention(adam, design):
    """``aval_offset_days: 1``: AVAL = ADT - STARTDT + 1; an ELN treatment failure stays on day 1."""
    table = load_patients(adam, design)
    derived = derive(table, design, EXPORT)
    efs = derived.survival.times["efs"]
    failures = set(efs.loc[efs["day0"], "subject_id"])
    assert failures

    def plus_one(f):
        tf = (f["endpoint"] == "efs") & f["subject_id"].isin(failures)
        f.loc[~tf, "aval"] += 1

    shifted = _planted(table, plus_one)
    assert reconcile(shifted, derived.survival, table.frame, EXPORT).n_disagreements == len(
        shifted.frame
    ) - len(failures)
    one = AdtteData(shifted.source, shifted.frame, shifted.codes, aval_offset_days=1)
    assert reconcile(one, derived.survival, table.frame, EXPORT).n_disagreements == 0


# ---------------------------------------------------------------- the looks: ADaM vs flat CSV


def _look(config, data, out: Path, ledger: Path):
    res = cli(
        "interim",
        "--config",
        config,
        "--data",
        data,
        "--cutoff",
        EXPORT.isoformat(),
        "--out",
        out,
        "--ledger",
        ledger,
    )
    assert res.exit_code == 0, res.output
    return res.output, json.loads((out / "recommendations.json").read_text())


def _located(warnings: list[str]) -> list[str]:
    """Warnings without their location (file and line vs dataset and row)."""
    return [w.split(": ", 1)[1] for w in warnings]


def test_adam_and_flat_looks_agree(adam, fast_config, tmp_path):
    out_a, rep_a = _look(fast_config, adam, tmp_path / "adam_look", tmp_path / "a.sqlite")
    out_f, rep_f = _look(fast_config, EXAMPLE, tmp_path / "flat_look", tmp_path / "f.sqlite")
    assert (tmp_path / "adam_look" / "reconciliation.csv").read_text() == ",".join(REPORT_COLUMNS) + "\n"
    assert not (tmp_path / "flat_look" / "reconciliation.csv").exists()
    recon = rep_a.pop("reconciliation")
    assert recon["n_disagreements"] == 0 and recon["dataset"] == "adtte.xpt"
    assert rep_f.pop("reconciliation") is None
    assert "ADTTE reconciliation:" in out_a and "no disagreement" in out_a
    assert "reconciliation.csv" in out_a and "reconciliation" not in out_f
    assert (rep_a.pop("data_file"), rep_f.pop("data_file")) == ("adam", EXAMPLE.name)
    assert rep_a.pop("data_sha256") != rep_f.pop("data_sha256")
    assert rep_a["look"].pop("ledger") == "a.sqlite" and rep_f["look"].pop("ledger") == "f.sqlite"
    assert _located(rep_a.pop("warnings")) == _located(rep_f.pop("warnings"))
    assert rep_a == rep_f  # counts, posteriors, rules, recommendations: identical
    assert [a["n_enrolled"] for a in rep_a["arms"]] == [a["n_enrolled"] for a in rep_f["arms"]]


def test_a_look_lists_a_planted_disagreement(adam, fast_config, tmp_path):
    folder = tmp_path / "adam"
    folder.mkdir()
    for p in adam.iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    tte, _meta = pyreadstat.read_xport(str(adam / "adtte.xpt"))
    k = tte.index[(tte["PARAMCD"] == "OS") & (tte["CNSR"] == 0)][0]
    tte.loc[k, "CNSR"] = 1.0
    sid = tte.loc[k, "USUBJID"]
    pyreadstat.write_xport(
        tte,
        str(folder / "adtte.xpt"),
        file_format_version=5,
        table_name="ADTTE",
        variable_format={"STARTDT": "DATE9", "ADT": "DATE9"},
    )
    out, rep = _look(fast_config, folder, tmp_path / "look", tmp_path / "l.sqlite")
    assert rep["reconciliation"]["n_disagreements"] == 1
    assert any("adtte.xpt: " in w and "1 disagreement(s)" in w for w in rep["warnings"])
    assert "1 disagreement(s), listed per subject in the look's reconciliation.csv" in out
    csv = pd.read_csv(tmp_path / "look" / "reconciliation.csv", dtype=str)
    assert csv[["USUBJID", "PARAMCD", "adtte_cnsr", "engine_event"]].values.tolist() == [
        [sid, "OS", "1", "1"]
    ]
    assert csv.loc[0, "adtte_record"] == f"row {k + 1} (USUBJID '{sid}')"
    res = cli("validate", "--config", fast_config, "--data", folder, "--cutoff", EXPORT.isoformat())
    assert res.exit_code == 0, res.output
    assert f"  - {sid} OS: ADTTE censors (CNSR=1), the engine has an event (death)" in res.output
    # the closed memo names it on its first page and in the appendix (HTML only: no PDF needed)
    from adaptive.report import data as rdata
    from adaptive.report.render import render_closed

    look = rdata.load_look(tmp_path / "look", data=folder, ledger=tmp_path / "l.sqlite")
    html = render_closed(look, generated="2026-11-04 00:00 UTC")
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    assert "ADTTE reconciliation: 1 disagreement between data management's ADTTE" in text
    assert "ADTTE reconciliation (1 disagreement)" in text
    assert "Compared: OS 220 (1 disagreeing), EFS 204, RFS 84;" in text


# ---------------------------------------------------------------- ADTTE problems: exit 2, located


@pytest.fixture
def small(tmp_path, flat, design):
    """ADSL, ADRS and ADTTE of the first six patients, as synth writes them."""
    return adam_datasets(flat.head(6).copy(), design, EXPORT)


def _write(tmp_path, ds, name="adam") -> Path:
    folder = tmp_path / name
    write_adam(ds, folder, EXPORT)
    return folder


def _validate_fails(folder) -> str:
    res = cli("validate", "--config", CONFIG, "--data", folder)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    return " ".join(res.output.split())


def test_small_adam_is_valid(tmp_path, small):
    res = cli("validate", "--config", CONFIG, "--data", _write(tmp_path, small))
    assert res.exit_code == 0, res.output


def test_adtte_missing_variable(tmp_path, small):
    small["adtte"] = small["adtte"].drop(columns=["CNSR"])
    msg = _validate_fails(_write(tmp_path, small))
    assert "adtte.xpt, variable 'CNSR': missing: ADTTE needs USUBJID, PARAMCD, AVAL, CNSR" in msg


def test_adtte_row_problems_name_dataset_row_usubjid_and_variable(tmp_path, small):
    tte = small["adtte"]
    tte.loc[0, "PARAMCD"] = "TTR"  # unknown parameter
    tte.loc[1, "USUBJID"] = "S9999"  # not in ADSL
    tte.loc[3, "AVAL"] = -2.0
    tte.loc[4, "CNSR"] = 2.0
    tte.loc[5, "ADT"] = 24000.5  # not a whole SAS day
    tte["ADT"] = tte["ADT"].map(lambda d: (d - date(1960, 1, 1)).days if isinstance(d, date) else d)
    dup = tte.iloc[[2]]
    small["adtte"] = pd.concat([tte, dup], ignore_index=True)
    n = len(small["adtte"])
    sid = [str(s) for s in small["adtte"]["USUBJID"]]
    msg = _validate_fails(_write(tmp_path, small))
    assert f"adtte.xpt row 1 (USUBJID '{sid[0]}'), variable 'PARAMCD': unknown parameter 'TTR'" in msg
    assert "adtte.xpt row 2 (USUBJID 'S9999'), variable 'USUBJID': subject 'S9999' is not in adsl.xpt" in msg
    assert f"adtte.xpt row 4 (USUBJID '{sid[3]}'), variable 'AVAL': AVAL '-2' is not a time" in msg
    assert f"adtte.xpt row 5 (USUBJID '{sid[4]}'), variable 'CNSR': CNSR '2' is neither 0" in msg
    assert f"adtte.xpt row 6 (USUBJID '{sid[5]}'), variable 'ADT': cannot parse date '24000.5" in msg
    code = small["adtte"].loc[2, "PARAMCD"]
    assert (
        f"adtte.xpt row {n} (USUBJID '{sid[2]}'), variable 'PARAMCD': a second {code} record for this "
        "subject (first at row 3)" in msg
    )


def test_adtte_problems_are_listed_with_adsl_and_adrs_problems(tmp_path, small):
    small["adtte"].loc[0, "CNSR"] = 7.0
    small["adrs"].loc[0, "PARAMCD"] = "OVRLRESP"
    msg = _validate_fails(_write(tmp_path, small))
    assert "adtte.xpt row 1" in msg and "adrs.xpt row 1" in msg


def test_ignored_adtte_parameters_are_skipped(tmp_path, small):
    small["adtte"].loc[0, "PARAMCD"] = "TTR"
    folder = _write(tmp_path, small)
    _validate_fails(folder)
    doc = config_dict()
    doc["data"] = {"adtte": {"ignore": ["TTR"]}}
    table = load_patients(folder, design_from(doc))
    assert len(table.adtte.frame) == len(small["adtte"]) - 1


def test_adtte_codes_in_the_config(tmp_path, flat):
    doc = config_dict()
    doc["data"] = {"adtte": {"os": "OSDAYS", "efs": "EFSELN", "rfs": "RFS"}}
    design = design_from(doc)
    ds = adam_datasets(flat.head(6).copy(), design, EXPORT)
    assert set(ds["adtte"]["PARAMCD"]) <= {"OSDAYS", "EFSELN", "RFS"}
    table = load_patients(_write(tmp_path, ds), design)
    assert look_reconciliation(table, derive(table, design, EXPORT)).n_disagreements == 0
    with pytest.raises(DataError, match="unknown parameter 'OSDAYS'"):
        load_patients(tmp_path / "adam", _design())
    doc["data"] = {"adtte": {"os": "OS", "efs": "OS"}}
    with pytest.raises(ConfigError, match="repeated: OS"):
        design_from(doc)


# ---------------------------------------------------------------- round trip of the encodings

_day = st.integers(min_value=0, max_value=800)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    start=st.integers(min_value=0, max_value=3000),
    days=st.lists(_day, min_size=1, max_size=4),
    cnsr=st.lists(st.sampled_from([0, 1]), min_size=4, max_size=4),
    encoding=st.sampled_from(["sas_days", "date9", "iso_csv", "datetime"]),
)
def test_adtte_encodings_round_trip(tmp_path_factory, start, days, cnsr, encoding):
    """AVAL/CNSR and STARTDT/ADT written as SAS days, DATE9., ISO text or SAS datetimes read back."""
    d0 = date(2025, 1, 1) + timedelta(days=start)
    subjects = [f"S{i}" for i in range(len(days))]
    recs = [
        (s, "OS", float(t), float(c), d0, d0 + timedelta(days=t))
        for s, t, c in zip(subjects, days, cnsr, strict=False)
    ]
    tte = pd.DataFrame(recs, columns=["USUBJID", "PARAMCD", "AVAL", "CNSR", "STARTDT", "ADT"])
    folder = tmp_path_factory.mktemp("rt")
    if encoding == "iso_csv":
        tte = tte.assign(AVAL=tte["AVAL"].astype(int), CNSR=tte["CNSR"].astype(int))
        tte.to_csv(folder / "adtte.csv", index=False)
        path = folder / "adtte.csv"
    else:
        fmt = {}
        for c in ("STARTDT", "ADT"):
            if encoding == "sas_days":
                tte[c] = tte[c].map(lambda d: float((d - date(1960, 1, 1)).days))
            elif encoding == "datetime":
                tte[c] = tte[c].map(lambda d: float((d - date(1960, 1, 1)).days) * 86400 + 3600)
            else:
                fmt[c] = "DATE9"
        path = folder / "adtte.xpt"
        pyreadstat.write_xport(tte, str(path), file_format_version=5, table_name="ADTTE", variable_format=fmt)
    got, _raw, problems = read_adtte(path, DataCfg(), set(subjects), "adsl.xpt")
    assert problems == []
    assert got is not None
    f = got.frame
    assert f["subject_id"].tolist() == subjects
    assert f["aval"].tolist() == [float(t) for t in days]
    assert f["cnsr"].tolist() == cnsr[: len(days)]
    assert set(f["startdt"]) == {d0}
    assert f["adt"].tolist() == [d0 + timedelta(days=t) for t in days]


@settings(max_examples=8, deadline=None)
@given(n=st.integers(min_value=3, max_value=40), seed=st.integers(min_value=0, max_value=10_000))
def test_synth_adam_round_trips_and_reconciles_silently(tmp_path_factory, n, seed):
    """Any synthetic trial written as ADaM reads back as its flat table; ADTTE agrees at the export date."""
    from adaptive.data import validate_frame
    from adaptive.scenario import load_scenario
    from adaptive.synth import synthesize

    design = _design()
    flat = synthesize(design, load_scenario(SCENARIOS / "realistic.yaml", design), n, seed)
    export = date.fromisoformat(flat.attrs["export_date"])
    folder = tmp_path_factory.mktemp("rt") / "adam"
    write_adam(adam_datasets(flat, design, export), folder, export)
    table = load_patients(folder, design)
    want, _warnings = validate_frame(flat.copy(), design, source="synth")
    pd.testing.assert_frame_equal(table.frame.drop(columns="row_label"), want.drop(columns="row_label"))
    recon = look_reconciliation(table, derive(table, design, export))
    assert recon is not None and recon.n_disagreements == 0
    assert sum(recon.n_compared.values()) == len(table.adtte.frame)
