"""The simulator's exact posterior engine (models.batch) against independent computations."""

import numpy as np
import pytest
from scipy import integrate, special, stats

from decision_rules import DrawsPosterior
from decision_rules.beta import beta_prob_best, beta_prob_better
from models.batch import HierarchicalBatch
from models.binary import BinaryData, Exnex, HierarchicalLogistic
from models.exact import hierarchical_summary
from models.sampling import SamplerSettings

NULL = np.array([0.15, 0.35, 0.35, 0.08])
NMAX = np.array([20, 24, 24, 16])
THR = np.stack([NULL, NULL + 0.2], axis=1)


@pytest.fixture(scope="module")
def hier():
    return HierarchicalBatch(NULL, NMAX, THR, compare=[1, 2])


@pytest.fixture(scope="module")
def exnex():
    return HierarchicalBatch(NULL, NMAX, THR, compare=[1, 2], w=0.5)


def random_counts(rng, t):
    n = rng.integers(0, NMAX + 1, size=(t, len(NULL)))
    y = rng.binomial(n, rng.uniform(0.05, 0.7, size=(t, len(NULL))))
    return n, y


# ----------------------------------------------------------------------------- Beta
@pytest.mark.parametrize(
    ("a1", "b1", "a2", "b2"),
    [
        (12, 9, 7, 14),
        (0.35, 20.65, 3.35, 17.65),
        (120, 121, 118, 123),
        (1, 1, 1, 1),
        (0.5, 40, 0.5, 40),
        (200, 40, 3, 2),
    ],
)
def test_beta_prob_better_matches_scipy_quad(a1, b1, a2, b2):
    got = float(beta_prob_better(a1, b1, a2, b2))
    want = integrate.quad(
        lambda x: stats.beta.pdf(x, a2, b2) * stats.beta.sf(x, a1, b1), 0, 1, limit=500, epsabs=1e-13
    )[0]
    assert got == pytest.approx(want, abs=1e-6)


def test_beta_prob_best_three_arms_against_monte_carlo():
    rng = np.random.default_rng(0)
    n = np.array([[30, 30, 30], [10, 40, 25]])
    y = np.array([[12, 15, 14], [2, 20, 12]])
    pb = beta_prob_best(1 + y, 1 + n - y)
    assert np.allclose(pb.sum(1), 1.0, atol=1e-6)
    for t in range(2):
        draws = rng.beta(1 + y[t], 1 + n[t] - y[t], size=(400_000, 3))
        mc = np.bincount(draws.argmax(1), minlength=3) / 400_000
        assert np.allclose(pb[t], mc, atol=4 * np.sqrt(0.25 / 400_000) + 1e-4)
    low = beta_prob_best(1 + y, 1 + n - y, higher_is_better=False)
    draws = rng.beta(1 + y[1], 1 + n[1] - y[1], size=(400_000, 3))
    assert np.allclose(low[1], np.bincount(draws.argmin(1), minlength=3) / 400_000, atol=0.003)


def test_beta_duplicate_rows_and_open_masks():
    a = np.array([[9, 12]] * 5 + [[9, 12]], float)
    b = np.array([[13, 10]] * 5 + [[23, 10]], float)
    p = beta_prob_best(a, b)
    assert np.all(p[:5] == p[0]) and p[5, 0] != p[0, 0]
    closed = beta_prob_best(a, b, is_open=np.array([[True, False]] * 6))
    assert np.all(closed[:, 0] == 1.0) and np.all(closed[:, 1] == 0.0)


