"""Operating characteristics of a design under a scenario, each with its Monte Carlo standard error.

Definitions (per arm unless said otherwise; N = number of virtual trials). The words are the
engine's one vocabulary (:mod:`decision_rules.vocabulary`): final statuses are arm statuses,
decisions are actions.

* ``prob_graduate``, ``prob_drop_futility``, ``prob_drop_harm``, ``prob_drop_inferior``,
  ``prob_complete``: how often the arm is closed by each action (``complete``: its final
  analysis with the criterion not met, or nothing to decide); ``prob_no_decision``: the arm is
  still open at the end (no final analysis configured, or suspended). ``prob_graduate_final``:
  graduated at its final analysis (the rest graduated at an interim look).
* ``by_rule``: per decision, how often each rule was the one behind it (e.g. ``futility_crc``
  vs ``pp_futility_crc`` for ``drop_futility``).
* ``prob_ever_flagged``, ``prob_ever_suspended``: a harm rule's flag tier fired / enrolment was
  suspended at some look.
* ``final_status``: the distribution of the arm's final :class:`~decision_rules.vocabulary.ArmStatus`.
* ``prob_superior``: how often the arm's randomized partner was dropped as inferior to it.
* ``true_crc`` (the scenario's CR + CRi) and ``true_crc_itt``, the intention-to-treat rate
  (deaths before the response assessment are failures, :func:`adaptive.simulate.engine.itt_crc`).
  Arms are classified as at their null or target by the ITT rate (within 0.005).
* ``type_i_error``: for an arm whose ITT CRc rate equals its configured null rate and that a
  rule can graduate or declare superior, P(graduated or declared superior); ``null`` elsewhere.
* ``power``: for an arm whose ITT CRc rate is at least its target rate and that a rule can
  graduate, P(graduated); ``null`` elsewhere (an arm decided only by comparison has no
  graduation power: its power is the comparison's ``prob_select_better``).
* ``n_mean``, ``n_sd``, ``n_q10``, ``n_q50``, ``n_q90``: patients enrolled.
* ``allocation``: the arm's share of its randomized cohort's patients (mean over trials).
* ``bias``, ``rmse``: of the final posterior mean of CRc against the true CRc probability of the
  arm's own patients (deaths before assessment count as failures, as in the derivation rules).
  ``bias_by_decision``: the same bias among the trials in which the arm ended with each action
  (``graduate``, ``drop_futility``, ...; ``none``: still open), with the share of trials:
  estimates after early stopping are biased in the direction of the decision.
* ``coverage_95``: how often the final equal-tailed 95% posterior interval of CRc (exact for
  conjugate arms; for hierarchical / EXNEX models the Beta with the posterior's mean and variance)
  contains that true rate, among trials in which the arm enrolled.
* ``false_futility``: for an arm at or above its target (ITT), P(dropped for futility);
  ``false_harm``: for an arm whose true mortality is at or below the reference of every
  ``drop_harm`` tier that monitors it, P(dropped for harm); ``null`` elsewhere.
* ``decision_timing``: among trials with a closing decision, the mean look number and day of it
  and the share decided at each look (``by_look``; ``final_analysis`` counted apart).
* Trial level: ``duration_mean``/``_sd`` (days to the last analysis), ``looks_mean``,
  ``prob_stopped_by_rule``, ``prob_any_drop_harm``, ``prob_any_suspension``, ``prob_any_flag``.
  ``null_arms``: the arms at their CRc null (ITT) that some rule can graduate or declare
  superior (an arm no efficacy rule covers cannot make a false positive: ``null`` rather than a
  vacuous 0%); ``fwer``, the family-wise error: P(any null arm graduates or is declared
  superior); ``expected_false_graduations``: the mean number of
  null arms graduated or declared superior per trial; ``harm_reference_arms`` and
  ``prob_any_false_harm``: P(any arm not above its mortality limit, the reference of its
  ``drop_harm`` tier, is dropped for harm).
  ``error_summary``: these and the largest per-arm type I error, in one place.
* Per comparison (superiority rule on a binary endpoint, ``hazard_ratio`` rule on a survival
  endpoint; selections counted per rule, so that the CRc and the OS comparison of one pair are
  reported apart; the truly better arm of a hazard-ratio rule is the one with the longer true
  median OS, equal within a day): ``prob_select_better`` (the truly better arm's partner
  dropped as inferior), ``prob_select_worse``, ``prob_any_selection``, ``prob_decided`` (either
  arm dropped as inferior), ``prob_ran_to_max_n`` (both arms enrolled their ``max_n`` without a
  comparative decision), ``prob_decided_or_max_n`` and ``prob_cut_short`` (the rest: an arm
  closed for another reason or the trial ended first), ``prob_worse_closed`` (the truly worse
  arm closed for lack of efficacy, as inferior or futile, and the better arm not),
  ``prob_better_estimated_higher`` (the final CRc estimates; superiority rules only). Arms
  whose ITT rates differ by at most 0.005 are equal (no "better" arm); then
  ``prob_false_selection`` is the comparison's type I error (one of two equal arms declared
  superior), and ``error_summary.max_comparison_false_selection`` the largest over the
  comparisons.

MCSE: ``sqrt(p (1 - p) / N)`` for probabilities, ``sd / sqrt(N)`` for means, the delta method
for RMSE.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from adaptive.simulate.engine import (
    COMPLETED,
    DECISIONS,
    DROPPED,
    GRADUATED,
    STAGES,
    STATUS_NAMES,
    ChunkResult,
    SimSpec,
)
from decision_rules.rules import Harm, Superiority, rule_arms
from decision_rules.survival import HazardRatioSuperiority
from decision_rules.vocabulary import PRIMARY_ENDPOINT, Action

_CODE = {a: i for i, a in enumerate(DECISIONS) if a is not None}
#: an arm is "at its null" ("at its target") when its ITT CRc rate is within this of it
ITT_TOLERANCE = 0.005


def merge_chunks(chunks: Sequence[ChunkResult]) -> ChunkResult:
    """Concatenate chunk results in trial order."""
    chunks = sorted(chunks, key=lambda c: int(c.trial[0]) if len(c.trial) else -1)
    fields = ChunkResult.__dataclass_fields__
    return ChunkResult(**{f: np.concatenate([getattr(c, f) for c in chunks]) for f in fields})


def _prop(x: np.ndarray) -> dict:
    n = len(x)
    p = float(np.mean(x)) if n else float("nan")
    return {"estimate": p, "mcse": float(np.sqrt(p * (1 - p) / n)) if n else None}


def _mean(x: np.ndarray) -> dict:
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return {"estimate": None, "mcse": None}
    return {"estimate": float(x.mean()), "mcse": float(x.std(ddof=1) / np.sqrt(n)) if n > 1 else None}


#: comparison rules: superiority (a binary endpoint) and hazard ratio (a survival endpoint)
_COMPARISONS = (Superiority, HazardRatioSuperiority)
#: arms whose true median OS differs by at most this many days are equal on OS
OS_TOLERANCE_DAYS = 1.0


def partners(spec: SimSpec) -> dict[int, list[int]]:
    """Arm -> the arms it is compared with by a comparison rule."""
    idx = {a: i for i, a in enumerate(spec.arms)}
    out: dict[int, list[int]] = {}
    for r in spec.rules:
        if isinstance(r, _COMPARISONS):
            i, j = idx[r.arms[0]], idx[r.arms[1]]
            out.setdefault(i, []).append(j)
            out.setdefault(j, []).append(i)
    return out


#: scenario column of each mortality endpoint (adaptive.simulate.engine's truth)
_MORTALITY_TRUTH = {"mortality_30d": "m30", "mortality_60d": "m60"}


def _not_harmful(spec: SimSpec) -> list[bool]:
    """Per arm: monitored by a ``drop_harm`` tier and truly at or below every such tier's reference."""
    out = []
    for i, arm in enumerate(spec.arms):
        refs = [
            (tier.references[arm], spec.truth[_MORTALITY_TRUTH[r.endpoint]][i])
            for r in spec.rules
            if isinstance(r, Harm) and r.endpoint in _MORTALITY_TRUTH
            for tier in r.tiers
            if tier.action == Action.DROP_HARM and arm in tier.references
        ]
        out.append(bool(refs) and all(truth <= ref + ITT_TOLERANCE for ref, truth in refs))
    return out


