"""What the simulated DSMB does at a look: the rules' recommendations, then one action per arm.

Part of the simulator (:mod:`adaptive.simulate.engine`), vectorized over the trials of a look:
:func:`recommend_actions` calls the config's rule objects (``decide_arrays``,
``decide_beta_arrays``) on the look's posteriors (:mod:`adaptive.simulate.looks`), and
:func:`choose_actions` picks one action per open arm by the precedence and coherence rules of
:mod:`adaptive.recommend`. Applying the actions to the trials' state is the engine's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from adaptive.simulate.looks import prob_above
from decision_rules.rules import Futility, PredictiveEfficacy, PredictiveFutility, Superiority
from decision_rules.survival import HazardRatioSuperiority
from decision_rules.vocabulary import PRECEDENCE, PRIMARY_ENDPOINT, Action

if TYPE_CHECKING:
    from adaptive.simulate.engine import SimSpec


class _Recommended:
    """Per action, which arms the rules recommend it for, the first rule that did, and trial stops."""

    def __init__(self, shape: tuple[int, int]):
        actions = (*PRECEDENCE, Action.FLAG)
        self.fired = {a: np.zeros(shape, bool) for a in actions}
        self.by_rule = {a: np.full(shape, -1, np.int16) for a in actions}
        self.stop = np.zeros(shape[0], bool)

    def mark(self, action, col, f, rule_index, sel=slice(None)) -> None:
        """Record that ``rule_index`` fires ``action`` for arm ``col`` (the first rule is kept)."""
        before = self.by_rule[action][sel, col]
        self.by_rule[action][sel, col] = np.where(f & (before < 0), rule_index, before)
        self.fired[action][sel, col] |= f


def recommend_actions(spec: SimSpec, post, surv, comparisons, eligible: np.ndarray, enrolling: np.ndarray):
    """Per action, which arms the rules recommend it for (and the first rule that did).

    Returns ``(fired, by_rule, stop)``: action -> ``(R, K)`` bool, action -> ``(R, K)`` rule
    index (-1: none), and whether a ``stop_trial_on`` rule fired. Only open arms (``eligible``)
    are evaluated; futility and predictive rules only arms still enrolling (``enrolling``: stage
    ``interim``: futility stops enrolment, and an arm with its ``max_n`` has nothing left to stop).
    Survival rules (``surv``, :func:`adaptive.simulate.looks.survival_look`) read the events as of
    the look: median rules ``P(median > reference)`` per arm, hazard-ratio rules both directions
    of the pair, as :class:`~decision_rules.survival.HazardRatioSuperiority` does.
    """
    rec = _Recommended(eligible.shape)
    for ri, rule in enumerate(spec.rules):
        if getattr(rule, "family", "") == "survival":
            _survival_rule(spec, rec, ri, rule, surv[rule.endpoint])
            continue
        entry = post[rule.endpoint]
        if isinstance(rule, Superiority):
            _comparison_rule(spec, rec, ri, rule, comparisons[rule.id], eligible)
        elif isinstance(rule, PredictiveFutility | PredictiveEfficacy):
            _predictive_rule(spec, rec, ri, rule, entry, eligible, enrolling)
        else:
            _threshold_rule(spec, rec, ri, rule, entry, eligible, enrolling)
    return rec.fired, rec.by_rule, rec.stop


def _survival_rule(spec: SimSpec, rec: _Recommended, ri: int, rule, sv: dict) -> None:
    """A median or hazard-ratio rule where it can fire, on the survival posterior.

    Median rules: ``sv["masks"]`` and the endpoint's posterior; hazard-ratio rules: their pair's
    concurrently randomized patients (``sv["pairs"]``, :func:`adaptive.simulate.looks.survival_look`).
    """
    if isinstance(rule, HazardRatioSuperiority):
        pair = sv["pairs"][rule.id]
        sel = np.nonzero(pair["ok"])[0]
        if not len(sel):
            return
        at = pair["pos"][sel]
        a, b = spec.arms.index(rule.arms[0]), spec.arms.index(rule.arms[1])
        ia, ib = pair["index"][a], pair["index"][b]
        ev = pair["events"]
        p_ab = pair["post"].prob_hr_below(ia, ib, rule.hr_margin)[at]
        p_ba = pair["post"].prob_hr_below(ib, ia, rule.hr_margin)[at]
        nmin = np.minimum(ev[sel, a], ev[sel, b])
        # the more probable direction, as HazardRatioSuperiority.evaluate
        f_a = rule.decide_arrays(p_ab, nmin) & (p_ab >= p_ba)  # a better: b inferior
        f_b = rule.decide_arrays(p_ba, nmin) & (p_ba > p_ab)
        rec.mark(Action.DROP_INFERIOR, b, f_a, ri, sel)
        rec.mark(Action.DROP_INFERIOR, a, f_b, ri, sel)
        if rule.id in spec.stop_on:
            rec.stop[sel] |= f_a | f_b
        return
    ev = sv["events"]
    for i, ok in sv["masks"][rule.id].items():
        sel = np.nonzero(ok)[0]
        if not len(sel):
            continue
        at = sv["pos"][sel]
        prob = sv["post"].prob_median_above(i, rule.references[spec.arms[i]])[at]
        f = rule.decide_arrays(prob, ev[sel, i])
        rec.mark(rule.action, i, f, ri, sel)
        if rule.id in spec.stop_on:
            rec.stop[sel] |= f


def _comparison_rule(
    spec: SimSpec, rec: _Recommended, ri: int, rule: Superiority, comparison, eligible: np.ndarray
) -> None:
    """A superiority rule on its comparison (:func:`adaptive.simulate.looks.comparison`), both arms open."""
    idx = {a: i for i, a in enumerate(spec.arms)}
    i, j = idx[rule.arms[0]], idx[rule.arms[1]]
    both = eligible[:, i] & eligible[:, j]
    p_ij, p_ji, nmin = comparison
    f_ij = rule.decide_arrays(p_ij, nmin) & both  # i better: j inferior
    f_ji = rule.decide_arrays(p_ji, nmin) & both
    rec.mark(Action.DROP_INFERIOR, j, f_ij, ri)
    rec.mark(Action.DROP_INFERIOR, i, f_ji, ri)
    if rule.id in spec.stop_on:
        rec.stop |= f_ij | f_ji


def _predictive_rule(
    spec: SimSpec, rec: _Recommended, ri: int, rule, entry, eligible: np.ndarray, enrolling: np.ndarray
) -> None:
    """A predictive rule per arm still enrolling, on the arm's (moment-matched) Beta posterior."""
    idx = {a: i for i, a in enumerate(spec.arms)}
    n = entry["n"]
    for arm, _ref in rule.success_references.items():
        i = idx[arm]
        ok = eligible[:, i] & enrolling[:, i] & (n[:, i] >= rule.min_evaluable)
        sel = np.nonzero(ok)[0]
        if len(sel) == 0:
            continue
        if entry["model"].kind == "beta":
            a, b = entry["a"][sel, i], entry["b"][sel, i]
        else:  # moment-matched Beta of the arm's exact marginal posterior
            m, v = entry["mean"][sel, i], np.maximum(entry["var"][sel, i], 1e-12)
            s = np.maximum(m * (1 - m) / v - 1.0, 1e-6)
            a, b = m * s, (1 - m) * s
        _, _, f = rule.decide_beta_arrays(a, b, np.minimum(n[sel, i], spec.max_n[i]), arm)
        rec.mark(rule.action, i, f, ri, sel)
        if rule.id in spec.stop_on:
            rec.stop[sel] |= f


