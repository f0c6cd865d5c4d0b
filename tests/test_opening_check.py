"""A randomized comparison whose first patients all went to one arm (DSMB review): probably an arm
not yet open to randomization, so its "concurrent" window starts too early. Said, not changed."""

from __future__ import annotations

from datetime import date

from adaptive.data import load_patients
from adaptive.randomization import concurrent_window, opening_warnings
from tests.conftest import EXAMPLE, config_dict, design_from

CUTOFF = date(2026, 10, 31)


def test_the_bundled_trials_opening_run_is_named(design):
    table = load_patients(EXAMPLE, design)
    (check,) = opening_warnings(design, table, CUTOFF)
    warning = check["sentence"]
    assert (check["cohort"], check["arm"], check["run"]) == ("fit_no_target", "arm3", 6)
    assert check["probability"] == 0.5**6
    # recount: the randomized fit-cohort patients in the window, in enrolment order
    f = table.frame
    rand = f[(f["randomized"] == True) & f["arm"].isin(["arm3", "arm4"])]  # noqa: E712
    seq = list(rand.sort_values(["enrolled_on", "subject_id"])["arm"])
    k = seq.index("arm3")
    assert k == 6 and set(seq[:k]) == {"arm4"}
    assert warning.startswith(
        "cohort fit_no_target: the first 6 patients randomized from 2025-04-01 went to arm4"
    )
    assert f"probability {100 * 0.5**6:.1f}%" in warning and "Check arm3's opened_on" in warning


def test_no_warning_once_the_window_starts_when_the_arm_opened(design):
    doc = config_dict()
    doc["arms"]["arm3"]["opened_on"] = "2025-05-10"
    d2 = design_from(doc)
    table = load_patients(EXAMPLE, d2)
    assert concurrent_window(d2, table, ["arm3", "arm4"], CUTOFF)[0] == date(2025, 5, 10)
    assert opening_warnings(d2, table, CUTOFF) == []


def test_a_short_run_is_chance(design):
    """Two patients to one arm first happen in a quarter of 1:1 trials: nothing to say."""
    table = load_patients(EXAMPLE, design)
    doc = config_dict()
    doc["arms"]["arm3"]["opened_on"] = "2025-04-20"  # after 4 of the 6 arm4 patients
    d2 = design_from(doc)
    window = concurrent_window(d2, table, ["arm3", "arm4"], CUTOFF)
    f = table.frame
    rand = f[(f["randomized"] == True) & f["arm"].isin(["arm3", "arm4"])]  # noqa: E712
    rand = rand[rand["enrolled_on"].map(lambda x: window[0] <= x <= window[1])]
    k = list(rand.sort_values(["enrolled_on", "subject_id"])["arm"]).index("arm3")
    assert (0.5**k >= 0.05) == (opening_warnings(d2, load_patients(EXAMPLE, d2), CUTOFF) == [])


def test_the_check_stands_beside_the_comparison(fast_config, tmp_path):
    """In recommendations.json next to the comparisons, on the terminal and in the memo's
    randomization section, as well as among the data warnings."""
    import json

    from click.testing import CliRunner

    from adaptive.cli import main
    from adaptive.report import data as rdata
    from adaptive.report.render import render_closed

    out = tmp_path / "look"
    args = ["interim", "--config", fast_config, "--data", EXAMPLE, "--cutoff", str(CUTOFF), "--out", out]
    res = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "recommendations.json").read_text())
    (check,) = rep["opening_checks"]
    assert check["sentence"] in rep["warnings"]
    assert list(rep).index("opening_checks") == list(rep).index("comparisons") + 1
    assert f"check the window: {check['sentence'][:60]}" in " ".join(res.output.split())
    html = render_closed(rdata.load_look(out, data=EXAMPLE, ledger=tmp_path / "ledger.sqlite"), generated="-")
    assert (
        '<p class="note"><strong>Concurrent window:</strong> check arm3&#39;s opened_on: the first 6 '
        "randomized went to arm4 (1.6%" in html
    )


def test_the_check_gives_the_comparison_without_the_opening_run(design):
    """DSMB review: the comparison's probability once the patients randomized before arm3's first
    are left out: P(CRc arm4 > arm3) 93.5% on 23/37 against 17/38 (96.8% on the rule's window)."""
    from scipy import integrate, stats

    from adaptive.derive import derive

    table = load_patients(EXAMPLE, design)
    (check,) = opening_warnings(design, table, CUTOFF, derive(table, design, CUTOFF))
    (sens,) = check["sensitivity"]
    assert (sens["rule"], sens["leader"], sens["other"], sens["from"]) == (
        "dav_vs_hav_crc", "arm4", "arm3", "2025-05-10"
    )  # fmt: skip
    assert sens["n_evaluable"] == {"arm3": 38, "arm4": 37} and sens["responders"] == {"arm3": 17, "arm4": 23}
    # the rule's unit-information Beta(0.35, 0.65) prior per arm, by adaptive quadrature
    a4, a3 = stats.beta(0.35 + 23, 0.65 + 14), stats.beta(0.35 + 17, 0.65 + 21)
    want = integrate.quad(lambda x: a4.pdf(x) * a3.cdf(x), 0, 1, epsabs=1e-13, limit=200)[0]
    assert abs(sens["prob_from_first"] - want) < 1e-8 and round(100 * want, 1) == 93.5
    assert round(100 * sens["prob_window"], 1) == 96.8
    assert (
        "P(CRc arm4 > arm3) would be 93.5% (96.8% on the rule's window; 'dav_vs_hav_crc' needs 99%)"
        in (check["sentence"])
    )
    assert check["short"].endswith(check["sentence"][check["sentence"].index(" Without") :])
