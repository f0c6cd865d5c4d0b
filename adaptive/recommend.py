"""Rule results and arm state -> the ``recommendations`` a DSMB reads, checked for coherence.

Every recommendation has an ``action`` from one vocabulary
(:class:`~decision_rules.vocabulary.Action`), the ``arm`` (or ``arms``) it concerns, the rule
results behind it, and a ``sentence``. They are recommendations: nothing is ever dropped,
graduated or opened automatically; the DSMB decides and the statistician records the decision in
the config (arm ``status``), which the next look reads.

**Per open arm** (status ``active`` or ``suspended``) one recommendation, by the arm's
:class:`~decision_rules.vocabulary.Stage`:

* ``interim`` and ``accrual_complete``: the fired rules (futility and predictive rules only
  while the arm is enrolling: futility stops enrolment, and an arm with its ``max_n`` has none
  left to stop; they are reported as not applied); when several fire the action follows
  :data:`~decision_rules.vocabulary.PRECEDENCE`: ``drop_harm`` > ``suspend_enrolment`` >
  ``drop_futility`` > ``drop_inferior`` > ``graduate`` > ``flag`` (safety first; an arm that
  cannot reach a worthwhile rate is dropped even if it beats the null; dropping the inferior arm
  of a randomized pair outranks any single-arm signal). The other rules that fired are listed in
  ``also_fired`` and named in the sentence. No rule firing: ``continue``.
* ``final_analysis`` (``max_n`` enrolled, no outcome pending; for a randomized cohort, every
  open arm of the cohort there): the final result, never a predictive or interim futility
  decision. The arm's efficacy rules are applied once more: met -> ``graduate`` ("final analysis:
  criterion met"), else ``complete`` ("criterion not met", with the estimate, its interval and
  the distance to the criterion). A randomized pair is decided by its comparison: the inferior
  arm ``drop_inferior``, the other ``complete``; undecided, both ``complete``. Harm tiers still
  act (safety first). Futility and predictive rules are reported as not applied.

Every arm's sentence names its **safety signals**: any mortality endpoint with ``P(rate > the
arm's reference rate) > safety.signal_prob``, whether or not a harm rule fires.

Then one ``adjust_randomization`` per randomized cohort whose allocation moved by at least half a
percentage point, and one ``add_arm`` per queued arm whose entry conditions hold
(:mod:`adaptive.queue`).

**Coherence** (:func:`check_coherence`), over the whole set, before anything is printed. Its
precedence, documented and reported in ``coherence``, never silent:

1. Safety recommendations (``drop_harm``, ``suspend_enrolment``) always stand.
2. A closing recommendation for the *leading* arm of an open randomized comparison, for any
   reason but safety, that would leave only the trailing arm open is withheld (``continue``, with
   ``withheld`` saying what and why): the randomized question is answered by the comparison.
   Before that, **conflicting comparisons**: when two comparison rules of one randomized pair
   find opposite arms inferior at one look (say CRc favours HAV and OS favours DAV), both
   ``drop_inferior`` recommendations are withheld (``continue``, or ``complete`` at the final
   analysis; ``reason: conflicting_comparisons``): closing both arms of the randomized
   question because each loses on a different endpoint is not a decision the data support;
   the DSMB weighs the endpoints.
3. No allocation change involves an arm recommended to close or suspend: the cohort's
   allocation is recomputed without those arms (or, with one arm left, dropped).
4. Every closing or suspending recommendation states its consequence if the look's
   recommendations are accepted: the cohort's allocation, a cohort left with no open arm and
   where its patients go, queued arms that could open.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from adaptive.config import Design, rate_key
from adaptive.endpoints import BINARY_ENDPOINTS, SURVIVAL_ENDPOINTS
from adaptive.provenance import recommendation_references, reference_note
from adaptive.queue import QueueDecision, evaluate_queue
from decision_rules import SURVIVAL_RULE_KINDS, Allocation, RuleResult
from decision_rules.beta import beta_prior
from decision_rules.predictive import beta_critical_counts
from decision_rules.vocabulary import (
    CLOSING,
    FUTILITY_KINDS,
    PRECEDENCE,
    PRIMARY_ENDPOINT,
    Action,
    ArmStatus,
    RuleKind,
    Stage,
    fmt_prob,
    fmt_rate,
)

if TYPE_CHECKING:  # annotations only: the simulator imports this module and needs no pandas
    from adaptive.derive import DerivedData

__all__ = [
    "ACTIONS",
    "PRECEDENCE",
    "CLOSING",
    "arm_stages",
    "decision_endpoints",
    "safety_signals",
    "build_recommendations",
    "check_coherence",
    "closing_arms",
]

ACTIONS = tuple(Action)
PREDICTIVE = (RuleKind.PREDICTIVE_FUTILITY, RuleKind.PREDICTIVE_EFFICACY)
#: actions that take an arm out of enrolment if accepted (closing, or a pause)
_STOPS_ENROLMENT = (*CLOSING, Action.SUSPEND_ENROLMENT)
_SAFETY = (Action.DROP_HARM, Action.SUSPEND_ENROLMENT)

_VERB = {
    Action.DROP_HARM: "Recommend dropping {arm} for harm.",
    Action.SUSPEND_ENROLMENT: "Recommend suspending enrolment in {arm} pending a safety review.",
    Action.DROP_FUTILITY: "Recommend dropping {arm} for futility.",
    Action.DROP_INFERIOR: "Recommend dropping {arm} as inferior to {other}.",
    Action.GRADUATE: "Recommend graduating {arm} (its single-arm criterion against its null rate: not a "
    "comparison with another treatment).",
    Action.FLAG: "Flag {arm} for the DSMB's safety review (enrolment continues).",
}


def compact(r: RuleResult) -> dict:
    """The fields of a rule result that a recommendation cites."""
    return {
        "rule": r.rule,
        "kind": r.kind,
        "action": r.action,
        "endpoint": r.endpoint,
        "arms": list(r.arms),
        "prob": r.prob,
        "mcse": r.mcse,
        "threshold": r.threshold,
        "comparison": r.comparison,
        "evaluated": r.evaluated,
        "fired": r.fired,
        "mc_uncertain": r.mc_uncertain,
    }


def _target_arm(r: RuleResult) -> str:
    """The arm a rule's action applies to (the inferior arm for a comparison).

    Keyed on the action, not the kind: every pairwise rule that recommends ``drop_inferior``
    (``superiority``, ``hazard_ratio``) lists the better arm first and names the ``inferior`` one.
    """
    if r.action == Action.DROP_INFERIOR:
        return str(r.extra.get("inferior", r.arms[-1]))
    return r.arms[0]


# ============================================================================= stages
def decision_endpoints(design: Design, arm: str) -> set[str]:
    """Binary endpoints whose outcomes an arm's decisions wait for.

    The endpoints of the efficacy, futility, predictive and comparison rules that cover the arm;
    the primary endpoint when none does (a descriptive arm).
    """
    out = set()
    for rule in design.rules:
        if rule.family != "binary" or rule.kind == RuleKind.HARM:
            continue
        covered = getattr(rule, "arms", None) or ()
        covered = (
            set(covered) | set(getattr(rule, "references", {})) | set(getattr(rule, "success_references", {}))
        )
        if arm in covered:
            out.add(rule.endpoint)
    return out or {PRIMARY_ENDPOINT}


def _own_stage(design: Design, derived: DerivedData, arm: str) -> Stage:
    a = design.arm(arm)
    if derived.n_enrolled.get(arm, 0) < a.max_n:
        return Stage.INTERIM
    pending = sum(
        derived.counts[ep][arm].n_pending for ep in decision_endpoints(design, arm) if ep in derived.counts
    )
    return Stage.ACCRUAL_COMPLETE if pending else Stage.FINAL_ANALYSIS


def arm_stages(design: Design, derived: DerivedData) -> dict[str, Stage]:
    """The :class:`~decision_rules.vocabulary.Stage` of every open arm.

    An arm of a randomized cohort reaches its final analysis only with every other open arm of
    its cohort: the comparison is final when all its arms are.
    """
    own = {a.id: _own_stage(design, derived, a.id) for a in design.arms if a.is_open}
    out = dict(own)
    for arm, stage in own.items():
        step = design.randomized_cohort_of(arm)
        if stage != Stage.FINAL_ANALYSIS or step is None:
            continue
        partners = [b for b in step.arms if b != arm and b in own]
        if any(own[b] != Stage.FINAL_ANALYSIS for b in partners):
            out[arm] = Stage.ACCRUAL_COMPLETE
    return out


# ============================================================================= safety signals
def safety_signals(design: Design, arm: str, arm_summary: Mapping | None) -> list[dict]:
    """Mortality endpoints of an arm with ``P(rate > reference) > safety.signal_prob``.

    The reference is the arm's ``null_rate`` of the endpoint (its expected mortality), with its
    provenance key, grade and source (``reference_key``, ``reference_grade``, ``reference_source``).
    Named in the arm's sentence whether or not a harm rule fires, so that a signal is never buried.
    """
    level = design.safety.signal_prob
    out = []
    for ep, e in ((arm_summary or {}).get("endpoints") or {}).items():
        spec = BINARY_ENDPOINTS.get(ep)
        if spec is None or spec.direction != "lower_is_better" or e.get("prob_above_null") is None:
            continue
        p = float(e["prob_above_null"])
        if p <= level:
            continue
        key = rate_key(arm, ep, "null_rate")
        prov = design.provenance.get(key)
        n, y = e.get("n_evaluable", 0), e.get("responders", 0)
        observed = y / n if n else None
        out.append(
            {
                "endpoint": ep,
                "events": y,
                "n_evaluable": n,
                "observed_rate": observed,
                "reference_rate": e.get("null_rate"),
                "reference_key": key,
                "reference_grade": prov.grade if prov else None,
                "reference_source": prov.source if prov else None,
                "prob_above_reference": p,
                "limit_rate": e.get("limit_rate"),
                "prob_above_limit": e.get("prob_above_limit"),
                "signal_prob": level,
                "sentence": (
                    f"{spec.label} {y}/{n} ({fmt_rate(observed, trim=False)}) against the arm's reference of "
                    f"{fmt_rate(e.get('null_rate'))}: P(> {fmt_rate(e.get('null_rate'))}) is {fmt_prob(p)}"
                    + (
                        f", P(> harm limit {fmt_rate(e['limit_rate'])}) {fmt_prob(e['prob_above_limit'])}"
                        if e.get("limit_rate") is not None and e.get("prob_above_limit") is not None
                        else ""
                    )
                ),
            }
        )
    return out


def _signals_text(signals: Sequence[Mapping]) -> str:
    if not signals:
        return ""
    return " Safety signal: " + "; ".join(s["sentence"] for s in signals) + "."


# ============================================================================= per arm
def _key_probs(arm_summary: Mapping | None, endpoint: str = PRIMARY_ENDPOINT) -> str:
    if not arm_summary:
        return ""
    ep = arm_summary.get("endpoints", {}).get(endpoint) or {}
    label = BINARY_ENDPOINTS[endpoint].label
    parts = []
    for key, rate in (("prob_above_null", "null_rate"), ("prob_above_target", "target_rate")):
        if ep.get(key) is not None:
            parts.append(f"P({label} > {fmt_rate(ep[rate])}) {fmt_prob(ep[key])}")
    return ", ".join(parts)


def _estimate(arm_summary: Mapping | None, endpoint: str = PRIMARY_ENDPOINT) -> str:
    """``CRc 10/40 (25%), posterior mean 25.3% (95% CrI 14.5-37.9%)``."""
    ep = ((arm_summary or {}).get("endpoints") or {}).get(endpoint) or {}
    if not ep:
        return ""
    label = BINARY_ENDPOINTS[endpoint].label
    out = f"{label} {ep.get('responders')}/{ep.get('n_evaluable')}"
    if ep.get("observed_rate") is not None:
        out += f" ({fmt_rate(ep['observed_rate'], trim=False)})"
    if ep.get("mean") is not None:
        out += (
            f", posterior mean {fmt_rate(ep['mean'], trim=False)} (95% CrI "
            f"{fmt_rate(ep['ci95_low'], trim=False)}-{fmt_rate(ep['ci95_high'], trim=False)})"
        )
    return out


def _final_probabilities(arm_summary: Mapping | None) -> dict:
    out = {}
    for ep, e in (arm_summary or {}).get("endpoints", {}).items():
        out[ep] = {
            k: e.get(k)
            for k in (
                "n_evaluable",
                "responders",
                "n_pending",
                "mean",
                "ci95_low",
                "ci95_high",
                "prob_above_null",
                "prob_above_target",
                "prob_above_limit",
            )
            if k in e
        }
    return out


def _critical_count(design: Design, r: RuleResult, arm: str, n: int) -> int | None:
    """Fewest responders of ``n`` that meet a conjugate efficacy rule (``None``: not conjugate or none)."""
    cfg = design.endpoints[r.endpoint].model
    if cfg.kind != "independent" or r.kind != RuleKind.EFFICACY:
        return None
    a0, b0 = beta_prior(cfg.prior, design.arm(arm).rates[r.endpoint].null_rate)
    crit = int(beta_critical_counts(a0, b0, n, float(r.extra["reference"]), r.threshold))
    return crit if crit <= n else None


def _criterion_words(design: Design, arm: str, r: RuleResult, arm_summary: Mapping | None) -> str:
    """How far an efficacy rule is from being met at the final analysis."""
    gap = r.threshold - r.prob
    words = (
        f"'{r.rule}' requires {r.quantity} > {fmt_rate(r.threshold)}; it is {fmt_prob(r.prob)} "
        f"({100 * gap:.1f} percentage points short)"
    )
    ep = ((arm_summary or {}).get("endpoints") or {}).get(r.endpoint) or {}
    n, y = ep.get("n_evaluable"), ep.get("responders")
    if n:
        crit = _critical_count(design, r, arm, int(n))
        if crit is not None:
            words += f"; it would have needed at least {crit} responders of {n} (observed {y})"
    return words


def _not_applied_notes(results: Sequence[RuleResult], arm: str) -> str:
    would = [
        r
        for r in results
        if arm == _target_arm(r)
        and (r.extra.get("would_fire") or (r.fired and r.kind in (*FUTILITY_KINDS, *PREDICTIVE)))
    ]
    if not would:
        return ""
    return (
        " Not applied now that accrual is complete, though they would fire: "
        + "; ".join(f"'{r.rule}' ({r.quantity} {fmt_prob(r.prob)})" for r in would)
        + "; the DSMB may weigh them."
    )


def _days(x: float | None) -> str:
    return "not reached" if x is None else f"{x:.0f} days"


def model_misfits(arm_summary: Mapping | None) -> list[dict]:
    """The arm's survival endpoints whose model fails its check against Kaplan-Meier."""
    out = []
    for ep, s in ((arm_summary or {}).get("survival") or {}).items():
        chk = (s or {}).get("model_check")
        if not chk or not chk.get("misfit"):
            continue
        lo, hi = chk["predictive_interval_km_median"]
        hi_s = "not reached" if hi is None else f"{hi:.0f}"
        lo_s = "not reached" if lo is None else f"{lo:.0f}"
        out.append(
            {
                "endpoint": ep,
                "p_value": chk["p_value"],
                "sentence": f"the {SURVIVAL_ENDPOINTS[ep].label} model does not follow the arm's "
                f"Kaplan-Meier curve (KM median {_days(chk['km_median_days'])}, the model's 95% "
                f"predictive interval {lo_s}-{hi_s}; predictive p = {chk['p_value']:.3f})",
            }
        )
    return out


