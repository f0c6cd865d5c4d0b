"""Survival rules in the simulator against a brute-force simulation written here from scratch.

A two-arm randomized design on overall survival alone: exponential deaths, calendar looks every
90 days, a hazard-ratio rule (drop the arm with the higher hazard when P(HR < 1) > 0.95, at least
10 events per arm) and a median-futility rule (drop an arm while it enrols when P(median OS >
its benchmark) < 0.10, at least 10 events). With one interval the model is one-dimensional per
arm, so the brute force computes each look's posterior on its own fine grid (numpy only), with its
own patients, follow-up and randomization. The operating characteristics must agree within Monte
Carlo error.
"""

import numpy as np
import pytest
import yaml
from scipy import stats

from adaptive.config import parse_config
from adaptive.scenario import parse_scenario
from adaptive.simulate.engine import compile_spec, simulate_chunk, survival_rules_not_simulated
from adaptive.simulate.summary import summarise
from decision_rules.vocabulary import Action

LN2 = np.log(2.0)
ACCRUAL = 8.0  # patients per month
EVERY = 90  # days between looks
DURATION = 700  # days of enrolment
FOLLOW_UP = 730
PRIOR_MEDIAN, PRIOR_SD = 200.0, 1.0
HR_THRESHOLD, FUT_THRESHOLD, MIN_EVENTS = 0.95, 0.10, 10
BENCHMARK = 200.0


def _arm(label):
    return {
        "label": label,
        "max_n": 1000,
        "response_landmark_days": 1,
        "rates": {
            "crc": {"null_rate": 0.3, "target_rate": 0.5},
            "mortality_30d": {"null_rate": 0.05, "limit_rate": 0.5},
        },
        "survival_benchmarks": {"os_median_days": BENCHMARK},
    }


def os_config(futility=True) -> dict:
    rules = [
        {
            "id": "hr_os",
            "kind": "hazard_ratio",
            "endpoint": "os",
            "arms": ["b", "a"],
            "threshold": HR_THRESHOLD,
            "min_events": MIN_EVENTS,
        }
    ]
    if futility:
        rules.append(
            {
                "id": "fut_os",
                "kind": "survival_futility",
                "endpoint": "os",
                "reference": "benchmark",
                "threshold": FUT_THRESHOLD,
                "min_events": MIN_EVENTS,
                "arms": ["a", "b"],
            }
        )
    return {
        "schema_version": 1,
        "trial": {"name": "two-arm OS design"},
        "assessment": {"response_window_days": 1, "follow_up_days": FOLLOW_UP},
        "endpoints": {
            "crc": {"model": {"kind": "independent", "prior": "uniform"}},
            "mortality_30d": {"model": {"kind": "independent", "prior": "uniform"}},
        },
        "survival": {
            "cut_points_days": [0, FOLLOW_UP],
            "endpoints": {
                "os": {
                    "model": {
                        "kind": "independent",
                        "level": {"median_days": PRIOR_MEDIAN, "sd": PRIOR_SD},
                        "smoothing_sd": 0.5,
                    }
                }
            },
        },
        "arms": {"a": _arm("A"), "b": _arm("B")},
        "routing": [
            {"cohort": "all", "arms": ["a", "b"], "allocation": {"a": 1, "b": 1}, "reference_arm": "a"}
        ],
        "rules": rules,
        "looks": {"every_days": EVERY, "max_duration_days": DURATION, "final_analysis": False},
    }


def _exponential(median):
    """Scenario truth with a constant hazard: 30/60-day mortality and median of one exponential."""
    h = LN2 / median
    return {
        "cr": 0.3,
        "cri": 0.0,
        "pr": 0.0,
        "ne": 0.0,
        "mortality_30d": float(1 - np.exp(-30 * h)),
        "mortality_60d": float(1 - np.exp(-60 * h)),
        "median_os_days": median,
    }


