"""The DSMB memo: files, sections, PDF pages and text, blinding of the open report, a refused look,
survival parts, the headless-Chromium screenshot.

Looks are made with the conjugate independent model (exact draws, no MCMC) so that each takes
seconds; the memo never refits, so what it shows does not depend on the model.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from fractions import Fraction
from html import unescape
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner
from pypdf import PdfReader
from scipy import stats

from adaptive.cli import main
from adaptive.columns import BASELINE_COLUMNS
from adaptive.data import load_patients
from adaptive.derive import derive
from adaptive.report import CLOSED_SECTIONS, FILES, OPEN_SECTIONS, build_memo, memo_paths
from adaptive.report import data as rdata
from adaptive.report import figures as rfig
from tests.conftest import EXAMPLE, config_dict, small_sampler, with_provenance, write_config

NOW = datetime(2026, 11, 5, 9, 0, tzinfo=UTC)
HEX = re.compile(r"\b[0-9a-f]{12,64}\b")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def interim(cfg, data, cutoff, out, *extra):
    return run("interim", "--config", cfg, "--data", data, "--cutoff", cutoff, "--out", out, *extra)


SURVIVAL_RULES = ("survival_efficacy", "survival_futility", "hazard_ratio")


def fast_doc(**limits) -> dict:
    """The bundled config with conjugate binary models only (and no survival section, where the
    engine has one: these looks stay fast; survival parts are tested on their own below)."""
    doc = small_sampler(config_dict(), draws=250, tune=200)
    doc.pop("survival", None)
    doc["rules"] = [r for r in doc["rules"] if r["kind"] not in SURVIVAL_RULES]
    for arm in doc["arms"].values():
        arm.pop("survival_benchmarks", None)
    for ep in doc["endpoints"].values():
        ep["model"] = {"kind": "independent"}
    doc["sampler"]["limits"].update(limits)
    return with_provenance(doc)


def cleaned_export(path: Path) -> str:
    """The bundled export with one response recoded (CR -> NR): data cleaning between looks."""
    df = pd.read_csv(EXAMPLE, dtype=str, keep_default_na=False)
    i = df.index[(df.best_response == "CR") & (df.enrolled_on < "2026-03-01")][0]
    df.loc[i, ["best_response", "mrd_negative", "relapse_on"]] = ["NR", "", ""]
    df.to_csv(path, index=False, lineterminator="\n")
    return df.loc[i, "subject_id"]


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    """Two looks in one ledger; look 2 on a cleaned export, its memo made by ``interim --memo``."""
    root = tmp_path_factory.mktemp("memo")
    cfg = write_config(root, fast_doc())
    data2 = root / "export-2026-11.csv"
    subject = cleaned_export(data2)
    looks = root / "looks"
    res = interim(cfg, EXAMPLE, "2026-07-31", looks / "2026-07-31")
    assert res.exit_code == 0, res.output
    res = interim(cfg, data2, "2026-10-31", looks / "2026-10-31", "--memo")
    assert res.exit_code == 0, res.output
    assert "wrote the DSMB memo" in res.output
    return {
        "root": root,
        "cfg": cfg,
        "data2": data2,
        "look": looks / "2026-10-31",
        "subject": subject,
        "output": res.output,
    }


def pdf_pages(path: Path) -> list[dict]:
    """Text of each page, with the running header (top margin) and footer (bottom margin) apart."""
    out = []
    for page in PdfReader(path).pages:
        height = float(page.mediabox.height)
        parts = {"header": [], "footer": [], "body": []}

        def visit(text, cm, tm, font, size, parts=parts, height=height):
            y = tm[5] * cm[3] + cm[5] if cm else tm[5]
            key = "header" if y > height - 45 else "footer" if y < 43 else "body"
            parts[key].append(text)

        full = page.extract_text(visitor_text=visit)
        out.append({k: "".join(v).strip() for k, v in parts.items()} | {"text": full})
    return out


def html_text(path: Path) -> str:
    """Visible text of an HTML file (tags, styles and data URIs removed)."""
    html = path.read_text(encoding="utf-8")
    html = re.sub(r"<style.*?</style>", " ", html, flags=re.S)
    html = re.sub(r"<[^>]+>", " ", html)
    return re.sub(r"\s+", " ", unescape(html))


# ============================================================================= files and sections
def test_memo_files_are_self_contained_html_and_pdf(trial):
    look = trial["look"]
    paths = memo_paths(look)
    assert {p.name for p in paths.values()} == set(FILES.values())
    assert all("closed" in p.name or "open" in p.name for p in paths.values())
    assert not list(look.glob(".*tmp*"))  # no temporary file left
    closed = paths["closed_html"].read_text()
    for sid, title in CLOSED_SECTIONS:
        assert f'<section id="{sid}">' in closed and title in closed
    # figures embedded, nothing fetched from elsewhere
    assert (
        closed.count('src="data:image/png;base64,') == 6
    )  # enrolment, densities, forest, allocation, trajectories, ranks
    assert not re.search(r'(src|href)="(https?:|file:|//)', closed) and "<link" not in closed
    opened = paths["open_html"].read_text()
    for sid, _ in OPEN_SECTIONS:
        assert f'<section id="{sid}">' in opened
    assert opened.count('src="data:image/png;base64,') == 3
    for p in (paths["closed_pdf"], paths["open_pdf"]):
        assert p.read_bytes().startswith(b"%PDF-")


def test_closed_report_content_matches_the_look(trial):
    report = json.loads((trial["look"] / "recommendations.json").read_text())
    text = html_text(memo_paths(trial["look"])["closed_html"])
    for r in report["recommendations"]:  # every recommendation with its reason
        assert r["sentence"] in text
    crc = {a["arm"]: a["endpoints"]["crc"] for a in report["arms"]}
    arm3 = crc["arm3"]
    assert f"{arm3['responders']}/{arm3['n_evaluable']}" in text
    assert rdata.fmt_interval(arm3["ci95_low"], arm3["ci95_high"]) in text
    assert (
        rdata.fmt_prob(arm3["prob_above_null"]) in text and rdata.fmt_prob(arm3["prob_above_target"]) in text
    )
    # randomization history: look 1's and look 2's allocation from the ledger
    alloc = report["allocation"]["fit_no_target"]
    assert (
        rdata.fmt_pct(alloc["previous"]["arm3"]) in text
        and rdata.fmt_pct(alloc["probabilities"]["arm3"]) in text
    )
    assert "Look 1 (2026-07-31)" in text and "Look 2 (2026-10-31)" in text
    # data changes: the recoded patient, as data cleaning, with its effect on the previous look
    assert report["data_changes"]["n_cleaning"] == 1
    assert f"{trial['subject']}" in text and "best_response: CR -> NR" in text and "crc 1 -> 0" in text
    # survival absent on this engine: said in words
    assert "Survival endpoints (OS, EFS, RFS) were not modelled in this look." in text
    # reproducibility: hashes, seed, versions, config as run
    for key in ("config_sha256", "data_sha256"):
        assert report[key] in text
    assert hashlib.sha256((trial["look"] / "recommendations.json").read_bytes()).hexdigest() in text
    assert str(report["seed"]) in text and report["versions"]["pymc"] in text and "schema_version: 1" in text


def test_density_figure_draws_the_exact_beta_and_prints_the_looks_probabilities(trial):
    """A conjugate CRc: the figure's curve is the exact Beta of the counts, its probabilities the
    look's (the tables' numbers), not the share of the draws in posterior.nc."""
    report = json.loads((trial["look"] / "recommendations.json").read_text())
    d = rdata.crc_density_inputs(rdata.load_look(trial["look"]))
    arms = [a for a in report["arms"] if a["status"] != "queued"]
    assert set(d["beta"]) == {a["arm"] for a in arms}
    for a in arms:
        e = a["endpoints"]["crc"]
        null, n, y = e["null_rate"], e["n_evaluable"], e["responders"]
        assert d["beta"][a["arm"]] == pytest.approx((null + y, 1 - null + n - y), abs=1e-12)
        assert d["prob_above_null"][a["arm"]] == e["prob_above_null"]
        assert d["prob_above_target"][a["arm"]] == e["prob_above_target"]


def test_closed_report_marks_fragile_decisions_on_page_one_and_in_the_robustness_grid(trial):
    report = json.loads((trial["look"] / "recommendations.json").read_text())
    panel = report["robustness"]
    fragile = [r for r in panel["results"] if r["fragile"]]
    assert fragile  # the bundled look has fragile decisions (arm5's final analysis among them)
    html = memo_paths(trial["look"])["closed_html"].read_text(encoding="utf-8")
    text = html_text(memo_paths(trial["look"])["closed_html"])
    grid = text[text.index("Robustness of the decisions") :]
    assert f"{len(fragile)} of {len(panel['results'])} results are fragile" in grid
    for a in panel["analyses"]:
        assert a["id"] in grid
    assert grid.count("(fragile)") >= len(fragile)
    summary = html[html.index('<section id="summary">') : html.index('<section id="recommendations-full">')]
    fragile_recs = [r for r in report["recommendations"] if r.get("fragile")]
    assert summary.count("FRAGILE:") == sum(len(r["fragile"]) for r in fragile_recs)
    assert "Prior effective sample size and prior-data conflict" in grid
    # the randomized comparison adjusted for calendar time (look 2 follows a look that moved the allocation)
    (adj,) = report["allocation"]["fit_no_target"]["time_adjusted"]
    assert adj["sentence"] in text and adj["allocation_changes"]


def test_closed_pdf_has_one_section_per_page_run_and_a_one_page_summary(trial):
    pages = pdf_pages(memo_paths(trial["look"])["closed_pdf"])
    n = len(pages)
    titles = [t for _, t in CLOSED_SECTIONS]
    for i, p in enumerate(pages, start=1):
        assert f"Page {i} of {n}" in p["footer"] and "CLOSED REPORT" in p["footer"]
    # each page's running header names its section; sections start on new pages, in order
    headers = [next(t for t in titles if t in p["header"]) for p in pages]
    runs = [h for k, h in enumerate(headers) if k == 0 or h != headers[k - 1]]
    assert runs == titles
    assert n >= len(titles)  # every section starts a page (runs == titles above)
    # the summary (recommendations with reasons) fits on the first page
    assert headers.count("Summary and recommendations") == 1
    report = json.loads((trial["look"] / "recommendations.json").read_text())
    first = re.sub(r"\s+", " ", pages[0]["text"])
    for r in report["recommendations"]:
        assert r["arm"] is None or r["arm"] in first
    assert "Drop for futility" in first and "Graduate" in first
    # figures-only sections fit one page each
    for t in ("Posterior distributions of CRc", "Forest plot", "Survival"):
        assert headers.count(t) == 1


def test_unverified_references_beside_actions_in_the_memo_and_the_terminal(trial):
    """arm2 graduates against its CRc null 0.22, ADMIRAL's CRc 21.8%: a recalled number ([M])."""
    report = json.loads((trial["look"] / "recommendations.json").read_text())
    recs = {r["arm"]: r for r in report["recommendations"] if r["arm"]}
    arm2 = recs["arm2"]
    assert arm2["action"] == "graduate" and arm2["rests_on_unverified"]
    assert [(r["key"], r["value"], r["grade"]) for r in arm2["references"]] == [
        ("arms.arm2.rates.crc.null_rate", 0.22, "M")
    ]
    note = "Rests on an unverified published figure ([M] arm2 CRc null 0.22)."
    assert arm2["reference_note"] == note
    html = memo_paths(trial["look"])["closed_html"].read_text(encoding="utf-8")
    text = html_text(memo_paths(trial["look"])["closed_html"])
    # page 1: the grade only, beside the action; the note in full with the sentence
    summary = html[html.index('<section id="summary">') : html.index('<section id="recommendations-full">')]
    acting = [
        r for r in report["recommendations"] if r["reference_note"] and r["action"] not in ("continue",)
    ]
    assert summary.count('class="flag reference-tags"') == len(acting) >= 1
    assert 'Graduate <span class="flag reference-tags">[M]</span>' in summary and note not in summary
    assert "[M] unverified figure, [D] design choice" in summary
    full = text[text.index("Recommendations in full") :]
    assert f"{arm2['sentence']} {note}" in full
    # the appendix table: value, grade and source of every value compared at this look
    table = text[text.index("Reference values and their sources") :]
    source = arm2["references"][0]["source"]
    assert "arm2 CRc null 0.22 arms.arm2.rates.crc.null_rate 0.22 [M] " + source + " graduate_crc" in table
    assert "[M] published but unverified number" in table
    # the terminal: one short line under the recommendation
    out = re.sub(r"\s+", " ", trial["output"])
    assert "(40 of 40 enrolled)." in out and f" {note} " in out
    assert out.count("Rests on ") == len(acting)
    # each safety signal says what its reference rests on (arm5's 30-day: a frontline figure, [D])
    sig = next(
        x for r in report["recommendations"] for x in r.get("safety_signals") or [] if r["arm"] == "arm5"
    )
    assert f"{sig['sentence']} (reference [{sig['reference_grade']}]: {sig['reference_source']})" in out
    assert sig["reference_grade"] == "D" and "frontline" in sig["reference_source"]
    # ... and on the memo's first page, with its grade
    first_page = " ".join(unescape(re.sub(r"<[^>]+>", " ", summary)).split())
    assert f"{sig['sentence']} (reference [D])" in first_page


