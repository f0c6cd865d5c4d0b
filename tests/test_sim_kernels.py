"""The simulator's compiled parts against independent references.

* Random streams: SFC64 bit for bit against numpy's own ``SFC64``; SplitMix64 against its
  published test vector (through a pure-Python transcription of the reference C code); the
  uniforms' distribution and the independence of neighbouring trials' streams.
* Enrolment kernel: hand-built trials whose enrolment is worked out by hand (routing order,
  allocation draws, closure at ``max_n``, patients no step takes, looks by count and by day, the
  end of enrolment).
* Exact Beta quantities: the two-arm P(best) by exact finite sums against adaptive quadrature
  (scipy), the compiled grid (rows without a whole-number parameter) against the vectorized grid
  version; the tabulated P(p > c) equals the incomplete beta function.
* The queue cache: decisions depend on the cutoff only through the ``earliest_on`` dates passed.
"""

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from adaptive.config import load_config
from adaptive.queue import date_breakpoints, evaluate_queue
from adaptive.simulate import rng
from adaptive.simulate.engine import GRADUATED, EndpointModel
from adaptive.simulate.kernels import (
    ACTIVE,
    COMPLETE,
    NO_LOOK,
    QUEUED,
    SUSPENDED,
    count_known,
    count_known_randomized,
    enrol,
)
from decision_rules import beta

M64 = (1 << 64) - 1
GRAD = GRADUATED  # neither open nor queued
ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- random streams
def _splitmix64_reference(state: int, n: int) -> list[int]:
    """SplitMix64 as in Vigna's reference C code (splitmix64.c), in plain Python integers."""
    out = []
    for _ in range(n):
        state = (state + 0x9E3779B97F4A7C15) & M64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        out.append(z ^ (z >> 31))
    return out


def test_splitmix64_published_vector():
    # the first outputs of SplitMix64 seeded with 1234567 (the reference implementation's vector)
    assert _splitmix64_reference(1234567, 5) == [
        6457827717110365317,
        3203168211198807973,
        9817491932198370423,
        4593380528125082431,
        16408922859458223821,
    ]


def test_seed_words_are_splitmix64_of_the_hashed_key():
    seed, trial, block = 2026, 17, 3

    def mix(x):
        return _splitmix64_reference((x - 0x9E3779B97F4A7C15) & M64, 1)[0]

    g = 0x9E3779B97F4A7C15
    h = mix((seed + g) & M64)
    h = mix(h ^ ((trial + g) & M64))
    h = mix(h ^ ((block + g) & M64))
    want = _splitmix64_reference(h, 3)
    got = rng.seed_words(seed, np.array([trial]), block)[0]
    assert [int(x) for x in got] == want


def test_sfc64_is_bit_for_bit_numpys_generator():
    words = rng.seed_words(99, np.arange(4), 0)
    got = rng.uniforms_from_words(words, 1000)
    for r in range(4):
        bg = np.random.SFC64()
        bg.state = {
            "bit_generator": "SFC64",
            "state": {"state": np.array([*words[r], 1], np.uint64)},
            "has_uint32": 0,
            "uinteger": 0,
        }
        bg.random_raw(12)  # numpy discards 12 outputs after seeding; so does rng
        assert np.array_equal(np.random.Generator(bg).random(1000), got[r])


def test_streams_are_uniform_and_trials_independent():
    u = rng.trial_uniforms(5, np.arange(400), 0, (50, 14))
    flat = u.reshape(-1)
    assert stats.kstest(flat, "uniform").pvalue > 1e-3
    assert 0.0 <= flat.min() and flat.max() < 1.0
    # neighbouring trials (and blocks) share nothing: correlations at the 1/sqrt(n) noise level
    a = u[:-1].reshape(399, -1)
    b = u[1:].reshape(399, -1)
    r = np.corrcoef(a.reshape(-1), b.reshape(-1))[0, 1]
    assert abs(r) < 4 / np.sqrt(a.size)
    other_block = rng.trial_uniforms(5, np.arange(400), 1, (50, 14))
    assert abs(np.corrcoef(flat, other_block.reshape(-1))[0, 1]) < 4 / np.sqrt(flat.size)
    # a trial's stream does not depend on which other trials are drawn with it
    assert np.array_equal(rng.trial_uniforms(5, np.array([7, 3]), 0, (50, 14))[1], u[3])


