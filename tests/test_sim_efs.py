"""EFS (ELN 2022) and RFS in the simulator, against independent computations (issue 14, item 1).

* **Counts**: the simulator's EFS and RFS kernels equal :func:`adaptive.survival_data.survival_patient`
  and :meth:`models.survival.SurvivalData.from_times` (the interim's derivation) on the same
  patients, their records written out as dates as of each look.
* **Point mass**: ``P(median > t)`` with the treatment failures' point mass equals a fine-grid
  integration of the log hazard written here with :func:`scipy.integrate.quad` over ``pi`` (one
  interval: exact), and the Gauss-Legendre rule over ``pi`` equals ``quad`` on the same
  integrand (several intervals); in a slow test, NUTS fits of the PyMC model agree within 0.01.
* **Operating characteristics**: a two-arm design with an EFS rule against a brute-force
  simulation written here from scratch (exponential relapse and death, ELN EFS by hand).
* **Which rules are simulated**: EFS and RFS rules are; a rule on ``efs_mrd`` is still listed.
"""

from __future__ import annotations

import copy
from datetime import date, timedelta

import numpy as np
import pytest
from scipy import integrate, stats
from test_sim_survival import build, os_config, os_scenario

from adaptive.endpoints import POINT_MASS_DAYS
from adaptive.simulate.engine import SIMULATED_SURVIVAL, simulate_chunk, survival_rules_not_simulated
from adaptive.simulate.kernels import efs_counts, rfs_counts
from adaptive.simulate.summary import summarise
from adaptive.survival_data import TREATMENT_FAILURE_DAY, survival_patient
from decision_rules.vocabulary import Action
from models.survival import SurvivalData
from models.survival_batch import LN2, POINT_MASS_PRIOR, SurvivalBatch, _cdf, overlap

CUTS = (0, 30, 60, 120, 240, 365, 730)
CATEGORY = ("CR", "CRi", "PR", "NE", "NR")
START = date(2026, 1, 5)


# ============================================================================= counts
def _patients(rng, n):
    """Whole-day patients covering every EFS case: responses after the landmark, dropouts, day-0 events."""
    arrival = np.sort(rng.integers(0, 600, n)).astype(float)
    arm = rng.integers(-1, 2, n)  # -1: not enrolled
    category = rng.choice(5, n, p=[0.35, 0.1, 0.15, 0.15, 0.25])
    response_day = rng.integers(0, 75, n).astype(float)
    death = np.floor(rng.exponential(300, n))
    death = np.where(rng.random(n) < 0.05, response_day, death)  # death on the response day
    dropout = np.where(rng.random(n) < 0.25, np.floor(rng.uniform(0, 400, n)), np.inf)
    relapse = np.where(category <= 1, response_day + np.floor(rng.exponential(200, n)), np.inf)
    return arrival, arm, category, response_day, death, dropout, relapse


def _record(enr_day, category, resp, death, dropout, relapse, cutoff_day):
    """The patient's record as of the cutoff (what the interim reads), built from the times."""
    enr = START + timedelta(days=int(enr_day))
    day = lambda t: enr + timedelta(days=int(t))  # noqa: E731
    tau = cutoff_day - enr_day
    assessed = resp <= min(death, dropout, tau)  # assessed, alive and followed
    rec = {
        "enrolled_on": enr,
        "best_response": CATEGORY[category] if assessed else None,
        "response_on": day(resp) if assessed else None,
        "relapse_on": None,
        "death_on": day(death) if death <= dropout else None,
        "hsct_on": None,
        "mrd_negative": None,
        # followed until dropout, or beyond the cutoff (the data export)
        "last_contact_on": day(dropout) if np.isfinite(dropout) else day(tau + 400),
    }
    if assessed and category <= 1 and relapse <= min(death, dropout):
        rec["relapse_on"] = day(relapse)
    if rec["death_on"] is not None:
        rec["last_contact_on"] = rec["death_on"]
    return rec