def test_open_pdf_has_exactly_its_sections(trial):
    pages = pdf_pages(memo_paths(trial["look"])["open_pdf"])
    assert len(pages) == len(OPEN_SECTIONS)
    for i, (p, (_, title)) in enumerate(zip(pages, OPEN_SECTIONS, strict=True), start=1):
        assert title in p["header"] and f"Page {i} of {len(OPEN_SECTIONS)}" in p["footer"]
    assert "OPEN REPORT" in pages[0]["text"] and "220" in pages[0]["text"]


# ============================================================================= blinding
def _arm_level_values(report: dict) -> tuple[set[str], set[str]]:
    """Every per-arm result of a look, formatted as the memo formats numbers: (decimals, fractions)."""
    floats: list[float] = []
    fractions: set[str] = set()
    for a in report["arms"]:
        for e in a["endpoints"].values():
            fractions.add(f"{e['responders']}/{e['n_evaluable']}")
            floats += [
                v
                for k, v in e.items()
                if isinstance(v, float)
                and k not in ("null_rate", "futility_rate", "target_rate", "limit_rate")
            ]
        for r in a["rules"]:
            floats += [r["prob"], r["mcse"]]
    for block in (report.get("allocation") or {}).values():
        floats += list(block["probabilities"].values()) + list(block["inputs"]["prob_best"].values())
    for c in report.get("comparisons") or []:
        floats.append(c["prob"])
    tokens = set()
    for v in floats:
        if v is None:
            continue
        tokens |= {rdata.fmt_pct(v), rdata.fmt_pct(v, 0), rdata.fmt_prob(v), f"{v:.2f}", f"{v:.3f}"}
    # "95%" names the open report's (Jeffreys) 95% intervals; an arm value that rounds to 95% reveals
    # nothing through that label
    return {
        t for t in tokens if t not in ("0.0%", "0%", "100.0%", "100%", "0.00", "0.000", "1.00", "95%")
    }, fractions


