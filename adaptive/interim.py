"""One interim look, end to end: validate everything, fit, evaluate rules, recommend, write (atomically).

:func:`run_interim` is the only function that wires a look together; the CLI is a thin shell
around it. Order matters: all validation (config, data, output folder) happens before any
sampling, and nothing is written until every fit has been checked. With a look ledger
(:mod:`adaptive.ledger`) the whole look runs under the ledger's lock: an identical earlier look
is reported instead of redone, the previous look supplies the previous allocation and the data to
diff against, and the look is recorded together with its folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from adaptive import datadiff, progress
from adaptive.borrowing import model_for_look
from adaptive.companions import frequentist_companions
from adaptive.config import Design, load_config
from adaptive.data import PatientTable, load_patients
from adaptive.derive import DerivedData, check_enrolled, derive
from adaptive.drift import allocation_periods, time_adjusted
from adaptive.endpoints import (
    BINARY_ENDPOINTS,
    CUMULATIVE_INCIDENCE_ENDPOINTS,
    POINT_MASS_DAYS,
    RESPONDER_ENDPOINTS,
    SURVIVAL_ENDPOINTS,
)
from adaptive.exceptions import ConvergenceError, LedgerError, LookOrderError, Problem
from adaptive.fitpool import shared_pool
from adaptive.ledger import Ledger, LookRecord, look_summary
from adaptive.output import (
    atomic_dir,
    canonical_json,
    check_out_dir,
    check_writable,
    remove_stale_tmp,
    remove_stale_tmp_in,
    versions,
)
from adaptive.queue import evaluate_queue
from adaptive.randomization import (
    allocate,
    allocation_rules,
    concurrent_analysis,
    concurrent_counts,
    concurrent_window,
    opening_warnings,
)
from adaptive.recommend import arm_stages, build_recommendations, check_coherence, stopping_arms
from adaptive.reconcile import FILE_NAME as RECONCILIATION_FILE
from adaptive.reconcile import Reconciliation, reconcile
from adaptive.robustness import annotate as annotate_robustness
from adaptive.robustness import robustness_panel
from adaptive.survival_comparison import PairSurvival, PairSurvivalPosterior, pair_survival
from decision_rules import (
    BetaPosterior,
    BetaPredictive,
    DrawsPosterior,
    DrawsPredictive,
    Estimate,
    RuleResult,
    Superiority,
    SurvivalPosterior,
)
from decision_rules.rules import PREDICTIVE_KINDS, fmt_estimate
from decision_rules.survival import HazardRatioSuperiority
from decision_rules.vocabulary import FUTILITY_KINDS, PRIMARY_ENDPOINT, RuleKind, Stage, fmt_prob
from models.binary import BinaryData, model_from_config
from models.diagnostics import Limits
from models.fitting import FitResult, fit_with_retries
from models.sampling import SamplerSettings
from models.survival import HORIZONS, PiecewiseExponential, SurvivalData
from models.survival import model_from_config as survival_model_from_config
from models.survival_check import arm_draws, km_predictive_check

SCHEMA = "rr-aml-adaptive/interim/v1"


@dataclass
class LookResult:
    """Everything a look produced (what is written to ``recommendations.json`` and more)."""

    report: dict
    fits: dict[str, FitResult]
    results: list[RuleResult] = field(default_factory=list)
    out: Path | None = None
    look_number: int | None = None
    reused: LookRecord | None = None  # the identical earlier look, when nothing was redone
    notes: list[str] = field(default_factory=list)  # ledger recovery, stale temporary folders

    @property
    def converged(self) -> bool:
        return all(f.converged for f in self.fits.values())


def sampler_settings(design: Design) -> SamplerSettings:
    """The first-attempt NUTS settings from the config."""
    s = design.sampler
    return SamplerSettings(
        backend=s.backend,
        chains=s.chains,
        draws=s.draws,
        tune=s.tune,
        target_accept=s.target_accept,
        cores=s.cores,
    )


def binary_data(design: Design, derived: DerivedData, endpoint: str) -> BinaryData:
    """Per-arm counts of ``endpoint`` over the modelled arms, with their null rates."""
    arms = design.modelled_arms
    n, y = derived.arrays(endpoint, arms)
    null = np.array([design.arm(a).rates[endpoint].null_rate for a in arms])
    return BinaryData(arms=arms, n=n, y=y, null_rate=null)


def survival_data(design: Design, derived: DerivedData, endpoint: str) -> SurvivalData:
    """Events and days at risk of a survival endpoint per arm and interval, over the modelled arms."""
    arms = design.modelled_arms
    f = derived.survival.times[endpoint]
    f = f[f["arm"].isin(arms)]
    return SurvivalData.from_times(
        arms,
        design.survival.cut_points_days,
        f["arm"].to_numpy(),
        f["time"].to_numpy(),
        f["event"].to_numpy(),
        f["day0"].to_numpy(),
        has_day0=endpoint in POINT_MASS_DAYS,
        point_mass_days=POINT_MASS_DAYS.get(endpoint, 0.0),
    )


def fit_tasks(design: Design, derived: DerivedData) -> list[tuple[str, object, object]]:
    """``(endpoint, model, data)`` of every binary and survival endpoint of the look."""
    tasks = []
    for endpoint in design.endpoints:
        model, _ = model_for_look(design, derived, endpoint)
        tasks.append((endpoint, model, binary_data(design, derived, endpoint)))
    survival = design.survival.endpoints if design.survival is not None else {}
    for endpoint in survival:
        tasks.append((endpoint, survival_model(design, endpoint), survival_data(design, derived, endpoint)))
    return tasks


def survival_model(design: Design, endpoint: str) -> PiecewiseExponential:
    """The configured survival model over the modelled arms: prior centres and shape groups per arm.

    ``level.centred_on: benchmark`` centres each arm on its own benchmark median for the endpoint
    (the level's ``median_days`` for an arm without one); ``shape_groups`` maps every modelled arm
    to its group, numbered in the config's order of the groups that have a modelled arm.
    """
    cfg = design.survival.endpoints[endpoint].model
    model = survival_model_from_config(cfg)
    # always one centre per arm (all equal without benchmarks: the same model, draw for draw for the
    # independent kind), so that OS, EFS and RFS share one compiled model structure
    medians, groups = design.survival_prior(endpoint, design.modelled_arms)
    model = dataclasses.replace(model, level_median_days=medians)
    if groups is not None:
        model = dataclasses.replace(model, shape_groups=groups)
    return model


def _fit_group(tasks, seed, settings, limits, retries) -> dict[str, FitResult]:
    """Fit tasks one after another (one process: models of one structure compile once)."""
    warnings.simplefilter("ignore", category=FutureWarning)
    return {
        endpoint: fit_with_retries(
            model, data, seed=seed, label=endpoint, settings=settings, limits=limits, retries=retries
        )
        for endpoint, model, data in tasks
    }


def _model_kind(task) -> str:
    """The model class of a ``(endpoint, model, data)`` task: what one compiled structure serves."""
    return type(task[1]).__name__


#: model classes fitted exactly (conjugate draws, no compile, no MCMC): milliseconds a fit
EXACT_MODELS = frozenset({"IndependentBetaBinomial"})


def _groups(tasks, n: int) -> list[list]:
    """Split tasks over ``n`` processes: same model class together, heaviest groups first.

    Compiling a model structure is the dominant cost, so a structure is never split; groups are
    assigned greedily to the least loaded process (a compile weighs 3 fits).
    """
    by_kind: dict[str, list] = {}
    for t in tasks:
        by_kind.setdefault(_model_kind(t), []).append(t)
    cost = {k: (0 if k in EXACT_MODELS else 3) + len(v) for k, v in by_kind.items()}
    bins: list[list] = [[] for _ in range(n)]
    load = [0] * n
    for kind in sorted(by_kind, key=lambda k: -cost[k]):
        i = load.index(min(load))
        bins[i] += by_kind[kind]
        load[i] += cost[kind]
    return [b for b in bins if b]


def fit_endpoints(design: Design, derived: DerivedData, seed: int) -> dict[str, FitResult]:
    """Fit the configured model of every binary and survival endpoint (with retries).

    With ``sampler.fit_processes`` > 1 (and as many cores), model structures are fitted in
    parallel worker processes (:mod:`adaptive.fitpool`) that outlive the look, so a further look
    in the same process reuses their compiled models; when at most one of those processes would
    run MCMC (the others only exact conjugate fits), everything is fitted here instead. Each
    fit's seed depends only on the look's seed, the endpoint and the attempt, so the results are
    identical to fitting everything in one process.
    """
    settings = sampler_settings(design)
    lim = design.sampler.limits
    limits = Limits(lim.max_rhat, lim.min_ess_bulk, lim.min_ess_tail, lim.max_divergences)
    retries = tuple((r.tune, r.target_accept) for r in design.sampler.retries)
    tasks = fit_tasks(design, derived)
    n_proc = min(design.sampler.fit_processes, os.cpu_count() or 1)
    groups = _groups(tasks, n_proc)
    if sum(any(_model_kind(t) not in EXACT_MODELS for t in g) for g in groups) <= 1:
        # at most one group needs MCMC: worker processes would cost their start-up (about 2 s,
        # benchmarks/bench_fitpool.py) and parallelize nothing that takes time
        groups = [tasks]
    progress.step(
        f"fitting {len(tasks)} endpoint model(s), {settings.chains} chains x {settings.draws} draws"
        + (f", in {len(groups)} worker processes" if len(groups) > 1 else "")
    )
    if len(groups) <= 1:
        fits = _fit_group(tasks, seed, settings, limits, retries)
    else:
        per = dataclasses.replace(
            settings, cores=settings.cores or max(1, (os.cpu_count() or 1) // len(groups))
        )
        fits = {}
        jobs = [(g, seed, per, limits, retries) for g in groups]
        labels = [frozenset(map(_model_kind, g)) for g in groups]
        for part in shared_pool().map(_fit_group, jobs, labels=labels):
            fits.update(part)
    return {endpoint: fits[endpoint] for endpoint, _, _ in tasks}


#: how a conjugate endpoint's quantities are computed at a look (``method`` of its rule results
#: and endpoint summaries); an exact method's name starts with "exact"
EXACT_BETA_METHOD = "exact conjugate Beta posterior (closed form and quadrature, no draws)"
#: how the quantities of an endpoint fitted by MCMC are computed
DRAWS_METHOD = "posterior draws, with Monte Carlo standard errors"


def binary_posterior(
    design: Design, derived: DerivedData, fit: FitResult, endpoint: str
) -> BetaPosterior | DrawsPosterior:
    """The posterior a look reads for a binary endpoint: exact for the conjugate model, else the draws.

    Independent endpoint (``model.kind: independent``): the closed-form ``Beta(a + y, b + n - y)``
    of every modelled arm (:class:`~decision_rules.beta.BetaPosterior`: tail probabilities,
    quantiles, comparisons and P(best) exact, MCSE 0), the posterior the simulator, the
    robustness panel and the randomization compute with. The fit's draws (posterior.nc) come
    from it and are kept as a record. Hierarchical / EXNEX / logit-normal: the fitted draws
    (:class:`~decision_rules.quantities.DrawsPosterior`, with MCSEs).
    """
    cfg = design.endpoints[endpoint].model
    if cfg.kind == "independent":
        data = binary_data(design, derived, endpoint)
        a, b = model_from_config(cfg).posterior_ab(data)
        return BetaPosterior(data.arms, a, b)
    return DrawsPosterior(fit.idata.posterior["p"])


def predictive_source(design: Design, derived: DerivedData, fit: FitResult, endpoint: str):
    """What predictive-probability rules evaluate on: exact for the conjugate model, else the draws.

    Independent endpoint: the closed-form ``Beta(a + y, b + n - y)`` posteriors
    (:class:`~decision_rules.predictive.BetaPredictive`, exact enumeration). Hierarchical / EXNEX:
    the fitted posterior draws (:class:`~decision_rules.predictive.DrawsPredictive`: predictive
    distribution averaged over the draws, final posterior by importance reweighting of them).
    """
    post = binary_posterior(design, derived, fit, endpoint)
    if isinstance(post, BetaPosterior):
        return BetaPredictive(post.arms, post.a, post.b)
    return DrawsPredictive(post)


def _exact_method(results: list[RuleResult]) -> list[RuleResult]:
    """Results computed on a :class:`BetaPosterior`, with ``extra.method`` saying they are exact."""
    return [
        r if "method" in r.extra else dataclasses.replace(r, extra={**r.extra, "method": EXACT_BETA_METHOD})
        for r in results
    ]


#: said of every survival decision: the model's assumptions are not checked at the look
SURVIVAL_MODEL_NOTE = (
    "Model: piecewise-exponential, proportional hazards within each baseline-shape group of the "
    "config; each arm's model is checked against its Kaplan-Meier curve (model_check). The "
    "operating characteristics of the survival rules are simulated with the scenarios' assumed "
    "survival (README, design section), not with the trial's own data."
)


def _not_applied(r: RuleResult, name: str, stage: Stage) -> RuleResult:
    """A futility or predictive result of an arm that is no longer enrolling: reported, not acted on.

    Futility stops enrolment; an arm that has enrolled its ``max_n`` has nothing left to stop,
    and at its final analysis the final result replaces every interim futility decision.
    """
    # exact only for an exact computation (enumeration); an estimate from draws stays one
    exact = r.mcse == 0.0 and str(r.extra.get("method", "")).startswith("exact")
    shown, _ = fmt_estimate(Estimate(r.prob, r.mcse, 0 if exact else 1))
    if stage == Stage.FINAL_ANALYSIS:
        why = (
            f"{name} is at its final analysis (max_n enrolled, no outcome pending): its final result "
            "replaces interim futility decisions"
        )
    else:
        why = (
            f"{name} has enrolled its max_n (accrual complete): futility stops enrolment, and there is "
            "none left to stop; the final analysis follows once the pending outcomes are in"
        )
    return dataclasses.replace(
        r,
        evaluated=False,
        fired=False,
        mc_uncertain=False,
        sentence=f"{r.quantity} is {shown} for {name}; the {r.kind} rule '{r.rule}' is not applied: {why}.",
        extra={**r.extra, "not_applied": str(stage), "would_fire": r.fired},
    )


def comparison_posterior(design: Design, table: PatientTable | None, derived: DerivedData, rule):
    """``(posterior, n, y, window, excluded)`` of a superiority rule: what its comparison reads.

    The concurrently randomized patients of its two arms (``randomized = true``, enrolled while
    both arms were open: ``opened_on`` / ``closed_on``, else the trial start and the cutoff), each
    arm with the rule's independent conjugate Beta prior; nothing is borrowed from other arms or
    cohorts (:mod:`adaptive.randomization`). Without a patient table (a look built from counts
    only), all evaluable patients of the two arms, ``window`` ``None``.
    """
    window = None if table is None else concurrent_window(design, table, rule.arms, derived.cutoff)
    if window is not None:
        n, y, excluded = concurrent_counts(design, table, derived, rule.endpoint, rule.arms, window)
    elif table is not None:  # the arms were never open together
        n, y, excluded = dict.fromkeys(rule.arms, 0), dict.fromkeys(rule.arms, 0), {}
    else:
        n = {x: derived.counts[rule.endpoint][x].n_evaluable for x in rule.arms}
        y = {x: derived.counts[rule.endpoint][x].responders for x in rule.arms}
        excluded = {}
    pa, pb = rule.posterior_ab(n, y)
    return BetaPosterior(list(rule.arms), pa, pb), n, y, window, excluded


def comparison_results(design: Design, table: PatientTable, derived: DerivedData, rule) -> list[RuleResult]:
    """A superiority rule on the concurrently randomized patients of its two arms (the primary analysis)."""
    a, b = rule.arms
    post, n, y, window, excluded = comparison_posterior(design, table, derived, rule)
    where = (
        "no period in which both arms were open" if window is None else f"enrolled {window[0]} to {window[1]}"
    )
    left_out = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in excluded.items() if v)
    note = (
        f"Analysis: concurrently randomized patients only ({where}; {n[a]} and {n[b]} evaluable in "
        f"{a} and {b}{'; left out: ' + left_out if left_out else ''}), independent {rule.prior_name} "
        "prior per arm, no borrowing from other arms or cohorts."
    )
    return rule.evaluate(
        post,
        n,
        design.labels,
        source_note=note,
        extra={
            "method": EXACT_BETA_METHOD,
            "population": "concurrently_randomized",
            "window": None
            if window is None
            else {"from": window[0].isoformat(), "to": window[1].isoformat()},
            "n_evaluable_by_arm": dict(n),
            "responders_by_arm": dict(y),
            "excluded": excluded,
            "model": f"independent {rule.prior_name}",
        },
    )


def _population_words(pair: PairSurvival, arms: tuple[str, str], noun: str, counts: Mapping[str, int]) -> str:
    """``enrolled X to Y; N and M <noun> in a and b; left out: ...`` of a pair's population."""
    a, b = arms
    where = (
        "no period in which both arms were open"
        if pair.window is None
        else f"enrolled {pair.window[0]} to {pair.window[1]}"
    )
    left_out = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in pair.excluded.items() if v)
    return f"{where}; {counts[a]} and {counts[b]} {noun} in {a} and {b}" + (
        f"; left out: {left_out}" if left_out else ""
    )


