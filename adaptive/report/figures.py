"""Figures of the DSMB memo (matplotlib, ArviZ for densities and rank plots).

Every function takes plain numbers (arrays, dicts) assembled by :mod:`adaptive.report.data` and
returns a :class:`matplotlib.figure.Figure`; none reads files or the look. :func:`to_png_base64`
turns a figure into the ``data:`` URI the HTML embeds.

Arms keep one style in every figure (:func:`arm_styles`): a colour from the Okabe-Ito palette
(safe for colour-blind readers), and, because the memo is often printed in grey, a line style, a
marker and a hatch of their own, so that no figure relies on colour alone.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import matplotlib

matplotlib.use("Agg")  # files only, never a screen

import arviz as az  # noqa: E402
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from scipy import stats  # noqa: E402

from decision_rules.vocabulary import fmt_prob  # noqa: E402

#: Okabe & Ito (2008) colour-blind-safe palette, with black last
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 1)), (0, (8, 2)), (0, (3, 1, 1, 1, 1, 1)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
HATCHES = ("///", "\\\\\\", "xxx", "...", "ooo", "---", "+++", "|||")
#: pooled (open report) ink
POOLED = "#333333"

plt.rcParams.update(
    {
        "font.size": 8,
        "axes.titlesize": 9,
        "axes.labelsize": 8,
        "legend.fontsize": 7,
        "xtick.labelsize": 7,
        "ytick.labelsize": 7,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "savefig.dpi": 150,
        "figure.dpi": 100,
        "svg.hashsalt": "rr-aml-adaptive",
        "hatch.linewidth": 0.6,
    }
)


@dataclass(frozen=True)
class Style:
    """How one arm (or one series) is drawn, everywhere."""

    color: str
    linestyle: object
    marker: str
    hatch: str

    def line(self) -> dict:
        return {"color": self.color, "linestyle": self.linestyle, "marker": self.marker}


def arm_styles(arms: Sequence[str]) -> dict[str, Style]:
    """One style per arm, by its position in the config (so it is the same at every look)."""
    return {
        a: Style(
            PALETTE[i % len(PALETTE)],
            LINESTYLES[i % len(LINESTYLES)],
            MARKERS[i % len(MARKERS)],
            HATCHES[i % len(HATCHES)],
        )
        for i, a in enumerate(arms)
    }


def to_png_base64(fig: Figure) -> str:
    """``data:image/png;base64,...`` of a figure (closed afterwards); no timestamp in the file."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _new(width: float = 7.0, height: float = 3.0, ncols: int = 1, nrows: int = 1, **kw):
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False, **kw)
    return fig, axes


def _date_axis(ax) -> None:
    loc = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))


def _steps(dates: Sequence[date], end: date) -> tuple[list, list]:
    """Cumulative count step function of enrolment dates, held flat until ``end``."""
    ds = sorted(dates)
    xs = [d for d in ds] + [end]
    ys = list(range(1, len(ds) + 1)) + [len(ds)]
    return xs, ys


# ============================================================================= enrolment
def cumulative_enrolment(
    series: Mapping[str, Sequence[date]],
    end: date,
    styles: Mapping[str, Style],
    *,
    title: str,
    labels: Mapping[str, str] | None = None,
    ax=None,
) -> Figure | None:
    """Cumulative enrolment over calendar time, one step line per series (arm, cohort, site)."""
    fig = None
    if ax is None:
        fig, axes = _new(7.0, 2.8)
        ax = axes[0, 0]
    for key, dates in series.items():
        if not len(dates):
            continue
        st = styles[key]
        xs, ys = _steps(dates, end)
        ax.step(xs, ys, where="post", color=st.color, linestyle=st.linestyle, lw=1.4)
        ax.plot(
            xs[-1],
            ys[-1],
            marker=st.marker,
            color=st.color,
            ms=4,
            label=f"{(labels or {}).get(key, key)} ({ys[-1]})",
        )
    ax.set_title(title, loc="left")
    ax.set_ylabel("patients enrolled")
    _date_axis(ax)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def enrolment_panels(
    by_arm: Mapping[str, Sequence[date]],
    by_cohort: Mapping[str, Sequence[date]],
    by_site: Mapping[str, Sequence[date]],
    end: date,
    arm_style: Mapping[str, Style],
    arm_labels: Mapping[str, str],
) -> Figure:
    """Enrolment by arm, by cohort and by site over time (three panels)."""
    fig, axes = _new(7.2, 6.6, nrows=3)
    cumulative_enrolment(by_arm, end, arm_style, title="By arm", labels=arm_labels, ax=axes[0, 0])
    cumulative_enrolment(by_cohort, end, arm_styles(list(by_cohort)), title="By cohort", ax=axes[1, 0])
    cumulative_enrolment(by_site, end, arm_styles(list(by_site)), title="By site", ax=axes[2, 0])
    fig.tight_layout()
    return fig