@pytest.mark.parametrize("cutoff_day", [40.0, 200.0, 500.0, 900.0, 1400.0])
def test_efs_and_rfs_counts_equal_the_interim_derivation(cutoff_day):
    rng = np.random.default_rng(int(cutoff_day))
    n = 400
    arrival, arm, category, resp, death, dropout, relapse = _patients(rng, n)
    landmark = np.array([28.0, 56.0])
    follow_up = 730.0
    args = (np.array([0]), np.array([n]), arm[None], arrival[None], death[None], dropout[None], relapse[None])
    when = np.array([cutoff_day])
    cuts = np.asarray(CUTS, float)
    ev, ex, n0, d0 = efs_counts(*args, resp[None], category[None], landmark, when, follow_up, cuts, 2, 1.0)
    rev, rex = rfs_counts(*args, resp[None], category[None], when, follow_up, cuts, 2)
    rows = {"efs": [], "rfs": []}
    cutoff = START + timedelta(days=int(cutoff_day))
    for p in np.nonzero((arm >= 0) & (arrival <= cutoff_day))[0]:
        rec = _record(arrival[p], category[p], resp[p], death[p], dropout[p], relapse[p], cutoff_day)
        res = survival_patient(rec, cutoff, int(follow_up), landmark_days=int(landmark[arm[p]]))
        for ep in rows:
            if res[ep] is not None:
                rows[ep].append((str(arm[p]), res[ep]["time"], res[ep]["event"], res[ep]["day0"]))
    for ep, got in (("efs", (ev, ex, n0, d0)), ("rfs", (rev, rex, None, None))):
        a, t, e, z = (np.array(c) for c in zip(*rows[ep], strict=True))
        sd = SurvivalData.from_times(
            ("0", "1"), CUTS, a, t.astype(float), e, z.astype(bool), has_day0=ep == "efs",
            point_mass_days=POINT_MASS_DAYS.get(ep, 0.0),
        )  # fmt: skip
        assert np.allclose(got[0][0], sd.events), ep
        assert np.allclose(got[1][0], sd.exposure), ep
        if ep == "efs":
            assert np.array_equal(got[2][0], sd.n)
            assert np.array_equal(got[3][0], sd.day0_events)
    # the battery covers every case: failures, censored NEs (1 day at risk) and pending patients
    assert d0.sum() > 0 or cutoff_day < 56
    enrolled = int(((arm >= 0) & (arrival <= cutoff_day)).sum())
    assert n0.sum() < enrolled


def test_the_failure_day_is_the_point_mass_day():
    assert TREATMENT_FAILURE_DAY == POINT_MASS_DAYS["efs"]
    assert set(SIMULATED_SURVIVAL) == {"os", "efs", "rfs"}


# ============================================================================= posterior with a point mass
def _grid_cdf(d, e, m, s, n=40001):
    """The log hazard's posterior distribution function on a fine grid (one interval)."""
    centre = np.log((d + 0.5) / e) if e > 0 else m
    x = np.linspace(min(centre, m) - 12 * s, max(centre, m) + 8 * s, n)
    logp = d * x - e * np.exp(x) + stats.norm.logpdf(x, m, s)
    f = np.exp(logp - logp.max())
    cdf = np.concatenate([[0.0], np.cumsum((f[1:] + f[:-1]) / 2)])
    return x, cdf / cdf[-1]


