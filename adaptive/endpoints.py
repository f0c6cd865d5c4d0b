"""The trial's endpoints: one registry of names, labels and directions.

The names here are the single vocabulary used in the config (``endpoints:``, ``rates:``, ``rules:``),
in ``recommendations.json`` and in the memo. How each endpoint is derived from patient rows as of a
cutoff lives in :mod:`adaptive.derive`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["higher_is_better", "lower_is_better"]


@dataclass(frozen=True)
class BinaryEndpoint:
    """A binary (response / event) endpoint.

    Parameters
    ----------
    name
        Key used in config and outputs.
    label
        Short human label, used in sentences ("CRc").
    direction
        Whether a higher rate is good (response) or bad (mortality).
    definition
        One-paragraph definition, repeated in README and the memo.
    """

    name: str
    label: str
    direction: Direction
    definition: str


BINARY_ENDPOINTS: dict[str, BinaryEndpoint] = {
    e.name: e
    for e in (
        BinaryEndpoint(
            "crc",
            "CRc",
            "higher_is_better",
            "Composite complete remission: best response CR or CRi recorded on or before the cutoff. "
            "Denominator: every patient enrolled on or before the cutoff whose response is known as "
            "of the cutoff (intention to treat: NE and deaths before assessment count as failures).",
        ),
        BinaryEndpoint(
            "orr",
            "ORR",
            "higher_is_better",
            "Overall response: best response CR, CRi or PR recorded on or before the cutoff; "
            "same denominator as CRc.",
        ),
        BinaryEndpoint(
            "mrd_negative_cr",
            "MRD-negative CRc",
            "higher_is_better",
            "CR or CRi with mrd_negative = true, as a proportion of all response-evaluable patients "
            "(not of responders). A CR/CRi with MRD status still blank is pending for this endpoint.",
        ),
        BinaryEndpoint(
            "mortality_30d",
            "30-day mortality",
            "lower_is_better",
            "Death within 30 days of enrolment. Evaluable once the patient has died on or before "
            "the cutoff, or is known alive at day 30 (a record dated on or after day 30).",
        ),
        BinaryEndpoint(
            "mortality_60d",
            "60-day mortality",
            "lower_is_better",
            "Death within 60 days of enrolment; evaluable as for 30-day mortality with 60 days.",
        ),
    )
}


@dataclass(frozen=True)
class SurvivalEndpoint:
    """A time-to-event endpoint (see :mod:`adaptive.survival_data` for the derivation).

    Parameters
    ----------
    name
        Key used in config and outputs.
    label
        Short human label, used in sentences ("OS").
    definition
        One-paragraph definition, repeated in README and the memo.
    """

    name: str
    label: str
    definition: str


_FOLLOW_UP = (
    " Follow-up ends follow_up_days (730) after enrolment, the protocol's window, or at the cutoff, "
    "whichever is earlier; dates after the cutoff are unknown (a death or last contact after it shows "
    "the patient alive at the cutoff). An event on day 0 is placed at half a day. With "
    "survival.censor_at_hsct (a sensitivity analysis, default off) follow-up is also censored at an "
    "allogeneic transplant (an event on the transplant day still counts)."
)

SURVIVAL_ENDPOINTS: dict[str, SurvivalEndpoint] = {
    e.name: e
    for e in (
        SurvivalEndpoint(
            "os",
            "OS",
            "Overall survival: every patient enrolled on or before the cutoff, from enrolment to death "
            "from any cause; censored at the last date the patient is known alive (last contact, "
            "response, relapse or transplant)." + _FOLLOW_UP,
        ),
        SurvivalEndpoint(
            "rfs",
            "RFS",
            "Relapse-free survival: patients whose best response is CR or CRi dated on or before the "
            "cutoff, from the response date to relapse or death, whichever is first; censored at the "
            "last date known alive and relapse-free." + _FOLLOW_UP,
        ),
        SurvivalEndpoint(
            "efs",
            "EFS",
            "Event-free survival: patients in CR or CRi (dated on or before the cutoff) whose MRD "
            "status is known, from the response date to relapse, death or an MRD-positive remission, "
            "whichever is first. An MRD-positive remission is an event on the response date (day 0: "
            "the remission is not a measurable-residual-disease-free one, by analogy with ELN 2022, "
            "whose EFS counts not reaching remission as an event on day 1 and whose response "
            "criteria make CR without MRD a category of its own); the model gives these day-0 "
            "events a point mass of their own. A CR/CRi with MRD status blank is left out (as for "
            "MRD-negative CRc) and counted in n_excluded." + _FOLLOW_UP,
        ),
    )
}
