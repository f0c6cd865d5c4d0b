"""Trial configuration: a YAML file parsed by pydantic at the boundary into a frozen :class:`Design`.

The YAML schema (``schema_version: 1``) is documented in README.md and exemplified by
``configs/rr_aml.yaml``. Arms are data, not code: a config with 2 or 12 arms is handled the same
way. :func:`load_config` collects *every* problem (unknown keys with a "did you mean", values out
of range, rules naming arms or endpoints that do not exist, ...) and raises one
:class:`~adaptive.exceptions.ConfigError` listing them all.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from adaptive.columns import DEFAULT_FALSE_VALUES, DEFAULT_TRUE_VALUES, ENGINE_COLUMNS, FLAG_COLUMNS
from adaptive.endpoints import BINARY_ENDPOINTS, SURVIVAL_ENDPOINTS
from adaptive.exceptions import ConfigError, Problem
from adaptive.schema_errors import did_you_mean as _did_you_mean
from adaptive.schema_errors import doc_loc, pydantic_problems, register_tags
from adaptive.yamlfile import decode_text, load_yaml, with_line
from decision_rules.allocation import AllocationKind, AllocationRule
from decision_rules.beta import beta_prior, beta_prior_name
from decision_rules.rules import PREDICTIVE_KINDS, RULE_KINDS, TIER_CLASSES, Harm, Superiority
from decision_rules.survival import SURVIVAL_RULE_KINDS, HazardRatioSuperiority
from decision_rules.vocabulary import (
    CLOSED_STATUSES,
    EFFICACY_KINDS,
    HARM_TIERS,
    OPEN_STATUSES,
    ArmStatus,
    Grade,
    Monitoring,
    RuleKind,
)

#: patient-table columns a routing condition may test, with the values they can take
ROUTING_FIELDS: dict[str, tuple] = {
    "new_drug_eligible": (True, False),
    "idh1": (True, False),
    "flt3_itd": (True, False),
    "flt3_tkd": (True, False),
    "intensive_eligible": (True, False),
    "prior_venetoclax_3m": (True, False),
    "karyotype_risk": ("favorable", "intermediate", "adverse"),
}


def _probability(v: float) -> float:
    if not 0.0 < v < 1.0:
        raise ValueError(f"a probability must lie strictly between 0 and 1, got {v}")
    return v


Probability = Annotated[float, AfterValidator(_probability)]
PositiveFloat = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]


#: plausibility bounds checked up front (a typo such as ``max_patients: 1000000`` is a config
#: error naming the key and line, not a simulation that never ends); ``arms.<id>.max_n`` <= 10,000
MAX_PATIENTS = 100_000
MAX_DRAWS = 100_000  # per chain, for draws and tune
#: sampler settings `adaptive interim` may override on its command line (recorded in the look)
SAMPLER_OVERRIDES = ("draws", "tune", "chains")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ----------------------------------------------------------------------------- priors and models
class NormalPrior(_Strict):
    """``Normal(mean, sd)``."""

    mean: float = 0.0
    sd: PositiveFloat


class ScalePrior(_Strict):
    """Prior of the between-arm standard deviation ``tau``.

    ``half_normal`` / ``half_cauchy`` with ``scale`` on ``tau``; ``inverse_gamma`` on the
    between-arm *variance* ``tau^2 ~ InverseGamma(shape, scale)`` (Thall et al. 2003; Berry et
    al. 2013), ``shape`` required.
    """

    dist: Literal["half_normal", "half_cauchy", "inverse_gamma"] = "half_normal"
    scale: PositiveFloat
    shape: PositiveFloat | None = None

    @model_validator(mode="after")
    def _shape(self):
        if self.dist == "inverse_gamma" and self.shape is None:
            raise ValueError("dist inverse_gamma (on tau^2) needs shape as well as scale")
        if self.dist != "inverse_gamma" and self.shape is not None:
            raise ValueError(f"shape applies to dist inverse_gamma only, not {self.dist}")
        return self


class BetaPrior(_Strict):
    """``Beta(a, b)``."""

    a: PositiveFloat
    b: PositiveFloat


class IndependentLogitNormalModelCfg(_Strict):
    """Independent logit-normal per arm (no borrowing): ``logit p_k = logit null_k + delta_k``.

    ``prior``: ``unit_information`` is ``delta_k ~ Normal(0, 1 / sqrt(m (1 - m)))`` with ``m`` the
    arm's null rate (Neuenschwander et al. 2016; its moment ESS is about 1 patient at m = 0.15,
    0.5 at m = 0.05, 1.5 at m = 0.5), or ``{mean, sd}``. Fitted exactly (1-D quadrature and
    inverse-CDF draws), no MCMC.
    """

    kind: Literal["independent_logit_normal"]
    prior: Literal["unit_information"] | NormalPrior = "unit_information"


class IndependentModelCfg(_Strict):
    """Independent Beta-binomial per arm (no borrowing), conjugate.

    ``prior``: ``unit_information`` is ``Beta(m, 1 - m)`` with ``m`` the arm's null rate (one
    patient's worth of information centred on the null), ``uniform`` is ``Beta(1, 1)``,
    ``jeffreys`` is ``Beta(1/2, 1/2)``; or give ``{a: .., b: ..}``.
    """

    kind: Literal["independent"]
    prior: Literal["unit_information", "uniform", "jeffreys"] | BetaPrior = "unit_information"


#: why borrowing needs a declared group (repeated in the validation message)
BORROWING_NOTE = (
    "borrowing across arms is offered only within a declared exchangeable set of arms "
    "(e.g. subgroups given one treatment), never across unrelated regimens"
)


class HierarchicalModelCfg(_Strict):
    """``logit p_k = logit(null_k) + delta_k``, ``delta_k ~ Normal(mu, tau)`` within a borrowing group.

    ``borrowing_group``: the arms judged exchangeable (at least two; never a descriptive arm).
    Arms outside it are fitted on their own prior ``Normal(nex.mean, nex.sd)`` (no borrowing).
    """

    kind: Literal["hierarchical"]
    borrowing_group: list[str] = Field(min_length=2)
    mu: NormalPrior
    tau: ScalePrior
    #: own prior of an arm not (yet) exchangeable (see the arms' ``borrowing``), or outside the group
    nex: NormalPrior = NormalPrior(mean=0.0, sd=2.0)


class ExComponentCfg(_Strict):
    """One exchangeable component of an EXNEX model: ``delta_k ~ Normal(mu, tau)`` with weight ``w``."""

    name: str | None = None
    mu: NormalPrior
    tau: ScalePrior
    w: Annotated[float, Field(ge=0, le=1)]


class ExnexModelCfg(_Strict):
    """EXNEX (Neuenschwander et al. 2016) on the ``delta_k`` scale, within a borrowing group.

    With probability ``w`` an arm of ``borrowing_group`` is exchangeable (``delta_k ~ Normal(mu,
    tau)``), otherwise non-exchangeable with its own prior ``delta_k ~ Normal(nex.mean, nex.sd)``;
    arms outside the group are always non-exchangeable (weight 0). ``w`` may be 0 or 1. Several
    exchangeable components (e.g. an optimistic and a pessimistic mean) are given as
    ``components: [{name, mu, tau, w}, ...]`` instead of ``mu``, ``tau``, ``w``; the
    non-exchangeable weight is then 1 minus their sum.
    """

    kind: Literal["exnex"]
    borrowing_group: list[str] = Field(min_length=2)
    mu: NormalPrior | None = None
    tau: ScalePrior | None = None
    nex: NormalPrior
    w: Annotated[float, Field(ge=0, le=1)] = 0.5
    components: list[ExComponentCfg] | None = None

    @model_validator(mode="after")
    def _one_form(self):
        if self.components is None:
            if self.mu is None or self.tau is None:
                raise ValueError("give mu and tau (one exchangeable component) or components")
            return self
        if self.mu is not None or self.tau is not None:
            raise ValueError("give either mu and tau or components, not both")
        if not self.components:
            raise ValueError("components needs at least one component")
        total = sum(c.w for c in self.components)
        if total > 1.0 + 1e-9:
            raise ValueError(
                f"the components' weights sum to {total:g}; at most 1 (the rest is non-exchangeable)"
            )
        return self


ModelCfg = Annotated[
    Union[IndependentModelCfg, IndependentLogitNormalModelCfg, HierarchicalModelCfg, ExnexModelCfg],  # noqa: UP007
    Field(discriminator="kind"),
]


class EndpointCfg(_Strict):
    """A binary endpoint to model at every look."""

    model: ModelCfg


# ----------------------------------------------------------------------------- arms and routing
class RatesCfg(_Strict):
    """Reference rates of one arm for one binary endpoint (cite the source in a YAML comment).

    ``null_rate``: the rate of the standard of care (for a mortality endpoint: the reference
    mortality). ``target_rate``: the rate the regimen is hoped to reach. ``futility_rate`` (higher
    is better only): the minimal rate still worth pursuing, strictly between the null and the
    target; futility rules should reference it, not the target (an arm truly at twice its null
    rate must not be dropped for missing an ambitious target). ``limit_rate`` (mortality): the
    rate above which the arm is harmful.
    """

    null_rate: Probability
    futility_rate: Probability | None = None
    target_rate: Probability | None = None
    limit_rate: Probability | None = None


class EntryCfg(_Strict):
    """When a queued arm may open; every condition given must hold (see README, "Adding arms").

    ``cohort``: the routing cohort the arm will serve. ``earliest_on``: not before this date (the
    cutoff must be on or after it). ``max_open_arms``: only while fewer arms than this are open
    (``active`` or ``suspended``). ``after_closure_of``: only once one of these arms has closed
    (``dropped`` or ``graduated``): a free slot. ``when_cohort_has_no_open_arm``: only when the
    cohort has lost every open arm.
    """

    cohort: str
    earliest_on: date | None = None
    max_open_arms: PositiveInt | None = None
    after_closure_of: list[str] = Field(default_factory=list)
    when_cohort_has_no_open_arm: bool = False


#: evaluable patients a late-entering arm (one with an ``entry`` block) needs before it borrows
NEW_ARM_BORROWING_BURN_IN = 10


class BorrowingCfg(_Strict):
    """How an arm enters the hierarchical / EXNEX models of the endpoints.

    ``exchangeable_after``: until the arm has this many evaluable patients on an endpoint, it is
    fitted with EXNEX weight 0 there (its own non-exchangeable prior; it neither borrows from nor
    lends to the others). Default 10 for arms with an ``entry`` block (late entrants), else 0.
    ``w``: the arm's prior probability of exchangeability once past that point (default: the
    endpoint model's ``w``, or 1 for a ``hierarchical`` endpoint).
    """

    exchangeable_after: NonNegativeInt | None = None
    w: Probability | None = None


class SurvivalBenchmarksCfg(_Strict):
    """Historical median survival (days) of one arm's population, per survival endpoint.

    The reference of ``P(median_k > benchmark_k)`` (cite the source in a YAML comment; publications
    give months: days = months x 30.4375). An endpoint without a benchmark reports no such
    probability and cannot be used by a ``survival_efficacy`` / ``survival_futility`` rule with
    ``reference: benchmark``.
    """

    os_median_days: PositiveFloat | None = None
    efs_median_days: PositiveFloat | None = None
    rfs_median_days: PositiveFloat | None = None

    def get(self, endpoint: str) -> float | None:
        return getattr(self, f"{endpoint}_median_days", None)


class ArmCfg(_Strict):
    """One arm of the platform.

    ``status``: see :class:`~decision_rules.vocabulary.ArmStatus`. ``monitoring``: ``full``
    (efficacy, futility and safety rules) or ``descriptive`` (counts, estimates and safety only:
    no efficacy, futility or comparison rule may cover the arm, and it never borrows).
    """

    label: str
    description: str = ""
    status: ArmStatus = ArmStatus.ACTIVE
    monitoring: Monitoring = Monitoring.FULL
    max_n: Annotated[int, Field(gt=0, le=10_000)]
    rates: dict[str, RatesCfg]
    opened_on: date | None = None
    closed_on: date | None = None
    entry: EntryCfg | None = None
    borrowing: BorrowingCfg | None = None
    survival_benchmarks: SurvivalBenchmarksCfg = SurvivalBenchmarksCfg()
    #: days after enrolment by which a response must be recorded (ELN 2022's landmark: about two
    #: cycles for intensive chemotherapy, about 180 days for non-intensive regimens); before it
    #: a patient without CR/CRi is pending, after it a treatment failure. Default:
    #: ``assessment.response_window_days``.
    response_landmark_days: PositiveInt | None = None


class RoutingCfg(_Strict):
    """One routing step; steps are tried in order and the first whose condition holds wins.

    ``when`` holds when *every* listed column has the given value; ``when_any`` holds when *any*
    of its mappings holds. Both may be given (both must hold). A step with neither always holds.
    """

    cohort: str
    when: dict[str, bool | str] = Field(default_factory=dict)
    when_any: list[dict[str, bool | str]] = Field(default_factory=list)
    arms: list[str] = Field(min_length=1)
    allocation: dict[str, PositiveFloat] | None = None
    #: randomized cohorts: the reference (control-like) arm; hazard ratios and differences are
    #: printed as experimental : reference (default: the first arm listed)
    reference_arm: str | None = None
    #: what happens to a patient of this cohort when none of its arms is open:
    #: ``not_enrolled`` (default; the cohort's patients are never sent to another cohort's arms)
    #: or ``next_step`` (routing goes on to the next step, e.g. a new-drug slot whose patients
    #: may enter the other arms when no new-drug trial is open)
    if_no_open_arm: Literal["not_enrolled", "next_step"] = "not_enrolled"


# ----------------------------------------------------------------------------- rules
RateName = Literal["null_rate", "futility_rate", "target_rate", "limit_rate"]


class HarmTierCfg(_Strict):
    """One tier of a harm rule: ``P(rate_k > reference_k) > threshold`` recommends ``action``.

    ``flag`` names a signal for the DSMB to review (enrolment continues), ``suspend_enrolment``
    pauses enrolment, ``drop_harm`` closes the arm. ``reference`` defaults to the rule's.
    """

    action: Literal["flag", "suspend_enrolment", "drop_harm"]
    reference: RateName | Probability | None = None
    threshold: Probability


class ProbAboveRuleCfg(_Strict):
    """``P(p_k > reference) <comparison> threshold`` per arm (efficacy, futility).

    Single-arm efficacy rules may not cover an arm of a randomized cohort (decided
    comparatively) unless ``allow_in_randomized: true`` says so explicitly.
    """

    id: str
    kind: Literal["efficacy", "futility"]
    endpoint: str
    reference: RateName | Probability
    threshold: Probability
    min_evaluable: NonNegativeInt = 0
    arms: Literal["all"] | list[str] = "all"
    allow_in_randomized: bool = False


class HarmRuleCfg(_Strict):
    """Tiered harm monitoring: ``P(rate_k > reference) > threshold`` per tier and arm.

    Either ``threshold`` (one ``drop_harm`` tier on ``reference``) or ``tiers`` (``flag``,
    ``suspend_enrolment``, ``drop_harm``, each with its threshold and optionally its own reference).
    """

    id: str
    kind: Literal["harm"]
    endpoint: str
    reference: RateName | Probability
    threshold: Probability | None = None
    tiers: list[HarmTierCfg] | None = None
    min_evaluable: NonNegativeInt = 0
    arms: Literal["all"] | list[str] = "all"


class SuperiorityRuleCfg(_Strict):
    """Pairwise comparison of two arms of a randomized cohort.

    Read from the concurrently randomized patients only (randomized, enrolled while both arms
    were open), with an independent conjugate Beta model per arm that borrows from nothing:
    ``prior`` (default: the endpoint's own prior when its model is ``independent``, else
    ``unit_information``).
    """

    id: str
    kind: Literal["superiority"]
    endpoint: str
    arms: list[str] = Field(min_length=2, max_length=2)
    threshold: Probability
    margin: Annotated[float, Field(ge=0, lt=1)] = 0.0
    min_evaluable: NonNegativeInt = 0
    prior: Literal["unit_information", "uniform", "jeffreys"] | BetaPrior | None = None


class PredictiveRuleCfg(_Strict):
    """Predictive probability that an arm meets ``success_rule`` (an efficacy rule) at its max_n.

    ``predictive_futility`` recommends dropping when it is below ``threshold``;
    ``predictive_efficacy`` recommends graduating when it is above.
    """

    id: str
    kind: Literal["predictive_futility", "predictive_efficacy"]
    endpoint: str
    success_rule: str
    threshold: Probability
    min_evaluable: NonNegativeInt = 0
    arms: Literal["all"] | list[str] = "all"
    allow_in_randomized: bool = False


class SurvivalMedianRuleCfg(_Strict):
    """``P(median_k > reference_k) <comparison> threshold`` per arm on a survival endpoint.

    ``survival_efficacy`` fires above the threshold (recommend graduate), ``survival_futility``
    below it (recommend drop for futility). ``reference`` is the arm's benchmark median
    (``arms.<arm>.survival_benchmarks``) or a number of days.
    """

    id: str
    kind: Literal["survival_efficacy", "survival_futility"]
    endpoint: str
    reference: Literal["benchmark"] | PositiveFloat = "benchmark"
    threshold: Probability
    min_events: NonNegativeInt = 0
    arms: Literal["all"] | list[str] = "all"
    allow_in_randomized: bool = False


class HazardRatioRuleCfg(_Strict):
    """Two arms on a survival endpoint: fires when ``P(HR < hr_margin)`` in either direction > threshold."""

    id: str
    kind: Literal["hazard_ratio"]
    endpoint: str
    arms: list[str] = Field(min_length=2, max_length=2)
    threshold: Probability
    hr_margin: Annotated[float, Field(gt=0, le=1)] = 1.0
    min_events: NonNegativeInt = 0


RuleCfg = Annotated[
    Union[  # noqa: UP007
        ProbAboveRuleCfg,
        HarmRuleCfg,
        SuperiorityRuleCfg,
        PredictiveRuleCfg,
        SurvivalMedianRuleCfg,
        HazardRatioRuleCfg,
    ],
    Field(discriminator="kind"),
]
SURVIVAL_RULE_CFGS = (SurvivalMedianRuleCfg, HazardRatioRuleCfg)
#: every rule kind the config accepts (a test checks it equals the rule registries and RuleKind)
CONFIG_RULE_KINDS = frozenset(
    str(k)
    for c in (ProbAboveRuleCfg, HarmRuleCfg, SuperiorityRuleCfg, PredictiveRuleCfg, *SURVIVAL_RULE_CFGS)
    for k in typing.get_args(c.model_fields["kind"].annotation)
)


# ----------------------------------------------------------------------------- survival
class LevelPrior(_Strict):
    """Normal prior of an arm's log hazard (per day, averaged over the intervals), given as a median.

    ``Normal(log(ln 2 / median_days), sd)``: centred on the hazard whose constant value would give
    a median survival of ``median_days``. With ``centred_on: benchmark`` each arm's prior is
    centred on its own benchmark median for the endpoint (``arms.<arm>.survival_benchmarks``;
    ``median_days`` for an arm without one), and a hierarchical model pools the arms' departures
    from their benchmarks, as the binary models pool log-odds relative to each arm's null.
    """

    median_days: PositiveFloat
    sd: PositiveFloat
    centred_on: Literal["median_days", "benchmark"] = "median_days"


class HierarchicalSurvivalModelCfg(_Strict):
    """Piecewise-exponential model, arm log hazards partially pooled.

    ``log h_k(t) = eta_k + gamma_j(t)``; ``eta_k ~ Normal(mu, tau)``, ``mu ~ level``; ``gamma`` a
    Gaussian random walk over the intervals with step sd ``smoothing_sd``, centred to mean zero
    (see :mod:`models.survival`).
    """

    kind: Literal["hierarchical"]
    level: LevelPrior
    tau: ScalePrior
    smoothing_sd: PositiveFloat = 0.5
    #: baseline hazard shapes by group of arms (``{group: [arm, ...]}``, every arm in exactly one
    #: group), e.g. intensive versus non-intensive regimens; absent: one shape shared by all arms
    shape_groups: dict[str, list[str]] | None = None


class IndependentSurvivalModelCfg(_Strict):
    """As the hierarchical model but ``eta_k ~ level`` independently (no borrowing between arms)."""

    kind: Literal["independent"]
    level: LevelPrior
    smoothing_sd: PositiveFloat = 0.5
    #: as for the hierarchical model
    shape_groups: dict[str, list[str]] | None = None


SurvivalModelCfg = Annotated[
    Union[HierarchicalSurvivalModelCfg, IndependentSurvivalModelCfg],  # noqa: UP007
    Field(discriminator="kind"),
]


class SurvivalEndpointCfg(_Strict):
    """A survival endpoint to model at every look."""

    model: SurvivalModelCfg


def _cut_points(v: list[float]) -> list[float]:
    if len(v) < 2:
        raise ValueError(f"give at least two cut points (0 and the end of follow-up), got {v}")
    if v[0] != 0:
        raise ValueError(f"cut points must start at 0, got {v[0]:g}")
    bad = [f"{a:g} then {b:g}" for a, b in zip(v, v[1:], strict=False) if b <= a]
    if bad:
        raise ValueError(f"cut points must be strictly increasing; got {', '.join(bad)}")
    return v


class SurvivalCfg(_Strict):
    """Time-to-event endpoints and their piecewise-exponential model.

    ``cut_points_days``: interval boundaries from 0 to the end of follow-up
    (``assessment.follow_up_days``); the last interval's hazard is assumed to continue beyond it
    (used only to extrapolate a median that lies beyond follow-up).
    """

    cut_points_days: Annotated[list[float], AfterValidator(_cut_points)]
    censor_at_hsct: bool = False
    endpoints: dict[str, SurvivalEndpointCfg] = Field(min_length=1)


class RandomizationCfg(_Strict):
    """Response-adaptive randomization of one randomized routing cohort.

    The cohort's ``allocation`` weights are the fixed ratio: used during the burn-in and reported
    as the reference. ``kind``: ``fixed``, ``thall_wathen`` or ``variance_weighted``.
    """

    cohort: str
    kind: AllocationKind = "thall_wathen"
    endpoint: str = "crc"
    power: Annotated[float, Field(ge=0)] | Literal["n/(2N)"] = "n/(2N)"
    burn_in: NonNegativeInt = 0
    min_prob: Annotated[float, Field(ge=0, lt=1)] = 0.0
    max_prob: Annotated[float, Field(gt=0, le=1)] = 1.0
    max_change: Annotated[float, Field(gt=0, le=1)] | None = None


class LooksCfg(_Strict):
    """The interim-look schedule that ``adaptive simulate`` follows.

    Real looks run whenever the DSMB meets; this describes the plan. Looks every ``every_days``
    days (default 91) or every ``every_patients`` enrolled patients,
    starting once ``first_after_patients`` are enrolled; ``at_days`` puts the first looks on given
    days from the trial's start (the looks actually held: ``adaptive simulate --looks-from-ledger``)
    and the schedule goes on every ``every_days`` days after the last of them. The trial stops enrolling at
    ``max_patients`` (default: the sum of the arms' ``max_n``) or ``max_duration_days``, when no
    arm is open, or when a rule listed in ``stop_trial_on`` fires (e.g. a superiority rule in a
    two-arm design). With ``final_analysis`` the rules are evaluated once more when every
    enrolled patient's outcomes are known.
    """

    every_days: PositiveInt | None = None
    every_patients: Annotated[int, Field(gt=0, le=MAX_PATIENTS)] | None = None
    first_after_patients: Annotated[int, Field(ge=0, le=MAX_PATIENTS)] = 0
    at_days: list[PositiveInt] = Field(default_factory=list)
    max_patients: Annotated[int, Field(gt=0, le=MAX_PATIENTS)] | None = None
    max_duration_days: PositiveInt = 1826
    final_analysis: bool = True
    stop_trial_on: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_schedule(self):
        if self.every_days is not None and self.every_patients is not None:
            raise ValueError("give either every_days or every_patients, not both")
        if self.at_days:
            if self.every_patients is not None or self.first_after_patients:
                raise ValueError(
                    "at_days starts a calendar schedule: it cannot be combined with every_patients or "
                    "first_after_patients"
                )
            if any(b <= a for a, b in zip(self.at_days, self.at_days[1:], strict=False)):
                raise ValueError(f"at_days must increase strictly (got {self.at_days})")
            if self.at_days[-1] > self.max_duration_days:
                raise ValueError(
                    f"at_days: day {self.at_days[-1]} is after max_duration_days ({self.max_duration_days})"
                )
        return self

    @property
    def days(self) -> int | None:
        """Calendar spacing of looks (91 days when neither spacing is given)."""
        if self.every_days is None and self.every_patients is None:
            return 91
        return self.every_days


class LedgerCfg(_Strict):
    """Where the look ledger lives (a path relative to the config file's folder)."""

    path: str


# ----------------------------------------------------------------------------- sampler and rest
class LimitsCfg(_Strict):
    """Convergence limits every fit must meet before any rule is evaluated."""

    max_rhat: Annotated[float, Field(gt=1.0)] = 1.01
    min_ess_bulk: PositiveFloat = 400
    min_ess_tail: PositiveFloat = 400
    max_divergences: NonNegativeInt = 0


class RetryCfg(_Strict):
    """Sampler settings of one retry after a failed fit."""

    tune: PositiveInt
    target_accept: Probability


class SamplerCfg(_Strict):
    """MCMC settings."""

    backend: Literal["nutpie", "pymc"] = "nutpie"
    chains: Annotated[int, Field(ge=2, le=64)] = 4
    draws: Annotated[int, Field(gt=0, le=MAX_DRAWS)] = 2000
    tune: Annotated[int, Field(gt=0, le=MAX_DRAWS)] = 1000
    target_accept: Probability = 0.9
    seed: NonNegativeInt = 20260101
    cores: PositiveInt | None = None
    #: endpoints are fitted in this many worker processes at once (models with the same structure
    #: share a process and its compiled model); 1 fits everything in the calling process
    fit_processes: PositiveInt = 2
    limits: LimitsCfg = LimitsCfg()
    retries: list[RetryCfg] = Field(
        default_factory=lambda: [
            RetryCfg(tune=2000, target_accept=0.95),
            RetryCfg(tune=4000, target_accept=0.99),
        ]
    )


class SafetyCfg(_Strict):
    """Safety signals named whether or not a harm rule fires.

    For every open arm and every mortality endpoint, ``P(rate > the arm's reference rate)``
    (its ``null_rate``) above ``signal_prob`` is named in the arm's recommendation sentence and on
    the first page of the closed memo.
    """

    signal_prob: Probability = 0.8


class SensitivityAnalysisCfg(_Strict):
    """One declared alternative analysis of the robustness panel (:mod:`adaptive.robustness`)."""

    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.+-]+$")]
    #: another Beta prior for the binary endpoints (each arm alone)
    binary_prior: Literal["uniform", "jeffreys", "unit_information"] | None = None
    #: reference rates of efficacy, futility and predictive rules moved by this much
    reference_shift: Annotated[float, Field(ge=-0.5, le=0.5)] | None = None
    #: survival rules' benchmark medians times this factor
    survival_benchmark_scale: Annotated[float, Field(gt=0.1, le=10)] | None = None
    #: another prior sd of the survival arm levels (independent survival models)
    survival_level_sd: Annotated[float, Field(gt=0, le=10)] | None = None

    @model_validator(mode="after")
    def _something(self):
        if all(
            v is None
            for v in (
                self.binary_prior,
                self.reference_shift,
                self.survival_benchmark_scale,
                self.survival_level_sd,
            )
        ):
            raise ValueError(
                "an alternative analysis changes something: binary_prior, reference_shift, "
                "survival_benchmark_scale or survival_level_sd"
            )
        return self


class SensitivityCfg(_Strict):
    """The robustness panel: declared alternative analyses and the prior-data conflict level."""

    conflict_level: Probability = 0.05
    analyses: list[SensitivityAnalysisCfg] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self):
        ids = [a.id for a in self.analyses]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"analysis ids must be unique; repeated: {', '.join(dup)}")
        return self


