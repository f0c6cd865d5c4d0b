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
  is uniform over the arm's ``response_days`` (else the scenario's). They become known as
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

import numpy as np
from scipy import special

from adaptive.config import Design
from adaptive.endpoints import BINARY_ENDPOINTS
from adaptive.queue import date_breakpoints, evaluate_queue
from adaptive.randomization import allocation_rules
from adaptive.scenario import Scenario
from adaptive.simulate.kernels import (
    ACTIVE,
    COMPLETE,
    QUEUED,
    SUSPENDED,
    count_known,
    count_known_randomized,
    enrol,
    survival_counts,
)
from adaptive.simulate.rng import trial_uniforms
from decision_rules.beta import beta_prior, beta_prob_above, beta_prob_best, beta_prob_better
from decision_rules.rules import Efficacy, Futility, Harm, PredictiveEfficacy, PredictiveFutility, Superiority
from decision_rules.survival import HazardRatioSuperiority, MedianEfficacy, MedianFutility
from decision_rules.vocabulary import PRECEDENCE, PRIMARY_ENDPOINT, Action, ArmStatus
from models.batch import HierarchicalBatch, tri_index, triangle
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
_OPEN = (ACTIVE, COMPLETE, SUSPENDED)
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
#: survival endpoints the simulator draws: overall survival from the scenario's death times
#: (the relapse-based EFS and RFS are not drawn yet)
SIMULATED_SURVIVAL = ("os",)


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

        The table holds :func:`decision_rules.beta.beta_prob_above` of every ``(n, y)`` with
        ``0 <= y <= n <= max_n`` (built on first use): the same numbers, computed once.
        """
        key = (arm, float(ref))
        tab = self._above.get(key)
        if tab is None:
            nn, yy = triangle(int(self.max_n[arm]))
            tab = beta_prob_above(self.a0[arm] + yy, self.b0[arm] + nn - yy, ref)
            self._above[key] = tab
        return tab[tri_index(n, y)]


@dataclass
class SurvivalModel:
    """How one survival endpoint's posterior is computed in the simulator.

    The interim's piecewise-exponential model (:meth:`adaptive.config.Design.survival_prior`:
    each arm's prior centre and shape group), its decision probabilities by
    :class:`models.survival_batch.SurvivalBatch`; follow-up ends ``follow_up`` days after
    enrolment.
    """

    name: str
    batch: SurvivalBatch
    cut_points: np.ndarray
    follow_up: float


def survival_rules_not_simulated(design: Design) -> dict[str, str]:
    """Survival rules the simulator cannot evaluate, with the reason (rule id -> reason)."""
    out = {}
    for r in design.rules:
        if getattr(r, "family", "") != "survival":
            continue
        if r.endpoint not in SIMULATED_SURVIVAL:
            out[r.id] = (
                f"{r.endpoint} is not simulated: the simulator draws overall survival only "
                "(relapse-based endpoints not yet)"
            )
        elif design.survival.endpoints[r.endpoint].model.kind != "independent":
            out[r.id] = (
                "hierarchical survival models are fitted at interim looks but not simulated (the "
                "simulator's engine covers independent arm levels)"
            )
    return out


def _survival_model(design: Design, endpoint: str, arms) -> SurvivalModel:
    cfg = design.survival.endpoints[endpoint].model
    medians, groups = design.survival_prior(endpoint, arms)
    cuts = tuple(float(c) for c in design.survival.cut_points_days)
    batch = SurvivalBatch(
        cuts,
        np.log(np.log(2.0) / np.asarray(medians)),
        cfg.level.sd,
        cfg.smoothing_sd,
        groups=groups,
    )
    return SurvivalModel(endpoint, batch, np.asarray(cuts), float(design.assessment.follow_up_days))


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
    skipped_rules: tuple[str, ...] = ()
    #: survival endpoints a simulated rule reads
    survival: dict[str, SurvivalModel] = field(default_factory=dict)
    #: per arm, the endpoints whose outcomes its decisions wait for (stage of the arm)
    decision_endpoints: tuple[tuple[str, ...], ...] = ()
    #: randomized cohorts: arm indices per cohort (more than one arm)
    randomized_cohorts: tuple[tuple[int, ...], ...] = ()
    #: rule ids in config order (decision attribution: ``decision_rule`` indexes this)
    rule_ids: tuple[str, ...] = ()

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
        final_analysis=looks.final_analysis,
        stop_on=frozenset(looks.stop_trial_on),
        n_patients=n_patients,
        max_delay=_max_delay(truth, [t is not None for t in truth_arms]),
        skipped_rules=skipped,
        survival=survival,
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


# ============================================================================= randomness
BLOCK = 256  # patients drawn per trial at a time
#: offset of the block numbers of the dropout stream (as :func:`trial_streams`, another stream)
DROPOUT_STREAM = 1 << 40


def trial_streams(seed: int, trials: np.ndarray, block: int, size: int = BLOCK) -> dict[str, np.ndarray]:
    """Uniforms for patients ``block * size ... (block + 1) * size - 1`` of the given trials.

    Trial ``i``'s block ``b`` comes from its own generator (SFC64 seeded from ``(seed, i, b)``,
    :mod:`adaptive.simulate.rng`): results do not depend on chunking, on the number of workers,
    or on how many patients other trials needed.
    """
    names = ("gap", "cov", "assign", "resp", "mrd", "death", "delay")
    widths = {"cov": 8}
    cols = np.cumsum([0] + [widths.get(n, 1) for n in names])
    raw = trial_uniforms(seed, trials, block, (size, int(cols[-1])))
    out = {}
    for j, n in enumerate(names):
        v = raw[..., cols[j] : cols[j + 1]]
        out[n] = v[..., 0] if v.shape[-1] == 1 else v  # views: the chunk copies them as it grows
    return out


# ============================================================================= one chunk
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
    final_lo: np.ndarray  # (T, K) 2.5% point of the final CRc posterior (see _Chunk._interval)
    final_hi: np.ndarray  # (T, K) 97.5% point
    truth_crc: np.ndarray  # (T, K) patient-averaged true CRc rate of the arm's patients
    duration: np.ndarray  # (T,) day of the last analysis
    n_looks: np.ndarray  # (T,)
    stopped_by_rule: np.ndarray  # (T,) bool: a stop_trial_on rule fired


def _survival(m30, m60, med, t):
    """``P(death time > t)`` of the piecewise-constant hazard of :func:`_vec_death_times`."""
    h1 = -np.log(1.0 - m30) / 30.0
    h2 = -np.log((1.0 - m60) / (1.0 - m30)) / 30.0
    h3 = np.log(2.0 * (1.0 - m60)) / (med - 60.0)
    return np.where(
        t <= 30,
        np.exp(-h1 * t),
        np.where(t <= 60, (1 - m30) * np.exp(-h2 * (t - 30)), (1 - m60) * np.exp(-h3 * (t - 60))),
    )


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


def response_known_time(t_arr, landmark) -> np.ndarray:
    """Day on which a response endpoint becomes known: the arm's landmark, whatever the outcome.

    As :func:`adaptive.derive.derive_patient`: the endpoint is a response by the landmark and every
    patient counts once the landmark has passed (counting responders or deaths earlier would let
    the timing of an outcome decide whether it is counted at a look, which biases interim
    estimates).
    """
    return t_arr + landmark


def _vec_death_times(m30, m60, med, u):
    s = 1.0 - u
    h1 = -np.log(1.0 - m30) / 30.0
    h2 = np.maximum(-np.log((1.0 - m60) / (1.0 - m30)) / 30.0, 1e-12)
    h3 = np.log(2.0 * (1.0 - m60)) / (med - 60.0)
    return np.where(
        s >= 1.0 - m30,
        -np.log(s) / h1,
        np.where(s >= 1.0 - m60, 30.0 - np.log(s / (1.0 - m30)) / h2, 60.0 - np.log(s / (1.0 - m60)) / h3),
    )


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
    """State of a chunk of virtual trials."""

    def __init__(self, spec: SimSpec, seed: int, trials: np.ndarray):
        self.spec = spec
        t = len(trials)
        k = spec.k
        self.trials = trials
        self.seed = seed
        self.cap = 0  # patients drawn so far per trial (per-patient arrays grow by blocks)
        self.ptr = np.zeros(t, np.int64)  # next patient of each trial (those before it are enrolled or not)
        self.u = {}
        self.arrival = np.zeros((t, 0))
        self.match = np.zeros((t, 0, len(spec.steps)), bool)
        self.arm_of = np.zeros((t, 0), np.int64)
        self.randomized = np.zeros((t, 0), bool)
        self.value = {
            e: np.zeros((t, 0)) for e in ("crc", "orr", "mrd_negative_cr", "mortality_30d", "mortality_60d")
        }
        self.known = {e: np.zeros((t, 0)) for e in self.value}
        self.truth_crc = np.zeros((t, 0))
        # days from enrolment to death and to dropout (survival endpoints)
        self.death = np.zeros((t, 0))
        self.dropout = np.zeros((t, 0))
        self.status = np.broadcast_to(spec.status0, (t, k)).copy()
        self.decision = np.zeros((t, k), np.int8)
        self.decision_rule = np.full((t, k), -1, np.int16)
        self.decision_stage = np.full((t, k), -1, np.int8)
        self.ever_flagged = np.zeros((t, k), bool)
        self.ever_suspended = np.zeros((t, k), bool)
        # day each arm opened (comparisons use patients enrolled once both arms were open)
        self.opened_at = np.where(np.isin(self.status, _OPEN), 0.0, np.inf)
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
                self.next_look_time[:] = spec.every_days
        # allocation probabilities per randomized cohort (T, arms of the rule)
        # (rules, T, arms of the rule) in one array for the enrolment kernel; self.alloc are views
        width = max((len(r.arms) for r in spec.alloc_rules), default=1)
        self.alloc_arr = np.zeros((max(len(spec.alloc_rules), 1), t, width))
        for ri, r in enumerate(spec.alloc_rules):
            self.alloc_arr[ri, :, : len(r.arms)] = r.ratio_array / r.ratio_array.sum()
        self.alloc = [self.alloc_arr[ri, :, : len(r.arms)] for ri, r in enumerate(spec.alloc_rules)]
        self._extend()
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

    # ------------------------------------------------------------------ patients
    def _extend(self) -> None:
        """Draw the next block of patients of every trial."""
        t = len(self.trials)
        block = self.cap // BLOCK
        u = trial_streams(self.seed, self.trials, block)
        gap = 30.4375 / self.spec.scenario.accrual_per_month
        start = self.arrival[:, -1:] if self.cap else np.zeros((t, 1))
        arrival = start + np.cumsum(-np.log1p(-u["gap"]) * gap, axis=1)
        cat = np.concatenate
        self.u = {n: cat([self.u[n], v], axis=1) if self.u else v for n, v in u.items()}
        self.arrival = cat([self.arrival, arrival], axis=1)
        self.match = cat([self.match, self._routing_matrix(u["cov"])], axis=1)
        self.arm_of = cat([self.arm_of, np.full((t, BLOCK), -1, np.int64)], axis=1)
        self.randomized = cat([self.randomized, np.zeros((t, BLOCK), bool)], axis=1)
        for e in self.value:
            self.value[e] = cat([self.value[e], np.zeros((t, BLOCK))], axis=1)
            self.known[e] = cat([self.known[e], np.full((t, BLOCK), np.inf)], axis=1)
        self.truth_crc = cat([self.truth_crc, np.zeros((t, BLOCK))], axis=1)
        self.death = cat([self.death, np.full((t, BLOCK), np.inf)], axis=1)
        rate = self.spec.scenario.dropout_per_year
        if self.spec.survival and rate > 0:
            # a stream of its own (block numbers far from the patients'), so that the other
            # draws are the same whether or not survival is simulated
            u_drop = trial_uniforms(self.seed, self.trials, block + DROPOUT_STREAM, (BLOCK,))
            dropout = -np.log1p(-u_drop) * 365.25 / rate
        else:
            dropout = np.full((t, BLOCK), np.inf)
        self.dropout = cat([self.dropout, dropout], axis=1)
        self.cap += BLOCK

    def _routing_matrix(self, u_cov) -> np.ndarray:
        prev = self.spec.scenario.prevalence
        flt3 = u_cov[..., 2] < prev.flt3
        tkd = flt3 & (u_cov[..., 3] < prev.flt3_tkd_given_flt3)
        kt = list(prev.karyotype_risk)
        kp = np.cumsum([prev.karyotype_risk[x] for x in kt])
        kp = kp / kp[-1]
        kidx = np.minimum(np.searchsorted(kp, u_cov[..., 7], side="right"), len(kt) - 1)
        cov = {
            "new_drug_eligible": u_cov[..., 0] < prev.new_drug_eligible,
            "idh1": u_cov[..., 1] < prev.idh1,
            "flt3_itd": flt3 & ~tkd,
            "flt3_tkd": tkd,
            "intensive_eligible": u_cov[..., 4] < prev.intensive_eligible,
            "prior_venetoclax_3m": u_cov[..., 5] < prev.prior_venetoclax_3m,
        }
        karyo = np.array(kt)[kidx]

        def holds(cond):
            out = np.ones(u_cov.shape[:2], bool)
            for c, v in cond.items():
                out &= (karyo == v) if c == "karyotype_risk" else (cov[c] == v)
            return out

        mats = []
        for s in self.spec.steps:
            m = holds(s["when"])
            if s["when_any"]:
                anym = np.zeros_like(m)
                for alt in s["when_any"]:
                    anym |= holds(alt)
                m &= anym
            mats.append(m)
        return np.stack(mats, axis=-1)

    def _enrol(self, rows: np.ndarray) -> bool:
        """Enrol the trials' patients up to their next looks (:func:`adaptive.simulate.kernels.enrol`).

        Draws the outcomes of the patients enrolled; returns whether more patients must be drawn.
        """
        spec = self.spec
        ptr = self.ptr
        before = ptr[rows].copy()
        r = self.routing
        need_more = enrol(
            rows, ptr, self.cap, spec.n_patients, spec.max_duration, spec.max_patients, spec.max_n,
            self.arrival, self.match, self.u["assign"], self.status, self.enrolled, self.n_rand, self.total,
            self.arm_of, self.randomized, self.done, self.end_time, self.last_time, self.next_look_time,
            self.next_look_count, r["step_arms"], r["step_n"], r["step_rand"], r["step_pass"],
            r["rule_of_step"], r["rule_arms"], r["rule_n"], r["others"], r["others_n"], self.alloc_arr,
        )  # fmt: skip
        idx = np.arange(self.cap)
        new = (idx >= before[:, None]) & (idx < ptr[rows][:, None]) & (self.arm_of[rows] >= 0)
        i, p = np.nonzero(new)
        if len(i):
            self._outcomes(rows[i], p, self.arm_of[rows[i], p])
        return bool(need_more)

    def _outcomes(self, rows, p, arm):
        """Draw the outcomes of patient ``p[i]`` of trial ``rows[i]`` on arm ``arm[i]``."""
        tr = self.spec.truth
        t_arr = self.arrival[rows, p]
        if not np.any(tr["trend"]):
            cr, cri = tr["cr"][arm], tr["cri"][arm]
        else:
            cr, cri = self._drifted(arm, t_arr)
        self._draw(rows, p, arm, t_arr, cr, cri)

    def _drifted(self, arm, t_arr):
        """CR and CRi probabilities shifted on the log-odds scale by the calendar-time trend."""
        tr = self.spec.truth
        shift = tr["trend"][arm] * t_arr / 365.25
        cr = np.where(
            tr["cr"][arm] > 0,
            special.expit(special.logit(np.clip(tr["cr"][arm], 1e-12, 1 - 1e-12)) + shift),
            0.0,
        )
        cri = np.where(
            tr["cri"][arm] > 0,
            special.expit(special.logit(np.clip(tr["cri"][arm], 1e-12, 1 - 1e-12)) + shift),
            0.0,
        )
        return cr, cri

    def _draw(self, rows, p, arm, t_arr, cr, cri):
        tr = self.spec.truth
        pr, ne = tr["pr"][arm], tr["ne"][arm]
        total = cr + cri + pr + ne
        scale = np.where(total > 1.0, 1.0 / total, 1.0)
        cum = np.stack([cr, cr + cri, cr + cri + pr, cr + cri + pr + ne], 1) * scale[:, None]
        cat = (self.u["resp"][rows, p][:, None] >= cum).sum(1)  # 0 CR, 1 CRi, 2 PR, 3 NE, 4 NR
        death = _vec_death_times(
            tr["m30"][arm], tr["m60"][arm], tr["median_os"][arm], self.u["death"][rows, p]
        )
        self.death[rows, p] = death
        lo, hi = tr["resp_lo"][arm], tr["resp_hi"][arm]
        resp_day = lo + np.floor(self.u["delay"][rows, p] * (hi - lo + 1))
        landmark = tr["landmark"][arm]
        # a response by the landmark (alive on the response day), as adaptive.derive.derive_patient
        alive = (death >= resp_day) & (resp_day <= landmark)
        crc = (cat <= 1) & alive
        orr = (cat <= 2) & alive
        # known at the landmark, whatever the outcome
        known = response_known_time(t_arr, landmark)
        need = self.spec.endpoints
        self.value["crc"][rows, p] = crc
        self.known["crc"][rows, p] = known
        if "orr" in need:
            self.value["orr"][rows, p] = orr
            self.known["orr"][rows, p] = known
        if "mrd_negative_cr" in need:  # follows CRc (the MRD status comes with the response)
            self.value["mrd_negative_cr"][rows, p] = crc & (self.u["mrd"][rows, p] < tr["mrd"][arm])
            self.known["mrd_negative_cr"][rows, p] = self.known["crc"][rows, p]
        for e, days in (("mortality_30d", 30.0), ("mortality_60d", 60.0)):
            if e in need:
                self.value[e][rows, p] = death <= days
                self.known[e][rows, p] = t_arr + np.minimum(death, days)
        # the patient's true probability of counting as a CRc responder (alive at assessment)
        self.truth_crc[rows, p] = (
            cum[:, 1] * _survival(tr["m30"][arm], tr["m60"][arm], tr["median_os"][arm], resp_day)
        ) * (resp_day <= landmark)

    # ------------------------------------------------------------------ looks
    def counts(self, rows, endpoint, when) -> tuple[np.ndarray, np.ndarray]:
        """Evaluable patients and responders per arm, ``(len(rows), K)``, as of ``when``."""
        rows = np.asarray(rows, np.int64)
        when = np.broadcast_to(np.asarray(when, float), rows.shape).copy()
        return count_known(
            rows, self.ptr, self.arm_of, self.known[endpoint], self.value[endpoint], when, self.spec.k
        )

    def _posteriors(self, rows, when):
        spec = self.spec
        post = {}
        for name, em in spec.endpoints.items():
            n, y = self.counts(rows, name, when)
            entry = {"n": n, "y": y, "model": em}
            if em.kind == "beta":
                entry["a"] = em.a0 + y
                entry["b"] = em.b0 + n - y
            else:
                w = None
                if em.uses_weights:
                    w = np.where(n >= em.exchangeable_after, em.w_base, 0.0)
                bp = em.batch.posterior(n, y, w=w)
                entry["batch"] = bp
                entry["mean"], entry["var"] = bp.mean_var()
                entry["prob_above"] = bp.prob_above()
            post[name] = entry
        return post

    @staticmethod
    def _prob_above(entry, arm: int, ref: float) -> np.ndarray:
        em = entry["model"]
        if em.kind == "beta":
            return em.beta_prob_above(arm, ref, entry["n"][:, arm], entry["y"][:, arm])
        return entry["prob_above"][:, arm, em.thresholds[(arm, float(ref))]]

    @staticmethod
    def _mean_var(entry) -> tuple[np.ndarray, np.ndarray]:
        if entry["model"].kind == "beta":
            a, b = entry["a"], entry["b"]
            s = a + b
            return a / s, a * b / (s * s * (s + 1.0))
        return entry["mean"], entry["var"]

    @staticmethod
    def _as_beta(entry, mean: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The CRc posterior as ``Beta(a, b)``.

        Exact for conjugate arms; for hierarchical and EXNEX models the Beta with the marginal
        posterior's mean and variance (the quadrature engine gives moments and tail probabilities
        at the rules' thresholds, not quantiles).
        """
        if entry["model"].kind == "beta":
            return entry["a"], entry["b"]
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.maximum(mean * (1.0 - mean) / var - 1.0, 1e-6)
        return mean * s, (1.0 - mean) * s

    @staticmethod
    def _prob_better(entry, i: int, j: int) -> np.ndarray:
        """``P(arm i better than arm j)``, computed once per look and endpoint.

        Hierarchical models compute it only for the trials where a rule or an allocation will
        use it (``entry["pair_rows"]``, set by :meth:`_pair_rows`); the others get NaN.
        """
        cache = entry.setdefault("pairs", {})
        if (j, i) in cache:
            return 1.0 - cache[(j, i)]
        if (i, j) not in cache:
            em = entry["model"]
            if em.kind == "beta":
                a, b = entry["a"], entry["b"]
                pb = beta_prob_best(a[:, [i, j]], b[:, [i, j]], higher_is_better=em.higher_is_better)
                cache[(i, j)] = pb[:, 0]
            else:
                rows = entry.get("pair_rows", {}).get(frozenset((i, j)))
                cache[(i, j)] = entry["batch"].prob_better(i, j, em.higher_is_better, rows=rows)
        return cache[(i, j)]

    def _pair_rows(self, rows, post) -> None:
        """Mark which trials need each compared pair's probability on the fitted model.

        Only adaptive allocations past their burn-in (both arms open) compare arms on the fitted
        model; comparison rules read their own independent Beta posterior (:meth:`_comparison`).
        """
        spec = self.spec
        idx = {a: i for i, a in enumerate(spec.arms)}
        status = self.status[rows]
        need: dict[tuple, np.ndarray] = {}
        for rule in spec.alloc_rules:
            if rule.kind == "fixed" or len(rule.arms) != 2:
                continue
            i, j = idx[rule.arms[0]], idx[rule.arms[1]]
            n = post[rule.endpoint]["n"]
            ok = (status[:, i] == ACTIVE) & (status[:, j] == ACTIVE)
            ok &= np.minimum(n[:, i], n[:, j]) >= rule.burn_in
            key = (rule.endpoint, frozenset((i, j)))
            need[key] = need.get(key, np.zeros(len(rows), bool)) | ok
        for (endpoint, pair), mask in need.items():
            post[endpoint].setdefault("pair_rows", {})[pair] = np.nonzero(mask)[0]

    def _comparison(self, rows, when, rule: Superiority) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(P(a better), P(b better), min evaluable)`` of a superiority rule, per trial of ``rows``.

        As in `adaptive interim`: the concurrently randomized patients (randomized, arrived once
        both arms were open) with the rule's independent conjugate Beta prior per arm.
        """
        spec = self.spec
        i, j = spec.arms.index(rule.arms[0]), spec.arms.index(rule.arms[1])
        since = np.maximum(self.opened_at[rows, i], self.opened_at[rows, j])
        since = np.where(np.isfinite(since), since, np.inf)
        when = np.broadcast_to(np.asarray(when, float), rows.shape).copy()
        n, y = count_known_randomized(
            rows, self.ptr, self.arm_of, self.known[rule.endpoint], self.value[rule.endpoint], when,
            spec.k, self.randomized, self.arrival, since,
        )  # fmt: skip
        a_, b_ = rule.posterior_ab(
            {x: n[:, k] for x, k in zip(rule.arms, (i, j), strict=True)},
            {x: y[:, k] for x, k in zip(rule.arms, (i, j), strict=True)},
        )
        first, second = rule.arms
        hib = rule.higher_is_better
        p_ij = beta_prob_better(
            a_[first], b_[first], a_[second], b_[second], rule.margin_rate, higher_is_better=hib
        )
        p_ji = (
            1.0 - p_ij
            if rule.margin_rate == 0.0
            else beta_prob_better(
                a_[second], b_[second], a_[first], b_[first], rule.margin_rate, higher_is_better=hib
            )
        )
        return p_ij, p_ji, np.minimum(n[:, i], n[:, j])

    def _stage_final(self, rows, post, final: bool) -> np.ndarray:
        """Which open arms are at their final analysis, ``(len(rows), K)``.

        An arm is when it has its ``max_n`` and no outcome pending on its decision endpoints; an
        arm of a randomized cohort only with every other open arm of the cohort. At the trial's
        own final analysis (``final``) every open arm is.
        """
        spec = self.spec
        is_open = np.isin(self.status[rows], _OPEN)
        if final:
            return is_open
        enrolled = self.enrolled[rows]
        own = is_open & (enrolled >= spec.max_n)
        for k, eps in enumerate(spec.decision_endpoints):
            for ep in eps:
                own[:, k] &= post[ep]["n"][:, k] >= enrolled[:, k]
        out = own.copy()
        for cohort in spec.randomized_cohorts:
            cols = list(cohort)
            ready = np.all(own[:, cols] | ~is_open[:, cols], axis=1)
            out[:, cols] &= ready[:, None]
        return out

    def _survival_look(self, rows, when, eligible, enrolling) -> dict[str, dict]:
        """Per survival endpoint: events per arm, where each rule can fire, and the posterior there.

        The posterior (:class:`models.survival_batch.SurvivalBatch`) is computed only for the
        trials where some rule has its minimum of events on an arm it may act on, and for the
        arms the rules read.
        """
        spec = self.spec
        idx = {a: i for i, a in enumerate(spec.arms)}
        when = np.broadcast_to(np.asarray(when, float), rows.shape).copy()
        out = {}
        for ep, sm in spec.survival.items():
            d, e = survival_counts(
                rows, self.ptr, self.arm_of, self.arrival, self.death, self.dropout, when, sm.follow_up,
                sm.cut_points, spec.k,
            )  # fmt: skip
            ev = d.sum(-1)
            masks = {}
            for rule in spec.rules:
                if getattr(rule, "family", "") != "survival" or rule.endpoint != ep:
                    continue
                if isinstance(rule, HazardRatioSuperiority):
                    a, b = idx[rule.arms[0]], idx[rule.arms[1]]
                    ok = (
                        eligible[:, a]
                        & eligible[:, b]
                        & (np.minimum(ev[:, a], ev[:, b]) >= rule.min_evaluable)
                    )
                    masks[rule.id] = {(a, b): ok}
                else:
                    m = {}
                    for arm in rule.references:
                        i = idx[arm]
                        ok = eligible[:, i] & (ev[:, i] >= rule.min_evaluable)
                        if isinstance(rule, MedianFutility):  # futility acts only while an arm enrols
                            ok &= enrolling[:, i]
                        m[i] = ok
                    masks[rule.id] = m
            union = np.zeros(len(rows), bool)
            need = set()
            for m in masks.values():
                for key, ok in m.items():
                    union |= ok
                    if ok.any():
                        need |= set(key) if isinstance(key, tuple) else {key}
            sel = np.nonzero(union)[0]
            pos = np.cumsum(union) - 1
            post = sm.batch.posterior(d[sel], e[sel], need=sorted(need)) if len(sel) else None
            out[ep] = {"events": ev, "masks": masks, "pos": pos, "post": post}
        return out

    def _fired(self, rows, post, comparisons, at_final: np.ndarray, when=None):
        """Per action, which arms the rules recommend it for (and the first rule that did).

        Returns ``(fired, by_rule, stop)``: action -> ``(R, K)`` bool, action -> ``(R, K)`` rule
        index (-1: none), and whether a ``stop_trial_on`` rule fired. Only open arms are
        evaluated; futility and predictive rules only arms still enrolling (stage ``interim``:
        futility stops enrolment, and an arm with its ``max_n`` has nothing left to stop).
        Survival rules (``when``: the look's days) read the events as of the look: median rules
        ``P(median > reference)`` per arm, hazard-ratio rules both directions of the pair, as
        :class:`~decision_rules.survival.HazardRatioSuperiority` does.
        """
        spec = self.spec
        eligible = np.isin(self.status[rows], _OPEN)
        enrolling = (self.enrolled[rows] < spec.max_n) & ~at_final
        idx = {a: i for i, a in enumerate(spec.arms)}
        surv = self._survival_look(rows, when, eligible, enrolling) if spec.survival else {}
        shape = (len(rows), spec.k)
        actions = (*PRECEDENCE, Action.FLAG)
        fired = {a: np.zeros(shape, bool) for a in actions}
        by_rule = {a: np.full(shape, -1, np.int16) for a in actions}
        stop = np.zeros(len(rows), bool)

        def mark(action, col, f, rule_index, sel=slice(None)):
            """Record that ``rule_index`` fires ``action`` for arm ``col`` (the first rule is kept)."""
            before = by_rule[action][sel, col]
            by_rule[action][sel, col] = np.where(f & (before < 0), rule_index, before)
            fired[action][sel, col] |= f

        for ri, rule in enumerate(spec.rules):
            if getattr(rule, "family", "") == "survival":
                sv = surv[rule.endpoint]
                ev = sv["events"]
                for key, ok in sv["masks"][rule.id].items():
                    sel = np.nonzero(ok)[0]
                    if not len(sel):
                        continue
                    at = sv["pos"][sel]
                    if isinstance(rule, HazardRatioSuperiority):
                        a, b = key
                        p_ab = sv["post"].prob_hr_below(a, b, rule.hr_margin)[at]
                        p_ba = sv["post"].prob_hr_below(b, a, rule.hr_margin)[at]
                        nmin = np.minimum(ev[sel, a], ev[sel, b])
                        # the more probable direction, as HazardRatioSuperiority.evaluate
                        f_a = rule.decide_arrays(p_ab, nmin) & (p_ab >= p_ba)  # a better: b inferior
                        f_b = rule.decide_arrays(p_ba, nmin) & (p_ba > p_ab)
                        mark(Action.DROP_INFERIOR, b, f_a, ri, sel)
                        mark(Action.DROP_INFERIOR, a, f_b, ri, sel)
                        f = f_a | f_b
                    else:
                        i = key
                        prob = sv["post"].prob_median_above(i, rule.references[spec.arms[i]])[at]
                        f = rule.decide_arrays(prob, ev[sel, i])
                        mark(rule.action, i, f, ri, sel)
                    if rule.id in spec.stop_on:
                        stop[sel] |= f
                continue
            entry = post[rule.endpoint]
            n = entry["n"]
            if isinstance(rule, Superiority):
                i, j = idx[rule.arms[0]], idx[rule.arms[1]]
                both = eligible[:, i] & eligible[:, j]
                p_ij, p_ji, nmin = comparisons[rule.id]
                f_ij = rule.decide_arrays(p_ij, nmin) & both  # i better: j inferior
                f_ji = rule.decide_arrays(p_ji, nmin) & both
                mark(Action.DROP_INFERIOR, j, f_ij, ri)
                mark(Action.DROP_INFERIOR, i, f_ji, ri)
                if rule.id in spec.stop_on:
                    stop |= f_ij | f_ji
                continue
            if isinstance(rule, PredictiveFutility | PredictiveEfficacy):
                for arm, _ref in rule.success_references.items():
                    i = idx[arm]
                    ok = eligible[:, i] & enrolling[:, i] & (n[:, i] >= rule.min_evaluable)
                    sel = np.nonzero(ok)[0]
                    if len(sel) == 0:
                        continue
                    if entry["model"].kind == "beta":
                        a, b = entry["a"][sel, i], entry["b"][sel, i]
                    else:  # moment-matched Beta of the arm's exact marginal posterior
                        m, v = entry["mean"][sel, i], np.maximum(entry["var"][sel, i], 1e-12)
                        s = np.maximum(m * (1 - m) / v - 1.0, 1e-6)
                        a, b = m * s, (1 - m) * s
                    _, _, f = rule.decide_beta_arrays(a, b, np.minimum(n[sel, i], spec.max_n[i]), arm)
                    mark(rule.action, i, f, ri, sel)
                    if rule.id in spec.stop_on:
                        stop[sel] |= f
                continue
            for tier in getattr(rule, "tiers", (rule,)):
                for arm, ref in tier.references.items():
                    i = idx[arm]
                    f = tier.decide_arrays(self._prob_above(entry, i, ref), n[:, i]) & eligible[:, i]
                    if isinstance(rule, Futility):
                        f &= enrolling[:, i]
                    mark(tier.action, i, f, ri)
                    if rule.id in spec.stop_on and tier.action != Action.FLAG:
                        stop |= f
        return fired, by_rule, stop

    def _decide(self, rows, when, fired, by_rule, at_final, comparisons) -> None:
        """Apply one action per open arm (the simulated DSMB accepts every recommendation)."""
        spec = self.spec
        status = self.status[rows]
        eligible = np.isin(status, _OPEN)
        chosen = np.full(status.shape, None, object)
        # interim looks: the precedence of adaptive.recommend (flag changes nothing)
        interim = eligible & ~at_final
        for action in PRECEDENCE:
            if action in (Action.FLAG, Action.COMPLETE):
                continue
            pick = fired[action] & interim & (chosen == None)  # noqa: E711
            chosen[pick] = action
        # final analyses: safety, then the comparison, then the efficacy criterion, else complete
        final = eligible & at_final
        for action in (Action.DROP_HARM, Action.DROP_INFERIOR, Action.GRADUATE):
            pick = fired[action] & final & (chosen == None)  # noqa: E711
            chosen[pick] = action
        chosen[final & (chosen == None)] = Action.COMPLETE  # noqa: E711
        # coherence rule 2a: comparisons of a randomized pair that find opposite arms inferior at
        # one look close neither (adaptive.recommend.check_coherence)
        for cohort in spec.randomized_cohorts:
            cols = list(cohort)
            for a_i, x in enumerate(cols):
                for y in cols[a_i + 1 :]:
                    both = (chosen[:, x] == Action.DROP_INFERIOR) & (chosen[:, y] == Action.DROP_INFERIOR)
                    both &= eligible[:, x] & eligible[:, y]
                    for c in (x, y):  # at a final analysis the arm completes instead
                        chosen[both, c] = np.where(at_final[both, c], Action.COMPLETE, None)
        # coherence rule 2: never close the leading arm of an open comparison for a non-safety
        # reason while the trailing arm stays open
        for rule in spec.rules:
            if not isinstance(rule, Superiority) or rule.endpoint != PRIMARY_ENDPOINT:
                continue
            i, j = spec.arms.index(rule.arms[0]), spec.arms.index(rule.arms[1])
            p_ij, _, _ = comparisons[rule.id]
            lead = np.where(p_ij >= 0.5, i, j)
            trail = np.where(p_ij >= 0.5, j, i)
            r_idx = np.arange(len(rows))
            lead_act = chosen[r_idx, lead]
            trail_stays = eligible[r_idx, trail] & (chosen[r_idx, trail] == None)  # noqa: E711
            withhold = (
                eligible[r_idx, lead]
                & ~at_final[r_idx, lead]
                & np.isin(lead_act, [Action.DROP_FUTILITY, Action.GRADUATE, Action.DROP_INFERIOR])
                & trail_stays
            )
            chosen[r_idx[withhold], lead[withhold]] = None
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

    def look(self, rows: np.ndarray, when: np.ndarray, final: bool = False) -> None:
        """One interim look (or the final analysis) for the trials ``rows`` at days ``when``."""
        if len(rows) == 0:
            return
        spec = self.spec
        post = self._posteriors(rows, when)
        self._pair_rows(rows, post)
        at_final = self._stage_final(rows, post, final)
        # each comparison's posterior once per look: its rule and coherence rule 2 both read it
        comparisons = {
            r.id: self._comparison(rows, when, r) for r in spec.rules if isinstance(r, Superiority)
        }
        fired, by_rule, stop = self._fired(rows, post, comparisons, at_final, when)
        self.n_looks[rows] += 1
        self.last_time[rows] = when
        self._decide(rows, when, fired, by_rule, at_final, comparisons)
        # estimates at this analysis (the last one a trial has is its final estimate)
        crc = post.get(PRIMARY_ENDPOINT)
        if crc is not None:
            mean, var = self._mean_var(crc)
            self.final_mean[rows] = mean
            self.final_a[rows], self.final_b[rows] = self._as_beta(crc, mean, var)
            null = np.array([_null_index(spec.design, a, PRIMARY_ENDPOINT) for a in spec.arms])
            if crc["model"].kind == "beta":
                em = crc["model"]
                self.final_prob_null[rows] = np.stack(
                    [em.beta_prob_above(i, null[i], crc["n"][:, i], crc["y"][:, i]) for i in range(spec.k)], 1
                )
            else:
                cols = [crc["model"].thresholds[(i, float(null[i]))] for i in range(spec.k)]
                self.final_prob_null[rows] = crc["prob_above"][:, np.arange(spec.k), cols]
        if final:
            return
        if stop.any():
            s_rows = rows[stop]
            self.stopped[s_rows] = True
            st = self.status[s_rows]
            still = np.isin(st, _OPEN)
            self.status[s_rows] = np.where(still, COMPLETED, st)
            self.decision[s_rows] = np.where(still, _DECISION[Action.COMPLETE], self.decision[s_rows])
            self.decision_stage[s_rows] = np.where(still, _STOPPED, self.decision_stage[s_rows])
            self.decision_time[s_rows] = np.where(still, when[stop][:, None], self.decision_time[s_rows])
            self._end(s_rows, when[stop])
        live = ~self.done[rows]
        self._allocate(rows[live], post, np.nonzero(live)[0])
        self._queue(rows[live], when[live])
        self._schedule(rows, when)

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
                mean, var = self._mean_var(entry)
                if len(arms) == 2:
                    p = self._prob_better(entry, arms[0], arms[1])[sel]
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
            self.next_look_time[rows] = when + spec.every_days
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
                self._extend()
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
        n_eval, resp = self.counts(t_all, PRIMARY_ENDPOINT, np.full(len(t_all), np.inf))
        truth = np.full((len(t_all), spec.k), np.nan)
        for i in range(spec.k):
            mask = self.arm_of == i
            cnt = mask.sum(1)
            truth[:, i] = np.where(
                cnt > 0,
                (self.truth_crc * mask).sum(1) / np.maximum(cnt, 1),
                spec.truth["cr"][i] + spec.truth["cri"][i],
            )
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
        )


def simulate_chunk(spec: SimSpec, seed: int, trials) -> ChunkResult:
    """Simulate the virtual trials with the given indices (deterministic given seed and indices)."""
    return _Chunk(spec, seed, np.asarray(trials, np.int64)).run()