def _number_tokens(text: str) -> set[str]:
    text = re.sub(r"\b\d{4}-\d{2}(-\d{2})?\b", " ", text)  # dates and months
    return set(re.findall(r"(?<![\w.])[<>]?\d+(?:\.\d+)?%?(?![\w.])", text)) | set(
        re.findall(r"(?<![\w.])\d+/\d+(?![\w.])", text)
    )


#: (column, value, row label) of the baseline and disposition rows recomputed here from the export
_COUNTED_ROWS = (
    ("sex", "M", "Male"),
    ("sex", "F", "Female"),
    *((("ecog", str(g), f"ECOG {g}")) for g in range(5)),
    ("disease_status", "relapsed", "Relapsed"),
    ("disease_status", "refractory", "Primary refractory"),
    ("prior_hsct", "true", "Yes"),
    ("prior_hsct", "false", "No"),
    ("eln2022_risk", "favorable", "Favorable"),
    ("eln2022_risk", "intermediate", "Intermediate"),
    ("eln2022_risk", "adverse", "Adverse"),
    ("randomized", "true", "Randomized"),
    ("death_on", "by cutoff", "Died"),
    ("hsct_on", "by cutoff", "Allogeneic HSCT"),
)
#: (endpoint, count, row label) of the disposition rows the look itself counted
_LOOK_ROWS = (
    ("crc", "n_evaluable", "Evaluable for CRc (primary endpoint)"),
    ("crc", "n_pending - n_overdue", "CRc pending: landmark not reached"),
    ("crc", "n_overdue", "CRc overdue"),
    ("mortality_60d", "n_not_evaluable", "Lost to follow-up by day 60"),
)


