"""Decision rules evaluated on posterior draws only (never imports PyMC or :mod:`models`)."""

from decision_rules.allocation import Allocation, AllocationRule, allocate_arrays, bound_allocation
from decision_rules.beta import BetaPosterior, beta_prob_above, beta_prob_best, beta_prob_better
from decision_rules.predictive import BetaPredictive, DrawsPredictive, predictive_prob_success_beta
from decision_rules.quantities import DrawsPosterior, Estimate, indicator_estimate
from decision_rules.rules import (
    PREDICTIVE_KINDS,
    RULE_KINDS,
    Efficacy,
    Futility,
    Harm,
    PredictiveEfficacy,
    PredictiveFutility,
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
    "Allocation",
    "AllocationRule",
    "allocate_arrays",
    "bound_allocation",
    "BetaPosterior",
    "beta_prob_above",
    "beta_prob_best",
    "beta_prob_better",
    "BetaPredictive",
    "DrawsPredictive",
    "predictive_prob_success_beta",
    "DrawsPosterior",
    "Estimate",
    "indicator_estimate",
    "PREDICTIVE_KINDS",
    "RULE_KINDS",
    "Efficacy",
    "Futility",
    "Harm",
    "PredictiveEfficacy",
    "PredictiveFutility",
    "RuleResult",
    "Superiority",
    "SURVIVAL_RULE_KINDS",
    "HazardRatioSuperiority",
    "MedianEfficacy",
    "MedianFutility",
    "SurvivalPosterior",
]
