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
    intercurrent_events
        The estimand's strategy for intercurrent events (ICH E9(R1)): what transplant, death
        before assessment, moving to another trial or starting another therapy do to the
        endpoint. Printed in the memo's methods.
    """

    name: str
    label: str
    direction: Direction
    definition: str
    intercurrent_events: str = ""


_LANDMARK = (
    " The endpoint is a response by the arm's response landmark (arms.<arm>.response_landmark_days "
    "after enrolment, default assessment.response_window_days; ELN 2022): a patient counts once the "
    "landmark has passed, whatever the outcome (responders and deaths included: counting outcomes "
    "as soon as they happen would bias interim estimates), and a response dated after the landmark "
    "is a failure. Before the landmark the patient is pending."
)
_RESPONSE_ICE = (
    "Death before a response: failure (composite strategy). A transplant, another therapy or a "
    "move to another trial before the landmark: the best response recorded on the arm counts "
    "(treatment-policy strategy); the patient stays in the arm's denominator (intention to treat)."
)

BINARY_ENDPOINTS: dict[str, BinaryEndpoint] = {
    e.name: e
    for e in (
        BinaryEndpoint(
            "crc",
            "CRc",
            "higher_is_better",
            "Composite complete remission: best response CR or CRi recorded on or before the cutoff. "
            "Denominator: every patient enrolled on or before the cutoff whose response is known as "
            "of the cutoff (intention to treat: NE and deaths before assessment count as failures)."
            + _LANDMARK,
            _RESPONSE_ICE,
        ),
        BinaryEndpoint(
            "orr",
            "ORR",
            "higher_is_better",
            "Overall response: best response CR, CRi or PR recorded on or before the cutoff; "
            "same denominator and landmark as CRc.",
            _RESPONSE_ICE,
        ),
        BinaryEndpoint(
            "mrd_negative_cr",
            "MRD-negative CRc",
            "higher_is_better",
            "CR or CRi with mrd_negative = true, as a proportion of all response-evaluable patients "
            "(not of responders). A CR/CRi with MRD status still blank is pending for this endpoint.",
            _RESPONSE_ICE + " MRD status missing: pending (complete case).",
        ),
        BinaryEndpoint(
            "mortality_30d",
            "30-day mortality",
            "lower_is_better",
            "Death within 30 days of enrolment, or of treatment start when the data have a "
            "treatment_start_on column (then only treated patients count, as the protocol's "
            "'patients treated'). Evaluable once the patient has died on or before the cutoff, or "
            "is known alive at day 30 (a record dated on or after day 30).",
            "Death from any cause (treatment-policy strategy): a transplant or another therapy "
            "within the 30 days does not change the endpoint. With treatment_start_on, a patient "
            "enrolled but never treated is not in the denominator (counted as n_not_treated).",
        ),
        BinaryEndpoint(
            "mortality_60d",
            "60-day mortality",
            "lower_is_better",
            "Death within 60 days of enrolment (or of treatment start, as for 30-day mortality); "
            "evaluable as for 30-day mortality with 60 days.",
            "As for 30-day mortality.",
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
    intercurrent_events
        The estimand's strategy for intercurrent events (as for :class:`BinaryEndpoint`).
    """

    name: str
    label: str
    definition: str
    intercurrent_events: str = ""