class AssessmentCfg(_Strict):
    """When outcomes become known."""

    response_window_days: PositiveInt = 56
    follow_up_days: PositiveInt = 730


def _value_strings(v):
    """Value spellings as strings: a YAML integer (``1``) is its digits; an unquoted yes/no is refused."""
    if not isinstance(v, list):
        return v
    out = []
    for x in v:
        if isinstance(x, bool):
            raise ValueError(
                f"{x!r} is a YAML boolean, not the text of the export: quote it ('Y', 'yes', 'true'); "
                "unquoted yes/no/on/off/true/false are read as booleans by YAML"
            )
        out.append(str(x) if isinstance(x, int) else x)
    return out


ValueStrings = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=60)]],
    Field(min_length=1),
    BeforeValidator(_value_strings),
]


class FlagValuesCfg(_Strict):
    """Which strings of the export mean true and which mean false (compared case-insensitively)."""

    true_values: ValueStrings | None = None
    false_values: ValueStrings | None = None

    @model_validator(mode="after")
    def _disjoint(self):
        both = {s.strip().lower() for s in self.true_values or ()} & {
            s.strip().lower() for s in self.false_values or ()
        }
        if both:
            raise ValueError(f"a value cannot mean both true and false: {', '.join(sorted(both))}")
        return self


