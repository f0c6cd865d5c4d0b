"""Frequentist companions against independent references.

Binary companions against scipy directly and Newcombe (1998); survival companions on two classic
small data sets (R survival's ``aml`` maintenance data; the Gehan / Freireich 6-MP remission data)
against lifelines, a second implementation we did not write, and the published values.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from adaptive.companions import (
    LABEL,
    binomial_companion,
    companion_lines,
    frequentist_companions,
    km_companion,
    km_text,
    numbers_at_risk,
    pair_binary_companion,
    pair_survival_companion,
)
from adaptive.data import load_patients
from adaptive.derive import derive
from adaptive.interim import randomized_pairs
from adaptive.survival_data import km_median
from tests.conftest import EXAMPLE, write_config
from tests.test_memo import NOW, _survival_idata, cleaned_export, fast_doc, html_text, interim

# R survival's `aml` (Miller 1981): time in weeks, status 1 = relapse
AML_MAINTAINED = ([9, 13, 13, 18, 23, 28, 31, 34, 45, 48, 161], [1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 0])
AML_NONMAINTAINED = ([5, 5, 8, 8, 12, 16, 23, 27, 30, 33, 43, 45], [1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1])
# Gehan (1965) / Freireich et al. (1963): weeks in remission, 6-MP vs placebo (control)
GEHAN_6MP = (
    [6, 6, 6, 6, 7, 9, 10, 10, 11, 13, 16, 17, 19, 20, 22, 23, 25, 32, 32, 34, 35],
    [1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0],
)
GEHAN_CONTROL = ([1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23], [1] * 21)


def _pair(exp, ref):
    t = np.r_[exp[0], ref[0]].astype(float)
    e = np.r_[exp[1], ref[1]].astype(float)
    x = np.r_[np.ones(len(exp[0])), np.zeros(len(ref[0]))]
    return t, e, x


# ============================================================================= binary
@pytest.mark.parametrize(
    ("y", "n", "null"), [(10, 40, 0.12), (10, 40, 0.15), (0, 12, 0.2), (7, 7, 0.3), (3, 30, 0.07)]
)
def test_clopper_pearson_and_binomial_test_equal_scipy(y, n, null):
    c = binomial_companion(y, n, null)
    ci = stats.binomtest(y, n).proportion_ci(0.95, method="exact")
    assert (c["ci95_low"], c["ci95_high"]) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert c["p_one_sided"] == pytest.approx(stats.binomtest(y, n, null, alternative="greater").pvalue)
    # the exact one-sided p is the binomial upper tail P(Y >= y | null)
    assert c["p_one_sided"] == pytest.approx(stats.binom.sf(y - 1, n, null))
    # Clopper-Pearson limits are Beta quantiles
    lo = 0.0 if y == 0 else stats.beta.ppf(0.025, y, n - y + 1)
    hi = 1.0 if y == n else stats.beta.ppf(0.975, y + 1, n - y)
    assert (c["ci95_low"], c["ci95_high"]) == pytest.approx((lo, hi), abs=1e-9)


def test_mortality_companion_tests_the_harm_direction_and_no_patient_gives_no_numbers():
    c = binomial_companion(6, 30, 0.07, higher_is_better=False)
    assert c["direction"] == "harm" and c["alternative"] == "greater"
    assert c["p_one_sided"] == pytest.approx(stats.binom.sf(5, 30, 0.07))
    empty = binomial_companion(0, 0, 0.3)
    assert empty["rate"] is None and empty["ci95_low"] is None and empty["p_one_sided"] is None


@pytest.mark.parametrize("table", [(12, 20, 6, 21), (56, 70, 48, 80), (0, 10, 3, 10), (5, 5, 2, 9)])
@pytest.mark.parametrize("higher", [True, False])
def test_fisher_equals_scipy(table, higher):
    ya, na, yb, nb = table
    c = pair_binary_companion(ya, na, yb, nb, higher_is_better=higher)
    m = [[ya, na - ya], [yb, nb - yb]]
    assert c["p_two_sided"] == pytest.approx(stats.fisher_exact(m).pvalue)
    alt = "greater" if higher else "less"
    assert c["p_one_sided"] == pytest.approx(stats.fisher_exact(m, alternative=alt).pvalue)
    assert c["difference"] == pytest.approx(ya / na - yb / nb)


def _newcombe_by_hand(ya, na, yb, nb):
    """Newcombe (1998) method 10 from scipy's Wilson score limits (another code path)."""
    pa, pb = ya / na, yb / nb
    la, ua = stats.binomtest(ya, na).proportion_ci(0.95, method="wilson")
    lb, ub = stats.binomtest(yb, nb).proportion_ci(0.95, method="wilson")
    d = pa - pb
    lo = d - np.sqrt((pa - la) ** 2 + (ub - pb) ** 2)
    hi = d + np.sqrt((ua - pa) ** 2 + (pb - lb) ** 2)
    return lo, hi


