"""Allocation rules: hand-computed examples, bounds, caps, burn-in, rescaling after a drop."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decision_rules.allocation import (
    AllocationRule,
    allocate_arrays,
    bound_allocation,
    thall_wathen_power,
    thall_wathen_weights,
    variance_weighted_weights,
)


def tw_rule(**kw):
    base = dict(cohort="fit", arms=("dav", "hav"), ratio={"dav": 1, "hav": 1}, kind="thall_wathen")
    return AllocationRule(**{**base, **kw})


# ----------------------------------------------------------------------------- hand-computed
def test_thall_wathen_c_is_n_over_2N_hand_computed():
    # n = 30 + 30 evaluable of N = 60 + 60: c = 60 / 240 = 1/4. With P(best) = 0.8 / 0.2 the
    # allocation is 0.8^(1/4) / (0.8^(1/4) + 0.2^(1/4)) = 1 / (1 + (1/4)^(1/4)) = 2 - sqrt(2).
    alloc = tw_rule().allocate(
        is_open={"dav": True, "hav": True},
        n_evaluable={"dav": 30, "hav": 30},
        max_n={"dav": 60, "hav": 60},
        prob_best={"dav": 0.8, "hav": 0.2},
    )
    assert alloc.inputs["power_c"] == pytest.approx(0.25)
    assert (alloc.inputs["n"], alloc.inputs["N"]) == (60, 120)
    assert alloc.probabilities["dav"] == pytest.approx(2 - math.sqrt(2), abs=1e-12)
    assert alloc.probabilities["hav"] == pytest.approx(math.sqrt(2) - 1, abs=1e-12)
    assert alloc.reference == {"dav": 0.5, "hav": 0.5}
    assert "c = 0.25 (n = 60 of N = 120)" in alloc.sentence
    assert "The fixed ratio would give dav 50% : hav 50%" in alloc.sentence


def test_thall_wathen_at_full_information_is_square_root():
    # n = N: c = 1/2; P(best) 0.9 / 0.1 -> sqrt(9) : 1 = 3 : 1
    res = allocate_arrays(
        "thall_wathen", ratio=[1, 1], is_open=[True, True], prob_best=[0.9, 0.1], n=[60, 60], n_max=[60, 60]
    )
    np.testing.assert_allclose(res.probabilities, [0.75, 0.25], atol=1e-12)
    assert float(res.power) == 0.5
    # overrun (n > N) keeps c at 1/2
    assert float(thall_wathen_power(150, 120)) == 0.5
    assert float(thall_wathen_power(0, 120)) == 0.0


def test_thall_wathen_fixed_power_three_arms():
    # c = 1: proportional to P(best); c = 0: equal
    np.testing.assert_allclose(thall_wathen_weights([0.5, 0.3, 0.2], 1.0), [0.5, 0.3, 0.2])
    np.testing.assert_allclose(thall_wathen_weights([0.97, 0.03, 0.0], 0.0), [1 / 3] * 3)
    np.testing.assert_allclose(
        thall_wathen_weights([0.64, 0.36, 0.0], 0.5), [0.8 / 1.4, 0.6 / 1.4, 0.0], atol=1e-12
    )


def test_variance_weighted_hand_computed():
    # sqrt(0.5 * 0.04 / 10) : sqrt(0.5 * 0.01 / 10) = 2 : 1
    np.testing.assert_allclose(
        variance_weighted_weights([0.5, 0.5], [0.04, 0.01], [9, 9]), [2 / 3, 1 / 3], atol=1e-12
    )
    # sqrt(0.9 * 0.01 / 40) : sqrt(0.1 * 0.04 / 10) = sqrt(2.25e-4) : sqrt(4e-4) = 0.015 : 0.02
    rule = tw_rule(kind="variance_weighted")
    alloc = rule.allocate(
        is_open={"dav": True, "hav": True},
        n_evaluable={"dav": 39, "hav": 9},
        max_n={"dav": 60, "hav": 60},
        prob_best={"dav": 0.9, "hav": 0.1},
        variance={"dav": 0.01, "hav": 0.04},
    )
    assert alloc.probabilities["dav"] == pytest.approx(0.015 / 0.035, abs=1e-12)
    assert "variance-weighted" in alloc.sentence


def test_fixed_ratio_and_rescaling_after_a_drop():
    rule = AllocationRule(cohort="c", arms=("a", "b", "c"), ratio={"a": 2, "b": 1, "c": 1}, kind="fixed")
    full = rule.allocate(is_open=dict.fromkeys("abc", True), n_evaluable={}, max_n=dict.fromkeys("abc", 30))
    assert full.probabilities == {"a": 0.5, "b": 0.25, "c": 0.25}
    dropped = rule.allocate(
        is_open={"a": True, "b": False, "c": True}, n_evaluable={}, max_n=dict.fromkeys("abc", 30)
    )
    assert dropped.probabilities == pytest.approx({"a": 2 / 3, "b": 0.0, "c": 1 / 3})
    assert dropped.inputs["closed_arms"] == ["b"]
    assert "b closed" in dropped.sentence


def test_previous_allocation_is_rescaled_after_a_drop_before_the_cap():
    # previous 0.5 / 0.3 / 0.2; arm a dropped -> previous over b, c is 0.6 / 0.4; cap 0.1 keeps
    # b within [0.5, 0.7] although Thall-Wathen (c = 1) wants 0.9
    rule = AllocationRule(
        cohort="c",
        arms=("a", "b", "c"),
        ratio=dict.fromkeys("abc", 1),
        kind="thall_wathen",
        power=1.0,
        max_change=0.1,
    )
    alloc = rule.allocate(
        is_open={"a": False, "b": True, "c": True},
        n_evaluable=dict.fromkeys("abc", 30),
        max_n=dict.fromkeys("abc", 60),
        prob_best={"a": 0.0, "b": 0.9, "c": 0.1},
        previous={"a": 0.5, "b": 0.3, "c": 0.2},
    )
    assert alloc.probabilities == pytest.approx({"a": 0.0, "b": 0.7, "c": 0.3})
    assert alloc.bounded == {"b": "max_change", "c": "max_change"}


def test_single_open_arm_gets_everything_and_none_gets_nothing():
    res = allocate_arrays(
        "thall_wathen",
        ratio=[1, 1],
        is_open=[[True, False], [False, False]],
        prob_best=[[1.0, 0.0], [0.0, 0.0]],
        n=[[10, 10], [10, 10]],
        n_max=[[60, 60], [60, 60]],
        min_prob=0.2,
        max_prob=0.8,
    )
    np.testing.assert_allclose(res.probabilities, [[1.0, 0.0], [0.0, 0.0]])


# ----------------------------------------------------------------------------- bounds and caps
def test_min_and_max_probabilities():
    rule = tw_rule(power=1.0, min_prob=0.2, max_prob=0.8)
    alloc = rule.allocate(
        is_open={"dav": True, "hav": True},
        n_evaluable={"dav": 30, "hav": 30},
        max_n={"dav": 60, "hav": 60},
        prob_best={"dav": 0.97, "hav": 0.03},
    )
    assert alloc.probabilities == pytest.approx({"dav": 0.8, "hav": 0.2})
    assert alloc.bounded == {"dav": "max_prob", "hav": "min_prob"}
    assert "bounded by max_prob for dav, min_prob for hav" in alloc.sentence


def test_cap_on_change_between_looks():
    rule = tw_rule(power=1.0, max_change=0.15)
    kw = dict(
        is_open={"dav": True, "hav": True},
        n_evaluable={"dav": 30, "hav": 30},
        max_n={"dav": 60, "hav": 60},
        prob_best={"dav": 0.95, "hav": 0.05},
    )
    capped = rule.allocate(**kw, previous={"dav": 0.5, "hav": 0.5}, previous_source="look 1")
    assert capped.probabilities == pytest.approx({"dav": 0.65, "hav": 0.35})
    assert "Previously dav 50% : hav 50% (look 1)" in capped.sentence
    # from 0.65 the next look may reach 0.8
    nxt = rule.allocate(**kw, previous=capped.probabilities)
    assert nxt.probabilities["dav"] == pytest.approx(0.8)
    # without a previous allocation the cap does not apply
    assert rule.allocate(**kw).probabilities["dav"] == pytest.approx(0.95)


def test_three_arm_bounds_keep_ratios_of_free_arms():
    # 0.7 / 0.25 / 0.05 with bounds [0.1, 0.6]: a -> 0.6, c -> 0.1, b gets the rest 0.3
    out = bound_allocation([0.7, 0.25, 0.05], 0.1, 0.6)
    np.testing.assert_allclose(out, [0.6, 0.3, 0.1], atol=1e-12)
    # two free arms keep their ratio 0.25 : 0.15 with a at 0.6
    out = bound_allocation([0.7, 0.2, 0.12], 0.05, 0.6)
    assert out[0] == pytest.approx(0.6)
    assert out[1] / out[2] == pytest.approx(0.2 / 0.12)


def test_zero_weight_arms_fill_what_positive_arms_cannot_take():
    np.testing.assert_allclose(bound_allocation([1.0, 0.0, 0.0], 0.1, 0.5), [0.5, 0.25, 0.25])


def _lambda_bisection(w, lo, hi):
    """Independent reference: bisection on lambda for sum(clip(lambda w, lo, hi)) = 1."""
    a, b = 0.0, 1.0
    while np.clip(b * w, lo, hi).sum() < 1 - 1e-12:
        b *= 2
    for _ in range(200):
        mid = (a + b) / 2
        if np.clip(mid * w, lo, hi).sum() < 1:
            a = mid
        else:
            b = mid
    return np.clip(b * w, lo, hi)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(2, 6).flatmap(
        lambda k: st.tuples(
            st.lists(st.floats(1e-3, 1.0), min_size=k, max_size=k),
            st.floats(0.0, 1.0),
            st.floats(0.0, 1.0),
        )
    )
)
def test_bound_allocation_respects_bounds_and_matches_bisection(case):
    w, f_lo, f_hi = case
    k = len(w)
    lo = f_lo / k  # within [0, 1/k]
    hi = 1 / k + f_hi * (1 - 1 / k)  # within [1/k, 1]
    w = np.array(w)
    out = bound_allocation(w, lo, hi)
    assert out.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(out >= lo - 1e-12) and np.all(out <= hi + 1e-12)
    ref = _lambda_bisection(w, lo, hi)
    np.testing.assert_allclose(out, ref, atol=1e-9)
    free = (out > lo + 1e-9) & (out < hi - 1e-9)
    if free.sum() >= 2:
        r = out[free] / w[free]
        assert np.ptp(r) < 1e-9 * r.max()


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3),
    st.lists(st.floats(0.05, 1.0), min_size=3, max_size=3),
    st.floats(0.01, 0.3),
    st.lists(st.booleans(), min_size=3, max_size=3),
)
def test_allocation_with_cap_always_feasible(pb, prev, cap, is_open):
    res = allocate_arrays(
        "thall_wathen",
        ratio=[1, 1, 1],
        is_open=is_open,
        prob_best=pb,
        n=[30, 30, 30],
        n_max=[60, 60, 60],
        previous=prev,
        min_prob=0.1,
        max_prob=0.7,
        max_change=cap,
    )
    p = res.probabilities
    op = np.array(is_open)
    assert np.all(p[~op] == 0)
    if op.sum():
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
        prev_open = np.where(op, prev, 0) / np.where(op, prev, 0).sum()
        if op.sum() >= 2:
            lo = min(0.1, 1 / op.sum())
            hi = max(0.7, 1 / op.sum())
            assert np.all(p[op] >= lo - 1e-12) and np.all(p[op] <= hi + 1e-12)
            prev_in = bound_allocation(np.where(op, prev_open, 0), np.where(op, lo, 0), np.where(op, hi, 0))
            assert np.all(np.abs(p - prev_in)[op] <= cap + 1e-12)


# ----------------------------------------------------------------------------- burn-in
def test_burn_in_keeps_the_fixed_ratio():
    rule = tw_rule(ratio={"dav": 2, "hav": 1}, burn_in=20, min_prob=0.2, max_prob=0.8)
    kw = dict(
        is_open={"dav": True, "hav": True}, max_n={"dav": 60, "hav": 60}, prob_best={"dav": 0.99, "hav": 0.01}
    )
    during = rule.allocate(**kw, n_evaluable={"dav": 25, "hav": 19})
    assert during.burn_in_active
    assert during.probabilities == pytest.approx({"dav": 2 / 3, "hav": 1 / 3})
    assert "burn-in: hav has 19 of the 20 evaluable" in during.sentence
    after = rule.allocate(**kw, n_evaluable={"dav": 25, "hav": 20})
    assert not after.burn_in_active
    c = 45 / 240  # n = 25 + 20 of N = 120
    assert after.probabilities["dav"] == pytest.approx(0.99**c / (0.99**c + 0.01**c), abs=1e-12)


def test_vectorized_equals_one_look_at_a_time():
    rng = np.random.default_rng(3)
    t = 50
    pb = rng.dirichlet([1, 1, 1], size=t)
    n = rng.integers(0, 40, size=(t, 3))
    prev = rng.dirichlet([2, 2, 2], size=t)
    is_open = rng.random((t, 3)) < 0.85
    rule = AllocationRule(
        cohort="c",
        arms=("a", "b", "c"),
        ratio={"a": 1, "b": 1, "c": 2},
        kind="thall_wathen",
        burn_in=10,
        min_prob=0.1,
        max_prob=0.75,
        max_change=0.2,
    )
    batch = rule.allocate_arrays(is_open=is_open, prob_best=pb, n=n, n_max=np.full((t, 3), 40), previous=prev)
    for i in range(t):
        one = rule.allocate(
            is_open=dict(zip("abc", is_open[i], strict=True)),
            n_evaluable=dict(zip("abc", n[i].tolist(), strict=True)),
            max_n=dict.fromkeys("abc", 40),
            prob_best=dict(zip("abc", pb[i], strict=True)),
            previous=dict(zip("abc", prev[i], strict=True)),
        )
        np.testing.assert_allclose([one.probabilities[a] for a in "abc"], batch.probabilities[i], atol=1e-12)


# ----------------------------------------------------------------------------- the value itself
def test_rule_prints_itself_in_words():
    rule = tw_rule(burn_in=20, min_prob=0.2, max_prob=0.8, max_change=0.15, endpoint_label="CRc")
    assert str(rule) == (
        "Thall-Wathen allocation P(best)^c / sum with c = n/(2N) on CRc in cohort fit (dav, hav), "
        "after a burn-in at 1:1 until every open arm has 20 evaluable, each arm within [20%, 80%], "
        "changing by at most 15% per look"
    )
    assert "sqrt(P(best) Var / (n + 1))" in str(tw_rule(kind="variance_weighted"))
    assert str(tw_rule(kind="fixed")) == "fixed allocation 1:1 (dav, hav) in cohort fit"


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"kind": "urn"}, "kind must be one of"),
        ({"min_prob": 0.6}, "min_prob must lie in"),
        ({"max_prob": 0.4}, "max_prob must lie in"),
        ({"max_change": 0.0}, "max_change must lie in"),
        ({"power": -1.0}, "power must be >= 0"),
        ({"power": "n/N"}, "power must be a number or"),
        ({"ratio": {"dav": 1}}, "ratio needs a positive weight"),
        ({"arms": ("dav",), "ratio": {"dav": 1}}, "two or more"),
    ],
)
def test_rule_validation(kw, match):
    with pytest.raises(ValueError, match=match):
        tw_rule(**kw)
