"""The operating-characteristics simulator against independent computations.

* A two-arm Beta-binomial design with Thall-Wathen allocation and early stopping: the simulator's
  operating characteristics agree, within Monte Carlo error, with a brute-force simulation written
  here from scratch (scipy quadrature for P(best), its own randomisation and stopping).
* A single-arm design with interim futility looks and a final efficacy rule: type I error and
  power reproduce the exact values from enumerating every path (dynamic programming on counts).
* Results do not depend on workers or chunks (a Dask LocalCluster run equals the in-process run).

Outcomes in these designs come at once in the scenario (response on day 0), but a non-responder
is a failure only once the arm's response landmark has passed (as in
:func:`adaptive.derive.derive_patient`): the designs set a landmark of 1 day and the scenarios
let patients arrive years apart, so at a look every earlier patient is known and only the patient
who triggers it can be pending: counted at once as a responder, not yet as a non-responder. The
reference computations do the same.
"""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from scipy import integrate, stats

from adaptive.cli import main
from adaptive.config import parse_config
from adaptive.scenario import parse_scenario
from adaptive.simulate.engine import GRADUATED, compile_spec, simulate_chunk, trial_streams
from adaptive.simulate.summary import merge_chunks, summarise


def _arm(label, null=0.3, target=0.5, max_n=240):
    return {
        "label": label,
        "max_n": max_n,
        "rates": {
            "crc": {"null_rate": null, "target_rate": target},
            "mortality_30d": {"null_rate": 0.05, "limit_rate": 0.5},
        },
    }


#: days of the response landmark of the test designs (a non-responder counts one day after the
#: response on the day of enrolment) and the scenarios' mean gap between arrivals, which is far
#: longer: the landmark of the patient before a look has always passed
LANDMARK_DAYS = 1
ACCRUAL_PER_MONTH = 0.02  # one patient every ~1,500 days
MAX_DURATION_DAYS = 2_000_000


def two_arm_config(power=0.5, threshold=0.99) -> dict:
    return {
        "schema_version": 1,
        "trial": {"name": "two-arm RAR design"},
        "assessment": {"response_window_days": LANDMARK_DAYS},
        "endpoints": {
            "crc": {"model": {"kind": "independent", "prior": "uniform"}},
            "mortality_30d": {"model": {"kind": "independent", "prior": "uniform"}},
        },
        "arms": {"a": _arm("A"), "b": _arm("B")},
        "routing": [{"cohort": "all", "arms": ["a", "b"], "allocation": {"a": 1, "b": 1}}],
        "rules": [
            {
                "id": "sup",
                "kind": "superiority",
                "endpoint": "crc",
                "arms": ["a", "b"],
                "threshold": threshold,
            }
        ],
        "randomization": [{"cohort": "all", "kind": "thall_wathen", "endpoint": "crc", "power": power}],
        "looks": {
            "every_patients": 30,
            "first_after_patients": 60,
            "max_patients": 240,
            "max_duration_days": MAX_DURATION_DAYS,
            "stop_trial_on": ["sup"],
        },
    }


def scenario(arms: dict[str, float], name="s") -> dict:
    return {
        "name": name,
        "accrual_per_month": ACCRUAL_PER_MONTH,
        "response_days": [0, 0],
        "prevalence": {"new_drug_eligible": 0, "idh1": 0, "flt3": 0, "prior_venetoclax_3m": 0},
        "arms": {
            a: {
                "cr": p,
                "cri": 0.0,
                "pr": 0.0,
                "ne": 0.0,
                "mortality_30d": 1e-6,
                "mortality_60d": 2e-6,
                "median_os_days": 1e6,
            }
            for a, p in arms.items()
        },
    }


def build(cfg: dict, sc: dict):
    design = parse_config(yaml.safe_dump(cfg), "design.yaml")
    return compile_spec(design, parse_scenario(yaml.safe_dump(sc), "scenario.yaml", design))


# ----------------------------------------------------------------------------- brute force
def _prob_a_better(ya, na, yb, nb):
    """P(p_a > p_b) under uniform priors, by scipy quadrature (independent of decision_rules)."""
    fa = stats.beta(1 + ya, 1 + na - ya)
    fb = stats.beta(1 + yb, 1 + nb - yb)
    return integrate.quad(lambda x: fa.pdf(x) * fb.cdf(x), 0, 1, limit=200, points=[fa.mean()])[0]