def arm_recommendation(
    design: Design,
    derived: DerivedData,
    arm: str,
    results: Sequence[RuleResult],
    arm_summary: Mapping | None = None,
    stage: Stage | None = None,
) -> dict:
    """The recommendation for one open arm; a survival model that misfits its data is named.

    ``references``: the config reference values its rules were compared against, with their
    recorded grade and source (:mod:`adaptive.provenance`); ``rests_on_unverified`` and
    ``reference_note`` say when any is not a verified published figure.
    """
    rec = _arm_recommendation(design, derived, arm, results, arm_summary, stage)
    cited = {(c["rule"], tuple(c["arms"])) for c in rec["rules"] + rec["also_fired"]}
    refs = recommendation_references(design, [r for r in results if (r.rule, tuple(r.arms)) in cited])
    note = reference_note(refs)
    rec.update(references=refs, rests_on_unverified=bool(note), reference_note=note)
    misfits = model_misfits(arm_summary)
    rec["model_misfits"] = misfits
    if misfits:
        rec["sentence"] += (
            " Survival model check: "
            + "; ".join(m["sentence"] for m in misfits)
            + ". Read that endpoint's estimates and rules for this arm with care (the memo shows the "
            "Kaplan-Meier curve against the model)."
        )
    return rec


def _arm_recommendation(
    design: Design,
    derived: DerivedData,
    arm: str,
    results: Sequence[RuleResult],
    arm_summary: Mapping | None = None,
    stage: Stage | None = None,
) -> dict:
    """The recommendation for one open arm from the rule results that concern it."""
    a = design.arm(arm)
    name = design.display_name(arm)
    stage = stage or _own_stage(design, derived, arm)
    mine = [r for r in results if _target_arm(r) == arm and r.action in PRECEDENCE]
    fired = [r for r in mine if r.fired]
    n_enrolled = derived.n_enrolled.get(arm, 0)
    complete = n_enrolled >= a.max_n
    evaluated_rules = [compact(r) for r in results if arm in r.arms]
    signals = safety_signals(design, arm, arm_summary)
    base = {
        "arm": arm,
        "arms": [arm],
        "label": a.label,
        "status": a.status,
        "stage": stage,
        "n_enrolled": n_enrolled,
        "max_n": a.max_n,
        "complete": complete,
        "safety_signals": signals,
    }
    if complete:
        base["final_probabilities"] = _final_probabilities(arm_summary)
    if stage == Stage.FINAL_ANALYSIS:
        return _final_recommendation(design, arm, results, fired, arm_summary, base, signals)
    if fired:
        return _fired_recommendation(design, arm, fired, base, signals, complete, n_enrolled)
    probs = _key_probs(arm_summary)
    probs_s = f"; {probs}" if probs else ""
    pp = [r for r in results if arm in r.arms and r.kind.startswith("predictive") and r.evaluated]
    pp_s = "".join(f"; predictive probability of success {fmt_prob(r.prob)} ('{r.rule}')" for r in pp)
    not_yet = [r for r in mine if not r.evaluated]
    wait = ""
    if not_yet:
        events = " or events" if any(r.kind in SURVIVAL_RULE_KINDS for r in not_yet) else ""
        names = ", ".join(dict.fromkeys(r.rule for r in not_yet))
        wait = f"; {names} wait{'s' if len(not_yet) == 1 else ''} for more evaluable patients{events}"
    descriptive = " (descriptive arm: counts, estimates and safety only)" if a.is_descriptive else ""
    if stage == Stage.ACCRUAL_COMPLETE:
        pending = sum(derived.counts[ep][arm].n_pending for ep in decision_endpoints(design, arm))
        step = design.randomized_cohort_of(arm)
        waiting = [
            b
            for b in (step.arms if step else ())
            if b != arm and design.arm(b).is_open and _own_stage(design, derived, b) != Stage.FINAL_ANALYSIS
        ]
        if pending:
            then = f"{pending} outcome(s) still pending; the final analysis follows once they are in"
        else:
            then = "every outcome is in"
        if waiting:
            then += (
                f"; the final analysis of the randomized comparison waits for "
                f"{', '.join(design.display_name(b) for b in waiting)} to complete"
            )
        sentence = (
            f"No rule fires for {name}{descriptive}: accrual complete ({n_enrolled} of {a.max_n} "
            f"enrolled), follow-up continues{probs_s}{pp_s}; {then}."
        )
    else:
        state = "stays suspended" if a.status == ArmStatus.SUSPENDED else "continues"
        sentence = (
            f"No rule fires for {name}{descriptive}: it {state} ({n_enrolled} of {a.max_n} "
            f"enrolled{probs_s}{pp_s}{wait})."
        )
    if a.status == ArmStatus.SUSPENDED:
        sentence += (
            " No harm tier at or above suspend_enrolment fires at this look: the DSMB may consider "
            "resuming enrolment."
        )
    uncertain = [r for r in mine if r.evaluated and r.mc_uncertain]
    if uncertain:
        sentence += (
            f" {', '.join(repr(r.rule) for r in uncertain)} lie(s) within Monte Carlo error of the "
            "threshold: this look's posterior draws do not settle whether it fires, so 'no rule "
            "fires' is provisional."
        )
    return {
        **base,
        "action": Action.CONTINUE,
        "reason": "no_rule_fired",
        "rules": evaluated_rules,
        "also_fired": [],
        "mc_uncertain": bool(uncertain),
        "sentence": sentence + _signals_text(signals),
    }