def test_newcombe_interval_reproduces_newcombe_1998_and_the_hybrid_score_formula():
    c = pair_binary_companion(56, 70, 48, 80)
    assert c["difference"] == pytest.approx(0.2)
    # Newcombe (1998), Table II, method 10: 0.0524 to 0.3339
    assert (round(c["ci95_low"], 4), round(c["ci95_high"], 4)) == (0.0524, 0.3339)
    for t in [(56, 70, 48, 80), (9, 10, 3, 10), (0, 10, 0, 20), (10, 10, 0, 20), (12, 40, 5, 38)]:
        got = pair_binary_companion(*t)
        assert (got["ci95_low"], got["ci95_high"]) == pytest.approx(_newcombe_by_hand(*t), abs=1e-9)


def test_pair_without_patients_in_one_arm_has_no_numbers():
    c = pair_binary_companion(0, 0, 3, 10)
    assert c["difference"] is None and c["p_two_sided"] is None


# ============================================================================= survival
def test_aml_cox_logrank_and_km_medians_against_lifelines_and_r():
    from lifelines import CoxPHFitter, KaplanMeierFitter
    from lifelines.statistics import logrank_test

    t, e, x = _pair(AML_NONMAINTAINED, AML_MAINTAINED)
    c = pair_survival_companion(t, e, x)
    # R: survdiff(Surv(time, status) ~ x, aml): Chisq = 3.4 on 1 df, p = 0.07 (0.0653);
    # coxph(...): exp(coef) 2.498 (Nonmaintained), 95% CI 0.916 to 6.81 (Efron ties)
    assert c["logrank_chi2"] == pytest.approx(3.396, abs=1e-3) and c["logrank_p"] == pytest.approx(
        0.0653, abs=1e-4
    )
    assert c["hazard_ratio"] == pytest.approx(2.498, abs=1e-3)
    assert (c["ci95_low"], c["ci95_high"]) == pytest.approx((0.916, 6.81), abs=5e-3)
    lr = logrank_test(*AML_NONMAINTAINED[:1], *AML_MAINTAINED[:1], AML_NONMAINTAINED[1], AML_MAINTAINED[1])
    assert c["logrank_chi2"] == pytest.approx(lr.test_statistic, rel=1e-9)
    cph = CoxPHFitter().fit(pd.DataFrame({"t": t, "e": e, "x": x}), "t", "e")
    assert c["hazard_ratio"] == pytest.approx(float(cph.hazard_ratios_["x"]), rel=1e-5)
    lo, hi = np.exp(cph.confidence_intervals_.loc["x"].to_numpy())
    assert (c["ci95_low"], c["ci95_high"]) == pytest.approx((lo, hi), rel=1e-4)
    assert c["wald_p"] == pytest.approx(float(cph.summary.loc["x", "p"]), rel=1e-4)
    # KM medians: R survfit gives 31 (maintained) and 23 (nonmaintained) weeks
    for (tt, ee), med in ((AML_MAINTAINED, 31.0), (AML_NONMAINTAINED, 23.0)):
        k = km_companion(tt, ee, horizons=(12, 24, 36))
        kmf = KaplanMeierFitter().fit(tt, ee)
        assert k["median_days"] == med == kmf.median_survival_time_
        _check_against_lifelines(k, kmf)