# ----------------------------------------------------------------------------- hierarchical tables
@pytest.mark.parametrize("w", [None, 0.5])
def test_tables_match_fine_quadrature(hier, exnex, w):
    """Tabulated grid vs the converged single-data-set quadrature (delta-first integration).

    The stated accuracy of the simulator's engine: posterior means within 5e-4 and tail
    probabilities within 5e-3 (typically 1e-4; the worst cases are thresholds in the tail of a
    narrow pooled posterior of mu at small tau). Finer ``n_mu`` shrinks the error.
    """
    model = hier if w is None else exnex
    rng = np.random.default_rng(1)
    n, y = random_counts(rng, 6)
    post = model.posterior(n, y)
    mean, _ = post.mean_var()
    pa = post.prob_above()
    for t in range(len(n)):
        for j in range(THR.shape[1]):
            ex = hierarchical_summary(n[t], y[t], NULL, thresholds=THR[:, j], w=w)
            assert np.abs(pa[t, :, j] - ex.prob_above).max() < 5e-3
        assert np.abs(mean[t] - ex.mean).max() < 5e-4
        if w is not None:
            assert np.abs(post.prob_exchangeable()[t] - ex.prob_exchangeable).max() < 5e-4


def test_exnex_weight_override_per_arm(exnex):
    n = np.array([[10, 20, 20, 5]])
    y = np.array([[2, 12, 6, 0]])
    w = np.array([0.5, 0.5, 0.5, 0.0])  # arm 3 non-exchangeable (e.g. during its burn-in)
    got = exnex.posterior(n, y, w=w).prob_above()[0, :, 0]
    ex = hierarchical_summary(n[0], y[0], NULL, w=w)
    assert np.abs(got - ex.prob_above).max() < 5e-3


def test_variance_matches_importance_sampling():
    rng = np.random.default_rng(5)
    m = 1_000_000
    n = np.array([12, 20, 20, 8])
    y = np.array([3, 12, 7, 1])
    mu = rng.normal(0, 1, m)
    tau = np.abs(rng.normal(0, 0.5, m))
    p = special.expit(special.logit(NULL) + mu[:, None] + tau[:, None] * rng.normal(size=(m, 4)))
    lw = stats.binom.logpmf(y, n, p).sum(1)
    wts = np.exp(lw - lw.max())
    wts /= wts.sum()
    var_is = wts @ p**2 - (wts @ p) ** 2
    model = HierarchicalBatch(NULL, NMAX, THR)
    _, var = model.posterior(n[None], y[None]).mean_var()
    assert np.allclose(var[0], var_is, rtol=0.03)


@pytest.mark.parametrize("w", [None, 0.5])
def test_pair_probability_matches_importance_sampling(hier, exnex, w):
    """P(p_1 > p_2) by the kernel vs weighting 2 million prior draws (fully independent code)."""
    model = hier if w is None else exnex
    rng = np.random.default_rng(11)
    m = 2_000_000
    cases = [
        (np.array([12, 20, 22, 8]), np.array([3, 12, 7, 1])),
        (np.array([20, 24, 10, 16]), np.array([4, 9, 5, 2])),
    ]
    for n, y in cases:
        mu = rng.normal(0, 1, m)
        tau = np.abs(rng.normal(0, 0.5, m))
        d = mu[:, None] + tau[:, None] * rng.normal(size=(m, 4))
        if w is not None:
            d = np.where(rng.random((m, 4)) < w, d, rng.normal(0, 2.0, (m, 4)))
        p = special.expit(special.logit(NULL) + d)
        lw = stats.binom.logpmf(y, n, p).sum(1)
        wts = np.exp(lw - lw.max())
        wts /= wts.sum()
        ess = 1 / np.sum(wts**2)
        want = wts @ (p[:, 1] > p[:, 2])
        got = model.posterior(n[None], y[None]).prob_better(1, 2)[0]
        assert abs(got - want) < 4 * np.sqrt(want * (1 - want) / ess) + 1e-3
        low = model.posterior(n[None], y[None]).prob_better(1, 2, higher_is_better=False)[0]
        assert low == pytest.approx(1 - got)


def test_pair_probability_symmetry_and_ties(hier):
    n = np.array([[10, 20, 20, 5], [10, 20, 12, 5]])
    y = np.array([[2, 9, 9, 0], [2, 9, 4, 0]])
    post = hier.posterior(n, y)
    assert post.prob_better(1, 2)[0] == pytest.approx(0.5, abs=1e-6)
    assert post.prob_better(1, 2)[1] + post.prob_better(2, 1)[1] == pytest.approx(1.0, abs=1e-5)
    best = post.prob_best([1, 2])
    assert np.allclose(best.sum(1), 1.0)