def _cited(r: RuleResult) -> str:
    """A rule's sentence inside a recommendation, without the rule's own "(recommend: ...)"."""
    return r.sentence.replace(f" (recommend: {r.action})", "")


def _choose(fired: Sequence[RuleResult]) -> tuple[RuleResult, list[RuleResult], list[RuleResult]]:
    order = {act: i for i, act in enumerate(PRECEDENCE)}
    fired = sorted(fired, key=lambda r: (order[r.action], r.rule))
    chosen = fired[0]
    drivers = [r for r in fired if r.action == chosen.action]
    others = [r for r in fired if r.action != chosen.action]
    return chosen, drivers, others


def _fired_recommendation(design, arm, fired, base, signals, complete, n_enrolled) -> dict:
    a = design.arm(arm)
    chosen, drivers, others = _choose(fired)
    action = chosen.action
    other_arm = (
        design.display_name(str(chosen.extra.get("better", ""))) if action == Action.DROP_INFERIOR else ""
    )
    sentence = _VERB[action].format(arm=design.display_name(arm), other=other_arm) + " "
    sentence += " ".join(_cited(r) for r in drivers)
    if others:
        sentence += (
            f" Also fired: {', '.join(f'{r.rule} ({r.action})' for r in others)}; by the precedence "
            "harm > suspension > futility > inferiority > efficacy > flag the recommendation is "
            f"{action}. The DSMB should weigh both."
        )
    if complete:
        sentence += f" The arm has reached its maximum sample size ({n_enrolled} of {a.max_n} enrolled)."
    if a.status == ArmStatus.SUSPENDED:
        sentence += " The arm is currently suspended."
    return {
        **base,
        "action": action,
        "reason": chosen.kind,
        "rules": [compact(r) for r in drivers],
        "also_fired": [compact(r) for r in others],
        "mc_uncertain": any(r.mc_uncertain for r in drivers),
        "sentence": sentence + _signals_text(signals),
    }


