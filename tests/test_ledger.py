"""The look ledger: idempotent reruns, --force, data changes, concurrent runs, killed runs, history.

Fits use the conjugate independent model (exact draws, no MCMC) so that each look takes seconds.
"""

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from adaptive import datadiff
from adaptive.cli import main
from adaptive.data import load_patients, validate_frame
from adaptive.ledger import Ledger, read_looks
from tests.conftest import (
    EXAMPLE,
    ROOT,
    config_dict,
    design_from,
    rows_frame,
    small_sampler,
    without_survival,
    write_config,
)

CUTOFF = "2026-10-31"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def interim(cfg, data, cutoff, out, *extra):
    return run("interim", "--config", cfg, "--data", data, "--cutoff", cutoff, "--out", out, *extra)


def looks_in(ledger: Path) -> list:
    return read_looks(ledger)


def rows(ledger: Path) -> list[tuple]:
    with sqlite3.connect(ledger) as conn:
        return conn.execute("SELECT look, state, cutoff, status FROM looks ORDER BY look").fetchall()


def integrity_ok(ledger: Path) -> bool:
    with sqlite3.connect(ledger) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


# ----------------------------------------------------------------------------- idempotence, force
def test_rerun_is_idempotent_and_force_makes_a_new_look(fast_config, tmp_path):
    looks = tmp_path / "looks"
    res = interim(fast_config, EXAMPLE, CUTOFF, looks / "l1")
    assert res.exit_code == 0, res.output
    ledger = looks / "ledger.sqlite"
    assert "recorded as look 1" in res.output
    (rec,) = looks_in(ledger)
    before = digest(looks / "l1")
    assert (
        rec.report_sha256 == hashlib.sha256((looks / "l1" / "recommendations.json").read_bytes()).hexdigest()
    )
    assert rec.out_dir == str((looks / "l1").resolve()) and rec.status == "ok" and rec.seed == 20260101
    assert {"python", "numpy", "pymc"} <= set(rec.versions) and "max_rhat" in rec.diagnostics
    report = json.loads((looks / "l1" / "recommendations.json").read_text())
    schedule = report["look"].pop("schedule")
    assert report["look"] == {"number": 1, "ledger": "ledger.sqlite", "forced": False, "previous_look": None}
    # the config's looks every 91 days from 2025-04-01: six by 2026-10-31, the ledger holds one
    assert (schedule["plan"], schedule["scheduled"], schedule["made"]) == (
        "every 91 days from 2025-04-01",
        6,
        1,
    )
    assert "(6 by this cutoff), but the ledger holds 1: the simulated error rates" in schedule["sentence"]
    assert "look schedule: simulated with looks every 91 days from 2025-04-01" in res.output
    assert schedule["remedy"].startswith("`adaptive simulate --looks-from-ledger LEDGER`")
    assert "--looks-from-ledger" in " ".join(res.output.split())
    # ... and both memos say so on their first page (no arm in it: the open report too)
    from adaptive.report import data as rdata
    from adaptive.report.render import render_closed, render_open

    memo_look = rdata.load_look(looks / "l1", data=EXAMPLE, ledger=ledger)
    for html in (render_closed(memo_look, generated="-"), render_open(memo_look, generated="-")):
        assert "<strong>Look schedule:</strong> simulated with looks every 91 days" in html
    assert report["data_changes"] is None and rec.recommendations == report["recommendations"]

    # same data, config, cutoff (and --out): reports the earlier look, writes nothing, exit 0
    for out in ("l1", "l1-again"):
        res = interim(fast_config, EXAMPLE, CUTOFF, looks / out)
        assert res.exit_code == 0, res.output
        assert "Nothing to do" in res.output and "look 1 (cutoff 2026-10-31" in res.output
    assert sorted(p.name for p in looks.iterdir()) == ["l1", "ledger.sqlite", "ledger.sqlite.lock"]
    assert rows(ledger) == [(1, "recorded", CUTOFF, "ok")]

    # another seed on the same inputs is refused unless forced
    res = interim(fast_config, EXAMPLE, CUTOFF, looks / "l2", "--seed", 5)
    assert res.exit_code == 2 and "with seed 20260101, not 5" in res.output and "--force" in res.output
    res = interim(fast_config, EXAMPLE, CUTOFF, looks / "l2", "--force")
    assert res.exit_code == 0, res.output
    assert rows(ledger) == [(1, "recorded", CUTOFF, "ok"), (2, "recorded", CUTOFF, "ok")]
    assert digest(looks / "l1") == before  # the earlier look is untouched
    rep2 = json.loads((looks / "l2" / "recommendations.json").read_text())
    assert rep2["look"]["forced"] is True and rep2["look"]["previous_look"]["number"] == 1
    assert rep2["data_changes"]["identical"] is True
    assert rep2["data_changes"]["sentence"] == "The data are unchanged since look 1."

    # same seed, same data: the same per-arm recommendations; the allocation moves on from look 1's
    def per_arm(rep):
        return [r for r in rep["recommendations"] if r["action"] != "adjust_randomization"]

    assert per_arm(rep2) == per_arm(report)
    assert (
        rep2["allocation"]["fit_no_target"]["previous"]
        == report["allocation"]["fit_no_target"]["probabilities"]
    )