def _pair_extra(pair: PairSurvival) -> dict:
    """The population fields of a pair's survival analysis (rule ``extra``, survival comparisons)."""
    return {
        "population": "concurrently_randomized" if pair.concurrent else "all_patients",
        "window": None
        if pair.window is None
        else {"from": pair.window[0].isoformat(), "to": pair.window[1].isoformat()},
        "events_by_arm": dict(pair.events),
        "patients_by_arm": dict(pair.patients),
        "excluded": dict(pair.excluded),
        "model": "piecewise-exponential, independent arm levels, the endpoint's prior over the pair",
        "method": PairSurvivalPosterior.method,
    }


def hazard_ratio_results(
    design: Design, table: PatientTable | None, derived: DerivedData, rule: HazardRatioSuperiority
) -> list[RuleResult]:
    """A hazard-ratio rule on the concurrently randomized patients of its two arms (the primary analysis).

    :func:`adaptive.survival_comparison.pair_survival`: the endpoint's piecewise-exponential
    prior over the pair, exact by quadrature; ``min_events`` counted in that population.
    Without a patient table, all patients of the two arms; nothing when an arm is not modelled
    (queued), as for the other rules.
    """
    if not set(rule.arms) <= set(design.modelled_arms):
        return []
    pair = pair_survival(design, table, derived, rule.endpoint, rule.arms)
    if pair.concurrent:
        note = (
            "Analysis: concurrently randomized patients only ("
            + _population_words(pair, rule.arms, "events", pair.events)
            + "), the endpoint's piecewise-exponential prior per arm, no borrowing from other arms "
            "or cohorts; exact (quadrature)."
        )
    else:
        note = "Analysis: all patients of the two arms (no patient table); exact (quadrature)."
    return rule.evaluate(
        pair.posterior, pair.events, design.labels, source_note=note, extra=_pair_extra(pair)
    )


