"""Virtual trials of the platform design, many at once, on the same rules as `adaptive interim`.

A chunk of virtual trials is simulated in lock step over patient arrivals, vectorized over trials:

* **Patients** arrive as a Poisson process (the scenario's accrual), with routing
  characteristics drawn from the scenario's prevalences. The config's routing steps are applied
  in order; a patient enters the first matching cohort that still has an open arm (a cohort
  whose arms have all closed passes its patients on, as the protocol does for the new-drug slot).
  Randomized cohorts assign by the current allocation probabilities; an arm closes to enrolment
  at its ``max_n``; enrolment stops at ``looks.max_patients`` or ``looks.max_duration_days``.
* **Outcomes** follow the scenario's truth for the assigned arm: best response (CR, CRi, PR, NE,
  NR; CRc and ORR from it; a drift ``crc_trend_per_year`` shifts the log-odds of CR and CRi by
  calendar time), MRD negativity among CRc, death time (30/60-day mortality); the response day
  is uniform over the arm's ``response_days`` (else the scenario's); with an EFS or RFS rule,
  relapse among CR/CRi on the response day plus an exponential time with the arm's
  ``median_relapse_days`` (as :mod:`adaptive.synth` draws it). They become known as
  :func:`adaptive.derive.derive_patient` has them, with the arm's response landmark from the
  config (``arms.<arm>.response_landmark_days``): a response by the landmark, known for every
  patient at the landmark whatever the outcome (MRD-negative CRc as CRc); 30/60-day mortality at
  day 30/60 (or at death). A patient counts at a look only once known.
* **Looks** follow ``looks`` in the config. At each look the posterior of every endpoint a rule
  or an allocation uses is computed *exactly* (conjugate Beta quantities from
  :mod:`decision_rules.beta`, hierarchical/EXNEX by tabulated quadrature from :mod:`models.batch`,
  with each arm's borrowing state as in the interim), and the config's **rule objects** decide
  (``decide_arrays``; predictive rules through ``decide_beta_arrays``), as in `adaptive interim`:
  comparisons (``superiority``) read the concurrently randomized patients with the rule's
  independent Beta prior; harm rules act by tier (``flag`` is recorded, ``suspend_enrolment``
  pauses enrolment, ``drop_harm`` closes the arm); an arm with its ``max_n`` and no outcome
  pending (for a randomized cohort: every open arm of the cohort) gets its **final analysis**
  (efficacy rules met: ``graduated``, else ``completed``; the comparison decides a randomized
  pair), never a futility or predictive decision. The action per arm follows
  :data:`~decision_rules.vocabulary.PRECEDENCE` and the recommendation set's coherence rule 2
  (:mod:`adaptive.recommend`: the leading arm of an open comparison is not closed for a
  non-safety reason while the trailing one stays). The simulated DSMB accepts every
  recommendation, and resumes a suspended arm at the first look where no harm tier at or above
  ``suspend_enrolment`` fires. Randomized cohorts then get new allocation probabilities from the
  config's :class:`~decision_rules.allocation.AllocationRule` objects, and queued arms are opened
  by :func:`adaptive.queue.evaluate_queue`.
* **Final analysis**: once enrolment has stopped and every outcome is known, every arm still
  open gets its final analysis (``looks.final_analysis``).
* **Outcome per arm**: its final :class:`~decision_rules.vocabulary.ArmStatus`, the
  :class:`~decision_rules.vocabulary.Action` that closed it, the rule behind that action and
  whether it was taken at an interim look or a final analysis; whether it was ever flagged or
  suspended.

Randomness: every trial has its own generator, seeded from the run's seed and the trial's index
(:func:`trial_streams`), and draws all its uniforms up front, so a trial's result does not depend on
how trials are chunked or on how many workers run them.
"""

from __future__ import annotations

import bisect
import dataclasses
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np
from scipy import special

from adaptive.config import Design
from adaptive.endpoints import BINARY_ENDPOINTS, POINT_MASS_DAYS
from adaptive.queue import date_breakpoints, evaluate_queue
from adaptive.randomization import allocation_rules
from adaptive.scenario import Scenario
from adaptive.simulate import looks
from adaptive.simulate.actions import choose_actions, recommend_actions
from adaptive.simulate.kernels import ACTIVE, COMPLETE, QUEUED, SUSPENDED, enrol
from adaptive.simulate.looks import OPEN
from adaptive.simulate.patients import Patients, _survival
from adaptive.simulate.patients import trial_streams as trial_streams  # re-exported
from adaptive.survival_data import TREATMENT_FAILURE_DAY
from decision_rules.beta import beta_prior, beta_prob_above, beta_prob_best
from decision_rules.rules import Efficacy, Futility, Harm, PredictiveEfficacy, PredictiveFutility, Superiority
from decision_rules.survival import HazardRatioSuperiority, MedianEfficacy, MedianFutility
from decision_rules.vocabulary import PRIMARY_ENDPOINT, Action, ArmStatus

if TYPE_CHECKING:  # imported where a design needs them: both load scipy.stats (~0.5 s of a short
    # `adaptive simulate`), which a design of Beta endpoints without survival rules never uses
    from models.batch import HierarchicalBatch
    from models.survival_batch import SurvivalBatch