def os_scenario(medians: dict[str, float]) -> dict:
    return {
        "name": "os",
        "accrual_per_month": ACCRUAL,
        "response_days": [0, 0],
        "dropout_per_year": 0.0,
        "prevalence": {"new_drug_eligible": 0, "idh1": 0, "flt3": 0, "prior_venetoclax_3m": 0},
        "arms": {a: _exponential(m) for a, m in medians.items()},
    }


def build(cfg, sc):
    design = parse_config(yaml.safe_dump(cfg), "design.yaml")
    return compile_spec(design, parse_scenario(yaml.safe_dump(sc), "scenario.yaml", design))


# ----------------------------------------------------------------------------- brute force
_X = np.linspace(-14.0, 2.0, 8001)  # log hazard per day


def _posterior(d, e, m):
    """Distribution function of the log hazard on a fine grid (Normal(m, 1) prior, d events in e days)."""
    logp = d * _X - e * np.exp(_X) + stats.norm.logpdf(_X, m, PRIOR_SD)
    f = np.exp(logp - logp.max())
    cdf = np.concatenate([[0.0], np.cumsum((f[1:] + f[:-1]) / 2)])
    return f / f.sum(), cdf / cdf[-1]


def brute_force(medians, n_trials, rng, futility=True):
    m = np.log(LN2 / PRIOR_MEDIAN)
    h = LN2 / np.asarray(medians)
    gap = 30.4375 / ACCRUAL
    out = {"drop_inferior": np.zeros(2), "drop_futility": np.zeros(2), "n": []}
    for _ in range(n_trials):
        arrival, arm, death = [], [], []
        t = 0.0
        is_open = [True, True]
        look = EVERY
        while True:
            t += rng.exponential(gap)
            while look < t and look <= DURATION:  # the looks before this arrival
                arr, ar, de = np.array(arrival), np.array(arm), np.array(death)
                events, exposure = np.zeros(2), np.zeros(2)
                for k in range(2):
                    sel = ar == k
                    obs = np.minimum(look - arr[sel], FOLLOW_UP)
                    events[k] = np.sum(de[sel] <= obs)
                    exposure[k] = np.sum(np.minimum(de[sel], obs))
                post = [_posterior(events[k], exposure[k], m) for k in range(2)]
                closing = [None, None]
                if is_open[0] and is_open[1] and events.min() >= MIN_EVENTS:
                    # P(HR_{b:a} < 1) = P(x_b < x_a) = sum_a w_a F_b(x_a)
                    p_b_better = np.sum(post[0][0] * post[1][1])
                    p_a_better = 1.0 - p_b_better
                    if max(p_a_better, p_b_better) > HR_THRESHOLD:
                        closing[0 if p_b_better > p_a_better else 1] = "drop_inferior"
                if futility:  # futility outranks inferiority (decision_rules.vocabulary.PRECEDENCE)
                    for k in range(2):
                        if is_open[k] and events[k] >= MIN_EVENTS:
                            # P(median > benchmark) = P(h < ln 2 / benchmark)
                            p = np.interp(np.log(LN2 / BENCHMARK), _X, post[k][1])
                            if p < FUT_THRESHOLD:
                                closing[k] = "drop_futility"
                for k in range(2):
                    if closing[k] is not None:
                        is_open[k] = False
                        out[closing[k]][k] += 1
                look += EVERY
            if t > DURATION or not any(is_open):
                break
            open_arms = [k for k in range(2) if is_open[k]]
            k = open_arms[0] if len(open_arms) == 1 else int(rng.random() < 0.5)
            arrival.append(t)
            arm.append(k)
            death.append(rng.exponential(1.0 / h[k]))
        out["n"].append(len(arrival))
    return out


def test_the_bundled_config_simulates_every_rule(design):
    assert survival_rules_not_simulated(design) == {}