def _decided(base, action, reason, result, drivers, head, tail, signals) -> dict:
    """A final analysis decided by fired rules (``drivers``): the recommendation dict."""
    return {
        **base,
        "action": action,
        "reason": reason,
        "final_result": result,
        "rules": [compact(r) for r in drivers],
        "also_fired": [],
        "mc_uncertain": any(r.mc_uncertain for r in drivers),
        "sentence": head + " ".join(_cited(r) for r in drivers) + tail + _signals_text(signals),
    }


def _final_recommendation(design, arm, results, fired, arm_summary, base, signals) -> dict:
    """The final result of an arm that has its ``max_n`` and no outcome pending."""
    a = design.arm(arm)
    name = design.display_name(arm)
    safety = [r for r in fired if r.action in _SAFETY]
    efficacy = [r for r in results if r.arms == (arm,) and r.kind == RuleKind.EFFICACY and r.evaluated]
    comparisons = [r for r in results if arm in r.arms and r.kind == RuleKind.SUPERIORITY]
    lost = [r for r in fired if r.action == Action.DROP_INFERIOR]
    met = [r for r in efficacy if r.fired]
    estimate = _estimate(arm_summary)
    est_s = f" {estimate}." if estimate else ""
    notes = _not_applied_notes(results, arm)
    if safety:
        rec = _fired_recommendation(design, arm, safety, base, signals, True, base["n_enrolled"])
        rec["sentence"] = f"Final analysis of {name}. " + rec["sentence"] + notes
        rec["final_result"] = "safety"
        return rec
    if lost:
        chosen, drivers, others = _choose(lost)
        better = design.display_name(str(chosen.extra.get("better", "")))
        head = (
            f"Final analysis of {name}: the randomized comparison is decided. Recommend dropping {name} "
            f"as inferior to {better}. "
        )
        return _decided(
            base, Action.DROP_INFERIOR, chosen.kind, "inferior", drivers, head, est_s + notes, signals
        )
    if met:
        head = (
            f"Final analysis of {name}: criterion met. Recommend graduating {name} (its single-arm "
            "criterion against its null rate: not a comparison with another treatment). "
        )
        return _decided(
            base, Action.GRADUATE, RuleKind.EFFICACY, "criterion_met", met, head, est_s + notes, signals
        )
    if efficacy:
        why = "; ".join(_criterion_words(design, arm, r, arm_summary) for r in efficacy)
        head = f"Final analysis of {name}: criterion not met ({why})."
        result = "criterion_not_met"
    elif comparisons:
        why = " ".join(r.sentence for r in comparisons)
        head = f"Final analysis of {name}: the randomized comparison did not reach its criterion. {why}"
        result = "comparison_undecided"
    else:
        kind = "descriptive arm" if a.is_descriptive else "no efficacy rule covers the arm"
        head = f"Final analysis of {name}: accrual complete and every outcome in; nothing to decide ({kind})."
        result = "no_criterion"
    sentence = (
        f"{head}{est_s} Recommend closing {name} as completed ({base['n_enrolled']} of {a.max_n} "
        f"enrolled).{notes}"
    )
    uncertain = [r for r in efficacy + comparisons if r.mc_uncertain]
    return {
        **base,
        "action": Action.COMPLETE,
        "reason": "final_analysis",
        "final_result": result,
        "rules": [compact(r) for r in efficacy + comparisons],
        "also_fired": [],
        "mc_uncertain": bool(uncertain),
        "sentence": sentence + _signals_text(signals),
    }