def evaluate_rules(
    design: Design, derived: DerivedData, fits: dict[str, FitResult], table: PatientTable | None = None
) -> list[RuleResult]:
    """Every configured rule on the posterior of its endpoint, stage-aware.

    Superiority and hazard-ratio rules read the concurrently randomized patients of their two
    arms (``table`` needed; without it, all evaluable patients of the two arms): the hazard ratio
    by quadrature on them (:func:`hazard_ratio_results`), not the whole-arm fit. Futility and
    predictive rules act only on arms still enrolling; for the others they are reported as not
    applied (:func:`_not_applied`).
    """
    stages = arm_stages(design, derived)
    results: list[RuleResult] = []
    for rule in design.rules:
        if isinstance(rule, HazardRatioSuperiority):
            out = hazard_ratio_results(design, table, derived, rule)
            out = [
                dataclasses.replace(r, sentence=f"{r.sentence} {SURVIVAL_MODEL_NOTE}") if r.fired else r
                for r in out
            ]
        elif rule.family == "survival":
            # survival endpoints have no binary counts: read the survival posterior and events
            posterior = SurvivalPosterior(fits[rule.endpoint].idata.posterior)
            out = rule.evaluate(posterior, derived.survival.n_events(rule.endpoint), design.labels)
            out = [
                dataclasses.replace(r, sentence=f"{r.sentence} {SURVIVAL_MODEL_NOTE}") if r.fired else r
                for r in out
            ]
        elif isinstance(rule, Superiority):
            if table is not None:
                out = comparison_results(design, table, derived, rule)
            else:
                post, n, _, _, _ = comparison_posterior(design, None, derived, rule)
                out = _exact_method(rule.evaluate(post, n, design.labels))
        else:
            n_eval = {a: c.n_evaluable for a, c in derived.counts[rule.endpoint].items()}
            if rule.kind in PREDICTIVE_KINDS:
                source = predictive_source(design, derived, fits[rule.endpoint], rule.endpoint)
                counts = {a: (c.responders, c.n_evaluable) for a, c in derived.counts[rule.endpoint].items()}
                out = rule.evaluate(source, n_eval, design.labels, counts)
            else:
                # exact for a conjugate endpoint, the draws of an MCMC fit otherwise
                posterior = binary_posterior(design, derived, fits[rule.endpoint], rule.endpoint)
                out = rule.evaluate(posterior, n_eval, design.labels)
                if isinstance(posterior, BetaPosterior):
                    out = _exact_method(out)
                if rule.kind in (RuleKind.EFFICACY, RuleKind.FUTILITY):
                    out = _beside_no_borrowing(design, derived, rule, out)
        if rule.kind in (*FUTILITY_KINDS, *PREDICTIVE_KINDS):
            out = [
                _not_applied(r, design.display_name(r.arms[0]), stages[r.arms[0]])
                if stages.get(r.arms[0], Stage.INTERIM) != Stage.INTERIM
                else r
                for r in out
            ]
        results += out
    return results


def _beside_no_borrowing(design: Design, derived: DerivedData, rule, results: list[RuleResult]) -> list:
    """A borrowing endpoint's rule results with the same probability without borrowing beside them."""
    from models.exact import no_borrowing_summary

    model, info = model_for_look(design, derived, rule.endpoint)
    borrowing = {a for a, v in info.items() if v["prior_weight_exchangeable"] > 0}
    if not borrowing:
        return results
    data = binary_data(design, derived, rule.endpoint)
    refs = np.array([rule.references.get(a, design.arm(a).rates[rule.endpoint].null_rate) for a in data.arms])
    nb = no_borrowing_summary(model, data, refs)
    out = []
    for r in results:
        arm = r.arms[0]
        if arm not in borrowing:
            out.append(r)
            continue
        p = float(nb.prob_above[data.arms.index(arm)])
        out.append(
            dataclasses.replace(
                r,
                sentence=f"{r.sentence} Without borrowing (the arm alone on its own prior): {fmt_prob(p)}.",
                extra={**r.extra, "prob_without_borrowing": p},
            )
        )
    return out


def borrowing_comparison(design: Design, derived: DerivedData, endpoint: str) -> dict[str, dict]:
    """Per arm of a borrowing endpoint: the same quantities without borrowing, and what it borrows.

    Without borrowing: the arm alone on its own prior (the model's non-exchangeable prior
    ``delta_k ~ Normal(nex.mean, nex.sd)``), exact by 1-D quadrature. What it borrows: moment
    effective sample sizes (:func:`models.exact.borrowed_ess`) of the model's prior of ``p_k``,
    of its effective prior given the *other* arms' data (its meta-analytic-predictive prior)
    and of its posterior, by quadrature. Empty for endpoints that do not borrow.
    """
    from models.exact import borrowed_ess, no_borrowing_summary

    model, info = model_for_look(design, derived, endpoint)
    if not info or not any(v["prior_weight_exchangeable"] > 0 for v in info.values()):
        return {}
    data = binary_data(design, derived, endpoint)
    cfg = design.endpoints[endpoint].model
    nex = cfg.nex
    out: dict[str, dict] = {a: {} for a in data.arms}
    for key, rate in (("null", "null_rate"), ("futility", "futility_rate"), ("target", "target_rate")):
        refs = [getattr(design.arm(a).rates[endpoint], rate) for a in data.arms]
        if any(r is None for r in refs):
            refs = [
                r if r is not None else design.arm(a).rates[endpoint].null_rate
                for a, r in zip(data.arms, refs, strict=True)
            ]
        nb = no_borrowing_summary(model, data, np.array(refs, float))
        for k, a in enumerate(data.arms):
            row = out[a]
            row.update(mean=float(nb.mean[k]), ci95_low=float(nb.lower[k]), ci95_high=float(nb.upper[k]))
            if getattr(design.arm(a).rates[endpoint], rate) is not None:
                row[f"prob_above_{key}"] = float(nb.prob_above[k])
    borrowing = {a for a, v in info.items() if v["prior_weight_exchangeable"] > 0}
    for e in borrowed_ess(model, data):
        if e.arm not in borrowing:  # on its own prior already: nothing borrowed to show beside
            out.pop(e.arm, None)
            continue
        out[e.arm] = {
            "model": f"the arm alone on its own prior Normal({nex.mean:g}, {nex.sd:g}) on the log-odds "
            "improvement over its null (no borrowing); exact quadrature",
            **out[e.arm],
            "ess": {
                "method": "moment-matched Beta (m(1 - m)/v - 1), by quadrature",
                "n_own": e.n,
                "prior": e.prior_ess,
                "effective_prior_given_other_arms": e.effective_prior_ess,
                "posterior": e.posterior_ess,
                "borrowed": e.borrowed,
            },
        }
    return out


