"""What the simulator reads at a look: exact posteriors, comparisons, final-analysis stages.

Part of the simulator (:mod:`adaptive.simulate.engine`), vectorized over the trials ``rows`` that
have a look: the posterior of every endpoint a rule or an allocation uses (conjugate Beta, or
hierarchical/EXNEX by tabulated quadrature), each superiority rule's comparison on its
concurrently randomized patients, which arms are at their final analysis, and the survival
endpoints' events and posteriors where a rule can fire. Nothing here changes a trial's state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from adaptive.simulate.kernels import ACTIVE, COMPLETE, SUSPENDED
from decision_rules.beta import beta_prob_best, beta_prob_better
from decision_rules.rules import Superiority
from decision_rules.survival import HazardRatioSuperiority, MedianFutility

if TYPE_CHECKING:
    from adaptive.simulate.engine import SimSpec
    from adaptive.simulate.patients import Patients

#: status codes of the arms still open (enrolling, accrual complete, or suspended)
OPEN = (ACTIVE, COMPLETE, SUSPENDED)
#: two-arm P(best) of the Beta posteriors this process has met (the memo of
#: :func:`decision_rules.beta.beta_prob_best`, a pure function of each row): a worker's later
#: chunks, and calibration's reruns of the same trials at other thresholds, meet many again
PAIR_MEMO: dict = {}


# ============================================================================= posteriors
def posteriors(spec: SimSpec, patients: Patients, rows, when) -> dict[str, dict]:
    """Per endpoint: counts ``n``, ``y`` and the posterior (``a``, ``b`` or the quadrature batch)."""
    post = {}
    for name, em in spec.endpoints.items():
        n, y = patients.counts(rows, name, when)
        entry = {"n": n, "y": y, "model": em}
        if em.kind == "beta":
            entry["a"] = em.a0 + y
            entry["b"] = em.b0 + n - y
        else:
            w = None
            if em.uses_weights:
                w = np.where(n >= em.exchangeable_after, em.w_base, 0.0)
            bp = em.batch.posterior(n, y, w=w)
            entry["batch"] = bp
            entry["mean"], entry["var"] = bp.mean_var()
            entry["prob_above"] = bp.prob_above()
        post[name] = entry
    return post


def prob_above(entry, arm: int, ref: float) -> np.ndarray:
    """``P(p_arm > ref)`` of one endpoint's posterior, per trial."""
    em = entry["model"]
    if em.kind == "beta":
        return em.beta_prob_above(arm, ref, entry["n"][:, arm], entry["y"][:, arm])
    return entry["prob_above"][:, arm, em.thresholds[(arm, float(ref))]]


def mean_var(entry) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and variance per trial and arm."""
    if entry["model"].kind == "beta":
        a, b = entry["a"], entry["b"]
        s = a + b
        return a / s, a * b / (s * s * (s + 1.0))
    return entry["mean"], entry["var"]


def as_beta(entry, mean: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The CRc posterior as ``Beta(a, b)``.

    Exact for conjugate arms; for hierarchical and EXNEX models the Beta with the marginal
    posterior's mean and variance (the quadrature engine gives moments and tail probabilities
    at the rules' thresholds, not quantiles).
    """
    if entry["model"].kind == "beta":
        return entry["a"], entry["b"]
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.maximum(mean * (1.0 - mean) / var - 1.0, 1e-6)
    return mean * s, (1.0 - mean) * s


def prob_better(entry, i: int, j: int) -> np.ndarray:
    """``P(arm i better than arm j)``, computed once per look and endpoint.

    Hierarchical models compute it only for the trials where a rule or an allocation will
    use it (``entry["pair_rows"]``, set by :func:`mark_pair_rows`); the others get NaN.
    Beta models keep both directions of the one quadrature: ``P(arm j best)`` of the pair
    ``(i, j)`` is bit for bit ``P(arm j best)`` of the pair ``(j, i)`` (the two-arm kernel of
    :func:`decision_rules.beta.beta_prob_best` treats its arms symmetrically; tested).
    """
    cache = entry.setdefault("pairs", {})
    if (j, i) in cache and (i, j) not in cache:
        return 1.0 - cache[(j, i)]
    if (i, j) not in cache:
        em = entry["model"]
        if em.kind == "beta":
            a, b = entry["a"], entry["b"]
            pb = beta_prob_best(
                a[:, [i, j]], b[:, [i, j]], higher_is_better=em.higher_is_better, memo=PAIR_MEMO
            )
            cache[(i, j)], cache[(j, i)] = pb[:, 0], pb[:, 1]
        else:
            rows = entry.get("pair_rows", {}).get(frozenset((i, j)))
            cache[(i, j)] = entry["batch"].prob_better(i, j, em.higher_is_better, rows=rows)
    return cache[(i, j)]