# ============================================================================= the whole set
def build_recommendations(
    design: Design,
    derived: DerivedData,
    results: Sequence[RuleResult],
    *,
    allocations: Mapping[str, Allocation] | None = None,
    queue: Sequence[QueueDecision] = (),
    arm_summaries: Mapping[str, Mapping] | None = None,
    tol: float = 0.005,
) -> list[dict]:
    """Every recommendation of the look, in the order: arms (config order), randomization, new arms.

    Run :func:`check_coherence` on the result before printing it.
    """
    arm_summaries = arm_summaries or {}
    stages = arm_stages(design, derived)
    out = []
    for a in design.arms:
        if a.is_open:
            out.append(
                arm_recommendation(design, derived, a.id, results, arm_summaries.get(a.id), stages[a.id])
            )
    out = _reconcile_opposite_comparisons(design, out)
    for cohort, alloc in (allocations or {}).items():
        if not alloc.changed(tol):
            continue
        out.append(
            _allocation_rec(cohort, alloc, capacity=randomization_capacity(design, derived, cohort, alloc))
        )
    for q in queue:
        if q.opens:
            out.append(
                {
                    "action": Action.ADD_ARM,
                    "arm": q.arm,
                    "arms": [q.arm],
                    "cohort": q.cohort,
                    "reason": "entry_conditions_met",
                    "conditions": [dict(c) for c in q.conditions],
                    "rules": [],
                    "also_fired": [],
                    "mc_uncertain": False,
                    "sentence": q.sentence,
                    **_no_references(),
                }
            )
    return out


def _no_references() -> dict:
    """The provenance keys of a recommendation that compares no arm with a reference value."""
    return {"references": [], "rests_on_unverified": False, "reference_note": ""}


