"""Robustness of a look's decisions: declared alternative analyses, prior ESS, prior-data conflict.

A DSMB acts on a decision only if it survives reasonable changes of the assumptions behind it.
The config declares alternative analyses (``sensitivity.analyses``, each a combination of):

* ``binary_prior``: another Beta prior for the binary endpoints (``uniform``, ``jeffreys``,
  ``unit_information``), each arm alone (for a borrowing endpoint: no borrowing); superiority
  rules get it for both arms of the comparison;
* ``reference_shift``: the reference rates of the efficacy, futility and predictive rules moved
  by this much (e.g. -0.05: a null five points lower); harm limits are never moved;
* ``survival_benchmark_scale``: the survival rules' benchmark medians times this factor;
* ``survival_level_sd``: another prior sd of the survival arm levels (independent models).

At each look every evaluated rule result is recomputed under each alternative, with the exact
engines (conjugate Beta quantities, the predictive probability by enumeration, survival by
:class:`models.survival_batch.SurvivalBatch` or from the fit's draws for a moved benchmark): no
refit, so the panel costs well under a second. A result whose firing changes under any
alternative is **fragile**: its arm's recommendation says so, and ``robustness`` in
``recommendations.json`` lists every value.

Per arm and endpoint also (``robustness.priors``):

* the **prior effective sample size**: ``a + b`` of a Beta prior (Morita, Thall & Müller 2008
  and the ELIR of Neuenschwander et al. 2020 agree on it), ``1 / s^2`` events for a Normal(m, s)
  prior on a log hazard (the Fisher information of one event about a log rate);
* **prior-data conflict** (Box 1980): the two-sided tail probability of the observed count
  under the prior predictive distribution, ``min(1, 2 min(P(Y <= y), P(Y >= y)))``: beta-binomial
  for a Beta prior; for a survival arm, the events given the arm's days at risk under
  ``Poisson(E h)``, ``log h ~ Normal(m, s)`` (a constant hazard: the baseline shape is ignored
  here, so it is an approximation), by Gauss-Hermite quadrature. Below
  ``sensitivity.conflict_level`` it is named in the arm's sentence.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

from adaptive.config import Design
from adaptive.data import PatientTable
from adaptive.derive import DerivedData
from decision_rules.beta import LOOK_GRID_SPACING, beta_prior, beta_prob_above, beta_prob_better
from decision_rules.rules import Harm, PredictiveEfficacy, PredictiveFutility, RuleResult, Superiority
from decision_rules.survival import HazardRatioSuperiority, MedianEfficacy, MedianFutility, SurvivalPosterior
from decision_rules.vocabulary import fmt_prob

_MEDIAN = (MedianEfficacy, MedianFutility)
_PREDICTIVE = (PredictiveFutility, PredictiveEfficacy)


# ============================================================================= prior ESS and conflict
def beta_binomial_conflict(y: int, n: int, a: float, b: float) -> float:
    """Box's prior-predictive tail probability of ``y`` of ``n`` under a ``Beta(a, b)`` prior."""
    if n == 0:
        return 1.0
    pred = stats.betabinom(n, a, b)
    return float(min(1.0, 2.0 * min(pred.cdf(y), pred.sf(y - 1))))


def poisson_lognormal_conflict(d: int, exposure: float, m: float, s: float, nodes: int = 80) -> float:
    """Tail probability of ``d`` events in ``exposure`` days, ``log h ~ Normal(m, s)`` (Gauss-Hermite)."""
    if exposure <= 0:
        return 1.0
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / w.sum()
    mu = exposure * np.exp(m + s * x)
    low = float(np.sum(w * stats.poisson.cdf(d, mu)))
    high = float(np.sum(w * stats.poisson.sf(d - 1, mu)))
    return float(min(1.0, 2.0 * min(low, high)))


