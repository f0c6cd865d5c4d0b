"""Queued arms: which may open at this look, and why (or why not yet).

Queued arms are taken in config order. For each, every entry condition that its ``entry`` block
gives must hold (see :class:`adaptive.config.EntryCfg`):

* ``earliest_on``: the cutoff is on or after this date;
* ``max_open_arms``: fewer arms are open (``active`` or ``suspended``, counting arms already
  recommended to open at this look) than this;
* ``after_closure_of``: one of these arms has closed (``dropped`` or ``graduated``) and its slot
  has not been taken by an earlier queued arm at this look (one closure frees one slot);
* ``when_cohort_has_no_open_arm``: the cohort has no open arm (and none is opening);
* queue order: no earlier queued arm for the same cohort is still waiting.

A queued arm without an ``entry`` block is never recommended automatically.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from adaptive.config import Design


@dataclass(frozen=True)
class QueueDecision:
    """The entry evaluation of one queued arm."""

    arm: str
    cohort: str | None
    opens: bool
    conditions: tuple[dict, ...]
    sentence: str

    def to_dict(self) -> dict:
        return {
            "arm": self.arm,
            "cohort": self.cohort,
            "opens": self.opens,
            "conditions": [dict(c) for c in self.conditions],
            "sentence": self.sentence,
        }


def date_breakpoints(design: Design) -> tuple[date, ...]:
    """The dates at which :func:`evaluate_queue` can change its decisions with the cutoff alone.

    The cutoff enters only through ``earliest_on``: two cutoffs that have passed the same of
    these dates give the same decisions for the same arm statuses (the simulator caches on it).
    """
    return tuple(sorted({a.entry.earliest_on for a in design.arms if a.entry and a.entry.earliest_on}))


def evaluate_queue(design: Design, cutoff: date) -> list[QueueDecision]:
    """Entry decisions for every queued arm, in config order."""
    open_now = [a.id for a in design.arms if a.is_open]
    opening: list[str] = []
    used_slots: set[str] = set()
    waiting_cohorts: set[str] = set()
    out = []
    for arm in design.arms:
        if arm.status != "queued":
            continue
        entry = arm.entry
        if entry is None:
            out.append(
                QueueDecision(
                    arm.id,
                    None,
                    False,
                    (),
                    f"{design.display_name(arm.id)} is queued without entry conditions: it opens only "
                    "when the DSMB decides (set status: active in the config).",
                )
            )
            continue
        conds: list[dict] = []
        if entry.earliest_on is not None:
            conds.append(
                {
                    "condition": "earliest_on",
                    "met": cutoff >= entry.earliest_on,
                    "detail": f"earliest opening date {entry.earliest_on} "
                    + (
                        "has passed" if cutoff >= entry.earliest_on else f"not reached by the cutoff {cutoff}"
                    ),
                }
            )
        if entry.max_open_arms is not None:
            n_open = len(open_now) + len(opening)
            conds.append(
                {
                    "condition": "max_open_arms",
                    "met": n_open < entry.max_open_arms,
                    "detail": f"{n_open} arms open, at most {entry.max_open_arms} allowed",
                }
            )
        slot = None
        if entry.after_closure_of:
            closed = [a for a in entry.after_closure_of if design.arm(a).is_closed]
            free = [a for a in closed if a not in used_slots]
            slot = free[0] if free else None
            if slot is not None:
                detail = (
                    f"{design.display_name(slot)} has closed ({design.arm(slot).status}): its slot is free"
                )
            elif closed:
                detail = f"the slot of {', '.join(closed)} is already taken by an earlier queued arm"
            else:
                statuses = ", ".join(f"{a} is {design.arm(a).status}" for a in entry.after_closure_of)
                detail = f"waits for a slot: {statuses}"
            conds.append({"condition": "after_closure_of", "met": slot is not None, "detail": detail})
        step = next((s for s in design.routing if s.cohort == entry.cohort), None)
        cohort_arms = [a for a in (step.arms if step else ()) if a != arm.id]
        if entry.when_cohort_has_no_open_arm:
            open_in = [a for a in cohort_arms if design.arm(a).is_open] + [
                a for a in opening if design.arm(a).entry and design.arm(a).entry.cohort == entry.cohort
            ]
            conds.append(
                {
                    "condition": "when_cohort_has_no_open_arm",
                    "met": not open_in,
                    "detail": f"cohort {entry.cohort} "
                    + (f"still has {', '.join(open_in)} open" if open_in else "has lost every open arm"),
                }
            )
        if entry.cohort in waiting_cohorts:
            conds.append(
                {
                    "condition": "queue_order",
                    "met": False,
                    "detail": f"an earlier queued arm for cohort {entry.cohort} is still waiting",
                }
            )
        opens = all(c["met"] for c in conds)
        if opens:
            opening.append(arm.id)
            if slot is not None:
                used_slots.add(slot)
            reasons = "; ".join(c["detail"] for c in conds) or "it has no conditions"
            sentence = (
                f"Recommend opening {design.display_name(arm.id)} in cohort {entry.cohort}: {reasons}. "
                f"It enters the models on its own prior until it has {arm.exchangeable_after} evaluable "
                "patients (see its borrowing), then exchangeably."
            )
        else:
            waiting_cohorts.add(entry.cohort)
            unmet = "; ".join(c["detail"] for c in conds if not c["met"])
            sentence = f"{design.display_name(arm.id)} stays queued for cohort {entry.cohort}: {unmet}."
        out.append(QueueDecision(arm.id, entry.cohort, opens, tuple(conds), sentence))
    return out
