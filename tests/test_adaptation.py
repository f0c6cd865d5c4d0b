"""Platform adaptation inside `run_interim`, and the model-level checks behind it."""

from datetime import date

import numpy as np
import pytest
import xarray as xr

from adaptive.interim import run_interim
from adaptive.recommend import ACTIONS
from decision_rules import DrawsPosterior, DrawsPredictive
from models.binary import BinaryData, Exnex
from models.exact import hierarchical_summary
from models.sampling import SamplerSettings
from tests.conftest import (
    EXAMPLE,
    config_dict,
    design_from,
    rows_frame,
    small_sampler,
    without_survival,
    write_csv,
)

CUTOFF = date(2026, 10, 31)


def fast_doc() -> dict:
    # binary endpoints only: survival fits at 250 draws miss the ESS limits (tests/test_interim.py
    # covers adaptation and survival together on the bundled config)
    doc = small_sampler(without_survival(config_dict()), draws=250, tune=200)
    for ep in doc["endpoints"].values():
        ep["model"] = {"kind": "independent"}
    return doc


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    look = run_interim(design_from(fast_doc()), EXAMPLE, CUTOFF, tmp_path_factory.mktemp("l") / "look")
    return look.report


def test_report_has_recommendations_allocation_and_queue(report):
    assert report["look"] is None and report["data_changes"] is None  # no ledger
    keys = list(report)
    assert keys.index("recommendations") < keys.index("arms")
    recs = report["recommendations"]
    assert {r["action"] for r in recs} <= set(ACTIONS)
    assert all(r["sentence"] and isinstance(r["arms"], list) and "rules" in r for r in recs)
    per_arm = [r["arm"] for r in recs if r["action"] not in ("adjust_randomization", "add_arm")]
    assert per_arm == [f"arm{i}" for i in range(1, 8)]  # every open arm once, arm8 is queued
    for r in recs:
        if r["action"] in ("drop_futility", "drop_harm", "drop_inferior", "graduate"):
            assert any(x["fired"] for x in r["rules"])
    alloc = report["allocation"]["fit_no_target"]
    assert sum(alloc["probabilities"].values()) == pytest.approx(1.0)
    assert alloc["reference"] == {"arm3": 0.5, "arm4": 0.5}
    assert alloc["previous"] == {"arm3": 0.5, "arm4": 0.5}
    assert alloc["previous_source"] == "the cohort's fixed allocation (no earlier look)"
    assert alloc["kind"] == "thall_wathen" and alloc["inputs"]["N"] == 120
    assert abs(alloc["probabilities"]["arm3"] - 0.5) <= 0.15 + 1e-9  # the cap from the fixed ratio
    conc = alloc["concurrent"]
    assert conc["window"]["to"] == "2026-10-31" and conc["excluded"]["not_randomized"] >= 0
    assert set(conc["arms"]) == {"arm3", "arm4"} and conc["comparisons"][0]["rule"] == "dav_vs_hav_crc"
    (q,) = report["queue"]
    assert q["arm"] == "arm8" and not q["opens"]
    assert report["arms"][-1]["entry"] == q


def test_predictive_rule_is_exact_on_an_independent_endpoint(report):
    arm1 = report["arms"][0]
    (pp,) = [r for r in arm1["rules"] if r["kind"] == "predictive_futility"]
    assert pp["extra"]["method"] == "exact beta-binomial enumeration" and pp["mcse"] == 0
    assert pp["extra"]["remaining"] == 40 - arm1["endpoints"]["crc"]["n_evaluable"]


def test_a_late_entrant_starts_on_its_own_prior():
    """Derived from patient rows: arm8 opened with one evaluable patient is fitted with w = 0."""
    from adaptive.borrowing import model_for_look
    from adaptive.data import PatientTable, validate_frame
    from adaptive.derive import derive
    from tests.test_recommend import borrowing_doc

    design = design_from(borrowing_doc())  # EXNEX on CRc within a group that includes arm8
    df = rows_frame(
        {"arm": "arm8", "new_drug_eligible": "true", "best_response": "CR", "response_on": "2026-02-01"},
        {"arm": "arm3", "best_response": "NR", "response_on": "2026-02-01"},
    )
    frame, warns = validate_frame(df, design)
    derived = derive(PatientTable(frame, None, "x", warns), design, CUTOFF)
    model, info = model_for_look(design, derived, "crc")
    assert info["arm8"]["in_borrowing_burn_in"] and model.w[-1] == 0.0