@pytest.mark.parametrize(
    ("n0", "d0", "d", "e", "t"),
    [
        (0, 0, 0, 0.0, 100.0),  # the prior: pi uniform
        (12, 3, 4, 1500.0, 150.0),
        (30, 14, 6, 1200.0, 60.0),  # pi near 1/2
        (40, 5, 20, 5000.0, 200.0),
        (80, 45, 10, 3000.0, 30.0),  # pi above 1/2: P(median > t) small
        (200, 60, 70, 30000.0, 250.0),
    ],
)
def test_point_mass_median_is_exact_with_one_interval(n0, d0, d, e, t):
    """One interval: P(median > t) = int_0^1/2 Beta(pi) P(e^eta t < log 2(1 - pi)) dpi, by quad."""
    m = np.log(LN2 / 200.0)
    batch = SurvivalBatch((0, 730), np.array([m]), 1.0, 0.5, point_mass_days=1.0)
    post = batch.posterior(
        np.array([[[d]]], float), np.array([[[e]]]), n0=np.array([[n0]]), d0=np.array([[d0]])
    )
    x, cdf = _grid_cdf(d, e, m, 1.0)
    a, b = POINT_MASS_PRIOR[0] + d0, POINT_MASS_PRIOR[1] + n0 - d0

    def integrand(pi):
        return stats.beta.pdf(pi, a, b) * np.interp(np.log(np.log(2 * (1 - pi)) / t), x, cdf, left=0.0)

    want = integrate.quad(integrand, 0.0, 0.5, limit=400, points=[min(a / (a + b), 0.49)])[0]
    assert post.prob_median_above(0, t)[0] == pytest.approx(want, abs=6e-4)


def test_point_mass_rule_equals_quad_over_pi():
    """Several intervals: the Gauss-Legendre rule over pi against quad on the same integrand."""
    rng = np.random.default_rng(2)
    from models.survival import split_exposure

    worst = 0.0
    for _ in range(25):
        n0 = int(rng.choice([0, 10, 30, 80, 200, 400]))
        p_true = rng.uniform(0.05, 0.6)
        d0 = int(rng.binomial(n0, p_true))
        med = rng.uniform(100, 500)
        tt = rng.exponential(med / LN2, n0 - d0)
        c = rng.uniform(50, 730, n0 - d0)
        de, ex = split_exposure(np.minimum(tt, c), tt <= c, CUTS)
        batch = SurvivalBatch(CUTS, np.log(LN2 / np.array([200.0, 300.0])), 1.0, 0.5, point_mass_days=1.0)
        post = batch.posterior(
            np.stack([de, de])[None], np.stack([ex, ex])[None], n0=np.array([[n0, 5]]), d0=np.array([[d0, 1]])
        )
        # a reference near the mixture's median, where the probability is not 0 or 1
        t = float(np.clip(np.log(2 * (1 - min(p_true, 0.45))) * med / LN2 * rng.uniform(0.6, 1.4), 2, 700))
        grp, i = post._of(0)
        log_o = np.log(grp["eg"] @ overlap(CUTS, t))

        def g(pi, grp=grp, i=i, log_o=log_o):
            at = np.log(LN2 + np.log1p(-pi)) - log_o
            return np.sum(grp["is"] * _cdf(grp, i, at[..., None])[..., 0], 1)[0]

        a, b = 1 + d0, 1 + n0 - d0
        want = integrate.quad(
            lambda pi, a=a, b=b, g=g: stats.beta.pdf(pi, a, b) * g(pi),
            0.0, 0.5, limit=500, epsabs=1e-11, points=[min(a / (a + b), 0.49)],
        )[0]  # fmt: skip
        worst = max(worst, abs(post.prob_median_above(0, t)[0] - want))
    assert worst < 2e-5


def test_point_mass_needs_its_counts_and_a_reference_after_it():
    batch = SurvivalBatch(CUTS, np.zeros(2), 1.0, 0.5, point_mass_days=1.0)
    with pytest.raises(ValueError, match="exactly when the model has a point mass"):
        batch.posterior(np.zeros((1, 2, 6)), np.ones((1, 2, 6)))
    with pytest.raises(ValueError, match="between 0 and the number of patients"):
        batch.posterior(np.zeros((1, 2, 6)), np.ones((1, 2, 6)), n0=np.array([[3, 3]]), d0=np.array([[4, 0]]))
    post = batch.posterior(
        np.zeros((1, 2, 6)), np.ones((1, 2, 6)), n0=np.array([[3, 3]]), d0=np.array([[1, 0]])
    )
    with pytest.raises(ValueError, match="before the point mass"):
        post.prob_median_above(0, 0.5)
    # the hazard ratio is the continuous part's: the point mass does not change it
    plain = SurvivalBatch(CUTS, np.zeros(2), 1.0, 0.5).posterior(np.zeros((1, 2, 6)), np.ones((1, 2, 6)))
    assert post.prob_hr_below(0, 1)[0] == pytest.approx(plain.prob_hr_below(0, 1)[0], abs=1e-12)


