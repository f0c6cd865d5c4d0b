"""The simulator's shortcuts give the numbers of the general path, bit for bit (issue 14).

* The two-arm P(best) kernel treats its arms symmetrically: ``P(arm 2 best)`` of the pair
  ``(1, 2)`` is exactly ``P(arm 2 best)`` of the pair ``(2, 1)``, so one quadrature serves both
  directions (:func:`adaptive.simulate.looks.prob_better`).
* A comparison whose Beta posterior is the endpoint's own shares the allocation's quadrature
  (:func:`adaptive.simulate.looks.comparison`): whole chunks are identical with and without it.
* The routing matrix computes only the characteristics the routing steps read; it equals the
  direct computation from the uniforms (characteristics as strings, every one computed).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import yaml

from adaptive.config import load_config, parse_config
from adaptive.scenario import load_scenario, parse_scenario
from adaptive.simulate import engine, looks
from adaptive.simulate.engine import compile_spec, simulate_chunk
from adaptive.simulate.kernels import enrolled_between
from adaptive.simulate.patients import Patients, trial_streams
from decision_rules import beta
from tests.conftest import CONFIG, SCENARIOS


def _two_arm_docs() -> tuple[dict, dict]:
    """The two-arm design of benchmarks/bench_simulate.py (Thall-Wathen, stop at P(best) > 0.99)."""
    arms = {a: {"label": a.upper(), "max_n": 120, "rates": {"crc": {"null_rate": 0.3, "target_rate": 0.5}}}
            for a in ("a0", "a1")}  # fmt: skip
    cfg = {
        "schema_version": 1,
        "trial": {"name": "two-arm RAR"},
        "endpoints": {"crc": {"model": {"kind": "independent", "prior": "uniform"}}},
        "arms": arms,
        "routing": [{"cohort": "all", "arms": ["a0", "a1"], "allocation": {"a0": 1, "a1": 1}}],
        "rules": [{"id": "sup", "kind": "superiority", "endpoint": "crc", "arms": ["a0", "a1"], "threshold": 0.99}],
        "randomization": [{"cohort": "all", "kind": "thall_wathen", "endpoint": "crc", "power": "n/(2N)"}],
        "looks": {"every_patients": 30, "first_after_patients": 60, "max_patients": 240, "stop_trial_on": ["sup"]},
    }  # fmt: skip
    sc = {
        "name": "alt",
        "accrual_per_month": 30,
        "response_days": [0, 0],
        "prevalence": {"new_drug_eligible": 0, "idh1": 0, "flt3": 0, "prior_venetoclax_3m": 0},
        "arms": {a: {"cr": cr, "cri": 0, "pr": 0, "ne": 0, "mortality_30d": 1e-6, "mortality_60d": 2e-6,
                     "median_os_days": 1e6} for a, cr in (("a0", 0.3), ("a1", 0.45))},
    }  # fmt: skip
    return cfg, sc


def _two_arm_spec(prior: str = "uniform"):
    cfg, sc = _two_arm_docs()
    cfg["endpoints"]["crc"]["model"]["prior"] = prior  # jeffreys: no whole parameter, the grid
    design = parse_config(yaml.safe_dump(cfg), "two_arm.yaml")
    return compile_spec(design, parse_scenario(yaml.safe_dump(sc), "alt.yaml", design))


def _assert_same_chunks(a, b):
    for f in dataclasses.fields(a):
        x, y = np.asarray(getattr(a, f.name)), np.asarray(getattr(b, f.name))
        assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True), f.name


def test_two_arm_prob_best_is_symmetric_bit_for_bit():
    g = np.random.default_rng(5)
    a = np.floor(g.uniform(1, 130, (4000, 2)))
    b = np.floor(g.uniform(1, 130, (4000, 2)))
    a[:2], b[:2] = [[0.5, 1.0], [1.0, 1.0]], [[0.5, 120.0], [1.0, 1.0]]
    fwd = beta.beta_prob_best(a, b)
    rev = beta.beta_prob_best(a[:, ::-1], b[:, ::-1])
    assert np.array_equal(fwd[:, 1], rev[:, 0]) and np.array_equal(fwd[:, 0], rev[:, 1])
    # and the two directions are one distribution: they sum to 1 up to the quadrature error
    assert np.max(np.abs(fwd.sum(1) - 1.0)) < 1e-7


@pytest.mark.parametrize("prior, kernel_name", [("uniform", "_pair_exact"), ("jeffreys", "_pair_logit_grid")])
def test_shared_comparison_equals_the_general_path(monkeypatch, prior, kernel_name):
    spec = _two_arm_spec(prior)
    rows = []
    kernel = getattr(beta, kernel_name)

    def counting(a, b, out):
        rows.append(len(a))
        return kernel(a, b, out)

    monkeypatch.setattr(beta, kernel_name, counting)
    shared = simulate_chunk(spec, 3, np.arange(400))
    n_shared = sum(rows)
    rows.clear()
    general = looks.comparison
    monkeypatch.setattr(looks, "comparison", lambda *args: general(*args[:6], None))
    alone = simulate_chunk(spec, 3, np.arange(400))
    _assert_same_chunks(shared, alone)
    assert n_shared < 0.6 * sum(rows)  # the rule and the allocation shared their quadrature


def _routing_reference(prev, steps, u_cov):
    """The routing matrix as the scenario defines it: every characteristic, karyotype as strings."""
    flt3 = u_cov[..., 2] < prev.flt3
    tkd = flt3 & (u_cov[..., 3] < prev.flt3_tkd_given_flt3)
    groups = list(prev.karyotype_risk)
    cum = np.cumsum([float(prev.karyotype_risk[x]) for x in groups])
    karyo = np.array(groups)[
        np.minimum(np.searchsorted(cum / cum[-1], u_cov[..., 7], side="right"), len(groups) - 1)
    ]
    cov = {
        "new_drug_eligible": u_cov[..., 0] < prev.new_drug_eligible,
        "idh1": u_cov[..., 1] < prev.idh1,
        "flt3_itd": flt3 & ~tkd,
        "flt3_tkd": tkd,
        "intensive_eligible": u_cov[..., 4] < prev.intensive_eligible,
        "prior_venetoclax_3m": u_cov[..., 5] < prev.prior_venetoclax_3m,
        "karyotype_risk": karyo,
    }

    def holds(cond):
        out = np.ones(u_cov.shape[:2], bool)
        for c, v in cond.items():
            out &= cov[c] == v
        return out

    mats = []
    for s in steps:
        m = holds(s["when"])
        if s["when_any"]:
            m &= np.logical_or.reduce([holds(alt) for alt in s["when_any"]])
        mats.append(m)
    return np.stack(mats, axis=-1)


@pytest.mark.parametrize(
    "extra", [None, {"karyotype_risk": "adverse"}, {"karyotype_risk": "favorable", "idh1": False}]
)
def test_routing_matrix_equals_the_direct_computation(extra):
    design = load_config(CONFIG)
    spec = compile_spec(design, load_scenario(SCENARIOS / "realistic.yaml", design))
    steps = [dict(s) for s in spec.steps]
    if extra is not None:  # a step that reads the karyotype (the bundled routing does not)
        steps[1] = {**steps[1], "when": {**steps[1]["when"], **extra}}
        steps[-1] = {**steps[-1], "when_any": [{"karyotype_risk": "intermediate"}, {"flt3_tkd": True}]}
    spec = dataclasses.replace(spec, steps=steps)
    u_cov = trial_streams(4, np.arange(300), 0)["cov"]
    got = Patients(spec, 4, np.arange(300))._routing_matrix(u_cov)
    want = _routing_reference(spec.scenario.prevalence, steps, u_cov)
    assert got.dtype == bool and np.array_equal(got, want)
    assert 0 < want.mean() < 1


def test_pilot_does_not_time_the_kernels_loading(monkeypatch, tmp_path):
    """The first call of a chunk in a process loads the compiled kernels: not a per-trial cost."""
    import time

    from adaptive.simulate import run

    calls = []
    real = run.run_chunk

    def slow_first(job, seed, trials):
        calls.append(len(trials))
        if len(calls) == 1:
            time.sleep(2.0)  # as if the kernels were compiled now
        return real(job, seed, trials)

    monkeypatch.setattr(run, "run_chunk", slow_first)
    cfg, sc = _two_arm_docs()
    job = run.Job(yaml.safe_dump(cfg), "c.yaml", yaml.safe_dump(sc), "s.yaml", False, str(tmp_path))
    first, local = run.pilot(job, 10_000, 1, 250, 1)
    assert calls == [run.WARM_UP_TRIALS, 250] and len(first.trial) == 250
    assert local  # 10,000 trials of this design take ~2 s here; counting the 2 s load: ~80 s


def test_enrolled_between_is_the_nonzero_of_the_mask():
    g = np.random.default_rng(8)
    arm_of = np.where(g.uniform(size=(40, 30)) < 0.2, -1, g.integers(0, 3, (40, 30)))
    upto = g.integers(0, 31, 40)
    rows = np.sort(g.choice(40, 25, replace=False))
    before = np.minimum(g.integers(0, 31, 25), upto[rows])
    idx = np.arange(30)
    mask = (idx >= before[:, None]) & (idx < upto[rows][:, None]) & (arm_of[rows] >= 0)
    want_i, want_p = np.nonzero(mask)
    got_i, got_p = enrolled_between(rows, before, upto, arm_of)
    assert np.array_equal(got_i, want_i) and np.array_equal(got_p, want_p) and len(want_i) > 50


def test_passes_change_no_bit(monkeypatch):
    spec = _two_arm_spec()
    whole = simulate_chunk(spec, 5, np.arange(3, 60))
    monkeypatch.setattr(engine, "PASS_TRIALS", 7)
    _assert_same_chunks(simulate_chunk(spec, 5, np.arange(3, 60)), whole)


def test_simulating_a_beta_design_loads_no_heavy_module(tmp_path):
    """`adaptive simulate` of Beta endpoints without survival rules: no PyMC, xarray, scipy.stats.

    Their imports were most of a short command's fixed cost (issue 14).
    """
    import os
    import subprocess
    import sys

    cfg, sc = _two_arm_docs()
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(sc))
    code = (
        "import sys\n"
        "from adaptive.simulate.study import simulate_study\n"
        f"simulate_study({str(tmp_path / 'c.yaml')!r}, [{str(tmp_path / 's.yaml')!r}], 30, "
        f"{str(tmp_path / 'out')!r}, workers=1)\n"
        "heavy = ('pymc', 'pytensor', 'arviz', 'xarray', 'scipy.stats', 'statsmodels', 'dask')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root}
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "out" / "trials.parquet").exists()


def test_prob_best_memo_gives_the_computed_numbers(monkeypatch):
    g = np.random.default_rng(9)  # half-integers (a Jeffreys prior): the grid, which the memo keeps
    a = np.floor(g.uniform(1, 60, (3000, 2))) + 0.5
    b = np.floor(g.uniform(1, 60, (3000, 2))) + 0.5
    want = beta.beta_prob_best(a, b)
    memo: dict = {}
    first = beta.beta_prob_best(a[:2000], b[:2000], memo=memo)
    again = beta.beta_prob_best(a, b, memo=memo)  # two thirds from the memo
    assert np.array_equal(first, want[:2000]) and np.array_equal(again, want)
    memo.clear()
    beta.beta_prob_best(a[:2000], b[:2000], memo=memo)
    monkeypatch.setattr(beta, "MEMO_SIZE", 2500)  # full: starts again, same numbers
    assert np.array_equal(beta.beta_prob_best(a[2000:], b[2000:], memo=memo), want[2000:])
    assert 0 < len(memo) <= 1000


def test_a_spec_reused_across_chunks_gives_the_same_trials():
    looks.PAIR_MEMO.clear()
    spec = _two_arm_spec("jeffreys")
    fresh = simulate_chunk(spec, 4, np.arange(200))
    assert len(looks.PAIR_MEMO) > 0
    _assert_same_chunks(simulate_chunk(spec, 4, np.arange(200)), fresh)  # every row from the memo
    _assert_same_chunks(
        simulate_chunk(_two_arm_spec("jeffreys"), 4, np.arange(100, 200)),
        simulate_chunk(spec, 4, np.arange(100, 200)),
    )