def _endpoint_summary(
    design: Design,
    derived: DerivedData,
    fit: FitResult | None,
    endpoint: str,
    arm: str,
    without: dict | None = None,
) -> dict:
    counts = derived.counts[endpoint][arm]
    rates = design.arm(arm).rates[endpoint]
    kind = design.endpoints[endpoint].model.kind
    out: dict = {
        "n_evaluable": counts.n_evaluable,
        "responders": counts.responders,
        "n_pending": counts.n_pending,
        "n_overdue": counts.n_overdue,
        "n_not_evaluable": counts.n_lost,
        "observed_rate": counts.responders / counts.n_evaluable if counts.n_evaluable else None,
        "null_rate": rates.null_rate,
        "futility_rate": rates.futility_rate,
        "target_rate": rates.target_rate,
        "limit_rate": rates.limit_rate,
        "model": kind,
        "method": EXACT_BETA_METHOD if kind == "independent" else DRAWS_METHOD,
    }
    if fit is None or not fit.converged or arm not in design.modelled_arms:
        out.update(
            mean=None, ci95_low=None, ci95_high=None, prob_above_null=None, prob_above_target=None, mcse=None
        )
        # the same keys as a converged summary, null (a stable schema for every endpoint and status)
        out.update(median=None, mcse_prob_above_null=None)
        if rates.target_rate is not None:
            out["mcse_prob_above_target"] = None
        if rates.limit_rate is not None:
            out.update(prob_above_limit=None, mcse_prob_above_limit=None)
        if rates.futility_rate is not None:
            out.update(prob_above_futility=None, mcse_prob_above_futility=None)
        if design.endpoints[endpoint].model.kind == "exnex":
            out["prob_exchangeable"] = None
        return out
    post = binary_posterior(design, derived, fit, endpoint)
    if isinstance(post, BetaPosterior):
        mcse = 0.0  # the exact Beta's mean, median and equal-tailed interval (its quantiles)
    else:
        draws = fit.idata.posterior["p"].sel(arm=arm).values
        sd = float(draws.std(ddof=1))
        from arviz import ess

        mcse = sd / np.sqrt(float(ess(draws, method="mean")))
    lo, med, hi = post.quantile(arm, [0.025, 0.5, 0.975])
    above_null = post.prob_above(arm, rates.null_rate)
    out.update(
        mean=post.mean(arm),
        median=med,
        ci95_low=lo,
        ci95_high=hi,
        prob_above_null=above_null.prob,
        mcse=mcse,
        mcse_prob_above_null=above_null.mcse,
    )
    for name, ref in (
        ("futility", rates.futility_rate),
        ("target", rates.target_rate),
        ("limit", rates.limit_rate),
    ):
        if ref is not None:
            est = post.prob_above(arm, ref)
            out[f"prob_above_{name}"] = est.prob
            out[f"mcse_prob_above_{name}"] = est.mcse
        elif name == "target":
            out["prob_above_target"] = None
    if "prob_exchangeable" in fit.idata.posterior:
        out["prob_exchangeable"] = float(fit.idata.posterior["prob_exchangeable"].sel(arm=arm).mean())
    if without:
        out["without_borrowing"] = without
    return out


def _interval(draws: np.ndarray) -> dict:
    lo, med, hi = np.quantile(draws, [0.025, 0.5, 0.975])
    return {"median": float(med), "ci95_low": float(lo), "ci95_high": float(hi)}


def survival_estimable(summary: Mapping) -> str | None:
    """Why an arm's survival endpoint is not estimable from its data, or ``None`` when it is.

    No patient in the endpoint's population, or no event yet (a point-mass event counts): the
    posterior would be the prior (and, under pooling, the other arms), not this arm's data.
    """
    if summary["n"] == 0:
        return "no patient in this endpoint's population yet"
    if summary["events"] == 0:
        return f"no event yet among {summary['n']} patient(s)"
    return None


def _survival_summary(
    design: Design, derived: DerivedData, fit: FitResult | None, endpoint: str, arm: str, seed: int = 0
) -> dict:
    out: dict = derived.survival.summary(endpoint, arm)
    bench = design.arm(arm).survival_benchmarks.get(endpoint)
    out["benchmark_median_days"] = bench
    out["model"] = design.survival.endpoints[endpoint].model.kind
    reason = survival_estimable(out)
    out["estimable"] = reason is None
    out["not_estimable_reason"] = reason
    keys = ["median_days", "prob_median_beyond_follow_up", *(f"s{h}" for h in HORIZONS)]
    keys += ["prob_median_above_benchmark", "mcse_prob_median_above_benchmark"]
    if endpoint in POINT_MASS_DAYS:
        keys.append("prob_point_mass_event")
    keys.append("model_check")
    if reason is not None or fit is None or not fit.converged or arm not in design.modelled_arms:
        out.update(dict.fromkeys(keys))
        return out
    post = SurvivalPosterior(fit.idata.posterior)
    med = post.median(arm)
    out["median_days"] = _interval(med)
    out["prob_median_beyond_follow_up"] = float(np.mean(med > design.assessment.follow_up_days))
    for h in HORIZONS:
        out[f"s{h}"] = _interval(post.survival(arm, h))
    est = post.prob_median_above(arm, bench) if bench is not None else None
    out["prob_median_above_benchmark"] = est.prob if est else None
    out["mcse_prob_median_above_benchmark"] = est.mcse if est else None
    if endpoint in POINT_MASS_DAYS:
        out["prob_point_mass_event"] = _interval(fit.idata.posterior["prob_day0_event"].sel(arm=arm).values)
    out["model_check"] = survival_model_check(design, derived, fit, endpoint, arm, seed)
    return out


def survival_model_check(
    design: Design, derived: DerivedData, fit: FitResult, endpoint: str, arm: str, seed: int
) -> dict:
    """The posterior predictive check of an arm's survival model against its Kaplan-Meier curve.

    :func:`models.survival_check.km_predictive_check` with each patient's own end of observation
    as the potential censoring time; seeded by the look's seed, the endpoint and the arm. JSON-ready
    (a median not reached is ``None``).
    """
    f = derived.survival.arm_times(endpoint, arm)
    hz, pi = arm_draws(fit.idata, arm)
    event = f["event"].to_numpy().astype(bool)
    day0 = f["day0"].to_numpy().astype(bool)
    time = f["time"].to_numpy(dtype=float)
    censor = np.where(event | day0, f["max_time"].to_numpy(dtype=float), time)
    k = list(SURVIVAL_ENDPOINTS).index(endpoint)
    res = km_predictive_check(
        hz,
        design.survival.cut_points_days,
        time,
        event & ~day0,
        np.maximum(censor, time),
        day0_draws=pi,
        point_mass_days=POINT_MASS_DAYS.get(endpoint, 0.0),
        observed_day0=day0 if day0.any() else None,
        seed=[seed, 7, k, design.arm_ids.index(arm)],
    )

    def days(x: float) -> float | None:
        return None if not np.isfinite(x) else float(x)

    lo, hi = res["median_interval"]
    return {
        "km_median_days": days(res["km_median"]),
        "predictive_interval_km_median": [days(lo), days(hi)],
        "km_median_inside": res["median_inside"],
        "p_value": res["p_value"],
        "n_rep": res["n_rep"],
        "misfit": res["misfit"],
    }