def _look_count(block: dict, key: str) -> int:
    """A count of the look's endpoint block; ``"a - b"`` is a difference of two."""
    a, _, b = key.partition(" - ")
    return int(block[a] or 0) - (int(block[b] or 0) if b else 0)


def _counted_rows(data: Path, report: dict) -> dict[str, dict[str, str]]:
    """``{row label: {arm or "Total": "k (p%)"}}`` of the memo's baseline and disposition tables,
    counted from the export's text (and the look's own per-arm counts); a row nobody is in is left
    out, as in the memo."""
    cutoff = report["cutoff"]
    arms = [a["arm"] for a in report["arms"]]
    df = pd.read_csv(data, dtype=str, keep_default_na=False)
    df = df[df["enrolled_on"] <= cutoff]
    n = {a: int((df["arm"] == a).sum()) for a in arms} | {"Total": len(df)}

    def cell(k: int, a: str) -> str:
        if not n[a]:
            return str(k)
        pct = math.floor(Fraction(100 * k, n[a]) + Fraction(1, 2))  # half up
        if pct == 0 < k:
            return f"{k} (<1%)"  # a patient is never "0%"
        return f"{k} (>99%)" if pct == 100 and k < n[a] else f"{k} ({pct}%)"

    out: dict[str, dict[str, str]] = {}
    for col, value, label in _COUNTED_ROWS:
        hit = (df[col] != "") & (df[col] <= cutoff) if value == "by cutoff" else df[col] == value
        if hit.any() or col in ("randomized", "death_on", "hsct_on"):
            k = {a: int((hit & (df["arm"] == a)).sum()) for a in arms}
            out[label] = {a: cell(k[a], a) for a in arms} | {"Total": cell(int(hit.sum()), "Total")}
    for ep, key, label in _LOOK_ROWS:
        k = {a["arm"]: _look_count(a["endpoints"][ep], key) for a in report["arms"]}
        out[label] = {a: cell(k[a], a) for a in arms} | {"Total": cell(sum(k.values()), "Total")}
    return out


def test_closed_and_open_reports_have_the_baseline_and_disposition_tables(trial):
    report = json.loads((trial["look"] / "recommendations.json").read_text())
    arms = [a["arm"] for a in report["arms"]]
    rows = _counted_rows(trial["data2"], report)
    assert len(rows) >= 15
    paths = memo_paths(trial["look"])
    closed = html_text(paths["closed_html"])
    part = closed[closed.index("Disposition as of the cutoff") : closed.index("y/n: events")]
    assert "Baseline characteristics" in part
    for label, row in rows.items():  # by arm, then the total
        assert f"{label} {' '.join(row[a] for a in [*arms, 'Total'])}" in part, label
    df = pd.read_csv(trial["data2"], dtype=str, keep_default_na=False)
    ages = df.loc[df["enrolled_on"] <= report["cutoff"], "age"].astype(float)
    assert f"{ages.median():.0f} ({ages.min():.0f}-{ages.max():.0f})" in part  # the total's median (range)
    opened = html_text(paths["open_html"])
    part = opened[opened.index("Disposition as of the cutoff") :]
    part = part[: part.index("Observed proportions")]
    assert "All patients" in part and "Baseline characteristics" in part
    for label, row in rows.items():  # the total only
        assert f"{label} {row['Total']}" in part, label
    assert not any(a in part for a in arms)