def mark_pair_rows(spec: SimSpec, status: np.ndarray, post) -> None:
    """Mark which trials need each compared pair's probability on the fitted model.

    Only adaptive allocations past their burn-in (both arms open) compare arms on the fitted
    model; comparison rules read their own independent Beta posterior (:func:`comparison`).
    ``status``: the arms' status codes of the look's trials.
    """
    idx = {a: i for i, a in enumerate(spec.arms)}
    need: dict[tuple, np.ndarray] = {}
    for rule in spec.alloc_rules:
        if rule.kind == "fixed" or len(rule.arms) != 2:
            continue
        i, j = idx[rule.arms[0]], idx[rule.arms[1]]
        n = post[rule.endpoint]["n"]
        ok = (status[:, i] == ACTIVE) & (status[:, j] == ACTIVE)
        ok &= np.minimum(n[:, i], n[:, j]) >= rule.burn_in
        key = (rule.endpoint, frozenset((i, j)))
        need[key] = need.get(key, np.zeros(len(status), bool)) | ok
    for (endpoint, pair), mask in need.items():
        post[endpoint].setdefault("pair_rows", {})[pair] = np.nonzero(mask)[0]


# ============================================================================= comparisons
def comparison(
    spec: SimSpec, patients: Patients, opened_at: np.ndarray, rows, when, rule: Superiority, post=None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(P(a better), P(b better), min evaluable)`` of a superiority rule, per trial of ``rows``.

    As in `adaptive interim`: the concurrently randomized patients (randomized, arrived once
    both arms were open, ``opened_at``: ``(T, K)`` days) with the rule's independent conjugate
    Beta prior per arm. ``post``: the look's posteriors (:func:`posteriors`); where the
    comparison's Beta posterior is the endpoint's own, its probability is shared
    (:func:`prob_better`).
    """
    i, j = spec.arms.index(rule.arms[0]), spec.arms.index(rule.arms[1])
    since = np.maximum(opened_at[rows, i], opened_at[rows, j])
    since = np.where(np.isfinite(since), since, np.inf)
    n, y = patients.counts_randomized(rows, rule.endpoint, when, since)
    a_, b_ = rule.posterior_ab(
        {x: n[:, k] for x, k in zip(rule.arms, (i, j), strict=True)},
        {x: y[:, k] for x, k in zip(rule.arms, (i, j), strict=True)},
    )
    first, second = rule.arms
    hib = rule.higher_is_better
    entry = post.get(rule.endpoint) if post is not None else None
    if (
        entry is not None
        and rule.margin_rate == 0.0
        and entry["model"].kind == "beta"
        and entry["model"].higher_is_better == hib
        and all(np.array_equal(a_[x], entry["a"][:, k]) for x, k in ((first, i), (second, j)))
        and all(np.array_equal(b_[x], entry["b"][:, k]) for x, k in ((first, i), (second, j)))
    ):
        # the same numbers as the endpoint's own posterior (every patient randomized while both
        # arms were open, the rule's prior the model's): one quadrature for the rule and the
        # allocation, the same function of the same numbers (tests/test_sim_kernels.py)
        p_ij = prob_better(entry, i, j)
    else:
        p_ij = beta_prob_better(
            a_[first], b_[first], a_[second], b_[second], rule.margin_rate, higher_is_better=hib
        )
    p_ji = (
        1.0 - p_ij
        if rule.margin_rate == 0.0
        else beta_prob_better(
            a_[second], b_[second], a_[first], b_[first], rule.margin_rate, higher_is_better=hib
        )
    )
    return p_ij, p_ji, np.minimum(n[:, i], n[:, j])


# ============================================================================= stages
def stage_final(spec: SimSpec, status: np.ndarray, enrolled: np.ndarray, post, final: bool) -> np.ndarray:
    """Which open arms are at their final analysis, ``(len(rows), K)``.

    An arm is when it has its ``max_n`` and no outcome pending on its decision endpoints; an
    arm of a randomized cohort only with every other open arm of the cohort. At the trial's
    own final analysis (``final``) every open arm is. ``status`` and ``enrolled``: the look's
    trials' arm status codes and enrolment counts.
    """
    is_open = np.isin(status, OPEN)
    if final:
        return is_open
    own = is_open & (enrolled >= spec.max_n)
    for k, eps in enumerate(spec.decision_endpoints):
        for ep in eps:
            own[:, k] &= post[ep]["n"][:, k] >= enrolled[:, k]
    out = own.copy()
    for cohort in spec.randomized_cohorts:
        cols = list(cohort)
        ready = np.all(own[:, cols] | ~is_open[:, cols], axis=1)
        out[:, cols] &= ready[:, None]
    return out


# ============================================================================= survival
def survival_look(
    spec: SimSpec, patients: Patients, rows, when, eligible, enrolling, opened_at: np.ndarray
) -> dict[str, dict]:
    """Per survival endpoint: events per arm, where each rule can fire, and the posterior there.

    The posterior (:class:`models.survival_batch.SurvivalBatch`) is computed only for the
    trials where some rule has its minimum of events on an arm it may act on, and for the
    arms the rules read. A hazard-ratio rule reads, as at an interim look
    (:mod:`adaptive.survival_comparison`), the concurrently randomized patients of its two arms
    (randomized, arrived once both were open: ``opened_at``, ``(T, K)`` days), on the endpoint's
    model over the pair alone (``spec.pair_batches``); its ``min_events`` counts them
    (``out[ep]["pairs"][rule.id]``: ``events``, ``ok``, ``pos``, ``post``, ``index``).
    """
    idx = {a: i for i, a in enumerate(spec.arms)}
    out = {}
    for ep, sm in spec.survival.items():
        d, e, n0, d0 = patients.survival_counts(rows, when, sm)
        ev = d.sum(-1) if d0 is None else d.sum(-1) + d0  # EFS: treatment failures are events
        masks = {}
        pairs = {}
        for rule in spec.rules:
            if getattr(rule, "family", "") != "survival" or rule.endpoint != ep:
                continue
            if isinstance(rule, HazardRatioSuperiority):
                pairs[rule.id] = _pair_look(spec, patients, rows, when, eligible, opened_at, rule, sm)
            else:
                m = {}
                for arm in rule.references:
                    i = idx[arm]
                    ok = eligible[:, i] & (ev[:, i] >= rule.min_evaluable)
                    if isinstance(rule, MedianFutility):  # futility acts only while an arm enrols
                        ok &= enrolling[:, i]
                    m[i] = ok
                masks[rule.id] = m
        union = np.zeros(len(rows), bool)
        need = set()
        for m in masks.values():
            for i, ok in m.items():
                union |= ok
                if ok.any():
                    need.add(i)
        sel = np.nonzero(union)[0]
        pos = np.cumsum(union) - 1
        mass = {} if n0 is None or d0 is None else {"n0": n0[sel], "d0": d0[sel]}
        post = sm.batch.posterior(d[sel], e[sel], need=sorted(need), **mass) if len(sel) else None
        out[ep] = {"events": ev, "masks": masks, "pos": pos, "post": post, "pairs": pairs}
    return out


def _pair_look(spec: SimSpec, patients: Patients, rows, when, eligible, opened_at, rule, sm) -> dict:
    """A hazard-ratio rule's events and posterior on its concurrently randomized patients."""
    i, j = spec.arms.index(rule.arms[0]), spec.arms.index(rule.arms[1])
    since = np.maximum(opened_at[rows, i], opened_at[rows, j])
    since = np.where(np.isfinite(since), since, np.inf)
    d, e, n0, d0 = patients.survival_counts(rows, when, sm, since=since)
    ev = d.sum(-1) if d0 is None else d.sum(-1) + d0
    ok = eligible[:, i] & eligible[:, j] & (np.minimum(ev[:, i], ev[:, j]) >= rule.min_evaluable)
    sel = np.nonzero(ok)[0]
    cols = sorted((i, j))  # the pair batch's arms, in the design's order
    post = spec.pair_batches[rule.id].posterior(d[sel][:, cols], e[sel][:, cols]) if len(sel) else None
    return {
        "events": ev,
        "ok": ok,
        "pos": np.cumsum(ok) - 1,
        "post": post,
        "index": {k: cols.index(k) for k in cols},
    }
