"""Routing of a patient into a cohort, from the config's ``routing`` steps (never from code).

Steps are tried in order; the first step whose condition holds decides the cohort (and so the
arm, or the arms to randomize between). Unknown (blank) values make a condition unknown
(three-valued logic): if a step's condition is unknown, the route is undetermined, because the
patient might belong to that step. Undetermined routes are never reported as contradictions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from adaptive.config import RoutingStep

Value = bool | str | None


@dataclass(frozen=True)
class Route:
    """Where the routing rules send a patient."""

    cohort: str | None
    arms: tuple[str, ...]
    determined: bool
    reason: str


def _all(cond: Mapping[str, Value], patient: Mapping[str, Value]) -> bool | None:
    result: bool | None = True
    for col, want in cond.items():
        got = patient.get(col)
        if got is None:
            result = None
        elif got != want:
            return False
    return result


def _any(conds: Sequence[Mapping[str, Value]], patient: Mapping[str, Value]) -> bool | None:
    if not conds:
        return True
    result: bool | None = False
    for c in conds:
        r = _all(c, patient)
        if r is True:
            return True
        if r is None:
            result = None
    return result


def _describe(step: RoutingStep) -> str:
    parts = [f"{k} = {str(v).lower()}" for k, v in step.when.items()]
    if step.when_any:
        alts = [" and ".join(f"{k} = {str(v).lower()}" for k, v in c.items()) for c in step.when_any]
        parts.append("(" + " or ".join(alts) + ")")
    return " and ".join(parts) or "always"


def route(steps: Sequence[RoutingStep], patient: Mapping[str, Value]) -> Route:
    """Route one patient.

    Parameters
    ----------
    steps
        The design's routing steps, in order.
    patient
        Column -> value (``True``/``False``/string, ``None`` for unknown).
    """
    for step in steps:
        a = _all(step.when, patient)
        b = _any(step.when_any, patient)
        holds = False if (a is False or b is False) else (None if (a is None or b is None) else True)
        if holds is True:
            return Route(step.cohort, step.arms, True, _describe(step))
        if holds is None:
            unknown = sorted(
                {c for c in [*step.when, *(k for d in step.when_any for k in d)] if patient.get(c) is None}
            )
            return Route(
                None, (), False, f"cohort {step.cohort!r} cannot be ruled out: {', '.join(unknown)} unknown"
            )
    return Route(None, (), True, "no routing step applies")