def randomization_capacity(
    design: Design, derived: DerivedData, cohort: str, alloc: Allocation
) -> dict | None:
    """How long the recommended randomization can run: places left per arm, and the first to fill.

    Each arm of the allocation closes at its ``max_n`` (every enrolled patient counts, randomized
    or not). At the recommended probabilities the arm with the fewest places per unit of
    allocation fills first, after about ``left / p`` more randomized patients; from then on a
    two-arm cohort's patients go to the other arm *unrandomized*, and they are not concurrent
    controls for the comparison. ``None`` when fewer than two arms receive patients.
    """
    arms = [a for a, p in alloc.probabilities.items() if p > 0]
    if len(arms) < 2:
        return None

    def filling(probs: Mapping[str, float]) -> tuple[str, float, dict[str, float]]:
        """The arm that fills first at ``probs``, after how many patients, the others' totals then."""
        live = [a for a in arms if probs.get(a, 0.0) > 0]
        first = min(live, key=lambda a: (places[a]["left"] / probs[a], arms.index(a)))
        after = places[first]["left"] / probs[first]
        return (
            first,
            after,
            {a: places[a]["enrolled"] + after * probs.get(a, 0.0) for a in arms if a != first},
        )

    places = {
        a: {
            "enrolled": derived.n_enrolled.get(a, 0),
            "max_n": design.arm(a).max_n,
            "left": max(design.arm(a).max_n - derived.n_enrolled.get(a, 0), 0),
        }
        for a in arms
    }
    first, after, expected = filling(alloc.probabilities)
    others = list(expected)
    listed = ", ".join(f"{a} {v['left']} of {v['max_n']}" for a, v in places.items())
    then = (
        f"after which cohort {cohort}'s patients go to {others[0]} without randomization (not "
        "concurrent controls for the comparison)"
        if len(others) == 1
        else f"after which cohort {cohort} randomizes among {', '.join(others)}"
    )
    at = ", ".join(f"{a} about {expected[a]:.0f}" for a in others)
    sentence = (
        f"Places left: {listed}. At this allocation {first} is expected to fill after about "
        f"{after:.0f} more randomized patients ({at} enrolled by then), {then}."
    )
    out = {"places": places, "fills_first": first, "expected_patients_until_full": after}
    ref = {a: alloc.reference.get(a, 0.0) for a in arms}
    if sum(ref.values()) > 0 and any(
        abs(ref[a] / sum(ref.values()) - alloc.probabilities[a]) > 1e-9 for a in arms
    ):
        total = sum(ref.values())
        ref_first, ref_after, ref_expected = filling({a: v / total for a, v in ref.items()})
        ref_at = ", ".join(f"{a} about {v:.0f}" for a, v in ref_expected.items())
        diff = ref_after - after
        effect = (
            f"ends the randomized comparison about {diff:.0f} randomized patients sooner"
            if diff >= 0.5
            else f"keeps the randomized comparison going for about {-diff:.0f} more randomized patients"
            if diff <= -0.5
            else "ends the randomized comparison at about the same time"
        )
        sentence += (
            f" At the fixed ratio {ref_first} would fill after about {ref_after:.0f} ({ref_at}): "
            f"each arm's total is capped by its max_n either way, so the change {effect}, and does not "
            "change how many patients each arm gets."
        )
        out["fixed_ratio"] = {"fills_first": ref_first, "expected_patients_until_full": ref_after}
    out["sentence"] = sentence
    return out


def _allocation_rec(cohort: str, alloc: Allocation, note: str = "", capacity: dict | None = None) -> dict:
    return {
        "action": Action.ADJUST_RANDOMIZATION,
        "arm": None,
        "arms": [a for a, p in alloc.probabilities.items() if p > 0],
        "cohort": cohort,
        "reason": "burn_in" if alloc.burn_in_active else alloc.kind,
        "probabilities": dict(alloc.probabilities),
        "previous": None if alloc.previous is None else dict(alloc.previous),
        "rules": [],
        "also_fired": [],
        "mc_uncertain": False,
        "capacity": capacity,
        "sentence": f"Recommend changing the randomization.{note} {alloc.sentence}"
        + (f" {capacity['sentence']}" if capacity else ""),
        **_no_references(),
    }


def _reconcile_opposite_comparisons(design: Design, recs: list[dict]) -> list[dict]:
    """Resolve two arms each recommended ``drop_inferior`` *to the other*.

    That happens when, say, CRc favours one arm and OS the other. Neither is recommended for
    dropping as inferior: each gets its next fired action by the precedence (e.g. ``flag``), or
    ``continue``, with a sentence that names the conflicting comparisons so the DSMB weighs the
    endpoints instead of closing the whole pair.
    """
    by_arm = {r["arm"]: r for r in recs if r.get("action") == Action.DROP_INFERIOR}
    conflicted: set[str] = set()
    for arm, rec in by_arm.items():
        for other in {str(x["arms"][0]) for x in rec["rules"]}:
            if other in by_arm and arm in {str(x["arms"][0]) for x in by_arm[other]["rules"]}:
                conflicted |= {arm, other}
    if not conflicted:
        return recs
    order = {act: i for i, act in enumerate(PRECEDENCE)}
    out = []
    for r in recs:
        if r.get("arm") not in conflicted:
            out.append(r)
            continue
        partner = next(a for a in conflicted if a != r["arm"])
        favour_me = ", ".join(x["rule"] for x in by_arm[partner]["rules"])
        favour_other = ", ".join(x["rule"] for x in r["rules"])
        rest = sorted(
            (x for x in r["also_fired"] if x["action"] != Action.DROP_INFERIOR),
            key=lambda x: order[x["action"]],
        )
        action = rest[0]["action"] if rest else Action.CONTINUE
        lead = (
            _VERB[action].format(arm=design.display_name(r["arm"]), other="").rstrip(".")
            if rest
            else f"Continue {design.display_name(r['arm'])}"
        )
        out.append(
            {
                **r,
                "action": action,
                "reason": rest[0]["kind"] if rest else "conflicting_comparisons",
                "rules": [x for x in rest if x["action"] == action],
                "also_fired": r["rules"] + [x for x in rest if x["action"] != action],
                "sentence": (
                    f"{lead}. Its comparison with {design.display_name(partner)} conflicts ({favour_me} "
                    f"favour {r['arm']}; {favour_other} favour {partner}), so neither arm is "
                    "recommended for dropping as inferior: the DSMB should weigh the endpoints. "
                    + r["sentence"]
                ),
            }
        )
    return out


