"""One interim look, end to end: validate everything, fit, evaluate rules, write (atomically).

:func:`run_interim` is the only function that wires a look together; the CLI is a thin shell
around it. Order matters: all validation (config, data, output folder) happens before any
sampling, and nothing is written until every fit has been checked.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from adaptive.config import Design, load_config
from adaptive.data import PatientTable, load_patients
from adaptive.derive import DerivedData, derive
from adaptive.endpoints import BINARY_ENDPOINTS
from adaptive.exceptions import ConvergenceError, Problem
from adaptive.output import atomic_dir, canonical_json, check_out_dir, versions
from decision_rules import DrawsPosterior, RuleResult, Superiority
from models.binary import BinaryData, model_from_config
from models.diagnostics import Limits
from models.fitting import FitResult, fit_with_retries
from models.sampling import SamplerSettings

SCHEMA = "rr-aml-adaptive/interim/v1"


@dataclass
class LookResult:
    """Everything a look produced (what is written to ``recommendations.json`` and more)."""

    report: dict
    fits: dict[str, FitResult]
    results: list[RuleResult] = field(default_factory=list)
    out: Path | None = None

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


def fit_endpoints(design: Design, derived: DerivedData, seed: int) -> dict[str, FitResult]:
    """Fit the configured model of every binary endpoint (with retries)."""
    settings = sampler_settings(design)
    lim = design.sampler.limits
    limits = Limits(lim.max_rhat, lim.min_ess_bulk, lim.min_ess_tail, lim.max_divergences)
    retries = tuple((r.tune, r.target_accept) for r in design.sampler.retries)
    fits = {}
    for endpoint, cfg in design.endpoints.items():
        model = model_from_config(cfg.model)
        fits[endpoint] = fit_with_retries(
            model,
            binary_data(design, derived, endpoint),
            seed=seed,
            label=endpoint,
            settings=settings,
            limits=limits,
            retries=retries,
        )
    return fits


def evaluate_rules(design: Design, derived: DerivedData, fits: dict[str, FitResult]) -> list[RuleResult]:
    """Every configured rule on the posterior draws of its endpoint."""
    results: list[RuleResult] = []
    for rule in design.rules:
        posterior = DrawsPosterior(fits[rule.endpoint].idata.posterior["p"])
        n_eval = {a: c.n_evaluable for a, c in derived.counts[rule.endpoint].items()}
        results += rule.evaluate(posterior, n_eval, design.labels)
    return results


def _endpoint_summary(
    design: Design, derived: DerivedData, fit: FitResult | None, endpoint: str, arm: str
) -> dict:
    counts = derived.counts[endpoint][arm]
    rates = design.arm(arm).rates[endpoint]
    out: dict = {
        "n_evaluable": counts.n_evaluable,
        "responders": counts.responders,
        "n_pending": counts.n_pending,
        "n_not_evaluable": counts.n_lost,
        "observed_rate": counts.responders / counts.n_evaluable if counts.n_evaluable else None,
        "null_rate": rates.null_rate,
        "target_rate": rates.target_rate,
        "limit_rate": rates.limit_rate,
        "model": design.endpoints[endpoint].model.kind,
    }
    if fit is None or not fit.converged or arm not in design.modelled_arms:
        out.update(
            mean=None, ci95_low=None, ci95_high=None, prob_above_null=None, prob_above_target=None, mcse=None
        )
        return out
    post = DrawsPosterior(fit.idata.posterior["p"])
    draws = fit.idata.posterior["p"].sel(arm=arm).values
    sd = float(draws.std(ddof=1))
    from arviz import ess

    ess_mean = float(ess(draws, method="mean"))
    lo, med, hi = post.quantile(arm, [0.025, 0.5, 0.975])
    above_null = post.prob_above(arm, rates.null_rate)
    out.update(
        mean=post.mean(arm),
        median=med,
        ci95_low=lo,
        ci95_high=hi,
        prob_above_null=above_null.prob,
        mcse=sd / np.sqrt(ess_mean),
        mcse_prob_above_null=above_null.mcse,
    )
    for name, ref in (("target", rates.target_rate), ("limit", rates.limit_rate)):
        if ref is not None:
            est = post.prob_above(arm, ref)
            out[f"prob_above_{name}"] = est.prob
            out[f"mcse_prob_above_{name}"] = est.mcse
        elif name == "target":
            out["prob_above_target"] = None
    if "prob_exchangeable" in fit.idata.posterior:
        out["prob_exchangeable"] = float(fit.idata.posterior["prob_exchangeable"].sel(arm=arm).mean())
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
    arms = []
    for a in design.arms:
        arm_results = [r for r in results if r.arms == (a.id,)]
        arms.append(
            {
                "arm": a.id,
                "label": a.label,
                "status": a.status,
                "max_n": a.max_n,
                "n_enrolled": derived.n_enrolled.get(a.id, 0),
                "is_complete": derived.n_enrolled.get(a.id, 0) >= a.max_n,
                "endpoints": {
                    ep: _endpoint_summary(design, derived, fits.get(ep), ep, a.id) for ep in design.endpoints
                },
                "rules": [r.to_dict() for r in arm_results],
            }
        )
    comparisons = [r.to_dict() for r in results if r.kind == Superiority.kind]
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
        "config_file": design.path.name if design.path else None,
        "config_sha256": design.sha256,
        "data_file": table.source,
        "data_sha256": table.sha256,
        "versions": versions(),
        "endpoint_definitions": {ep: BINARY_ENDPOINTS[ep].definition for ep in design.endpoints},
        "diagnostics": _diagnostics_block(fits),
        "arms": arms,
        "comparisons": comparisons,
        "fired": [r.sentence for r in results if r.fired] if converged else [],
        "warnings": [str(w) for w in (*table.warnings, *derived.warnings)],
        "config": design.as_dict(),
    }
    return report


def write_posterior(path: Path, fits: dict[str, FitResult]) -> None:
    """All endpoints' InferenceData in one NetCDF file, one group per endpoint.

    Read one back with ``az.InferenceData.from_netcdf(path, base_group="crc")``.
    """
    first = True
    for ep, fit in fits.items():
        fit.idata.to_netcdf(str(path), base_group=ep, overwrite_existing=first)
        first = False


def run_interim(
    config: str | Path | Design,
    data: str | Path | PatientTable,
    cutoff: date,
    out: str | Path,
    seed: int | None = None,
) -> LookResult:
    """Run one interim look and write ``recommendations.json`` and ``posterior.nc`` into ``out``.

    Raises
    ------
    ConfigError, DataError
        Before anything is fitted.
    OutputExistsError
        If ``out`` already holds files.
    ConvergenceError
        After writing a look marked ``"status": "refused"`` (with diagnostics, no rules), when a
        fit fails the convergence limits after every retry.
    """
    design = config if isinstance(config, Design) else load_config(config)
    table = data if isinstance(data, PatientTable) else load_patients(data, design)
    out = Path(out)
    check_out_dir(out)
    seed = design.sampler.seed if seed is None else int(seed)
    derived = derive(table, design, cutoff)
    if not len(derived.patients):
        from adaptive.exceptions import DataError

        raise DataError([Problem(table.source, f"no patient was enrolled on or before {cutoff}.")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=FutureWarning)
        fits = fit_endpoints(design, derived, seed)
    converged = all(f.converged for f in fits.values())
    results = evaluate_rules(design, derived, fits) if converged else []
    report = build_report(design, table, derived, fits, results, seed)
    with atomic_dir(out) as tmp:
        write_posterior(tmp / "posterior.nc", fits)
        (tmp / "recommendations.json").write_text(canonical_json(report), encoding="utf-8")
    look = LookResult(report=report, fits=fits, results=results, out=out)
    if not converged:
        raise ConvergenceError(report["refusal"], reports=[look])
    return look
