"""The simulation report (issue 14, item 6): sections, numbers equal to oc.json, self-contained,
reproducible, printed to PDF, rendered by a browser, and clear errors for a bad study folder."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile

import pytest
import yaml
from click.testing import CliRunner
from pypdf import PdfReader
from test_memo import CHROMIUM, PROBE, _chromium, html_text
from test_oc_errors import three_arm_config
from test_simulate import scenario

from adaptive.cli import main
from adaptive.report.simreport import SECTIONS, _est


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("simreport")
    cfg = tmp / "design.yaml"
    cfg.write_text(yaml.safe_dump(three_arm_config()))
    paths = []
    for name, rates in (("all_null", (0.3, 0.3, 0.3)), ("mixed", (0.3, 0.5, 0.5))):
        p = tmp / f"{name}.yaml"
        p.write_text(yaml.safe_dump(scenario(dict(zip("xyz", rates, strict=True)), name)))
        paths += ["--scenario", str(p)]
    out = tmp / "study"
    res = CliRunner().invoke(
        main,
        ["simulate", "--config", str(cfg), *paths, "--trials", "200", "--seed", "9", "--workers", "1",
         "--out", str(out), "--report"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "report.html" in res.output
    return out


def test_report_has_every_section_and_the_numbers_of_oc_json(study):
    html = (study / "report.html").read_text(encoding="utf-8")
    text = html_text(study / "report.html")
    for sid, title in SECTIONS:
        assert f'<section id="{sid}">' in html and title in text
    oc = json.loads((study / "oc.json").read_text())
    section = html.split('<section id="oc">')[1].split("</section>")[0]
    tables = section.split("<h3>")[1:]
    assert len(tables) == len(oc["scenarios"])
    for sc, table in zip(oc["scenarios"], tables, strict=True):
        s = sc["allocations"]["adaptive"]
        assert table.startswith(f"{sc['scenario']} (adaptive allocation), {s['n_trials']} trials")
        if s["fwer"] is not None:
            assert _est(s["fwer"]) in text
        rows = re.findall(r"<tr><td>(.*?)</tr>", table)
        assert len(rows) == len(s["arms"])
        for a, row in zip(s["arms"], rows, strict=True):
            cells = re.findall(r"(?:<td>)?([^<]*)</td>", "<td>" + row)
            assert cells[0] == f"{a['arm']} {a['label']}"
            assert cells[2:5] == [
                _est(a[k]) for k in ("prob_graduate", "prob_drop_futility", "prob_drop_harm")
            ]
            assert cells[10] == _est(a["coverage_95"])
    assert "Every rule of the config is simulated" in text and "seed 9" in text
    assert oc["config_sha256"] in text
    assert all(sc["sha256"] in text for sc in oc["scenarios"])


def test_report_is_self_contained_and_reproducible(study, tmp_path):
    html = (study / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert html.count("data:image/png;base64,") == 4  # outcomes, sample sizes, timing, allocation
    copy = tmp_path / "copy"
    shutil.copytree(study, copy, ignore=shutil.ignore_patterns("report.*"))
    res = CliRunner().invoke(main, ["report-sim", str(copy)])
    assert res.exit_code == 0, res.output
    assert (copy / "report.html").read_bytes() == (study / "report.html").read_bytes()


def test_report_shows_allocation_over_time_from_oc_json(study, tmp_path):
    oc = json.loads((study / "oc.json").read_text())
    block = oc["scenarios"][0]["allocations"]["adaptive"]["allocation_over_time"]["all"]
    text = html_text(study / "report.html")
    assert 'alt="Allocation over time"' in (study / "report.html").read_text(encoding="utf-8")
    assert "all_null, cohort all: allocation probability after each look" in text
    first = block["probabilities"]["x"][0]
    assert f"{first['estimate']:.3f}" in text and block["n_trials"][0] == 200
    # a study written before the trace existed still gets its report, without that figure
    old = tmp_path / "old"
    shutil.copytree(study, old, ignore=shutil.ignore_patterns("report.*"))
    for sc in oc["scenarios"]:
        for s in sc["allocations"].values():
            s.pop("allocation_over_time")
    (old / "oc.json").write_text(json.dumps(oc))
    assert CliRunner().invoke(main, ["report-sim", str(old)]).exit_code == 0
    html = (old / "report.html").read_text(encoding="utf-8")
    assert "Allocation over time" not in html and html.count("data:image/png;base64,") == 3


def test_report_pdf_has_the_sections_and_the_seed(study):
    reader = PdfReader(study / "report.pdf")
    text = " ".join(p.extract_text() for p in reader.pages)
    for _, title in SECTIONS:
        assert title in text
    assert "seed 9" in text and len(reader.pages) >= 5


@pytest.mark.parametrize("case", ["missing", "empty", "not_json", "not_simulate", "exists"])
def test_a_bad_study_folder_is_a_clear_error(case, study, tmp_path):
    folder = tmp_path / "f"
    if case != "missing":
        folder.mkdir()
    if case == "not_json":
        (folder / "oc.json").write_text("{not json")
    if case == "not_simulate":
        (folder / "oc.json").write_text(json.dumps({"schema": "something/else"}))
    if case == "exists":
        shutil.copytree(study, folder, dirs_exist_ok=True)
        before = (folder / "report.html").read_bytes()
    res = CliRunner().invoke(main, ["report-sim", str(folder)])
    assert res.exit_code == 2, res.output
    assert str(folder) in res.output and "Traceback" not in res.output
    if case == "exists":
        assert "--force" in res.output and (folder / "report.html").read_bytes() == before
    else:
        assert not (folder / "report.html").exists() and not (folder / "report.pdf").exists()
    assert not list(folder.glob(".report.*")) if folder.exists() else True


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_report_renders_in_headless_chromium(study, tmp_path):
    ids = [sid for sid, _ in SECTIONS]
    page = tmp_path / "probe.html"
    html = (study / "report.html").read_text(encoding="utf-8")
    page.write_text(html.replace("</body>", PROBE % json.dumps(ids), 1))
    with tempfile.TemporaryDirectory() as user_dir:
        dom = _chromium("--virtual-time-budget=10000", "--dump-dom", page.as_uri(), user_dir=user_dir)
    probe = json.loads(re.search(r'<pre id="memo-probe">(.*?)</pre>', dom.stdout, re.S).group(1))
    assert list(probe["sections"]) == ids
    titles = dict(SECTIONS)
    for sid in ids:
        assert probe["sections"][sid]["heading"] == titles[sid]
    assert len(probe["images"]) == 4 and all(i["ok"] and i["w"] > 300 for i in probe["images"])


def test_pdftotext_reads_the_report(study):
    if shutil.which("pdftotext") is None:
        pytest.skip("poppler's pdftotext is not installed")
    out = subprocess.run(
        ["pdftotext", "-layout", str(study / "report.pdf"), "-"], capture_output=True, text=True
    )
    assert "2. The design as simulated" in out.stdout and "9. Reproducibility appendix" in out.stdout
