"""The simulator's survival posterior (models.survival_batch) against independent computations.

* One interval: the model is one-dimensional per arm; the decision probabilities equal a fine
  grid integration written here (and :mod:`models.survival_exact`).
* Several intervals with shape groups: the fifth-degree cubature over the shape agrees with
  4,096-point quasi-Monte Carlo importance sampling (a different integration of the same
  posterior), and, in a slow test, with NUTS fits of the PyMC model the interim uses (decision
  probabilities within 0.01).
* The simulator's event and exposure counts equal :func:`models.survival.split_exposure` on the
  same patients.
"""

import numpy as np
import pytest
from scipy import stats

from adaptive.simulate.kernels import survival_counts
from models.survival import SurvivalData, split_exposure
from models.survival_batch import SurvivalBatch, overlap, walk_matrix

CUTS = (0, 30, 60, 120, 240, 365, 730)
LN2 = np.log(2.0)


def _grid_posterior(d, e, m, s, n=40001):
    """Posterior of ``x = log h`` on a fine grid, independent of the module under test.

    Returns the grid, the trapezoid weights and the distribution function at the grid points
    (cumulative trapezoid rule, normalised).
    """
    centre = np.log((d + 0.5) / e) if e > 0 else m
    x = np.linspace(min(centre, m) - 12 * s, max(centre, m) + 8 * s, n)
    logp = d * x - e * np.exp(x) + stats.norm.logpdf(x, m, s)
    f = np.exp(logp - logp.max())
    cdf = np.concatenate([[0.0], np.cumsum((f[1:] + f[:-1]) / 2)])
    w = np.full(n, 1.0)
    w[[0, -1]] = 0.5
    w = w * f
    return x, w / w.sum(), cdf / cdf[-1]


def _data(rng, n_sets, arms, groups_early, follow):
    """Random data sets: exponential deaths (some arms with extra early deaths), uniform censoring."""
    ev, ex = [], []
    names = tuple(f"a{k}" for k in range(arms))
    for _ in range(n_sets):
        arm, time, event = [], [], []
        for k in range(arms):
            n = rng.integers(3, 45)
            t = rng.exponential(rng.uniform(120, 500) / LN2, n)
            if groups_early[k]:
                t = np.where(rng.random(n) < 0.12, rng.uniform(1, 60, n), t)
            c = rng.uniform(1, follow, n)
            arm += [names[k]] * n
            time.append(np.minimum(t, c))
            event.append((t <= c).astype(float))
        sd = SurvivalData.from_times(names, CUTS, np.array(arm), np.concatenate(time), np.concatenate(event))
        ev.append(sd.events)
        ex.append(sd.exposure)
    return np.stack(ev), np.stack(ex)


def test_walk_matrix_is_the_centred_random_walk():
    a = walk_matrix(4, 0.5)
    eps = np.array([1.0, -2.0, 0.5])
    g = np.concatenate([[0.0], np.cumsum(0.5 * eps)])
    assert np.allclose(a @ eps, g - g.mean())


def test_overlap_extends_the_last_interval():
    assert np.allclose(overlap(CUTS, 100), [30, 30, 40, 0, 0, 0])
    assert np.allclose(overlap(CUTS, 1000), [30, 30, 60, 120, 125, 635])


@pytest.mark.parametrize(
    ("d", "e"), [(0, 0.0), (0, 500.0), (2, 800.0), (12, 3000.0), (25, 4000.0), (60, 9000.0)]
)
def test_one_interval_is_exact(d, e):
    m = np.log(LN2 / 200.0)
    batch = SurvivalBatch((0, 730), np.array([m, m]), 1.0, 0.5)
    events = np.array([[[d], [7.0]]], float)
    exposure = np.array([[[e], [2500.0]]])
    post = batch.posterior(events, exposure)
    x, _, cdf0 = _grid_posterior(d, e, m, 1.0)
    for t in (30.0, 120.0, 200.0, 400.0, 900.0):
        # median > t  <=>  h < ln 2 / t
        want = np.interp(np.log(LN2 / t), x, cdf0)
        assert post.prob_median_above(0, t)[0] == pytest.approx(want, abs=5e-4)
    # P(h_0 / h_1 < r): the two arms' grids, independently
    x1, w1, _ = _grid_posterior(7, 2500.0, m, 1.0)
    for r in (0.5, 1.0, 1.7):
        want = np.sum(w1 * np.interp(x1 + np.log(r), x, cdf0, left=0.0, right=1.0))
        assert post.prob_hr_below(0, 1, r)[0] == pytest.approx(want, abs=5e-4)


def test_cubature_agrees_with_quasi_monte_carlo_importance_sampling():
    rng = np.random.default_rng(7)
    early = (False, False, True, True)
    events, exposure = _data(rng, 40, 4, early, follow=500)
    meds = np.array([170.0, 200.0, 271.0, 271.0])
    m = np.log(LN2 / meds)
    common = dict(cut_points=CUTS, level_means=m, level_sd=1.0, smoothing_sd=0.5, groups=(0, 0, 1, 1))
    rule = SurvivalBatch(**common).posterior(events, exposure)
    qmc = SurvivalBatch(**common, method="qmc", n_draws=4096).posterior(events, exposure)
    for k in range(4):
        got, ref = rule.prob_median_above(k, meds[k]), qmc.prob_median_above(k, meds[k])
        assert np.max(np.abs(got - ref)) < 0.003
    for a, b, r in ((3, 2, 1.0), (0, 1, 0.8)):
        assert np.max(np.abs(rule.prob_hr_below(a, b, r) - qmc.prob_hr_below(a, b, r))) < 0.003


