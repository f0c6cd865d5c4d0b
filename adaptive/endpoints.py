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