def test_open_report_contains_no_arm_level_result(trial):
    look = trial["look"]
    report = json.loads((look / "recommendations.json").read_text())
    decimals, fractions = _arm_level_values(report)
    # the baseline and disposition cells of each arm (counted from the export): shares that the
    # pooled table does not also show must not be in the open report
    arms = [a["arm"] for a in report["arms"]]
    counted = _counted_rows(trial["data2"], report)
    pooled_cells = {row["Total"] for row in counted.values()}
    arm_cells = {row[a] for row in counted.values() for a in arms} - pooled_cells
    arm_shares = {c.split(" ", 1)[1].strip("()") for c in arm_cells if " " in c}
    arm_shares -= {c.split(" ", 1)[1].strip("()") for c in pooled_cells if " " in c}
    arm_shares.discard("95%")  # the label of the open report's 95% intervals
    assert len(arm_shares) > 20
    assert len(decimals) > 100 and len(fractions) > 20
    paths = memo_paths(look)
    texts = {
        "open HTML": html_text(paths["open_html"]),
        "open PDF": " ".join(p["text"] for p in pdf_pages(paths["open_pdf"])),
    }
    names = {a["arm"] for a in report["arms"]} | {a["label"] for a in report["arms"]}
    names |= {s["cohort"] for s in report["config"]["routing"]}
    # pooled rates and Jeffreys intervals, computed here from the per-arm counts: a pooled number may
    # coincide with some arm's number by chance (e.g. 7.5%), which reveals nothing about any arm
    pooled = set()
    for ep in report["config"]["endpoints"]:
        y = sum(a["endpoints"][ep]["responders"] for a in report["arms"])
        n = sum(a["endpoints"][ep]["n_evaluable"] for a in report["arms"])
        lo, hi = stats.beta.ppf([0.025, 0.975], y + 0.5, n - y + 0.5)
        pooled |= {f"{100 * y / n:.1f}%", f"{100 * lo:.1f}", f"{100 * hi:.1f}%", f"{y}/{n}"}
    # and the pooled baseline and disposition shares, recounted from the export
    pooled |= {c.split(" ", 1)[1].strip("()") for c in pooled_cells if " " in c}
    for where, text in texts.items():
        tokens = _number_tokens(text)
        assert not (tokens & decimals) - pooled, (where, sorted((tokens & decimals) - pooled))
        assert not tokens & fractions, (where, sorted(tokens & fractions))
        assert not tokens & arm_shares, (where, sorted(tokens & arm_shares))
        assert "Baseline characteristics and disposition, pooled" in text
        found = [n for n in names if re.search(rf"(?<![\w]){re.escape(n)}(?![\w])", text)]
        assert not found, (where, found)
        for word in ("P(best", "allocation", "Recommend", "graduat", "futility"):
            assert word not in text, (where, word)
    # and the same numbers are in the closed report (the check can see them)
    closed = _number_tokens(html_text(paths["closed_html"]))
    assert len(closed & decimals) > 50 and len(closed & fractions) > 10


@pytest.mark.slow  # two more looks and two memos
def test_open_report_does_not_change_when_the_arms_are_permuted(trial, tmp_path):
    """The open report is a function of pooled data only: permuting the patients' arms (a
    different trial arm by arm, the same trial pooled) leaves every word, number and figure of it
    unchanged, while the closed report changes."""
    df = pd.read_csv(EXAMPLE, dtype=str, keep_default_na=False)
    arms = [f"arm{i}" for i in range(1, 8)]
    shift = dict(zip(arms, arms[1:] + arms[:1], strict=True))
    permuted = df.assign(arm=df["arm"].map(shift))
    # one response landmark for every arm: an arm-specific landmark would move with the arm label
    doc = fast_doc()
    for arm in doc["arms"].values():
        arm.pop("response_landmark_days", None)
    cfg = write_config(tmp_path, doc)
    folders = {}
    for name, frame in (("original", df), ("permuted", permuted)):
        base = tmp_path / name
        base.mkdir()
        data = base / "export.csv"
        frame.to_csv(data, index=False, lineterminator="\n")
        out = base / "looks" / "2026-07-31"
        res = interim(cfg, data, "2026-07-31", out)
        assert res.exit_code == 0, res.output
        build_memo(out, now=NOW)
        folders[name] = out
    a, b = (json.loads((folders[k] / "recommendations.json").read_text()) for k in ("original", "permuted"))
    assert [x["n_enrolled"] for x in a["arms"]] != [x["n_enrolled"] for x in b["arms"]]

    def parts(folder: Path, kind: str) -> tuple[str, list[str]]:
        html = memo_paths(folder)[f"{kind}_html"].read_text()
        images = re.findall(r'src="(data:image/png;base64,[^"]+)"', html)
        return HEX.sub("<hash>", html_text(memo_paths(folder)[f"{kind}_html"])), images

    text_a, img_a = parts(folders["original"], "open")
    text_b, img_b = parts(folders["permuted"], "open")
    assert text_a == text_b and img_a == img_b and len(img_a) == 3
    pdf_a = [HEX.sub("<hash>", p["text"]) for p in pdf_pages(memo_paths(folders["original"])["open_pdf"])]
    pdf_b = [HEX.sub("<hash>", p["text"]) for p in pdf_pages(memo_paths(folders["permuted"])["open_pdf"])]
    assert pdf_a == pdf_b
    assert parts(folders["original"], "closed")[0] != parts(folders["permuted"], "closed")[0]


