"""A look's conjugate endpoints are computed exactly, not from Monte Carlo draws (DSMB review).

The bundled look (examples/rr_aml_synthetic.csv, cutoff 2026-10-31) on the bundled config with its
binary endpoints only (every one ``independent``, so no MCMC: seconds): each decision probability,
estimate and interval of a conjugate endpoint equals the ``scipy.stats.beta`` computed by hand from
the arm's counts and prior, and the randomized DAV vs HAV comparison equals an independent
quadrature. The full look with its survival endpoints is checked through the CLI in
tests/test_interim.py.
"""

from __future__ import annotations

from datetime import date

import arviz as az
import numpy as np
import pytest
from scipy import integrate, special, stats

from adaptive.interim import EXACT_BETA_METHOD, run_interim
from tests.conftest import EXAMPLE, config_dict, with_provenance, without_survival, write_config

CUTOFF = date(2026, 10, 31)


@pytest.fixture(scope="module")
def binary_look(tmp_path_factory):
    """The bundled look, binary endpoints only, in memory (``LookResult``) and on disk."""
    doc = with_provenance(without_survival(config_dict()))
    assert {ep["model"]["kind"] for ep in doc["endpoints"].values()} == {"independent"}
    cfg = write_config(tmp_path_factory.mktemp("cfg"), doc)
    out = tmp_path_factory.mktemp("looks") / "look"
    look = run_interim(cfg, EXAMPLE, CUTOFF, out, seed=42)
    assert look.report["status"] == "ok"
    return look


def _counts(look, endpoint: str, arm: str) -> tuple[float, int, int]:
    """``(null rate, n evaluable, responders)`` of an arm's endpoint as the look derived them."""
    (a,) = [x for x in look.report["arms"] if x["arm"] == arm]
    e = a["endpoints"][endpoint]
    return e["null_rate"], e["n_evaluable"], e["responders"]


def _by_hand(look, endpoint: str, arm: str):
    """The arm's exact posterior from its counts and the endpoint's prior, with scipy.stats.beta."""
    null, n, y = _counts(look, endpoint, arm)
    prior = config_dict()["endpoints"][endpoint]["model"]["prior"]
    a0, b0 = {"unit_information": (null, 1 - null), "jeffreys": (0.5, 0.5)}[prior]
    return stats.beta(a0 + y, b0 + n - y)


def test_crc_decision_probabilities_are_the_exact_beta(binary_look):
    """arm1's CRc futility and efficacy probabilities: the Beta(null + y, 1 - null + n - y) by hand.

    Before, they were the share of 8,000 conjugate draws (arm1: 59.4% for an exact 60.1%).
    """
    null, n, y = _counts(binary_look, "crc", "arm1")
    assert (n, y) == (16, 3)
    post = stats.beta(null + y, 1 - null + n - y)  # unit-information prior Beta(null, 1 - null)
    crc1 = [r for r in binary_look.results if r.endpoint == "crc" and r.arms == ("arm1",)]
    assert {r.kind for r in crc1} >= {"efficacy", "futility"}
    for r in crc1:
        if r.kind in ("efficacy", "futility"):
            assert r.prob == pytest.approx(post.sf(r.extra["reference"]), abs=1e-12), r.rule
            assert r.mcse == 0.0 and not r.mc_uncertain
            assert r.extra["method"] == EXACT_BETA_METHOD
            assert "(exact)" in r.sentence and "draws" not in r.sentence
    eff = next(r for r in crc1 if r.kind == "efficacy")  # P(CRc > its null of 15%)
    assert eff.extra["reference"] == null == 0.15
    assert f"is {100 * post.sf(0.15):.1f}% (exact)" in eff.sentence and "60.1%" in eff.sentence


def test_every_conjugate_rule_result_is_exact(binary_look):
    """Efficacy, futility and harm tiers of every binary endpoint: exact, MCSE 0."""
    for r in binary_look.results:
        if r.kind in ("efficacy", "futility", "harm"):
            post = _by_hand(binary_look, r.endpoint, r.arms[0])
            assert r.prob == pytest.approx(post.sf(r.extra["reference"]), abs=1e-12), (r.rule, r.arms)
            assert r.mcse == 0.0 and r.extra["method"].startswith("exact")
            for tier in r.extra.get("tiers", []):
                assert tier["prob"] == pytest.approx(post.sf(tier["reference"]), abs=1e-12)
                assert tier["mcse"] == 0.0