def prior_checks(design: Design, derived: DerivedData) -> list[dict]:
    """Prior ESS and prior-data conflict per modelled arm and endpoint (module docstring)."""
    level = design.sensitivity.conflict_level
    out = []
    for ep, cfg in design.endpoints.items():
        model = cfg.model
        if model.kind != "independent":
            continue  # borrowing priors: their ESS is in the borrowing block (models.exact.prior_ess)
        for arm in design.modelled_arms:
            c = derived.counts[ep].get(arm)
            if c is None:
                continue
            null = design.arm(arm).rates[ep].null_rate
            a, b = (float(v) for v in beta_prior(model.prior, null))
            p = beta_binomial_conflict(c.responders, c.n_evaluable, a, b)
            out.append(
                {
                    "arm": arm,
                    "endpoint": ep,
                    "prior": f"Beta({a:.3g}, {b:.3g})",
                    "prior_ess": a + b,
                    "ess_unit": "patients",
                    "observed": f"{c.responders}/{c.n_evaluable}",
                    "conflict_p": p,
                    "conflict": p < level,
                }
            )
    if design.survival is not None:
        for ep, scfg in design.survival.endpoints.items():
            model = scfg.model
            if model.kind != "independent" or ep not in derived.survival.times:
                continue
            medians, _ = design.survival_prior(ep, design.modelled_arms)
            s = model.level.sd
            for arm, med in zip(design.modelled_arms, medians, strict=True):
                f = derived.survival.arm_times(ep, arm)
                cont = f.loc[~f["day0"]]
                d, e = int(cont["event"].sum()), float(cont["time"].sum())
                p = poisson_lognormal_conflict(d, e, float(np.log(np.log(2.0) / med)), s)
                out.append(
                    {
                        "arm": arm,
                        "endpoint": ep,
                        "prior": f"log hazard ~ Normal(log(ln 2 / {med:g} days), {s:g})",
                        "prior_ess": 1.0 / s**2,
                        "ess_unit": "events",
                        "observed": f"{d} events in {e:.0f} days",
                        "conflict_p": p,
                        "conflict": p < level,
                    }
                )
    return out


# ============================================================================= alternative analyses
class _Context:
    """What the alternatives read: the look's counts, fits and survival data (computed once)."""

    def __init__(
        self, design: Design, derived: DerivedData, fits: Mapping, table: PatientTable | None = None
    ):
        self.design = design
        self.derived = derived
        self.fits = fits
        self.table = table
        self._survival: dict = {}

    def survival_post(self, endpoint: str, level_sd: float):
        """The exact survival engine's posterior of the look's data with another level sd (or None)."""
        key = (endpoint, level_sd)
        if key not in self._survival:
            from adaptive.interim import survival_data
            from adaptive.survival_comparison import survival_batch

            cfg = self.design.survival.endpoints[endpoint].model
            data = survival_data(self.design, self.derived, endpoint)
            if cfg.kind != "independent" or data.has_day0:
                self._survival[key] = None
            else:
                batch = survival_batch(self.design, endpoint, data.arms, level_sd=level_sd)
                post = batch.posterior(np.asarray(data.events)[None], np.asarray(data.exposure)[None])
                self._survival[key] = (data.arms, post)
        return self._survival[key]


def _binary_prob(ctx: _Context, rule, r: RuleResult, alt) -> tuple[float, int] | None:
    """``(P(p > reference'), n)`` of a single-arm binary rule result under ``alt``."""
    arm = r.arms[0]
    ep = rule.endpoint
    c = ctx.derived.counts[ep][arm]
    tier = rule
    if isinstance(rule, Harm):
        tier = next(t for t in rule.tiers if t.action == r.action)
    ref = float(tier.references[arm])
    if alt.reference_shift is not None and not isinstance(rule, Harm):
        ref = float(np.clip(ref + alt.reference_shift, 0.0, 1.0))
    model = ctx.design.endpoints[ep].model
    if alt.binary_prior is not None or model.kind == "independent":
        name = alt.binary_prior or model.prior
        a, b = beta_prior(name, ctx.design.arm(arm).rates[ep].null_rate)
        return float(beta_prob_above(a + c.responders, b + c.n_evaluable - c.responders, ref)), c.n_evaluable
    draws = ctx.fits[ep].idata.posterior["p"].sel(arm=arm).values
    return float(np.mean(draws > ref)), c.n_evaluable