# ============================================================================= a refused look
def test_memo_of_a_look_that_did_not_converge_says_so_on_page_one(tmp_path):
    cfg = write_config(tmp_path, fast_doc(min_ess_bulk=10**9))  # no fit can reach this
    out = tmp_path / "looks" / "2026-10-31"
    res = interim(cfg, EXAMPLE, "2026-10-31", out, "--memo")
    assert res.exit_code == 3, res.output
    assert "REFUSED" in res.output and "wrote the DSMB memo" in res.output
    report = json.loads((out / "recommendations.json").read_text())
    assert report["status"] == "refused" and report["recommendations"] == []
    paths = memo_paths(out)
    first = re.sub(r"\s+", " ", pdf_pages(paths["closed_pdf"])[0]["text"])
    assert "THE MODEL FIT DID NOT CONVERGE" in first
    assert "NO RECOMMENDATION CAN BE MADE FROM THIS LOOK" in first
    assert "min bulk ESS" in first and report["refusal"][:60] in first
    html = paths["closed_html"].read_text()
    summary = html.split('<section id="enrolment">')[0]
    assert 'id="refused"' in summary
    assert "Posterior summaries are withheld" in html and "the fit did not converge" in html
    # no posterior number is shown for a refused look, and the open report is still written
    assert "P(CRc > 35%)" not in html_text(paths["closed_html"])
    assert len(pdf_pages(paths["open_pdf"])) == len(OPEN_SECTIONS)


# ============================================================================= files, data, force
def test_memo_refuses_to_overwrite_and_checks_the_data_file(trial, tmp_path):
    look = tmp_path / "look"
    shutil.copytree(trial["look"], look)
    before = {p.name: p.read_bytes() for p in look.iterdir() if not p.name.startswith("memo-")}
    res = run("memo", look)
    assert res.exit_code == 2 and "already holds a memo" in res.output and "--force" in res.output
    res = run("memo", look, "--force", "--data", EXAMPLE)  # not the export of this look
    assert res.exit_code == 2 and "SHA-256" in res.output and "export-2026-11.csv" in res.output
    stamp = memo_paths(look)["closed_pdf"].stat().st_mtime_ns
    res = run(
        "memo",
        look,
        "--force",
        "--data",
        trial["data2"],
        "--ledger",
        trial["root"] / "looks" / "ledger.sqlite",
    )
    assert res.exit_code == 0, res.output
    assert memo_paths(look)["closed_pdf"].stat().st_mtime_ns != stamp
    after = {p.name: p.read_bytes() for p in look.iterdir() if not p.name.startswith("memo-")}
    assert after == before  # the look's own files are untouched
    text = html_text(memo_paths(look)["closed_html"])
    assert "export-2026-11.csv (SHA-256 verified against the look)" in text
    assert run("memo", tmp_path).exit_code == 2  # not a look folder


def test_rerun_of_interim_with_memo_keeps_the_existing_memo(trial):
    stamp = memo_paths(trial["look"])["closed_pdf"].stat().st_mtime_ns
    res = interim(trial["cfg"], trial["data2"], "2026-10-31", trial["look"], "--memo")
    assert res.exit_code == 0, res.output
    assert "Nothing to do" in res.output and "already holds its memo" in res.output
    assert memo_paths(trial["look"])["closed_pdf"].stat().st_mtime_ns == stamp


def test_memo_without_ledger_or_data_says_what_is_left_out(trial, tmp_path):
    look = tmp_path / "moved"
    shutil.copytree(trial["look"], look, ignore=shutil.ignore_patterns("memo-*"))
    memo = build_memo(look, now=NOW)
    assert any("No look ledger" in n for n in memo.notes)
    assert any("No patient-level data" in n for n in memo.notes)
    text = html_text(memo.paths["closed_html"])
    assert "Enrolment over time needs the patient-level data" in text
    assert "Look 2 (2026-10-31)" in text and "Look 1 (2026-07-31)" not in text
    assert "Accrual over time needs the patient-level data" in html_text(memo.paths["open_html"])


def test_ledger_snapshot_gives_the_same_patients_as_the_export(trial):
    look = rdata.load_look(trial["look"])
    assert look.data_source.startswith("the ledger's snapshot")
    design = look.design
    table = load_patients(trial["data2"], design)
    from_file = derive(table, design, look.cutoff)
    assert look.derived.counts == from_file.counts and look.derived.n_enrolled == from_file.n_enrolled
    # the baseline columns travel through the snapshot with their types (age float, ECOG int, flag)
    snap = look.table.frame.sort_values("subject_id").reset_index(drop=True)
    file = table.frame.sort_values("subject_id").reset_index(drop=True)
    for c in BASELINE_COLUMNS:
        assert list(snap[c]) == list(file[c]), c
    assert isinstance(snap["ecog"][0], int) and isinstance(snap["age"][0], float)