def brute_force_two_arm(p_true, n_trials, rng, power=0.5, threshold=0.99):
    """Thall-Wathen (P(best)^c, c fixed) with looks at 60, 90, ..., 240 and stop at P(best) > thr.

    At a look the patient who triggered it counts only as a responder (a non-responder waits for
    the landmark); once enrolment has ended, the final analysis sees every patient.
    """
    out = {"win_a": 0, "win_b": 0, "n": [], "share_a": []}
    for _ in range(n_trials):
        n = np.zeros(2, int)
        y = np.zeros(2, int)
        alloc = np.array([0.5, 0.5])
        winner = None
        for look_at in (*range(60, 241, 30), "final"):
            seen_n = n.copy()
            while look_at != "final" and n.sum() < look_at:
                arm = 0 if rng.random() < alloc[0] else 1
                success = rng.random() < p_true[arm]
                n[arm] += 1
                y[arm] += success
                seen_n = n.copy()
                seen_n[arm] -= not success  # the last patient's failure is still pending
            pa = _prob_a_better(y[0], seen_n[0], y[1], seen_n[1])
            if pa > threshold:
                winner = 0
                break
            if 1 - pa > threshold:
                winner = 1
                break
            w = np.array([pa, 1 - pa]) ** power
            alloc = w / w.sum()
        out["win_a"] += winner == 0
        out["win_b"] += winner == 1
        out["n"].append(n.sum())
        out["share_a"].append(n[0] / n.sum())
    return out


@pytest.mark.slow
def test_two_arm_rar_matches_brute_force_simulation():
    truth = {"a": 0.3, "b": 0.5}
    spec = build(two_arm_config(), scenario(truth))
    n_trials = 1200
    res = simulate_chunk(spec, 11, np.arange(n_trials))
    s = summarise(spec, res)
    arms = {a["arm"]: a for a in s["arms"]}
    bf = brute_force_two_arm(np.array([0.3, 0.5]), n_trials, np.random.default_rng(99))

    def close(p_sim, p_bf, n=n_trials):
        se = np.sqrt(p_sim * (1 - p_sim) / n + p_bf * (1 - p_bf) / n)
        return abs(p_sim - p_bf) < 4 * se + 1e-3

    # b superior: a dropped as inferior
    assert close(arms["a"]["prob_drop_inferior"]["estimate"], bf["win_b"] / n_trials)
    assert close(arms["b"]["prob_drop_inferior"]["estimate"], bf["win_a"] / n_trials)
    n_sim = res.n_enrolled.sum(1)
    se = np.sqrt(n_sim.var() / n_trials + np.var(bf["n"]) / n_trials)
    assert abs(n_sim.mean() - np.mean(bf["n"])) < 4 * se
    share = np.mean(bf["share_a"])
    se = np.sqrt(np.var(bf["share_a"]) / n_trials) * np.sqrt(2)
    assert abs(arms["a"]["allocation"]["estimate"] - share) < 4 * se
    assert arms["b"]["allocation"]["estimate"] > 0.5  # RAR favours the better arm


# ----------------------------------------------------------------------------- exact single arm
def single_arm_config(efficacy=0.95, futility=0.1) -> dict:
    return {
        "schema_version": 1,
        "trial": {"name": "single-arm two-stage design"},
        "assessment": {"response_window_days": LANDMARK_DAYS},
        "endpoints": {
            "crc": {"model": {"kind": "independent", "prior": "uniform"}},
            "mortality_30d": {"model": {"kind": "independent", "prior": "uniform"}},
        },
        "arms": {"x": _arm("X", null=0.3, target=0.5, max_n=30)},
        "routing": [{"cohort": "all", "arms": ["x"]}],
        "rules": [
            {"id": "fut", "kind": "futility", "endpoint": "crc", "reference": 0.3, "threshold": futility},
            {
                "id": "eff",
                "kind": "efficacy",
                "endpoint": "crc",
                "reference": 0.3,
                "threshold": efficacy,
                "min_evaluable": 30,
            },
        ],
        "looks": {"every_patients": 10, "max_patients": 30, "max_duration_days": MAX_DURATION_DAYS},
    }