def _graduating_arms(spec: SimSpec) -> set[str]:
    """Arms that some rule can graduate (an efficacy rule on CRc, a predictive or median one)."""
    out: set[str] = set()
    for r in spec.rules:
        if getattr(r, "action", None) == Action.GRADUATE:
            out |= set(rule_arms(r))
    return out


def summarise(spec: SimSpec, res: ChunkResult) -> dict:
    """Operating characteristics with MCSE (see the module docstring for definitions)."""
    design = spec.design
    n_trials = len(res.trial)
    pairs = partners(spec)
    truth_nominal = spec.truth["cr"] + spec.truth["cri"]
    truth_itt = spec.truth["crc_itt"]
    arms_out = []
    cohort_of = {}
    for st in spec.steps:
        if st["randomized"]:
            for a in st["arms"]:
                cohort_of[int(a)] = st["arms"]
    closed = np.isin(res.status, (GRADUATED, DROPPED, COMPLETED))
    harmless_arm = _not_harmful(spec)
    can_graduate = _graduating_arms(spec)
    false_positive = np.zeros((n_trials, len(spec.arms)), bool)
    null_arms = []
    for i, arm in enumerate(spec.arms):
        status = res.status[:, i]
        decision = res.decision[:, i]
        rates = design.arm(arm).rates[PRIMARY_ENDPOINT]
        superior = np.zeros(n_trials, bool)
        for j in pairs.get(i, []):
            superior |= res.decision[:, j] == _CODE[Action.DROP_INFERIOR]
        graduated = decision == _CODE[Action.GRADUATE]
        # classified by the intention-to-treat rate (early deaths count as failures), within 0.005
        # at its null and able to err: some rule can graduate it or declare it superior (an arm
        # no efficacy rule covers, e.g. exploratory or descriptive, makes no false positive, and
        # counting it would report a vacuous 0% error)
        at_null = bool(abs(truth_itt[i] - rates.null_rate) <= ITT_TOLERANCE) and (
            arm in can_graduate or bool(pairs.get(i))
        )
        at_target = rates.target_rate is not None and truth_itt[i] >= rates.target_rate - ITT_TOLERANCE
        n = res.n_enrolled[:, i].astype(float)
        entered = n > 0
        err = (res.final_mean[:, i] - res.truth_crc[:, i])[entered]
        rmse = float(np.sqrt(np.mean(err**2))) if err.size else None
        rmse_mcse = (
            float(np.std(err**2, ddof=1) / np.sqrt(err.size) / (2 * rmse)) if err.size > 1 and rmse else None
        )
        alloc = None
        if i in cohort_of:
            tot = res.n_randomized[:, cohort_of[i]].sum(1)
            share = np.where(tot > 0, res.n_randomized[:, i] / np.maximum(tot, 1), np.nan)
            alloc = _mean(share)
        lo, hi = res.final_lo[:, i], res.final_hi[:, i]
        truth_i = res.truth_crc[:, i]
        covered = ((lo <= truth_i) & (truth_i <= hi))[entered & np.isfinite(lo) & np.isfinite(hi)]
        bias_by = {}
        for action, code in [("none", 0), *_CODE.items()]:
            hit = (decision == code)[entered]
            if hit.any():
                bias_by[str(action)] = {"share": float(hit.mean()), **_mean(err[hit])}
        decided_at = decision != 0
        at_final = decided_at & (res.decision_stage[:, i] == STAGES.index("final_analysis"))
        looks = res.decision_look[decided_at & ~at_final, i]
        timing = None
        if decided_at.any():
            by_look = {
                str(int(v)): float(np.sum(looks == v)) / int(decided_at.sum()) for v in np.unique(looks)
            }
            if at_final.any():
                by_look["final_analysis"] = float(at_final.sum()) / int(decided_at.sum())
            timing = {
                "prob_decided": float(decided_at.mean()),
                "look_mean": _mean(res.decision_look[decided_at, i].astype(float)),
                "day_mean": _mean(res.decision_time[decided_at, i].astype(float)),
                "by_look": by_look,
            }
        harmless = harmless_arm[i]
        by_rule = {}
        for action, code in _CODE.items():
            hit = decision == code
            if not hit.any():
                continue
            rules = res.decision_rule[hit, i]
            by_rule[str(action)] = {
                (spec.rule_ids[r] if r >= 0 else "final_analysis"): float(np.sum(rules == r)) / n_trials
                for r in np.unique(rules)
            }
        if at_null:
            null_arms.append(arm)
            false_positive[:, i] = graduated | superior
        arms_out.append(
            {
                "arm": arm,
                "label": design.arm(arm).label,
                "monitoring": str(design.arm(arm).monitoring),
                "true_crc": float(truth_nominal[i]),
                "true_crc_itt": float(truth_itt[i]),
                "null_rate": rates.null_rate,
                "futility_rate": rates.futility_rate,
                "target_rate": rates.target_rate,
                "prob_graduate": _prop(graduated),
                "prob_graduate_final": _prop(
                    graduated & (res.decision_stage[:, i] == STAGES.index("final_analysis"))
                ),
                "prob_drop_futility": _prop(decision == _CODE[Action.DROP_FUTILITY]),
                "prob_drop_harm": _prop(decision == _CODE[Action.DROP_HARM]),
                "prob_drop_inferior": _prop(decision == _CODE[Action.DROP_INFERIOR]),
                "prob_complete": _prop(decision == _CODE[Action.COMPLETE]),
                "prob_no_decision": _prop(~closed[:, i] & (decision == 0)),
                "prob_ever_flagged": _prop(res.ever_flagged[:, i]),
                "prob_ever_suspended": _prop(res.ever_suspended[:, i]),
                "by_rule": by_rule,
                "prob_superior": _prop(superior) if i in pairs else None,
                "type_i_error": _prop(graduated | superior) if at_null else None,
                "power": _prop(graduated) if at_target and arm in can_graduate else None,
                "n_mean": _mean(n),
                "n_sd": float(n.std(ddof=1)) if n_trials > 1 else None,
                "n_q10": float(np.quantile(n, 0.1)),
                "n_q50": float(np.quantile(n, 0.5)),
                "n_q90": float(np.quantile(n, 0.9)),
                "allocation": alloc,
                "bias": _mean(err) if err.size else None,
                "rmse": {"estimate": rmse, "mcse": rmse_mcse},
                "bias_by_decision": bias_by,
                "coverage_95": _prop(covered) if covered.size else None,
                "false_futility": _prop(decision == _CODE[Action.DROP_FUTILITY]) if at_target else None,
                "false_harm": _prop(decision == _CODE[Action.DROP_HARM]) if harmless else None,
                "decision_timing": timing,
                "final_status": {
                    str(name): float(
                        np.mean(np.isin(status, [c for c, m in STATUS_NAMES.items() if m == name]))
                    )
                    for name in dict.fromkeys(STATUS_NAMES[int(c)] for c in np.unique(status))
                },
            }
        )
    comparisons = []
    idx = {a: i for i, a in enumerate(spec.arms)}
    inferior = _CODE[Action.DROP_INFERIOR]
    for r in spec.rules:
        if not isinstance(r, _COMPARISONS):
            continue
        i, j = idx[r.arms[0]], idx[r.arms[1]]
        if isinstance(r, HazardRatioSuperiority):  # truly better: the longer true median OS
            ti, tj = spec.truth["median_os"][i], spec.truth["median_os"][j]
            differ = abs(ti - tj) > OS_TOLERANCE_DAYS
        else:
            ti, tj = truth_itt[i], truth_itt[j]
            differ = abs(ti - tj) > ITT_TOLERANCE
        better, worse = (i, j) if ti >= tj else (j, i)
        # selections by this rule (another comparison of the pair can select too)
        by_this = res.decision_rule == spec.rule_ids.index(r.id)
        sel_better = (res.decision[:, worse] == inferior) & by_this[:, worse]
        sel_worse = (res.decision[:, better] == inferior) & by_this[:, better]
        decided = sel_better | sel_worse
        full = (res.n_enrolled[:, i] >= spec.max_n[i]) & (res.n_enrolled[:, j] >= spec.max_n[j])
        est_higher = res.final_mean[:, better] > res.final_mean[:, worse]
        # the truly worse arm closed for lack of efficacy (inferior or futile), the better one not
        lacking = np.isin(res.decision, [_CODE[Action.DROP_INFERIOR], _CODE[Action.DROP_FUTILITY]])
        worse_closed = lacking[:, worse] & ~lacking[:, better]
        comparisons.append(
            {
                "rule": r.id,
                "endpoint": r.endpoint,
                "arms": [spec.arms[i], spec.arms[j]],
                "truly_better": spec.arms[better] if differ else None,
                "prob_select_better": _prop(sel_better) if differ else None,
                "prob_select_worse": _prop(sel_worse) if differ else None,
                "prob_worse_closed": _prop(worse_closed) if differ else None,
                "prob_any_selection": _prop(decided),
                # arms equal: any selection declares one of two equal arms superior (type I error)
                "prob_false_selection": None if differ else _prop(decided),
                "prob_decided": _prop(decided),
                "prob_ran_to_max_n": _prop(~decided & full),
                "prob_decided_or_max_n": _prop(decided | full),
                "prob_cut_short": _prop(~decided & ~full),
                "prob_better_estimated_higher": (
                    _prop(est_higher) if differ and isinstance(r, Superiority) else None
                ),
            }
        )
    harm_drop = res.decision == _CODE[Action.DROP_HARM]
    has_harm = any(isinstance(r, Harm) for r in spec.rules)
    harmless_idx = [i for i, ok in enumerate(harmless_arm) if ok]
    fwer = _prop(false_positive.any(1)) if null_arms else None
    n_false = _mean(false_positive.sum(1).astype(float)) if null_arms else None
    any_false_harm = _prop(harm_drop[:, harmless_idx].any(1)) if has_harm and harmless_idx else None
    type_i = [(a["arm"], a["type_i_error"]) for a in arms_out if a["type_i_error"] is not None]
    worst = max(type_i, key=lambda x: x[1]["estimate"], default=None)
    return {
        "n_trials": n_trials,
        "duration_mean": _mean(res.duration),
        "duration_sd": float(np.std(res.duration, ddof=1)) if n_trials > 1 else None,
        "looks_mean": _mean(res.n_looks.astype(float)),
        "n_total_mean": _mean(res.n_enrolled.sum(1).astype(float)),
        "prob_stopped_by_rule": _prop(res.stopped_by_rule),
        "prob_any_drop_harm": _prop(harm_drop.any(1)) if has_harm else None,
        "prob_any_suspension": _prop(res.ever_suspended.any(1)) if has_harm else None,
        "prob_any_flag": _prop(res.ever_flagged.any(1)) if has_harm else None,
        "null_arms": null_arms,
        "fwer": fwer,
        "expected_false_graduations": n_false,
        "harm_reference_arms": [spec.arms[i] for i in harmless_idx] if has_harm else [],
        "prob_any_false_harm": any_false_harm,
        "error_summary": {
            "fwer": fwer,
            "expected_false_graduations": n_false,
            "max_arm_type_i_error": ({"arm": worst[0], **worst[1]} if worst is not None else None),
            "prob_any_false_harm": any_false_harm,
            "max_comparison_false_selection": max(
                (
                    {"rule": c["rule"], **c["prob_false_selection"]}
                    for c in comparisons
                    if c["prob_false_selection"]
                ),
                key=lambda x: x["estimate"],
                default=None,
            ),
        },
        "arms": arms_out,
        "comparisons": comparisons,
        "allocation_over_time": allocation_over_time(spec, res),
    }