def _check_against_lifelines(k: dict, kmf) -> None:
    """Brookmeyer-Crowley limits and S(t) with Greenwood log-log limits against lifelines."""
    from lifelines.utils import median_survival_times

    ci = median_survival_times(kmf.confidence_interval_).iloc[0]
    lo, hi = float(ci.iloc[0]), float(ci.iloc[1])
    assert k["median_ci95_low"] == lo
    assert (k["median_ci95_high"] is None and np.isinf(hi)) or k["median_ci95_high"] == hi
    for h, at in k["at"].items():
        if at is None:
            continue
        s = float(kmf.survival_function_at_times(float(h)).iloc[0])
        assert at["survival"] == pytest.approx(s, abs=1e-12)
        band = kmf.confidence_interval_.loc[: float(h)].iloc[-1]
        if at["ci95_low"] is not None:
            assert (at["ci95_low"], at["ci95_high"]) == pytest.approx(tuple(band.to_numpy()), abs=1e-9)


def test_gehan_6mp_against_lifelines_and_published_values():
    from lifelines import CoxPHFitter, KaplanMeierFitter
    from lifelines.statistics import logrank_test
    from statsmodels.duration.hazard_regression import PHReg

    t, e, x = _pair(GEHAN_CONTROL, GEHAN_6MP)  # control : 6-MP
    c = pair_survival_companion(t, e, x)
    # published: log-rank chi2 16.8 (1 df, p 4.2e-5); Cox HR control : 6-MP 4.82 with Efron ties
    # (4.52 with Breslow's, the value older texts quote)
    assert round(c["logrank_chi2"], 1) == 16.8 and c["logrank_p"] == pytest.approx(4.17e-5, rel=1e-2)
    assert c["hazard_ratio"] == pytest.approx(4.82, abs=5e-3)
    breslow = PHReg(t, x[:, None], status=e, ties="breslow").fit()
    assert float(np.exp(breslow.params[0])) == pytest.approx(4.52, abs=5e-3)
    lr = logrank_test(GEHAN_CONTROL[0], GEHAN_6MP[0], GEHAN_CONTROL[1], GEHAN_6MP[1])
    assert c["logrank_chi2"] == pytest.approx(lr.test_statistic, rel=1e-9)
    cph = CoxPHFitter().fit(pd.DataFrame({"t": t, "e": e, "x": x}), "t", "e")
    assert c["hazard_ratio"] == pytest.approx(float(cph.hazard_ratios_["x"]), rel=1e-5)
    lo, hi = np.exp(cph.confidence_intervals_.loc["x"].to_numpy())
    assert (c["ci95_low"], c["ci95_high"]) == pytest.approx((lo, hi), rel=1e-4)
    # medians 23 (6-MP) and 8 (control) weeks
    for (tt, ee), med in ((GEHAN_6MP, 23.0), (GEHAN_CONTROL, 8.0)):
        k = km_companion(tt, ee, horizons=(5, 10, 20))
        kmf = KaplanMeierFitter().fit(tt, ee)
        assert k["median_days"] == med == kmf.median_survival_time_
        _check_against_lifelines(k, kmf)


@pytest.mark.parametrize("seed", [0, 1])
def test_km_companion_matches_lifelines_on_censored_data(seed):
    from lifelines import KaplanMeierFitter

    rng = np.random.default_rng(seed)
    tt = np.round(rng.exponential(300, 80))
    cc = np.round(rng.uniform(100, 900, 80))
    time, event = np.minimum(tt, cc), (tt <= cc).astype(int)
    k = km_companion(time, event)
    kmf = KaplanMeierFitter().fit(time, event)
    assert k["median_days"] == pytest.approx(kmf.median_survival_time_)
    _check_against_lifelines(k, kmf)
    assert k["at"]["180"]["n_at_risk"] == int((time >= 180).sum())
    assert (k["at"]["730"] is None) == (time.max() < 730)  # past the longest follow-up