def exact_single_arm(p, efficacy=0.95, futility=0.1):
    """P(graduate) by enumerating every path: futility looks at n = 10, 20, efficacy at 30.

    At the looks at 10 and 20 the patient who triggered the look counts only as a responder (a
    non-responder is pending until the landmark): the futility rule reads ``y`` of ``n`` after a
    last responder, ``y`` of ``n - 1`` after a last non-responder. Futility stops only while the
    arm enrols (not at 30); efficacy is judged once all 30 are known.
    """
    post = lambda y, n: stats.beta.sf(0.3, 1 + y, 1 + n - y)  # noqa: E731
    dist = {0: 1.0}  # distribution of responders among trials still running
    for n in (10, 20):
        new = {}  # (responders among the first n - 1, last a responder) -> probability
        for y, pr in dist.items():
            for k in range(10):
                for last in (0, 1):
                    key = (y + k, last)
                    q = stats.binom.pmf(k, 9, p) * (p if last else 1 - p)
                    new[key] = new.get(key, 0.0) + pr * q
        dist = {}
        for (y, last), pr in new.items():
            if not post(y + last, n - 1 + last) < futility:
                dist[y + last] = dist.get(y + last, 0.0) + pr
    final = {}
    for y, pr in dist.items():
        for k in range(11):
            final[y + k] = final.get(y + k, 0.0) + pr * stats.binom.pmf(k, 10, p)
    return sum(pr for y, pr in final.items() if post(y, 30) > efficacy)


@pytest.mark.parametrize("p_true", [0.3, 0.5])
def test_single_arm_design_reproduces_exact_enumeration(p_true):
    spec = build(single_arm_config(), scenario({"x": p_true}))
    n_trials = 4000
    res = simulate_chunk(spec, 5, np.arange(n_trials))
    got = np.mean(res.status[:, 0] == GRADUATED)
    exact = exact_single_arm(p_true)
    se = np.sqrt(exact * (1 - exact) / n_trials)
    assert abs(got - exact) < 4 * se, (got, exact)
    s = summarise(spec, res)
    key = "type_i_error" if p_true == 0.3 else "power"
    assert s["arms"][0][key]["estimate"] == pytest.approx(got)


# ----------------------------------------------------------------------------- determinism
def test_trial_streams_do_not_depend_on_chunking():
    a = trial_streams(7, np.arange(10), block=1)
    b = trial_streams(7, np.array([3, 4, 5]), block=1)
    assert np.array_equal(a["resp"][3:6], b["resp"])
    assert not np.array_equal(a["resp"][3:6], trial_streams(7, np.array([3, 4, 5]), block=0)["resp"])


def test_chunks_give_the_same_trials():
    spec = build(two_arm_config(), scenario({"a": 0.3, "b": 0.45}))
    whole = simulate_chunk(spec, 3, np.arange(60))
    parts = merge_chunks([simulate_chunk(spec, 3, np.arange(s, s + 20)) for s in (40, 0, 20)])
    for f in ("status", "n_enrolled", "final_mean", "duration"):
        assert np.array_equal(getattr(whole, f), getattr(parts, f), equal_nan=True), f


@pytest.fixture()
def files(tmp_path):
    cfg = tmp_path / "design.yaml"
    cfg.write_text(yaml.safe_dump(two_arm_config()))
    s1 = tmp_path / "null.yaml"
    s1.write_text(yaml.safe_dump(scenario({"a": 0.3, "b": 0.3}, "null")))
    s2 = tmp_path / "alt.yaml"
    s2.write_text(yaml.safe_dump(scenario({"a": 0.3, "b": 0.5}, "alt")))
    return cfg, s1, s2


def test_simulate_cli_outputs(files, tmp_path):
    cfg, s1, s2 = files
    out = tmp_path / "oc"
    res = CliRunner().invoke(
        main,
        ["simulate", "--config", cfg, "--scenario", s1, "--scenario", s2, "--trials", 120, "--out", out,
         "--workers", 1, "--compare-fixed", "--seed", 4],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "oc.json").read_text())
    assert rep["complete"] and rep["seed"] == 4 and rep["trials_requested"] == 120
    assert [s["scenario"] for s in rep["scenarios"]] == ["null", "alt"]
    assert set(rep["scenarios"][0]["allocations"]) == {"adaptive", "fixed"}
    null_a = rep["scenarios"][0]["allocations"]["adaptive"]["arms"][0]
    assert null_a["type_i_error"]["estimate"] is not None and null_a["type_i_error"]["mcse"] >= 0
    fixed_alloc = rep["scenarios"][1]["allocations"]["fixed"]["arms"][0]["allocation"]["estimate"]
    rar_alloc = rep["scenarios"][1]["allocations"]["adaptive"]["arms"][0]["allocation"]["estimate"]
    assert fixed_alloc == pytest.approx(0.5, abs=0.03) and rar_alloc < fixed_alloc
    trials = pd.read_parquet(out / "trials.parquet")
    assert len(trials) == 2 * 2 * 120 * 2
    assert set(trials.columns) >= {"scenario", "allocation", "trial", "arm", "status", "n_enrolled"}
    csv = pd.read_csv(out / "oc.csv")
    assert {"prob_graduate", "prob_graduate_mcse", "type_i_error", "n_mean"} <= set(csv.columns)
    assert "rr-aml-adaptive/simulate/v1" == rep["schema"] and len(rep["config_sha256"]) == 64


