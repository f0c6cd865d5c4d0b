"""Operating characteristics of a design under a scenario, each with its Monte Carlo standard error.

Definitions (per arm unless said otherwise; N = number of virtual trials):

* ``prob_graduate``, ``prob_drop_futility``, ``prob_drop_harm``, ``prob_drop_inferior``,
  ``prob_no_decision``: how often the arm ends in each state (``no_decision``: enrolment stopped
  or the arm completed without any rule firing).
* ``prob_superior``: how often the arm's randomized partner was dropped as inferior to it.
* ``type_i_error``: for an arm whose true CRc rate equals its configured null rate,
  P(graduated or declared superior); ``null`` elsewhere.
* ``power``: for an arm whose true CRc rate is at least its target rate, P(graduated);
  ``null`` elsewhere.
* ``n_mean``, ``n_sd``, ``n_q10``, ``n_q50``, ``n_q90``: patients enrolled.
* ``allocation``: the arm's share of its randomized cohort's patients (mean over trials).
* ``bias``, ``rmse``: of the final posterior mean of CRc against the true CRc probability of the
  arm's own patients (deaths before assessment count as failures, as in the derivation rules).
* Trial level: ``duration_mean``/``_sd`` (days to the last analysis), ``looks_mean``,
  ``prob_stopped_by_rule``, and per randomized pair ``prob_select_better``: P(the truly better arm
  is declared superior), ``prob_select_worse``, ``prob_better_estimated_higher``.

MCSE: ``sqrt(p (1 - p) / N)`` for probabilities, ``sd / sqrt(N)`` for means, the delta method
for RMSE.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from adaptive.simulate.engine import (
    DROP_FUTILITY,
    DROP_HARM,
    DROP_INFERIOR,
    GRADUATED,
    STATUS_NAMES,
    ChunkResult,
    SimSpec,
)
from decision_rules.rules import Superiority


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


def partners(spec: SimSpec) -> dict[int, list[int]]:
    """Arm -> the arms it is compared with by a superiority rule."""
    idx = {a: i for i, a in enumerate(spec.arms)}
    out: dict[int, list[int]] = {}
    for r in spec.rules:
        if isinstance(r, Superiority):
            i, j = idx[r.arms[0]], idx[r.arms[1]]
            out.setdefault(i, []).append(j)
            out.setdefault(j, []).append(i)
    return out


def summarise(spec: SimSpec, res: ChunkResult) -> dict:
    """Operating characteristics with MCSE (see the module docstring for definitions)."""
    design = spec.design
    n_trials = len(res.trial)
    pairs = partners(spec)
    truth_nominal = spec.truth["cr"] + spec.truth["cri"]
    arms_out = []
    cohort_of = {}
    for st in spec.steps:
        if st["randomized"]:
            for a in st["arms"]:
                cohort_of[int(a)] = st["arms"]
    for i, arm in enumerate(spec.arms):
        status = res.status[:, i]
        rates = design.arm(arm).rates["crc"]
        superior = np.zeros(n_trials, bool)
        for j in pairs.get(i, []):
            superior |= res.status[:, j] == DROP_INFERIOR
        graduated = status == GRADUATED
        at_null = bool(np.isclose(truth_nominal[i], rates.null_rate, atol=1e-9))
        at_target = rates.target_rate is not None and truth_nominal[i] >= rates.target_rate - 1e-9
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
        arms_out.append(
            {
                "arm": arm,
                "label": design.arm(arm).label,
                "true_crc": float(truth_nominal[i]),
                "null_rate": rates.null_rate,
                "target_rate": rates.target_rate,
                "prob_graduate": _prop(graduated),
                "prob_drop_futility": _prop(status == DROP_FUTILITY),
                "prob_drop_harm": _prop(status == DROP_HARM),
                "prob_drop_inferior": _prop(status == DROP_INFERIOR),
                "prob_no_decision": _prop(
                    ~np.isin(status, (GRADUATED, DROP_FUTILITY, DROP_HARM, DROP_INFERIOR))
                ),
                "prob_superior": _prop(superior) if i in pairs else None,
                "type_i_error": _prop(graduated | superior) if at_null else None,
                "power": _prop(graduated) if at_target else None,
                "n_mean": _mean(n),
                "n_sd": float(n.std(ddof=1)) if n_trials > 1 else None,
                "n_q10": float(np.quantile(n, 0.1)),
                "n_q50": float(np.quantile(n, 0.5)),
                "n_q90": float(np.quantile(n, 0.9)),
                "allocation": alloc,
                "bias": _mean(err) if err.size else None,
                "rmse": {"estimate": rmse, "mcse": rmse_mcse},
                "final_status": {
                    STATUS_NAMES[int(c)]: float(np.mean(status == c)) for c in np.unique(status)
                },
            }
        )
    comparisons = []
    idx = {a: i for i, a in enumerate(spec.arms)}
    for r in spec.rules:
        if not isinstance(r, Superiority):
            continue
        i, j = idx[r.arms[0]], idx[r.arms[1]]
        ti, tj = truth_nominal[i], truth_nominal[j]
        better, worse = (i, j) if ti >= tj else (j, i)
        sel_better = res.status[:, worse] == DROP_INFERIOR
        sel_worse = res.status[:, better] == DROP_INFERIOR
        est_higher = res.final_mean[:, better] > res.final_mean[:, worse]
        comparisons.append(
            {
                "rule": r.id,
                "arms": [spec.arms[i], spec.arms[j]],
                "truly_better": spec.arms[better] if ti != tj else None,
                "prob_select_better": _prop(sel_better) if ti != tj else None,
                "prob_select_worse": _prop(sel_worse) if ti != tj else None,
                "prob_any_selection": _prop(sel_better | sel_worse),
                "prob_better_estimated_higher": _prop(est_higher) if ti != tj else None,
            }
        )
    return {
        "n_trials": n_trials,
        "duration_mean": _mean(res.duration),
        "duration_sd": float(np.std(res.duration, ddof=1)) if n_trials > 1 else None,
        "looks_mean": _mean(res.n_looks.astype(float)),
        "n_total_mean": _mean(res.n_enrolled.sum(1).astype(float)),
        "prob_stopped_by_rule": _prop(res.stopped_by_rule),
        "arms": arms_out,
        "comparisons": comparisons,
    }


def per_trial_frame(spec: SimSpec, res: ChunkResult, scenario: str):
    """Long table: one row per (trial, arm)."""
    import pandas as pd

    t, k = res.status.shape
    return pd.DataFrame(
        {
            "scenario": scenario,
            "trial": np.repeat(res.trial, k),
            "arm": np.tile(np.array(spec.arms, dtype=object), t),
            "status": [STATUS_NAMES[int(c)] for c in res.status.ravel()],
            "decision_day": res.decision_time.ravel(),
            "decision_look": res.decision_look.ravel(),
            "n_enrolled": res.n_enrolled.ravel(),
            "n_randomized": res.n_randomized.ravel(),
            "n_evaluable_crc": res.n_evaluable.ravel(),
            "responders_crc": res.responders.ravel(),
            "final_mean_crc": res.final_mean.ravel(),
            "final_prob_above_null_crc": res.final_prob_null.ravel(),
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