def test_median_interval_when_the_curve_jumps_across_one_half_as_eln_efs_does_at_day_one():
    from lifelines import KaplanMeierFitter

    # 16 of 20 fail on day 1 (ELN treatment failures), the rest relapse or are censored later
    time = np.r_[np.ones(16), [30, 60, 90, 200]]
    event = np.r_[np.ones(16), [1, 0, 1, 0]]
    k = km_companion(time, event)
    kmf = KaplanMeierFitter().fit(time, event)
    assert k["median_days"] == 1.0 and (k["median_ci95_low"], k["median_ci95_high"]) == (1.0, 1.0)
    _check_against_lifelines(k, kmf)
    # statsmodels' quantile_ci tests event times only and has no interval here
    from statsmodels.duration.survfunc import SurvfuncRight

    with np.errstate(all="ignore"):
        assert np.isnan(SurvfuncRight(time, event).quantile_ci(0.5)[0])


def test_km_median_takes_r_midpoint_on_a_flat_half():
    # S = 0.5 from day 10 to the next event at day 20: R survfit's median is 15
    time = np.array([5.0, 10, 20, 30])
    event = np.array([0, 1, 1, 1])
    assert km_median(time, event) != 10.0  # lifelines' (and the old engine's) S <= 0.5 rule
    time, event = np.array([10.0, 20, 30, 40]), np.array([1, 1, 1, 1])
    assert km_median(time, event) == 25.0  # S(20) = 0.5 exactly
    assert km_companion(time, event)["median_days"] == 25.0


def test_numbers_at_risk_and_cox_without_events_in_one_arm():
    assert numbers_at_risk([0.5, 90, 100, 400], (0, 90, 180, 365)) == [4, 3, 1, 1]
    c = pair_survival_companion([5, 9, 10, 12], [0, 0, 1, 1], [1, 1, 0, 0])
    assert c["logrank_p"] is None and c["hazard_ratio"] is None  # no event while both were at risk
    c = pair_survival_companion([5, 12, 10, 12], [0, 0, 1, 1], [1, 1, 0, 0])
    assert c["logrank_p"] is not None and c["hazard_ratio"] is None  # no event in the experimental arm


# ============================================================================= a look
@pytest.fixture(scope="module")
def bundled(design):
    table = load_patients(EXAMPLE, design)
    derived = derive(table, design, date(2026, 10, 31))
    return design, table, derived, frequentist_companions(design, table, derived, randomized_pairs(design))


def test_bundled_look_companions_cover_every_arm_endpoint_and_the_randomized_pair(bundled):
    design, table, derived, block = bundled
    assert block["label"] == LABEL == "frequentist companion, not a decision rule"
    assert set(block["arms"]) == set(design.modelled_arms)
    for arm, e in block["arms"].items():
        assert e["label"] == LABEL
        assert set(e["binary"]) == set(design.endpoints)
        for ep, c in e["binary"].items():
            counts = derived.counts[ep][arm]
            assert (c["n"], c["events"]) == (counts.n_evaluable, counts.responders)
        assert set(e["survival"]) == set(design.survival.endpoints)
        os_ = e["survival"]["os"]
        assert os_["median_days"] == derived.survival.summary("os", arm)["km_median_days"]
    pairs = {(p["kind"], p["endpoint"]): p for p in block["pairs"]}
    assert all(p["label"] == LABEL and sorted(p["arms"]) == ["arm3", "arm4"] for p in block["pairs"])
    crc = pairs[("binary", "crc")]
    # the Fisher test reads the same concurrently randomized counts as the superiority rule
    from adaptive.randomization import concurrent_counts, concurrent_window

    a, b = crc["arms"]
    n, y, _ = concurrent_counts(
        design, table, derived, "crc", (a, b), concurrent_window(design, table, (a, b), derived.cutoff)
    )
    assert crc["n"] == [n[a], n[b]] and crc["events"] == [y[a], y[b]]
    assert crc["p_one_sided"] == pytest.approx(
        stats.fisher_exact([[y[a], n[a] - y[a]], [y[b], n[b] - y[b]]], alternative="greater").pvalue
    )
    os_pair = pairs[("survival", "os")]
    assert os_pair["randomized_comparison"] and os_pair["hazard_ratio"] is not None
    assert not pairs[("survival", "rfs")]["randomized_comparison"]
    assert "Fisher's exact test" in crc["sentence"] and "log-rank" in os_pair["sentence"]
    lines = companion_lines(block)
    assert len(lines) == len(block["arms"]) + len(block["pairs"])
    # an EFS median of day 1 (half or more ELN treatment failures) says why, on that arm's line only
    day1 = [a for a, e in block["arms"].items() if (e["survival"].get("efs") or {}).get("median_days") == 1.0]
    note = "(efs median on day 1: half or more are treatment failures, which ELN 2022 dates on day 1)"
    assert day1 and all(
        (note in line) == (line.split(":")[0] in day1) for line in lines[: len(block["arms"])]
    )