def pooled_accrual(dates: Sequence[date], end: date, monthly: Mapping[str, int]) -> Figure:
    """Open report: pooled cumulative accrual and patients enrolled per calendar month."""
    fig, axes = _new(7.2, 4.6, nrows=2)
    ax = axes[0, 0]
    xs, ys = _steps(dates, end)
    ax.step(xs, ys, where="post", color=POOLED, lw=1.6)
    ax.set_title("Cumulative accrual (all patients)")
    ax.set_ylabel("patients enrolled")
    _date_axis(ax)
    ax = axes[1, 0]
    months = list(monthly)
    ax.bar(range(len(months)), [monthly[m] for m in months], color="#bbbbbb", edgecolor=POOLED, hatch="//")
    ax.set_xticks(range(len(months)), months, rotation=90)
    ax.set_title("Patients enrolled per month")
    ax.set_ylabel("patients")
    fig.tight_layout()
    return fig


# ============================================================================= posterior densities
def crc_densities(
    draws: Mapping[str, np.ndarray],
    null: Mapping[str, float],
    target: Mapping[str, float | None],
    styles: Mapping[str, Style],
    labels: Mapping[str, str],
    *,
    endpoint_label: str = "CRc",
    beta: Mapping[str, tuple[float, float]] | None = None,
    prob_above_null: Mapping[str, float | None] | None = None,
    prob_above_target: Mapping[str, float | None] | None = None,
) -> Figure:
    """Posterior density of each arm's rate: null and target lines, the region above the null shaded.

    The shaded (hatched) area is ``P(rate > null)``, the probability the efficacy rule compares
    with its threshold; the darker area beyond the target line is ``P(rate > target)``, the one
    the futility rule compares with its threshold. With ``beta`` (an arm's exact conjugate
    posterior ``(a, b)``) the curve is that Beta density, else a kernel density of the draws.
    The probabilities printed are ``prob_above_null`` / ``prob_above_target`` where given (the
    look's own numbers), else the share of the draws.
    """
    arms = list(draws)
    ncols = 2
    nrows = int(np.ceil(len(arms) / ncols))
    fig, axes = _new(7.2, 1.9 * nrows, ncols=ncols, nrows=nrows, sharex=True)
    for i, arm in enumerate(arms):
        ax = axes[i // ncols, i % ncols]
        st = styles[arm]
        x = np.asarray(draws[arm], dtype=float).ravel()
        if beta is not None and arm in beta:
            grid = np.linspace(0.0005, 0.9995, 1000)
            pdf = stats.beta.pdf(grid, *beta[arm])
        else:
            grid, pdf = az.kde(x, bound_correction=True)
        ax.plot(grid, pdf, color=st.color, linestyle=st.linestyle, lw=1.4)
        n0 = null[arm]
        above = grid >= n0
        ax.fill_between(grid, 0, pdf, where=above, facecolor=st.color, alpha=0.25, hatch=st.hatch, lw=0)
        ax.axvline(n0, color="black", linestyle="--", lw=0.9)
        p_null = (prob_above_null or {}).get(arm)
        p_null = float(np.mean(x > n0)) if p_null is None else p_null
        text = f"P(>null {100 * n0:.0f}%) = {fmt_prob(p_null)}"
        t = target.get(arm)
        if t is not None:
            ax.fill_between(grid, 0, pdf, where=grid >= t, facecolor=st.color, alpha=0.55, lw=0)
            ax.axvline(t, color="black", linestyle=":", lw=1.1)
            p_t = (prob_above_target or {}).get(arm)
            p_t = float(np.mean(x > t)) if p_t is None else p_t
            text += f"\nP(>target {100 * t:.0f}%) = {fmt_prob(p_t)}"
        ax.text(0.98, 0.95, text, transform=ax.transAxes, ha="right", va="top", fontsize=6.5)
        ax.set_title(f"{arm}: {labels.get(arm, arm)}", loc="left")
        ax.set_yticks([])
        ax.set_xlim(0, 1)
    for j in range(len(arms), nrows * ncols):
        axes[j // ncols, j % ncols].set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel(f"{endpoint_label} rate")
    fig.suptitle(
        f"Posterior densities of the {endpoint_label} rate (dashed: null; dotted: target; "
        "hatched: above the null; dark: above the target)",
        fontsize=8,
    )
    fig.tight_layout()
    return fig


# ============================================================================= forest plot
def forest(
    rows: Sequence[dict],
    endpoints: Sequence[tuple[str, str]],
    styles: Mapping[str, Style],
) -> Figure:
    """Posterior mean and 95% interval per arm and endpoint, with each arm's null and target/limit.

    ``rows``: ``{arm, label, endpoint, mean, lo, hi, null, target, limit}``; ``endpoints``:
    ``(name, label)`` in panel order.
    """
    n = len(endpoints)
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    fig, axes = _new(7.2, 0.35 * len(arms) * 1 + 1.6, ncols=n, sharey=True)
    for j, (ep, ep_label) in enumerate(endpoints):
        ax = axes[0, j]
        for i, arm in enumerate(arms):
            r = next((x for x in rows if x["arm"] == arm and x["endpoint"] == ep), None)
            y = len(arms) - 1 - i
            if r is None:
                continue
            st = styles[arm]
            if r["mean"] is not None:
                ax.plot([r["lo"], r["hi"]], [y, y], color=st.color, linestyle=st.linestyle, lw=1.4)
                ax.plot(r["mean"], y, marker=st.marker, color=st.color, ms=4.5, linestyle="none")
            ax.plot(r["null"], y, marker="|", color="black", ms=9, mew=1.2, linestyle="none")
            ref = r.get("target") if r.get("target") is not None else r.get("limit")
            if ref is not None:
                ax.plot(ref, y, marker="x" if r.get("limit") is not None else "+", color="black", ms=6)
        ax.set_title(ep_label)
        ax.set_xlim(0, 1)
        ax.set_xticks([0, 0.5, 1.0], ["0", "50%", "100%"])
        ax.grid(axis="x", lw=0.3, color="#cccccc")
    axes[0, 0].set_yticks(range(len(arms)), list(reversed(arms)))
    fig.suptitle(
        "Posterior mean and 95% interval ('|' null rate, '+' target rate, 'x' harm limit)", fontsize=8
    )
    fig.tight_layout()
    return fig


# ============================================================================= survival
def km_with_bands(
    panels: Sequence[dict],
    styles: Mapping[str, Style],
    *,
    endpoint_label: str,
    horizon: float,
    overlays: Sequence[tuple[str, str]] = (),
) -> Figure:
    """Kaplan-Meier curve of each arm with the model's posterior survival band (one panel per arm).

    ``panels``: ``{arm, label, km: (t, s) or None, censored: (t, s) or None, band: (t, lo, mid, hi)
    or None, n, events}``. ``overlays``: pairs of arms (the randomized pairs) whose Kaplan-Meier
    curves are drawn together on one more panel each, after the arms' own.
    """
    by_arm = {p["arm"]: p for p in panels}
    overlays = [o for o in overlays if all(by_arm.get(a, {}).get("km") is not None for a in o)]
    ncols = 2
    nrows = int(np.ceil((len(panels) + len(overlays)) / ncols))
    fig, axes = _new(7.2, 2.0 * nrows, ncols=ncols, nrows=nrows, sharex=True, sharey=True)
    for i, p in enumerate(panels):
        ax = axes[i // ncols, i % ncols]
        st = styles[p["arm"]]
        if p.get("band") is not None:
            t, lo, mid, hi = p["band"]
            ax.fill_between(t, lo, hi, facecolor=st.color, alpha=0.2, hatch=st.hatch, lw=0)
            ax.plot(t, mid, color=st.color, linestyle=":", lw=1.0)
        if p.get("km") is not None:
            t, s = p["km"]
            ax.step(t, s, where="post", color=st.color, linestyle=st.linestyle, lw=1.4)
        if p.get("censored") is not None and len(p["censored"][0]):
            ax.plot(*p["censored"], marker="|", color=st.color, linestyle="none", ms=5)
        ax.set_title(f"{p['arm']}: {p['label']} ({p['events']}/{p['n']} events)", loc="left")
        ax.set_ylim(0, 1.02)
        ax.set_xlim(0, horizon)
    for k, pair in enumerate(overlays):
        i = len(panels) + k
        ax = axes[i // ncols, i % ncols]
        for arm in pair:
            p, st = by_arm[arm], styles[arm]
            ax.step(*p["km"], where="post", color=st.color, linestyle=st.linestyle, lw=1.4, label=arm)
            if p.get("censored") is not None and len(p["censored"][0]):
                ax.plot(*p["censored"], marker="|", color=st.color, linestyle="none", ms=5)
        ax.set_title(
            f"{' vs '.join(pair)} overlaid: all patients of each arm",
            loc="left",
        )
        ax.legend(loc="upper right", fontsize=6, frameon=False)
        ax.set_ylim(0, 1.02)
        ax.set_xlim(0, horizon)
    for j in range(len(panels) + len(overlays), nrows * ncols):
        axes[j // ncols, j % ncols].set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("days")
    for ax in axes[:, 0]:
        ax.set_ylabel(f"{endpoint_label} probability")
    fig.suptitle(
        f"{endpoint_label}: Kaplan-Meier (step line, ticks = censored) and the model's posterior "
        "survival (dotted median, band = 95% interval)",
        fontsize=8,
    )
    fig.tight_layout()
    return fig


# ============================================================================= across looks
def allocation_history(
    looks: Sequence[dict],
    arms: Sequence[str],
    styles: Mapping[str, Style],
    labels: Mapping[str, str],
    *,
    cohort: str,
) -> Figure:
    """Randomization probabilities at each look, stacked bars per look (hatched per arm)."""
    fig, axes = _new(7.2, 2.8)
    ax = axes[0, 0]
    x = np.arange(len(looks))
    bottom = np.zeros(len(looks))
    for arm in arms:
        vals = np.array([lk["allocation"].get(arm) or 0.0 for lk in looks])
        st = styles[arm]
        bars = ax.bar(
            x, vals, bottom=bottom, color=st.color, hatch=st.hatch, edgecolor="black", lw=0.5, alpha=0.85
        )
        for b, v, b0 in zip(bars, vals, bottom, strict=True):
            if v >= 0.06:
                ax.text(
                    b.get_x() + b.get_width() / 2,
                    b0 + v / 2,
                    f"{100 * v:.0f}%",
                    ha="center",
                    va="center",
                    fontsize=7,
                    bbox={"facecolor": "white", "lw": 0, "pad": 0.5},
                )
        bars.set_label(f"{arm}: {labels.get(arm, arm)}")
        bottom += vals
    ax.set_xticks(
        x,
        [
            f"look {lk['look']}\n{lk['cutoff']}" if lk["look"] != "start" else "start\n(fixed ratio)"
            for lk in looks
        ],
    )
    ax.set_ylim(0, 1)
    ax.set_ylabel("allocation probability")
    ax.set_title(f"Randomization in cohort {cohort} at each look")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def probability_trajectories(
    panels: Sequence[dict],
    looks: Sequence[dict],
    styles: Mapping[str, Style],
    labels: Mapping[str, str],
) -> Figure:
    """Posterior probabilities per arm across looks, one panel per quantity, with rule thresholds.

    ``panels``: ``{title, key, thresholds: [(value, text)]}``; ``looks``: ``{look, cutoff, arms:
    {arm: {key: value}}}``.
    """
    fig, axes = _new(7.2, 2.4 * len(panels), nrows=len(panels), sharex=True)
    x = np.arange(len(looks))
    arms = list(dict.fromkeys(a for lk in looks for a in lk["arms"]))
    for ax, panel in zip(axes[:, 0], panels, strict=True):
        for arm in arms:
            ys = np.array(
                [
                    np.nan
                    if lk["arms"].get(arm, {}).get(panel["key"]) is None
                    else lk["arms"][arm][panel["key"]]
                    for lk in looks
                ],
                dtype=float,
            )
            if np.all(np.isnan(ys)):
                continue
            st = styles[arm]
            ax.plot(
                x,
                ys,
                color=st.color,
                linestyle=st.linestyle,
                marker=st.marker,
                ms=4,
                lw=1.2,
                label=f"{arm}: {labels.get(arm, arm)}",
            )
        for k, (value, text) in enumerate(panel.get("thresholds", [])):
            ax.axhline(value, color="black", lw=0.9, linestyle=((0, (4, 2)), (0, (1, 2)))[k % 2])
            ax.annotate(
                text,
                (0.0, value),
                xycoords=("axes fraction", "data"),
                xytext=(2, 3 if value < 0.5 else -9),
                textcoords="offset points",
                fontsize=6.5,
                bbox={"facecolor": "white", "lw": 0, "pad": 0.5},
            )
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(panel["title"], loc="left")
        ax.set_ylabel("probability")
    axes[-1, 0].set_xticks(x, [f"look {lk['look']}\n{lk['cutoff']}" for lk in looks])
    if len(x) == 1:
        axes[-1, 0].set_xlim(-0.5, 0.5)
    if axes[0, 0].get_legend_handles_labels()[0]:
        axes[0, 0].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.tight_layout()
    return fig


# ============================================================================= pooled outcomes
def pooled_rates(rows: Sequence[dict]) -> Figure:
    """Open report: pooled observed rate with its 95% interval per endpoint (no arm)."""
    fig, axes = _new(7.2, 0.4 * len(rows) + 1.0)
    ax = axes[0, 0]
    for i, r in enumerate(rows):
        y = len(rows) - 1 - i
        if r["rate"] is None:
            continue
        ax.plot([r["lo"], r["hi"]], [y, y], color=POOLED, lw=1.4)
        ax.plot(r["rate"], y, marker="o", color=POOLED, ms=5)
    ax.set_yticks(range(len(rows)), [r["label"] for r in reversed(rows)])
    ax.set_xlim(0, 1)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0], ["0", "25%", "50%", "75%", "100%"])
    ax.grid(axis="x", lw=0.3, color="#cccccc")
    ax.set_title("Pooled over all arms: observed rate and 95% interval (Jeffreys)")
    fig.tight_layout()
    return fig


def completeness(rows: Sequence[dict]) -> Figure:
    """Open report: share of patients with each field recorded, among those expected to have it."""
    fig, axes = _new(7.2, 0.28 * len(rows) + 0.9)
    ax = axes[0, 0]
    ys = np.arange(len(rows))[::-1]
    vals = [r["share"] if r["share"] is not None else 0.0 for r in rows]
    ax.barh(ys, vals, color="#cccccc", edgecolor=POOLED, hatch="..")
    ax.set_yticks(ys, [r["field"] for r in rows])
    ax.set_xlim(0, 1)
    ax.set_xticks([0, 0.5, 0.9, 1.0], ["0", "50%", "90%", "100%"])
    ax.axvline(0.9, color="black", lw=0.7, linestyle="--")
    ax.set_title("Data completeness (share recorded among patients for whom the field is expected)")
    fig.tight_layout()
    return fig


# ============================================================================= diagnostics
def rank_plot(idata, var: str = "p") -> Figure:
    """ArviZ rank plot of one variable (uniform ranks across chains = good mixing)."""
    post = idata.posterior[[var]]
    n = int(np.prod([post.sizes[d] for d in post[var].dims if d not in ("chain", "draw")]) or 1)
    ncols = 4
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(7.2, 1.5 * nrows), squeeze=False)
    az.plot_rank(post, var_names=[var], ax=axes.ravel()[:n], kind="bars")
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    for ax in axes.ravel()[:n]:
        ax.title.set_fontsize(7)
        ax.set_xlabel("")
        ax.set_ylabel("")
    fig.suptitle(f"Rank plots of {var} by chain (CRc fit); flat bars = chains agree", fontsize=8)
    fig.tight_layout()
    return fig