def test_arm_summaries_are_the_exact_beta(binary_look):
    """Means, medians, equal-tailed 95% intervals and tail probabilities of the endpoint summaries."""
    for arm in binary_look.report["arms"]:
        if arm["status"] == "queued":
            continue
        for ep, e in arm["endpoints"].items():
            post = _by_hand(binary_look, ep, arm["arm"])
            want = {
                "mean": post.mean(),
                "median": post.median(),
                "ci95_low": post.ppf(0.025),
                "ci95_high": post.ppf(0.975),
                "prob_above_null": post.sf(e["null_rate"]),
            }
            for key, v in want.items():  # recommendations.json rounds to 6 decimals
                assert e[key] == pytest.approx(v, abs=5e-7), (arm["arm"], ep, key)
            assert e["mcse"] == 0.0 and e["mcse_prob_above_null"] == 0.0
            assert e["method"] == EXACT_BETA_METHOD


def test_dav_vs_hav_crc_comparison_and_allocation_equal_quadrature(binary_look):
    """P(HAV better than DAV) on the concurrently randomized patients: scipy.integrate.quad to 1e-8.

    The look's comparison and its allocation read the same exact posterior; before, a coarser grid
    (the simulator's) was 2.8e-8 off.
    """
    (cmp,) = [r for r in binary_look.results if r.kind == "superiority" and r.endpoint == "crc"]
    assert set(cmp.arms) == {"arm3", "arm4"} and cmp.extra["better"] == "arm4"
    n, y = cmp.extra["n_evaluable_by_arm"], cmp.extra["responders_by_arm"]
    assert (n["arm4"], y["arm4"], n["arm3"], y["arm3"]) == (43, 28, 38, 17)
    a = {x: 0.35 + y[x] for x in n}  # both arms' null: 35%, prior Beta(0.35, 0.65)
    b = {x: 0.65 + n[x] - y[x] for x in n}

    def f(u):  # density of logit p_hav times P(p_dav < p_hav)
        dens = np.exp(
            a["arm4"] * special.log_expit(u)
            + b["arm4"] * special.log_expit(-u)
            - special.betaln(a["arm4"], b["arm4"])
        )
        return dens * stats.beta.cdf(special.expit(u), a["arm3"], b["arm3"])

    want = sum(
        integrate.quad(f, lo, hi, epsabs=1e-14, epsrel=1e-12)[0] for lo, hi in ((-np.inf, 0.6), (0.6, np.inf))
    )
    assert cmp.prob == pytest.approx(want, abs=1e-8) and cmp.mcse == 0.0
    assert cmp.extra["prob_arm4_better"] == pytest.approx(want, abs=1e-8)
    assert cmp.extra["method"] == EXACT_BETA_METHOD and "(exact)" in cmp.sentence
    pb = binary_look.report["allocation"]["fit_no_target"]["inputs"]["prob_best"]
    assert pb["arm4"] == pytest.approx(want, abs=5e-7) and pb["arm3"] == pytest.approx(1 - want, abs=5e-7)


def test_posterior_netcdf_keeps_the_draws_and_says_the_decisions_were_exact(binary_look):
    crc = az.InferenceData.from_netcdf(binary_look.out / "posterior.nc", base_group="crc")
    attrs = crc.posterior.attrs
    assert "exact" in attrs["decisions"] and "not from these draws" in attrs["decisions"]
    arms = [str(x) for x in crc.posterior["p"].arm.values]
    null, n, y = _counts(binary_look, "crc", "arm1")
    i = arms.index("arm1")
    assert np.asarray(attrs["posterior_a"])[i] == pytest.approx(null + y)
    assert np.asarray(attrs["posterior_b"])[i] == pytest.approx(1 - null + n - y)
    assert crc.posterior["p"].shape[-1] == len(arms)  # the draws are kept as a record