def test_counts_outside_table_are_refused(hier):
    with pytest.raises(ValueError, match="outside the tabulated range"):
        hier.posterior(np.array([[21, 0, 0, 0]]), np.array([[0, 0, 0, 0]]))


def test_uncompared_arm_refused(hier):
    with pytest.raises(ValueError, match="not declared in `compare`"):
        hier.posterior(np.array([[1, 1, 1, 1]]), np.array([[0, 0, 0, 0]])).prob_better(0, 1)


# ----------------------------------------------------------------------------- kernels vs numpy
def _reference_posterior(model, n, y, w):
    """Grid weights and summaries straight from the tables in numpy, every grid point kept.

    The kernels' formulas written out once more (log-sum-exp per arm, no cutoff, no skipped
    exponentials): what the fused kernels must reproduce to rounding and their cutoffs.
    """
    rows = model._rows(n, y) + model._row0  # (T, K)
    ll = model._ll[rows]  # (T, K, G)
    nll = model._nll[rows][..., None]
    wk = np.broadcast_to(np.ones(n.shape) if w is None else np.asarray(w, float), n.shape)[..., None]
    with np.errstate(divide="ignore"):
        a = np.log(wk) + ll  # exchangeable, given the grid point
        b = np.log1p(-wk) + nll  # non-exchangeable
    both = np.logaddexp(a, b)
    log_w = model.log_prior + both.sum(1)
    weights = np.exp(log_w - log_w.max(1, keepdims=True))
    weights /= weights.sum(1, keepdims=True)
    pi = np.exp(a - both)  # P(exchangeable | grid point, data), (T, K, G)

    def average(ex, nex):  # ex (T, K, G, ...), nex (T, K, ...)
        extra = (slice(None),) * 3 + (None,) * (ex.ndim - 3)
        mixed = pi[extra] * ex + (1 - pi[extra]) * nex[:, :, None]
        return np.einsum("tg,tkg...->tk...", weights, mixed)

    mean = average(model._mean[rows], model._nmean[rows])
    m2 = average(model._m2[rows], model._nm2[rows])
    pa = average(model._pa[rows], model._npa[rows])
    return weights, pi, mean, m2 - mean**2, pa


def _reference_prob_better(model, weights, pi, n, y, i, j):
    """``P(p_i > p_j)`` per data set over every grid point: the per-node division form of the
    interpolated CDF (x on b's node scale node by node), cumulative Simpson, trapezoid in d."""
    du, hw = model.du, model.half_width
    nodes = -hw + du * np.arange(model.n_nodes)
    trap = np.full(model.n_nodes, du)
    trap[[0, -1]] = du / 2

    def cdf(dens):
        out = np.zeros_like(dens)
        out[..., 1] = du * (5 * dens[..., 0] + 8 * dens[..., 1] - dens[..., 2]) / 12
        for k in range(2, dens.shape[-1]):
            out[..., k] = out[..., k - 2] + du * (dens[..., k - 2] + 4 * dens[..., k - 1] + dens[..., k]) / 3
        return out

    def inner(fa, ma, sa, fb, mb, sb, c):
        x = ma[..., None] + sa[..., None] * nodes + c
        xx = ((x - mb[..., None]) / sb[..., None] + hw) / du
        i0 = np.clip(np.floor(xx).astype(int), 0, model.n_nodes - 2)
        s = xx - i0
        cb = cdf(fb)
        take = lambda v, i: np.take_along_axis(v, i, -1)  # noqa: E731
        herm = (
            (2 * s**3 - 3 * s**2 + 1) * take(cb, i0)
            + (s**3 - 2 * s**2 + s) * du * take(fb, i0)
            + (-2 * s**3 + 3 * s**2) * take(cb, i0 + 1)
            + (s**3 - s**2) * du * take(fb, i0 + 1)
        )
        f = np.where(xx <= 0, 0.0, np.where(xx >= model.n_nodes - 1, 1.0, herm))
        return (trap * fa * f).sum(-1)

    parts = []
    for arm in (i, j):
        t_id = model._arm_table[arm]
        tab, nex = model._tables[t_id], model._nex[t_id]
        r = n[:, arm] * (n[:, arm] + 1) // 2 + y[:, arm]
        ex = (tab.density[r].astype(float), tab.mode[r], tab.scale[r])  # (T, G, nodes), (T, G)
        if nex is None:
            ne = ex
        else:
            ne = tuple(
                np.broadcast_to(v[r], e.shape)
                for v, e in zip((nex.density.astype(float), nex.mode, nex.scale), ex, strict=True)
            )
        parts.append((ex, ne))
    c = float(model.offset[i] - model.offset[j])
    (ei, ni), (ej, nj) = parts
    a, b = pi[:, i], pi[:, j]
    p = (
        a * b * inner(*ei, *ej, c)
        + a * (1 - b) * inner(*ei, *nj, c)
        + (1 - a) * b * inner(*ni, *ej, c)
        + (1 - a) * (1 - b) * inner(*ni, *nj, c)
    )
    return (weights * p).sum(1)