#: a look of the allocation trace is summarised while at least this share of trials randomize there
TRACE_MIN_SHARE = 0.05


def allocation_over_time(spec: SimSpec, res: ChunkResult) -> dict | None:
    """Per randomized cohort, the mean allocation probability of its arms after each look.

    Look ``j`` (0: the start) is summarised over the trials whose cohort was still randomizing
    between at least two open arms after it (``n_trials``; an arm closed by a decision or at its
    ``max_n`` gets no more patients, and the arms left take everything: such trials are counted
    in ``n_one_arm_open``, not averaged), while they are at least :data:`TRACE_MIN_SHARE` of all
    trials: the mean day of that look and, per arm, the mean probability with its MCSE. The
    trials still randomizing at a late look are a selected set (their comparison not decided,
    neither arm full), so the curve describes the design's behaviour, not one trial's path.
    ``None`` when the design has no randomized cohort.
    """
    if not spec.alloc_rules or not len(res.trial):
        return None
    out = {}
    for rule in spec.alloc_rules:
        idx = [spec.arms.index(a) for a in rule.arms]
        probs = res.alloc_trace[:, :, idx].astype(float)  # (T, L + 1, arms)
        n_open = (np.nan_to_num(probs) > 0).sum(2)
        traced = np.isfinite(res.look_day)
        live = traced & (n_open >= 2)
        looks = [j for j in range(live.shape[1]) if live[:, j].mean() >= TRACE_MIN_SHARE]
        block: dict = {"arms": list(rule.arms), "look": looks, "n_trials": [], "n_one_arm_open": []}
        block |= {"day_mean": [], "probabilities": {a: [] for a in rule.arms}}
        for j in looks:
            rows = live[:, j]
            block["n_trials"].append(int(rows.sum()))
            block["n_one_arm_open"].append(int((traced[:, j] & (n_open[:, j] == 1)).sum()))
            block["day_mean"].append(float(res.look_day[rows, j].astype(float).mean()))
            for a, col in zip(rule.arms, probs[rows, j].T, strict=True):
                block["probabilities"][a].append(_mean(col))
        out[rule.cohort] = block
    return out