def test_an_earlier_look_folder_is_never_overwritten(fast_config, tmp_path):
    looks = tmp_path / "looks"
    assert interim(fast_config, EXAMPLE, "2026-06-30", looks / "l1").exit_code == 0
    before = digest(looks / "l1")
    res = interim(fast_config, EXAMPLE, CUTOFF, looks / "l1")  # new cutoff, same folder
    assert res.exit_code == 2 and "already holds results" in res.output
    assert digest(looks / "l1") == before and len(rows(looks / "ledger.sqlite")) == 1


def test_ledger_path_from_config_and_bad_ledger_file(tmp_path):
    doc = small_sampler(without_survival(config_dict()), draws=200, tune=200)
    for ep in doc["endpoints"].values():
        ep["model"] = {"kind": "independent"}
    doc["ledger"] = {"path": "trial-ledger.sqlite"}
    cfg = write_config(tmp_path, doc)
    res = interim(cfg, EXAMPLE, CUTOFF, tmp_path / "out" / "l1")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "trial-ledger.sqlite").is_file() and not (tmp_path / "out" / "ledger.sqlite").exists()
    bad = tmp_path / "bad.sqlite"
    bad.write_text("this is not a database\n" * 50)
    res = interim(cfg, EXAMPLE, CUTOFF, tmp_path / "out" / "l2", "--ledger", bad)
    assert res.exit_code == 2 and "is not a readable look ledger" in res.output
    res = run("history", "--ledger", tmp_path / "missing.sqlite")
    assert res.exit_code == 2 and "no ledger at" in res.output


# ----------------------------------------------------------------------------- data changes
def _edit(src: Path, dst: Path, edits: dict[str, dict], drop=()) -> Path:
    df = pd.read_csv(src, dtype=str, keep_default_na=False)
    for sid, fields in edits.items():
        for col, val in fields.items():
            df.loc[df["subject_id"] == sid, col] = val
    df = df[~df["subject_id"].isin(drop)]
    df.to_csv(dst, index=False, lineterminator="\n")
    return dst