# ============================================================================= figures and survival
def test_arm_styles_are_distinct_without_colour():
    arms = [f"arm{i}" for i in range(1, 9)]
    styles = rfig.arm_styles(arms)
    assert styles == rfig.arm_styles(arms)  # the same in every figure
    for attr in ("color", "marker", "hatch"):
        assert len({getattr(s, attr) for s in styles.values()}) == 8
    assert len({str(s.linestyle) for s in styles.values()}) == 8


def test_kaplan_meier_and_posterior_band_by_hand():
    t, s = rdata.kaplan_meier(np.array([2.0, 3, 3, 5, 8, 8]), np.array([1, 1, 0, 1, 0, 0]))
    # at risk 6 (1 death), then 5 (1 death at 3, 1 censored), then 3 (1 death)
    np.testing.assert_allclose(s[:4], [1.0, 5 / 6, 5 / 6 * 4 / 5, 5 / 6 * 4 / 5 * 2 / 3])
    np.testing.assert_allclose(t[:4], [0, 2, 3, 5])
    # constant hazard h in every draw: the band collapses to exp(-h t) (and (1 - pi) with day 0)
    h, pi = 0.002, 0.25
    idata = _survival_idata(["a", "b"], hazard=h, day0=pi)
    tt, lo, mid, hi = rdata.survival_band(idata, "a", 730.0)
    np.testing.assert_allclose(mid, (1 - pi) * np.exp(-h * tt), rtol=1e-12)
    np.testing.assert_allclose(lo, hi, rtol=1e-12)


def _survival_idata(arms, hazard, day0=None, draws=50, seed=0):
    rng = np.random.default_rng(seed)
    cuts = np.array([0.0, 30, 60, 120, 240, 365, 730])
    shape = (2, draws, len(arms), len(cuts) - 1)
    hz = np.full(shape, hazard) if np.isscalar(hazard) else rng.gamma(50, 1 / 50, shape) * hazard
    post = xr.Dataset(
        {"hazard": (("chain", "draw", "arm", "interval"), hz)},
        coords={"arm": arms, "interval": [f"{a:g}-{b:g}" for a, b in zip(cuts[:-1], cuts[1:], strict=True)]},
    )
    if day0 is not None:
        post["prob_day0_event"] = (("chain", "draw", "arm"), np.full(shape[:3], day0))
    cd = xr.Dataset(
        {"interval_start": ("interval", cuts[:-1]), "interval_end": ("interval", cuts[1:])},
        coords={"interval": post.coords["interval"].values},
    )
    return az.InferenceData(posterior=post, constant_data=cd)


@pytest.mark.slow  # two memos with three more figures each
def test_survival_parts_render_when_the_look_has_them(trial, tmp_path, monkeypatch):
    """A look with survival outputs (keys and posterior groups as the survival engine writes them):
    Kaplan-Meier curves from the patient times with the posterior bands, and the survival tables."""
    look = tmp_path / "look"
    shutil.copytree(trial["look"], look, ignore=shutil.ignore_patterns("memo-*"))
    report = json.loads((look / "recommendations.json").read_text())
    modelled = [a["arm"] for a in report["arms"] if a["status"] != "queued"]
    for k, a in enumerate(report["arms"]):
        a["survival"] = {
            ep: {
                "n": 30 + k,
                "events": 10 + k,
                "km_median_days": 200.0 + k,
                "median_days": {"median": 210.0 + k, "ci95_low": 150.0, "ci95_high": 301.0},
                **{f"s{h}": {"median": 0.61, "ci95_low": 0.43, "ci95_high": 0.77} for h in (180, 365, 730)},
                "benchmark_median_days": 180.0,
                "prob_median_above_benchmark": 0.8123,
                "estimable": True,
                "model_check": {
                    "km_median_days": 200.0 + k,
                    "predictive_interval_km_median": [120.0, None],
                    "km_median_inside": True,
                    "p_value": 0.04 if (k == 4 and ep == "os") else 0.5,
                    "n_rep": 400,
                    "misfit": k == 4 and ep == "os",
                },
            }
            for ep in ("os", "efs", "rfs")
        }
        a["survival"]["rfs"] |= (
            {"n": 0, "events": 0, "estimable": False, "median_days": None} if k == 5 else {}
        )
        if k == 5:
            a["survival"]["rfs"]["not_estimable_reason"] = "no patient in this endpoint's population yet"
        a["competing_risks"] = {
            "cir": {
                "n": 12,
                "events": 3,
                "competing": 1,
                "at": {"180": {"estimate": 0.2, "ci95_low": 0.05, "ci95_high": 0.42}, "365": None},
            },
            "hsct": {
                "n": 30 + k,
                "events": 4,
                "competing": 2,
                "at": {"180": {"estimate": 0.1, "ci95_low": None, "ci95_high": None}, "365": None},
                "proportion_transplanted": 4 / (30 + k),
            },
        }
    report["survival_comparisons"] = [
        {
            "endpoint": "os",
            "arms": ["arm3", "arm4"],
            "hr": {"median": 0.81, "ci95_low": 0.52, "ci95_high": 1.24},
            "prob_hr_below_1": 0.83,
            "sentence": "OS hazard ratio arm3:arm4 0.81 (95% CrI 0.52-1.24); P(HR < 1) = 83.0%.",
        }
    ]
    (look / "recommendations.json").write_text(json.dumps(report))
    for ep in ("os", "efs", "rfs"):
        _survival_idata(modelled, hazard=0.003, day0=0.2 if ep == "efs" else None).to_netcdf(
            str(look / "posterior.nc"), base_group=ep, overwrite_existing=False
        )
    rng = np.random.default_rng(1)
    times = {
        ep: pd.DataFrame(
            {
                "arm": np.repeat(modelled, 25),
                "time": rng.exponential(300, 25 * len(modelled)).clip(0.5, 730),
                "event": rng.integers(0, 2, 25 * len(modelled)),
            }
        )
        for ep in ("os", "efs", "rfs")
    }
    monkeypatch.setattr(rdata, "survival_times", lambda lk: times)
    memo = build_memo(look, data=trial["data2"], now=NOW)
    html = memo.paths["closed_html"].read_text()
    section = html.split('<section id="survival">')[1].split("</section>")[0]
    assert "not modelled" not in section
    assert section.count('src="data:image/png;base64,') == 3
    for name in (
        "Overall survival (OS)",
        "Event-free survival, ELN 2022 (EFS)",
        "Relapse-free survival, responders only (not randomized) (RFS)",
    ):
        assert name in section
    assert "210 (150-301)" in section and "61% (43-77%)" in section and "81.2%" in section
    assert "OS hazard ratio arm3:arm4 0.81" in section
    assert (
        "MISFIT (p 0.04; KM median PI 120-NR)" in section and "fits (p 0.50; KM median PI 120-NR)" in section
    )
    assert ">beyond follow-up<" not in section  # no max_follow_up_days in these summaries
    assert "Not estimable" in section and "arm6: no patient in this endpoint&#39;s population yet" in section
    assert "Relapse and transplant (competing risks, descriptive)" in section
    assert "20% (5-42)" in section and "13%" in section  # CIR at 180 days; arm1 4/30 transplanted
    # without patient-level survival times: bands and tables only, and it says so
    monkeypatch.setattr(rdata, "survival_times", lambda lk: None)
    memo = build_memo(look, data=trial["data2"], now=NOW, force=True)
    assert "Kaplan-Meier curves need the patient-level data" in memo.paths["closed_html"].read_text()