def per_trial_frame(spec: SimSpec, res: ChunkResult, scenario: str):
    """Long table: one row per (trial, arm)."""
    import pandas as pd

    t, k = res.status.shape
    return pd.DataFrame(
        {
            "scenario": scenario,
            "trial": np.repeat(res.trial, k),
            "arm": np.tile(np.array(spec.arms, dtype=object), t),
            "status": [str(STATUS_NAMES[int(c)]) for c in res.status.ravel()],
            "decision": [
                None if DECISIONS[int(c)] is None else str(DECISIONS[int(c)]) for c in res.decision.ravel()
            ],
            "decision_rule": [spec.rule_ids[int(r)] if r >= 0 else None for r in res.decision_rule.ravel()],
            "decision_stage": [STAGES[int(x)] if x >= 0 else None for x in res.decision_stage.ravel()],
            "decision_day": res.decision_time.ravel(),
            "decision_look": res.decision_look.ravel(),
            "ever_flagged": res.ever_flagged.ravel(),
            "ever_suspended": res.ever_suspended.ravel(),
            "n_enrolled": res.n_enrolled.ravel(),
            "n_randomized": res.n_randomized.ravel(),
            "n_evaluable_crc": res.n_evaluable.ravel(),
            "responders_crc": res.responders.ravel(),
            "final_mean_crc": res.final_mean.ravel(),
            "final_prob_above_null_crc": res.final_prob_null.ravel(),
            "final_lo_crc": res.final_lo.ravel(),
            "final_hi_crc": res.final_hi.ravel(),
            "true_crc": res.truth_crc.ravel(),
            "trial_duration_days": np.repeat(res.duration, k),
            "trial_looks": np.repeat(res.n_looks, k),
            "stopped_by_rule": np.repeat(res.stopped_by_rule, k),
        }
    )


def flat_rows(summary: dict, scenario: str, allocation: str) -> list[dict]:
    """The per-arm summary as flat CSV rows (estimate and MCSE columns)."""
    rows = []
    for a in summary["arms"]:
        row = {"scenario": scenario, "allocation_rule": allocation, "arm": a["arm"], "label": a["label"]}
        for key, val in a.items():
            if isinstance(val, dict) and "estimate" in val:
                row[key] = val["estimate"]
                row[f"{key}_mcse"] = val["mcse"]
            elif val is None or isinstance(val, int | float | str):
                if key not in row:
                    row[key] = val
        row["trial_duration_mean"] = summary["duration_mean"]["estimate"]
        rows.append(row)
    return rows