_FOLLOW_UP = (
    " Follow-up ends follow_up_days (730) after enrolment, the protocol's window, or at the cutoff, "
    "whichever is earlier; dates after the cutoff are unknown (a death or last contact after it shows "
    "the patient alive at the cutoff). An event on day 0 is placed at half a day. With "
    "survival.censor_at_hsct (a sensitivity analysis, default off) follow-up is also censored at an "
    "allogeneic transplant (an event on the transplant day still counts)."
)
_SURVIVAL_ICE = (
    "Transplant, another therapy or a move to another trial: follow-up continues (treatment-policy "
    "strategy); survival.censor_at_hsct gives the hypothetical strategy (no transplant) as a "
    "sensitivity analysis."
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
            _SURVIVAL_ICE,
        ),
        SurvivalEndpoint(
            "efs",
            "EFS",
            "Event-free survival as ELN 2022 defines it (Dohner et al., Blood 2022;140:1345): every "
            "patient enrolled on or before the cutoff, from enrolment to treatment failure, relapse "
            "from CR/CRi, or death from any cause, whichever is first. Treatment failure (no CR or "
            "CRi by the arm's response landmark, a CR/CRi dated after it and a death before it "
            "without CR/CRi included) is an event on day 1; an alive patient with response NE is "
            "censored on day 1 (not known to be refractory). CRh is not captured by the export. A "
            "patient counts once the landmark has passed, whatever the outcome (as the response "
            "endpoints); before it, or when overdue for assessment, the patient is pending and "
            "left out of this look (n_pending). The model gives the day-1 treatment failures a point mass of "
            "their own, so a median of 1 day means that at least half the arm's patients failed "
            "treatment." + _FOLLOW_UP,
            _SURVIVAL_ICE + " Death before the landmark without CR/CRi: a treatment failure on day 1 "
            "(composite). The registry text describes EFS among patients who achieved CR; that "
            "responder view is RFS here (and efs_mrd on request), ELN 2022's EFS the one reported.",
        ),
        SurvivalEndpoint(
            "rfs",
            "RFS",
            "Relapse-free survival: patients whose best response is CR or CRi dated on or before the "
            "cutoff, from the response date to relapse or death, whichever is first; censored at the "
            "last date known alive and relapse-free. It conditions on response, so comparisons "
            "between arms are descriptive, not randomized." + _FOLLOW_UP,
            _SURVIVAL_ICE,
        ),
        SurvivalEndpoint(
            "efs_mrd",
            "EFS-MRD",
            "Responder EFS with MRD (this project's earlier, non-ELN endpoint; only when "
            "survival.endpoints.efs_mrd is configured): patients in CR or CRi (dated on or before the "
            "cutoff) whose MRD status is known, from the response date to relapse, death or an "
            "MRD-positive remission, whichever is first. An MRD-positive remission is an event on "
            "the response date (day 0, a point mass of the model). A CR/CRi with MRD status blank is "
            "left out (n_excluded). It conditions on response: descriptive, not randomized." + _FOLLOW_UP,
            _SURVIVAL_ICE,
        ),
    )
}
#: endpoints that start at the response date (they condition on response: never randomized)
RESPONDER_ENDPOINTS = ("rfs", "efs_mrd")
#: endpoints with a point mass at the origin: ``endpoint -> day the point mass is reported at``
POINT_MASS_DAYS = {"efs": 1.0, "efs_mrd": 0.0}


@dataclass(frozen=True)
class CumulativeIncidenceEndpoint:
    """A descriptive competing-risks endpoint (Aalen-Johansen cumulative incidence).

    Parameters
    ----------
    name, label, definition, intercurrent_events
        As for :class:`SurvivalEndpoint`.
    event, competing
        Names of the event of interest and of the competing event.
    """

    name: str
    label: str
    definition: str
    intercurrent_events: str
    event: str
    competing: str


CUMULATIVE_INCIDENCE_ENDPOINTS: dict[str, CumulativeIncidenceEndpoint] = {
    e.name: e
    for e in (
        CumulativeIncidenceEndpoint(
            "cir",
            "CIR",
            "Cumulative incidence of relapse: patients in CR/CRi (the RFS population), from the "
            "response date to relapse, with death without relapse a competing event; Aalen-Johansen "
            "estimate (statsmodels CumIncidenceRight) with censoring as for RFS. Descriptive.",
            "Death without relapse is a competing event (it prevents relapse), not censoring; "
            "transplant: follow-up continues.",
            "relapse",
            "death",
        ),
        CumulativeIncidenceEndpoint(
            "hsct",
            "HSCT",
            "Bridging to allogeneic transplant: every patient enrolled on or before the cutoff, from "
            "enrolment to transplant (hsct_on), with death before transplant a competing event; "
            "Aalen-Johansen cumulative incidence and the proportion transplanted so far. The "
            "protocol makes transplant the intended consolidation. Descriptive.",
            "Death before transplant is a competing event; relapse or another therapy: follow-up continues.",
            "hsct",
            "death",
        ),
    )
}
