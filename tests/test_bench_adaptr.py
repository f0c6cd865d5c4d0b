"""The adaptr comparison design of ``benchmarks/bench_adaptr.py`` (R itself is not needed here).

The benchmark compares this package with adaptr on adaptr's two-arm design; these tests check
that the design written in this package's vocabulary parses, says what adaptr's defaults say,
and that the per-trial reading of ``trials.parquet`` the comparison relies on (the superior arm,
the analysed sample size) holds on a small simulated study.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import yaml

from adaptive.config import parse_config
from adaptive.scenario import parse_scenario
from adaptive.simulate.study import simulate_study

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_adaptr.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_adaptr", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_adaptr_design_parses_with_adaptr_defaults():
    b = _bench()
    cfg, sc = b.adaptr_two_arm()
    design = parse_config(yaml.safe_dump(cfg), "adaptr_design.yaml")
    scenario = parse_scenario(yaml.safe_dump(sc), "adaptr_example.yaml", design)
    # superiority 0.99 either way (adaptr's superiority = 1 - inferiority with two arms)
    (rule,) = design.rules
    assert rule.threshold == 0.99 and set(rule.arms) == {"A", "B"}
    looks = design.raw.looks
    assert looks.stop_trial_on == ["sup"] and looks.max_patients == 2000 and looks.every_patients == 100
    # soften_power = 1 (allocation proportional to P(best)), no limits, no burn-in
    (alloc,) = design.allocation_rules
    assert (alloc.kind, alloc.power, alloc.min_prob, alloc.max_prob, alloc.burn_in) == (
        "thall_wathen", 1.0, 0.0, 1.0, 0
    )  # fmt: skip
    # undesirable event probabilities 0.20 / 0.18 become response rates 0.80 / 0.82
    assert [scenario.arms[a].cr for a in ("A", "B")] == [0.8, 0.82]


@pytest.mark.slow  # ~15 s on the shared 2-core machine (kernel compilation, 300 trials of 2000 patients)
def test_adaptr_design_reads_back_from_trials_parquet(tmp_path):
    """Sample sizes analysed are 100, 200, ..., 2000; a superior arm only with a stop or at 2000."""
    b = _bench()
    c, s = b.write_design(tmp_path)
    simulate_study(c, [s], 300, tmp_path / "out", seed=3, workers=1, cache_dir=tmp_path / "cache")
    sup, n = b.engine_trials(tmp_path / "out" / "trials.parquet")
    assert len(n) == 300
    assert np.all(n % 100 == 0) and n.min() >= 100 and n.max() == 2000
    assert np.all((sup != "") | (n == 2000))  # trials end early only for superiority
    oc = b.oc_of(sup, n)
    assert 0 < oc["P(superiority)"][0] < 1 and oc["P(stop before 2000)"][0] <= oc["P(superiority)"][0]