@pytest.mark.parametrize("w", [None, 0.5, "per_arm"])
def test_kernels_match_numpy_reference_on_random_counts(hier, exnex, w):
    """Fused kernels (arm-major sums, cutoffs, skipped exponentials, node-scale recurrence) vs
    the same posterior written out in numpy over every grid point: every quantity a rule or an
    allocation reads agrees to 1e-6 (the comparisons' own mass cutoff), far inside 1e-4."""
    model = hier if w is None else exnex
    rng = np.random.default_rng(2026)
    n, y = random_counts(rng, 40)
    wk = None if w is None else (np.array([0.0, 0.3, 1.0, 0.5]) if w == "per_arm" else None)
    post = model.posterior(n, y, w=wk)
    weights, pi, mean, var, pa = _reference_posterior(
        model, n, y, model.w if wk is None and w is not None else wk
    )
    assert np.abs(post.weights - weights).max() < 1e-12
    got_mean, got_var = post.mean_var()
    assert np.abs(got_mean - mean).max() < 1e-7
    assert np.abs(got_var - var).max() < 1e-7
    assert np.abs(post.prob_above() - pa).max() < 1e-7
    want = _reference_prob_better(model, weights, pi, n, y, 1, 2)
    assert np.abs(post.prob_better(1, 2) - want).max() < 2e-6


# ----------------------------------------------------------------------------- against PyMC
BATTERY = [
    (np.array([5, 8, 9, 4]), np.array([1, 4, 2, 0])),
    (np.array([20, 24, 24, 16]), np.array([6, 14, 8, 3])),
    (np.array([12, 0, 18, 10]), np.array([0, 0, 11, 1])),
    (np.array([20, 15, 15, 6]), np.array([20, 5, 9, 6])),
]


@pytest.mark.slow
@pytest.mark.parametrize("w", [None, 0.5])
def test_every_decision_probability_within_001_of_pymc(hier, exnex, w):
    """The issue's battery: exact engine vs NUTS fits of the same model, within 0.01."""
    model = hier if w is None else exnex
    pymc_model = HierarchicalLogistic() if w is None else Exnex(w=w)
    # 4 x 10000 draws: MCSE of a probability <= 0.003, so 0.01 is a real test of agreement
    settings = SamplerSettings(chains=4, draws=10000, tune=1000, target_accept=0.95)
    arms = ("a", "b", "c", "d")
    for seed, (n, y) in enumerate(BATTERY):
        idata = pymc_model.fit(BinaryData(arms, n, y, NULL), seed=seed, settings=settings)
        draws = DrawsPosterior(idata.posterior["p"])
        post = model.posterior(n[None], y[None])
        pa = post.prob_above()[0]
        for k, arm in enumerate(arms):
            for j in range(THR.shape[1]):
                assert abs(draws.prob_above(arm, THR[k, j]).prob - pa[k, j]) < 0.01, (seed, arm, j)
        assert abs(draws.prob_better("b", "c").prob - post.prob_better(1, 2)[0]) < 0.01, seed