def _threshold_rule(
    spec: SimSpec, rec: _Recommended, ri: int, rule, entry, eligible: np.ndarray, enrolling: np.ndarray
) -> None:
    """An efficacy, futility or harm rule (each harm tier on its own) per open arm."""
    idx = {a: i for i, a in enumerate(spec.arms)}
    n = entry["n"]
    for tier in getattr(rule, "tiers", (rule,)):
        for arm, ref in tier.references.items():
            i = idx[arm]
            f = tier.decide_arrays(prob_above(entry, i, ref), n[:, i]) & eligible[:, i]
            if isinstance(rule, Futility):
                f &= enrolling[:, i]
            rec.mark(tier.action, i, f, ri)
            if rule.id in spec.stop_on and tier.action != Action.FLAG:
                rec.stop |= f


def choose_actions(
    spec: SimSpec, eligible: np.ndarray, fired, at_final: np.ndarray, comparisons
) -> np.ndarray:
    """One action per open arm (``None``: no action), ``(R, K)`` objects.

    Interim looks follow the precedence of :mod:`adaptive.recommend`; final analyses take
    safety, then the comparison, then the efficacy criterion, else ``complete``; then the
    coherence rules 2a and 2 of :func:`adaptive.recommend.check_coherence`.
    """
    chosen = np.full(eligible.shape, None, object)
    # interim looks: the precedence of adaptive.recommend (flag changes nothing)
    interim = eligible & ~at_final
    for action in PRECEDENCE:
        if action in (Action.FLAG, Action.COMPLETE):
            continue
        pick = fired[action] & interim & (chosen == None)  # noqa: E711
        chosen[pick] = action
    # final analyses: safety, then the comparison, then the efficacy criterion, else complete
    final = eligible & at_final
    for action in (Action.DROP_HARM, Action.DROP_INFERIOR, Action.GRADUATE):
        pick = fired[action] & final & (chosen == None)  # noqa: E711
        chosen[pick] = action
    chosen[final & (chosen == None)] = Action.COMPLETE  # noqa: E711
    # coherence rule 2a: comparisons of a randomized pair that find opposite arms inferior at
    # one look close neither (adaptive.recommend.check_coherence)
    for cohort in spec.randomized_cohorts:
        cols = list(cohort)
        for a_i, x in enumerate(cols):
            for y in cols[a_i + 1 :]:
                both = (chosen[:, x] == Action.DROP_INFERIOR) & (chosen[:, y] == Action.DROP_INFERIOR)
                both &= eligible[:, x] & eligible[:, y]
                for c in (x, y):  # at a final analysis the arm completes instead
                    chosen[both, c] = np.where(at_final[both, c], Action.COMPLETE, None)
    # coherence rule 2: never close the leading arm of an open comparison for a non-safety
    # reason while the trailing arm stays open
    for rule in spec.rules:
        if not isinstance(rule, Superiority) or rule.endpoint != PRIMARY_ENDPOINT:
            continue
        i, j = spec.arms.index(rule.arms[0]), spec.arms.index(rule.arms[1])
        p_ij, _, _ = comparisons[rule.id]
        lead = np.where(p_ij >= 0.5, i, j)
        trail = np.where(p_ij >= 0.5, j, i)
        r_idx = np.arange(len(chosen))
        lead_act = chosen[r_idx, lead]
        trail_stays = eligible[r_idx, trail] & (chosen[r_idx, trail] == None)  # noqa: E711
        withhold = (
            eligible[r_idx, lead]
            & ~at_final[r_idx, lead]
            & np.isin(lead_act, [Action.DROP_FUTILITY, Action.GRADUATE, Action.DROP_INFERIOR])
            & trail_stays
        )
        chosen[r_idx[withhold], lead[withhold]] = None
    return chosen