def test_the_simulate_program_exits_with_its_output_flushed_and_its_code(files, tmp_path):
    """Run as a program, `simulate` skips the interpreter's teardown (cli._exit_now): the printed
    summary, the files and the exit code (0; 2 for a bad scenario) are all there."""
    import os
    import subprocess
    import sys

    cfg, s1, _ = files
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "adaptive.cli", "simulate", "--config", str(cfg), "--trials", "40", "-q"]
    ok = subprocess.run(
        [*cmd, "--scenario", str(s1), "--out", str(tmp_path / "oc")], env=env, capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.rstrip().endswith("oc.csv and trials.parquet") and "40 trials" in ok.stdout
    assert len(pd.read_parquet(tmp_path / "oc" / "trials.parquet")) == 80
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\n")
    fail = subprocess.run(
        [*cmd, "--scenario", str(bad), "--out", str(tmp_path / "no")], env=env, capture_output=True, text=True
    )
    assert fail.returncode == 2 and "bad.yaml" in fail.stderr and not (tmp_path / "no").exists()


@pytest.mark.slow
def test_dask_local_cluster_equals_in_process_run(files, tmp_path):
    from dask.distributed import LocalCluster

    cfg, s1, _ = files
    from adaptive.simulate.study import simulate_study

    local = simulate_study(cfg, [s1], 90, tmp_path / "local", seed=8, workers=1, chunk_size=90)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        dist = simulate_study(
            cfg, [s1], 90, tmp_path / "dist", seed=8, scheduler=cluster.scheduler_address, chunk_size=25
        )
    assert local["scenarios"] == dist["scenarios"]
    a = pd.read_parquet(tmp_path / "local" / "trials.parquet")
    b = pd.read_parquet(tmp_path / "dist" / "trials.parquet")
    pd.testing.assert_frame_equal(a, b)


def test_interrupt_keeps_finished_trials(files, tmp_path, monkeypatch):
    import adaptive.simulate.run as run

    cfg, s1, _ = files
    real = run.run_chunk
    calls = {"n": 0}

    def flaky(job, seed, trials):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(job, seed, trials)

    monkeypatch.setattr(run, "run_chunk", flaky)
    from adaptive.simulate.study import simulate_study

    rep = simulate_study(cfg, [s1], 100, tmp_path / "oc", workers=1, chunk_size=20)
    assert rep["complete"] is False
    assert rep["scenarios"][0]["allocations"]["adaptive"]["n_trials"] == 40
    assert len(pd.read_parquet(tmp_path / "oc" / "trials.parquet")) == 80


def test_calibrate_finds_threshold_at_target(tmp_path):
    cfg = tmp_path / "single.yaml"
    cfg.write_text(yaml.safe_dump(single_arm_config()))
    sc = tmp_path / "null.yaml"
    sc.write_text(yaml.safe_dump(scenario({"x": 0.3}, "null")))
    res = CliRunner().invoke(
        main,
        ["calibrate", "--config", cfg, "--scenario", sc, "--rule", "eff", "--target", "0.05", "--trials", 800,
         "--out", tmp_path / "cal", "--workers", 1, "--lo", "0.8", "--hi", "0.999", "--iterations", "6"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "cal" / "calibration.json").read_text())
    chosen = rep["chosen_threshold"]
    assert rep["type_i_error_at_chosen"]["type_i_error"] <= 0.05
    below = [e for e in rep["evaluations"] if e["threshold"] < chosen]
    assert below and below[-1]["type_i_error"] > 0.05  # the next lower threshold tried is too permissive
    errors = [e["type_i_error"] for e in rep["evaluations"]]
    assert errors == sorted(errors, reverse=True)  # common random numbers: monotone in the threshold


def test_unknown_stop_rule_is_a_config_error():
    cfg = two_arm_config()
    cfg["looks"]["stop_trial_on"] = ["supp"]
    from adaptive.exceptions import ConfigError

    with pytest.raises(
        ConfigError, match=r"looks.stop_trial_on: rule 'supp' does not exist.*Did you mean 'sup'"
    ):
        parse_config(yaml.safe_dump(cfg), "design.yaml")


def test_a_calibration_override_is_the_design_with_the_config_edited():
    """Calibrating graduate_crc also moves the predictive rule that predicts its success (the
    config builds pp_futility_crc with graduate_crc's threshold): the design calibrate simulates is
    the one the calibrated config gives, so the reported error is the error of that config."""
    from pathlib import Path

    from adaptive.simulate.run import with_thresholds

    path = Path(__file__).resolve().parents[1] / "configs" / "rr_aml.yaml"
    doc = yaml.safe_load(path.read_text())
    doc = {k: v for k, v in doc.items() if not k.startswith("x-")}
    next(r for r in doc["rules"] if r["id"] == "graduate_crc")["threshold"] = 0.93
    edited = parse_config(yaml.safe_dump(doc, sort_keys=False), "rr_aml.yaml")
    original = parse_config(path.read_text(), "rr_aml.yaml")
    overridden = with_thresholds(original, {"graduate_crc": 0.93})
    assert overridden.rules == edited.rules
    pp = next(r for r in overridden.rules if r.id == "pp_futility_crc")
    assert (pp.success_threshold, pp.threshold) == (0.93, 0.01)  # its own threshold is kept
    assert next(r for r in original.rules if r.id == "pp_futility_crc").success_threshold == 0.975
    # overriding the predictive rule itself changes its own threshold only
    pp_only = next(r for r in with_thresholds(original, {"pp_futility_crc": 0.02}).rules if r.id == pp.id)
    assert (pp_only.success_threshold, pp_only.threshold) == (0.975, 0.02)


def test_hierarchical_chunks_give_the_same_trials():
    """The quadrature engine's kernels work data set by data set: the hierarchical CRc model
    (grid weights, summaries, the allocation's P(a better)) gives every trial the same bits
    whichever chunk it is simulated in."""
    cfg = two_arm_config()
    cfg["arms"] = {a: _arm(a.upper(), max_n=40) for a in ("a", "b")}
    cfg["endpoints"]["crc"]["model"] = {
        "kind": "hierarchical",
        "borrowing_group": ["a", "b"],
        "mu": {"mean": 0, "sd": 1},
        "tau": {"dist": "half_normal", "scale": 0.5},
    }
    cfg["looks"].update(every_patients=20, first_after_patients=20, max_patients=80)
    sc = scenario({"a": 0.3, "b": 0.5})
    design = parse_config(yaml.safe_dump(cfg), "design.yaml")
    spec = compile_spec(
        design,
        parse_scenario(yaml.safe_dump(sc), "scenario.yaml", design),
        table_options={"n_mu": 21, "n_tau": 9},  # a coarse grid: small tables, same kernels
    )
    assert spec.endpoints["crc"].kind == "hier"
    whole = simulate_chunk(spec, 5, np.arange(60))
    parts = merge_chunks([simulate_chunk(spec, 5, np.arange(s, s + 20)) for s in (40, 0, 20)])
    assert np.isfinite(whole.final_mean).all()
    assert len(np.unique(whole.n_enrolled[:, 0])) > 1  # the allocation adapted
    for f in ("status", "decision", "n_enrolled", "final_mean", "final_prob_null", "duration"):
        assert np.array_equal(getattr(whole, f), getattr(parts, f), equal_nan=True), f
    # and on threads (the kernels release the GIL; adaptive.simulate.run runs chunks so)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(3) as pool:
        threaded = merge_chunks(
            list(pool.map(lambda s: simulate_chunk(spec, 5, np.arange(s, min(s + 7, 60))), range(0, 60, 7)))
        )
    for f in dataclasses.fields(whole):
        assert np.array_equal(getattr(whole, f.name), getattr(threaded, f.name), equal_nan=True), f.name
