"""Rule results and arm state -> the ``recommendations`` a DSMB reads.

Every recommendation has an ``action`` from one vocabulary (:data:`ACTIONS`), the ``arm`` (or
``arms``) it concerns, the rule results behind it, and a ``sentence``. They are recommendations:
nothing is ever dropped, graduated or opened automatically; the DSMB decides and the statistician
records the decision in the config (arm ``status``), which the next look reads.

Per open arm (status ``active`` or ``suspended``), one recommendation. When several rules fire for
one arm the action is chosen by :data:`PRECEDENCE`:

1. ``drop_harm``: patient safety overrides any efficacy signal;
2. ``drop_futility`` (threshold, predictive or survival futility): the arm cannot reach its target;
3. ``drop_inferior`` (superiority or hazard ratio): the arm is worse than its randomized
   comparator; dropping it outranks graduating it, because the better arm of the pair is the one to
   carry forward;
4. ``graduate`` (efficacy, predictive efficacy or survival efficacy).

The other rules that fired are listed with the chosen one (``also_fired``) and named in the
sentence, so a conflict (e.g. better than the null but clearly below the target) is visible,
never hidden. A rule that fired within 2 Monte Carlo standard errors of its threshold is flagged
(``mc_uncertain``). With no rule firing the action is ``continue``, unless the arm has reached its
maximum sample size: then ``suspend_enrolment`` (enrolment closes), reported as ``complete`` with
its final probabilities. Arms that are ``dropped`` or ``graduated`` get no recommendation.

Then one ``adjust_randomization`` per randomized cohort whose allocation moved by at least half a
percentage point from the previous one, and one ``add_arm`` per queued arm whose entry conditions
hold (:mod:`adaptive.queue`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from adaptive.config import Design
from adaptive.derive import DerivedData
from adaptive.queue import QueueDecision
from decision_rules import SURVIVAL_RULE_KINDS, Allocation, RuleResult
from decision_rules.rules import fmt_pct

ACTIONS = (
    "continue",
    "drop_futility",
    "drop_harm",
    "drop_inferior",
    "graduate",
    "suspend_enrolment",
    "add_arm",
    "adjust_randomization",
)
#: when several rules fire for one arm, the first action in this order is recommended
PRECEDENCE = ("drop_harm", "drop_futility", "drop_inferior", "graduate")
#: actions that close an arm if the DSMB accepts them
CLOSING = ("drop_harm", "drop_futility", "drop_inferior", "graduate")

_VERB = {
    "drop_harm": "dropping {arm} for harm",
    "drop_futility": "dropping {arm} for futility",
    "drop_inferior": "dropping {arm} as inferior to {other}",
    "graduate": "graduating {arm}",
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
    if r.action == "drop_inferior":
        return str(r.extra.get("inferior", r.arms[-1]))
    return r.arms[0]


def _name(design: Design, arm: str) -> str:
    label = design.arm(arm).label
    return f"{arm} ({label})" if label and label != arm else arm


def _key_probs(arm_summary: Mapping | None, endpoint: str = "crc") -> str:
    if not arm_summary:
        return ""
    ep = arm_summary.get("endpoints", {}).get(endpoint) or {}
    parts = []
    if ep.get("prob_above_null") is not None:
        parts.append(f"P(CRc > {fmt_pct(ep['null_rate'])}) {fmt_pct(ep['prob_above_null'])}")
    if ep.get("prob_above_target") is not None:
        parts.append(f"P(CRc > {fmt_pct(ep['target_rate'])}) {fmt_pct(ep['prob_above_target'])}")
    return ", ".join(parts)


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


def arm_recommendation(
    design: Design,
    derived: DerivedData,
    arm: str,
    results: Sequence[RuleResult],
    arm_summary: Mapping | None = None,
) -> dict:
    """The recommendation for one open arm from the rule results that concern it."""
    a = design.arm(arm)
    name = _name(design, arm)
    mine = [r for r in results if _target_arm(r) == arm and r.action in PRECEDENCE]
    fired = [r for r in mine if r.fired]
    n_enrolled = derived.n_enrolled.get(arm, 0)
    complete = n_enrolled >= a.max_n
    evaluated_rules = [compact(r) for r in results if arm in r.arms]
    primary = derived.counts.get("crc", {}).get(arm)
    pending = primary.n_pending if primary else 0
    base = {
        "arm": arm,
        "arms": [arm],
        "label": a.label,
        "status": a.status,
        "n_enrolled": n_enrolled,
        "max_n": a.max_n,
        "complete": complete,
    }
    if complete:
        base["final_probabilities"] = _final_probabilities(arm_summary)
    if fired:
        order = {act: i for i, act in enumerate(PRECEDENCE)}
        fired.sort(key=lambda r: (order[r.action], r.rule))
        chosen = fired[0]
        action = chosen.action
        drivers = [r for r in fired if r.action == action]
        others = [r for r in fired if r.action != action]
        other_arm = ""
        if action == "drop_inferior":
            other_arm = _name(design, str(chosen.extra.get("better", "")))
        verb = _VERB[action].format(arm=name, other=other_arm)
        sentence = f"Recommend {verb}. " + " ".join(r.sentence for r in drivers)
        if others:
            sentence += (
                f" Also fired: {', '.join(f'{r.rule} ({r.action})' for r in others)}; by the precedence "
                "harm > futility > inferiority > efficacy the recommendation is "
                f"{action}. The DSMB should weigh both."
            )
        if complete:
            sentence += f" The arm has reached its maximum sample size ({n_enrolled} of {a.max_n} enrolled)."
        if a.status == "suspended":
            sentence += " The arm is currently suspended."
        return {
            **base,
            "action": action,
            "reason": chosen.kind,
            "rules": [compact(r) for r in drivers],
            "also_fired": [compact(r) for r in others],
            "mc_uncertain": any(r.mc_uncertain for r in drivers),
            "sentence": sentence,
        }
    probs = _key_probs(arm_summary)
    probs_s = f"; {probs}" if probs else ""
    pp = [r for r in results if arm in r.arms and r.kind.startswith("predictive") and r.evaluated]
    pp_s = "".join(f"; predictive probability of success {fmt_pct(r.prob)} ('{r.rule}')" for r in pp)
    if complete:
        pending_s = (
            f"; {pending} CRc outcome(s) still pending, so the final result is known once they are in"
            if pending
            else "; every CRc outcome is in"
        )
        sentence = (
            f"Close enrolment of {name}: it has reached its maximum sample size ({n_enrolled} of "
            f"{a.max_n} enrolled) and no rule fires. Final results{probs_s}{pp_s}{pending_s}."
        )
        return {
            **base,
            "action": "suspend_enrolment",
            "reason": "max_n_reached",
            "rules": evaluated_rules,
            "also_fired": [],
            "mc_uncertain": False,
            "sentence": sentence,
        }
    state = "stays suspended" if a.status == "suspended" else "continues"
    not_yet = [r for r in mine if not r.evaluated]
    wait = ""
    if not_yet:
        events = " or events" if any(r.kind in SURVIVAL_RULE_KINDS for r in not_yet) else ""
        wait = f"; {len(not_yet)} rule(s) wait for more evaluable patients{events}"
    sentence = (
        f"No rule fires for {name}: it {state} ({n_enrolled} of {a.max_n} enrolled{probs_s}{pp_s}{wait})."
    )
    uncertain = [r for r in mine if r.evaluated and r.mc_uncertain]
    if uncertain:
        sentence += (
            f" {', '.join(repr(r.rule) for r in uncertain)} lie(s) within Monte Carlo error of the "
            "threshold: refit with more draws before relying on 'no rule fires'."
        )
    return {
        **base,
        "action": "continue",
        "reason": "no_rule_fired",
        "rules": evaluated_rules,
        "also_fired": [],
        "mc_uncertain": bool(uncertain),
        "sentence": sentence,
    }


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
    """Every recommendation of the look, in the order: arms (config order), randomization, new arms."""
    arm_summaries = arm_summaries or {}
    out = []
    for a in design.arms:
        if a.is_open:
            out.append(arm_recommendation(design, derived, a.id, results, arm_summaries.get(a.id)))
    out = _reconcile_opposite_comparisons(design, out)
    for cohort, alloc in (allocations or {}).items():
        if not alloc.changed(tol):
            continue
        out.append(
            {
                "action": "adjust_randomization",
                "arm": None,
                "arms": [a for a, p in alloc.probabilities.items() if p > 0],
                "cohort": cohort,
                "reason": "burn_in" if alloc.burn_in_active else alloc.kind,
                "probabilities": dict(alloc.probabilities),
                "previous": None if alloc.previous is None else dict(alloc.previous),
                "rules": [],
                "also_fired": [],
                "mc_uncertain": False,
                "sentence": f"Recommend changing the randomization. {alloc.sentence}",
            }
        )
    for q in queue:
        if q.opens:
            out.append(
                {
                    "action": "add_arm",
                    "arm": q.arm,
                    "arms": [q.arm],
                    "cohort": q.cohort,
                    "reason": "entry_conditions_met",
                    "conditions": [dict(c) for c in q.conditions],
                    "rules": [],
                    "also_fired": [],
                    "mc_uncertain": False,
                    "sentence": q.sentence,
                }
            )
    return out


def _reconcile_opposite_comparisons(design: Design, recs: list[dict]) -> list[dict]:
    """Resolve two arms each recommended ``drop_inferior`` *to the other*.

    That happens when, say, CRc favours one arm and OS the other. Neither is recommended for
    dropping as inferior: each gets its next fired action by the precedence (e.g. ``graduate``),
    or ``continue``, with a sentence that names the conflicting comparisons so the DSMB weighs the
    endpoints instead of closing the whole pair.
    """
    by_arm = {r["arm"]: r for r in recs if r.get("action") == "drop_inferior"}
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
            (x for x in r["also_fired"] if x["action"] != "drop_inferior"), key=lambda x: order[x["action"]]
        )
        action = rest[0]["action"] if rest else "continue"
        lead = (
            f"Recommend {_VERB[action].format(arm=_name(design, r['arm']), other='')}"
            if rest
            else f"Continue {_name(design, r['arm'])}"
        )
        out.append(
            {
                **r,
                "action": action,
                "reason": rest[0]["kind"] if rest else "conflicting_comparisons",
                "rules": [x for x in rest if x["action"] == action],
                "also_fired": r["rules"] + [x for x in rest if x["action"] != action],
                "sentence": (
                    f"{lead}. Its comparison with {_name(design, partner)} conflicts ({favour_me} "
                    f"favour {r['arm']}; {favour_other} favour {partner}), so neither arm is "
                    "recommended for dropping as inferior: the DSMB should weigh the endpoints. "
                    + r["sentence"]
                ),
            }
        )
    return out


def closing_arms(recommendations: Sequence[Mapping]) -> set[str]:
    """Arms that this look recommends closing (dropping or graduating)."""
    return {r["arm"] for r in recommendations if r["action"] in CLOSING and r.get("arm")}
