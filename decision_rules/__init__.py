"""Decision rules evaluated on posterior draws only (never imports PyMC or :mod:`models`)."""

from decision_rules.quantities import DrawsPosterior, Estimate, indicator_estimate
from decision_rules.rules import (
    RULE_KINDS,
    Efficacy,
    Futility,
    Harm,
    RuleResult,
    Superiority,
)
from decision_rules.survival import (
    SURVIVAL_RULE_KINDS,
    HazardRatioSuperiority,
    MedianEfficacy,
    MedianFutility,
    SurvivalPosterior,
)

__all__ = [
    "DrawsPosterior",
    "Estimate",
    "indicator_estimate",
    "RULE_KINDS",
    "Efficacy",
    "Futility",
    "Harm",
    "RuleResult",
    "Superiority",
    "SURVIVAL_RULE_KINDS",
    "HazardRatioSuperiority",
    "MedianEfficacy",
    "MedianFutility",
    "SurvivalPosterior",
]