@pytest.mark.slow
def test_point_mass_probabilities_match_the_pymc_fit():
    """Against NUTS fits of the interim's model with EFS's point mass (4 chains x 4,000 draws)."""
    from models.sampling import SamplerSettings
    from models.survival import PiecewiseExponential, split_exposure

    rng = np.random.default_rng(13)
    meds = np.array([240.0, 240.0])
    model = PiecewiseExponential(
        kind="independent", level_median_days=tuple(meds), level_sd=1.0, smoothing_sd=0.5
    )
    batch = SurvivalBatch(CUTS, np.log(LN2 / meds), 1.0, 0.5, point_mass_days=POINT_MASS_DAYS["efs"])
    # references near each data set's median, where the probabilities are not 0 or 1
    cases = (
        (25, 0.3, 200.0, (60.0, 150.0, 240.0)),
        (60, 0.45, 300.0, (30.0, 90.0, 200.0)),
        (40, 0.4, 150.0, (20.0, 60.0)),
    )
    for n, p_fail, med, refs in cases:
        ev, ex, n0, d0 = [], [], [], []
        for k in range(2):
            fail = rng.random(n) < p_fail
            tt = rng.exponential(med * (1.4 if k else 1.0) / LN2, n)
            c = rng.uniform(30, 700, n)
            de, e = split_exposure(np.minimum(tt, c)[~fail], (tt <= c)[~fail], CUTS)
            ev.append(de)
            ex.append(e)
            n0.append(n)
            d0.append(int(fail.sum()))
        data = SurvivalData(
            ("a", "b"), CUTS, np.array(ev), np.array(ex), np.array(n0), np.array(d0), True, 1.0
        )
        idata = model.fit(data, seed=1, settings=SamplerSettings(chains=4, draws=4000, tune=1000))
        med_draws = idata.posterior["median"].values.reshape(-1, 2)
        eta = idata.posterior["eta"].values.reshape(-1, 2)
        post = batch.posterior(np.array(ev)[None], np.array(ex)[None], n0=np.array([n0]), d0=np.array([d0]))
        for k in range(2):
            for t in refs:
                assert post.prob_median_above(k, t)[0] == pytest.approx(
                    np.mean(med_draws[:, k] > t), abs=0.01
                )
        assert post.prob_hr_below(1, 0)[0] == pytest.approx(np.mean(eta[:, 1] < eta[:, 0]), abs=0.01)


# ============================================================================= design and brute force
LANDMARK = 30  # days: the arms' response landmark
RESP_DAY = 20  # every response is assessed on day 20
BENCHMARK_EFS = 60.0
PRIOR_EFS = 240.0
FUT_THRESHOLD, MIN_EVENTS = 0.10, 10
EVERY, DURATION, FOLLOW_UP = 90, 600, 730
ACCRUAL = 8.0


def efs_config(rfs_rule: bool = False) -> dict:
    cfg = os_config(futility=True)
    cfg["survival"]["endpoints"] = {
        ep: {
            "model": {
                "kind": "independent",
                "level": {"median_days": PRIOR_EFS, "sd": 1.0},
                "smoothing_sd": 0.5,
            }
        }
        for ep in ("os", "efs", "rfs")
    }
    for arm in cfg["arms"].values():
        arm["response_landmark_days"] = LANDMARK
        arm["survival_benchmarks"] = {"efs_median_days": BENCHMARK_EFS, "rfs_median_days": 200.0}
    cfg["assessment"]["response_window_days"] = LANDMARK
    cfg["looks"].update({"every_days": EVERY, "max_duration_days": DURATION})
    cfg["rules"] = [
        {
            "id": "fut_efs",
            "kind": "survival_futility",
            "endpoint": "efs",
            "reference": "benchmark",
            "threshold": FUT_THRESHOLD,
            "min_events": MIN_EVENTS,
            "arms": ["a", "b"],
        }
    ]
    if rfs_rule:
        cfg["rules"] += [
            {
                "id": "fut_rfs",
                "kind": "survival_futility",
                "endpoint": "rfs",
                "reference": "benchmark",
                "threshold": 0.05,
                "min_events": MIN_EVENTS,
                "arms": ["a", "b"],
            },
        ]
    return cfg