def competing_risks(design: Design, derived: DerivedData, arm: str) -> dict:
    """Descriptive cumulative incidences of ``arm``: relapse (CIR) and transplant (HSCT)."""
    return {name: derived.survival.competing_summary(name, arm) for name in CUMULATIVE_INCIDENCE_ENDPOINTS}


def randomized_pairs(design: Design) -> list[tuple[str, str]]:
    """Every pair of open arms that share a randomized routing cohort, in config order.

    Arms already closed (dropped or graduated) are left out: their comparison was decided, and a
    late entrant of the same cohort was never randomized against them.
    """
    pairs = []
    for step in design.routing:
        arms = [a for a in step.arms if a in design.modelled_arms and not design.arm(a).is_closed]
        pairs += [(a, b) for i, a in enumerate(arms) for b in arms[i + 1 :] if (a, b) not in pairs]
    return pairs


#: horizon (days) of the randomized EFS comparison: one with patients at risk at interim looks
EFS_COMPARISON_DAYS = 180


def survival_comparisons(
    design: Design,
    fits: dict[str, FitResult],
    derived: DerivedData | None = None,
    table: PatientTable | None = None,
) -> list[dict]:
    """Each randomized pair on each survival endpoint, experimental : reference.

    OS: the hazard ratio with its 95% interval and P(HR < 1). EFS (ELN 2022, every patient from
    enrolment, day-1 treatment failures as a point mass): the difference in EFS at 180 days
    (:data:`EFS_COMPARISON_DAYS`) with the numbers at risk, and P(EFS_a(180) > EFS_b(180)), which
    counts the treatment failures (a hazard ratio of the
    continuous part alone would condition on not failing). RFS and EFS-MRD start at the response
    date: conditioning on response breaks the randomization, so their hazard ratio is labelled
    "not randomized" (descriptive). A randomized hazard ratio (OS) is the hazard-ratio rule's
    analysis, on the concurrently randomized patients by quadrature (:func:`hazard_ratio_results`;
    with ``derived``), so that the DSMB sees one number; a descriptive one is the whole-arm fit's.
    The pair is oriented by its cohort's ``reference_arm``
    (:meth:`Design.oriented`), the same way every comparison of the look is printed.
    """
    out = []
    survival = design.survival.endpoints if design.survival is not None else {}
    for endpoint in survival:
        post = SurvivalPosterior(fits[endpoint].idata.posterior)
        label = SURVIVAL_ENDPOINTS[endpoint].label
        randomized = endpoint not in RESPONDER_ENDPOINTS
        for pair in randomized_pairs(design):
            a, b = design.oriented(*pair)
            name_a, name_b = design.display_name(a), design.display_name(b)
            entry: dict = {
                "endpoint": endpoint,
                "arms": [a, b],
                "reference_arm": b,
                "randomized_comparison": randomized,
            }
            if endpoint in POINT_MASS_DAYS and randomized:
                h = EFS_COMPARISON_DAYS
                diff = post.survival_difference(a, b, h)
                lo, med, hi = (float(v) for v in np.quantile(diff, [0.025, 0.5, 0.975]))
                est = post.prob_survival_better(a, b, h)
                at_risk = {}
                if derived is not None and derived.survival is not None:
                    for arm in (a, b):
                        f = derived.survival.arm_times(endpoint, arm)
                        at_risk[arm] = int((f["time"] >= h).sum())
                few = [arm for arm, n in at_risk.items() if n < 10]
                risk_s = (
                    f" At risk at day {h}: {at_risk[a]} ({name_a}), {at_risk[b]} ({name_b})"
                    + (
                        "; fewer than 10 in "
                        + ", ".join(design.display_name(x) for x in few)
                        + ": the difference leans on the model more than on data."
                        if few
                        else "."
                    )
                    if at_risk
                    else ""
                )
                entry |= {
                    # the whole-arm model: its point mass is not in the pair's quadrature engine,
                    # so this difference is not restricted to the concurrently randomized patients
                    "population": "all_patients",
                    "quantity": f"difference in survival at {h} days",
                    "horizon_days": h,
                    "difference": {"median": med, "ci95_low": lo, "ci95_high": hi},
                    "n_at_risk": at_risk,
                    "prob_a_better": est.prob,
                    "mcse_prob_a_better": est.mcse,
                    "sentence": f"{label} at {h} days {name_a} minus {name_b} {100 * med:+.1f} points "
                    f"(95% CrI {100 * lo:+.1f} to {100 * hi:+.1f}); P({name_a} better) {fmt_prob(est.prob)}. "
                    "Counts treatment failures (day 1) as ELN 2022 does. All patients of the two "
                    "arms, randomized or not (the whole-arm model); the log-rank/Cox companion "
                    "reads the concurrently randomized ones." + risk_s,
                }
            else:
                pair = None
                hr_post: SurvivalPosterior | PairSurvivalPosterior = post
                if randomized and derived is not None and derived.survival is not None:
                    pair = pair_survival(design, table, derived, endpoint, (a, b))
                    hr_post = pair.posterior
                lo, med, hi = hr_post.hr_quantiles(a, b, [0.025, 0.5, 0.975])
                est = hr_post.prob_hr_below(a, b, 1.0)
                exact = est.mcse == 0.0 and not est.n_draws
                caveat = (
                    ""
                    if randomized
                    else " Not randomized: responders only, from the response date; conditioning on "
                    "response breaks the randomization, so this is descriptive."
                )
                if pair is not None and pair.concurrent:
                    caveat = (
                        " Concurrently randomized patients only ("
                        + _population_words(pair, (a, b), "events", pair.events)
                        + "); exact (quadrature)."
                    )
                entry |= {
                    "quantity": "hazard ratio",
                    "hr": {"median": med, "ci95_low": lo, "ci95_high": hi},
                    "prob_hr_below_1": est.prob,
                    "mcse_prob_hr_below_1": est.mcse,
                    **(_pair_extra(pair) if pair is not None else {}),
                    "sentence": f"{label} hazard ratio {name_a} : {name_b} {med:.2f} "
                    f"(95% CrI {lo:.2f}-{hi:.2f}); P(HR < 1) {fmt_prob(est.prob, exact=exact)}." + caveat,
                }
            out.append(entry)
    return out


def _diagnostics_block(fits: dict[str, FitResult]) -> dict:
    by_ep = {
        ep: {
            **f.diagnostics.to_dict(),
            "model": f.idata.posterior.attrs.get("model", ""),
            "attempts": [a.to_dict() for a in f.attempts],
        }
        for ep, f in fits.items()
    }
    finite = [f.diagnostics for f in fits.values()]
    return {
        "max_rhat": max((d.max_rhat for d in finite), default=None),
        "min_ess_bulk": min((d.min_ess_bulk for d in finite), default=None),
        "min_ess_tail": min((d.min_ess_tail for d in finite), default=None),
        "divergences": sum(d.divergences for d in finite),
        "converged": all(d.converged for d in finite),
        "by_endpoint": by_ep,
    }


def look_reconciliation(table: PatientTable, derived: DerivedData) -> Reconciliation | None:
    """ADTTE against the engine's OS / EFS / RFS as of the cutoff (``None`` without ADTTE)."""
    if table.adtte is None or derived.survival is None:
        return None
    return reconcile(table.adtte, derived.survival, table.frame, derived.cutoff)