# ============================================================================= headless Chromium
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
PROBE = """<script>
window.addEventListener('load', () => {
  const ids = %s;
  const out = {sections: {}, images: [], height: document.documentElement.scrollHeight};
  for (const id of ids) {
    const el = document.getElementById(id);
    if (!el) continue;
    const r = el.getBoundingClientRect();
    out.sections[id] = {top: r.top + window.scrollY, height: r.height,
                        heading: el.querySelector('h2') ? el.querySelector('h2').innerText : ''};
  }
  for (const img of document.images) out.images.push({ok: img.complete && img.naturalWidth > 0,
                                                       w: img.naturalWidth});
  const pre = document.createElement('pre'); pre.id = 'memo-probe';
  pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
});
</script></body>"""


def _chromium(*args, user_dir: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={user_dir}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_closed_html_renders_in_headless_chromium_with_every_section(trial, tmp_path):
    from PIL import Image

    ids = [sid for sid, _ in CLOSED_SECTIONS]
    html = memo_paths(trial["look"])["closed_html"].read_text()
    page = tmp_path / "probe.html"
    page.write_text(html.replace("</body>", PROBE % json.dumps(ids), 1))
    with tempfile.TemporaryDirectory() as user_dir:
        dom = _chromium("--virtual-time-budget=10000", "--dump-dom", page.as_uri(), user_dir=user_dir)
    probe = json.loads(re.search(r'<pre id="memo-probe">(.*?)</pre>', dom.stdout, re.S).group(1))
    sections = probe["sections"]
    assert list(sections) == ids
    titles = dict(CLOSED_SECTIONS)
    tops = [sections[i]["top"] for i in ids]
    assert tops == sorted(tops)  # in order
    for sid in ids:
        assert sections[sid]["height"] > 40 and sections[sid]["heading"] == titles[sid]
    assert len(probe["images"]) == 6 and all(i["ok"] and i["w"] > 500 for i in probe["images"])
    # the screenshot: every section is drawn (ink inside its box)
    height = min(int(probe["height"]) + 50, 30000)
    shot = tmp_path / "closed.png"
    with tempfile.TemporaryDirectory() as user_dir:
        res = _chromium(
            f"--screenshot={shot}", f"--window-size=1200,{height}", page.as_uri(), user_dir=user_dir
        )
    assert shot.is_file(), res.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("L"))
    assert img.shape[0] >= min(height, 16000) * 0.9
    for sid in ids:
        top = int(sections[sid]["top"])
        box = img[top : min(top + int(sections[sid]["height"]), img.shape[0])]
        if box.size == 0:  # beyond the screenshot's maximum height
            continue
        ink = float((box < 128).mean())
        assert ink > 0.002, (sid, ink)