def efs_scenario(truth: dict[str, tuple[float, float, float]]) -> dict:
    """Per arm (CR probability, median OS, median relapse); no PR or NE, responses on day 20."""
    sc = os_scenario({a: t[1] for a, t in truth.items()})
    sc["response_days"] = [RESP_DAY, RESP_DAY]
    for a, (cr, _, relapse) in truth.items():
        sc["arms"][a].update({"cr": cr, "ne": 0.0, "median_relapse_days": relapse})
    return sc


def test_efs_and_rfs_rules_are_simulated():
    import yaml

    from adaptive.config import parse_config

    design = parse_config(yaml.safe_dump(efs_config(rfs_rule=True)), "design.yaml")
    assert survival_rules_not_simulated(design) == {}
    cfg = efs_config()
    cfg["survival"]["endpoints"]["efs_mrd"] = copy.deepcopy(cfg["survival"]["endpoints"]["efs"])
    cfg["rules"].append({**cfg["rules"][0], "id": "fut_mrd", "endpoint": "efs_mrd", "reference": 200})
    design = parse_config(yaml.safe_dump(cfg), "design.yaml")
    reasons = survival_rules_not_simulated(design)
    assert list(reasons) == ["fut_mrd"] and "efs_mrd is not simulated" in reasons["fut_mrd"]


def test_a_median_reference_before_the_point_mass_is_refused():
    cfg = efs_config()
    cfg["rules"][0]["reference"] = 0.5
    with pytest.raises(ValueError, match=r"fut_efs \(a: 0.5 days\)"):
        build(cfg, efs_scenario({"a": (0.7, 200.0, 200.0), "b": (0.7, 200.0, 200.0)}))


def test_efs_design_does_not_depend_on_chunking():
    spec = build(
        efs_config(rfs_rule=True), efs_scenario({"a": (0.5, 200.0, 150.0), "b": (0.6, 300.0, 300.0)})
    )
    whole = simulate_chunk(spec, 5, np.arange(40))
    parts = [simulate_chunk(spec, 5, np.arange(s, s + 20)) for s in (20, 0)]
    for f in ("status", "decision", "decision_rule", "decision_time", "n_enrolled"):
        got = np.concatenate([getattr(parts[1], f), getattr(parts[0], f)])
        assert np.array_equal(getattr(whole, f), got, equal_nan=True), f
    assert (whole.decision > 0).any()


def _death_hazard(median_os):
    return LN2 / median_os


