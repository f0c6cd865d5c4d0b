"""Allocation over time in the simulator (issue 14, item 6): the allocation in force after each
look, per trial, and its summary in oc.json and the simulation report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_oc_errors import build, three_arm_config
from test_simulate import scenario

from adaptive.config import load_config
from adaptive.scenario import load_scenario
from adaptive.simulate.engine import STATUS_NAMES, TRACE_LOOKS, compile_spec, simulate_chunk
from adaptive.simulate.summary import TRACE_MIN_SHARE, summarise
from tests.conftest import CONFIG, SCENARIOS


@pytest.fixture(scope="module")
def bundled():
    design = load_config(CONFIG)
    spec = compile_spec(design, load_scenario(SCENARIOS / "realistic.yaml", design))
    return spec, simulate_chunk(spec, 3, np.arange(150))


def test_the_trace_starts_at_the_configured_ratio_and_stays_a_distribution(bundled):
    spec, res = bundled
    assert res.alloc_trace.shape == (150, TRACE_LOOKS + 1, len(spec.arms))
    pair = [spec.arms.index(a) for a in ("arm3", "arm4")]
    others = [i for i in range(len(spec.arms)) if i not in pair]
    assert np.all(res.alloc_trace[:, 0, pair] == 0.5) and np.isnan(res.alloc_trace[:, :, others]).all()
    traced = np.isfinite(res.look_day)
    total = res.alloc_trace[:, :, pair].sum(2)[traced]
    # after every traced look the cohort randomizes by a distribution, or is closed (both arms 0)
    assert np.all((np.abs(total - 1) < 1e-6) | (total == 0))
    assert 0 < np.mean(total == 0) < 1
    # the looks are in calendar order, and the trace stops with the trial's interim looks
    days = np.where(traced, res.look_day, np.inf)
    assert np.all(np.diff(days[:, : traced.sum(1).min()], axis=1) > 0)
    assert np.all(traced.sum(1) - 1 <= np.minimum(res.n_looks, TRACE_LOOKS))


def test_a_closed_arm_gets_no_patients_after_its_decision(bundled):
    spec, res = bundled
    for name in ("arm3", "arm4"):
        i = spec.arms.index(name)
        looks = res.decision_look[:, i]
        for t in np.nonzero(looks > 0)[0][:40]:
            after = res.alloc_trace[t, looks[t] :, i]
            assert np.all(after[np.isfinite(after)] == 0), (name, t, STATUS_NAMES[res.status[t, i]])


def test_the_summary_equals_a_recount_from_the_trace(bundled):
    spec, res = bundled
    block = summarise(spec, res)["allocation_over_time"]["fit_no_target"]
    assert block["arms"] == ["arm3", "arm4"]
    pair = [spec.arms.index(a) for a in block["arms"]]
    rows = []
    for t in range(len(res.trial)):
        for j in range(TRACE_LOOKS + 1):
            p = res.alloc_trace[t, j, pair].astype(float)
            if np.isfinite(res.look_day[t, j]):
                rows.append(
                    {
                        "look": j,
                        "day": float(res.look_day[t, j]),
                        "arm3": p[0],
                        "arm4": p[1],
                        "open": (p > 0).sum(),
                    }
                )
    everything = pd.DataFrame(rows)
    frame = everything[everything["open"] == 2]
    counts = frame.groupby("look").size()
    kept = counts[counts >= TRACE_MIN_SHARE * len(res.trial)]
    assert block["look"] == kept.index.tolist() and block["n_trials"] == kept.tolist()
    one = everything[everything["open"] == 1].groupby("look").size()
    assert block["n_one_arm_open"] == [int(one.get(j, 0)) for j in block["look"]]
    assert sum(block["n_one_arm_open"]) > 0  # an arm closes (a decision or max_n) in some trials
    means = frame.groupby("look")[["day", "arm3", "arm4"]].mean().loc[kept.index]
    assert block["day_mean"] == pytest.approx(means["day"].tolist())
    sds = frame.groupby("look")["arm4"].std().loc[kept.index]
    assert [v["estimate"] for v in block["probabilities"]["arm4"]] == pytest.approx(means["arm4"].tolist())
    mcse = [v["mcse"] for v in block["probabilities"]["arm4"]]
    assert mcse == pytest.approx((sds / np.sqrt(kept)).tolist(), nan_ok=True)
    # response-adaptive, averaged over trials with both arms open: the better arm (arm4 here)
    # gets more than half from some look on and never falls back below half
    est = [v["estimate"] for v in block["probabilities"]["arm4"]]
    assert max(est) > 0.55 and min(est[1:]) >= 0.5


def test_fixed_allocation_shares_equally_among_the_open_arms():
    spec = build(three_arm_config(), scenario({"x": 0.3, "y": 0.3, "z": 0.5}))
    res = simulate_chunk(spec, 5, np.arange(80))
    traced = np.isfinite(res.look_day)
    probs = res.alloc_trace[traced]  # (looks traced, 3)
    for p in probs:
        open_ = p[p > 0]
        assert len(open_) == 0 or np.allclose(open_, 1 / len(open_))
    block = summarise(spec, res)["allocation_over_time"]["all"]
    assert [round(v["estimate"], 6) for v in block["probabilities"]["x"]][0] == pytest.approx(1 / 3)