def test_new_look_reports_what_changed_for_earlier_patients(fast_config, tmp_path):
    looks = tmp_path / "looks"
    assert interim(fast_config, EXAMPLE, "2026-06-30", looks / "l1").exit_code == 0
    # S0002 (HAV) had CR on 2025-04-26 -> recoded NR; S0005 gets a death dated before the first
    # cutoff (entered late); S0006 disappears from the export
    data2 = _edit(
        EXAMPLE,
        tmp_path / "export2.csv",
        {"S0002": {"best_response": "NR", "mrd_negative": ""}, "S0005": {"death_on": "2025-12-20"}},
        drop=("S0006",),
    )
    res = interim(fast_config, data2, CUTOFF, looks / "l2")
    assert res.exit_code == 0, res.output
    assert "data changes: Since look 1 (cutoff 2026-06-30)" in res.output
    ch = json.loads((looks / "l2" / "recommendations.json").read_text())["data_changes"]
    assert ch["previous_look"] == 1 and ch["n_cleaning"] == 2 and not ch["identical"]
    assert ch["removed_patients"] == [{"subject_id": "S0006", "arm": "arm5"}]
    by_id = {c["subject_id"]: c for c in ch["changed_patients"]}
    s2 = by_id["S0002"]
    assert not s2["routine"]
    assert {
        "field": "best_response",
        "previous": "CR",
        "current": "NR",
        "kind": "change",
        "routine": False,
    } in s2["changes"]
    assert s2["previous_look_effect"]["crc"] == [1, 0]
    assert "S0002 (arm4): best_response CR -> NR" in ch["sentence"]
    s5 = by_id["S0005"]
    assert s5["changes"] == [
        {"field": "death_on", "previous": None, "current": "2025-12-20", "kind": "addition", "routine": False}
    ]
    assert not s5["routine"] and s5["previous_look_effect"] == {}  # a late death, not an early one
    assert "S0005 (arm4): death_on blank -> 2025-12-20 (data cleaning)" in ch["sentence"]
    (_, rec2) = looks_in(looks / "ledger.sqlite")
    assert rec2.data_changes == ch


def _table(*recs):
    design = design_from(config_dict())
    frame, _ = validate_frame(rows_frame(*recs), design)
    return type("T", (), {"frame": frame})


def test_routine_follow_up_versus_data_cleaning():
    base = {"enrolled_on": "2026-03-01", "last_contact_on": "2026-06-01"}
    prev = datadiff.snapshot(
        _table(
            base,  # S1: responds after the previous cutoff (routine)
            {**base, "best_response": "PR", "response_on": "2026-04-10"},  # S2: PR -> CR later (routine)
            {
                **base,
                "best_response": "CR",
                "response_on": "2026-04-10",
                "mrd_negative": "true",
            },  # S3 recoded
            base,  # S4: a death dated before the previous cutoff, entered late
        )
    )
    prev["S9"] = dict(prev["S4"])  # S9: removed from the new export
    cur = datadiff.snapshot(
        _table(
            {**base, "best_response": "CR", "response_on": "2026-08-01", "last_contact_on": "2026-09-01"},
            {**base, "best_response": "CR", "response_on": "2026-08-15"},
            {**base, "best_response": "NR", "response_on": "2026-04-10"},
            {**base, "death_on": "2026-03-20", "last_contact_on": ""},
            {**base, "enrolled_on": "2026-05-01", "last_contact_on": "2026-05-02"},  # S5: late registration
            {**base, "enrolled_on": "2026-08-01", "last_contact_on": "2026-08-02"},  # S6: new
        )
    )
    d = datadiff.diff(
        prev,
        cur,
        previous_cutoff=date(2026, 6, 30),
        window_days=56,
        previous_look=3,
        previous_data_sha256="a",
        current_data_sha256="b",
    )
    by = {c["subject_id"]: c for c in d["changed_patients"]}
    assert by["S1"]["routine"] and by["S1"]["previous_look_effect"] == {}
    assert by["S2"]["routine"]
    assert not by["S3"]["routine"] and by["S3"]["previous_look_effect"]["crc"] == [1, 0]
    assert not by["S4"]["routine"]
    assert by["S4"]["previous_look_effect"]["mortality_30d"] == [0, 1]
    assert by["S4"]["previous_look_effect"]["crc"] == [None, 0]  # death before any response
    assert [x["subject_id"] for x in d["late_registrations"]] == ["S5"]
    assert d["n_new_patients"] == 2 and d["removed_patients"] == [{"subject_id": "S9", "arm": "arm3"}]
    assert (d["n_routine"], d["n_cleaning"]) == (2, 2)
    assert "2 patient(s) with routine follow-up, 2 with data cleaning, 1 removed" in d["sentence"]
    assert datadiff.decode(datadiff.encode(cur)) == cur