def build_report(
    design: Design,
    table: PatientTable,
    derived: DerivedData,
    fits: dict[str, FitResult],
    results: list[RuleResult],
    seed: int,
) -> dict:
    """The content of ``recommendations.json`` (no wall-clock times: byte-identical reruns)."""
    converged = all(f.converged for f in fits.values())
    stages = arm_stages(design, derived)
    borrowing = (
        {ep: borrowing_comparison(design, derived, ep) for ep in design.endpoints} if converged else {}
    )
    arms = []
    for a in design.arms:
        arm_results = [r for r in results if r.arms == (a.id,)]
        arms.append(
            {
                "arm": a.id,
                "label": a.label,
                "status": a.status,
                "monitoring": a.monitoring,
                "stage": stages.get(a.id),
                "max_n": a.max_n,
                "n_enrolled": derived.n_enrolled.get(a.id, 0),
                "is_complete": derived.n_enrolled.get(a.id, 0) >= a.max_n,
                "endpoints": {
                    ep: _endpoint_summary(
                        design, derived, fits.get(ep), ep, a.id, (borrowing.get(ep) or {}).get(a.id)
                    )
                    for ep in design.endpoints
                },
                "rules": [r.to_dict() for r in arm_results],
            }
        )
        if design.survival is not None:
            arms[-1]["survival"] = {
                ep: _survival_summary(design, derived, fits.get(ep), ep, a.id, seed)
                for ep in design.survival.endpoints
            }
        if derived.survival is not None:
            arms[-1]["competing_risks"] = competing_risks(design, derived, a.id)
    comparisons = [r.to_dict() for r in results if len(r.arms) > 1]
    recon = look_reconciliation(table, derived)
    recon_warning = (
        [f"{recon.source}: {recon.sentence()}"] if recon is not None and recon.n_disagreements else []
    )
    opening = opening_warnings(design, table, derived.cutoff, derived)
    failed = {ep: f.diagnostics.failures for ep, f in fits.items() if not f.converged}
    report = {
        "schema": SCHEMA,
        "status": "ok" if converged else "refused",
        "refusal": None
        if converged
        else (
            "No recommendation: the fit of "
            + "; ".join(f"{ep} failed ({', '.join(msgs)})" for ep, msgs in failed.items())
            + f" after {len(design.sampler.retries)} retries."
        ),
        "trial": design.raw.trial.name,
        "cutoff": derived.cutoff.isoformat(),
        "seed": seed,
        "sampler_overrides": dict(design.sampler_overrides),
        "config_file": design.path.name if design.path else None,
        "config_sha256": design.sha256,
        "data_file": table.source,
        "data_sha256": table.sha256,
        "versions": versions(),
        "endpoint_definitions": {ep: BINARY_ENDPOINTS[ep].definition for ep in design.endpoints}
        | {
            ep: SURVIVAL_ENDPOINTS[ep].definition
            for ep in (design.survival.endpoints if design.survival else {})
        }
        | {name: e.definition for name, e in CUMULATIVE_INCIDENCE_ENDPOINTS.items()},
        "estimands": {ep: BINARY_ENDPOINTS[ep].intercurrent_events for ep in design.endpoints}
        | {
            ep: SURVIVAL_ENDPOINTS[ep].intercurrent_events
            for ep in (design.survival.endpoints if design.survival else {})
        }
        | {name: e.intercurrent_events for name, e in CUMULATIVE_INCIDENCE_ENDPOINTS.items()},
        "diagnostics": _diagnostics_block(fits),
        "arms": arms,
        "comparisons": comparisons,
        # beside the comparisons (whose concurrent window they question) and among the warnings
        "opening_checks": opening,
        "survival_comparisons": survival_comparisons(design, fits, derived, table) if converged else [],
        "remission_span": derived.survival.remission_span if derived.survival is not None else None,
        "fired": [r.sentence for r in results if r.fired] if converged else [],
        "reconciliation": recon.to_dict() if recon is not None else None,
        "warnings": [str(w) for w in (*table.warnings, *derived.warnings)]
        + recon_warning
        + [c["sentence"] for c in opening],
        "config": design.as_dict(),
    }
    return report


def write_posterior(path: Path, fits: dict[str, FitResult]) -> None:
    """All endpoints' InferenceData in one NetCDF file, one group per endpoint.

    Read one back with ``az.InferenceData.from_netcdf(path, base_group="orr")``. The primary
    endpoint (CRc) is also at the file's root, so the plain ``az.from_netcdf(path)`` gives it
    (without a root group it would return an empty InferenceData).

    A conjugate endpoint's draws are a record: its posterior's attributes give the exact
    ``Beta(posterior_a, posterior_b)`` and say (``decisions``) that the look's probabilities,
    estimates and intervals were computed from it, not from the draws.
    """
    for fit in fits.values():
        attrs = fit.idata.posterior.attrs
        if "posterior_a" in attrs:
            attrs["decisions"] = (
                "this look's decision probabilities, estimates and credible intervals of this endpoint "
                f"are computed exactly from Beta(posterior_a, posterior_b) ({EXACT_BETA_METHOD}), not "
                "from these draws"
            )
    first = True
    if PRIMARY_ENDPOINT in fits:
        fits[PRIMARY_ENDPOINT].idata.to_netcdf(str(path))
        first = False
    for ep, fit in fits.items():
        fit.idata.to_netcdf(str(path), base_group=ep, overwrite_existing=first)
        first = False


#: order of the top-level keys of recommendations.json
_KEY_ORDER = (
    "schema",
    "status",
    "refusal",
    "look",
    "trial",
    "cutoff",
    "seed",
    "sampler_overrides",
    "config_file",
    "config_sha256",
    "data_file",
    "data_sha256",
    "versions",
    "recommendations",
    "coherence",
    "robustness",
    "companions",
    "allocation",
    "queue",
    "data_changes",
    "reconciliation",
    "endpoint_definitions",
    "estimands",
    "diagnostics",
    "arms",
    "comparisons",
    "opening_checks",
    "survival_comparisons",
    "remission_span",
    "fired",
    "warnings",
    "config",
)


def allocation_posterior(design: Design, table: PatientTable, derived: DerivedData, fits, rule):
    """What a cohort's allocation reads: the posterior its comparison rule reads, where it has one.

    A randomized cohort whose arms are compared by a superiority rule on the allocation's
    endpoint allocates from that rule's posterior (concurrently randomized patients, the rule's
    independent Beta prior): one number for P(arm better) across the comparison, the allocation and
    the memo. Otherwise the endpoint's posterior (:func:`binary_posterior`: exact for a
    conjugate endpoint).
    """
    for r in design.rules:
        if isinstance(r, Superiority) and r.endpoint == rule.endpoint and set(r.arms) == set(rule.arms):
            post, _, _, window, _ = comparison_posterior(design, table, derived, r)
            if window is not None:
                return post
    return binary_posterior(design, derived, fits[rule.endpoint], rule.endpoint)


