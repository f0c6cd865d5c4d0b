"""Convergence diagnostics of a fit against configured limits."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import arviz as az
import numpy as np


@dataclass(frozen=True)
class Limits:
    """Limits a fit must meet (see the config's ``sampler.limits``)."""

    max_rhat: float = 1.01
    min_ess_bulk: float = 400
    min_ess_tail: float = 400
    max_divergences: int = 0


@dataclass(frozen=True)
class Diagnostics:
    """Worst-case diagnostics over the monitored variables of one fit."""

    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    converged: bool
    failures: tuple[str, ...]
    worst_variable: str

    def to_dict(self) -> dict:
        d = asdict(self)
        d["failures"] = list(self.failures)
        return d


def monitored_vars(idata: az.InferenceData) -> list[str]:
    """Variables checked: everything in the posterior except per-draw helper quantities."""
    skip = {"prob_exchangeable"}
    return [str(v) for v in idata["posterior"].data_vars if str(v) not in skip]


def diagnose(idata: az.InferenceData, limits: Limits) -> Diagnostics:
    """R-hat (rank-normalised, split), bulk/tail ESS and divergences against ``limits``."""
    var_names = monitored_vars(idata)
    post = idata["posterior"][var_names]
    rhat = az.rhat(post)
    ess_b = az.ess(post, method="bulk")
    ess_t = az.ess(post, method="tail")

    def worst(ds, fn):
        best_v, best_name = None, ""
        for name, da in ds.data_vars.items():
            vals = np.asarray(da.values, dtype=float).ravel()
            vals = vals[np.isfinite(vals)]
            if vals.size == 0:
                continue
            v = fn(vals)
            if best_v is None or fn([best_v, v]) == v:
                best_v, best_name = float(v), str(name)
        return (best_v if best_v is not None else float("nan")), best_name

    max_rhat, rhat_var = worst(rhat, np.max)
    min_bulk, bulk_var = worst(ess_b, np.min)
    min_tail, _ = worst(ess_t, np.min)
    div = (
        int(np.asarray(idata["sample_stats"]["diverging"]).sum())
        if "diverging" in idata["sample_stats"]
        else 0
    )
    failures = []
    if not max_rhat <= limits.max_rhat:
        failures.append(f"max R-hat {max_rhat:.4f} ({rhat_var}) exceeds {limits.max_rhat}")
    if not min_bulk >= limits.min_ess_bulk:
        failures.append(f"min bulk ESS {min_bulk:.0f} ({bulk_var}) is below {limits.min_ess_bulk:g}")
    if not min_tail >= limits.min_ess_tail:
        failures.append(f"min tail ESS {min_tail:.0f} is below {limits.min_ess_tail:g}")
    if div > limits.max_divergences:
        failures.append(f"{div} divergent transitions (limit {limits.max_divergences})")
    return Diagnostics(
        max_rhat=max_rhat,
        min_ess_bulk=min_bulk,
        min_ess_tail=min_tail,
        divergences=div,
        converged=not failures,
        failures=tuple(failures),
        worst_variable=rhat_var,
    )