# ----------------------------------------------------------------------------- enrolment kernel
def _state(n_trials, n_arms, cap, arrival, match, u_assign, status, next_time=None, next_count=None):
    return {
        "ptr": np.zeros(n_trials, np.int64),
        "arrival": np.asarray(arrival, float),
        "match": np.asarray(match, bool),
        "u_assign": np.asarray(u_assign, float),
        "status": np.asarray(status, np.int64),
        "enrolled": np.zeros((n_trials, n_arms), np.int64),
        "n_rand": np.zeros((n_trials, n_arms), np.int64),
        "total": np.zeros(n_trials, np.int64),
        "arm_of": np.full((n_trials, cap), -1, np.int64),
        "randomized": np.zeros((n_trials, cap), bool),
        "done": np.zeros(n_trials, bool),
        "end_time": np.full(n_trials, np.nan),
        "last_time": np.zeros(n_trials),
        "next_look_time": np.full(n_trials, np.inf if next_time is None else next_time),
        "next_look_count": np.full(n_trials, NO_LOOK if next_count is None else next_count, np.int64),
    }


# two steps: step 0 routes matching patients to arm 0 (unrandomized); step 1 randomizes arms 1
# and 2 by the cohort's rule, with arm 3 (a queued joiner) sharing equally once open
ROUTING = {
    "step_arms": np.array([[0, -1, -1], [1, 2, 3]]),
    "step_n": np.array([1, 3]),
    "step_rand": np.array([False, True]),
    "step_pass": np.array([False, False]),
    "rule_of_step": np.array([-1, 0]),
    "rule_arms": np.array([[1, 2]]),
    "rule_n": np.array([2]),
    "others": np.array([[-1, -1, -1], [3, -1, -1]]),
    "others_n": np.array([0, 1]),
}


def _run(st, *, cap, n_patients=1000, max_duration=1e9, max_patients=1000, max_n=(100, 100, 100, 100),
         alloc=((0.25, 0.75),), step_pass=None):  # fmt: skip
    alloc_arr = np.array(alloc, float)[:, None, :].repeat(len(st["ptr"]), axis=1)
    passes = ROUTING["step_pass"] if step_pass is None else np.asarray(step_pass)
    need = enrol(
        np.arange(len(st["ptr"])), st["ptr"], cap, n_patients, max_duration, max_patients,
        np.array(max_n, np.int64), st["arrival"], st["match"], st["u_assign"], st["status"],
        st["enrolled"], st["n_rand"], st["total"], st["arm_of"], st["randomized"], st["done"],
        st["end_time"], st["last_time"], st["next_look_time"], st["next_look_count"],
        ROUTING["step_arms"], ROUTING["step_n"], ROUTING["step_rand"], passes, ROUTING["rule_of_step"],
        ROUTING["rule_arms"], ROUTING["rule_n"], ROUTING["others"], ROUTING["others_n"], alloc_arr,
    )  # fmt: skip
    return need


def test_routing_order_and_allocation_draws_by_hand():
    # patient: (step 0 matches, step 1 matches), assignment uniform
    match = [[[True, True], [False, True], [False, True], [False, True], [False, False], [True, True]]]
    u = [[0.9, 0.10, 0.30, 0.999, 0.5, 0.1]]
    st = _state(1, 4, 6, [[1, 2, 3, 4, 5, 6]], match, u, [[ACTIVE, ACTIVE, ACTIVE, QUEUED]], next_time=5.5)
    assert not _run(st, cap=6)
    # p0 step 0 -> arm 0; p1 u=0.10 < 0.25 -> arm 1; p2 u=0.30 -> arm 2; p3 -> arm 2;
    # p4 matches no step: not enrolled; p5 arrives after the look at day 5.5: waits
    assert st["arm_of"][0].tolist() == [0, 1, 2, 2, -1, -1]
    assert st["randomized"][0].tolist() == [False, True, True, True, False, False]
    assert st["enrolled"][0].tolist() == [1, 1, 2, 0]
    assert st["n_rand"][0].tolist() == [0, 1, 2, 0]
    assert st["ptr"][0] == 5 and st["total"][0] == 4 and not st["done"][0]