# arm status codes of the simulator: ACTIVE, QUEUED, COMPLETE (accrual complete, still open) and
# SUSPENDED (0-3) come from the enrolment kernel; the closed ones follow
GRADUATED, DROPPED, COMPLETED = 4, 5, 6
#: status code -> the one vocabulary's arm status (an arm with its accrual complete is "active")
STATUS_NAMES = {
    ACTIVE: ArmStatus.ACTIVE,
    QUEUED: ArmStatus.QUEUED,
    COMPLETE: ArmStatus.ACTIVE,
    SUSPENDED: ArmStatus.SUSPENDED,
    GRADUATED: ArmStatus.GRADUATED,
    DROPPED: ArmStatus.DROPPED,
    COMPLETED: ArmStatus.COMPLETED,
}
#: the config's statuses -> codes (arms closed in the config stay closed)
_FROM_CONFIG = {
    ArmStatus.ACTIVE: ACTIVE,
    ArmStatus.QUEUED: QUEUED,
    ArmStatus.SUSPENDED: SUSPENDED,
    ArmStatus.GRADUATED: GRADUATED,
    ArmStatus.DROPPED: DROPPED,
    ArmStatus.COMPLETED: COMPLETED,
}
#: closing decisions recorded per arm (0: none); their names are the vocabulary's actions
DECISIONS = (
    None,
    Action.GRADUATE,
    Action.DROP_FUTILITY,
    Action.DROP_HARM,
    Action.DROP_INFERIOR,
    Action.COMPLETE,
)
_DECISION = {a: i for i, a in enumerate(DECISIONS) if a is not None}
_CLOSED_BY = {
    Action.GRADUATE: GRADUATED,
    Action.DROP_FUTILITY: DROPPED,
    Action.DROP_HARM: DROPPED,
    Action.DROP_INFERIOR: DROPPED,
    Action.COMPLETE: COMPLETED,
}
#: when a decision was taken: at an interim look, at the arm's final analysis, or by a stop rule
STAGES = ("interim", "final_analysis", "trial_stopped")
_INTERIM, _FINAL, _STOPPED = 0, 1, 2
_SUPPORTED_RULES = (
    Efficacy,
    Futility,
    Harm,
    Superiority,
    PredictiveFutility,
    PredictiveEfficacy,
    MedianEfficacy,
    MedianFutility,
    HazardRatioSuperiority,
)
#: survival endpoints the simulator draws: overall survival from the scenario's death times, ELN
#: 2022 EFS and RFS from its responses, relapses (``median_relapse_days``) and deaths
SIMULATED_SURVIVAL = ("os", "efs", "rfs")