# ----------------------------------------------------------------------------- processes
def _script(cfg, data, cutoff, out, ledger, patch: str = "", extra=()) -> list[str]:
    args = ["interim", "--config", str(cfg), "--data", str(data), "--cutoff", cutoff, "--out", str(out)]
    args += ["--ledger", str(ledger), *extra]
    code = textwrap.dedent(patch) + f"\nfrom adaptive.cli import main\nmain({args!r})\n"
    return [sys.executable, "-c", code]


def _start(cmd) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


SLOW_FIT = """
import time, adaptive.interim as interim
_fit = interim.fit_endpoints
def slow(*a, **k):
    time.sleep(2)
    return _fit(*a, **k)
interim.fit_endpoints = slow
"""


@pytest.mark.slow  # four processes, each importing PyMC
def test_two_processes_at_once_both_finish_correctly(fast_config, tmp_path):
    ledger = tmp_path / "ledger.sqlite"
    # the same look started twice: one makes it, the other waits and finds it (idempotent)
    procs = [
        _start(_script(fast_config, EXAMPLE, CUTOFF, tmp_path / "l1", ledger, SLOW_FIT)) for _ in range(2)
    ]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sum("Nothing to do" in o for o in outs) == 1
    assert rows(ledger) == [(1, "recorded", CUTOFF, "ok")] and integrity_ok(ledger)
    # two different looks at once: serialized and numbered; if the later cutoff gets the lock first,
    # the earlier one is refused (exit 2) rather than taking the later look as its "previous"
    early, late = "2026-11-15", "2026-11-30"
    procs = {
        cut: _start(_script(fast_config, EXAMPLE, cut, tmp_path / f"l-{cut}", ledger, SLOW_FIT))
        for cut in (early, late)
    }
    outs = {cut: p.communicate(timeout=300)[0] for cut, p in procs.items()}
    assert procs[late].returncode == 0, outs
    recs = looks_in(ledger)
    assert integrity_ok(ledger)
    if procs[early].returncode == 2:
        assert f"cutoff {early} is before the cutoff {late} of look 2" in " ".join(outs[early].split())
        assert [(r.look, r.cutoff) for r in recs] == [(1, CUTOFF), (2, late)]
    else:
        assert procs[early].returncode == 0, outs
        assert [(r.look, r.cutoff) for r in recs] == [(1, CUTOFF), (2, early), (3, late)]
    for r in recs[1:]:
        rep = json.loads((Path(r.out_dir) / "recommendations.json").read_text())
        assert rep["look"]["number"] == r.look and rep["look"]["previous_look"]["number"] == r.look - 1


def test_a_busy_ledger_is_refused_clearly(fast_config, tmp_path):
    ledger = tmp_path / "ledger.sqlite"
    with Ledger.open(ledger):
        res = interim(fast_config, EXAMPLE, CUTOFF, tmp_path / "l1", "--ledger", ledger, "--wait", 0.3)
    assert res.exit_code == 4
    assert "is locked by another adaptive interim (pid" in res.output and "--wait" in res.output
    assert not (tmp_path / "l1").exists() and rows(ledger) == []


def _kill_when(proc: subprocess.Popen, marker: Path, timeout=120.0) -> None:
    t0 = time.monotonic()
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"process ended early: {proc.communicate()[0]}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            raise AssertionError("marker never appeared")
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _hang(module: str, owner: str, attr: str, marker: Path, *, after: bool = False) -> str:
    """Code that replaces ``module.owner.attr`` by a version that writes ``marker`` and hangs.

    ``after``: call the original first (the hang comes after its effect).
    """
    target = f"importlib.import_module({module!r})" + (f".{owner}" if owner else "")
    first = "    _orig(*a, **k)\n" if after else ""
    return (
        "import importlib, pathlib, time\n"
        f"_obj = {target}\n"
        f"_orig = getattr(_obj, {attr!r})\n"
        "def _hung(*a, **k):\n"
        f"{first}"
        f"    pathlib.Path({str(marker)!r}).write_text('x')\n"
        "    time.sleep(600)\n"
        f"setattr(_obj, {attr!r}, _hung)\n"
    )