def test_queued_joiner_gets_an_equal_share_once_open():
    # arm 3 open: weights (0.25, 0.75, 0.5) -> cdf (1/6, 2/3, 1)
    match = [[[False, True]] * 3]
    st = _state(1, 4, 3, [[1, 2, 3]], match, [[0.1, 0.5, 0.7]], [[ACTIVE, ACTIVE, ACTIVE, ACTIVE]])
    _run(st, cap=3, n_patients=3)
    assert st["arm_of"][0].tolist() == [1, 2, 3]
    # arm 1 closed: its allocation share goes to the open arms, (0, 0.75, 0.375) -> (0, 2/3, 1)
    st = _state(1, 4, 3, [[1, 2, 3]], match, [[0.1, 0.6, 0.7]], [[ACTIVE, COMPLETE, ACTIVE, ACTIVE]])
    _run(st, cap=3, n_patients=3)
    assert st["arm_of"][0].tolist() == [2, 2, 3]


def test_a_cohort_without_open_arms_keeps_its_patients_unless_it_passes_them_on():
    """Step 0's arm has closed: its patients are not enrolled, or go on to step 1 if it passes them on."""
    match = [[[True, True]] * 3]
    status = [[GRAD, ACTIVE, ACTIVE, QUEUED]]
    st = _state(1, 4, 3, [[1, 2, 3]], match, [[0.1, 0.5, 0.9]], status)
    _run(st, cap=3, n_patients=3)
    assert st["arm_of"][0].tolist() == [-1, -1, -1] and st["total"][0] == 0
    st = _state(1, 4, 3, [[1, 2, 3]], match, [[0.1, 0.5, 0.9]], status)
    _run(st, cap=3, n_patients=3, step_pass=[True, False])
    assert st["arm_of"][0].tolist() == [1, 2, 2] and st["randomized"][0].all()


def test_a_randomized_step_with_one_open_arm_assigns_without_randomizing():
    match = [[[False, True]] * 2]
    st = _state(1, 4, 2, [[1, 2]], match, [[0.1, 0.9]], [[ACTIVE, COMPLETE, ACTIVE, QUEUED]])
    _run(st, cap=2, n_patients=2)
    assert st["arm_of"][0].tolist() == [2, 2]
    assert not st["randomized"][0].any() and st["n_rand"][0].tolist() == [0, 0, 0, 0]


def test_suspended_arm_gets_no_patient_but_keeps_the_trial_open():
    match = [[[True, False]] * 3]
    st = _state(1, 4, 3, [[1, 2, 3]], match, [[0.5] * 3], [[SUSPENDED, GRAD, GRAD, GRAD]])
    _run(st, cap=3, n_patients=3)
    assert st["arm_of"][0].tolist() == [-1, -1, -1]
    assert st["done"][0] and st["end_time"][0] == 3.0  # the patients ran out, not the arms


def test_count_known_randomized_by_hand():
    """Counts among randomized patients who arrived on or after the pair's concurrent start."""
    arm_of = np.array([[0, 1, 0, 1, 0]])
    known = np.array([[1.0, 2.0, 3.0, 4.0, 9.0]])
    value = np.array([[1.0, 1.0, 0.0, 1.0, 1.0]])
    randomized = np.array([[True, True, False, True, True]])
    arrival = np.array([[0.5, 1.0, 1.5, 2.0, 2.5]])
    n, y = count_known_randomized(
        np.array([0]), np.array([5]), arm_of, known, value, np.array([5.0]), 2, randomized, arrival,
        np.array([0.8]),
    )  # fmt: skip
    # patient 0 arrived before 0.8; patient 2 not randomized; patient 4 not known by day 5
    assert n.tolist() == [[0, 2]] and y.tolist() == [[0, 2]]


