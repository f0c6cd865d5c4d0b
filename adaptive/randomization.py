"""Response-adaptive randomization at a look, and its platform-drift sensitivity analysis.

For every randomized routing cohort (two or more arms) the look reports an allocation: the
configured rule (``randomization:``) or, for a cohort without one, its fixed ``allocation``. The
rule's inputs come from the posterior of its endpoint (P(best) among the cohort's *open* arms,
posterior variances, evaluable counts), the previous allocation from the look ledger (or, with
no earlier look, the cohort's fixed ratio, the allocation in force at the start). Closed arms
(any status but ``active``) get 0 and their share is rescaled to the open arms.

Platform drift: patients enrolled at different times may differ (changing referral patterns,
supportive care), and RAR lets calendar time and arm allocation correlate. The look therefore also
reports, per cohort, the comparison restricted to **concurrently randomized patients**: those with
``randomized = true`` enrolled while every compared arm was open. This is an *independent
conjugate* analysis (each arm ``Beta(null, 1 - null) + data``, no borrowing from other arms), a
sensitivity analysis that depends on nothing outside the concurrent window; it reports
P(best) and the superiority comparisons exactly (numerical integration), and the allocation the
same rule would give from them. The same independent model is also reported on *all* the arms'
evaluable patients, so that a difference between the two isolates the patient selection (drift)
from the difference between the independent model and the fitted (borrowing) model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import TYPE_CHECKING

import numpy as np

from adaptive.config import Design
from adaptive.endpoints import BINARY_ENDPOINTS
from decision_rules import Allocation, AllocationRule, BetaPosterior, Superiority
from decision_rules.vocabulary import fmt_prob, fmt_rate

if TYPE_CHECKING:  # annotations only: the simulator imports this module (allocation_rules) and
    # needs neither the patient table nor pandas, which costs ~0.2 s of a short `adaptive simulate`
    from adaptive.data import PatientTable
    from adaptive.derive import DerivedData


def allocation_rules(design: Design) -> tuple[AllocationRule, ...]:
    """The configured allocation rules plus a ``fixed`` rule for every other randomized cohort."""
    configured = {r.cohort: r for r in design.allocation_rules}
    out = []
    for step in design.routing:
        if not step.is_randomized:
            continue
        if step.cohort in configured:
            out.append(configured[step.cohort])
        else:
            spec = BINARY_ENDPOINTS["crc"]
            out.append(
                AllocationRule(
                    cohort=step.cohort,
                    arms=tuple(step.arms),
                    ratio=dict(step.allocation),
                    kind="fixed",
                    endpoint="crc",
                    endpoint_label=spec.label,
                )
            )
    return tuple(out)


def _open(design: Design, rule: AllocationRule, closing: Iterable[str] = ()) -> dict[str, bool]:
    closing = set(closing)
    return {a: design.arm(a).status == "active" and a not in closing for a in rule.arms}


def allocate(
    design: Design,
    derived: DerivedData,
    rule: AllocationRule,
    posterior,
    *,
    previous: Mapping[str, float] | None,
    previous_source: str,
    closing: Iterable[str] = (),
) -> Allocation:
    """The allocation of one cohort at this look.

    Parameters
    ----------
    posterior
        Posterior of ``rule.endpoint`` with the ``DrawsPosterior`` interface (any arms missing
        from it count as closed).
    previous
        The previous allocation (``None``: the cohort's fixed ratio, in force at the start).
    closing
        Arms to treat as closed in addition to the config's statuses (the allocation if the
        DSMB accepts this look's recommended drops).
    """
    is_open = _open(design, rule, closing)
    is_open = {a: o and a in posterior.arms for a, o in is_open.items()}
    open_arms = [a for a in rule.arms if is_open[a]]
    counts = derived.counts[rule.endpoint]
    n_eval = {a: counts[a].n_evaluable if a in counts else 0 for a in rule.arms}
    prob_best = mcse = variance = None
    if rule.kind != "fixed" and len(open_arms) >= 2:
        best = posterior.prob_best(open_arms, higher_is_better=rule.higher_is_better)
        prob_best = {a: best[a].prob if a in best else 0.0 for a in rule.arms}
        mcse = {a: best[a].mcse if a in best else 0.0 for a in rule.arms}
        variance = {a: _variance(posterior, a) if a in posterior.arms else 0.0 for a in rule.arms}
    elif rule.kind != "fixed":  # one open arm (or none): it is trivially the best
        prob_best = {a: float(a in open_arms) for a in rule.arms}
        variance = dict.fromkeys(rule.arms, 0.0)
    if previous is None:
        previous = dict(rule.ratio)
        total = sum(previous.values())
        previous = {a: v / total for a, v in previous.items()}
    return rule.allocate(
        is_open=is_open,
        n_evaluable=n_eval,
        max_n={a: design.arm(a).max_n for a in rule.arms},
        prob_best=prob_best,
        variance=variance,
        previous=previous,
        previous_source=previous_source,
        mcse_prob_best=mcse,
        labels=design.labels,
    )


def _variance(posterior, arm: str) -> float:
    if hasattr(posterior, "variance"):
        return float(posterior.variance(arm))
    return float(np.var(posterior.draws.sel(arm=arm).values, ddof=1))


# ============================================================================= platform drift
def _opened(design: Design, table: PatientTable, arm_id: str) -> date | None:
    arm = design.arm(arm_id)
    if arm.opened_on is not None:
        return arm.opened_on
    if arm.entry is None and design.raw.trial.start_date is not None:
        return design.raw.trial.start_date
    dates = [d for a, d in zip(table.frame["arm"], table.frame["enrolled_on"], strict=True) if a == arm_id]
    return min(dates) if dates else None


def _closed(design: Design, table: PatientTable, arm_id: str, cutoff: date) -> date:
    arm = design.arm(arm_id)
    if arm.closed_on is not None:
        return min(arm.closed_on, cutoff)
    if arm.status == "active":
        return cutoff
    dates = [
        d
        for a, d in zip(table.frame["arm"], table.frame["enrolled_on"], strict=True)
        if a == arm_id and d <= cutoff
    ]
    return max(dates) if dates else cutoff


def concurrent_window(design: Design, table: PatientTable, arms: Iterable[str], cutoff: date):
    """``(from, to)``: the dates on which every arm in ``arms`` was open (``None`` if never)."""
    arms = list(arms)
    opened = [_opened(design, table, a) for a in arms]
    if any(o is None for o in opened):
        return None
    start = max(opened)
    end = min(_closed(design, table, a, cutoff) for a in arms)
    return (start, end) if start <= end else None


def concurrent_ids(table: PatientTable, window: tuple[date, date]) -> set:
    """Subject ids of the concurrently randomized: ``randomized = true``, enrolled within ``window``."""
    start, end = window
    f = table.frame
    keep = [r is True and start <= e <= end for r, e in zip(f["randomized"], f["enrolled_on"], strict=True)]
    return set(f.loc[keep, "subject_id"])


#: an opening run of one arm less likely than this under the starting allocation is named
OPENING_RUN_ALPHA = 0.05


def opening_warnings(
    design: Design, table: PatientTable, cutoff: date, derived: DerivedData | None = None
) -> list[dict]:
    """Randomized cohorts whose first randomized patients all went to some arms but not another.

    The concurrent window of a comparison starts when every arm was open (``opened_on``, else the
    trial's start). If the first ``k`` patients randomized in it all went to the other arms before
    an arm's first, with probability ``(1 - share)^k`` under the cohort's starting allocation
    below :data:`OPENING_RUN_ALPHA`, that arm was probably not open to randomization yet: its
    "concurrent" controls include patients it could not have received. Said as a data warning
    (check the arm's ``opened_on``); nothing is changed. Each check: ``cohort``, ``arm``, ``run``
    (``k``), ``probability``, ``sentence`` (the data warning) and ``short`` (beside the comparison).
    With ``derived``, each superiority rule of the cohort that compares the arm is also evaluated
    on the window from the arm's first randomized patient (``sensitivity``; the rule's own window
    beside it), and both sentences give the probability the comparison would then have.
    """
    out = []
    for rule in allocation_rules(design):
        window = concurrent_window(design, table, rule.arms, cutoff)
        if window is None:
            continue
        f = table.frame
        keep = (f["randomized"] == True) & f["arm"].isin(rule.arms)  # noqa: E712 - nullable flags
        lo, hi = window
        keep &= f["enrolled_on"].map(lambda d, lo=lo, hi=hi: d is not None and lo <= d <= hi)
        seq = list(f.loc[keep].sort_values(["enrolled_on", "subject_id"])["arm"])
        share = dict(zip(rule.arms, rule.ratio_array / rule.ratio_array.sum(), strict=True))
        for arm in rule.arms:
            k = seq.index(arm) if arm in seq else len(seq)
            p = (1.0 - share[arm]) ** k
            if k and p < OPENING_RUN_ALPHA:
                first = (
                    f.loc[keep & (f["arm"] == arm), "enrolled_on"].min() if arm in seq else "no patient yet"
                )
                others = ", ".join(sorted(set(seq[:k])))
                sens = (
                    _from_first(design, table, derived, rule.arms, arm, first)
                    if derived is not None and arm in seq
                    else []
                )
                said = "".join(
                    f" Without the patients randomized before {arm}'s first, P({x['endpoint_label']} "
                    f"{x['leader']} > {x['other']}) would be {fmt_prob(x['prob_from_first'])} "
                    f"({fmt_prob(x['prob_window'])} on the rule's window; '{x['rule']}' needs "
                    f"{fmt_rate(x['threshold'])})."
                    for x in sens
                )
                out.append(
                    {
                        "cohort": rule.cohort,
                        "arm": arm,
                        "run": k,
                        "probability": p,
                        "sentence": (
                            f"cohort {rule.cohort}: the first {k} patients randomized from {window[0]} went "
                            f"to {others}, none to {arm} (its first: {first}); under the starting "
                            f"allocation ({100 * share[arm]:.0f}% to {arm}) that has probability "
                            f"{100 * p:.1f}%. Check {arm}'s opened_on: patients randomized before it was "
                            f"open are not its concurrent controls.{said}"
                        ),
                        "short": (
                            f"check {arm}'s opened_on: the first {k} randomized went to {others} "
                            f"({100 * p:.1f}% under the starting allocation).{said}"
                        ),
                        "sensitivity": sens,
                    }
                )
    return out


def _from_first(
    design: Design, table: PatientTable, derived: DerivedData, cohort_arms, arm, first
) -> list[dict]:
    """Each superiority rule comparing ``arm`` in the cohort, on the window from ``arm``'s first patient.

    The rule's probabilities on its concurrent window and on the window starting at ``first`` (the
    arm's first randomized patient), in the direction of the arm that leads on the rule's window.
    """
    out = []
    for r in design.rules:
        if not (isinstance(r, Superiority) and arm in r.arms and set(r.arms) <= set(cohort_arms)):
            continue
        window = concurrent_window(design, table, r.arms, derived.cutoff)
        if window is None or first is None or first <= window[0]:
            continue
        probs = []
        for w in (window, (first, window[1])):
            n, y, res = _rule_on_window(design, table, derived, r, w)
            probs.append({x: res.extra[f"prob_{x}_better"] for x in r.arms})
        leader = max(r.arms, key=lambda x: probs[0][x])
        other = next(x for x in r.arms if x != leader)
        out.append(
            {
                "rule": r.id,
                "endpoint": r.endpoint,
                "endpoint_label": BINARY_ENDPOINTS[r.endpoint].label
                if r.endpoint in BINARY_ENDPOINTS
                else r.endpoint,
                "leader": leader,
                "other": other,
                "from": first.isoformat(),
                "n_evaluable": dict(n),
                "responders": dict(y),
                "prob_window": probs[0][leader],
                "prob_from_first": probs[1][leader],
                "threshold": r.threshold,
            }
        )
    return out


def _all_counts(derived, endpoint, arms):
    n = {a: derived.counts[endpoint][a].n_evaluable for a in arms}
    y = {a: derived.counts[endpoint][a].responders for a in arms}
    return n, y


def concurrent_counts(design, table, derived, endpoint, arms, window):
    """Evaluable patients and responders per arm among the concurrently randomized, and who was left out.

    Concurrently randomized: ``randomized = true`` and enrolled within ``window`` (the dates on
    which every compared arm was open, :func:`concurrent_window`).
    """
    start, end = window
    frame = table.frame.set_index("subject_id")
    n = dict.fromkeys(arms, 0)
    y = dict.fromkeys(arms, 0)
    excluded = {"not_randomized": 0, "outside_window": 0, "not_evaluable": 0}
    for sid, arm, val in zip(
        derived.patients["subject_id"], derived.patients["arm"], derived.patients[endpoint], strict=True
    ):
        if arm not in n:
            continue
        rec = frame.loc[sid]
        if rec["randomized"] is not True:
            excluded["not_randomized"] += 1
        elif not start <= rec["enrolled_on"] <= end:
            excluded["outside_window"] += 1
        elif val is None or (isinstance(val, float) and np.isnan(val)):
            excluded["not_evaluable"] += 1
        else:
            n[arm] += 1
            y[arm] += int(val)
    return n, y, excluded


def concurrent_analysis(
    design: Design,
    table: PatientTable,
    derived: DerivedData,
    rule: AllocationRule,
    allocation: Allocation,
) -> dict | None:
    """The cohort's comparison on concurrently randomized patients only (see module docstring).

    ``allocation``: the look's allocation of the cohort (its previous allocation and the fitted
    model's P(best), reported beside the concurrent ones).
    """
    open_arms = [a for a in rule.arms if design.arm(a).status == "active"]
    comparisons = [
        c
        for r in design.rules
        if isinstance(r, Superiority) and set(r.arms) <= set(rule.arms)
        for c in [_concurrent_comparison(design, table, derived, r)]
        if c is not None
    ]
    if len(open_arms) < 2:
        if not comparisons:
            return None
        return {
            "model": _MODEL_WORDS,
            "comparisons": comparisons,
            "sentence": "Fewer than two arms of the cohort are open: no concurrent allocation.",
        }
    window = concurrent_window(design, table, open_arms, derived.cutoff)
    if window is None:
        return {
            "model": _MODEL_WORDS,
            "window": None,
            "comparisons": comparisons,
            "sentence": "The open arms of the cohort have no period in which all were open.",
        }
    return _concurrent_allocation(design, table, derived, rule, allocation, open_arms, window, comparisons)


def _rule_on_window(design: Design, table: PatientTable, derived: DerivedData, r: Superiority, window):
    """A superiority rule on the patients randomized within ``window``: counts and its result."""
    n, y, _ = concurrent_counts(design, table, derived, r.endpoint, r.arms, window)
    (res,) = r.evaluate(_beta(design, r.endpoint, r.arms, n, y), n)
    return n, y, res


def _concurrent_comparison(
    design: Design, table: PatientTable, derived: DerivedData, r: Superiority
) -> dict | None:
    """One superiority rule on its concurrently randomized patients, and on all its arms' patients.

    The rule decides (:meth:`Superiority.evaluate`) on the independent ``Beta(null, 1 - null)``
    posterior; ``None`` when its arms were never open together.
    """
    window = concurrent_window(design, table, r.arms, derived.cutoff)
    if window is None:
        return None
    a, b = r.arms
    n, y, res = _rule_on_window(design, table, derived, r, window)
    n_all, y_all = _all_counts(derived, r.endpoint, r.arms)
    (res_all,) = r.evaluate(_beta(design, r.endpoint, r.arms, n_all, y_all), n_all)
    return {
        "rule": r.id,
        "endpoint": r.endpoint,
        "arms": [a, b],
        "window": {"from": window[0].isoformat(), "to": window[1].isoformat()},
        "n_evaluable": n,
        "responders": y,
        f"prob_{a}_better": res.extra[f"prob_{a}_better"],
        f"prob_{b}_better": res.extra[f"prob_{b}_better"],
        "all_patients": {
            "n_evaluable": n_all,
            "responders": y_all,
            f"prob_{a}_better": res_all.extra[f"prob_{a}_better"],
            f"prob_{b}_better": res_all.extra[f"prob_{b}_better"],
        },
        "threshold": r.threshold,
        "would_fire": res.fired,
    }


def _concurrent_allocation(
    design: Design,
    table: PatientTable,
    derived: DerivedData,
    rule: AllocationRule,
    allocation: Allocation,
    open_arms: list[str],
    window: tuple[date, date],
    comparisons: list[dict],
) -> dict:
    """P(best) of the open arms on the concurrent window and the allocation the same rule would give."""
    endpoint = rule.endpoint
    higher_is_better = BINARY_ENDPOINTS[endpoint].direction == "higher_is_better"
    n, y, excluded = concurrent_counts(design, table, derived, endpoint, open_arms, window)
    post = _beta(design, endpoint, open_arms, n, y)
    best = post.prob_best(open_arms, higher_is_better=higher_is_better)
    n_all, y_all = _all_counts(derived, endpoint, open_arms)
    best_all = _beta(design, endpoint, open_arms, n_all, y_all).prob_best(
        open_arms, higher_is_better=higher_is_better
    )
    alloc = rule.allocate(
        is_open={a: a in open_arms for a in rule.arms},
        n_evaluable={a: n.get(a, 0) for a in rule.arms},
        max_n={a: design.arm(a).max_n for a in rule.arms},
        prob_best={a: best[a].prob if a in best else 0.0 for a in rule.arms},
        variance={a: post.variance(a) if a in open_arms else 0.0 for a in rule.arms},
        previous=allocation.previous,
        previous_source=allocation.previous_source,
    )
    arms_out = {
        a: {
            "n_evaluable": n[a],
            "responders": y[a],
            "mean": post.mean(a),
            "prob_best": best[a].prob,
            "n_evaluable_all_patients": n_all[a],
            "responders_all_patients": y_all[a],
            "prob_best_all_patients": best_all[a].prob,
            "prob_best_fitted_model": (allocation.inputs.get("prob_best") or {}).get(a),
        }
        for a in open_arms
    }
    pb_words = ", ".join(f"{a} {fmt_prob(best[a].prob)}" for a in open_arms)
    pb_all = ", ".join(f"{a} {fmt_prob(best_all[a].prob)}" for a in open_arms)
    sentence = (
        f"Independent Beta model, concurrently randomized patients only ({window[0]} to {window[1]}, "
        f"{sum(n.values())} evaluable; {excluded['not_randomized']} not randomized and "
        f"{excluded['outside_window']} outside the window left out): "
        f"P(best {BINARY_ENDPOINTS[endpoint].label}) {pb_words} "
        f"(same model on all {sum(n_all.values())} evaluable: {pb_all}); the same allocation rule would "
        "randomize " + " : ".join(f"{a} {fmt_rate(alloc.probabilities[a])}" for a in open_arms) + "."
    )
    sentence += "".join(_comparison_words(c) for c in comparisons)
    return {
        "model": _MODEL_WORDS,
        "window": {"from": window[0].isoformat(), "to": window[1].isoformat()},
        "excluded": excluded,
        "arms": arms_out,
        "allocation": dict(alloc.probabilities),
        "comparisons": comparisons,
        "sentence": sentence,
    }


def _comparison_words(c: Mapping) -> str:
    """One concurrent comparison in the cohort's sentence (with a leading space)."""
    a, b = c["arms"]
    everyone = c["all_patients"]
    return (
        f" '{c['rule']}': P({a} better) {fmt_prob(c[f'prob_{a}_better'])}, "
        f"P({b} better) {fmt_prob(c[f'prob_{b}_better'])} "
        f"({'would fire' if c['would_fire'] else 'would not fire'}; all patients "
        f"{fmt_prob(everyone[f'prob_{a}_better'])} / {fmt_prob(everyone[f'prob_{b}_better'])})."
    )


_MODEL_WORDS = (
    "independent Beta(null, 1 - null) prior per arm, updated with concurrently randomized patients "
    "only; probabilities by numerical integration (no borrowing, no sampling)"
)


def _beta(design: Design, endpoint: str, arms, n, y) -> BetaPosterior:
    null = {a: design.arm(a).rates[endpoint].null_rate for a in arms}
    return BetaPosterior(
        list(arms),
        {a: null[a] + y[a] for a in arms},
        {a: 1.0 - null[a] + n[a] - y[a] for a in arms},
    )