def test_killed_mid_fit_leaves_nothing(fast_config, tmp_path):
    ledger = tmp_path / "looks" / "ledger.sqlite"
    out = tmp_path / "looks" / "l1"
    marker = tmp_path / "fitting"
    proc = _start(
        _script(
            fast_config, EXAMPLE, CUTOFF, out, ledger, _hang("adaptive.interim", "", "fit_endpoints", marker)
        )
    )
    _kill_when(proc, marker)
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".l1.tmp")]
    assert rows(ledger) == [] and integrity_ok(ledger)
    # the lock died with the process: the next run goes ahead at once
    res = interim(fast_config, EXAMPLE, CUTOFF, out, "--ledger", ledger, "--wait", 0)
    assert res.exit_code == 0, res.output
    assert rows(ledger) == [(1, "recorded", CUTOFF, "ok")]


@pytest.mark.slow
def test_killed_while_writing_leaves_no_look_and_is_cleaned_up(fast_config, tmp_path):
    ledger = tmp_path / "ledger.sqlite"
    out = tmp_path / "l1"
    marker = tmp_path / "writing"
    # killed after the pending row was committed, before the folder was renamed into place
    patch = _hang("adaptive.ledger", "Ledger", "insert_pending", marker, after=True)
    _kill_when(_start(_script(fast_config, EXAMPLE, CUTOFF, out, ledger, patch)), marker)
    assert not out.exists()
    assert [p.name.startswith(".l1.tmp-") for p in tmp_path.iterdir() if p.name.startswith(".")] == [True]
    assert rows(ledger) == [(1, "pending", CUTOFF, "ok")]
    assert read_looks(ledger) == []  # a pending look is not a look
    assert "Looks in" in run("history", "--ledger", ledger).output
    res = interim(fast_config, EXAMPLE, CUTOFF, out, "--ledger", ledger)
    assert res.exit_code == 0, res.output
    assert "look 1 was interrupted before its folder was written; discarded" in res.output
    assert rows(ledger) == [(1, "recorded", CUTOFF, "ok")]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".l1.tmp-")]


@pytest.mark.slow
def test_killed_after_the_rename_is_recorded_on_the_next_run(fast_config, tmp_path):
    ledger = tmp_path / "ledger.sqlite"
    out = tmp_path / "l1"
    marker = tmp_path / "renamed"
    patch = _hang("adaptive.ledger", "Ledger", "mark_recorded", marker)
    _kill_when(_start(_script(fast_config, EXAMPLE, CUTOFF, out, ledger, patch)), marker)
    assert (out / "recommendations.json").is_file() and rows(ledger) == [(1, "pending", CUTOFF, "ok")]
    res = interim(fast_config, EXAMPLE, CUTOFF, out, "--ledger", ledger)
    assert res.exit_code == 0, res.output
    assert (
        "interrupted after its folder was written; recorded" in res.output and "Nothing to do" in res.output
    )
    assert rows(ledger) == [(1, "recorded", CUTOFF, "ok")] and integrity_ok(ledger)


# ----------------------------------------------------------------------------- history
def test_history_prints_looks_and_arm_trajectories(fast_config, tmp_path):
    looks = tmp_path / "looks"
    for cut in ("2026-06-30", CUTOFF):
        assert interim(fast_config, EXAMPLE, cut, looks / cut).exit_code == 0
    res = run("history", "--ledger", looks / "ledger.sqlite")
    assert res.exit_code == 0, res.output
    assert "Looks in" in res.output and "2026-06-30" in res.output and "arm3 DAV" in res.output
    res = run("history", "--ledger", looks / "ledger.sqlite", "--json")
    hist = json.loads(res.output)
    assert [lk["look"] for lk in hist["looks"]] == [1, 2]
    assert hist["looks"][1]["data_changes"]["sentence"] == "The data are unchanged since look 1."
    arm4 = hist["arms"]["arm4"]
    assert [r["cutoff"] for r in arm4] == ["2026-06-30", CUTOFF]
    assert all(0 < r["allocation"] < 1 and r["status"] == "active" for r in arm4)
    assert arm4[1]["crc_evaluable"] > arm4[0]["crc_evaluable"]
    assert hist["arms"]["arm8"][0]["status"] == "queued"