def test_arm_closes_at_max_n_and_enrolment_ends_without_arms():
    match = [[[True, False]] * 4]
    st = _state(1, 4, 4, [[1, 2, 3, 4]], match, [[0.5] * 4], [[ACTIVE, GRAD, GRAD, GRAD]])
    st["last_time"][0] = 0.7  # the last look's day
    _run(st, cap=4, max_n=(2, 9, 9, 9))
    assert st["arm_of"][0].tolist() == [0, 0, -1, -1]
    assert st["status"][0, 0] == COMPLETE
    # no arm open or queued: enrolment ends with the last arrival (after the last look here:
    # the final analysis waits for that patient's outcomes)
    assert st["done"][0] and st["end_time"][0] == 2.0
    # arms closed at a look, nobody enrolled after it: enrolment ends at the look
    st = _state(1, 4, 4, [[1, 2, 3, 4]], match, [[0.5] * 4], [[GRAD, GRAD, GRAD, GRAD]])
    st["ptr"][0] = 2  # two patients were taken before the look on day 2.5 closed the last arm
    st["last_time"][0] = 2.5
    _run(st, cap=4)
    assert st["done"][0] and st["end_time"][0] == 2.5


def test_looks_by_count_by_day_and_the_end_of_enrolment():
    match = [[[True, False]] * 6]
    arr = [[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]
    # a look after the 3rd patient happens at that patient's arrival
    st = _state(1, 4, 6, arr, match, [[0.5] * 6], [[ACTIVE, GRAD, GRAD, GRAD]], next_count=3)
    _run(st, cap=6)
    assert st["total"][0] == 3 and st["next_look_time"][0] == 3.0 and st["next_look_count"][0] == NO_LOOK
    # max_patients: enrolment ends at the last arrival
    st = _state(1, 4, 6, arr, match, [[0.5] * 6], [[ACTIVE, GRAD, GRAD, GRAD]])
    _run(st, cap=6, max_patients=4)
    assert st["done"][0] and st["total"][0] == 4 and st["end_time"][0] == 4.0
    # max_duration: the patient arriving after it is not enrolled; the end is capped at it
    st = _state(1, 4, 6, arr, match, [[0.5] * 6], [[ACTIVE, GRAD, GRAD, GRAD]])
    _run(st, cap=6, max_duration=4.5)
    assert st["done"][0] and st["total"][0] == 4 and st["end_time"][0] == 4.0
    # patients drawn so far run out before the design's patient supply: ask for more
    st = _state(1, 4, 6, arr, match, [[0.5] * 6], [[ACTIVE, GRAD, GRAD, GRAD]])
    assert _run(st, cap=6, n_patients=12)
    assert st["ptr"][0] == 6 and not st["done"][0]


def test_count_known_by_hand():
    arm_of = np.array([[0, 1, 0, -1, 1], [1, 1, 1, 0, 0]])
    known = np.array([[1.0, 2.0, 9.0, 1.0, 3.0], [1.0, 1.0, 1.0, 1.0, 1.0]])
    value = np.array([[1.0, 0.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0, 1.0]])
    n, y = count_known(np.array([0, 1]), np.array([5, 4]), arm_of, known, value, np.array([3.0, 5.0]), 2)
    assert n.tolist() == [[1, 2], [1, 3]]  # trial 0: patient 2 not known yet; trial 1: patient 4 not enrolled
    assert y.tolist() == [[1, 1], [0, 2]]


# ----------------------------------------------------------------------------- Beta quantities
def test_compiled_two_arm_grid_equals_the_vectorized_grid():
    g = np.random.default_rng(3)
    a = g.uniform(0.2, 150, (3000, 2))
    b = g.uniform(0.2, 150, (3000, 2))
    a[:3] = [[0.1, 200.0], [1.0, 1.0], [500.0, 3.0]]
    b[:3] = [[0.2, 3.0], [1.0, 1.0], [2.0, 480.0]]
    grid = np.empty((len(a), 2))
    beta._pair_logit_grid(a, b, grid)
    assert np.max(np.abs(grid - beta._prob_best_logit_grid(a, b))) < 1e-12
    assert grid[1, 0] == pytest.approx(0.5, abs=1e-9)
    # rows with a whole-number parameter are summed exactly (rows 1 and 2 here), the others
    # (no whole number) are the grid's
    got = beta.beta_prob_best(a, b)
    whole = (np.concatenate([a, b], 1) == np.floor(np.concatenate([a, b], 1))).any(1)
    assert whole[1] and whole[2] and whole.sum() < 10
    assert np.array_equal(got[~whole], grid[~whole])
    assert got[1, 0] == 0.5 and np.max(np.abs(got - grid)) < 1e-9


def _quad_prob_greater(a1, b1, a2, b2):
    """``P(p_1 > p_2)`` by adaptive quadrature, split at the modes (an independent reference)."""
    from scipy import integrate

    def f(x):
        return stats.beta.pdf(x, a1, b1) * stats.beta.cdf(x, a2, b2)

    m1, m2 = (a1 - 1) / max(a1 + b1 - 2, 1e-9), (a2 - 1) / max(a2 + b2 - 2, 1e-9)
    pts = sorted({min(max(m, 1e-9), 1 - 1e-9) for m in (m1, m2)})
    return integrate.quad(f, 0, 1, points=pts, epsabs=1e-15, epsrel=1e-13, limit=1000)[0]


@pytest.mark.parametrize(
    "a, b",
    [
        ([1, 1], [1, 1]),  # identical arms: exactly 1/2
        ([13, 8], [28, 33]),  # interim counts under a uniform prior
        ([200, 1], [1, 300]),  # far apart: a tiny probability, no underflow to a false 0
        ([1, 240], [240, 1]),  # the other extreme
        ([3000, 2], [5, 4000]),  # large parameters, many terms in the long directions
        ([2.5, 3.7], [7.0, 4.2]),  # one whole parameter (b of arm 0): the mirrored sums
        ([0.5, 7.0], [9.5, 3.5]),  # whole a of arm 1 only (Jeffreys prior on one arm)
        ([12.35, 7.0], [8.65, 13.65]),  # unit-information prior plus counts on one arm
    ],
)
def test_exact_two_arm_prob_best_against_quadrature(a, b):
    got = beta.beta_prob_best(np.array([a], float), np.array([b], float))[0]
    want = _quad_prob_greater(a[0], b[0], a[1], b[1])
    assert got[0] == pytest.approx(want, abs=1e-12, rel=1e-9)
    assert got[1] == pytest.approx(1.0 - want, abs=1e-12)
    out = np.empty((1, 2))
    assert len(beta._pair_exact(np.array([a], float), np.array([b], float), out)) == 0  # summed, not grid


def test_exact_sums_against_quadrature_on_a_battery():
    g = np.random.default_rng(11)
    a = np.floor(g.uniform(1, 260, (60, 2)))
    b = np.floor(g.uniform(1, 260, (60, 2)))
    got = beta.beta_prob_best(a, b)
    want = np.array([_quad_prob_greater(a[r, 0], b[r, 0], a[r, 1], b[r, 1]) for r in range(len(a))])
    assert np.max(np.abs(got[:, 0] - want)) < 1e-11
    assert np.max(np.abs(got.sum(1) - 1.0)) < 1e-12


def test_rows_without_a_whole_parameter_go_to_the_grid():
    a = np.array([[0.5, 1.5], [2.0, 3.0]])
    b = np.array([[2.5, 0.7], [5.0, 1.0]])
    out = np.full((2, 2), np.nan)
    assert list(beta._pair_exact(a, b, out)) == [0]
    assert np.isnan(out[0]).all() and not np.isnan(out[1]).any()


def test_tabulated_prob_above_is_the_incomplete_beta():
    em = EndpointModel("mortality_30d", "beta", False, a0=np.array([0.07]), b0=np.array([0.93]),
                       max_n=np.array([40]))  # fmt: skip
    n = np.array([0, 1, 10, 40, 40])
    y = np.array([0, 1, 3, 0, 40])
    want = stats.beta.sf(0.15, 0.07 + y, 0.93 + n - y)
    assert np.allclose(em.beta_prob_above(0, 0.15, n, y), want, rtol=1e-12, atol=1e-15)


# ----------------------------------------------------------------------------- queue cache
def test_queue_decisions_change_only_at_the_breakpoints():
    import dataclasses

    design = load_config(ROOT / "configs" / "rr_aml.yaml")
    breaks = date_breakpoints(design)
    assert breaks == (date(2026, 7, 1),)
    arms = tuple(dataclasses.replace(a, status="dropped") if a.id == "arm7" else a for a in design.arms)
    d = dataclasses.replace(design, arms=arms)

    def opens(day):
        return [q.opens for q in evaluate_queue(d, day)]

    assert opens(date(2026, 6, 30)) == opens(date(2025, 1, 1)) == [False]
    assert opens(date(2026, 7, 1)) == opens(date(2026, 7, 1) + timedelta(days=500)) == [True]


# ----------------------------------------------------------------------------- outcomes
@pytest.mark.parametrize("scenario", ["realistic", "drift"])
def test_compiled_outcomes_equal_the_numpy_derivation(scenario):
    """``draw_outcomes`` against :meth:`Patients.draw_reference`, the same laws in numpy.

    Every binary outcome and category equal; the days (death, relapse, when known) equal up to
    the last bits of ``log`` (numpy's vectorized ``log`` and libm's may differ by an ulp).
    """
    import copy

    from adaptive.scenario import load_scenario
    from adaptive.simulate.engine import compile_spec
    from adaptive.simulate.patients import _OUTCOMES, Patients

    design = load_config(ROOT / "configs/rr_aml.yaml")
    spec = compile_spec(design, load_scenario(ROOT / f"configs/scenarios/{scenario}.yaml", design))
    spec.endpoints.update({e: spec.endpoints["crc"] for e in _OUTCOMES if e not in spec.endpoints})
    kernel = Patients(spec, 3, np.arange(60))
    kernel.with_relapse = True
    kernel.extend()
    kernel.u_relapse = np.random.default_rng(1).uniform(size=kernel.arrival.shape)
    numpy_ = copy.deepcopy(kernel)
    g = np.random.default_rng(2)
    rows, p = np.repeat(np.arange(60), 200), np.tile(np.arange(200), 60)
    arm = g.integers(0, spec.k, len(rows))
    t_arr = kernel.arrival[rows, p]
    drift = np.any(spec.truth["trend"])
    assert drift == (scenario == "drift")
    cr, cri = kernel._drifted(arm, t_arr) if drift else (spec.truth["cr"][arm], spec.truth["cri"][arm])
    kernel.draw(rows, p, arm, t_arr, cr, cri)
    numpy_.draw_reference(rows, p, arm, t_arr, cr, cri)
    assert np.array_equal(kernel.category, numpy_.category)
    assert np.array_equal(kernel.response_day, numpy_.response_day)
    for e in _OUTCOMES:
        assert np.array_equal(kernel.value[e], numpy_.value[e]), e
        np.testing.assert_allclose(kernel.known[e], numpy_.known[e], rtol=1e-13)
    for name in ("death", "relapse", "truth_crc"):
        np.testing.assert_allclose(getattr(kernel, name), getattr(numpy_, name), rtol=1e-13, atol=1e-15)
    assert 0 < kernel.value["crc"][rows, p].mean() < 1 and np.isfinite(kernel.relapse).any()