def adapt_report(
    design: Design,
    table: PatientTable,
    derived: DerivedData,
    fits: dict[str, FitResult],
    results: list[RuleResult],
    report: dict,
    *,
    previous_allocation: dict[str, dict[str, float]] | None = None,
    previous_source: str = "",
    look: dict | None = None,
    data_changes: dict | None = None,
    allocation_history: Mapping[str, list] | None = None,
) -> dict:
    """Add the platform adaptation to a look's report: recommendations, allocation, queue, borrowing.

    ``allocation_history``: per cohort, ``(cutoff, probabilities)`` of the earlier looks (the
    ledger), for the time-adjusted comparison (:mod:`adaptive.drift`).
    Returns a new report dict with the keys in :data:`_KEY_ORDER`.
    """
    converged = report["status"] == "ok"
    arm_entries = {a["arm"]: a for a in report["arms"]}
    # borrowing state of every arm in the hierarchical / EXNEX endpoints
    for endpoint in design.endpoints:
        _, info = model_for_look(design, derived, endpoint)
        for arm, state in info.items():
            arm_entries[arm]["endpoints"][endpoint]["borrowing"] = state
    allocations = {}
    alloc_blocks: dict[str, dict] = {}
    if converged:
        for rule in allocation_rules(design):
            posterior = allocation_posterior(design, table, derived, fits, rule)
            prev = (previous_allocation or {}).get(rule.cohort)
            source = (
                previous_source if prev is not None else "the cohort's fixed allocation (no earlier look)"
            )
            alloc = allocate(design, derived, rule, posterior, previous=prev, previous_source=source)
            allocations[rule.cohort] = alloc
            block = alloc.to_dict()
            block["concurrent"] = concurrent_analysis(design, table, derived, rule, alloc)
            breaks = allocation_periods((allocation_history or {}).get(rule.cohort) or [])
            block["time_adjusted"] = [
                x
                for r in design.rules
                if isinstance(r, Superiority) and set(r.arms) <= set(rule.arms)
                for x in [time_adjusted(design, table, derived, r, breaks)]
                if x is not None
            ]
            alloc_blocks[rule.cohort] = block
    queue = evaluate_queue(design, derived.cutoff)
    for q in queue:
        arm_entries[q.arm]["entry"] = q.to_dict()
    rules_by_cohort = {r.cohort: r for r in allocation_rules(design)}

    def reallocate(cohort: str, stopping: set[str]):
        rule = rules_by_cohort.get(cohort)
        alloc = allocations.get(cohort)
        if rule is None or alloc is None:
            return None
        posterior = allocation_posterior(design, table, derived, fits, rule)
        return allocate(
            design,
            derived,
            rule,
            posterior,
            previous=alloc.previous,
            previous_source=alloc.previous_source,
            closing=stopping,
        )

    coherence: list[dict] = []
    recs: list[dict] = []
    if converged:
        recs = build_recommendations(
            design, derived, results, allocations=allocations, queue=queue, arm_summaries=arm_entries
        )
        recs, coherence = check_coherence(design, derived, recs, results, reallocate=reallocate)
    robustness = None
    if converged:
        robustness = robustness_panel(design, derived, fits, results, table)
        recs = annotate_robustness(recs, robustness, design)
    # closed-form, from the data alone: shown whether or not the fits converged
    companions = frequentist_companions(design, table, derived, randomized_pairs(design))
    stopping = stopping_arms(recs)
    for cohort in allocations:
        rule = rules_by_cohort[cohort]
        if stopping & set(rule.arms):
            alt = reallocate(cohort, stopping & set(rule.arms))
            alloc_blocks[cohort]["if_recommendations_accepted"] = {
                "closing": sorted(stopping & set(rule.arms)),
                "probabilities": dict(alt.probabilities),
                "sentence": alt.sentence,
            }
    warnings_ = list(report["warnings"])
    previous = (look or {}).get("previous_look")
    if previous and previous["cutoff"] > derived.cutoff.isoformat():
        warnings_.append(
            f"this look's cutoff {derived.cutoff} is before the cutoff {previous['cutoff']} of the previous "
            f"look {previous['number']}: the data changes and the previous allocation refer to a later look."
        )
    for a in design.arms:
        if a.status == "queued" and derived.n_enrolled.get(a.id, 0):
            warnings_.append(
                f"{table.source}: {derived.n_enrolled[a.id]} patient(s) are in {a.id}, whose status is "
                "'queued': they are not modelled. If the arm has opened, set status: active (and "
                "opened_on) in the config."
            )
    new = {
        **report,
        "look": look,
        "recommendations": recs,
        "coherence": coherence,
        "robustness": robustness,
        "companions": companions,
        "allocation": alloc_blocks,
        "queue": [q.to_dict() for q in queue],
        "data_changes": data_changes,
        "warnings": warnings_,
    }
    return {k: new[k] for k in _KEY_ORDER if k in new} | {k: v for k, v in new.items() if k not in _KEY_ORDER}


def _allocation_history(book: Ledger | None) -> dict[str, list]:
    """Per cohort, ``(cutoff, probabilities)`` of every recorded look with an allocation."""
    out: dict[str, list] = {}
    for rec in book.looks() if book is not None else []:
        for cohort, probs in (rec.summary.get("allocation") or {}).items():
            out.setdefault(cohort, []).append((date.fromisoformat(rec.cutoff), list(probs.values())))
    return out


def _previous_allocation(rec: LookRecord | None) -> dict[str, dict[str, float]] | None:
    if rec is None:
        return None
    return rec.summary.get("allocation") or None


def run_interim(
    config: str | Path | Design,
    data: str | Path | PatientTable,
    cutoff: date,
    out: str | Path,
    seed: int | None = None,
    *,
    ledger: str | Path | None = None,
    force: bool = False,
    wait: float = 900.0,
    allow_out_of_order: bool = False,
    sampler_overrides: Mapping[str, int] | None = None,
) -> LookResult:
    """Run one interim look and write ``recommendations.json`` and ``posterior.nc`` into ``out``.

    With an ADaM folder holding ADTTE, also ``reconciliation.csv``: the subjects whose ADTTE
    ``AVAL``/``CNSR`` disagree with the engine's OS / EFS / RFS as of the cutoff
    (:mod:`adaptive.reconcile`; counted in the report's ``reconciliation`` block and warnings).
    The look analyses the engine's own derivation either way.

    Parameters
    ----------
    ledger
        Path of the look ledger (created if missing), or ``None`` for no ledger (no idempotence,
        no previous allocation, no data diff).
    force
        Make a new look even when the ledger holds one on the same data, config and cutoff.
    wait
        Seconds to wait for another process holding the ledger's lock.
    allow_out_of_order
        Make a look whose cutoff is before that of a recorded look (recorded in the look); its
        previous look is the latest recorded look by cutoff.
    sampler_overrides
        ``draws``, ``tune`` and/or ``chains`` instead of the config's (``adaptive interim --draws``):
        the config and its hash stay as they are, the look records the overrides
        (``sampler_overrides`` in ``recommendations.json`` and the ledger), and a look on the same
        inputs counts as the same look only with the same overrides.

    Raises
    ------
    ConfigError, DataError
        Before anything is fitted.
    OutputExistsError
        If ``out`` already holds files (and the ledger has no identical look).
    LedgerError
        The same data, config and cutoff were analysed with another seed (use ``force``), or the
        ledger cannot be read.
    LookOrderError
        A recorded look has a later cutoff (and ``allow_out_of_order`` is false).
    LedgerBusyError
        Another process held the ledger for longer than ``wait``.
    ConvergenceError
        After writing a look marked ``"status": "refused"`` (with diagnostics, no rules), when a
        fit fails the convergence limits after every retry.
    """
    design = config if isinstance(config, Design) else load_config(config)
    if sampler_overrides:
        design = design.with_sampler(sampler_overrides)
    if not isinstance(data, PatientTable):
        progress.step(f"reading {Path(data).name}")
    table = data if isinstance(data, PatientTable) else load_patients(data, design)
    check_enrolled(table, cutoff)  # before the ledger: a refused look leaves no ledger or lock
    out = Path(out)
    seed = design.sampler.seed if seed is None else int(seed)
    check_writable(out.parent, "the folder of --out")  # before the fit, not after it
    if ledger is not None:
        check_writable(Path(ledger).parent, "the ledger's folder")
    if ledger is None:
        check_out_dir(out)
        return _run_look(design, table, cutoff, out, seed)
    ledger = Path(ledger)
    if not ledger.exists():
        check_out_dir(out)  # no earlier look can make this an idempotent rerun
    progress.step(f"opening the ledger {ledger.name}")
    with Ledger.open(ledger, wait=wait) as book:
        notes = book.recover()
        same = book.same_inputs(table.sha256, design.sha256, cutoff.isoformat())
        if same and not force:
            mine = dict(design.sampler_overrides)
            match = [r for r in same if r.seed == seed and r.sampler_overrides == mine]
            if match:
                rec = match[-1]
                report_path = Path(rec.out_dir) / "recommendations.json"
                report = json.loads(report_path.read_text()) if report_path.is_file() else {}
                return LookResult(report=report, fits={}, out=Path(rec.out_dir), reused=rec, notes=notes)
            same_seed = [r for r in same if r.seed == seed]
            if same_seed:
                raise LedgerError(_other_sampler_message(ledger, same_seed[-1], mine))
            earlier = same[-1].seed
            how = "without --seed" if earlier == design.sampler.seed else f"with --seed {earlier}"
            raise LedgerError(
                f"the ledger {ledger} already holds {same[-1].describe()} on the same data, config and "
                f"cutoff with seed {earlier}, not {seed}. Rerun {how} to get that look back, or pass "
                "--force to record a second analysis of the same data with another seed (both stay in "
                "the ledger)."
            )
        later = book.later_looks(cutoff.isoformat())
        if later and not allow_out_of_order:
            raise LookOrderError(_out_of_order_message(ledger, cutoff, later))
        check_out_dir(out)
        stale = remove_stale_tmp(out)
        for folder in dict.fromkeys((out.absolute().parent, ledger.absolute().parent)):
            stale += remove_stale_tmp_in(folder)
        notes += [f"removed {p}, the temporary folder of a run that was killed" for p in stale]
        look = _run_look(
            design, table, cutoff, out, seed, book=book, forced=bool(force and same), later=later
        )
        look.notes[:0] = notes
        return look


