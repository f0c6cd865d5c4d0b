"""The engine's one vocabulary: arm statuses, stages, actions, rule kinds, the primary endpoint.

Every word here is defined once and imported everywhere: the config schema (``status:``,
``kind:``, ``tiers:``), the rule objects, ``recommendations.json``, the simulator's outputs, the
CLI and the memo. The members are ``StrEnum`` s, so they compare equal to, and serialize as, the
plain strings in the YAML and JSON files. This module is a leaf: it imports nothing from the
package, so :mod:`decision_rules`, :mod:`models` and :mod:`adaptive` can all use it.

Probabilities are printed by :func:`fmt_prob` only (CLI, sentences, memo).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "PRIMARY_ENDPOINT",
    "ArmStatus",
    "Stage",
    "Action",
    "RuleKind",
    "Monitoring",
    "HARM_TIERS",
    "PRECEDENCE",
    "CLOSING",
    "OPEN_STATUSES",
    "CLOSED_STATUSES",
    "EFFICACY_KINDS",
    "FUTILITY_KINDS",
    "fmt_prob",
    "fmt_rate",
    "fmt_mcse",
    "Grade",
    "GRADE_MEANINGS",
]

#: the trial's primary endpoint (CR + CRi)
PRIMARY_ENDPOINT = "crc"


class ArmStatus(StrEnum):
    """Where an arm stands (the config's ``arms.<id>.status``; the simulator's final status).

    ``queued``: declared, not yet open. ``active``: enrolling (or, once it has its ``max_n``,
    following its patients up). ``suspended``: enrolment paused (e.g. a safety review).
    ``graduated``: closed with its efficacy criterion met. ``dropped``: closed early for
    futility, harm or inferiority. ``completed``: closed after its final analysis with the
    criterion not met (or with nothing to decide: a descriptive arm, an undecided comparison).
    """

    QUEUED = "queued"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    GRADUATED = "graduated"
    DROPPED = "dropped"
    COMPLETED = "completed"


#: statuses that hold a slot and get a recommendation at every look
OPEN_STATUSES = (ArmStatus.ACTIVE, ArmStatus.SUSPENDED)
#: statuses of an arm closed for good
CLOSED_STATUSES = (ArmStatus.GRADUATED, ArmStatus.DROPPED, ArmStatus.COMPLETED)


class Stage(StrEnum):
    """The stage of an open arm at a look.

    ``interim``: still enrolling towards ``max_n``. ``accrual_complete``: ``max_n`` enrolled,
    outcomes still pending (predictive rules still predict those outcomes). ``final_analysis``:
    ``max_n`` enrolled and no outcome pending on the endpoints its rules read: the arm gets its
    final result (criterion met or not), never a predictive or interim futility decision.
    """

    INTERIM = "interim"
    ACCRUAL_COMPLETE = "accrual_complete"
    FINAL_ANALYSIS = "final_analysis"


class Action(StrEnum):
    """What a recommendation asks the DSMB to do."""

    CONTINUE = "continue"
    FLAG = "flag"  # a safety signal for the DSMB to review; enrolment continues
    SUSPEND_ENROLMENT = "suspend_enrolment"
    DROP_HARM = "drop_harm"
    DROP_FUTILITY = "drop_futility"
    DROP_INFERIOR = "drop_inferior"
    GRADUATE = "graduate"
    COMPLETE = "complete"  # final analysis: criterion not met (or nothing to decide); close the arm
    ADD_ARM = "add_arm"
    ADJUST_RANDOMIZATION = "adjust_randomization"


#: when several rules fire for one arm, the first action in this order is recommended: safety
#: first (a suspension outranks closing for another reason), then futility, inferiority,
#: efficacy, the final analysis, a safety flag
PRECEDENCE = (
    Action.DROP_HARM,
    Action.SUSPEND_ENROLMENT,
    Action.DROP_FUTILITY,
    Action.DROP_INFERIOR,
    Action.GRADUATE,
    Action.COMPLETE,
    Action.FLAG,
)
#: actions that close an arm for good if the DSMB accepts them
CLOSING = (Action.DROP_HARM, Action.DROP_FUTILITY, Action.DROP_INFERIOR, Action.GRADUATE, Action.COMPLETE)
#: the tiers of a harm rule, least to most severe
HARM_TIERS = (Action.FLAG, Action.SUSPEND_ENROLMENT, Action.DROP_HARM)


class RuleKind(StrEnum):
    """Decision-rule kinds, chosen in the config by ``kind:`` (a closed registry)."""

    EFFICACY = "efficacy"
    FUTILITY = "futility"
    HARM = "harm"
    SUPERIORITY = "superiority"
    PREDICTIVE_FUTILITY = "predictive_futility"
    PREDICTIVE_EFFICACY = "predictive_efficacy"
    SURVIVAL_EFFICACY = "survival_efficacy"
    SURVIVAL_FUTILITY = "survival_futility"
    HAZARD_RATIO = "hazard_ratio"


#: single-arm rule kinds that can graduate an arm (refused on arms of a randomized cohort)
EFFICACY_KINDS = (RuleKind.EFFICACY, RuleKind.PREDICTIVE_EFFICACY, RuleKind.SURVIVAL_EFFICACY)
#: single-arm rule kinds that can drop an arm for lack of efficacy
FUTILITY_KINDS = (RuleKind.FUTILITY, RuleKind.PREDICTIVE_FUTILITY, RuleKind.SURVIVAL_FUTILITY)


class Monitoring(StrEnum):
    """How an arm is monitored (``arms.<id>.monitoring``).

    ``full``: efficacy, futility and safety rules as configured. ``descriptive``: counts,
    estimates and safety only (no efficacy or futility rule, no borrowing), e.g. a routing slot to
    other trials.
    """

    FULL = "full"
    DESCRIPTIVE = "descriptive"


class Grade(StrEnum):
    """How well a reference value (null, futility, target or limit rate, survival benchmark) is supported.

    The config's ``provenance.<key>.grade``; the tags of ``shared/reference/benchmarks_aml.md``
    (``[V]``, ``[M]``, ``[D]``, ``[—]``).

    Only ``V`` counts as verified: a decision compared against any other grade (or against a value
    with no recorded provenance) says that it rests on an unverified reference.
    """

    VERIFIED = "V"  # a published figure, seen verbatim in the source
    UNVERIFIED = "M"  # a published figure recalled, not re-verified
    DESIGN = "D"  # a design choice of this config, no published number behind it
    NONE = "none"  # no published benchmark exists


#: each grade in words (memo appendix, CLI)
GRADE_MEANINGS = {
    Grade.VERIFIED: "verified published figure",
    Grade.UNVERIFIED: "published but unverified number",
    Grade.DESIGN: "design choice",
    Grade.NONE: "no published benchmark",
}


# ============================================================================= formatting
def fmt_prob(p: float | None, *, exact: bool = False, digits: int = 1) -> str:
    """A probability as a percentage, the one formatter of the CLI, the sentences and the memo.

    One decimal (``digits``), never ``"100.0%"`` for a probability below 1 nor ``"0.0%"`` for one
    above 0: those print as ``">99.9%"`` / ``"<0.1%"``. Estimated from posterior draws
    (``exact=False``, the default), an estimate of exactly 1 or 0 (all or none of the draws) also
    prints as ``">99.9%"`` / ``"<0.1%"``: a finite number of draws cannot show certainty. Only an
    exact computation (``exact=True``: conjugate, enumeration) prints ``"100%"`` or ``"0%"``.
    ``None`` prints as ``"-"``.
    """
    if p is None:
        return "-"
    p = float(p)
    floor = 10.0**-digits
    if p >= 1.0 and exact:
        return "100%"
    if p <= 0.0 and exact:
        return "0%"
    # the percentage to 4 decimals (the 6 decimals of a probability in recommendations.json), then
    # half up: the memo, which reads the file, and the terminal, which prints the computed number,
    # give one figure (0.0255 was "2.5%" from the file, its unrounded value "2.6%" on the terminal)
    pct = round(100.0 * p, 4) + 5e-10
    if pct >= 100.0 - floor / 2:
        return f">{100.0 - floor:.{digits}f}%"
    if pct < floor / 2:
        return f"<{floor:.{digits}f}%"
    return f"{pct:.{digits}f}%"


def fmt_rate(x: float | None, digits: int = 1, *, trim: bool = True) -> str:
    """A rate (reference rate, threshold, observed proportion, estimate) as a percentage.

    ``trim`` drops trailing zeros, for numbers given to fewer decimals (``0.35 -> '35%'``,
    ``0.975 -> '97.5%'``); estimates and interval bounds keep their decimals (``trim=False``:
    ``0.13 -> '13.0%'``).
    """
    if x is None:
        return "-"
    s = f"{100 * float(x):.{digits}f}"
    if trim and "." in s:
        s = s.rstrip("0").rstrip(".")
    return s + "%"


def fmt_mcse(mcse: float, digits: int = 1) -> str:
    """A Monte Carlo standard error to ``digits`` decimals, never shown as zero when it is not.

    ``0.3 -> '0.3'``; ``0.05 -> '0.05'`` (one significant digit where ``digits`` would print
    ``'0.0'``: "0.2 ± 0.0" reads as an exact figure); ``0.0 -> '0.0'``. Scale it first (percent).
    """
    m = float(mcse)
    if m > 0 and round(m, digits) == 0:
        shown = digits + 1  # decimals until the first significant digit shows
        while round(m, shown) == 0:
            shown += 1
        return f"{m:.{shown}f}"
    return f"{m:.{digits}f}"