def test_no_data_gives_the_prior():
    m = np.log(LN2 / np.array([170.0, 300.0]))
    batch = SurvivalBatch(CUTS, m, 1.0, 0.5, groups=(0, 0))
    post = batch.posterior(np.zeros((1, 2, 6)), np.zeros((1, 2, 6)))
    # with the shape at its prior, P(median > benchmark) = P(H(benchmark) < ln 2) by simulation
    rng = np.random.default_rng(3)
    eps = rng.standard_normal((200_000, 5))
    gamma = eps @ walk_matrix(6, 0.5).T
    eta = rng.normal(m[0], 1.0, 200_000)
    h_t = np.exp(eta) * (np.exp(gamma) @ overlap(CUTS, 170.0))
    assert post.prob_median_above(0, 170.0)[0] == pytest.approx(np.mean(h_t < LN2), abs=0.004)
    # the two arms' levels are independent a priori: P(eta_0 < eta_1) = Phi((m1 - m0) / sqrt 2)
    assert post.prob_hr_below(0, 1)[0] == pytest.approx(stats.norm.cdf((m[1] - m[0]) / np.sqrt(2)), abs=1e-3)


def test_arms_not_asked_for_and_groups_are_refused():
    batch = SurvivalBatch(CUTS, np.zeros(3), 1.0, 0.5, groups=(0, 0, 1))
    post = batch.posterior(np.zeros((1, 3, 6)), np.ones((1, 3, 6)), need=[0, 2])
    with pytest.raises(ValueError, match="not among the arms asked for"):
        post.prob_median_above(1, 100.0)
    with pytest.raises(ValueError, match="one shape group"):
        post.prob_hr_below(0, 2)
    with pytest.raises(ValueError, match=r"\(T, 3, 6\)"):
        batch.posterior(np.zeros((1, 2, 6)), np.zeros((1, 2, 6)))


def test_survival_counts_equal_split_exposure():
    rng = np.random.default_rng(5)
    n = 60
    arrival = np.sort(rng.uniform(0, 900, n))[None, :]
    arm_of = rng.integers(-1, 3, n)[None, :]  # -1: not enrolled
    death = rng.exponential(300, n)[None, :]
    dropout = np.where(rng.random(n) < 0.2, rng.uniform(0, 500, n), np.inf)[None, :]
    when = np.array([1000.0])
    ev, ex = survival_counts(
        np.array([0]), np.array([n]), arm_of, arrival, death, dropout, when, 730.0, np.asarray(CUTS, float), 3
    )
    for k in range(3):
        sel = arm_of[0] == k
        obs = np.minimum(np.minimum(when[0] - arrival[0, sel], 730.0), dropout[0, sel])
        event = death[0, sel] <= obs
        time = np.where(event, death[0, sel], obs)
        d, e = split_exposure(time, event, CUTS)
        assert np.allclose(ev[0, k], d)
        assert np.allclose(ex[0, k], e)


@pytest.mark.slow
def test_decision_probabilities_match_the_pymc_fit():
    """Against NUTS fits of the interim's model (4 chains x 4,000 draws: MCSE about 0.004)."""
    from models.sampling import SamplerSettings
    from models.survival import PiecewiseExponential

    rng = np.random.default_rng(11)
    meds = np.array([170.0, 200.0, 271.0, 271.0])
    groups = (0, 0, 1, 1)
    events, exposure = _data(rng, 4, 4, (False, False, True, True), follow=600)
    batch = SurvivalBatch(CUTS, np.log(LN2 / meds), 1.0, 0.5, groups=groups)
    post = batch.posterior(events, exposure)
    model = PiecewiseExponential(
        kind="independent", level_median_days=tuple(meds), level_sd=1.0, smoothing_sd=0.5, shape_groups=groups
    )
    arms = ("a0", "a1", "a2", "a3")
    for i in range(len(events)):
        data = SurvivalData(arms, CUTS, events[i], exposure[i], events[i].sum(1) + 1, np.zeros(4))
        idata = model.fit(data, seed=1, settings=SamplerSettings(chains=4, draws=4000, tune=1000))
        med = idata.posterior["median"].values.reshape(-1, 4)
        eta = idata.posterior["eta"].values.reshape(-1, 4)
        for k in range(4):
            assert post.prob_median_above(k, meds[k])[i] == pytest.approx(
                np.mean(med[:, k] > meds[k]), abs=0.01
            )
        assert post.prob_hr_below(3, 2)[i] == pytest.approx(np.mean(eta[:, 3] < eta[:, 2]), abs=0.01)
        assert post.prob_hr_below(0, 1, 0.8)[i] == pytest.approx(
            np.mean(eta[:, 0] - eta[:, 1] < np.log(0.8)), abs=0.01
        )