def test_companions_take_well_under_a_second(bundled):
    import time

    design, table, derived, _ = bundled
    pairs = randomized_pairs(design)
    start = time.perf_counter()
    frequentist_companions(design, table, derived, pairs)
    assert time.perf_counter() - start < 1.0


# ============================================================================= JSON, CLI, memo


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    """Two looks of the bundled trial in one ledger, the second with its memo (as tests/test_memo.py)."""
    root = tmp_path_factory.mktemp("companions")
    cfg = write_config(root, fast_doc())
    data2 = root / "export-2026-11.csv"
    cleaned_export(data2)
    looks = root / "looks"
    assert interim(cfg, EXAMPLE, "2026-07-31", looks / "2026-07-31").exit_code == 0
    res = interim(cfg, data2, "2026-10-31", looks / "2026-10-31", "--memo")
    assert res.exit_code == 0, res.output
    return {"root": root, "cfg": cfg, "data2": data2, "look": looks / "2026-10-31"}


def test_recommendations_json_and_cli_carry_the_companions(trial, monkeypatch):
    import json

    from rich.console import Console

    from adaptive import cli

    report = json.loads((trial["look"] / "recommendations.json").read_text())
    block = report["companions"]
    assert block["label"] == LABEL
    arm3 = next(a for a in report["arms"] if a["arm"] == "arm3")["endpoints"]["crc"]
    c = block["arms"]["arm3"]["binary"]["crc"]
    assert (c["n"], c["events"], c["null_rate"]) == (
        arm3["n_evaluable"],
        arm3["responders"],
        arm3["null_rate"],
    )
    ci = stats.binomtest(c["events"], c["n"]).proportion_ci(0.95, method="exact")
    assert (c["ci95_low"], c["ci95_high"]) == pytest.approx((ci.low, ci.high), abs=1e-6)  # JSON rounding
    mort = block["arms"]["arm3"]["binary"]["mortality_30d"]
    assert mort["direction"] == "harm"
    pair = next(p for p in block["pairs"] if p["endpoint"] == "crc")
    superiority = next(
        x for x in report["comparisons"] if x["extra"].get("population") == "concurrently_randomized"
    )
    by_arm = superiority["extra"]["n_evaluable_by_arm"]
    assert pair["n"] == [by_arm[a] for a in pair["arms"]] and pair["label"] == LABEL
    console = Console(record=True, width=400)
    monkeypatch.setattr(cli, "console", console)
    cli.print_adaptation(report)
    text = console.export_text()
    assert f"frequentist companions ({LABEL})" in text and pair["sentence"] in text