class DataValuesCfg(FlagValuesCfg):
    """Flag spellings for every boolean column, and per column (``columns: {idh1: {...}}``).

    A list given replaces the default (``true``/``y``/``yes``/``1`` and ``false``/``n``/``no``/``0``);
    a column's own lists replace the global ones for that column.
    """

    columns: dict[str, FlagValuesCfg] = Field(default_factory=dict)


class AdrsCfg(_Strict):
    """ADaM ADRS parameter codes (``PARAMCD``) read by the engine, and codes to skip."""

    best_response: Annotated[str, Field(min_length=1, max_length=8)] = "BOR"
    relapse: Annotated[str, Field(min_length=1, max_length=8)] = "RELAPSE"
    mrd_negative: Annotated[str, Field(min_length=1, max_length=8)] = "MRD"
    #: other parameters in the dataset (e.g. per-visit ``OVRLRESP``), skipped rather than refused
    ignore: list[Annotated[str, Field(min_length=1, max_length=8)]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _distinct(self):
        codes = [self.best_response, self.relapse, self.mrd_negative, *self.ignore]
        dup = sorted({c for c in codes if codes.count(c) > 1})
        if dup:
            raise ValueError(f"each parameter code has one meaning; repeated: {', '.join(dup)}")
        return self


class AdtteCfg(_Strict):
    """ADaM ADTTE parameter codes (``PARAMCD``) of the engine's time-to-event endpoints.

    ADTTE is optional and only *reconciled* with the engine's own derivation
    (:mod:`adaptive.reconcile`); ``aval_offset_days`` is the SAP's day convention: ``AVAL = ADT -
    STARTDT`` (0, the engine's) or ``ADT - STARTDT + 1`` (1, "day 1 is the start day").
    """

    os: Annotated[str, Field(min_length=1, max_length=8)] = "OS"
    efs: Annotated[str, Field(min_length=1, max_length=8)] = "EFS"
    rfs: Annotated[str, Field(min_length=1, max_length=8)] = "RFS"
    #: other parameters in the dataset (e.g. ``TTR``, ``DOR``), skipped rather than refused
    ignore: list[Annotated[str, Field(min_length=1, max_length=8)]] = Field(default_factory=list)
    aval_offset_days: Literal[0, 1] = 0

    @model_validator(mode="after")
    def _distinct(self):
        codes = [self.os, self.efs, self.rfs, *self.ignore]
        dup = sorted({c for c in codes if codes.count(c) > 1})
        if dup:
            raise ValueError(f"each parameter code has one meaning; repeated: {', '.join(dup)}")
        return self

    def endpoints(self) -> dict[str, str]:
        """``{PARAMCD: endpoint}`` (``os``, ``efs``, ``rfs``)."""
        return {self.os: "os", self.efs: "efs", self.rfs: "rfs"}


class DataCfg(_Strict):
    """How the patient export is read: column names and flag spellings of data management's export.

    ``columns`` maps an engine column (``randomized``) to the export's column (``RANDFL``); headers
    are matched case-insensitively.
    """

    columns: dict[str, Annotated[str, Field(min_length=1, max_length=200)]] = Field(default_factory=dict)
    values: DataValuesCfg = DataValuesCfg()
    #: the export's treatment codes (ADSL ``ARMCD``, an EDC's arm labels) -> the config's arm ids;
    #: a code not listed is read as an arm id itself
    arm_codes: dict[
        Annotated[str, Field(min_length=1, max_length=200)], Annotated[str, Field(min_length=1)]
    ] = Field(default_factory=dict)
    #: ADaM input (``--data`` a folder): the ADRS parameter codes
    adrs: AdrsCfg = Field(default_factory=AdrsCfg)
    #: ADaM input, optional ADTTE: the parameter codes reconciled with the engine's derivation
    adtte: AdtteCfg = Field(default_factory=AdtteCfg)
    #: ``data.columns.<engine column>`` -> where it is in the config file (filled by parse_config)
    _where: dict[str, str] = PrivateAttr(default_factory=dict)

    def where(self, column: str) -> str:
        """The config file, line and key path of the mapping of ``column``."""
        return self._where.get(column, f"config: data.columns.{column}")

    def flag_values(self, column: str) -> tuple[frozenset[str], frozenset[str]]:
        """The lower-cased strings read as true and as false in boolean ``column``."""
        own = self.values.columns.get(column)
        true = (own and own.true_values) or self.values.true_values or DEFAULT_TRUE_VALUES
        false = (own and own.false_values) or self.values.false_values or DEFAULT_FALSE_VALUES
        return frozenset(s.strip().lower() for s in true), frozenset(s.strip().lower() for s in false)


# ----------------------------------------------------------------------------- provenance
class ProvenanceCfg(_Strict):
    """Where one reference value comes from (``provenance.<key>``; see :func:`reference_values`).

    ``grade``: :class:`~decision_rules.vocabulary.Grade` (``V`` verified published figure, ``M``
    published but unverified, ``D`` design choice, ``none`` no published benchmark). ``source``:
    the publication, or why the value was chosen.
    """

    grade: Grade
    source: Annotated[str, Field(min_length=1)]


#: the reference rates of an arm's endpoint, in :class:`RatesCfg`'s order
RATE_FIELDS: tuple[str, ...] = ("null_rate", "futility_rate", "target_rate", "limit_rate")


def rate_key(arm: str, endpoint: str, field: str) -> str:
    """The provenance key of an arm's reference rate: ``arms.<arm>.rates.<endpoint>.<field>``."""
    return f"arms.{arm}.rates.{endpoint}.{field}"


def benchmark_key(arm: str, endpoint: str) -> str:
    """The provenance key of an arm's survival benchmark (``...survival_benchmarks.<ep>_median_days``)."""
    return f"arms.{arm}.survival_benchmarks.{endpoint}_median_days"


def reference_values(cfg: ConfigFile) -> dict[str, float]:
    """Every reference value of the config by its provenance key (YAML anchors resolved)."""
    out: dict[str, float] = {}
    for arm_id, arm in cfg.arms.items():
        for ep, rates in arm.rates.items():
            for f in RATE_FIELDS:
                if getattr(rates, f) is not None:
                    out[rate_key(arm_id, ep, f)] = getattr(rates, f)
        for ep in SURVIVAL_ENDPOINTS:
            if arm.survival_benchmarks.get(ep) is not None:
                out[benchmark_key(arm_id, ep)] = arm.survival_benchmarks.get(ep)
    return out


class TrialCfg(_Strict):
    """Free-text identification of the trial."""

    name: str
    registry_id: str = ""
    start_date: date | None = None


class ConfigFile(_Strict):
    """The whole YAML file."""

    schema_version: Literal[1]
    trial: TrialCfg
    assessment: AssessmentCfg = AssessmentCfg()
    endpoints: dict[str, EndpointCfg]
    arms: dict[str, ArmCfg] = Field(min_length=1)
    routing: list[RoutingCfg] = Field(default_factory=list)
    rules: list[RuleCfg] = Field(default_factory=list)
    randomization: list[RandomizationCfg] = Field(default_factory=list)
    sampler: SamplerCfg = SamplerCfg()
    ledger: LedgerCfg | None = None
    looks: LooksCfg = LooksCfg()
    survival: SurvivalCfg | None = None
    safety: SafetyCfg = SafetyCfg()
    sensitivity: SensitivityCfg = SensitivityCfg()
    data: DataCfg = Field(default_factory=DataCfg)
    #: reference-value key (:func:`reference_values`) -> its grade and source
    provenance: dict[str, ProvenanceCfg] = Field(default_factory=dict)


register_tags(
    IndependentModelCfg,
    IndependentLogitNormalModelCfg,
    HierarchicalModelCfg,
    ExnexModelCfg,
    ProbAboveRuleCfg,
    HarmRuleCfg,
    SuperiorityRuleCfg,
    PredictiveRuleCfg,
    *SURVIVAL_RULE_CFGS,
    HierarchicalSurvivalModelCfg,
    IndependentSurvivalModelCfg,
)


# ============================================================================= frozen design
@dataclass(frozen=True)
class Arm:
    """One arm as the engine sees it."""

    id: str
    label: str
    status: ArmStatus
    max_n: int
    rates: Mapping[str, RatesCfg]
    description: str = ""
    opened_on: date | None = None
    closed_on: date | None = None
    entry: EntryCfg | None = None
    borrowing: BorrowingCfg | None = None
    survival_benchmarks: SurvivalBenchmarksCfg = SurvivalBenchmarksCfg()
    monitoring: Monitoring = Monitoring.FULL
    #: the arm's response landmark in days (``response_landmark_days``, resolved to its default)
    response_landmark_days: int = 56

    @property
    def is_open(self) -> bool:
        """Enrolling or able to resume (``active`` or ``suspended``): it holds a slot."""
        return self.status in OPEN_STATUSES

    @property
    def is_closed(self) -> bool:
        """Closed for good (``graduated``, ``dropped`` or ``completed``)."""
        return self.status in CLOSED_STATUSES

    @property
    def is_descriptive(self) -> bool:
        """Counts, estimates and safety only (no efficacy or futility rule, no borrowing)."""
        return self.monitoring == Monitoring.DESCRIPTIVE

    @property
    def exchangeable_after(self) -> int:
        """Evaluable patients needed before the arm is exchangeable with the others."""
        if self.borrowing is not None and self.borrowing.exchangeable_after is not None:
            return self.borrowing.exchangeable_after
        return NEW_ARM_BORROWING_BURN_IN if self.entry is not None else 0


@dataclass(frozen=True)
class RoutingStep:
    """One step of the routing algorithm (see :class:`RoutingCfg`)."""

    cohort: str
    when: Mapping[str, bool | str]
    when_any: tuple[Mapping[str, bool | str], ...]
    arms: tuple[str, ...]
    allocation: Mapping[str, float]
    reference_arm: str | None = None
    if_no_open_arm: str = "not_enrolled"

    @property
    def is_randomized(self) -> bool:
        return len(self.arms) > 1

    @property
    def passes_on(self) -> bool:
        """Whether patients go on to the next routing step when none of the cohort's arms is open."""
        return self.if_no_open_arm == "next_step"

    def oriented(self, a: str, b: str) -> tuple[str, str]:
        """``(experimental, reference)`` of two of this cohort's arms (the reference arm second)."""
        ref = self.reference_arm or self.arms[0]
        return (b, a) if a == ref else (a, b)


@dataclass(frozen=True)
class Design:
    """A validated trial design: everything an interim look needs besides the data."""

    raw: ConfigFile
    path: Path | None
    sha256: str
    arms: tuple[Arm, ...]
    endpoints: Mapping[str, EndpointCfg]
    routing: tuple[RoutingStep, ...]
    rules: tuple[Any, ...]
    sampler: SamplerCfg
    assessment: AssessmentCfg
    allocation_rules: tuple[AllocationRule, ...] = ()
    survival: SurvivalCfg | None = None
    #: sampler settings overridden on the command line (:meth:`with_sampler`), recorded in the look
    sampler_overrides: Mapping[str, int] = dataclasses.field(default_factory=dict)

    @property
    def ledger_path(self) -> Path | None:
        """The config's ``ledger.path`` resolved against the config file's folder (or ``None``)."""
        if self.raw.ledger is None:
            return None
        p = Path(self.raw.ledger.path)
        if not p.is_absolute() and self.path is not None:
            p = self.path.parent / p
        return p

    @property
    def sensitivity(self) -> SensitivityCfg:
        return self.raw.sensitivity

    @property
    def safety(self) -> SafetyCfg:
        return self.raw.safety

    @property
    def provenance(self) -> Mapping[str, ProvenanceCfg]:
        """Reference-value key -> its recorded grade and source (``provenance``; may be empty)."""
        return self.raw.provenance

    def borrowing_group(self, endpoint: str) -> tuple[str, ...]:
        """The arms of ``endpoint``'s declared exchangeable set (empty: no borrowing)."""
        return tuple(getattr(self.endpoints[endpoint].model, "borrowing_group", ()) or ())

    def routing_step(self, cohort: str) -> RoutingStep:
        for s in self.routing:
            if s.cohort == cohort:
                return s
        raise KeyError(cohort)

    def cohort_of(self, arm: str) -> RoutingStep | None:
        """The routing step that lists ``arm`` (a queued arm: the cohort of its ``entry``)."""
        for s in self.routing:
            if arm in s.arms:
                return s
        a = self.arm(arm)
        if a.entry is not None and a.entry.cohort in {s.cohort for s in self.routing}:
            return self.routing_step(a.entry.cohort)
        return None

    def randomized_cohort_of(self, arm: str) -> RoutingStep | None:
        """The randomized routing step (more than one arm listed) that lists ``arm``, if any."""
        for s in self.routing:
            if s.is_randomized and arm in s.arms:
                return s
        return None

    def oriented(self, a: str, b: str) -> tuple[str, str]:
        """Two arms as ``(experimental, reference)``: the cohort's reference arm second.

        Arms outside a common randomized cohort keep their order.
        """
        step = self.randomized_cohort_of(a)
        if step is not None and b in step.arms:
            return step.oriented(a, b)
        return a, b

    @property
    def arm_ids(self) -> tuple[str, ...]:
        return tuple(a.id for a in self.arms)

    def arm(self, arm_id: str) -> Arm:
        for a in self.arms:
            if a.id == arm_id:
                return a
        raise KeyError(arm_id)

    @property
    def labels(self) -> dict[str, str]:
        return {a.id: a.label for a in self.arms}

    def display_name(self, arm_id: str) -> str:
        """``arm3 (DAV)``: the arm's id with its label, as every sentence names an arm."""
        label = self.arm(arm_id).label
        return f"{arm_id} ({label})" if label and label != arm_id else arm_id

    @property
    def modelled_arms(self) -> tuple[str, ...]:
        """Arms that enter the models: every arm that has opened (all but ``queued``)."""
        return tuple(a.id for a in self.arms if a.status != "queued")

    def survival_prior(
        self, endpoint: str, arms: Sequence[str]
    ) -> tuple[tuple[float, ...], tuple[int, ...] | None]:
        """Per arm of ``arms``: the prior median of its level and its shape group (``None``: one shape).

        ``level.centred_on: benchmark`` centres each arm on its own benchmark median for the
        endpoint (the level's ``median_days`` for an arm without one); ``shape_groups`` maps every
        arm to its group, numbered in the config's order of the groups that have an arm among
        ``arms``. The interim's model and the simulator's both read this.
        """
        cfg = self.survival.endpoints[endpoint].model
        by_benchmark = cfg.level.centred_on == "benchmark"
        medians = tuple(
            float((by_benchmark and self.arm(a).survival_benchmarks.get(endpoint)) or cfg.level.median_days)
            for a in arms
        )
        groups = None
        if cfg.shape_groups:
            names = list(cfg.shape_groups)
            group_of = {a: names.index(g) for g, members in cfg.shape_groups.items() for a in members}
            used = sorted({group_of[a] for a in arms})
            groups = tuple(used.index(group_of[a]) for a in arms)
        return medians, groups

    def as_dict(self) -> dict:
        """The config as run (defaults filled in), JSON-ready."""
        return self.raw.model_dump(mode="json")

    def with_sampler(self, overrides: Mapping[str, int]) -> Design:
        """A copy of the design with sampler settings overridden (``adaptive interim --draws``).

        The config file, its hash and :meth:`as_dict` are unchanged (the look records the
        overrides beside them); the overridden settings are validated like the config's own.

        Raises
        ------
        ConfigError
            An unknown setting, or a value the config's ``sampler`` section would refuse.
        """
        unknown = sorted(set(overrides) - set(SAMPLER_OVERRIDES))
        if unknown:
            raise ConfigError(
                [
                    Problem(
                        "sampler override",
                        f"{', '.join(unknown)} cannot be overridden (only {', '.join(SAMPLER_OVERRIDES)})",
                    )
                ]
            )
        try:
            sampler = SamplerCfg.model_validate(self.sampler.model_dump() | dict(overrides))
        except ValidationError as exc:
            raise ConfigError(
                [
                    Problem(f"--{'.'.join(map(str, e['loc']))}", e["msg"].replace("Input", "the value"))
                    for e in exc.errors()
                ]
            ) from None
        merged = dict(self.sampler_overrides) | {k: int(overrides[k]) for k in sorted(overrides)}
        return dataclasses.replace(self, sampler=sampler, sampler_overrides=merged)


# ============================================================================= loading
def _check_condition(cond: Mapping, where: str, problems: list[Problem]) -> None:
    for col, val in cond.items():
        if col not in ROUTING_FIELDS:
            problems.append(
                Problem(
                    where,
                    f"routing column {col!r} is not a patient-table column that routing can test "
                    f"(one of {', '.join(ROUTING_FIELDS)}).{_did_you_mean(col, ROUTING_FIELDS)}",
                )
            )
        elif val not in ROUTING_FIELDS[col]:
            problems.append(Problem(where, f"{col} can be {ROUTING_FIELDS[col]}, got {val!r}."))


def _endpoint_hint(name: str, cfg) -> str:
    """A hint for a reference to an endpoint that is not configured.

    Only configured endpoints the engine derives are suggested: when ``endpoints`` holds a
    misspelt key (``CRc:``), the references to the real name (``crc``) point to that key's own
    error instead of suggesting the typo.
    """
    valid = [e for e in cfg.endpoints if e in BINARY_ENDPOINTS]
    typos = [e for e in cfg.endpoints if e not in BINARY_ENDPOINTS and e.lower() == str(name).lower()]
    if name in BINARY_ENDPOINTS and typos:
        return f" The key endpoints.{typos[0]} looks like a misspelling of it (see its own message)."
    return _did_you_mean(name, valid)


def _cross_check(cfg: ConfigFile, source: str) -> list[Problem]:
    """Checks that need the whole file: names that must exist, rates that must be consistent.

    One helper per concern, called in this order so that problems are listed endpoints first, then
    arms, routing, rules, the trial-stopping rule ids, survival and the sampler.
    """
    return (
        _check_endpoint_names(cfg, source)
        + _check_arms(cfg, source)
        + _check_routing(cfg, source)
        + _check_rules(cfg, source)
        + _check_stop_trial_on(cfg, source)
        + _check_survival(cfg, source)
        + _check_sampler(cfg, source)
        + _check_provenance(cfg, source)
    )


def _check_provenance(cfg: ConfigFile, source: str) -> list[Problem]:
    """Each ``provenance`` key names a reference value the config sets (so it cannot drift)."""
    known = list(reference_values(cfg))
    return [
        Problem(
            f"{source}: provenance.{key}",
            f"{key!r} names no reference value of this config; a provenance key is "
            "arms.<arm>.rates.<endpoint>.<null_rate|futility_rate|target_rate|limit_rate> or "
            "arms.<arm>.survival_benchmarks.<endpoint>_median_days, for a value the arm sets."
            f"{_did_you_mean(key, known)}",
        )
        for key in cfg.provenance
        if key not in known
    ]


def _arm_ref(cfg: ConfigFile, arm: str, where: str, source: str) -> list[Problem]:
    """A reference to an arm that must exist under ``arms``."""
    if arm in cfg.arms:
        return []
    arm_ids = list(cfg.arms)
    return [
        Problem(
            f"{source}: {where}",
            f"arm {arm!r} does not exist (arms: {', '.join(arm_ids)}).{_did_you_mean(arm, arm_ids)}",
        )
    ]


def _check_endpoint_names(cfg: ConfigFile, source: str) -> list[Problem]:
    """The ``endpoints`` section: names the engine derives, and the primary endpoint present."""
    problems: list[Problem] = []
    for name in cfg.endpoints:
        if name not in BINARY_ENDPOINTS:
            problems.append(
                Problem(
                    f"{source}: endpoints.{name}",
                    f"unknown endpoint {name!r}; the engine derives {', '.join(BINARY_ENDPOINTS)}."
                    f"{_did_you_mean(name, BINARY_ENDPOINTS)}",
                )
            )
    if "crc" not in cfg.endpoints:
        problems.append(Problem(f"{source}: endpoints", "the primary endpoint 'crc' must be configured."))
    return problems


def _check_arms(cfg: ConfigFile, source: str) -> list[Problem]:
    """Each arm: its response landmark within follow-up, rates for every endpoint, consistent rates."""
    problems: list[Problem] = []
    for arm_id, arm in cfg.arms.items():
        landmark = arm.response_landmark_days
        if landmark is not None and landmark > cfg.assessment.follow_up_days:
            problems.append(
                Problem(
                    f"{source}: arms.{arm_id}.response_landmark_days",
                    f"the response landmark ({landmark} days) is after the end of follow-up "
                    f"(assessment.follow_up_days = {cfg.assessment.follow_up_days}); a response "
                    "must be judged within the follow-up window.",
                )
            )
        for ep in cfg.endpoints:
            if ep in BINARY_ENDPOINTS and ep not in arm.rates:
                problems.append(
                    Problem(
                        f"{source}: arms.{arm_id}.rates",
                        f"no rates for endpoint {ep!r}; every arm needs null_rate (and target_rate "
                        "or limit_rate as its rules require) for every configured endpoint.",
                    )
                )
        for ep, r in arm.rates.items():
            problems += _check_arm_rates(cfg, ep, r, f"{source}: arms.{arm_id}.rates.{ep}")
    return problems


def _check_arm_rates(cfg: ConfigFile, ep: str, r: RatesCfg, where: str) -> list[Problem]:
    """One arm's rates for one endpoint: a configured endpoint, rates ordered as its direction needs."""
    problems: list[Problem] = []
    if ep not in cfg.endpoints:
        return [
            Problem(where, f"endpoint {ep!r} is not configured under 'endpoints'.{_endpoint_hint(ep, cfg)}")
        ]
    spec = BINARY_ENDPOINTS.get(ep)
    if spec is None or r.target_rate is None:
        pass
    elif spec.direction == "higher_is_better" and r.target_rate <= r.null_rate:
        problems.append(Problem(where, f"target_rate {r.target_rate} must exceed null_rate {r.null_rate}."))
    elif spec.direction == "lower_is_better" and r.target_rate >= r.null_rate:
        problems.append(
            Problem(
                where,
                f"for {ep} (lower is better) target_rate {r.target_rate} must be below "
                f"null_rate {r.null_rate}.",
            )
        )
    if spec is not None and r.limit_rate is not None and spec.direction == "lower_is_better":
        if r.limit_rate <= r.null_rate:
            problems.append(Problem(where, f"limit_rate {r.limit_rate} must exceed null_rate {r.null_rate}."))
    if spec is not None and r.futility_rate is not None:
        if spec.direction != "higher_is_better":
            problems.append(
                Problem(
                    f"{where}.futility_rate",
                    f"{ep} is lower-is-better: futility_rate applies to response endpoints only.",
                )
            )
        elif r.target_rate is None:
            problems.append(
                Problem(
                    f"{where}.futility_rate",
                    "futility_rate needs a target_rate: it must lie strictly between null_rate "
                    "and target_rate.",
                )
            )
        elif not r.null_rate < r.futility_rate < r.target_rate:
            problems.append(
                Problem(
                    f"{where}.futility_rate",
                    f"futility_rate {r.futility_rate} must lie strictly between null_rate "
                    f"{r.null_rate} and target_rate {r.target_rate} (the minimal rate still worth "
                    "pursuing).",
                )
            )
    return problems


def _check_routing(cfg: ConfigFile, source: str) -> list[Problem]:
    """The ``routing`` steps: unique cohorts, valid conditions, existing arms, matching allocations."""
    problems: list[Problem] = []
    cohorts = set()
    for i, step in enumerate(cfg.routing):
        where = f"{source}: routing.{i}"
        if step.cohort in cohorts:
            problems.append(Problem(where, f"cohort {step.cohort!r} appears twice."))
        cohorts.add(step.cohort)
        _check_condition(step.when, f"{where}.when", problems)
        for j, alt in enumerate(step.when_any):
            _check_condition(alt, f"{where}.when_any.{j}", problems)
        for arm in step.arms:
            problems += _arm_ref(cfg, arm, f"routing.{i}.arms", source)
        if step.allocation is not None:
            if set(step.allocation) != set(step.arms):
                problems.append(
                    Problem(
                        f"{where}.allocation",
                        f"allocation must give a weight for exactly the cohort's arms {step.arms}, "
                        f"got {sorted(step.allocation)}.",
                    )
                )
    return problems


def _check_rules(cfg: ConfigFile, source: str) -> list[Problem]:
    """The ``rules`` list: unique ids, then each rule against the endpoints and arms it names."""
    problems: list[Problem] = []
    seen = set()
    for i, rule in enumerate(cfg.rules):
        where = f"{source}: rules.{i} ({rule.id})"
        if rule.id in seen:
            problems.append(Problem(where, f"rule id {rule.id!r} is used twice."))
        seen.add(rule.id)
        if isinstance(rule, SURVIVAL_RULE_CFGS):
            problems += _check_survival_rule(cfg, rule, where, source, i)
        else:
            problems += _check_binary_rule(cfg, rule, where, source, i)
    return problems


def _check_binary_rule(
    cfg: ConfigFile,
    rule: ProbAboveRuleCfg | HarmRuleCfg | SuperiorityRuleCfg | PredictiveRuleCfg,
    where: str,
    source: str,
    i: int,
) -> list[Problem]:
    """A rule on a binary endpoint: a configured endpoint of the right direction, existing arms, rates."""
    if rule.endpoint in SURVIVAL_ENDPOINTS:
        return [
            Problem(
                f"{where}.kind",
                f"{rule.endpoint} is a survival endpoint; use kind survival_efficacy, "
                "survival_futility or hazard_ratio.",
            )
        ]
    if rule.endpoint not in cfg.endpoints:
        return [
            Problem(
                f"{where}.endpoint",
                f"endpoint {rule.endpoint!r} is not configured under 'endpoints' "
                f"({', '.join(cfg.endpoints)}).{_endpoint_hint(rule.endpoint, cfg)}",
            )
        ]
    problems: list[Problem] = []
    spec = BINARY_ENDPOINTS.get(rule.endpoint)
    arms = rule.arms if isinstance(rule.arms, list) else list(cfg.arms)
    for arm in arms:
        problems += _arm_ref(cfg, arm, f"rules.{i}.arms", source)
    if spec is None:
        return problems
    if rule.kind in ("efficacy", "futility") and spec.direction != "higher_is_better":
        problems.append(
            Problem(
                f"{where}.kind",
                f"{rule.kind} rules need a higher-is-better endpoint; {rule.endpoint} is "
                "lower-is-better (use kind: harm).",
            )
        )
    if rule.kind == "harm" and spec.direction != "lower_is_better":
        problems.append(
            Problem(
                f"{where}.kind",
                f"harm rules need a lower-is-better endpoint such as mortality_30d, got {rule.endpoint}.",
            )
        )
    plain = isinstance(rule, ProbAboveRuleCfg) or (isinstance(rule, HarmRuleCfg) and rule.tiers is None)
    if plain and isinstance(rule.reference, str):
        for arm in arms:
            rates = cfg.arms[arm].rates.get(rule.endpoint) if arm in cfg.arms else None
            if rates is not None and getattr(rates, rule.reference) is None:
                problems.append(
                    Problem(
                        f"{where}.reference",
                        f"rule uses {rule.reference} but arms.{arm}.rates.{rule.endpoint} "
                        f"has no {rule.reference}.",
                    )
                )
    if isinstance(rule, SuperiorityRuleCfg) and rule.arms[0] == rule.arms[1]:
        problems.append(Problem(f"{where}.arms", "a comparison needs two different arms."))
    return problems


def _check_stop_trial_on(cfg: ConfigFile, source: str) -> list[Problem]:
    """``looks.stop_trial_on``: ids of configured rules."""
    problems: list[Problem] = []
    rule_ids = [r.id for r in cfg.rules]
    for rid in cfg.looks.stop_trial_on:
        if rid not in rule_ids:
            problems.append(
                Problem(
                    f"{source}: looks.stop_trial_on",
                    f"rule {rid!r} does not exist (rules: {', '.join(rule_ids)})."
                    f"{_did_you_mean(rid, rule_ids)}",
                )
            )
    return problems


def _check_sampler(cfg: ConfigFile, source: str) -> list[Problem]:
    """The ``sampler`` section: retries tune at least as long as the first fit."""
    sc = cfg.sampler
    if any(r.tune < sc.tune for r in sc.retries):
        return [
            Problem(f"{source}: sampler.retries", "each retry should tune at least as long as the first fit.")
        ]
    return []


def _check_data(cfg: ConfigFile, source: str) -> list[Problem]:
    """The ``data`` section: engine columns that exist, one export column per engine column."""
    problems: list[Problem] = []
    taken: dict[str, str] = {}
    for col, export in cfg.data.columns.items():
        where = f"{source}: data.columns.{col}"
        if col not in ENGINE_COLUMNS:
            problems.append(
                Problem(
                    where,
                    f"{col!r} is not a column the engine reads (columns: {', '.join(ENGINE_COLUMNS)})."
                    f"{_did_you_mean(col, ENGINE_COLUMNS)}",
                )
            )
            continue
        key = export.strip().lower()
        if key in taken:
            problems.append(
                Problem(
                    where,
                    f"maps {col!r} to {export!r}, which is already mapped to {taken[key]!r}; each engine "
                    "column needs its own export column.",
                )
            )
        else:
            taken[key] = col
    arm_ids = list(cfg.arms)
    for code, arm in cfg.data.arm_codes.items():
        if arm not in cfg.arms:
            problems.append(
                Problem(
                    f"{source}: data.arm_codes.{code}",
                    f"maps {code!r} to {arm!r}, which is not an arm of the config (arms: "
                    f"{', '.join(arm_ids)}).{_did_you_mean(arm, arm_ids)}",
                )
            )
    for col in cfg.data.values.columns:
        where = f"{source}: data.values.columns.{col}"
        if col not in FLAG_COLUMNS:
            problems.append(
                Problem(
                    where,
                    f"{col!r} is not a boolean column (boolean columns: {', '.join(FLAG_COLUMNS)})."
                    f"{_did_you_mean(col, FLAG_COLUMNS)}",
                )
            )
            continue
        true, false = cfg.data.flag_values(col)
        if true & false:
            problems.append(
                Problem(
                    where,
                    f"{', '.join(sorted(true & false))} would mean both true and false in {col!r} "
                    "(with the global or default lists); give both true_values and false_values.",
                )
            )
    return problems


def _check_survival(cfg: ConfigFile, source: str) -> list[Problem]:
    """The ``survival:`` section against the rest: endpoint names, cut points, benchmarks."""
    problems: list[Problem] = []
    sv = cfg.survival
    arm_ids = list(cfg.arms)
    modelled = list(sv.endpoints) if sv is not None else []
    if sv is not None:
        for name in sv.endpoints:
            if name not in SURVIVAL_ENDPOINTS:
                problems.append(
                    Problem(
                        f"{source}: survival.endpoints.{name}",
                        f"unknown survival endpoint {name!r}; the engine derives "
                        f"{', '.join(SURVIVAL_ENDPOINTS)}.{_did_you_mean(name, SURVIVAL_ENDPOINTS)}",
                    )
                )
        for name, ep_cfg in sv.endpoints.items():
            groups = ep_cfg.model.shape_groups
            if groups is None:
                continue
            where = f"{source}: survival.endpoints.{name}.model.shape_groups"
            seen: dict[str, str] = {}
            for group, members in groups.items():
                for a in members:
                    if a not in cfg.arms:
                        problems.append(
                            Problem(
                                f"{where}.{group}",
                                f"arm {a!r} does not exist (arms: {', '.join(arm_ids)})."
                                f"{_did_you_mean(a, arm_ids)}",
                            )
                        )
                    elif a in seen:
                        problems.append(
                            Problem(f"{where}.{group}", f"arm {a!r} is already in group {seen[a]!r}.")
                        )
                    else:
                        seen[a] = group
            missing = [a for a in cfg.arms if a not in seen]
            if missing:
                problems.append(
                    Problem(
                        where,
                        f"every arm needs a baseline-shape group; {', '.join(missing)} "
                        f"{'is' if len(missing) == 1 else 'are'} in none.",
                    )
                )
        end = cfg.assessment.follow_up_days
        if sv.cut_points_days[-1] != end:
            problems.append(
                Problem(
                    f"{source}: survival.cut_points_days",
                    f"the last cut point ({sv.cut_points_days[-1]:g}) must be the end of follow-up, "
                    f"assessment.follow_up_days = {end}; follow-up is truncated there. End the list "
                    f"with {end}.",
                )
            )
    for arm_id, arm in cfg.arms.items():
        for ep in SURVIVAL_ENDPOINTS:
            if arm.survival_benchmarks.get(ep) is not None and ep not in modelled:
                problems.append(
                    Problem(
                        f"{source}: arms.{arm_id}.survival_benchmarks.{ep}_median_days",
                        f"survival endpoint {ep!r} is not modelled; add it under survival.endpoints "
                        "or remove the benchmark.",
                    )
                )
    return problems


#: survival endpoints whose model hazard ratio is not a comparison of all randomized patients
_CONDITIONAL_HAZARD = {
    "efs": (
        "that of the patients in CR/CRi by the landmark (treatment failures are a day-1 point mass "
        "of their own, outside the hazard)"
    ),
    "rfs": "that of the responders, from the response date",
    "efs_mrd": "that of the responders with a known MRD status, from the response date",
}


def _check_survival_rule(cfg: ConfigFile, rule, where: str, source: str, i: int) -> list[Problem]:
    """A ``survival_efficacy`` / ``survival_futility`` / ``hazard_ratio`` rule."""
    problems: list[Problem] = []
    modelled = list(cfg.survival.endpoints) if cfg.survival is not None else []
    if rule.endpoint not in modelled:
        if rule.endpoint in BINARY_ENDPOINTS:
            msg = (
                f"{rule.endpoint} is a binary endpoint; {rule.kind} rules take a survival endpoint "
                f"({', '.join(SURVIVAL_ENDPOINTS)})."
            )
        elif cfg.survival is None:
            msg = f"{rule.kind} rules need a 'survival:' section that models {rule.endpoint!r}."
        else:
            msg = (
                f"survival endpoint {rule.endpoint!r} is not modelled under survival.endpoints "
                f"({', '.join(modelled)}).{_did_you_mean(rule.endpoint, modelled or SURVIVAL_ENDPOINTS)}"
            )
        problems.append(Problem(f"{where}.endpoint", msg))
    arms = rule.arms if isinstance(rule.arms, list) else list(cfg.arms)
    for arm in arms:
        if arm not in cfg.arms:
            problems.append(
                Problem(
                    f"{source}: rules.{i}.arms",
                    f"arm {arm!r} does not exist (arms: {', '.join(cfg.arms)})."
                    f"{_did_you_mean(arm, cfg.arms)}",
                )
            )
    if isinstance(rule, HazardRatioRuleCfg) and rule.arms[0] == rule.arms[1]:
        problems.append(Problem(f"{where}.arms", "a comparison needs two different arms."))
    if isinstance(rule, HazardRatioRuleCfg) and rule.endpoint in _CONDITIONAL_HAZARD:
        problems.append(
            Problem(
                f"{where}.endpoint",
                f"a hazard_ratio rule decides a randomized comparison, but the {rule.endpoint} model's "
                f"hazard ratio is {_CONDITIONAL_HAZARD[rule.endpoint]}: it conditions on response, "
                "which breaks the randomization. Compare on 'os', or use a single-arm "
                f"survival_futility / survival_efficacy rule on {rule.endpoint}.",
            )
        )
    if isinstance(rule, HazardRatioRuleCfg) and rule.endpoint in modelled:
        groups = cfg.survival.endpoints[rule.endpoint].model.shape_groups or {}
        group_of = {a: g for g, members in groups.items() for a in members}
        a, b = rule.arms[0], rule.arms[1]
        if a in group_of and b in group_of and group_of[a] != group_of[b]:
            problems.append(
                Problem(
                    f"{where}.arms",
                    f"{a} and {b} have different baseline-shape groups ({group_of[a]}, {group_of[b]}) "
                    f"for {rule.endpoint}: their hazards are not proportional, so no single hazard "
                    "ratio compares them. Put them in one group.",
                )
            )
    if (
        isinstance(rule, SurvivalMedianRuleCfg)
        and rule.reference == "benchmark"
        and rule.endpoint in modelled
    ):
        missing = [
            a for a in arms if a in cfg.arms and cfg.arms[a].survival_benchmarks.get(rule.endpoint) is None
        ]
        if missing:
            problems.append(
                Problem(
                    f"{where}.reference",
                    f"rule uses the benchmark median but {', '.join(missing)} "
                    f"{'has' if len(missing) == 1 else 'have'} no survival_benchmarks."
                    f"{rule.endpoint}_median_days; add it, list only arms that have one under 'arms', "
                    "or give the reference in days.",
                )
            )
    return problems


def _raw_arm_refs(doc: dict, source: str) -> list[Problem]:
    """Arm names used by rules and routing that do not exist, checked on the raw YAML.

    Used when the schema check already failed, so that one run still lists these problems too.
    """
    arms = doc.get("arms")
    if not isinstance(arms, dict):
        return []
    problems = []
    for section in ("rules", "routing"):
        items = doc.get(section)
        if not isinstance(items, list):
            continue
        for i, item in enumerate(items):
            used = item.get("arms") if isinstance(item, dict) else None
            if not isinstance(used, list):
                continue
            for arm in used:
                if arm not in arms:
                    problems.append(
                        Problem(
                            f"{source}: {section}.{i}.arms",
                            f"arm {arm!r} does not exist (arms: {', '.join(map(str, arms))})."
                            f"{_did_you_mean(arm, arms)}",
                        )
                    )
    return problems


def rule_arms(cfg: ConfigFile, rule) -> list[str]:
    """The arms a rule covers.

    ``arms: all`` is every arm of the config; for a predictive rule it is every arm its success
    rule covers (there is nothing to predict elsewhere).
    """
    arms = getattr(rule, "arms", "all")
    if arms != "all":
        return list(arms)
    if isinstance(rule, PredictiveRuleCfg):
        success = next((x for x in cfg.rules if x.id == rule.success_rule), None)
        if success is None or isinstance(success, PredictiveRuleCfg):
            return []  # no success rule: reported on its own
        return rule_arms(cfg, success)
    return list(cfg.arms)


def randomized_arms(cfg: ConfigFile) -> dict[str, str]:
    """Arm -> cohort, for every arm listed in a randomized routing step (more than one arm)."""
    return {a: step.cohort for step in cfg.routing if len(step.arms) > 1 for a in step.arms}


def _check_decisions(cfg: ConfigFile, source: str) -> list[Problem]:
    """Checks of the decision judgement: comparative cohorts, descriptive arms, tiers, borrowing.

    * A single-arm efficacy rule (efficacy, predictive_efficacy, survival_efficacy) may not cover
      an arm of a randomized cohort: such arms are decided comparatively (``superiority``,
      ``hazard_ratio``), unless the rule says ``allow_in_randomized: true``. Single-arm futility
      on them must reference a minimal acceptable rate (``futility_rate`` or ``null_rate``).
    * A descriptive arm is covered by harm rules only, and never borrows.
    * Harm tiers: one ``threshold`` or ``tiers``; tier actions unique; more severe tiers on the
      same reference need higher thresholds.
    * Predictive rules cover only arms their success rule covers; borrowing groups name
      existing, non-descriptive arms; a randomized cohort's ``reference_arm`` is one of its arms.
    """
    problems: list[Problem] = []
    rand = randomized_arms(cfg)
    descriptive = [a for a, arm in cfg.arms.items() if arm.monitoring == Monitoring.DESCRIPTIVE]
    by_id = {r.id: r for r in cfg.rules}
    modelled = set(cfg.survival.endpoints) if cfg.survival is not None else set()
    for i, rule in enumerate(cfg.rules):
        where = f"{source}: rules.{i} ({rule.id})"
        survival = isinstance(rule, SURVIVAL_RULE_CFGS)
        if rule.endpoint not in (modelled if survival else cfg.endpoints):
            continue  # the endpoint is reported on its own
        arms = [a for a in rule_arms(cfg, rule) if a in cfg.arms]
        how = "arms: all covers" if getattr(rule, "arms", None) == "all" else "it covers"
        kind = RuleKind(rule.kind)
        if kind != RuleKind.HARM:
            desc = [a for a in arms if a in descriptive]
            if desc:
                problems.append(
                    Problem(
                        f"{where}.arms",
                        f"{how} {', '.join(desc)}, declared 'monitoring: descriptive' (counts, estimates "
                        f"and safety only): {_a(rule.kind)} rule may not cover it. List the arms it should "
                        "cover under 'arms'.",
                    )
                )
        if kind in EFFICACY_KINDS and not getattr(rule, "allow_in_randomized", False):
            hit = [a for a in arms if a in rand]
            if hit:
                cohorts = sorted({rand[a] for a in hit})
                keep = [a for a in arms if a not in rand and a not in descriptive]
                fix = f"use arms: [{', '.join(keep)}]" if keep else "remove the rule"
                problems.append(
                    Problem(
                        f"{where}.arms",
                        f"{how} {', '.join(hit)} of the randomized cohort {', '.join(cohorts)}: arms of a "
                        "randomized cohort are decided comparatively (a superiority or hazard_ratio rule "
                        f"between them), never graduated by a single-arm {rule.kind} rule while the "
                        f"comparison is open. {fix[0].upper() + fix[1:]}, or set "
                        "allow_in_randomized: true to say explicitly that it should apply.",
                    )
                )
        if (
            kind == RuleKind.FUTILITY
            and getattr(rule, "reference", None) == "target_rate"
            and not rule.allow_in_randomized
        ):
            hit = [a for a in arms if a in rand]
            if hit:
                problems.append(
                    Problem(
                        f"{where}.reference",
                        f"a futility rule on {', '.join(hit)} (randomized cohort "
                        f"{', '.join(sorted({rand[a] for a in hit}))}) must reference a minimal acceptable "
                        "rate (futility_rate or null_rate), not target_rate.",
                    )
                )
        if isinstance(rule, HarmRuleCfg):
            problems += _check_tiers(cfg, rule, where, arms)
        if isinstance(rule, PredictiveRuleCfg) and isinstance(rule.arms, list):
            success = by_id.get(rule.success_rule)
            if success is not None and hasattr(success, "arms"):
                covered = set(rule_arms(cfg, success))
                outside = [a for a in rule.arms if a not in covered]
                if outside:
                    problems.append(
                        Problem(
                            f"{where}.arms",
                            f"{', '.join(outside)} {'is' if len(outside) == 1 else 'are'} not covered by its "
                            f"success_rule {rule.success_rule!r}: there is no success to predict there.",
                        )
                    )
    for name, ep in cfg.endpoints.items():
        group = getattr(ep.model, "borrowing_group", None)
        if group is None:
            continue
        where = f"{source}: endpoints.{name}.model.borrowing_group"
        for a in group:
            if a not in cfg.arms:
                problems.append(
                    Problem(
                        where,
                        f"arm {a!r} does not exist (arms: {', '.join(cfg.arms)})."
                        f"{_did_you_mean(a, cfg.arms)}",
                    )
                )
            elif a in descriptive:
                problems.append(
                    Problem(where, f"{a} is descriptive: it never borrows and lends nothing; remove it.")
                )
        if len(set(group)) != len(group):
            problems.append(Problem(where, "an arm is listed twice."))
    for i, step in enumerate(cfg.routing):
        if step.reference_arm is not None and step.reference_arm not in step.arms:
            problems.append(
                Problem(
                    f"{source}: routing.{i}.reference_arm",
                    f"{step.reference_arm!r} is not one of the cohort's arms {step.arms}.",
                )
            )
    return problems


def _a(word: str) -> str:
    """``word`` with its indefinite article."""
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def _check_tiers(cfg: ConfigFile, rule: HarmRuleCfg, where: str, arms: list[str]) -> list[Problem]:
    """A harm rule's ``threshold`` / ``tiers``."""
    problems: list[Problem] = []
    if (rule.threshold is None) == (rule.tiers is None):
        problems.append(
            Problem(
                where,
                "a harm rule gives either 'threshold' (one drop_harm tier) or 'tiers' "
                "(e.g. flag, suspend_enrolment, drop_harm, each with its threshold), not "
                f"{'both' if rule.tiers is not None else 'neither'}.",
            )
        )
        return problems
    if rule.tiers is None:
        return problems
    if not rule.tiers:
        problems.append(Problem(f"{where}.tiers", "give at least one tier."))
        return problems
    actions = [t.action for t in rule.tiers]
    if len(set(actions)) != len(actions):
        problems.append(Problem(f"{where}.tiers", f"each action may appear once, got {actions}."))
        return problems
    severity = {a: i for i, a in enumerate(HARM_TIERS)}
    tiers = sorted(rule.tiers, key=lambda t: severity[t.action])
    uses: dict[str, list[str]] = {}
    for t in tiers:
        ref = t.reference if t.reference is not None else rule.reference
        if isinstance(ref, str):
            uses.setdefault(ref, []).append(t.action)
    for ref, which in uses.items():
        for a in arms:
            rates = cfg.arms[a].rates.get(rule.endpoint)
            if rates is not None and getattr(rates, ref) is None:
                problems.append(
                    Problem(
                        f"{where}.tiers",
                        f"rule uses {ref} (tiers {', '.join(which)}) but arms.{a}.rates.{rule.endpoint} "
                        f"has no {ref}.",
                    )
                )
    for j, t in enumerate(tiers):
        ref = t.reference if t.reference is not None else rule.reference
        for u in tiers[j + 1 :]:
            ref_u = u.reference if u.reference is not None else rule.reference
            if ref_u == ref and u.threshold <= t.threshold:
                problems.append(
                    Problem(
                        f"{where}.tiers",
                        f"tier {u.action} is more severe than {t.action} on the same reference ({ref}), so "
                        f"its threshold ({u.threshold}) must be higher than {t.threshold}.",
                    )
                )
    return problems


def _build_rules(cfg: ConfigFile) -> tuple:
    rules = []
    arm_ids = [a for a, arm in cfg.arms.items()]
    for r in cfg.rules:
        if isinstance(r, SURVIVAL_RULE_CFGS):
            rules.append(_build_survival_rule(cfg, r))
            continue
        spec = BINARY_ENDPOINTS[r.endpoint]
        if isinstance(r, PredictiveRuleCfg):
            rules.append(_build_predictive(cfg, r))
            continue
        if isinstance(r, SuperiorityRuleCfg):
            prior = comparison_prior(cfg, r)
            arms = orient(cfg, r.arms[0], r.arms[1])
            ab = beta_prior(prior, [cfg.arms[a].rates[r.endpoint].null_rate for a in arms])
            rules.append(
                Superiority(
                    id=r.id,
                    endpoint=r.endpoint,
                    endpoint_label=spec.label,
                    threshold=r.threshold,
                    min_evaluable=r.min_evaluable,
                    arms=arms,
                    margin_rate=r.margin,
                    higher_is_better=spec.direction == "higher_is_better",
                    prior={a: (float(ab[0][i]), float(ab[1][i])) for i, a in enumerate(arms)},
                    prior_name=beta_prior_name(prior),
                )
            )
            continue
        arms = r.arms if isinstance(r.arms, list) else arm_ids

        common = dict(id=r.id, endpoint=r.endpoint, endpoint_label=spec.label, min_evaluable=r.min_evaluable)
        if r.kind == RuleKind.HARM:
            tier_cfgs = r.tiers or [HarmTierCfg(action="drop_harm", threshold=r.threshold)]
            tier_cfgs = sorted(tier_cfgs, key=lambda t: HARM_TIERS.index(t.action))
            tiers = []
            for t in tier_cfgs:
                refs, name = _references(
                    cfg, r.endpoint, arms, t.reference if t.reference is not None else r.reference
                )
                tiers.append(
                    TIER_CLASSES[t.action](
                        **common, threshold=t.threshold, references=refs, reference_name=name
                    )
                )
            rules.append(Harm(**common, tiers=tuple(tiers)))
            continue
        refs, name = _references(cfg, r.endpoint, arms, r.reference)
        rules.append(
            RULE_KINDS[r.kind](**common, threshold=r.threshold, references=refs, reference_name=name)
        )
    return tuple(rules)


def _references(cfg: ConfigFile, endpoint: str, arms, reference) -> tuple[dict[str, float], str]:
    """Arm -> reference rate (a named rate of each arm, or one number) and the reference's name."""
    if isinstance(reference, str):
        return {a: getattr(cfg.arms[a].rates[endpoint], reference) for a in arms}, reference
    return {a: float(reference) for a in arms}, f"{reference:g}"


def comparison_prior(cfg: ConfigFile, r: SuperiorityRuleCfg):
    """A comparison's Beta prior: its own, else its endpoint's independent prior, else unit-information."""
    if r.prior is not None:
        return r.prior
    model = cfg.endpoints[r.endpoint].model
    return model.prior if model.kind == "independent" else "unit_information"


def orient(cfg: ConfigFile, a: str, b: str) -> tuple[str, str]:
    """Two arms as ``(experimental, reference)`` by their randomized cohort's ``reference_arm``."""
    for step in cfg.routing:
        if len(step.arms) > 1 and a in step.arms and b in step.arms:
            ref = step.reference_arm or step.arms[0]
            return (b, a) if a == ref else (a, b)
    return a, b


def _build_predictive(cfg: ConfigFile, r: PredictiveRuleCfg):
    success = next(x for x in cfg.rules if x.id == r.success_rule)
    arm_ids = list(cfg.arms)
    success_arms = success.arms if isinstance(success.arms, list) else arm_ids
    arms = [a for a in (r.arms if isinstance(r.arms, list) else arm_ids) if a in success_arms]
    if isinstance(success.reference, str):
        refs = {a: getattr(cfg.arms[a].rates[r.endpoint], success.reference) for a in arms}
        ref_name = success.reference
    else:
        refs = {a: float(success.reference) for a in arms}
        ref_name = f"{success.reference:g}"
    return PREDICTIVE_KINDS[r.kind](
        id=r.id,
        endpoint=r.endpoint,
        endpoint_label=BINARY_ENDPOINTS[r.endpoint].label,
        threshold=r.threshold,
        min_evaluable=r.min_evaluable,
        success_rule=success.id,
        success_references=refs,
        success_threshold=success.threshold,
        success_reference_name=ref_name,
        max_n={a: cfg.arms[a].max_n for a in arms},
    )


def _build_allocation_rules(cfg: ConfigFile) -> tuple[AllocationRule, ...]:
    out = []
    for r in cfg.randomization:
        step = next(s for s in cfg.routing if s.cohort == r.cohort)
        spec = BINARY_ENDPOINTS[r.endpoint]
        out.append(
            AllocationRule(
                cohort=r.cohort,
                arms=tuple(step.arms),
                ratio=dict(step.allocation) if step.allocation else dict.fromkeys(step.arms, 1.0),
                kind=r.kind,
                endpoint=r.endpoint,
                endpoint_label=spec.label,
                higher_is_better=spec.direction == "higher_is_better",
                power=r.power,
                burn_in=r.burn_in,
                min_prob=r.min_prob,
                max_prob=r.max_prob,
                max_change=r.max_change,
            )
        )
    return tuple(out)


def _cross_check_adaptation(cfg: ConfigFile, source: str) -> list[Problem]:
    """Checks of the platform-adaptation keys: randomization, predictive rules, queued arms."""
    problems: list[Problem] = []
    arm_ids = list(cfg.arms)
    steps = {s.cohort: s for s in cfg.routing}
    seen: set[str] = set()
    for i, r in enumerate(cfg.randomization):
        where = f"{source}: randomization.{i}"
        if r.cohort in seen:
            problems.append(Problem(f"{where}.cohort", f"cohort {r.cohort!r} has two randomization entries."))
        seen.add(r.cohort)
        step = steps.get(r.cohort)
        if step is None:
            problems.append(
                Problem(
                    f"{where}.cohort",
                    f"no routing step has cohort {r.cohort!r} (cohorts: {', '.join(steps) or 'none'})."
                    f"{_did_you_mean(r.cohort, steps)}",
                )
            )
            continue
        k = len(step.arms)
        if k < 2:
            problems.append(
                Problem(
                    f"{where}.cohort",
                    f"cohort {r.cohort!r} has one arm ({step.arms[0]}); response-adaptive randomization "
                    "needs a routing step with two or more arms.",
                )
            )
            continue
        if r.endpoint not in cfg.endpoints:
            problems.append(
                Problem(
                    f"{where}.endpoint",
                    f"endpoint {r.endpoint!r} is not configured under 'endpoints'."
                    f"{_endpoint_hint(r.endpoint, cfg)}",
                )
            )
        if r.min_prob > 1.0 / k:
            problems.append(
                Problem(
                    f"{where}.min_prob",
                    f"min_prob {r.min_prob} cannot be given to all {k} arms of {r.cohort!r}; "
                    f"use at most 1/{k} = {1.0 / k:.4g}.",
                )
            )
        if r.max_prob < 1.0 / k:
            problems.append(
                Problem(
                    f"{where}.max_prob",
                    f"max_prob {r.max_prob} is below 1/{k}: the {k} arms of {r.cohort!r} cannot sum to 1; "
                    f"use at least {1.0 / k:.4g}.",
                )
            )
    rule_by_id = {x.id: x for x in cfg.rules}
    for i, r in enumerate(cfg.rules):
        if not isinstance(r, PredictiveRuleCfg):
            continue
        where = f"{source}: rules.{i} ({r.id})"
        success = rule_by_id.get(r.success_rule)
        if success is None:
            problems.append(
                Problem(
                    f"{where}.success_rule",
                    f"no rule has id {r.success_rule!r}; name an efficacy rule "
                    f"({', '.join(x.id for x in cfg.rules if x.kind == 'efficacy') or 'none configured'})."
                    f"{_did_you_mean(r.success_rule, rule_by_id)}",
                )
            )
        elif success.kind != "efficacy":
            problems.append(
                Problem(
                    f"{where}.success_rule",
                    f"{r.success_rule!r} is a {success.kind} rule; the success predicted must be an "
                    "efficacy rule (P(rate > reference) > threshold at the arm's max_n).",
                )
            )
        elif success.endpoint != r.endpoint:
            problems.append(
                Problem(
                    f"{where}.endpoint",
                    f"endpoint {r.endpoint!r} differs from the endpoint {success.endpoint!r} of "
                    f"success_rule {r.success_rule!r}; use {success.endpoint!r}.",
                )
            )
        spec = BINARY_ENDPOINTS.get(r.endpoint)
        if spec is not None and spec.direction != "higher_is_better":
            problems.append(
                Problem(
                    f"{where}.kind", f"{r.kind} rules need a higher-is-better endpoint, got {r.endpoint}."
                )
            )
    for arm_id, arm in cfg.arms.items():
        where = f"{source}: arms.{arm_id}"
        if arm.opened_on and arm.closed_on and arm.closed_on < arm.opened_on:
            problems.append(
                Problem(
                    f"{where}.closed_on", f"closed_on {arm.closed_on} is before opened_on {arm.opened_on}."
                )
            )
        if arm.closed_on and arm.status in ("active", "queued"):
            problems.append(
                Problem(
                    f"{where}.closed_on",
                    f"arm has closed_on {arm.closed_on} but status '{arm.status}'; set the status to "
                    "dropped, graduated, completed or suspended, or remove closed_on.",
                )
            )
        if arm.entry is None:
            continue
        if arm.entry.cohort not in steps:
            problems.append(
                Problem(
                    f"{where}.entry.cohort",
                    f"no routing step has cohort {arm.entry.cohort!r} (cohorts: {', '.join(steps)})."
                    f"{_did_you_mean(arm.entry.cohort, steps)}",
                )
            )
        for other in arm.entry.after_closure_of:
            if other not in cfg.arms:
                problems.append(
                    Problem(
                        f"{where}.entry.after_closure_of",
                        f"arm {other!r} does not exist (arms: {', '.join(arm_ids)})."
                        f"{_did_you_mean(other, arm_ids)}",
                    )
                )
            elif other == arm_id:
                problems.append(Problem(f"{where}.entry.after_closure_of", "an arm cannot wait for itself."))
    return problems


def _build_survival_rule(cfg: ConfigFile, r):
    label = SURVIVAL_ENDPOINTS[r.endpoint].label
    if isinstance(r, HazardRatioRuleCfg):
        return HazardRatioSuperiority(
            id=r.id,
            endpoint=r.endpoint,
            endpoint_label=label,
            threshold=r.threshold,
            min_evaluable=r.min_events,
            arms=orient(cfg, r.arms[0], r.arms[1]),
            hr_margin=r.hr_margin,
        )
    arms = r.arms if isinstance(r.arms, list) else list(cfg.arms)
    if r.reference == "benchmark":
        refs = {a: cfg.arms[a].survival_benchmarks.get(r.endpoint) for a in arms}
        ref_name = "benchmark"
    else:
        refs = dict.fromkeys(arms, float(r.reference))
        ref_name = f"{r.reference:g} days"
    return SURVIVAL_RULE_KINDS[r.kind](
        id=r.id,
        endpoint=r.endpoint,
        endpoint_label=label,
        threshold=r.threshold,
        min_evaluable=r.min_events,
        references=refs,
        reference_name=ref_name,
    )


def _default_priors(doc: dict) -> dict:
    """Fill in the prior of an ``independent`` endpoint model that gives none, by direction.

    Safety (lower-is-better) endpoints get Jeffreys ``Beta(1/2, 1/2)``: the unit-information
    ``Beta(m, 1 - m)`` is J-shaped for a small reference rate ``m`` (``Beta(0.05, 0.95)`` puts 71%
    of its mass below 0.1%) and would pull an observed death rate down, an anti-conservative
    choice for harm monitoring. Response endpoints keep the unit-information prior centred on the
    null. Written into the config so the config as run shows the prior used.
    """
    endpoints = doc.get("endpoints")
    if not isinstance(endpoints, dict):
        return doc
    doc = {**doc, "endpoints": dict(endpoints)}
    for name, ep in endpoints.items():
        model = ep.get("model") if isinstance(ep, dict) else None
        if not isinstance(model, dict) or model.get("kind") != "independent" or "prior" in model:
            continue
        spec = BINARY_ENDPOINTS.get(name)
        if spec is None:
            continue
        prior = "jeffreys" if spec.direction == "lower_is_better" else "unit_information"
        doc["endpoints"][name] = {**ep, "model": {**model, "prior": prior}}
    return doc


def parse_config(text: str, source: str = "<config>", path: Path | None = None) -> Design:
    """Parse YAML text into a :class:`Design`, raising :class:`ConfigError` with every problem."""
    doc, lines, yaml_problems = load_yaml(text, source)
    if yaml_problems:
        raise ConfigError(yaml_problems)
    try:
        design = _parse_doc(doc, text, source, path)
    except ConfigError as err:
        # name the line of each key path (the YAML's own lines, not the schema's)
        raise ConfigError(
            [Problem(with_line(p.where, source, lines), p.message) for p in err.problems]
        ) from None
    # where each column mapping is written, for a data error that the mapping causes
    design.raw.data._where.update(
        {c: with_line(f"{source}: data.columns.{c}", source, lines) for c in design.raw.data.columns}
    )
    return design


def _checks(cfg: ConfigFile, source: str) -> list[Problem]:
    """Every check that needs a schema-valid config (cross-references, decisions, data maps)."""
    problems = _cross_check(cfg, source) + _cross_check_adaptation(cfg, source)
    return problems + _check_decisions(cfg, source) + _check_data(cfg, source)


def _checks_without(doc: dict, err: ValidationError, source: str, found: list[Problem]) -> list[Problem]:
    """The cross-checks of a config with schema errors, so that ``validate`` lists every problem.

    The values the schema refused are left out (their defaults apply) and the rest is checked as
    usual; problems at the refused keys, or already listed, are not repeated. When leaving them
    out is not enough (a required key was refused), only the schema's problems are reported.
    """
    trimmed = copy.deepcopy(doc)
    refused = []
    for e in err.errors():
        loc = doc_loc(e["loc"])
        node = trimmed
        for key in loc[:-1]:
            if isinstance(node, dict):
                node = node.get(key)
            elif isinstance(node, list) and isinstance(key, int) and key < len(node):
                node = node[key]
            else:
                node = None
            if node is None:
                break
        if isinstance(node, dict) and loc and loc[-1] in node:
            del node[loc[-1]]
            refused.append(".".join(str(p) for p in loc))
    if not refused:
        return []
    try:
        cfg = ConfigFile.model_validate(trimmed)
    except ValidationError:
        return []
    seen = {(p.where, p.message) for p in found}
    return [
        p
        for p in _checks(cfg, source)
        if (p.where, p.message) not in seen and not any(f": {r}" in p.where for r in refused)
    ]


def _parse_doc(doc, text: str, source: str, path: Path | None) -> Design:
    if not isinstance(doc, dict):
        raise ConfigError([Problem(source, "the config must be a YAML mapping (key: value) at top level.")])
    # top-level keys starting with "x-" hold YAML anchors for reuse (as in docker compose files)
    doc = {k: v for k, v in doc.items() if not str(k).startswith("x-")}
    doc = _default_priors(doc)
    try:
        cfg = ConfigFile.model_validate(doc)
    except ValidationError as err:
        hints = {"borrowing_group": f"{BORROWING_NOTE}; list those arms, or use kind: independent."}
        problems = pydantic_problems(err, source, ConfigFile, hints) + _raw_arm_refs(doc, source)
        raise ConfigError(problems + _checks_without(doc, err, source, problems)) from None
    problems = _checks(cfg, source)
    if problems:
        raise ConfigError(problems)
    arms = tuple(
        Arm(
            id=k,
            label=a.label,
            status=a.status,
            max_n=a.max_n,
            rates=dict(a.rates),
            description=a.description,
            opened_on=a.opened_on,
            closed_on=a.closed_on,
            entry=a.entry,
            borrowing=a.borrowing,
            survival_benchmarks=a.survival_benchmarks,
            monitoring=a.monitoring,
            response_landmark_days=a.response_landmark_days or cfg.assessment.response_window_days,
        )
        for k, a in cfg.arms.items()
    )
    routing = tuple(
        RoutingStep(
            cohort=s.cohort,
            when=dict(s.when),
            when_any=tuple(dict(x) for x in s.when_any),
            arms=tuple(s.arms),
            allocation=dict(s.allocation) if s.allocation else {a: 1.0 for a in s.arms},
            reference_arm=s.reference_arm,
            if_no_open_arm=s.if_no_open_arm,
        )
        for s in cfg.routing
    )
    return Design(
        raw=cfg,
        path=path,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        arms=arms,
        endpoints=dict(cfg.endpoints),
        routing=routing,
        rules=_build_rules(cfg),
        sampler=cfg.sampler,
        assessment=cfg.assessment,
        allocation_rules=_build_allocation_rules(cfg),
        survival=cfg.survival,
    )


def load_config(path: str | Path) -> Design:
    """Read and validate a trial config file.

    Raises
    ------
    ConfigError
        Listing every problem found, each with the file and the key path.
    """
    path = Path(path)
    try:
        if path.exists() and not path.is_file():
            raise ConfigError([Problem(str(path), "cannot read the config file: it is not a regular file.")])
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError([Problem(str(path), f"cannot read the config file: {exc.strerror}")]) from None
    text, problems = decode_text(raw, path.name)
    if problems:
        raise ConfigError(problems)
    design = parse_config(text, source=path.name, path=path)
    # hash the bytes on disk, not the decoded text, so the hash matches `sha256sum`
    return Design(**{**design.__dict__, "sha256": hashlib.sha256(raw).hexdigest()})