def test_look_schedule_counts_the_planned_looks(design):
    from adaptive.interim import look_schedule
    from tests.conftest import design_from

    table = load_patients(EXAMPLE, design)
    cut = date(2026, 10, 31)
    assert look_schedule(design, table, cut, made=5)["sentence"] is None  # one missing is drift
    assert look_schedule(design, table, cut, made=4)["sentence"] is not None
    by_patients = config_dict()
    by_patients["looks"] = {"every_patients": 40, "first_after_patients": 60}
    d2 = design_from(by_patients)
    n = sum(1 for x in table.frame["enrolled_on"] if x <= cut)
    s2 = look_schedule(d2, load_patients(EXAMPLE, d2), cut, made=1)
    assert s2["scheduled"] == (n - 60) // 40 + 1 and s2["plan"] == "every 40 patients from the 60th"


# ----------------------------------------------------------------------------- looks as held
def test_simulate_the_looks_the_ledger_holds(fast_config, tmp_path):
    """Two looks held (cutoffs 2026-04-30 and 2026-10-31, twice the second): the simulation looks
    on days 394 and 578 from the start (2025-04-01), then every 91 days (669, ...)."""
    import numpy as np

    looks = tmp_path / "looks"
    for cutoff in ("2026-04-30", "2026-10-31"):
        assert interim(fast_config, EXAMPLE, cutoff, looks / cutoff).exit_code == 0
    assert interim(fast_config, EXAMPLE, "2026-10-31", looks / "again", "--force").exit_code == 0
    ledger = looks / "ledger.sqlite"
    sim = tmp_path / "sim"
    res = run(
        "simulate", "--config", fast_config, "--scenario", ROOT / "configs/scenarios/realistic.yaml",
        "--trials", 30, "--seed", 2, "--out", sim, "--quiet", "--looks-from-ledger", ledger,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "looks as held (ledger.sqlite): days 394, 578 from 2025-04-01" in res.output
    oc = json.loads((sim / "oc.json").read_text())
    held = oc["looks_as_held"]
    assert held["at_days"] == [394, 578] and held["cutoffs"] == ["2026-04-30", "2026-10-31"]
    assert held["ledger_sha256"] == hashlib.sha256(ledger.read_bytes()).hexdigest()
    assert oc["design"]["looks"]["at_days"] == [394, 578]
    assert oc["config_sha256"] == hashlib.sha256(Path(fast_config).read_bytes()).hexdigest()
    trials = pd.read_parquet(sim / "trials.parquet")
    assert len(trials) > 0
    # the look schedule the simulator followed, from the engine directly
    from adaptive.scenario import load_scenario
    from adaptive.simulate.engine import compile_spec, simulate_chunk
    from adaptive.simulate.study import with_look_days

    design = design_from(yaml_load(with_look_days(Path(fast_config).read_text(), held["at_days"])))
    spec = compile_spec(design, load_scenario(ROOT / "configs/scenarios/realistic.yaml", design))
    days = simulate_chunk(spec, 2, np.arange(5)).look_day[:, 1:4]
    assert np.array_equal(days, np.tile([394.0, 578.0, 669.0], (5, 1)))


def test_looks_from_a_ledger_need_the_trial_start(fast_config, tmp_path):
    import yaml

    looks = tmp_path / "looks"
    assert interim(fast_config, EXAMPLE, CUTOFF, looks / CUTOFF).exit_code == 0
    doc = yaml.safe_load(Path(fast_config).read_text())
    del doc["trial"]["start_date"]
    cfg = tmp_path / "no_start.yaml"
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    res = run(
        "simulate", "--config", cfg, "--scenario", ROOT / "configs/scenarios/realistic.yaml",
        "--trials", 10, "--out", tmp_path / "sim", "--quiet", "--looks-from-ledger", looks / "ledger.sqlite",
    )  # fmt: skip
    assert res.exit_code != 0 and "trial.start_date is needed" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "sim").exists()


def yaml_load(text: str) -> dict:
    import yaml

    return {k: v for k, v in yaml.safe_load(text).items() if not k.startswith("x-")}