def test_closed_memo_shows_the_companions_beside_the_posteriors(trial):
    import json

    from adaptive.companions import binary_text
    from adaptive.report import memo_paths

    report = json.loads((trial["look"] / "recommendations.json").read_text())
    text = html_text(memo_paths(trial["look"])["closed_html"])
    outcomes = text.split("Posterior densities")[0]
    assert "Exact: Clopper-Pearson 95% CI; one-sided binomial test vs null" in outcomes
    for arm in ("arm3", "arm5"):
        assert binary_text(report["companions"]["arms"][arm]["binary"]["crc"]) in outcomes
    for p in report["companions"]["pairs"]:
        assert p["sentence"] in outcomes
    # the open report stays blinded: no companion there
    open_text = html_text(memo_paths(trial["look"])["open_html"])
    assert "Clopper-Pearson" not in open_text and "Fisher" not in open_text


@pytest.mark.slow  # a memo with three survival figures
def test_kaplan_meier_plots_have_numbers_at_risk_and_the_randomized_pair_overlaid(
    trial, tmp_path, monkeypatch
):
    import json
    import shutil

    from adaptive.report import build_memo
    from adaptive.report import data as rdata

    look = tmp_path / "look"
    shutil.copytree(trial["look"], look, ignore=shutil.ignore_patterns("memo-*"))
    report = json.loads((look / "recommendations.json").read_text())
    modelled = [a["arm"] for a in report["arms"] if a["status"] != "queued"]
    rng = np.random.default_rng(3)
    times = {
        ep: pd.DataFrame(
            {
                "subject_id": [f"P{i}" for i in range(25 * len(modelled))],
                "arm": np.repeat(modelled, 25),
                "time": rng.exponential(300, 25 * len(modelled)).clip(0.5, 730),
                "event": rng.integers(0, 2, 25 * len(modelled)),
            }
        )
        for ep in ("os", "efs", "rfs")
    }
    for a in report["arms"]:
        a["survival"] = {ep: {"n": 25, "events": 10, "estimable": True} for ep in ("os", "efs", "rfs")}
        if a["arm"] in modelled:
            f = times["os"][times["os"]["arm"] == a["arm"]]
            report["companions"]["arms"][a["arm"]]["survival"] = {"os": km_companion(f["time"], f["event"])}
    f = times["os"][times["os"]["arm"].isin(("arm3", "arm4"))]
    pair = pair_survival_companion(f["time"], f["event"], f["arm"] == "arm3")
    report["companions"]["pairs"].append(
        {
            "label": LABEL,
            "kind": "survival",
            "endpoint": "os",
            "arms": ["arm3", "arm4"],
            "sentence": "OS companion.",
        }
        | pair
    )
    (look / "recommendations.json").write_text(json.dumps(report))
    for ep in ("os", "efs", "rfs"):
        _survival_idata(modelled, hazard=0.003).to_netcdf(
            str(look / "posterior.nc"), base_group=ep, overwrite_existing=False
        )
    monkeypatch.setattr(rdata, "survival_times", lambda lk: times)
    d = rdata.closed_data(rdata.load_look(look, data=trial["data2"]))
    os_ = next(e for e in d["survival"]["endpoints"] if e["endpoint"] == "os")
    assert os_["overlays"] == [("arm3", "arm4")]
    from adaptive.report import figures as rfig

    figure = rfig.km_with_bands(
        os_["panels"], rfig.arm_styles(modelled), endpoint_label="OS", horizon=730.0, overlays=os_["overlays"]
    )
    titles = [ax.get_title(loc="left") for ax in figure.axes if ax.get_visible()]
    assert len(titles) == len(modelled) + 1 and "arm3 vs arm4 overlaid: all patients of each arm" in titles
    memo = build_memo(look, data=trial["data2"], now=NOW)
    html = memo.paths["closed_html"].read_text()
    section = html.split('<section id="survival">')[1].split("</section>")[0]
    assert section.count("Numbers at risk (day)") == 3  # one table under each endpoint's plot
    arm3 = times["os"][times["os"]["arm"] == "arm3"]["time"]
    row = "".join(f'<td class="num">{int((arm3 >= t).sum())}</td>' for t in (0, 90, 180, 365, 545, 730))
    assert f"<tr><td>arm3</td>{row}</tr>" in section
    assert "OS companion." in section and "Brookmeyer-Crowley" in section
    assert km_text(report["companions"]["arms"]["arm3"]["survival"]["os"]) in section