# ============================================================================= specification
@dataclass
class EndpointModel:
    """How one endpoint's posterior is computed in the simulator."""

    name: str
    kind: str  # "beta" or "hier"
    higher_is_better: bool
    a0: np.ndarray | None = None  # Beta prior per arm
    b0: np.ndarray | None = None
    batch: HierarchicalBatch | None = None
    thresholds: dict[tuple[int, float], int] = field(default_factory=dict)  # (arm, rate) -> column
    w_base: np.ndarray | None = None  # EXNEX weight per arm once exchangeable
    exchangeable_after: np.ndarray | None = None
    uses_weights: bool = False
    max_n: np.ndarray | None = None
    _above: dict = field(default_factory=dict, repr=False)

    def beta_prob_above(self, arm: int, ref: float, n: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``P(p_arm > ref)`` of the Beta posterior after ``y`` of ``n``, by table lookup.

        The table ``[n, y]`` holds :func:`decision_rules.beta.beta_prob_above` of every
        ``(n, y)`` with ``0 <= y <= n <= max_n`` (built on first use): the same numbers, computed
        once.
        """
        key = (arm, float(ref))
        tab = self._above.get(key)
        if tab is None:
            m = int(self.max_n[arm])
            nn, yy = np.tril_indices(m + 1)
            tab = np.full((m + 1, m + 1), np.nan)
            tab[nn, yy] = beta_prob_above(self.a0[arm] + yy, self.b0[arm] + nn - yy, ref)
            self._above[key] = tab
        return tab[n, y]


@dataclass
class SurvivalModel:
    """How one survival endpoint's posterior is computed in the simulator.

    The interim's piecewise-exponential model (:meth:`adaptive.config.Design.survival_prior`:
    each arm's prior centre and shape group; EFS's treatment failures on a point mass with the
    model's Beta prior), its decision probabilities by
    :class:`models.survival_batch.SurvivalBatch`; follow-up ends ``follow_up`` days after
    enrolment. ``failure_day``: the day an EFS treatment failure is dated (and an NE censored).
    """

    name: str
    batch: SurvivalBatch
    cut_points: np.ndarray
    follow_up: float
    failure_day: float = TREATMENT_FAILURE_DAY


def survival_rules_not_simulated(design: Design) -> dict[str, str]:
    """Survival rules the simulator cannot evaluate, with the reason (rule id -> reason)."""
    out = {}
    for r in design.rules:
        if getattr(r, "family", "") != "survival":
            continue
        if r.endpoint not in SIMULATED_SURVIVAL:
            out[r.id] = (
                f"{r.endpoint} is not simulated: the simulator covers {', '.join(SIMULATED_SURVIVAL)} "
                "(the responder endpoint with MRD, its day-0 point mass and unknown MRD statuses, not yet)"
            )
        elif design.survival.endpoints[r.endpoint].model.kind != "independent":
            out[r.id] = (
                "hierarchical survival models are fitted at interim looks but not simulated (the "
                "simulator's engine covers independent arm levels)"
            )
    return out


def _survival_model(design: Design, endpoint: str, arms) -> SurvivalModel:
    from adaptive.survival_comparison import survival_batch

    batch = survival_batch(design, endpoint, arms, point_mass_days=POINT_MASS_DAYS.get(endpoint))
    cuts = np.asarray(batch.cut_points, float)
    return SurvivalModel(endpoint, batch, cuts, float(design.assessment.follow_up_days))


@dataclass
class SimSpec:
    """A design and a scenario compiled into arrays for fast simulation."""

    design: Design
    scenario: Scenario
    arms: tuple[str, ...]
    max_n: np.ndarray
    status0: np.ndarray
    truth: dict[str, np.ndarray]
    steps: list[dict]
    rules: tuple
    alloc_rules: tuple
    endpoints: dict[str, EndpointModel]
    fixed_allocation: bool
    max_patients: int
    max_duration: float
    every_days: int | None
    every_patients: int | None
    first_after: int
    final_analysis: bool
    stop_on: frozenset[str]
    n_patients: int
    max_delay: float
    #: survival endpoints a simulated rule reads
    survival: dict[str, SurvivalModel] = field(default_factory=dict)
    #: per arm, the endpoints whose outcomes its decisions wait for (stage of the arm)
    decision_endpoints: tuple[tuple[str, ...], ...] = ()
    #: per hazard-ratio rule id, its endpoint's model over its two arms alone, in the design's
    #: order (:func:`adaptive.survival_comparison.pair_survival_batch`, as at an interim look)
    pair_batches: dict[str, SurvivalBatch] = field(default_factory=dict)
    #: randomized cohorts: arm indices per cohort (more than one arm)
    randomized_cohorts: tuple[tuple[int, ...], ...] = ()
    #: rule ids in config order (decision attribution: ``decision_rule`` indexes this)
    rule_ids: tuple[str, ...] = ()
    #: days of the first looks (``looks.at_days``), then every ``every_days`` after the last
    at_days: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def k(self) -> int:
        return len(self.arms)


def _null_index(design: Design, arm: str, endpoint: str) -> float:
    return design.arm(arm).rates[endpoint].null_rate


def compile_spec(
    design: Design,
    scenario: Scenario,
    *,
    fixed_allocation: bool = False,
    table_options: dict | None = None,
) -> SimSpec:
    """Compile a design and a scenario (validated against each other) into a :class:`SimSpec`.

    ``fixed_allocation`` replaces every response-adaptive rule by its cohort's fixed ratio
    (``--compare-fixed``).
    """
    arms = design.arm_ids
    index = {a: i for i, a in enumerate(arms)}
    skipped = tuple(survival_rules_not_simulated(design))
    unsupported = [r.id for r in design.rules if not isinstance(r, _SUPPORTED_RULES) and r.id not in skipped]
    if unsupported:
        raise ValueError(
            f"adaptive simulate cannot evaluate rules {unsupported}: the simulated kinds are efficacy, "
            "futility, harm, superiority, predictive, survival_efficacy, survival_futility and hazard_ratio"
        )
    if any(r in design.raw.looks.stop_trial_on for r in skipped):
        raise ValueError(f"looks.stop_trial_on names survival rules {list(skipped)}, which are not simulated")
    design = dataclasses.replace(design, rules=tuple(r for r in design.rules if r.id not in skipped))
    early = [
        f"{r.id} ({arm}: {ref:g} days)"
        for r in design.rules
        if getattr(r, "family", "") == "survival" and r.endpoint in POINT_MASS_DAYS
        for arm, ref in getattr(r, "references", {}).items()
        if ref < POINT_MASS_DAYS[r.endpoint]
    ]
    if early:
        raise ValueError(
            f"adaptive simulate needs median references on or after the point mass (day "
            f"{POINT_MASS_DAYS['efs']:g} for EFS's treatment failures); got {', '.join(early)}"
        )
    status0 = np.array([_FROM_CONFIG[ArmStatus(a.status)] for a in design.arms])
    closed0 = np.isin(status0, (GRADUATED, DROPPED, COMPLETED))
    max_n = np.array([a.max_n for a in design.arms])
    sc = scenario
    truth_arms = [sc.arms.get(a) for a in arms]
    missing = [a for a, t in zip(arms, truth_arms, strict=True) if t is None and not closed0[index[a]]]
    if missing:
        raise ValueError(f"the scenario gives no truth for arms {missing}")

    def col(attr, default=0.0):
        return np.array([getattr(t, attr) if t is not None else default for t in truth_arms], float)

    truth = {
        "cr": col("cr"),
        "cri": col("cri"),
        "pr": col("pr"),
        "ne": col("ne"),
        "mrd": col("mrd_negative_given_crc"),
        "m30": col("mortality_30d", 0.05),
        "m60": col("mortality_60d", 0.1),
        "median_os": col("median_os_days", 365.0),
        "median_relapse": col("median_relapse_days", 240.0),
        "trend": col("crc_trend_per_year"),
    }
    # each arm's response-day range (its own, else the scenario's) and response landmark (config)
    days = np.array(
        [
            sc.response_days_of(a) if t is not None else sc.response_days
            for a, t in zip(arms, truth_arms, strict=True)
        ],
        float,
    )
    truth["resp_lo"], truth["resp_hi"] = days[:, 0], days[:, 1]
    truth["landmark"] = np.array([design.arm(a).response_landmark_days for a in arms], float)
    truth["crc_itt"] = itt_crc(truth, days)
    # routing steps, each with its arms (queued arms join their entry cohort)
    steps = []
    for s in design.routing:
        joiners = [
            a.id
            for a in design.arms
            if a.entry is not None and a.entry.cohort == s.cohort and a.id not in s.arms
        ]
        steps.append(
            {
                "cohort": s.cohort,
                "when": dict(s.when),
                "when_any": [dict(x) for x in s.when_any],
                "arms": np.array([index[a] for a in (*s.arms, *joiners)]),
                "randomized": s.is_randomized,
                "passes_on": s.passes_on,
            }
        )
    alloc = allocation_rules(design)
    if fixed_allocation:
        alloc = tuple(dataclasses.replace(r, kind="fixed") for r in alloc)
    looks = design.raw.looks
    from adaptive.recommend import decision_endpoints

    dec_eps = tuple(tuple(sorted(decision_endpoints(design, a))) for a in arms)
    surv_eps = sorted({r.endpoint for r in design.rules if getattr(r, "family", "") == "survival"})
    survival = {ep: _survival_model(design, ep, arms) for ep in surv_eps}
    hr_rules = [r for r in design.rules if isinstance(r, HazardRatioSuperiority)]
    pair_batches = {}
    if hr_rules:
        from adaptive.survival_comparison import pair_survival_batch

        pair_batches = {
            r.id: pair_survival_batch(design, r.endpoint, sorted(r.arms, key=index.get)) for r in hr_rules
        }
    needed = {r.endpoint for r in design.rules if getattr(r, "family", "") != "survival"}
    needed |= {r.endpoint for r in alloc if r.kind != "fixed"}
    needed |= {PRIMARY_ENDPOINT} | {ep for eps in dec_eps for ep in eps}
    endpoints = {ep: _endpoint_model(design, ep, arms, max_n, table_options or {}) for ep in sorted(needed)}
    max_patients = looks.max_patients or int(max_n[~closed0].sum())
    gap = 30.4375 / sc.accrual_per_month
    n_patients = int(np.ceil(looks.max_duration_days / gap * 1.25 + 50))
    return SimSpec(
        design=design,
        scenario=sc,
        arms=arms,
        max_n=max_n,
        status0=status0,
        truth=truth,
        steps=steps,
        rules=tuple(design.rules),
        alloc_rules=tuple(alloc),
        endpoints=endpoints,
        fixed_allocation=fixed_allocation,
        max_patients=max_patients,
        max_duration=float(looks.max_duration_days),
        every_days=looks.days,
        every_patients=looks.every_patients,
        first_after=looks.first_after_patients,
        at_days=np.array(looks.at_days, float),
        final_analysis=looks.final_analysis,
        stop_on=frozenset(looks.stop_trial_on),
        n_patients=n_patients,
        max_delay=_max_delay(truth, [t is not None for t in truth_arms]),
        survival=survival,
        pair_batches=pair_batches,
        decision_endpoints=dec_eps,
        randomized_cohorts=tuple(tuple(index[a] for a in s.arms) for s in design.routing if s.is_randomized),
        rule_ids=tuple(r.id for r in design.rules),
    )


def _max_delay(truth: dict, has_truth) -> float:
    """Days after the last enrolment by which every outcome is known.

    The response (or its failure, at the latest at the arm's landmark) and 60-day mortality, over
    the arms the scenario gives a truth for.
    """
    sel = np.asarray(has_truth, bool)
    if not sel.any():
        return 60.0
    return float(max(truth["resp_hi"][sel].max(), truth["landmark"][sel].max(), 60.0))


def _rule_references(design: Design, endpoint: str) -> dict[str, set[float]]:
    refs: dict[str, set[float]] = {a: set() for a in design.arm_ids}
    for r in design.rules:
        if r.endpoint != endpoint:
            continue
        for tier in getattr(r, "tiers", (r,)):
            for arm, ref in getattr(tier, "references", {}).items():
                refs[arm].add(float(ref))
        for arm, ref in getattr(r, "success_references", {}).items():
            refs[arm].add(float(ref))
    for a in design.arm_ids:  # the null rate is always reported
        refs[a].add(float(design.arm(a).rates[endpoint].null_rate))
    return refs


def _endpoint_model(design: Design, endpoint: str, arms, max_n, table_options) -> EndpointModel:
    cfg = design.endpoints[endpoint].model
    spec = BINARY_ENDPOINTS[endpoint]
    null = np.array([design.arm(a).rates[endpoint].null_rate for a in arms])
    refs = _rule_references(design, endpoint)
    if cfg.kind == "independent_logit_normal" or len(getattr(cfg, "components", None) or ()) > 1:
        what = (
            "independent logit-normal models"
            if cfg.kind == "independent_logit_normal"
            else "EXNEX models with more than one exchangeable component"
        )
        raise ValueError(
            f"adaptive simulate cannot simulate endpoint {endpoint!r}: {what} are fitted at interim looks "
            "but not simulated yet (the simulator's exact engines cover independent Beta, hierarchical "
            "and one-component EXNEX models)"
        )
    if cfg.kind == "independent":
        a0, b0 = beta_prior(cfg.prior, null)
        return EndpointModel(
            endpoint, "beta", spec.direction == "higher_is_better", a0=a0, b0=b0, max_n=np.asarray(max_n)
        )
    j = max(len(v) for v in refs.values())
    thr = np.full((len(arms), j), np.nan)
    columns = {}
    for i, a in enumerate(arms):
        for c, ref in enumerate(sorted(refs[a])):
            thr[i, c] = ref
            columns[(i, ref)] = c
    after = np.array([design.arm(a).exchangeable_after for a in arms])
    comps = getattr(cfg, "components", None) or ()
    default_w = comps[0].w if comps else (cfg.w if cfg.kind == "exnex" else 1.0)
    group = set(design.borrowing_group(endpoint))
    w_base = np.array(
        [
            0.0  # outside the declared exchangeable set: its own prior, no borrowing
            if a not in group
            else design.arm(a).borrowing.w
            if design.arm(a).borrowing is not None and design.arm(a).borrowing.w is not None
            else default_w
            for a in arms
        ]
    )
    uses_weights = cfg.kind == "exnex" or bool(np.any(after > 0)) or bool(np.any(w_base != 1.0))
    nex = getattr(cfg, "nex", None)
    # comparisons read an independent Beta of the randomized patients; only the allocation rules
    # compare arms on the fitted (borrowing) model
    compare = sorted(
        {arms.index(a) for r in allocation_rules(design) if r.endpoint == endpoint for a in r.arms}
    )
    mu, tau = (comps[0].mu, comps[0].tau) if comps else (cfg.mu, cfg.tau)  # one component
    from models.batch import HierarchicalBatch

    batch = HierarchicalBatch(
        null,
        max_n,
        thr,
        compare=compare,
        mu_mean=mu.mean,
        mu_sd=mu.sd,
        tau_dist=tau.dist,
        tau_scale=tau.scale,
        tau_shape=tau.shape,
        w=w_base if uses_weights else None,
        nex_mean=nex.mean if nex is not None else 0.0,
        nex_sd=nex.sd if nex is not None else 2.0,
        **table_options,
    )
    return EndpointModel(
        endpoint,
        "hier",
        spec.direction == "higher_is_better",
        batch=batch,
        thresholds=columns,
        w_base=w_base,
        exchangeable_after=after,
        uses_weights=uses_weights,
    )


# ============================================================================= one chunk
#: looks whose allocation is traced per trial (``ChunkResult.alloc_trace``); a trial with more
#: interim looks has its later ones untraced (the summary says how many trials reached each look)
TRACE_LOOKS = 40


@dataclass
class ChunkResult:
    """Per-trial outcomes of a chunk (arrays over trials, and trials x arms)."""

    trial: np.ndarray
    status: np.ndarray  # (T, K) final status codes (STATUS_NAMES)
    decision: np.ndarray  # (T, K) index into DECISIONS of the closing action (0: none)
    decision_rule: np.ndarray  # (T, K) index into spec.rule_ids of the rule behind it (-1: none)
    decision_stage: np.ndarray  # (T, K) index into STAGES (-1: no decision)
    decision_time: np.ndarray  # (T, K) day of the closing decision (nan if none)
    decision_look: np.ndarray  # (T, K) look number of the decision (-1 if none)
    ever_flagged: np.ndarray  # (T, K) a harm rule's flag tier fired at some look
    ever_suspended: np.ndarray  # (T, K) enrolment was suspended at some look
    n_enrolled: np.ndarray  # (T, K)
    n_randomized: np.ndarray  # (T, K) patients entering by randomization
    n_evaluable: np.ndarray  # (T, K) CRc-evaluable at the end
    responders: np.ndarray  # (T, K)
    final_mean: np.ndarray  # (T, K) posterior mean of the CRc rate at the end
    final_prob_null: np.ndarray  # (T, K) P(CRc > null) at the end
    final_lo: np.ndarray  # (T, K) 2.5% point of the final CRc posterior (as Beta, looks.as_beta)
    final_hi: np.ndarray  # (T, K) 97.5% point
    truth_crc: np.ndarray  # (T, K) patient-averaged true CRc rate of the arm's patients
    duration: np.ndarray  # (T,) day of the last analysis
    n_looks: np.ndarray  # (T,)
    stopped_by_rule: np.ndarray  # (T,) bool: a stop_trial_on rule fired
    # allocation over time: each randomized arm's allocation probability in force after look j
    # (column 0: the start; nan for arms of no randomized cohort, and beyond the trial's looks)
    alloc_trace: np.ndarray  # (T, TRACE_LOOKS + 1, K) float32
    look_day: np.ndarray  # (T, TRACE_LOOKS + 1) float32: day of look j (0 for the start)


def itt_crc(truth: dict, response_days) -> np.ndarray:
    """Each arm's intention-to-treat CRc probability under a scenario (no drift).

    A patient counts as a CRc responder only when alive at the response assessment (a death
    before it is a failure, as in the derivation rules), so the ITT rate is the nominal CR + CRi
    probability times the probability of being alive on the assessment day (uniform over the
    arm's response days, as the simulator draws it) and of that day being on or before the arm's
    landmark (``truth["landmark"]``, when given). ``response_days`` is one ``(lo, hi)`` for
    every arm or one per arm (``(K, 2)``: an arm's own ``response_days``, else the scenario's).
    Operating characteristics classify arms as at their null or target by this rate, not the
    nominal one.
    """
    k = len(truth["cr"])
    days = np.broadcast_to(np.asarray(response_days, float).reshape(-1, 2), (k, 2))
    landmark = np.broadcast_to(np.asarray(truth.get("landmark", np.inf), float), (k,))
    alive = np.empty(k)
    for i, (lo, hi) in enumerate(days):
        d = np.arange(lo, hi + 1, dtype=float)
        by_landmark = d <= landmark[i]  # a response after the landmark is not one by the landmark
        surv = _survival(truth["m30"][i], truth["m60"][i], truth["median_os"][i], d)
        alive[i] = np.mean(surv * by_landmark)
    return (truth["cr"] + truth["cri"]) * alive


def _routing_arrays(spec: SimSpec, rule_of_step, rule_arms) -> dict[str, np.ndarray]:
    """The routing steps and allocation rules as padded arrays for the enrolment kernel."""
    n_steps = len(spec.steps)
    width = max([len(st["arms"]) for st in spec.steps] + [1])
    step_arms = np.full((n_steps, width), -1, np.int64)
    others = np.full((n_steps, width), -1, np.int64)
    step_n = np.zeros(n_steps, np.int64)
    others_n = np.zeros(n_steps, np.int64)
    for si, st in enumerate(spec.steps):
        step_arms[si, : len(st["arms"])] = st["arms"]
        step_n[si] = len(st["arms"])
        ri = rule_of_step[si]
        if ri is not None:  # arms of the step outside the cohort's rule: queued joiners
            extra = [a for a in st["arms"] if a not in rule_arms[ri]]
            others[si, : len(extra)] = extra
            others_n[si] = len(extra)
    rwidth = max([len(a) for a in rule_arms] + [1])
    r_arms = np.full((max(len(rule_arms), 1), rwidth), -1, np.int64)
    r_n = np.zeros(max(len(rule_arms), 1), np.int64)
    for ri, arms in enumerate(rule_arms):
        r_arms[ri, : len(arms)] = arms
        r_n[ri] = len(arms)
    return {
        "step_arms": step_arms,
        "step_n": step_n,
        "step_rand": np.array([bool(st["randomized"]) for st in spec.steps]),
        "step_pass": np.array([bool(st["passes_on"]) for st in spec.steps]),
        "rule_of_step": np.array([-1 if r is None else r for r in rule_of_step], np.int64),
        "rule_arms": r_arms,
        "rule_n": r_n,
        "others": others,
        "others_n": others_n,
    }


class _Chunk:
    """State of a chunk of virtual trials: the arms and look schedule of each trial.

    The parts: :class:`~adaptive.simulate.patients.Patients` (accrual, routing characteristics,
    outcomes, counts), :mod:`adaptive.simulate.looks` (posteriors and comparisons at a look),
    :mod:`adaptive.simulate.actions` (the rules' recommendations and one action per arm); this
    class enrols patients between looks, applies the actions, allocates, opens queued arms and
    schedules the next look.
    """

    def __init__(self, spec: SimSpec, seed: int, trials: np.ndarray):
        self.spec = spec
        t = len(trials)
        k = spec.k
        self.trials = trials
        self.seed = seed
        self.patients = Patients(spec, seed, trials)
        self.status = np.broadcast_to(spec.status0, (t, k)).copy()
        self.decision = np.zeros((t, k), np.int8)
        self.decision_rule = np.full((t, k), -1, np.int16)
        self.decision_stage = np.full((t, k), -1, np.int8)
        self.ever_flagged = np.zeros((t, k), bool)
        self.ever_suspended = np.zeros((t, k), bool)
        # day each arm opened (comparisons use patients enrolled once both arms were open)
        self.opened_at = np.where(np.isin(self.status, OPEN), 0.0, np.inf)
        self.enrolled = np.zeros((t, k), np.int64)
        self.n_rand = np.zeros((t, k), np.int64)
        self.total = np.zeros(t, np.int64)
        self.done = np.zeros(t, bool)  # enrolment over
        self.stopped = np.zeros(t, bool)
        self.decision_time = np.full((t, k), np.nan)
        self.decision_look = np.full((t, k), -1)
        self.n_looks = np.zeros(t, np.int64)
        self.last_time = np.zeros(t)
        self.end_time = np.full(t, np.nan)
        self.next_look_time = np.full(t, np.inf)
        self.next_look_count = np.full(t, np.iinfo(np.int64).max)
        if spec.every_patients is not None:
            self.next_look_count[:] = spec.first_after or spec.every_patients
        else:
            self.next_look_count[:] = spec.first_after if spec.first_after > 0 else np.iinfo(np.int64).max
            if spec.first_after == 0:
                self.next_look_time[:] = spec.at_days[0] if len(spec.at_days) else spec.every_days
        # allocation probabilities per randomized cohort (T, arms of the rule)
        # (rules, T, arms of the rule) in one array for the enrolment kernel; self.alloc are views
        width = max((len(r.arms) for r in spec.alloc_rules), default=1)
        self.alloc_arr = np.zeros((max(len(spec.alloc_rules), 1), t, width))
        for ri, r in enumerate(spec.alloc_rules):
            self.alloc_arr[ri, :, : len(r.arms)] = r.ratio_array / r.ratio_array.sum()
        self.alloc = [self.alloc_arr[ri, :, : len(r.arms)] for ri, r in enumerate(spec.alloc_rules)]
        self.alloc_trace = np.full((t, TRACE_LOOKS + 1, k), np.nan, np.float32)
        self.look_day = np.full((t, TRACE_LOOKS + 1), np.nan, np.float32)
        self.look_day[:, 0] = 0.0
        for ri, r in enumerate(spec.alloc_rules):
            self.alloc_trace[:, 0, [spec.arms.index(a) for a in r.arms]] = self.alloc[ri]
        self.patients.extend()
        self.final_mean = np.full((t, k), np.nan)
        self.final_prob_null = np.full((t, k), np.nan)
        # the final CRc posterior as Beta(a, b): its 95% interval is computed once, at the end
        self.final_a = np.full((t, k), np.nan)
        self.final_b = np.full((t, k), np.nan)
        self.rule_of_step = [
            next((i for i, r in enumerate(spec.alloc_rules) if r.cohort == st["cohort"]), None)
            for st in spec.steps
        ]
        self.rule_arms = [np.array([spec.arms.index(a) for a in r.arms]) for r in spec.alloc_rules]
        self.routing = _routing_arrays(spec, self.rule_of_step, self.rule_arms)
        self._queue_dates = date_breakpoints(spec.design)
        self._queue_memo: dict[tuple, tuple[int, ...]] = {}

    # ------------------------------------------------------------------ enrolment
    def _enrol(self, rows: np.ndarray) -> bool:
        """Enrol the trials' patients up to their next looks (:func:`adaptive.simulate.kernels.enrol`).

        Draws the outcomes of the patients enrolled; returns whether more patients must be drawn.
        """
        spec = self.spec
        pts = self.patients
        before = pts.ptr[rows].copy()
        r = self.routing
        need_more = enrol(
            rows, pts.ptr, pts.cap, spec.n_patients, spec.max_duration, spec.max_patients, spec.max_n,
            pts.arrival, pts.match, pts.u["assign"], self.status, self.enrolled, self.n_rand, self.total,
            pts.arm_of, pts.randomized, self.done, self.end_time, self.last_time, self.next_look_time,
            self.next_look_count, r["step_arms"], r["step_n"], r["step_rand"], r["step_pass"],
            r["rule_of_step"], r["rule_arms"], r["rule_n"], r["others"], r["others_n"], self.alloc_arr,
        )  # fmt: skip
        pts.outcomes_since(rows, before)
        return bool(need_more)

    # ------------------------------------------------------------------ looks
    def look(self, rows: np.ndarray, when: np.ndarray, final: bool = False) -> None:
        """One interim look (or the final analysis) for the trials ``rows`` at days ``when``."""
        if len(rows) == 0:
            return
        spec = self.spec
        post = looks.posteriors(spec, self.patients, rows, when)
        looks.mark_pair_rows(spec, self.status[rows], post)
        at_final = looks.stage_final(spec, self.status[rows], self.enrolled[rows], post, final)
        # each comparison's posterior once per look: its rule and coherence rule 2 both read it
        comparisons = {
            r.id: looks.comparison(spec, self.patients, self.opened_at, rows, when, r, post)
            for r in spec.rules
            if isinstance(r, Superiority)
        }
        status = self.status[rows]
        eligible = np.isin(status, OPEN)
        enrolling = (self.enrolled[rows] < spec.max_n) & ~at_final
        surv = (
            looks.survival_look(spec, self.patients, rows, when, eligible, enrolling, self.opened_at)
            if spec.survival
            else {}
        )
        fired, by_rule, stop = recommend_actions(spec, post, surv, comparisons, eligible, enrolling)
        self.n_looks[rows] += 1
        self.last_time[rows] = when
        chosen = choose_actions(spec, eligible, fired, at_final, comparisons)
        self._apply(rows, when, status, chosen, fired, by_rule, at_final)
        self._record_estimates(rows, post)
        if final:
            return
        if stop.any():
            self._stop(rows[stop], when[stop])
        live = ~self.done[rows]
        self._allocate(rows[live], post, np.nonzero(live)[0])
        self._trace(rows[live], when[live])
        self._queue(rows[live], when[live])
        self._schedule(rows, when)

    def _apply(self, rows, when, status, chosen, fired, by_rule, at_final) -> None:
        """Apply the chosen action per open arm (the simulated DSMB accepts every recommendation).

        ``status``: the arms' status codes before the look's actions.
        """
        spec = self.spec
        eligible = np.isin(status, OPEN)
        self.ever_flagged[rows] |= fired[Action.FLAG] & eligible
        for action, code in _CLOSED_BY.items():
            r, c = np.nonzero(chosen == action)
            if not len(r):
                continue
            self.status[rows[r], c] = code
            self.decision[rows[r], c] = _DECISION[action]
            rule_idx = by_rule[action][r, c] if action in by_rule else -1
            self.decision_rule[rows[r], c] = rule_idx
            self.decision_stage[rows[r], c] = np.where(at_final[r, c], _FINAL, _INTERIM)
            self.decision_time[rows[r], c] = when[r]
            self.decision_look[rows[r], c] = self.n_looks[rows[r]]
        # suspension and resumption (the simulated DSMB's policy, see the module docstring)
        suspend = chosen == Action.SUSPEND_ENROLMENT
        r, c = np.nonzero(suspend & (status != SUSPENDED))
        self.status[rows[r], c] = SUSPENDED
        self.ever_suspended[rows[r], c] = True
        resume = (status == SUSPENDED) & (chosen == None)  # noqa: E711
        r, c = np.nonzero(resume)
        self.status[rows[r], c] = np.where(self.enrolled[rows[r], c] >= spec.max_n[c], COMPLETE, ACTIVE)

    def _record_estimates(self, rows, post) -> None:
        """The CRc estimates at this analysis (the last one a trial has is its final estimate)."""
        spec = self.spec
        crc = post.get(PRIMARY_ENDPOINT)
        if crc is None:
            return
        mean, var = looks.mean_var(crc)
        self.final_mean[rows] = mean
        self.final_a[rows], self.final_b[rows] = looks.as_beta(crc, mean, var)
        null = np.array([_null_index(spec.design, a, PRIMARY_ENDPOINT) for a in spec.arms])
        if crc["model"].kind == "beta":
            em = crc["model"]
            self.final_prob_null[rows] = np.stack(
                [em.beta_prob_above(i, null[i], crc["n"][:, i], crc["y"][:, i]) for i in range(spec.k)], 1
            )
        else:
            cols = [crc["model"].thresholds[(i, float(null[i]))] for i in range(spec.k)]
            self.final_prob_null[rows] = crc["prob_above"][:, np.arange(spec.k), cols]

    def _stop(self, s_rows, when) -> None:
        """A ``stop_trial_on`` rule fired: every open arm completes, enrolment ends."""
        self.stopped[s_rows] = True
        st = self.status[s_rows]
        still = np.isin(st, OPEN)
        self.status[s_rows] = np.where(still, COMPLETED, st)
        self.decision[s_rows] = np.where(still, _DECISION[Action.COMPLETE], self.decision[s_rows])
        self.decision_stage[s_rows] = np.where(still, _STOPPED, self.decision_stage[s_rows])
        self.decision_time[s_rows] = np.where(still, when[:, None], self.decision_time[s_rows])
        self._end(s_rows, when)

    # ------------------------------------------------------------------ after a look
    def _allocate(self, rows, post, sel) -> None:
        spec = self.spec
        for ri, rule in enumerate(spec.alloc_rules):
            arms = [spec.arms.index(a) for a in rule.arms]
            is_open = self.status[rows][:, arms] == ACTIVE
            if rule.kind == "fixed":
                res = rule.allocate_arrays(is_open=is_open, previous=self.alloc[ri][rows])
            else:
                entry = post[rule.endpoint]
                n = entry["n"][sel][:, arms]
                mean, var = looks.mean_var(entry)
                if len(arms) == 2:
                    p = looks.prob_better(entry, arms[0], arms[1])[sel]
                    pb = np.stack([p, 1.0 - p], 1)
                elif entry["model"].kind == "beta":
                    pb = beta_prob_best(
                        entry["a"][sel][:, arms],
                        entry["b"][sel][:, arms],
                        higher_is_better=rule.higher_is_better,
                        is_open=is_open,
                    )
                else:
                    raise NotImplementedError("RAR over more than two arms needs the Beta model")
                res = rule.allocate_arrays(
                    is_open=is_open,
                    prob_best=pb,
                    variance=var[sel][:, arms],
                    n=n,
                    n_max=spec.max_n[arms],
                    previous=self.alloc[ri][rows],
                )
            self.alloc[ri][rows] = np.nan_to_num(res.probabilities)

    def _trace(self, rows, when) -> None:
        """Record the allocation in force after this look (``alloc_trace``, ``look_day``)."""
        j = self.n_looks[rows]
        keep = j <= TRACE_LOOKS
        rows, j = rows[keep], j[keep]
        self.look_day[rows, j] = when[keep]
        for ri, arms in enumerate(self.rule_arms):
            self.alloc_trace[rows[:, None], j[:, None], arms[None, :]] = self.alloc[ri][rows]

    def _queue(self, rows, when) -> None:
        """Open the queued arms that :func:`adaptive.queue.evaluate_queue` lets open.

        Its decisions depend only on the arms' statuses and on which ``earliest_on`` dates the
        look has passed (:func:`adaptive.queue.date_breakpoints`), so they are computed once per
        such combination.
        """
        spec = self.spec
        queued = (self.status[rows] == QUEUED).any(axis=1)
        if not queued.any():
            return
        design = spec.design
        start = spec.scenario.start_date
        for r, t in zip(rows[queued], when[queued], strict=True):
            day = start + timedelta(days=int(t))
            key = (self.status[r].tobytes(), bisect.bisect_right(self._queue_dates, day))
            opening = self._queue_memo.get(key)
            if opening is None:
                arms = tuple(
                    dataclasses.replace(a, status=STATUS_NAMES[int(self.status[r, i])])
                    for i, a in enumerate(design.arms)
                )
                d = dataclasses.replace(design, arms=arms)
                opening = tuple(spec.arms.index(dec.arm) for dec in evaluate_queue(d, day) if dec.opens)
                self._queue_memo[key] = opening
            for i in opening:
                self.status[r, i] = ACTIVE
                self.opened_at[r, i] = t

    def _schedule(self, rows, when) -> None:
        spec = self.spec
        if spec.every_patients is not None:
            self.next_look_count[rows] = self.total[rows] + spec.every_patients
            self.next_look_time[rows] = np.inf
        else:
            # the next of the given look days after this look, else every_days after it
            i = np.searchsorted(spec.at_days, when, side="right")
            given = spec.at_days[np.minimum(i, max(len(spec.at_days) - 1, 0))] if len(spec.at_days) else when
            self.next_look_time[rows] = np.where(i < len(spec.at_days), given, when + spec.every_days)
            self.next_look_count[rows] = np.iinfo(np.int64).max

    def _end(self, rows, when) -> None:
        self.done[rows] = True
        self.end_time[rows] = when

    def run(self) -> ChunkResult:
        spec = self.spec
        while True:
            # 1. enrol every live trial's patients up to its next look (calendar time or count)
            live = np.nonzero(~self.done)[0]
            while len(live) and self._enrol(live):
                self.patients.extend()
                live = np.nonzero(~self.done)[0]
            # 2. one batched look for every live trial that reached its look
            due = np.nonzero(~self.done & np.isfinite(self.next_look_time))[0]
            if len(due) == 0:
                if not (~self.done).any():
                    break
                continue
            when = self.next_look_time[due].copy()
            self.next_look_time[due] = np.inf
            self.look(due, when)

        # final analysis once every outcome of every enrolled patient is known
        rows = np.nonzero(~self.stopped)[0]
        when = np.where(np.isnan(self.end_time), spec.max_duration, self.end_time) + spec.max_delay
        if spec.final_analysis and len(rows):
            self.look(rows, when[rows], final=True)
        else:
            self.last_time[rows] = np.maximum(self.last_time[rows], self.end_time[rows])
        t_all = np.arange(len(self.trials))
        n_eval, resp = self.patients.counts(t_all, PRIMARY_ENDPOINT, np.full(len(t_all), np.inf))
        truth = self.patients.true_crc()
        return ChunkResult(
            trial=self.trials,
            status=self.status,
            decision=self.decision,
            decision_rule=self.decision_rule,
            decision_stage=self.decision_stage,
            decision_time=self.decision_time,
            decision_look=self.decision_look,
            ever_flagged=self.ever_flagged,
            ever_suspended=self.ever_suspended,
            n_enrolled=self.enrolled,
            n_randomized=self.n_rand,
            n_evaluable=n_eval,
            responders=resp,
            final_mean=self.final_mean,
            final_prob_null=self.final_prob_null,
            final_lo=special.betaincinv(self.final_a, self.final_b, 0.025),
            final_hi=special.betaincinv(self.final_a, self.final_b, 0.975),
            truth_crc=truth,
            duration=self.last_time,
            n_looks=self.n_looks,
            stopped_by_rule=self.stopped,
            alloc_trace=self.alloc_trace,
            look_day=self.look_day,
        )


#: trials simulated together in one pass of :func:`simulate_chunk`. A chunk's per-patient arrays
#: grow with its trials (~40 MB per 1,000 trials); past a few thousand trials every array is a
#: fresh allocation of untouched pages, and the two-arm design ran ~20% slower at 5,000 trials
#: and ~40% at 10,000 than in passes of 1,000 (fewer trials per pass pay more per-look overhead).
#: Trials are independent, so passes change no result.
PASS_TRIALS = 1000


def simulate_chunk(spec: SimSpec, seed: int, trials) -> ChunkResult:
    """Simulate the virtual trials with the given indices (deterministic given seed and indices).

    Runs them in consecutive passes of at most :data:`PASS_TRIALS` trials.
    """
    trials = np.asarray(trials, np.int64)
    if len(trials) <= PASS_TRIALS:
        return _Chunk(spec, seed, trials).run()
    parts = [
        _Chunk(spec, seed, trials[s : s + PASS_TRIALS]).run() for s in range(0, len(trials), PASS_TRIALS)
    ]
    return ChunkResult(
        **{
            f.name: np.concatenate([getattr(c, f.name) for c in parts])
            for f in dataclasses.fields(ChunkResult)
        }
    )
