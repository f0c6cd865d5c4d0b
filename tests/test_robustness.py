"""The robustness panel: alternative analyses, fragile decisions, prior ESS, prior-data conflict.

Binary endpoints only (the config without survival): the look's fits are conjugate draws, so no
MCMC runs. The bundled synthetic trial at its README cutoff: arm5 (10/40 CRc at its final
analysis, against a null of 15%) misses graduate_crc (93.8%) but meets it against a null five
points lower: fragile; arm2 graduates under every alternative: not fragile.
"""

from datetime import date

import numpy as np
import pytest
from scipy import integrate, special, stats

from adaptive.data import load_patients
from adaptive.derive import derive
from adaptive.interim import evaluate_rules, fit_endpoints
from adaptive.robustness import (
    annotate,
    beta_binomial_conflict,
    poisson_lognormal_conflict,
    prior_checks,
    robustness_panel,
)
from tests.conftest import EXAMPLE, config_dict, design_from, without_survival

CUTOFF = date(2026, 10, 31)


def _look(doc):
    design = design_from(doc)
    table = load_patients(EXAMPLE, design)
    derived = derive(table, design, CUTOFF)
    fits = fit_endpoints(design, derived, seed=7)
    return design, derived, fits, evaluate_rules(design, derived, fits, table)


@pytest.fixture(scope="module")
def look():
    return _look(without_survival(config_dict()))


def _row(panel, rule, arm):
    return next(r for r in panel["results"] if r["rule"] == rule and arm in r["arms"])


def test_beta_binomial_conflict_is_the_hand_computed_tail():
    a, b, n, y = 0.15, 0.85, 40, 10

    def pmf(k):  # beta-binomial, written out
        return np.exp(special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)
                      + special.betaln(k + a, n - k + b) - special.betaln(a, b))  # fmt: skip

    low = sum(pmf(k) for k in range(y + 1))
    high = sum(pmf(k) for k in range(y, n + 1))
    assert beta_binomial_conflict(y, n, a, b) == pytest.approx(min(1.0, 2 * min(low, high)), rel=1e-10)
    assert beta_binomial_conflict(0, 0, a, b) == 1.0


def test_poisson_lognormal_conflict_against_quadrature():
    d, e, m, s = 3, 4000.0, np.log(np.log(2) / 170), 1.0

    def tail(f):
        return integrate.quad(lambda x: f(e * np.exp(m + s * x)) * stats.norm.pdf(x), -12, 12, limit=200)[0]

    want = min(
        1.0, 2 * min(tail(lambda mu: stats.poisson.cdf(d, mu)), tail(lambda mu: stats.poisson.sf(d - 1, mu)))
    )
    assert poisson_lognormal_conflict(d, e, m, s) == pytest.approx(want, abs=1e-6)


def test_prior_ess_of_a_beta_prior_is_a_plus_b(look):
    design, derived, _, _ = look
    rows = prior_checks(design, derived)
    crc5 = next(r for r in rows if r["arm"] == "arm5" and r["endpoint"] == "crc")
    assert crc5["prior_ess"] == pytest.approx(1.0)  # unit information: Beta(0.15, 0.85)
    assert crc5["prior"] == "Beta(0.15, 0.85)" and crc5["ess_unit"] == "patients"
    mort = next(r for r in rows if r["arm"] == "arm5" and r["endpoint"] == "mortality_30d")
    assert mort["prior_ess"] == pytest.approx(1.0)  # Jeffreys: Beta(1/2, 1/2)
    c = derived.counts["crc"]["arm5"]
    assert crc5["conflict_p"] == pytest.approx(
        beta_binomial_conflict(c.responders, c.n_evaluable, 0.15, 0.85)
    )


def test_a_decision_that_flips_is_fragile_and_one_that_does_not_is_not(look):
    design, derived, fits, results = look
    panel = robustness_panel(design, derived, fits, results)
    arm5 = _row(panel, "graduate_crc", "arm5")
    assert not arm5["fired"] and arm5["fragile"] and arm5["flips_under"] == ["null_minus_5"]
    c = derived.counts["crc"]["arm5"]
    # against a null of 10%: the exact Beta posterior under the config's unit-information prior
    shifted = next(a for a in arm5["alternatives"] if a["analysis"] == "null_minus_5")
    assert shifted["prob"] == pytest.approx(
        stats.beta(0.15 + c.responders, 0.85 + c.n_evaluable - c.responders).sf(0.10)
    )
    arm2 = _row(panel, "graduate_crc", "arm2")
    assert arm2["fired"] and not arm2["fragile"]
    assert {a["analysis"] for a in arm2["alternatives"]} == {
        "uniform_prior",
        "jeffreys_prior",
        "null_minus_5",
        "null_plus_5",
    }
    # harm limits are never moved: only the priors change a harm result
    harm = _row(panel, "harm_mortality_30d", "arm5")
    assert {a["analysis"] for a in harm["alternatives"]} == {"uniform_prior", "jeffreys_prior"}
    recs = annotate(
        [{"arm": "arm5", "sentence": "Complete arm5."}, {"arm": "arm2", "sentence": "Graduate."}],
        panel,
        design,
    )
    assert "Fragile: graduate_crc (graduate) would fire under null_minus_5" in recs[0]["sentence"]
    assert recs[0]["fragile"] == [
        {"rule": "graduate_crc", "action": "graduate", "flips_under": ["null_minus_5"]}
    ]
    assert "fragile" not in recs[1]


def test_panel_values_equal_looks_run_with_the_alternative_config(look):
    """uniform_prior in the panel = a look whose config puts a uniform prior on CRc (both exact)."""
    design, derived, fits, results = look
    panel = robustness_panel(design, derived, fits, results)
    doc = without_survival(config_dict())
    doc["endpoints"]["crc"]["model"]["prior"] = "uniform"
    doc["sensitivity"]["analyses"] = []
    _, _, _, alt_results = _look(doc)
    for arm in ("arm2", "arm5"):  # arm1 has too few evaluable for graduate_crc
        alt = next(r for r in alt_results if r.rule == "graduate_crc" and r.arms == (arm,))
        got = next(
            a for a in _row(panel, "graduate_crc", arm)["alternatives"] if a["analysis"] == "uniform_prior"
        )
        assert alt.mcse == 0.0 and got["prob"] == pytest.approx(alt.prob, abs=1e-12)
        assert got["fired"] == alt.fired


def test_no_declared_analyses_no_panel_rows(look):
    doc = without_survival(config_dict())
    doc["sensitivity"] = {"analyses": []}
    design, derived, fits, results = _look(doc)
    panel = robustness_panel(design, derived, fits, results)
    assert panel["results"] == [] and panel["priors"]


def test_an_alternative_with_the_looks_own_priors_reproduces_every_exact_result():
    """binary_prior: unit_information is CRc's own prior and the comparison's: the panel's values
    are then the look's exact results themselves (the same Beta, the same quadrature grid)."""
    doc = without_survival(config_dict())
    doc["sensitivity"]["analyses"] = [{"id": "same_prior", "binary_prior": "unit_information"}]
    design, derived, fits, results = _look(doc)
    panel = robustness_panel(design, derived, fits, results)
    rows = [r for r in panel["results"] if r["endpoint"] == "crc" and r["kind"] != "predictive_futility"]
    assert {"superiority", "efficacy", "futility"} <= {r["kind"] for r in rows}
    for row in rows:
        (alt,) = row["alternatives"]
        assert alt["prob"] == pytest.approx(row["prob"], abs=1e-12), (row["rule"], row["arms"])
        assert alt["fired"] == row["fired"] and not row["fragile"]
