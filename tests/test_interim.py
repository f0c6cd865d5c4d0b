"""`adaptive interim` and `adaptive validate` end to end, through click's CliRunner."""

import copy
import json
from datetime import date
from pathlib import Path

import arviz as az
import numpy as np
import pytest
from click.testing import CliRunner

from adaptive.cli import main
from adaptive.config import parse_config
from adaptive.data import load_patients
from adaptive.derive import derive
from tests.conftest import (
    CONFIG,
    EXAMPLE,
    config_dict,
    rows_frame,
    small_sampler,
    without_shape_groups,
    without_survival,
    write_config,
    write_csv,
)

CUTOFF = "2026-10-31"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def small_config(tmp_path_factory):
    return write_config(tmp_path_factory.mktemp("cfg"), small_sampler(config_dict()))


@pytest.fixture(scope="module")
def look(small_config, tmp_path_factory):
    out = tmp_path_factory.mktemp("looks") / "look1"
    res = run(
        "interim", "--config", small_config, "--data", EXAMPLE, "--cutoff", CUTOFF, "--out", out, "--seed", 42
    )
    assert res.exit_code == 0, res.output
    return out, json.loads((out / "recommendations.json").read_text()), res.output


def _git(*args: str) -> str | None:
    """git's answer in this checkout, ``None`` when git cannot run here (then the engine says so)."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def test_source_revision_names_the_commit_and_uncommitted_changes(monkeypatch, tmp_path):
    from adaptive import output

    output.source_revision.cache_clear()
    got = output.versions()[output.SOURCE_KEY]
    head, status = _git("rev-parse", "HEAD"), _git("status", "--porcelain", "--untracked-files=no")
    if head is None or status is None:
        assert got.startswith("unknown (")
    else:
        assert got == head + (" with uncommitted changes" if status else "")
    output.source_revision.cache_clear()
    fake = tmp_path / "site-packages" / "adaptive" / "output.py"
    monkeypatch.setattr(output, "__file__", str(fake))  # an installed release: no checkout above it
    assert output.source_revision() == "not a git checkout"
    output.source_revision.cache_clear()


@pytest.mark.slow
def test_outputs_and_provenance(look, small_config):
    import hashlib

    out, rep, output = look
    assert sorted(p.name for p in out.iterdir()) == ["posterior.nc", "recommendations.json"]
    assert rep["status"] == "ok" and rep["refusal"] is None
    assert rep["cutoff"] == CUTOFF and rep["seed"] == 42
    assert rep["data_sha256"] == hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    assert rep["config_sha256"] == hashlib.sha256(Path(small_config).read_bytes()).hexdigest()
    assert {"python", "pymc", "arviz", "numpy", "nutpie", "numba"} <= set(rep["versions"])
    assert rep["versions"]["rr-aml-adaptive source"].split()[0] in (_git("rev-parse", "HEAD"), "unknown")
    d = rep["diagnostics"]
    assert {"max_rhat", "min_ess_bulk", "divergences", "converged"} <= set(d)
    assert d["converged"] is True and d["max_rhat"] <= 1.02
    assert rep["config"]["sampler"]["draws"] == 1000
    assert "interim look, data cutoff 2026-10-31" in output


@pytest.mark.slow
def test_arm_summaries(look):
    _, rep, _ = look
    assert [a["arm"] for a in rep["arms"]] == [f"arm{i}" for i in range(1, 9)]
    assert rep["arms"][-1]["status"] == "queued" and rep["arms"][-1]["endpoints"]["crc"]["mean"] is None
    for a in rep["arms"][:-1]:
        crc = a["endpoints"]["crc"]
        for key in (
            "n_evaluable",
            "responders",
            "mean",
            "ci95_low",
            "ci95_high",
            "prob_above_null",
            "prob_above_target",
            "mcse",
        ):
            assert crc[key] is not None, (a["arm"], key)
        assert crc["ci95_low"] < crc["mean"] < crc["ci95_high"]
        assert 0 <= crc["responders"] <= crc["n_evaluable"] <= a["n_enrolled"]
        assert set(a["endpoints"]) == {"crc", "orr", "mrd_negative_cr", "mortality_30d", "mortality_60d"}
        kinds = {r["kind"] for r in a["rules"]}
        # graduation only outside the randomized pair, arm6 (physician's choice) and arm7 (descriptive)
        expected = {
            "arm1": {"efficacy", "futility", "harm", "predictive_futility", "survival_futility"},
            "arm3": {"futility", "harm", "survival_futility"},
            "arm6": {"futility", "harm", "survival_futility"},
            "arm7": {"harm"},
        }
        expected["arm2"] = expected["arm5"] = expected["arm1"]
        expected["arm4"] = expected["arm3"]
        assert kinds == expected[a["arm"]], a["arm"]
        assert a["monitoring"] == ("descriptive" if a["arm"] == "arm7" else "full")
        assert a["stage"] in ("interim", "accrual_complete", "final_analysis")
        for r in a["rules"]:
            assert {"prob", "mcse", "threshold", "fired", "sentence"} <= set(r)
    (cmp,) = [c for c in rep["comparisons"] if c["kind"] == "superiority"]
    assert set(cmp["arms"]) == {"arm3", "arm4"}


@pytest.mark.slow
def test_recommendations_allocation_and_queue_of_the_bundled_look(look):
    _, rep, output = look
    from adaptive.recommend import ACTIONS

    assert rep["look"]["number"] == 1 and rep["look"]["previous_look"] is None
    assert {r["action"] for r in rep["recommendations"]} <= set(ACTIONS)
    assert [r["arm"] for r in rep["recommendations"] if r["arm"] and r["action"] != "add_arm"] == [
        f"arm{i}" for i in range(1, 8)
    ]
    alloc = rep["allocation"]["fit_no_target"]
    assert alloc["kind"] == "thall_wathen" and sum(alloc["probabilities"].values()) == pytest.approx(1)
    assert 0.35 - 1e-9 <= alloc["probabilities"]["arm3"] <= 0.65 + 1e-9
    pb = alloc["inputs"]["prob_best"]
    assert pb["arm3"] + pb["arm4"] == pytest.approx(1)
    # the independent endpoint's predictive rule is exact (beta-binomial enumeration); arm5 is at
    # its final analysis, where it is reported as not applied
    pp = {r["arms"][0]: r for a in rep["arms"] for r in a["rules"] if r["kind"] == "predictive_futility"}
    assert set(pp) == {"arm1", "arm2", "arm5"}
    assert all(r["extra"]["method"] == "exact beta-binomial enumeration" for r in pp.values())
    assert pp["arm5"]["extra"]["not_applied"] == "final_analysis" and not pp["arm5"]["evaluated"]
    assert rep["queue"][0]["arm"] == "arm8" and "recommendations (for the DSMB" in output


@pytest.mark.slow
def test_crc_posterior_is_the_conjugate_beta_of_the_same_counts(look):
    """The independent CRc posterior is the closed-form Beta on the counts the look derived, exactly.

    Its decision probabilities too, printed "exact" in the terminal (tests/test_exact_look.py checks
    them to 1e-12 in memory; recommendations.json rounds to 6 decimals).
    """
    from scipy import stats

    _, rep, output = look
    for a in [a for a in rep["arms"] if a["status"] != "queued"]:
        crc = a["endpoints"]["crc"]
        null, n, y = crc["null_rate"], crc["n_evaluable"], crc["responders"]
        post = stats.beta(null + y, 1 - null + n - y)  # unit-information prior Beta(null, 1 - null)
        assert crc["mean"] == pytest.approx(post.mean(), abs=5e-7) and crc["mcse"] == 0.0
        assert crc["prob_above_null"] == pytest.approx(post.sf(null), abs=5e-7)
        assert crc["mcse_prob_above_null"] == 0.0
        for r in a["rules"]:
            if r["endpoint"] == "crc" and r["kind"] in ("efficacy", "futility"):
                assert r["prob"] == pytest.approx(post.sf(r["extra"]["reference"]), abs=5e-7)
                assert r["mcse"] == 0.0 and r["extra"]["method"].startswith("exact")
                if "not_applied" not in r["extra"]:  # a rule not applied says its probability only
                    assert "(exact)" in r["sentence"]
    arm6 = stats.beta(0.08, 1 - 0.08 + 16).sf(0.15)  # 0/16 responders, null 8%: the futility rule fires
    assert f"P(CRc > 15%) is {100 * arm6:.1f}% (exact) for arm6" in " ".join(output.split())


@pytest.mark.slow
def test_posterior_netcdf_has_one_group_per_endpoint(look):
    out, rep, _ = look
    for ep in ("crc", "orr", "mrd_negative_cr", "mortality_30d", "mortality_60d"):
        idata = az.InferenceData.from_netcdf(out / "posterior.nc", base_group=ep)
        p = idata.posterior["p"]
        assert p.dims == ("chain", "draw", "arm")
        assert list(p.arm.values) == [f"arm{i}" for i in range(1, 8)]
        assert idata.constant_data["n"].values.tolist() == [
            a["endpoints"][ep]["n_evaluable"] for a in rep["arms"] if a["status"] != "queued"
        ]
    # the plain call (no base_group) gives the primary endpoint, not an empty InferenceData
    root = az.from_netcdf(out / "posterior.nc")
    crc = az.InferenceData.from_netcdf(out / "posterior.nc", base_group="crc")
    assert set(root.groups()) >= {"posterior", "constant_data"}
    assert np.array_equal(root.posterior["p"].values, crc.posterior["p"].values)


@pytest.mark.slow
def test_same_seed_same_bytes(look, small_config, tmp_path):
    out, _, _ = look
    res = run(
        "interim",
        "--config",
        small_config,
        "--data",
        EXAMPLE,
        "--cutoff",
        CUTOFF,
        "--out",
        tmp_path / "again",
        "--seed",
        42,
    )
    assert res.exit_code == 0
    assert (tmp_path / "again" / "recommendations.json").read_bytes() == (
        out / "recommendations.json"
    ).read_bytes()


@pytest.mark.slow
def test_survival_summaries_per_arm(look):
    _, rep, output = look
    queued = rep["arms"][-1]  # arm8: counted, not modelled
    assert queued["status"] == "queued" and queued["survival"]["os"]["n"] == 0
    assert queued["survival"]["os"]["median_days"] is None and queued["rules"] == []
    for a in rep["arms"][:-1]:
        crc = a["endpoints"]["crc"]
        sv = a["survival"]
        assert set(sv) == {"os", "efs", "rfs"}
        assert sv["os"]["n"] == a["n_enrolled"]
        # RFS: every CR/CRi so far; CRc counts those by the landmark once it has passed
        assert sv["rfs"]["n"] >= crc["responders"]
        # ELN EFS: every enrolled patient whose outcome by the landmark is known, the rest pending
        assert sv["efs"]["n"] + sv["efs"]["n_pending"] == a["n_enrolled"]
        assert sv["efs"]["treatment_failures"] == sv["efs"]["events_by_type"]["treatment_failure"]
        assert sv["efs"]["treatment_failures"] <= crc["n_evaluable"] - crc["responders"]
        for ep, s in sv.items():
            if not s["estimable"]:  # no patient or no event: no posterior numbers
                assert s["median_days"] is None and s["not_estimable_reason"]
                continue
            assert s["events"] == sum(s["events_by_type"].values()) <= s["n"]
            for key in ("median_days", "s180", "s365", "s730"):
                q = s[key]
                assert q["ci95_low"] <= q["median"] <= q["ci95_high"], (a["arm"], ep, key)
            assert s["s180"]["median"] >= s["s365"]["median"] >= s["s730"]["median"]
            assert 0 <= s["prob_median_beyond_follow_up"] <= 1
            chk = s["model_check"]  # posterior predictive check against Kaplan-Meier
            assert 0 <= chk["p_value"] <= 1 and chk["n_rep"] == 400
            assert chk["km_median_days"] == s["km_median_days"]
        bench = sv["os"]["benchmark_median_days"]
        assert bench is not None and 0 <= sv["os"]["prob_median_above_benchmark"] <= 1
        assert sv["os"]["mcse_prob_median_above_benchmark"] >= 0
        assert sv["efs"]["prob_median_above_benchmark"] is None  # no EFS benchmarks in the config
        assert 0 < sv["efs"]["prob_point_mass_event"]["median"] < 1
        # ELN EFS: the median is at least the treatment-failure day, never 0
        assert sv["efs"]["median_days"]["median"] >= 1.0
        cr = a["competing_risks"]
        assert cr["cir"]["n"] == sv["rfs"]["n"] and cr["hsct"]["n"] == a["n_enrolled"]
        assert cr["cir"]["events"] == sv["rfs"]["events_by_type"]["relapse"]
        futs = [r for r in a["rules"] if r["kind"] == "survival_futility"]
        assert len(futs) == (0 if a["arm"] == "arm7" else 1)  # not on the descriptive arm
        for fut in futs:
            assert fut["n_evaluable"] == [sv["os"]["events"]]
            assert fut["extra"]["reference"] == bench
    # arm6 has no patient in CR/CRi: no RFS estimate from the prior, "not estimable" instead
    rfs6 = rep["arms"][5]["survival"]["rfs"]
    assert rfs6["n"] == 0 and rfs6["estimable"] is False and rfs6["median_days"] is None
    assert rfs6["not_estimable_reason"] == "no patient in this endpoint's population yet"
    spans = rep["remission_span"]
    # every CR/CRi so far; CRc counts only those by the landmark of patients past it
    assert spans["trial"]["n_remissions"] == sum(a["survival"]["rfs"]["n"] for a in rep["arms"])
    assert spans["trial"]["n_remissions"] >= sum(a["endpoints"]["crc"]["responders"] for a in rep["arms"])
    assert spans["trial"]["first_remission_on"] <= spans["trial"]["last_remission_on"] <= CUTOFF
    assert set(rep["endpoint_definitions"]) >= {"os", "efs", "rfs", "cir", "hsct"}
    assert set(rep["estimands"]) == set(rep["endpoint_definitions"])
    assert "OS median days" in output and "remission span (the CRc outcome's time frame" in output


@pytest.mark.slow
def test_survival_models_follow_kaplan_meier_on_the_bundled_trial(look, small_config):
    """For every arm and endpoint with data, the model's S at the Kaplan-Meier median (and at 180
    and 365 days) lies inside the KM's 95% pointwise interval (lifelines, log-log), or the arm's
    predictive check flags a misfit (arms with at least 5 events; with fewer the KM interval is
    degenerate). On the bundled look no check flags one."""
    from lifelines import KaplanMeierFitter

    from adaptive.config import load_config
    from adaptive.data import load_patients
    from adaptive.derive import derive
    from models.survival import cumulative_hazard

    out, rep, _ = look
    from datetime import date

    design = load_config(small_config)
    d = derive(load_patients(EXAMPLE, design), design, date.fromisoformat(CUTOFF))
    cuts = design.survival.cut_points_days
    checked = 0
    for ep in ("os", "efs", "rfs"):
        post = az.InferenceData.from_netcdf(out / "posterior.nc", base_group=ep).posterior
        for a in rep["arms"][:-1]:
            s = a["survival"][ep]
            if not s["estimable"]:
                continue
            assert not s["model_check"]["misfit"], (a["arm"], ep, s["model_check"])
            if s["events"] < 5:  # the KM interval is degenerate (e.g. [1, 1] before the first event)
                continue
            f = d.survival.arm_times(ep, a["arm"])
            km = KaplanMeierFitter().fit(f["time"], f["event"])
            hz = post["hazard"].sel(arm=a["arm"]).stack(s=("chain", "draw")).transpose("s", "interval").values
            pi = (
                post["prob_day0_event"].sel(arm=a["arm"]).stack(s=("chain", "draw")).values
                if ep == "efs"
                else 0.0
            )
            times = [t for t in (s["km_median_days"], 180.0, 365.0) if t is not None and t < f["time"].max()]
            for t in times:
                model_s = float(np.median((1 - pi) * np.exp(-cumulative_hazard(hz, cuts, t))))
                ci = km.confidence_interval_survival_function_
                lo, hi = ci[ci.index <= t].iloc[-1]
                assert lo - 1e-9 <= model_s <= hi + 1e-9, (a["arm"], ep, t, model_s, lo, hi)
                checked += 1
    assert checked > 30


@pytest.mark.slow
def test_survival_comparisons_and_hazard_ratio_rule(look):
    _, rep, _ = look
    # experimental : reference, DAV (arm3) the cohort's reference arm; OS and ELN EFS are randomized
    assert [(c["endpoint"], c["arms"], c["randomized_comparison"]) for c in rep["survival_comparisons"]] == [
        ("os", ["arm4", "arm3"], True),
        ("efs", ["arm4", "arm3"], True),
        ("rfs", ["arm4", "arm3"], False),
    ]
    assert "Not randomized" in rep["survival_comparisons"][2]["sentence"]
    efs = rep["survival_comparisons"][1]  # EFS at 180 days: counts the day-1 treatment failures
    d = efs["difference"]
    assert efs["horizon_days"] == 180 and set(efs["n_at_risk"]) == {"arm3", "arm4"}
    assert d["ci95_low"] < d["median"] < d["ci95_high"] and 0 <= efs["prob_a_better"] <= 1
    assert f"At risk at day 180: {efs['n_at_risk']['arm4']} (arm4 (HAV))" in efs["sentence"]
    # the whole-arm model (unrandomized patients included), said so beside the concurrent companion
    assert efs["population"] == "all_patients" and "randomized or not" in efs["sentence"]
    for c in (rep["survival_comparisons"][0], rep["survival_comparisons"][2]):
        assert c["hr"]["ci95_low"] < c["hr"]["median"] < c["hr"]["ci95_high"]
        assert 0 <= c["prob_hr_below_1"] <= 1
    # OS (randomized): the rule's analysis, concurrently randomized patients by quadrature (exact);
    # RFS (descriptive): the whole-arm fit's draws
    assert rep["survival_comparisons"][0]["mcse_prob_hr_below_1"] == 0.0
    assert rep["survival_comparisons"][2]["mcse_prob_hr_below_1"] > 0
    (hr_rule,) = [c for c in rep["comparisons"] if c["kind"] == "hazard_ratio"]
    assert set(hr_rule["arms"]) == {"arm3", "arm4"}
    os_cmp = rep["survival_comparisons"][0]
    assert os_cmp["population"] == hr_rule["extra"]["population"] == "concurrently_randomized"
    assert os_cmp["events_by_arm"] == hr_rule["extra"]["events_by_arm"] == {"arm4": 15, "arm3": 15}
    assert hr_rule["n_evaluable"] == [15, 15] and hr_rule["mcse"] == 0.0
    p43 = os_cmp["prob_hr_below_1"]
    # 86.9% on the 15 + 15 concurrently randomized deaths (the whole-arm fit read 16 in arm4: 85.9%)
    assert p43 == pytest.approx(0.8692924, abs=1e-6)
    assert hr_rule["prob"] == pytest.approx(max(p43, 1 - p43), abs=1e-6)
    assert hr_rule["extra"]["hr_arms"] == ["arm4", "arm3"]
    assert hr_rule["extra"]["hr_median"] == pytest.approx(os_cmp["hr"]["median"], rel=1e-6)
    # the frequentist companion (log-rank/Cox) reads the same patients
    (cox,) = [p for p in rep["companions"]["pairs"] if p["kind"] == "survival" and p["endpoint"] == "os"]
    assert cox["population"] == "concurrently_randomized" and cox["events"] == [15, 15]
    assert set(rep["diagnostics"]["by_endpoint"]) >= {"os", "efs", "rfs"}
    # the memo's survival section prints the exact probability (it crashed on the exact flag)
    from adaptive.report.data import load_look, survival_section

    section = survival_section(load_look(look[0], data=EXAMPLE))
    shown = [c["p"] for e in section["endpoints"] for c in e["comparisons"] if c["arms"] == "arm4 : arm3"]
    assert "86.9%" in shown


@pytest.mark.slow
def test_ledger_rerun_and_history_with_survival_endpoints(look, small_config):
    """The look of the bundled config (survival endpoints included) is in its ledger: the same
    command again is an idempotent rerun, and `adaptive history` reads it."""
    out, rep, _ = look
    before = (out / "recommendations.json").read_bytes()
    res = run(
        "interim", "--config", small_config, "--data", EXAMPLE, "--cutoff", CUTOFF, "--out", out, "--seed", 42
    )
    assert res.exit_code == 0 and "Nothing to do" in res.output, res.output
    assert (out / "recommendations.json").read_bytes() == before
    ledger = out.parent / "ledger.sqlite"
    res = run("history", "--ledger", ledger)
    assert res.exit_code == 0 and "arm3 DAV" in res.output, res.output
    hist = json.loads(run("history", "--ledger", ledger, "--json").output)
    (lk,) = hist["looks"]
    assert lk["cutoff"] == CUTOFF and lk["status"] == "ok"
    assert set(lk["diagnostics"]) >= {"max_rhat", "converged"}
    assert [r["action"] for r in lk["recommendations"]] == [r["action"] for r in rep["recommendations"]]
    assert hist["arms"]["arm3"][0]["crc_evaluable"] == rep["arms"][2]["endpoints"]["crc"]["n_evaluable"]


@pytest.mark.slow
def test_survival_posteriors_in_netcdf_match_the_report(look):
    out, rep, _ = look
    for ep in ("os", "efs", "rfs"):
        idata = az.InferenceData.from_netcdf(out / "posterior.nc", base_group=ep)
        post = idata.posterior
        assert post["median"].dims == ("chain", "draw", "arm")
        assert post["hazard"].dims == ("chain", "draw", "arm", "interval")
        assert list(post.interval.values) == ["0-30", "30-60", "60-120", "120-240", "240-365", "365-730"]
        cd = idata.constant_data
        assert list(post.arm.values) == [f"arm{i}" for i in range(1, 8)]  # the queued arm8 is not modelled
        for k, a in enumerate(rep["arms"][:-1]):
            s = a["survival"][ep]
            # the model's n: the patients whose point-mass status is known (EFS: NEs censored on day 1 out)
            assert cd["n"].values[k] == s["n"] - s.get("n_failure_status_unknown", 0)
            assert cd["events"].values[k].sum() + cd["day0_events"].values[k] == s["events"]
            assert cd["exposure"].values[k].sum() == pytest.approx(s["exposure_days"])
            if s["estimable"]:
                assert s["median_days"]["median"] == pytest.approx(
                    float(np.median(post["median"].sel(arm=a["arm"]).values)), abs=1e-5
                )
        assert ("prob_day0_event" in post) is (ep == "efs")


def test_survival_fit_failure_refuses_the_look(tmp_path, monkeypatch):
    """A survival fit that fails its limits refuses the whole look, as a CRc fit would (exit 3)."""
    import xarray as xr

    from models.survival import PiecewiseExponential

    def stuck(self, data, *, seed, settings):
        rng = np.random.default_rng(seed)
        shape = (settings.chains, settings.draws, len(data.arms))
        eta = rng.normal(size=shape) + np.arange(settings.chains)[:, None, None] * 3.0  # chains disagree
        dims = ("chain", "draw", "arm")
        post = xr.Dataset(
            {"eta": (dims, eta), "median": (dims, np.exp(-eta))}, coords={"arm": list(data.arms)}
        )
        stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros(shape[:2], bool))})
        idata = az.InferenceData(posterior=post, sample_stats=stats)
        idata.add_groups(constant_data=data.constant_data())
        return idata

    monkeypatch.setattr(PiecewiseExponential, "fit", stuck)
    cfg = small_sampler(config_dict(), draws=200, tune=200)
    for ep in cfg["endpoints"].values():
        ep["model"] = {"kind": "independent"}  # exact draws: these converge
    path = write_config(tmp_path, cfg)
    out = tmp_path / "look"
    res = run("interim", "--config", path, "--data", EXAMPLE, "--cutoff", CUTOFF, "--out", out)
    assert res.exit_code == 3, res.output
    rep = json.loads((out / "recommendations.json").read_text())
    assert rep["status"] == "refused" and "os failed (max R-hat" in rep["refusal"]
    assert rep["diagnostics"]["by_endpoint"]["crc"]["converged"] is True
    assert len(rep["diagnostics"]["by_endpoint"]["os"]["attempts"]) == 2  # first try + one retry
    assert rep["fired"] == [] and rep["comparisons"] == [] and rep["survival_comparisons"] == []
    assert all(a["rules"] == [] for a in rep["arms"])
    assert all(a["survival"]["os"]["median_days"] is None for a in rep["arms"])
    # as for binary endpoints, summaries of fits that did converge are still shown (no rule is run)
    modelled = [a for a in rep["arms"] if a["status"] != "queued"]  # arm8 is queued: not modelled
    assert [a["arm"] for a in modelled] == [f"arm{i}" for i in range(1, 8)]
    assert all(a["endpoints"]["crc"]["prob_above_null"] is not None for a in modelled)
    assert all(a["endpoints"]["mortality_30d"]["prob_above_limit"] is not None for a in modelled)
    assert rep["arms"][0]["survival"]["os"]["n"] == rep["arms"][0]["n_enrolled"]  # counts still shown


def test_refused_endpoint_keeps_the_same_fields(tmp_path, monkeypatch):
    """An endpoint whose fit failed reports the same keys as a converged one, null (a stable schema)."""
    from models.binary import IndependentBetaBinomial

    cfg = small_sampler(without_survival(config_dict()), draws=200, tune=200)
    for ep in cfg["endpoints"].values():
        ep["model"] = {"kind": "independent"}
    good = run(
        "interim",
        "--config",
        write_config(tmp_path, cfg),
        "--data",
        EXAMPLE,
        "--cutoff",
        CUTOFF,
        "--out",
        tmp_path / "ok",
    )
    assert good.exit_code == 0, good.output
    ok = json.loads((tmp_path / "ok" / "recommendations.json").read_text())
    real_fit = IndependentBetaBinomial.fit

    def stuck(self, data, *, seed, settings):
        idata = real_fit(self, data, seed=seed, settings=settings)
        idata.posterior["p"][1] = idata.posterior["p"][1] * 0.5  # chain 2 disagrees: R-hat fails
        return idata

    monkeypatch.setattr(IndependentBetaBinomial, "fit", stuck)
    # the same inputs again: --force, or the look ledger would report the first look (exit 0)
    res = run(
        "interim",
        "--config",
        tmp_path / "config.yaml",
        "--data",
        EXAMPLE,
        "--cutoff",
        CUTOFF,
        "--out",
        tmp_path / "refused",
        "--force",
    )
    assert res.exit_code == 3, res.output
    refused = json.loads((tmp_path / "refused" / "recommendations.json").read_text())
    for a_ok, a_ref in zip(ok["arms"], refused["arms"], strict=True):
        for ep, summary in a_ok["endpoints"].items():
            assert set(a_ref["endpoints"][ep]) == set(summary), (a_ok["arm"], ep)
            assert a_ref["endpoints"][ep]["mean"] is None


def test_refuses_non_empty_output_folder(small_config, tmp_path):
    out = tmp_path / "look"
    out.mkdir()
    (out / "keep.txt").write_text("earlier look")
    res = run("interim", "--config", small_config, "--data", EXAMPLE, "--cutoff", CUTOFF, "--out", out)
    assert res.exit_code == 2
    assert "already holds results" in res.output
    assert (out / "keep.txt").read_text() == "earlier look"


def test_bad_cutoff_and_bad_data_exit_2(small_config, tmp_path):
    res = run(
        "interim",
        "--config",
        small_config,
        "--data",
        EXAMPLE,
        "--cutoff",
        "31/10/2026",
        "--out",
        tmp_path / "x",
    )
    assert res.exit_code == 2 and "not an ISO 8601 date" in res.output
    bad = write_csv(tmp_path, rows_frame({"arm": "arm9"}, {"death_on": "2020-01-01"}))
    res = run("interim", "--config", small_config, "--data", bad, "--cutoff", CUTOFF, "--out", tmp_path / "y")
    assert res.exit_code == 2
    assert (
        "2 data problem(s)" in res.output
        and "line 2, column 'arm'" in res.output
        and "line 3, column 'death_on'" in res.output
    )
    assert not (tmp_path / "y").exists()


def test_failure_mid_write_leaves_nothing(small_config, tmp_path, monkeypatch):
    import adaptive.interim as interim

    def boom(path, fits):
        Path(path).write_text("partial")
        raise OSError("disk full")

    monkeypatch.setattr(interim, "write_posterior", boom)
    cfg = small_sampler(without_survival(config_dict()), draws=200, tune=200)
    for ep in cfg["endpoints"].values():
        ep["model"] = {"kind": "independent"}
    path = write_config(tmp_path, cfg)
    with pytest.raises(OSError, match="disk full"):
        interim.run_interim(path, EXAMPLE, interim.date(2026, 10, 31), tmp_path / "look")
    assert list(tmp_path.iterdir()) == [path]  # no output folder, no temporary folder


@pytest.mark.slow
def test_non_convergence_is_refused_loudly(tmp_path):
    cfg = small_sampler(config_dict(), draws=300, tune=200)
    cfg["sampler"]["limits"]["min_ess_bulk"] = 1e9  # impossible: every fit fails
    cfg["sampler"]["retries"] = [{"tune": 300, "target_accept": 0.95}]
    cfg["endpoints"] = {k: v for k, v in cfg["endpoints"].items() if k in ("crc", "mortality_30d")}
    cfg["rules"] = [r for r in cfg["rules"] if r["endpoint"] in cfg["endpoints"]]
    for arm in cfg["arms"].values():
        arm["rates"] = {k: v for k, v in arm["rates"].items() if k in cfg["endpoints"]}
    path = write_config(tmp_path, cfg)
    out = tmp_path / "look"
    res = run("interim", "--config", path, "--data", EXAMPLE, "--cutoff", CUTOFF, "--out", out)
    assert res.exit_code == 3
    assert "REFUSED" in res.output and "min bulk ESS" in res.output
    rep = json.loads((out / "recommendations.json").read_text())
    assert rep["status"] == "refused" and "No recommendation" in rep["refusal"]
    assert rep["fired"] == [] and rep["comparisons"] == []
    assert all(a["rules"] == [] for a in rep["arms"])
    assert all(a["endpoints"]["crc"]["prob_above_null"] is None for a in rep["arms"])
    attempts = rep["diagnostics"]["by_endpoint"]["crc"]["attempts"]
    assert [(a["tune"], a["target_accept"]) for a in attempts] == [(200, 0.9), (300, 0.95)]


def test_validate_ok_and_lists_rules(tmp_path):
    res = run("validate", "--config", "configs/rr_aml.yaml", "--data", EXAMPLE, "--cutoff", CUTOFF)
    assert res.exit_code == 0, res.output
    assert "config configs/rr_aml.yaml: OK (8 arms, 5 endpoints, 8 rules" in res.output
    assert "data" in res.output and "220 patients" in res.output


def test_validate_lists_every_config_problem(tmp_path):
    doc = config_dict()
    doc["arms"]["arm1"]["statsu"] = "x"
    doc["rules"][4]["arms"] = ["arm3", "arm44"]
    doc["arms"]["arm2"]["rates"]["crc"]["null_rate"] = 1.5
    res = run("validate", "--config", write_config(tmp_path, doc))
    assert res.exit_code == 2
    assert "3 configuration problem(s)" in res.output


def test_validate_lists_every_data_problem_with_line_and_column(tmp_path):
    lines = Path(EXAMPLE).read_text().splitlines()
    header = lines[0].split(",")
    row = lines[1].split(",")
    row[header.index("arm")] = "arm99"
    row[header.index("enrolled_on")] = "2026-02-30"
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([lines[0], ",".join(row), *lines[2:]]) + "\n")
    res = run("validate", "--config", "configs/rr_aml.yaml", "--data", str(bad))
    assert res.exit_code == 2, res.output
    out = " ".join(res.output.split())
    assert "bad.csv" in out and "line 2" in out
    assert "arm99" in out and "2026-02-30" in out


@pytest.mark.slow
def test_twelve_arm_trial_runs_the_same_way(tmp_path):
    """Arms are data: a 12-arm config with one randomized pair runs end to end."""
    doc = small_sampler(config_dict(), draws=500, tune=500)
    template = copy.deepcopy(doc["arms"]["arm3"])
    doc["arms"] = {f"x{i:02d}": {**copy.deepcopy(template), "label": f"Regimen {i}"} for i in range(1, 13)}
    doc["routing"] = [
        {"cohort": "all", "arms": list(doc["arms"]), "allocation": dict.fromkeys(doc["arms"], 1)}
    ]
    doc.pop("randomization")
    without_shape_groups(doc)  # twelve copies of one intensive regimen: one shape
    doc["rules"] = [r for r in doc["rules"] if r["kind"] not in ("superiority", "hazard_ratio")]
    for r in doc["rules"]:
        r.pop("arms", None)  # every arm
        if r["kind"] in ("efficacy", "survival_efficacy"):  # all 12 arms randomized: say so explicitly
            r["allow_in_randomized"] = True
    doc["rules"] += [
        {
            "id": "x01_vs_x02",
            "kind": "superiority",
            "endpoint": "crc",
            "arms": ["x01", "x02"],
            "threshold": 0.975,
        }
    ]
    rng = np.random.default_rng(0)
    rows = []
    for i in range(12 * 15):
        arm = f"x{i % 12 + 1:02d}"
        resp = rng.choice(["CR", "CRi", "NR"], p=[0.3, 0.1, 0.6])
        rows.append(
            {
                "arm": arm,
                "best_response": resp,
                "response_on": "2026-02-15" if resp != "NR" else "",
                "mrd_negative": "true" if resp != "NR" else "",
                "last_contact_on": "2026-09-01",
            }
        )
    data = write_csv(tmp_path, rows_frame(*rows))
    res = run(
        "interim",
        "--config",
        write_config(tmp_path, doc),
        "--data",
        data,
        "--cutoff",
        CUTOFF,
        "--out",
        tmp_path / "look",
    )
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "look" / "recommendations.json").read_text())
    assert len(rep["arms"]) == 12
    assert all(a["endpoints"]["crc"]["n_evaluable"] == 15 for a in rep["arms"])


@pytest.mark.slow
def test_parallel_fitting_processes_give_identical_looks(tmp_path):
    """Endpoints fitted in two worker processes give the same bytes as fitting in one.

    Borrowing within a declared group (EXNEX) and the survival model: two MCMC model classes, so
    two processes fit (with one MCMC class everything is fitted in-process:
    ``test_one_mcmc_model_class_is_fitted_here``).
    """
    from tests.test_recommend import borrowing_doc

    cfg = small_sampler(borrowing_doc())
    outs = []
    for n in (1, 2):
        cfg["sampler"]["fit_processes"] = n
        path = write_config(tmp_path, cfg, f"c{n}.yaml")
        out = tmp_path / f"look{n}"
        res = run("interim", "--config", path, "--data", EXAMPLE, "--cutoff", CUTOFF, "--out", out,
                  "--ledger", tmp_path / f"ledger{n}.sqlite")  # fmt: skip
        assert res.exit_code == 0, res.output
        rep = json.loads((out / "recommendations.json").read_text())
        for key in ("config", "config_sha256", "config_file", "look"):
            rep.pop(key)
        outs.append(rep)
    from adaptive.fitpool import shared_pool

    assert len(shared_pool().pids()) == 2  # the second look did fit in two worker processes
    assert outs[0] == outs[1]


def test_one_mcmc_model_class_is_fitted_here(monkeypatch):
    """Worker processes only when two or more of their groups run MCMC (benchmarks/bench_fitpool.py:
    the bundled design, whose binary endpoints are exact, fits faster in-process)."""
    import adaptive.interim as interim

    class NoPool:
        def map(self, *a, **k):
            raise AssertionError("no worker process should be used")

    monkeypatch.setattr(interim, "shared_pool", NoPool)
    monkeypatch.setattr(interim, "_fit_group", lambda tasks, *a: {t[0]: t[0] for t in tasks})
    design = parse_config(CONFIG.read_text(), "rr_aml.yaml")  # exact binary models + one survival class
    assert design.sampler.fit_processes == 2
    derived = derive(load_patients(EXAMPLE, design), design, date(2026, 10, 31))
    tasks = interim.fit_tasks(design, derived)
    assert len(interim._groups(tasks, 2)) == 2  # two groups, but one of them is exact
    fits = interim.fit_endpoints(design, derived, 1)
    assert list(fits) == [t[0] for t in tasks]