def closing_arms(recommendations: Sequence[Mapping]) -> set[str]:
    """Arms that this look recommends closing (dropping, graduating or completing)."""
    return {r["arm"] for r in recommendations if r["action"] in CLOSING and r.get("arm")}


def stopping_arms(recommendations: Sequence[Mapping]) -> set[str]:
    """Arms that would stop enrolling if this look's recommendations were accepted (closing or suspended)."""
    return {r["arm"] for r in recommendations if r["action"] in _STOPS_ENROLMENT and r.get("arm")}


# ============================================================================= coherence
def _leading(results: Sequence[RuleResult], a: str, b: str) -> tuple[str, float] | None:
    """The arm the primary comparison of ``a`` and ``b`` favours, with the probability."""
    for r in results:
        if r.kind == RuleKind.SUPERIORITY and set(r.arms) == {a, b} and r.endpoint == PRIMARY_ENDPOINT:
            return str(r.extra["better"]), float(r.prob)
    return None


def check_coherence(
    design: Design,
    derived: DerivedData,
    recs: list[dict],
    results: Sequence[RuleResult] = (),
    *,
    reallocate: Callable[[str, set[str]], Allocation | None] | None = None,
) -> tuple[list[dict], list[dict]]:
    """Check the recommendation set as a whole (see the module docstring); ``(recs, notes)``.

    ``reallocate(cohort, stopping)`` gives a cohort's allocation with the ``stopping`` arms closed
    (``None`` when the cohort has no allocation rule).
    """
    notes: list[dict] = []
    recs = [dict(r) for r in recs]
    # 2a. conflicting comparisons: both arms of a randomized pair inferior, each by another rule
    for step in design.routing:
        if not step.is_randomized:
            continue
        open_arms = [a for a in step.arms if design.arm(a).is_open]
        for i, x in enumerate(open_arms):
            for y in open_arms[i + 1 :]:
                pair = [next((r for r in recs if r.get("arm") == a), None) for a in (x, y)]
                if any(r is None or r["action"] != Action.DROP_INFERIOR for r in pair):
                    continue
                names = " and ".join(design.display_name(a) for a in (x, y))
                for rec in pair:
                    withheld = {"action": rec["action"], "reason": rec["reason"], "sentence": rec["sentence"]}
                    final = rec.get("stage") == Stage.FINAL_ANALYSIS  # nothing left to continue
                    rec.update(
                        action=Action.COMPLETE if final else Action.CONTINUE,
                        reason="conflicting_comparisons",
                        withheld=withheld,
                        also_fired=rec.get("rules", []) + rec.get("also_fired", []),
                        sentence=(
                            f"{'Complete' if final else 'Continue'} {design.display_name(rec['arm'])}: "
                            "comparisons of the randomized "
                            f"pair {names} find opposite arms inferior at this look (coherence rule 2a); "
                            "closing both is withheld for the DSMB to weigh the endpoints. Withheld: "
                            + withheld["sentence"]
                        ),
                    )
                notes.append(
                    {
                        "check": "conflicting_comparisons",
                        "arms": [x, y],
                        "resolution": "withheld",
                        "sentence": (
                            f"drop_inferior of both {x} and {y} withheld: their randomized comparisons "
                            "point in opposite directions at this look."
                        ),
                    }
                )
    # 2. never leave only the trailing arm of an open randomized comparison, except for safety
    for step in design.routing:
        if not step.is_randomized:
            continue
        open_arms = [a for a in step.arms if design.arm(a).is_open]
        for i, x in enumerate(open_arms):
            for y in open_arms[i + 1 :]:
                lead = _leading(results, x, y)
                if lead is None:
                    continue
                leader, prob = lead
                trailer = y if leader == x else x
                stop = stopping_arms(recs)
                rec = next((r for r in recs if r.get("arm") == leader), None)
                if rec is None or leader not in stop or trailer in stop or rec["action"] in _SAFETY:
                    continue
                if rec.get("stage") == Stage.FINAL_ANALYSIS:
                    continue
                withheld = {"action": rec["action"], "reason": rec["reason"], "sentence": rec["sentence"]}
                sentence = (
                    f"Continue {design.display_name(leader)}: the rules recommend {rec['action']}, but "
                    f"accepting it would leave only {design.display_name(trailer)}, the trailing arm of the "
                    f"randomized comparison (P({leader} better) {fmt_prob(prob)}), open in cohort "
                    f"{step.cohort}; withheld while the comparison is open (coherence rule 2). Withheld: "
                    + rec["sentence"]
                )
                rec.update(
                    action=Action.CONTINUE,
                    reason="withheld_by_coherence",
                    withheld=withheld,
                    also_fired=rec.get("rules", []) + rec.get("also_fired", []),
                    sentence=sentence,
                )
                notes.append(
                    {
                        "check": "trailing_arm_left",
                        "arms": [leader, trailer],
                        "resolution": "withheld",
                        "sentence": (
                            f"{withheld['action']} of {leader} withheld: it leads the randomized comparison "
                            f"with {trailer} (P {fmt_prob(prob)}), and closing it would leave only {trailer}."
                        ),
                    }
                )
    stop = stopping_arms(recs)
    # 3. no allocation change involving an arm recommended to stop enrolling
    for step in design.routing:
        if not step.is_randomized:
            continue
        hit = sorted(stop & set(step.arms))
        adj = next(
            (
                r
                for r in recs
                if r["action"] == Action.ADJUST_RANDOMIZATION and r.get("cohort") == step.cohort
            ),
            None,
        )
        if not hit:
            continue
        left = [a for a in step.arms if design.arm(a).status == ArmStatus.ACTIVE and a not in stop]
        alloc = reallocate(step.cohort, set(hit)) if reallocate and len(left) >= 2 else None
        if adj is not None:
            recs.remove(adj)
        if alloc is not None and alloc.changed(0.005):
            recs.append(
                _allocation_rec(
                    step.cohort,
                    alloc,
                    f" {', '.join(hit)} recommended to stop enrolling: the allocation below is without "
                    f"{'it' if len(hit) == 1 else 'them'}.",
                    randomization_capacity(design, derived, step.cohort, alloc),
                )
            )
            resolution = "allocation recomputed without the stopping arms"
        else:
            resolution = (
                f"no randomization: {left[0]} would be the only open arm of {step.cohort}"
                if len(left) == 1
                else f"no open arm would be left in {step.cohort}"
                if not left
                else "allocation unchanged"
            )
        if adj is not None or len(left) < 2:
            notes.append(
                {
                    "check": "allocation_of_stopping_arm",
                    "arms": hit,
                    "cohort": step.cohort,
                    "resolution": resolution,
                    "sentence": (
                        f"Cohort {step.cohort}: {', '.join(hit)} recommended to stop enrolling; {resolution}."
                    ),
                }
            )
    # 4. the consequence of every closing or suspending recommendation
    closing = closing_arms(recs)
    accepted = _accepted_design(design, recs)
    opens = [q.arm for q in evaluate_queue(accepted, derived.cutoff) if q.opens] if closing else []
    for r in recs:
        if r.get("arm") not in stop or r["action"] not in _STOPS_ENROLMENT:
            continue
        r["if_accepted"] = _consequence(design, accepted, r["arm"], stop, opens, reallocate)
        r["sentence"] += " If this look's recommendations are accepted: " + r["if_accepted"]["sentence"]
    if stop:
        notes.append(_platform_note(design, accepted, stop, opens))
    return recs, notes


