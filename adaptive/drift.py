"""Does calendar time bias a randomized comparison? The pooled against time-adjusted analyses.

When the allocation ratio of a randomized cohort changes over time (response-adaptive
randomization) and the outcome drifts with calendar time (the population, supportive care or
centres change), the pooled comparison mixes periods in unequal proportions per arm and is
biased by time (Korn & Freidlin 2011; Villar, Bowden & Wason 2018). REMAP-CAP adjusts for time
epochs for this reason. For each superiority rule of the cohort, on the concurrently randomized
evaluable patients (the patients its comparison reads):

* **pooled**: the odds ratio experimental : reference from one 2x2 table;
* **by allocation period**: stratified by the periods between the looks (from the ledger) at
  which the cohort's allocation changed: patients enrolled after a look's cutoff were randomized
  with that look's allocation;
* **by calendar epoch**: stratified by ``epoch_days`` (182) from the first concurrent enrolment.

Stratified odds ratios are Mantel-Haenszel estimates with the Robins-Breslow-Greenland standard
error (statsmodels' :class:`~statsmodels.stats.contingency_tables.StratifiedTable`; a stratum
where one arm has no patient carries no information and is left out). They are frequentist
companions of the Bayesian comparison, not decision rules. The answers **agree** when the
adjusted log odds ratio is within half a standard error of the pooled one (a shift smaller than
the noise), else the sentence says they differ and by how much, for the DSMB to weigh.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np

from adaptive.config import Design
from adaptive.data import PatientTable
from adaptive.derive import DerivedData
from adaptive.randomization import concurrent_window
from decision_rules.rules import Superiority

#: calendar epochs of the epoch-adjusted analysis (days)
EPOCH_DAYS = 182
#: the adjusted and pooled log odds ratios "agree" within this many adjusted standard errors
AGREE_SE = 0.5


def _patients(table: PatientTable, derived: DerivedData, rule: Superiority, window) -> list[tuple]:
    """``(arm, enrolled_on, outcome)`` of the concurrently randomized evaluable patients."""
    start, end = window
    frame = table.frame.set_index("subject_id")
    out = []
    for sid, arm, val in zip(
        derived.patients["subject_id"], derived.patients["arm"], derived.patients[rule.endpoint], strict=True
    ):
        if arm not in rule.arms or val is None or (isinstance(val, float) and np.isnan(val)):
            continue
        rec = frame.loc[sid]
        if rec["randomized"] is True and start <= rec["enrolled_on"] <= end:
            out.append((arm, rec["enrolled_on"], int(val)))
    return out


def _tables(rows: Sequence[tuple], arms: tuple[str, str], stratum) -> list[np.ndarray]:
    """2x2 tables (experimental, reference) x (responder, not) per stratum with both arms."""
    groups: dict = {}
    for arm, enrolled, y in rows:
        t = groups.setdefault(stratum(enrolled), np.zeros((2, 2)))
        t[arms.index(arm), 1 - y] += 1
    return [t for _, t in sorted(groups.items()) if (t.sum(1) > 0).all() and (t.sum(0) > 0).all()]


def _odds_ratio(tables: list[np.ndarray]) -> dict | None:
    """Mantel-Haenszel odds ratio with its 95% interval (statsmodels), or None without information."""
    if not tables:
        return None
    import warnings

    from statsmodels.stats.contingency_tables import StratifiedTable

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        st = StratifiedTable(tables)
        if not (np.isfinite(st.logodds_pooled) and np.isfinite(st.logodds_pooled_se)):
            # a zero margin of the pooled products (e.g. no responder in one arm): Haldane's 0.5
            st = StratifiedTable([t + 0.5 for t in tables])
        lo, hi = st.oddsratio_pooled_confint()
        return {
            "odds_ratio": float(st.oddsratio_pooled),
            "log_or": float(st.logodds_pooled),
            "se": float(st.logodds_pooled_se),
            "ci95_low": float(lo),
            "ci95_high": float(hi),
            "strata": len(tables),
            "n": int(sum(t.sum() for t in tables)),
        }


def allocation_periods(history: Sequence[tuple[date, Sequence[float]]]) -> list[date]:
    """Cutoffs after which the allocation changed (``history``: (cutoff, probabilities) by look)."""
    breaks, last = [], None
    for cutoff, probs in sorted(history, key=lambda x: x[0]):
        p = tuple(round(float(v), 4) for v in probs)
        if last is not None and p != last:
            breaks.append(cutoff)
        elif last is None and len(set(p)) > 1:
            breaks.append(cutoff)  # the first look moved the allocation away from the design's ratio
        last = p
    return breaks


def time_adjusted(
    design: Design,
    table: PatientTable,
    derived: DerivedData,
    rule: Superiority,
    breaks: Sequence[date] = (),
    epoch_days: int = EPOCH_DAYS,
) -> dict | None:
    """Pooled, allocation-period and epoch-adjusted odds ratios of one comparison (module docstring)."""
    window = concurrent_window(design, table, rule.arms, derived.cutoff)
    if window is None:
        return None
    rows = _patients(table, derived, rule, window)
    return compare_rows(rows, design.oriented(*rule.arms), window, breaks, rule.id, rule.endpoint, epoch_days)


def compare_rows(
    rows: Sequence[tuple],
    arms: tuple[str, str],
    window: tuple[date, date],
    breaks: Sequence[date],
    rule_id: str,
    endpoint: str,
    epoch_days: int = EPOCH_DAYS,
) -> dict:
    """The analyses of :func:`time_adjusted` on ``(arm, enrolled_on, outcome)`` rows."""
    start = window[0]
    breaks = sorted(b for b in breaks if start <= b <= window[1])
    pooled = _odds_ratio(_tables(rows, arms, lambda d: 0))
    by_period = _odds_ratio(_tables(rows, arms, lambda d: sum(d > b for b in breaks)))
    by_epoch = _odds_ratio(_tables(rows, arms, lambda d: (d - start).days // epoch_days))
    out = {
        "rule": rule_id,
        "endpoint": endpoint,
        "arms": list(arms),
        "label": "frequentist companion, not a decision rule",
        "window": {"from": window[0].isoformat(), "to": window[1].isoformat()},
        "allocation_changes": [b.isoformat() for b in breaks],
        "epoch_days": epoch_days,
        "pooled": pooled,
        "by_allocation_period": by_period,
        "by_epoch": by_epoch,
    }
    out["agree"], out["sentence"] = _verdict(out)
    return out


def _fmt(x: dict | None) -> str:
    if x is None:
        return "not estimable"
    strata = f"{x['strata']} {'stratum' if x['strata'] == 1 else 'strata'}"
    return f"{x['odds_ratio']:.2f} (95% CI {x['ci95_low']:.2f}-{x['ci95_high']:.2f}; {strata})"


def _verdict(out: dict) -> tuple[bool | None, str]:
    exp, ref = out["arms"]
    pooled = out["pooled"]
    parts = []
    agree = True
    for key, what in (
        ("by_allocation_period", "allocation period"),
        ("by_epoch", f"{out['epoch_days']}-day epoch"),
    ):
        adj = out[key]
        if adj is None or pooled is None:
            continue
        shift = abs(adj["log_or"] - pooled["log_or"])
        ok = shift <= AGREE_SE * adj["se"]
        agree &= ok
        parts.append(
            f"stratified by {what} {_fmt(adj)}: "
            + ("agrees" if ok else f"differs by {shift / adj['se']:.1f} standard errors")
        )
    if pooled is None:
        return (
            None,
            f"Time adjustment of {out['rule']}: no concurrently randomized evaluable patients in both arms.",
        )
    changes = out["allocation_changes"]
    head = (
        f"Time adjustment of {out['rule']} ({exp}:{ref} odds ratio of {out['endpoint']}, concurrently "
        f"randomized patients, Mantel-Haenszel; a frequentist companion): pooled {_fmt(pooled)}; "
    )
    tail = (
        f" The allocation changed after {', '.join(changes)}."
        if changes
        else " The allocation has not changed yet, so the periods are the whole window."
    )
    verdict = (
        " Pooled and time-adjusted answers agree."
        if agree
        else " Pooled and time-adjusted answers differ: calendar time may bias the pooled comparison."
    )
    return agree, head + "; ".join(parts) + "." + tail + verdict