def _alternative(ctx: _Context, rule, r: RuleResult, alt) -> dict | None:
    """One rule result recomputed under one alternative: ``{prob, fired}``, or None if it does not apply."""
    if isinstance(rule, Superiority):
        if alt.binary_prior is None:
            return None
        n, y = r.extra.get("n_evaluable_by_arm"), r.extra.get("responders_by_arm")
        if n is None or y is None:
            return None
        better, worse = str(r.extra["better"]), str(r.extra["inferior"])
        nulls = {x: ctx.design.arm(x).rates[rule.endpoint].null_rate for x in rule.arms}
        ab = {x: beta_prior(alt.binary_prior, nulls[x]) for x in rule.arms}
        post = {x: (float(ab[x][0]) + y[x], float(ab[x][1]) + n[x] - y[x]) for x in rule.arms}
        p = float(
            beta_prob_better(  # on the look's grid, as the comparison itself (BetaPosterior)
                *post[better],
                *post[worse],
                rule.margin_rate,
                higher_is_better=rule.higher_is_better,
                spacing=LOOK_GRID_SPACING,
            )
        )
        return {"prob": p, "fired": bool(rule.decide(p, (n[better], n[worse])))}
    if isinstance(rule, _PREDICTIVE):
        if alt.binary_prior is None and alt.reference_shift is None:
            return None
        arm = r.arms[0]
        c = ctx.derived.counts[rule.endpoint][arm]
        model = ctx.design.endpoints[rule.endpoint].model
        name = alt.binary_prior or (model.prior if model.kind == "independent" else "uniform")
        a, b = beta_prior(name, ctx.design.arm(arm).rates[rule.endpoint].null_rate)
        shifted = rule
        if alt.reference_shift is not None:
            refs = {
                x: float(np.clip(v + alt.reference_shift, 0, 1)) for x, v in rule.success_references.items()
            }
            shifted = dataclasses.replace(rule, success_references=refs)
        prob, _, fired = shifted.decide_beta_arrays(
            np.array([a + c.responders]),
            np.array([b + c.n_evaluable - c.responders]),
            np.array([c.n_evaluable]),
            arm,
        )
        return {"prob": float(prob[0]), "fired": bool(fired[0])}
    if isinstance(rule, _MEDIAN):
        arm = r.arms[0]
        ref = float(rule.references[arm])
        if alt.survival_benchmark_scale is None and alt.survival_level_sd is None:
            return None
        ref *= alt.survival_benchmark_scale or 1.0
        events = int(r.n_evaluable[0])
        if alt.survival_level_sd is not None:
            got = ctx.survival_post(rule.endpoint, alt.survival_level_sd)
            if got is None or arm not in got[0]:
                return None
            arms, post = got
            p = float(post.prob_median_above(arms.index(arm), ref)[0])
        else:
            p = float(
                SurvivalPosterior(ctx.fits[rule.endpoint].idata.posterior).prob_median_above(arm, ref).prob
            )
        return {"prob": p, "fired": bool(rule.decide(p, events))}
    if isinstance(rule, HazardRatioSuperiority):
        if alt.survival_level_sd is None:
            return None
        # the rule's own population (the concurrently randomized patients of its pair), another sd
        from adaptive.survival_comparison import pair_survival

        a, b = rule.arms
        post = pair_survival(
            ctx.design, ctx.table, ctx.derived, rule.endpoint, rule.arms, alt.survival_level_sd
        ).posterior
        p_ab = post.prob_hr_below(a, b, rule.hr_margin).prob
        p_ba = post.prob_hr_below(b, a, rule.hr_margin).prob
        p = max(p_ab, p_ba)
        # the direction the primary analysis favours, for the table
        shown = p_ab if str(r.extra.get("better", a)) == a else p_ba
        return {"prob": shown, "fired": bool(rule.decide(p, tuple(int(v) for v in r.n_evaluable)))}
    # efficacy, futility, harm on a binary endpoint
    if alt.binary_prior is None and (alt.reference_shift is None or isinstance(rule, Harm)):
        return None
    got = _binary_prob(ctx, rule, r, alt)
    if got is None:
        return None
    p, n = got
    tier = next(t for t in rule.tiers if t.action == r.action) if isinstance(rule, Harm) else rule
    return {"prob": p, "fired": bool(tier.decide(p, n))}


