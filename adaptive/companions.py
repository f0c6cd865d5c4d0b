"""Frequentist companions of a look: the classical numbers beside every posterior, not decision rules.

A DSMB expects the classical numbers next to the Bayesian ones. At each look, from maintained
libraries (no hand-written estimators), labelled :data:`LABEL` everywhere they appear:

* **per arm and binary endpoint**: evaluable patients, responders (events), the Clopper-Pearson
  exact 95% interval (``scipy.stats.binomtest(...).proportion_ci(method="exact")``) and the exact
  one-sided binomial test against the arm's configured ``null_rate`` for the endpoint,
  alternative "rate > null": for a response endpoint the efficacy direction (more responders than
  the null), for a mortality endpoint the harm direction (more deaths than the expected rate);
* **per randomized pair and binary endpoint**, on the concurrently randomized evaluable patients
  (the patients the superiority rule reads, :func:`adaptive.randomization.concurrent_counts`):
  Fisher's exact test (``scipy.stats.fisher_exact``), two-sided and one-sided in the direction
  "experimental better" (a higher rate for response, a lower one for mortality), and the
  Newcombe hybrid-score 95% interval of the difference experimental - reference (statsmodels
  ``confint_proportions_2indep(method="newcomb")``; Newcombe 1998, method 10);
* **per arm and survival endpoint** (OS, EFS, RFS as :mod:`adaptive.survival_data` derives them):
  the Kaplan-Meier median (:func:`adaptive.survival_data.km_median`: R's convention on
  statsmodels' curve) with the Brookmeyer-Crowley 95% interval (where the Greenwood log(-log)
  band of statsmodels' curve crosses 0.5, as R and lifelines read it), and survival at
  180 / 365 / 730 days with Greenwood 95% intervals on the log(-log) scale, with the numbers at
  risk; ``None`` past the arm's longest follow-up;
* **per randomized pair and survival endpoint**, on the concurrently randomized patients: the
  log-rank test (``statsmodels.duration.survdiff``) and the Cox hazard ratio experimental :
  reference with Efron ties and a Wald 95% interval (``PHReg(ties="efron")``). RFS and EFS-MRD
  start at the response date (responders only): their comparison is labelled not randomized,
  descriptive, as in the Bayesian survival comparisons.

statsmodels is already a runtime dependency (Aalen-Johansen, Mantel-Haenszel); lifelines is the
tests' second, independent implementation. All of it is closed-form: milliseconds per look.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

import numpy as np

from adaptive.config import Design
from adaptive.data import PatientTable
from adaptive.derive import DerivedData
from adaptive.endpoints import BINARY_ENDPOINTS, POINT_MASS_DAYS, RESPONDER_ENDPOINTS, SURVIVAL_ENDPOINTS
from adaptive.randomization import concurrent_counts, concurrent_ids, concurrent_window
from adaptive.survival_data import kaplan_meier_fit, km_median

#: the label of every companion number, in JSON, CLI and memo
LABEL = "frequentist companion, not a decision rule"
#: days at which Kaplan-Meier survival is reported
HORIZONS_DAYS = (180, 365, 730)
#: days at which the memo's numbers-at-risk tables count patients
AT_RISK_DAYS = (0, 90, 180, 365, 545, 730)
_Z = 1.959963984540054


def _none_if_nan(x) -> float | None:
    x = float(x)
    return None if not np.isfinite(x) else x


# ============================================================================= binary
def binomial_companion(y: int, n: int, null: float, higher_is_better: bool = True) -> dict:
    """Clopper-Pearson 95% interval and the exact one-sided binomial test of "rate > null".

    ``higher_is_better`` names what "rate > null" means: efficacy (response) or harm (mortality).
    """
    from scipy.stats import binomtest

    out: dict = {
        "n": int(n),
        "events": int(y),
        "rate": y / n if n else None,
        "null_rate": null,
        "alternative": "greater",
        "direction": "efficacy" if higher_is_better else "harm",
        "ci95_low": None,
        "ci95_high": None,
        "p_one_sided": None,
    }
    if n:
        res = binomtest(int(y), int(n), float(null), alternative="greater")
        ci = binomtest(int(y), int(n)).proportion_ci(confidence_level=0.95, method="exact")
        out.update(ci95_low=float(ci.low), ci95_high=float(ci.high), p_one_sided=float(res.pvalue))
    return out


def pair_binary_companion(ya: int, na: int, yb: int, nb: int, higher_is_better: bool = True) -> dict:
    """Fisher's exact test and the Newcombe hybrid-score interval of ``rate_a - rate_b``.

    ``a`` is the experimental arm, ``b`` the reference; the one-sided p-value tests "a better"
    (a higher rate when ``higher_is_better``, else a lower one).
    """
    from scipy.stats import fisher_exact
    from statsmodels.stats.proportion import confint_proportions_2indep

    alt = "greater" if higher_is_better else "less"
    out: dict = {
        "n": [int(na), int(nb)],
        "events": [int(ya), int(yb)],
        "difference": None,
        "ci95_low": None,
        "ci95_high": None,
        "odds_ratio": None,
        "p_two_sided": None,
        "p_one_sided": None,
        "one_sided_alternative": f"odds ratio {'>' if higher_is_better else '<'} 1 (experimental better)",
    }
    if not (na and nb):
        return out
    table = np.array([[ya, na - ya], [yb, nb - yb]])
    two = fisher_exact(table, alternative="two-sided")
    one = fisher_exact(table, alternative=alt)
    lo, hi = confint_proportions_2indep(ya, na, yb, nb, method="newcomb", compare="diff", alpha=0.05)
    out.update(
        difference=ya / na - yb / nb,
        ci95_low=float(lo),
        ci95_high=float(hi),
        odds_ratio=_none_if_nan(two.statistic),
        p_two_sided=float(two.pvalue),
        p_one_sided=float(one.pvalue),
    )
    return out


# ============================================================================= survival
def _loglog_interval(s: float, se: float) -> tuple[float | None, float | None]:
    """Greenwood 95% interval of S on the log(-log) scale (lifelines' "exponential Greenwood")."""
    if not (0.0 < s < 1.0) or not se > 0:
        return None, None
    z = _Z * se / (s * np.log(s))
    lo, hi = s ** np.exp(-z), s ** np.exp(z)
    return float(min(lo, hi)), float(max(lo, hi))


def _median_interval(sf) -> tuple[float | None, float | None]:
    """Brookmeyer-Crowley 95% interval of the median: where the pointwise band crosses 0.5.

    The band is the Greenwood log(-log) 95% band of statsmodels' curve; the lower limit is the
    first event time at which the band's lower edge is at or below 0.5, the upper limit the first
    at which its upper edge is (``None``: not reached). This is how R's ``survfit`` and lifelines
    (``median_survival_times(confidence_interval_)``) read the interval off the band.
    statsmodels' ``quantile_ci`` inverts the same tests at the event times only, so it returns no
    interval when the curve jumps across 0.5 at one time (the ELN EFS day-1 treatment failures).
    """
    t = np.asarray(sf.surv_times, dtype=float)
    lo_band, hi_band = [], []
    for s, se in zip(sf.surv_prob, sf.surv_prob_se, strict=True):
        lo, hi = _loglog_interval(float(s), float(se))
        lo_band.append(float(s) if lo is None else lo)
        hi_band.append(float(s) if hi is None else hi)
    below_lo = np.flatnonzero(np.asarray(lo_band) <= 0.5)
    below_hi = np.flatnonzero(np.asarray(hi_band) <= 0.5)
    return (
        float(t[below_lo[0]]) if below_lo.size else None,
        float(t[below_hi[0]]) if below_hi.size else None,
    )


def km_companion(time: np.ndarray, event: np.ndarray, horizons: Iterable[int] = HORIZONS_DAYS) -> dict:
    """Kaplan-Meier median with its Brookmeyer-Crowley 95% interval, survival at ``horizons``.

    The median follows R's convention (:func:`adaptive.survival_data.km_median`); its interval
    is read off the pointwise log(-log) band (:func:`_median_interval`; limits are event times,
    ``median_ci95_high`` ``None``: not reached). ``at[h]`` is ``None`` past the longest follow-up.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float)
    out: dict = {
        "n": int(time.size),
        "events": int(event.sum()),
        "median_days": None,
        "median_ci95_low": None,
        "median_ci95_high": None,
        "at": {},
    }
    sf = kaplan_meier_fit(time, event)
    last = float(time.max()) if time.size else 0.0
    has_events = sf is not None and len(sf.surv_prob) > 0
    if has_events:
        out["median_days"] = km_median(time, event)
        out["median_ci95_low"], out["median_ci95_high"] = _median_interval(sf)
    for h in horizons:
        if h > last or not time.size:
            out["at"][str(int(h))] = None
            continue
        n_risk = int((time >= h).sum())
        k = np.searchsorted(sf.surv_times, h, side="right") - 1 if has_events else -1
        if k < 0:
            out["at"][str(int(h))] = {"survival": 1.0, "ci95_low": None, "ci95_high": None}
            out["at"][str(int(h))]["n_at_risk"] = n_risk
            continue
        s, se = float(sf.surv_prob[k]), float(sf.surv_prob_se[k])
        lo, hi = _loglog_interval(s, se)
        out["at"][str(int(h))] = {"survival": s, "ci95_low": lo, "ci95_high": hi, "n_at_risk": n_risk}
    return out


def numbers_at_risk(time: np.ndarray, days: Iterable[int] = AT_RISK_DAYS) -> list[int]:
    """Patients still at risk (time >= day) at each of ``days``, as under a Kaplan-Meier plot."""
    time = np.asarray(time, dtype=float)
    return [int((time >= d).sum()) for d in days]


def pair_survival_companion(time: np.ndarray, event: np.ndarray, experimental: np.ndarray) -> dict:
    """Log-rank test and Cox hazard ratio (Efron ties, Wald 95% interval), experimental : reference.

    ``experimental`` is 1 for the experimental arm's patients, 0 for the reference arm's.
    """
    from statsmodels.duration.hazard_regression import PHReg
    from statsmodels.duration.survfunc import survdiff

    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float)
    x = np.asarray(experimental, dtype=float)
    out: dict = {
        "n": [int((x == 1).sum()), int((x == 0).sum())],
        "events": [int(event[x == 1].sum()), int(event[x == 0].sum())],
        "logrank_chi2": None,
        "logrank_p": None,
        "hazard_ratio": None,
        "ci95_low": None,
        "ci95_high": None,
        "wald_p": None,
        "ties": "efron",
    }
    if min(out["n"]) == 0 or event.sum() == 0:
        return out
    try:
        with np.errstate(divide="ignore", invalid="ignore"):
            chi2, p = survdiff(time, event, x)
    except np.linalg.LinAlgError:  # no event while both arms were at risk: no information
        return out
    if not np.isfinite(chi2):
        return out
    out.update(logrank_chi2=float(chi2), logrank_p=float(p))
    if min(out["events"]) == 0:
        return out  # a Cox estimate on its boundary (HR 0 or infinite): the log-rank test only
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = PHReg(time, x[:, None], status=event, ties="efron").fit()
    beta, se = float(fit.params[0]), float(fit.bse[0])
    if np.isfinite(beta) and np.isfinite(se) and se > 0:
        from scipy.stats import norm

        out.update(
            hazard_ratio=float(np.exp(beta)),
            ci95_low=float(np.exp(beta - _Z * se)),
            ci95_high=float(np.exp(beta + _Z * se)),
            wald_p=float(2 * norm.sf(abs(beta / se))),
        )
    return out


# ============================================================================= a look
def _fmt_p(p: float | None) -> str:
    if p is None:
        return "-"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def binary_text(c: dict) -> str:
    """One arm's binary companion in a table cell: rate, Clopper-Pearson interval, one-sided p."""
    if not c["n"]:
        return "no evaluable patient"
    return (
        f"{c['events']}/{c['n']} {100 * c['rate']:.0f}% (CP {_pct(c['ci95_low'])}-{_pct(c['ci95_high'])}); "
        f"vs {100 * c['null_rate']:.0f}% {_fmt_p(c['p_one_sided'])}"
    )


def km_text(c: dict) -> str:
    """One arm's Kaplan-Meier median with its Brookmeyer-Crowley interval, in days."""

    def d(x):
        return "NR" if x is None else f"{x:.0f}"

    if not c["events"]:
        return "no event"
    return f"{d(c['median_days'])} ({d(c['median_ci95_low'])}-{d(c['median_ci95_high'])})"


def _pair_entry(design: Design, kind: str, endpoint: str, arms, window, block: dict, **extra) -> dict:
    """One randomized pair's companion on one endpoint, with its sentence (``extra`` before the window)."""
    entry = {"label": LABEL, "kind": kind, "endpoint": endpoint, "arms": list(arms)}
    entry |= {"population": "concurrently_randomized", **extra, "window": window} | block
    entry["sentence"] = _pair_sentence(entry, design)
    return entry


def _pair_sentence(entry: dict, design: Design) -> str:
    a, b = entry["arms"]
    na, nb = design.display_name(a), design.display_name(b)
    ep = entry["endpoint"]
    if entry["kind"] == "binary":
        c, label = entry, BINARY_ENDPOINTS[ep].label
        if c["difference"] is None:
            return f"{label} {na} vs {nb}: no concurrently randomized evaluable patients."
        return (
            f"{label} {na} {c['events'][0]}/{c['n'][0]} vs {nb} {c['events'][1]}/{c['n'][1]} "
            f"(concurrently randomized): difference {100 * c['difference']:+.1f} points (Newcombe 95% CI "
            f"{100 * c['ci95_low']:+.1f} to {100 * c['ci95_high']:+.1f}); Fisher's exact test two-sided "
            f"{_fmt_p(c['p_two_sided'])}, one-sided ({na} better) {_fmt_p(c['p_one_sided'])}. A {LABEL}."
        )
    c = entry
    label = SURVIVAL_ENDPOINTS[ep].label
    head = (
        f"{label} {na} vs {nb} ({c['events'][0]}/{c['n'][0]} and {c['events'][1]}/{c['n'][1]} events, "
        f"{'concurrently randomized' if c['randomized_comparison'] else 'responders only, not randomized'}): "
    )
    if c["logrank_p"] is None:
        return head + f"not estimable (no event or an empty arm). A {LABEL}."
    hr = (
        f"; Cox hazard ratio {na} : {nb} {c['hazard_ratio']:.2f} (Efron ties, Wald 95% CI "
        f"{c['ci95_low']:.2f}-{c['ci95_high']:.2f})"
        if c["hazard_ratio"] is not None
        else "; no Cox estimate (no event in one arm)"
    )
    return head + f"log-rank chi2 {c['logrank_chi2']:.2f}, {_fmt_p(c['logrank_p'])}{hr}. A {LABEL}."


def frequentist_companions(
    design: Design,
    table: PatientTable | None,
    derived: DerivedData,
    pairs: Sequence[tuple[str, str]],
) -> dict:
    """Every companion of a look (module docstring): ``{label, arms, pairs}`` for recommendations.json.

    ``pairs``: the randomized pairs of open arms (:func:`adaptive.interim.randomized_pairs`);
    oriented experimental : reference by :meth:`Design.oriented`. Without a patient table the
    pairs are left out (the concurrently randomized patients are unknown).
    """
    survival_eps = list(design.survival.endpoints) if design.survival is not None else []
    surv = derived.survival
    arms: dict = {}
    for arm in design.modelled_arms:
        entry: dict = {"label": LABEL, "binary": {}, "survival": {}}
        for ep in design.endpoints:
            c = derived.counts[ep].get(arm)
            n, y = (c.n_evaluable, c.responders) if c is not None else (0, 0)
            higher = BINARY_ENDPOINTS[ep].direction == "higher_is_better"
            entry["binary"][ep] = binomial_companion(y, n, design.arm(arm).rates[ep].null_rate, higher)
        if surv is not None:
            for ep in survival_eps:
                f = surv.arm_times(ep, arm)
                entry["survival"][ep] = km_companion(f["time"].to_numpy(), f["event"].to_numpy())
        arms[arm] = entry
    out_pairs: list[dict] = []
    for pair in pairs if table is not None else ():
        a, b = design.oriented(*pair)
        window = concurrent_window(design, table, (a, b), derived.cutoff)
        where = None if window is None else {"from": window[0].isoformat(), "to": window[1].isoformat()}
        for ep in design.endpoints:
            higher = BINARY_ENDPOINTS[ep].direction == "higher_is_better"
            if window is None:
                n, y = {a: 0, b: 0}, {a: 0, b: 0}
            else:
                n, y, _ = concurrent_counts(design, table, derived, ep, (a, b), window)
            block = pair_binary_companion(y[a], n[a], y[b], n[b], higher)
            out_pairs.append(_pair_entry(design, "binary", ep, (a, b), where, block))
        if surv is None:
            continue
        ids = set() if window is None else concurrent_ids(table, window)
        for ep in survival_eps:
            f = surv.times[ep]
            f = f[f["arm"].isin((a, b)) & f["subject_id"].isin(ids)]
            block = pair_survival_companion(
                f["time"].to_numpy(), f["event"].to_numpy(), (f["arm"] == a).to_numpy()
            )
            out_pairs.append(
                _pair_entry(
                    design,
                    "survival",
                    ep,
                    (a, b),
                    where,
                    block,
                    randomized_comparison=ep not in RESPONDER_ENDPOINTS,
                )  # fmt: skip
            )
    return {
        "label": LABEL,
        "methods": {
            "binary": "Clopper-Pearson exact 95% interval; exact one-sided binomial test of rate > the "
            "arm's null (efficacy for response endpoints, harm for mortality) (scipy.stats.binomtest)",
            "binary_pair": "Fisher's exact test (scipy.stats.fisher_exact) and the Newcombe hybrid-score "
            "95% interval of the difference (statsmodels), concurrently randomized evaluable patients",
            "survival": "Kaplan-Meier median (R's convention) with the Brookmeyer-Crowley 95% interval "
            "(log-log), survival at 180/365/730 days with Greenwood log-log 95% intervals (statsmodels)",
            "survival_pair": "log-rank test (statsmodels survdiff) and Cox hazard ratio, Efron ties, Wald "
            "95% interval (statsmodels PHReg), concurrently randomized patients",
        },
        "arms": arms,
        "pairs": out_pairs,
    }


def companion_lines(block: dict | None) -> list[str]:
    """Compact lines for the CLI: one per arm (binary endpoints, KM medians), one per pair."""
    if not block:
        return []
    lines = []
    for arm, e in block["arms"].items():
        parts = [f"{ep} {binary_text(c)}" for ep, c in e["binary"].items()]
        parts += [
            f"{ep} KM median {km_text(c)} d" if c["events"] else f"{ep}: no event yet"
            for ep, c in e["survival"].items()
        ]
        parts += [
            f"({ep} median on day {POINT_MASS_DAYS[ep]:g}: half or more are treatment failures, "
            f"which ELN 2022 dates on day {POINT_MASS_DAYS[ep]:g})"
            for ep, c in e["survival"].items()
            if ep in POINT_MASS_DAYS and c["events"] and c["median_days"] == POINT_MASS_DAYS[ep]
        ]
        lines.append(f"{arm}: " + "; ".join(parts))
    lines += [p["sentence"] for p in block["pairs"]]
    return lines


__all__ = [
    "LABEL",
    "HORIZONS_DAYS",
    "AT_RISK_DAYS",
    "binomial_companion",
    "pair_binary_companion",
    "km_companion",
    "numbers_at_risk",
    "pair_survival_companion",
    "frequentist_companions",
    "companion_lines",
    "binary_text",
    "km_text",
]