def efs_brute_force(truth, n_trials, rng):
    """The design of :func:`efs_config` simulated from scratch: exponential death and relapse.

    A patient is a CR with probability ``cr``, assessed on day 20 if alive (a death before day 20
    is a treatment failure, as is a non-CR); the CR's EFS runs from enrolment to relapse (20 days
    plus an exponential) or death. Counted once 30 days (the landmark) have passed. Looks every
    90 days: futility on EFS, P(median EFS > 120) < 0.10 with 10 events (treatment failures
    included), while the arm enrols; one interval, so each look's posterior is a fine grid in the
    log hazard times the Beta posterior of the failure probability, integrated over a pi grid.
    """
    m = np.log(LN2 / PRIOR_EFS)
    gap = 30.4375 / ACCRUAL
    x = np.linspace(-16.0, 2.0, 6001)
    pis = np.linspace(0.0, 0.5, 2001)[1:-1]
    dropped = np.zeros(2)
    sizes = []
    for _ in range(n_trials):
        pts: list[tuple[float, int, bool, float]] = []  # arrival, arm, failure, EFS event time
        t, look, is_open = 0.0, EVERY, [True, True]
        while True:
            t += rng.exponential(gap)
            while look < t and look <= DURATION:
                for k in range(2):
                    if not is_open[k]:
                        continue
                    mine = [p for p in pts if p[1] == k and look - p[0] >= LANDMARK]
                    n0 = len(mine)
                    d0 = sum(p[2] for p in mine)
                    cont = [p for p in mine if not p[2]]
                    obs = np.array([min(look - p[0], FOLLOW_UP) for p in cont])
                    et = np.array([p[3] for p in cont])
                    d = float(np.sum(et <= obs))
                    e = float(np.sum(np.minimum(et, obs)))
                    if d0 + d < MIN_EVENTS:
                        continue
                    logp = d * x - e * np.exp(x) + stats.norm.logpdf(x, m, 1.0)
                    f = np.exp(logp - logp.max())
                    cdf = np.cumsum(f) / f.sum()
                    # P(median > B) = int Beta(pi) P(e^eta B < log 2(1 - pi)) dpi
                    inner = np.interp(np.log(np.log(2 * (1 - pis)) / BENCHMARK_EFS), x, cdf, left=0.0)
                    dens = stats.beta.pdf(pis, 1 + d0, 1 + n0 - d0)
                    prob = np.sum(dens * inner) * (pis[1] - pis[0])
                    if prob < FUT_THRESHOLD:
                        is_open[k] = False
                        dropped[k] += 1
                look += EVERY
            if t > DURATION or not any(is_open):
                break
            open_arms = [k for k in range(2) if is_open[k]]
            k = open_arms[0] if len(open_arms) == 1 else int(rng.random() < 0.5)
            cr, med_os, med_rel = truth[k]
            death = rng.exponential(1.0 / _death_hazard(med_os))
            is_cr = rng.random() < cr and death >= RESP_DAY
            relapse = RESP_DAY + rng.exponential(med_rel / LN2)
            pts.append((t, k, not is_cr, min(death, relapse)))
        sizes.append(len(pts))
    return dropped, np.array(sizes)


@pytest.mark.slow
@pytest.mark.parametrize(
    "truth",
    [
        ((0.7, 200.0, 200.0), (0.8, 300.0, 300.0)),  # EFS medians about 38 and 92 days (benchmark 60)
        ((0.75, 250.0, 200.0), (0.75, 250.0, 200.0)),  # both about 55 days
    ],
)
def test_efs_rule_matches_brute_force_simulation(truth):
    n_trials = 600
    spec = build(efs_config(), efs_scenario({"a": truth[0], "b": truth[1]}))
    res = simulate_chunk(spec, 3, np.arange(n_trials))
    s = summarise(spec, res)
    arms = {a["arm"]: a for a in s["arms"]}
    dropped, sizes = efs_brute_force(truth, n_trials, np.random.default_rng(19))
    for k, a in enumerate(("a", "b")):
        p_sim, p_bf = arms[a]["prob_drop_futility"]["estimate"], dropped[k] / n_trials
        se = np.sqrt((p_sim * (1 - p_sim) + p_bf * (1 - p_bf)) / n_trials)
        assert abs(p_sim - p_bf) < 4 * se + 0.01, (a, p_sim, p_bf)
    # the rule fires, and more often on the worse arm
    assert arms["a"]["prob_drop_futility"]["estimate"] > 0.05
    assert set(arms["a"]["by_rule"][str(Action.DROP_FUTILITY)]) == {"fut_efs"}
    if truth[0] != truth[1]:
        assert arms["a"]["prob_drop_futility"]["estimate"] > 3 * arms["b"]["prob_drop_futility"]["estimate"]
    n_sim = res.n_enrolled.sum(1)
    se = np.sqrt((n_sim.var() + sizes.var()) / n_trials)
    assert abs(n_sim.mean() - sizes.mean()) < 4 * se