def test_patients_in_a_queued_arm_are_flagged(tmp_path):
    rows = [{"arm": "arm3", "best_response": "CR", "response_on": "2026-02-01"} for _ in range(6)]
    rows.append({"arm": "arm8", "new_drug_eligible": "true"})
    data = write_csv(tmp_path, rows_frame(*rows))
    look = run_interim(design_from(fast_doc()), data, CUTOFF, tmp_path / "look")
    assert any("are in arm8, whose status is 'queued'" in w for w in look.report["warnings"])


# ----------------------------------------------------------------------------- model-level (MCMC)
SETTINGS = SamplerSettings(chains=2, draws=2000, tune=1000, target_accept=0.95)


@pytest.mark.slow
def test_new_arm_with_weight_zero_matches_quadrature():
    """EXNEX with w = 0 for a late entrant: the fitted posterior matches quadrature with the same w."""
    data = BinaryData(
        arms=("a", "b", "c", "new"),
        n=np.array([25, 30, 20, 6]),
        y=np.array([8, 14, 5, 4]),
        null_rate=np.array([0.2, 0.3, 0.2, 0.2]),
    )
    w = (0.5, 0.5, 0.5, 0.0)
    idata = Exnex(w=w).fit(data, seed=11, settings=SETTINGS)
    post = DrawsPosterior(idata.posterior["p"])
    exact = hierarchical_summary(data.n, data.y, data.null_rate, w=np.array(w), n_mu=121, n_tau=61)
    for k, arm in enumerate(data.arms):
        assert post.mean(arm) == pytest.approx(exact.mean[k], abs=0.01)
        assert abs(post.prob_above(arm, data.null_rate[k]).prob - exact.prob_above[k]) < 0.02
    # the new arm learns from its own data only: its posterior is the NEX prior times its likelihood
    assert float(idata.posterior["prob_exchangeable"].sel(arm="new").max()) == 0.0
    alone = hierarchical_summary([6], [4], [0.2], w=np.array([0.0]), n_mu=121, n_tau=61)
    assert exact.prob_above[3] == pytest.approx(alone.prob_above[0], abs=1e-6)


@pytest.mark.slow
def test_importance_reweighted_final_posterior_matches_quadrature():
    """Final P(p_k > c | data + Y of m) from reweighted EXNEX draws vs quadrature on the augmented data."""
    data = BinaryData(
        arms=("a", "b", "c"),
        n=np.array([20, 24, 18]),
        y=np.array([7, 9, 3]),
        null_rate=np.array([0.2, 0.3, 0.15]),
    )
    idata = Exnex(w=0.5).fit(data, seed=3, settings=SETTINGS)
    src = DrawsPredictive(DrawsPosterior(idata.posterior["p"]))
    m = 16
    final, mcse, ess = src.reweighted("a", m, 0.2)
    for yy in (2, 4, 6, 8):
        n2, y2 = data.n.copy(), data.y.copy()
        n2[0] += m
        y2[0] += yy
        q = hierarchical_summary(n2, y2, data.null_rate, w=0.5, n_mu=121, n_tau=61).prob_above[0]
        assert abs(final[yy] - q) < 0.02 + 3 * mcse[yy], (yy, final[yy], q, mcse[yy], ess[yy])
    pred = src.predict("a", m, 0.2, 0.975)
    assert pred.critical_count is not None and 0 < pred.estimate.prob < 1
    assert np.all(np.diff(final) > -3 * np.maximum(mcse[1:], mcse[:-1]))  # monotone up to MC error


def test_draws_predictive_from_a_fake_two_arm_posterior():
    rng = np.random.default_rng(0)
    draws = np.stack([rng.beta(8, 14, 4000), rng.beta(12, 10, 4000)], -1).reshape(4, 1000, 2)
    post = DrawsPosterior(xr.DataArray(draws, dims=("chain", "draw", "arm"), coords={"arm": ["x", "y"]}))
    pred = DrawsPredictive(post).predict("y", 0, 0.35, 0.975)
    assert pred.remaining == 0 and pred.estimate.prob in (0.0, 1.0)