def _platform_note(design: Design, accepted: Design, stop: set[str], opens: Sequence[str]) -> dict:
    """The platform as a whole if every closing or suspending recommendation is accepted."""
    open_arms = [a.id for a in accepted.arms if a.status == ArmStatus.ACTIVE]
    shut = [
        s.cohort
        for s in design.routing
        if any(design.arm(a).is_open for a in s.arms)
        and not any(accepted.arm(a).status == ArmStatus.ACTIVE for a in s.arms)
    ]
    words = f"If every recommendation of this look is accepted, {', '.join(sorted(stop))} stop enrolling"
    words += f"; arms still enrolling: {', '.join(open_arms) or 'none'}"
    if shut:
        words += (
            f"; cohorts with no open arm: {', '.join(shut)} (their patients would not be enrolled, "
            "unless routing passes them on)"
        )
    if opens:
        words += f"; queued arms that could open: {', '.join(opens)}"
    return {
        "check": "platform_after_acceptance",
        "arms": sorted(stop),
        "open_arms": open_arms,
        "cohorts_without_open_arm": shut,
        "resolution": "stated",
        "sentence": words + ".",
    }


def _accepted_design(design: Design, recs: Sequence[Mapping]) -> Design:
    """The design with every closing / suspending recommendation of the set applied."""
    status = {
        Action.DROP_HARM: ArmStatus.DROPPED,
        Action.DROP_FUTILITY: ArmStatus.DROPPED,
        Action.DROP_INFERIOR: ArmStatus.DROPPED,
        Action.GRADUATE: ArmStatus.GRADUATED,
        Action.COMPLETE: ArmStatus.COMPLETED,
        Action.SUSPEND_ENROLMENT: ArmStatus.SUSPENDED,
    }
    new = {r["arm"]: status[r["action"]] for r in recs if r.get("arm") and r["action"] in status}
    arms = tuple(dataclasses.replace(a, status=new.get(a.id, a.status)) for a in design.arms)
    return dataclasses.replace(design, arms=arms)


def _consequence(design, accepted, arm, stop, opens, reallocate) -> dict:
    """What accepting the set means for ``arm``'s cohort and the queue."""
    step = design.cohort_of(arm)
    parts = []
    out: dict = {"cohort": step.cohort if step else None}
    if step is not None:
        left = [a for a in step.arms if accepted.arm(a).status == ArmStatus.ACTIVE]
        out["open_arms_left"] = left
        if len(left) >= 2:
            alloc = reallocate(step.cohort, set(stop) & set(step.arms)) if reallocate else None
            if alloc is not None:
                out["allocation"] = dict(alloc.probabilities)
                ratio = " : ".join(f"{a} {fmt_rate(alloc.probabilities[a])}" for a in left)
                parts.append(f"cohort {step.cohort} is randomized {ratio}")
            else:
                parts.append(f"cohort {step.cohort} keeps {', '.join(left)}")
        elif len(left) == 1:
            parts.append(
                f"every patient of cohort {step.cohort} would go to {design.display_name(left[0])}"
                + (", unrandomized" if step.is_randomized else "")
            )
        else:
            out["routing_if_no_open_arm"] = step.if_no_open_arm
            where = (
                "would be routed on to the trial's next routing step"
                if step.passes_on
                else "would not be enrolled in the trial (they are never sent to another cohort's arms)"
            )
            joining = [q for q in opens if design.arm(q).entry and design.arm(q).entry.cohort == step.cohort]
            parts.append(
                f"cohort {step.cohort} would have no open arm: its patients {where}"
                + (f", until {', '.join(joining)} opens" if joining else "")
            )
    if opens:
        out["queued_arms_may_open"] = list(opens)
        parts.append(
            f"{', '.join(design.display_name(q) for q in opens)} could open (entry conditions would hold)"
        )
    out["sentence"] = "; ".join(parts) + "." if parts else "no other arm is affected."
    return out