def robustness_panel(
    design: Design,
    derived: DerivedData,
    fits: Mapping,
    results: Sequence[RuleResult],
    table: PatientTable | None = None,
) -> dict:
    """Every evaluated rule result under every declared alternative, prior ESS and conflict.

    ``table``: the look's patients, for the hazard-ratio rules' concurrently randomized patients
    (:func:`adaptive.survival_comparison.pair_survival`; without it, all patients of the pair).
    """
    analyses = design.sensitivity.analyses
    by_id = {r.id: r for r in design.rules}
    ctx = _Context(design, derived, fits, table)
    rows = []
    for r in results:
        rule = by_id.get(r.rule)
        if rule is None or not r.evaluated or not analyses:
            continue
        alts = []
        for alt in analyses:
            got = _alternative(ctx, rule, r, alt)
            if got is not None:
                alts.append({"analysis": alt.id, **got})
        flips = [x["analysis"] for x in alts if x["fired"] != r.fired]
        rows.append(
            {
                "rule": r.rule,
                "kind": str(r.kind),
                "action": str(r.action),
                "endpoint": r.endpoint,
                "arms": list(r.arms),
                "quantity": r.quantity,
                "threshold": r.threshold,
                "prob": r.prob,
                "fired": r.fired,
                "alternatives": alts,
                "fragile": bool(flips),
                "flips_under": flips,
            }
        )
    return {
        "analyses": [a.model_dump(mode="json", exclude_none=True) for a in analyses],
        "conflict_level": design.sensitivity.conflict_level,
        "results": rows,
        "priors": prior_checks(design, derived),
    }


def annotate(recommendations: list[dict], panel: dict, design: Design) -> list[dict]:
    """Name fragile decisions and prior-data conflicts in the recommendations of their arms."""
    out = []
    for rec in recommendations:
        arm = rec.get("arm")
        if not arm:
            out.append(rec)
            continue
        rec = dict(rec)
        fragile = [x for x in panel["results"] if x["fragile"] and arm in x["arms"]]
        if fragile:
            rec["fragile"] = [
                {"rule": x["rule"], "action": x["action"], "flips_under": x["flips_under"]} for x in fragile
            ]
            words = "; ".join(
                f"{x['rule']} ({x['action']}) {'would not fire' if x['fired'] else 'would fire'} under "
                f"{', '.join(x['flips_under'])}"
                for x in fragile
            )
            rec["sentence"] += f" Fragile: {words} (declared alternative analyses, robustness panel)."
        conflicts = [c for c in panel["priors"] if c["arm"] == arm and c["conflict"]]
        if conflicts:
            rec["prior_data_conflict"] = [
                {"endpoint": c["endpoint"], "conflict_p": c["conflict_p"]} for c in conflicts
            ]
            words = "; ".join(
                f"{c['endpoint']} ({c['observed']}, prior {c['prior']}: tail probability "
                f"{fmt_prob(c['conflict_p'])})"
                for c in conflicts
            )
            rec["sentence"] += (
                f" Prior-data conflict: {words}, below {fmt_prob(panel['conflict_level'])}; the prior is far "
                "from the data, so its choice matters (see the robustness panel)."
            )
        out.append(rec)
    return out


__all__ = [
    "annotate",
    "beta_binomial_conflict",
    "poisson_lognormal_conflict",
    "prior_checks",
    "robustness_panel",
]