def test_bundled_scenarios_place_os_against_the_benchmarks(design):
    """`global_null`: every arm's median OS at its benchmark (the reference of futility_os);
    `all_effective`: every arm futility_os covers above it (HR below 0.83); `dav_better`: DAV better on OS."""
    from pathlib import Path

    from adaptive.scenario import load_scenario

    folder = Path(__file__).resolve().parents[1] / "configs" / "scenarios"
    futility = next(r for r in design.rules if r.id == "futility_os")
    null = load_scenario(folder / "global_null.yaml", design)
    effective = load_scenario(folder / "all_effective.yaml", design)
    for a in design.arm_ids:
        bench = design.arm(a).survival_benchmarks.get("os")
        assert null.arms[a].median_os_days == bench
        if a in futility.references:
            assert effective.arms[a].median_os_days >= bench / 0.83
    better = load_scenario(folder / "dav_better.yaml", design)
    assert better.arms["arm3"].median_os_days > better.arms["arm4"].median_os_days


@pytest.mark.parametrize("arm", ["arm1", "arm2", "arm5"])
def test_one_null_family_puts_exactly_one_arm_at_its_itt_null(design, arm):
    """configs/scenarios/one_null: each graduating arm at its ITT CRc null, every other at its target."""
    from pathlib import Path

    from adaptive.scenario import load_scenario
    from adaptive.simulate.engine import compile_spec

    folder = Path(__file__).resolve().parents[1] / "configs" / "scenarios" / "one_null"
    spec = compile_spec(design, load_scenario(folder / f"{arm}_null.yaml", design))
    itt = dict(zip(spec.arms, spec.truth["crc_itt"], strict=True))
    for a in design.arm_ids:
        rates = design.arm(a).rates["crc"]
        want = rates.null_rate if a == arm else rates.target_rate
        assert abs(itt[a] - want) <= 0.005, (a, itt[a], want)


def test_equal_effective_makes_the_randomized_pair_equal_while_both_work(design):
    """configs/scenarios/equal_effective.yaml: DAV and HAV at their CRc target (ITT) and one median OS."""
    from pathlib import Path

    from adaptive.scenario import load_scenario
    from adaptive.simulate.engine import compile_spec

    path = Path(__file__).resolve().parents[1] / "configs" / "scenarios" / "equal_effective.yaml"
    sc = load_scenario(path, design)
    spec = compile_spec(design, sc)
    itt = dict(zip(spec.arms, spec.truth["crc_itt"], strict=True))
    assert abs(itt["arm3"] - itt["arm4"]) <= 0.005 and abs(itt["arm3"] - 0.60) <= 0.005
    assert sc.arms["arm3"].median_os_days == sc.arms["arm4"].median_os_days == 400


@pytest.mark.parametrize(("medians", "futility"), [((200.0, 300.0), False), ((150.0, 200.0), True)])
def test_os_rules_match_brute_force_simulation(medians, futility):
    n_trials = 800
    spec = build(os_config(futility), os_scenario({"a": medians[0], "b": medians[1]}))
    res = simulate_chunk(spec, 3, np.arange(n_trials))
    s = summarise(spec, res)
    arms = {a["arm"]: a for a in s["arms"]}
    bf = brute_force(medians, n_trials, np.random.default_rng(17), futility)

    def close(p_sim, p_bf):
        se = np.sqrt((p_sim * (1 - p_sim) + p_bf * (1 - p_bf)) / n_trials)
        return abs(p_sim - p_bf) < 4 * se + 0.005

    for k, a in enumerate(("a", "b")):
        for action in ("drop_inferior", "drop_futility"):
            assert close(arms[a][f"prob_{action}"]["estimate"], bf[action][k] / n_trials), (a, action)
    # the rules fire and are named: without futility b (longer survival) is selected over a in
    # most trials; with it, a (median 150 days against a benchmark of 200) is mostly dropped as futile
    if futility:
        assert arms["a"]["prob_drop_futility"]["estimate"] > 0.5
        assert set(arms["a"]["by_rule"][str(Action.DROP_FUTILITY)]) == {"fut_os"}
    else:
        assert arms["a"]["prob_drop_inferior"]["estimate"] > 0.5
    assert set(arms["a"]["by_rule"][str(Action.DROP_INFERIOR)]) == {"hr_os"}
    n_sim = res.n_enrolled.sum(1)
    se = np.sqrt((n_sim.var() + np.var(bf["n"])) / n_trials)
    assert abs(n_sim.mean() - np.mean(bf["n"])) < 4 * se