def _other_sampler_message(ledger: Path, rec: LookRecord, mine: dict) -> str:
    def said(o: dict) -> str:
        return " ".join(f"--{k} {v}" for k, v in sorted(o.items())) or "the config's sampler settings"

    return (
        f"the ledger {ledger} already holds {rec.describe()} on the same data, config, cutoff and seed "
        f"made with {said(rec.sampler_overrides)}, not {said(mine)}. Pass --force to record a second "
        "analysis of the same data with these sampler settings (both stay in the ledger)."
    )


def look_schedule(design: Design, table: PatientTable, cutoff: date, made: int) -> dict:
    """The config's look schedule against the looks the ledger holds (``look_schedule``).

    ``adaptive simulate`` follows ``looks`` (every ``every_days`` days from the trial's start, or
    from the day the ``first_after_patients``-th patient was enrolled; or every ``every_patients``
    patients): its operating characteristics assume those looks. ``scheduled`` is how many of
    them fall on or before the cutoff, ``made`` how many looks the ledger holds with this one.
    More than one scheduled look missing gets a sentence for the DSMB: the early stopping the
    simulation credits the design with did not happen, so its error rates and power describe
    another trial.
    """
    cfg = design.raw.looks
    f = table.frame
    enrolled = sorted(d for d in f["enrolled_on"] if d is not None and d <= cutoff)
    if cfg.every_patients is not None:
        first = cfg.first_after_patients or cfg.every_patients
        scheduled = 0 if len(enrolled) < first else (len(enrolled) - first) // cfg.every_patients + 1
        plan = f"every {cfg.every_patients} patients" + (
            f" from the {first}th" if cfg.first_after_patients else ""
        )
    else:
        every = int(cfg.days)
        start = design.raw.trial.start_date or (enrolled[0] if enrolled else cutoff)
        if cfg.first_after_patients:
            if len(enrolled) < cfg.first_after_patients:
                start = None
            else:
                start = enrolled[cfg.first_after_patients - 1]
        scheduled = 0 if start is None else (cutoff - start).days // every + int(cfg.first_after_patients > 0)
        plan = f"every {every} days from {start}" if start is not None else f"every {every} days"
        if cfg.at_days and start is not None:
            day = (cutoff - start).days
            held = [d for d in cfg.at_days if d <= day]
            last = cfg.at_days[-1]
            scheduled = len(held) + (max(day - last, 0) // every if day >= last else 0)
            plan = f"on days {', '.join(map(str, cfg.at_days))} from {start}, then every {every} days"
    out = {"plan": plan, "scheduled": int(scheduled), "made": int(made), "sentence": None, "remedy": None}
    if made < scheduled - 1:
        out["sentence"] = (
            f"simulated with looks {plan} ({scheduled} by this cutoff), but the ledger holds {made}: "
            "the simulated error rates and power assume looks that were not made."
        )
        out["remedy"] = (
            "`adaptive simulate --looks-from-ledger LEDGER` simulates the looks the ledger holds, "
            "then the config's schedule after the last"
        )
    return out


def _out_of_order_message(ledger: Path, cutoff: date, later: list[LookRecord]) -> str:
    last = max(later, key=lambda r: (r.cutoff, r.look))
    return (
        f"this look's cutoff {cutoff} is before the cutoff {last.cutoff} of look {last.look} already in "
        f"the ledger {ledger.name}"
        + (f" (and of {len(later) - 1} other look(s))" if len(later) > 1 else "")
        + f": looks are made in cutoff order (look {last.look}'s data changes and allocation were "
        f"computed without this one). Use a cutoff on or after {last.cutoff}, or pass "
        "--allow-out-of-order to record it anyway (its previous look is then the latest one by "
        "cutoff, and the look says it was out of order)."
    )


def _run_look(
    design: Design,
    table: PatientTable,
    cutoff: date,
    out: Path,
    seed: int,
    *,
    book: Ledger | None = None,
    forced: bool = False,
    later: list[LookRecord] | None = None,
) -> LookResult:
    progress.step(f"deriving the endpoints as of {cutoff}")
    derived = derive(table, design, cutoff)
    if not len(derived.patients):
        from adaptive.exceptions import DataError

        raise DataError([Problem(table.source, f"no patient was enrolled on or before {cutoff}.")])
    previous = book.latest(cutoff=cutoff.isoformat()) if book else None  # by cutoff order
    previous_ok = book.latest(status="ok", cutoff=cutoff.isoformat()) if book else None
    snapshot = datadiff.snapshot(table)
    data_changes = None
    if previous is not None:
        data_changes = datadiff.diff(
            datadiff.decode(previous.snapshot),
            snapshot,
            previous_cutoff=date.fromisoformat(previous.cutoff),
            window_days={a.id: a.response_landmark_days for a in design.arms},
            previous_look=previous.look,
            previous_data_sha256=previous.data_sha256,
            current_data_sha256=table.sha256,
        )
    look_number = book.next_look() if book else None
    look_block = None
    if book is not None:
        look_block = {
            "number": look_number,
            "ledger": book.path.name,
            "forced": forced,
            "previous_look": None
            if previous is None
            else {"number": previous.look, "cutoff": previous.cutoff, "data_sha256": previous.data_sha256},
        }
        if later:
            look_block["out_of_order"] = {"later_looks": [r.look for r in later]}
        look_block["schedule"] = look_schedule(design, table, cutoff, made=look_number)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=FutureWarning)
        fits = fit_endpoints(design, derived, seed)
    converged = all(f.converged for f in fits.values())
    progress.step("evaluating the rules, the robustness panel and the companions")
    results = evaluate_rules(design, derived, fits, table) if converged else []
    report = build_report(design, table, derived, fits, results, seed)
    report = adapt_report(
        design,
        table,
        derived,
        fits,
        results,
        report,
        previous_allocation=_previous_allocation(previous_ok),
        previous_source=f"look {previous_ok.look}, cutoff {previous_ok.cutoff}" if previous_ok else "",
        look=look_block,
        data_changes=data_changes,
        allocation_history=_allocation_history(book),
    )
    text = canonical_json(report)
    progress.step(f"writing {out.name}")
    pending = False
    try:
        with atomic_dir(out) as tmp:
            write_posterior(tmp / "posterior.nc", fits)
            (tmp / "recommendations.json").write_text(text, encoding="utf-8")
            recon = look_reconciliation(table, derived)
            if recon is not None:  # a data-quality finding beside the look (header only when silent)
                (tmp / RECONCILIATION_FILE).write_text(recon.to_csv(), encoding="utf-8")
            if book is not None:
                rec = _record(look_number, report, text, out, design, table, cutoff, seed, forced, snapshot)
                if later:
                    rec.summary["out_of_order"] = [r.look for r in later]
                book.insert_pending(rec)
                pending = True
    except BaseException:
        if pending:
            book.discard_pending(look_number)
        raise
    if book is not None:
        book.mark_recorded(look_number)
    look = LookResult(report=report, fits=fits, results=results, out=out, look_number=look_number)
    if not converged:
        raise ConvergenceError(report["refusal"], reports=[look])
    return look


def _record(look_number, report, text, out, design, table, cutoff, seed, forced, snapshot) -> LookRecord:
    report = json.loads(text)  # the ledger holds exactly the (rounded) numbers of the file
    summary = look_summary(report)
    summary["allocation"] = {c: b["probabilities"] for c, b in (report.get("allocation") or {}).items()}
    summary["sampler_overrides"] = report.get("sampler_overrides") or {}
    return LookRecord(
        look=look_number,
        state="pending",
        recorded_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        cutoff=cutoff.isoformat(),
        status=report["status"],
        forced=forced,
        seed=seed,
        data_file=table.source,
        data_sha256=table.sha256,
        config_file=design.path.name if design.path else None,
        config_sha256=design.sha256,
        out_dir=str(out.resolve()),
        report_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        versions=report["versions"],
        diagnostics=report["diagnostics"],
        recommendations=report["recommendations"],
        summary=summary,
        data_changes=report["data_changes"],
        snapshot=datadiff.encode(snapshot),
    )