# ----------------------------------------------------------------------------- randomized patients only
def _filled_design(max_n_a=40):
    """The two-arm OS design with arm a closing at ``max_n_a``: b then takes patients unrandomized."""
    cfg = os_config(futility=False)
    cfg["arms"]["a"]["max_n"] = max_n_a
    return build(cfg, os_scenario({"a": 200.0, "b": 200.0}))


def test_hr_counts_are_the_concurrently_randomized_patients():
    """``survival_counts(..., since=)`` against a loop over the patients written here (split_exposure)."""
    from adaptive.simulate.engine import _Chunk
    from models.survival import split_exposure

    spec = _filled_design()
    chunk = _Chunk(spec, 3, np.arange(12))
    chunk.run()
    pts = chunk.patients
    rows = np.arange(12)
    when = np.full(12, 900.0)
    since = np.where(rows % 3 == 0, 0.0, 120.0)
    sm = spec.survival["os"]
    d, e, _, _ = pts.survival_counts(rows, when, sm, since=since)
    cuts = np.asarray(sm.cut_points)
    unrandomized = 0
    for t in rows:
        n = pts.ptr[t]
        arm, arr = pts.arm_of[t, :n], pts.arrival[t, :n]
        rand = pts.randomized[t, :n]
        unrandomized += int(((arm == 1) & ~rand).sum())
        for k in range(2):
            keep = (arm == k) & rand & (arr >= since[t]) & (arr <= when[t])
            obs = np.minimum(np.minimum(when[t] - arr[keep], FOLLOW_UP), pts.dropout[t, :n][keep])
            death = pts.death[t, :n][keep]
            ev, ex = split_exposure(np.minimum(death, obs), death <= obs, cuts)
            assert np.allclose(d[t, k], ev) and np.allclose(e[t, k], ex), (t, k)
    assert unrandomized > 0  # b took patients unrandomized once a was full: the filter matters here


def test_hr_rule_reads_randomized_patients_only_in_simulation(monkeypatch):
    """Without unrandomized patients on the pair the filter changes no bit; with them it does."""
    from adaptive.simulate import patients as sim_patients
    from adaptive.simulate.engine import simulate_chunk

    full = sim_patients.Patients.survival_counts

    def every_patient(self, rows, when, sm, since=None):
        return full(self, rows, when, sm)

    def both(spec):
        res = simulate_chunk(spec, 5, np.arange(300))
        with monkeypatch.context() as m:
            m.setattr(sim_patients.Patients, "survival_counts", every_patient)
            old = simulate_chunk(spec, 5, np.arange(300))
        return res, old

    res, old = both(build(os_config(futility=False), os_scenario({"a": 200.0, "b": 300.0})))
    # here a patient is unrandomized only once the rule (or no rule) has closed the other arm
    for f in ("status", "decision", "decision_rule", "decision_time", "n_enrolled"):
        assert np.array_equal(getattr(res, f), getattr(old, f), equal_nan=f == "decision_time"), f
    res, old = both(_filled_design(max_n_a=30))
    assert (res.n_enrolled[:, 1] > res.n_randomized[:, 1]).mean() > 0.5
    changed = (res.decision_time != old.decision_time) & ~(
        np.isnan(res.decision_time) & np.isnan(old.decision_time)
    )
    assert changed.any()
