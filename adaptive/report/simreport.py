"""The simulation report: a finished ``adaptive simulate`` study as a document a regulator can read.

:func:`build_sim_report` reads a study folder (``oc.json``, ``run.json``; nothing is simulated
again) and writes ``report.html`` (self-contained: styles inline, figures embedded as base64 PNG)
and ``report.pdf`` (the same HTML laid out by WeasyPrint, as the DSMB memo). The sections follow
the simulation report the FDA's 2019 guidance on adaptive designs asks for: the design as
simulated (arms, rules with their thresholds, looks), the scenarios with their true rates, the
operating characteristics with Monte Carlo standard errors (per arm, the platform's error rates,
the randomized comparisons), figures, how the simulation was done, and a reproducibility
appendix (input hashes, seed, versions).

The report states only what the study recorded (allocation over time: the mean allocation
probability after each look, ``allocation_over_time`` in ``oc.json``; a study without it gets no
such figure). The same study gives a byte-identical ``report.html``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from adaptive.exceptions import SimReportError
from adaptive.report import figures as fig
from decision_rules.vocabulary import fmt_mcse

#: report files written into the study folder
FILES = {"html": "report.html", "pdf": "report.pdf"}
#: (id, title) of the report's sections, in order
SECTIONS = (
    ("purpose", "1. Purpose and summary"),
    ("design", "2. The design as simulated"),
    ("scenarios", "3. Scenarios"),
    ("oc", "4. Operating characteristics"),
    ("errors", "5. Error rates of the platform"),
    ("comparisons", "6. Randomized comparisons"),
    ("figures", "7. Figures"),
    ("methods", "8. How the simulation was done"),
    ("appendix", "9. Reproducibility appendix"),
)
#: how an arm can end, in the order of the outcome figure (oc.json keys and their labels)
OUTCOMES = (
    ("prob_graduate", "graduated"),
    ("prob_drop_futility", "dropped: futility"),
    ("prob_drop_harm", "dropped: harm"),
    ("prob_drop_inferior", "dropped: inferior"),
    ("prob_complete", "completed"),
    ("prob_no_decision", "no decision"),
)


def load_study(folder: str | Path) -> tuple[dict, dict]:
    """``oc.json`` and ``run.json`` of a finished study folder, or :class:`SimReportError`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SimReportError(f"{folder}: not a folder; give the --out folder of `adaptive simulate`.")
    oc_path = folder / "oc.json"
    if not oc_path.is_file():
        raise SimReportError(
            f"{folder}: no oc.json, so not a study folder of `adaptive simulate` (a sweep's studies "
            "are in its value-<i>/study/ folders)."
        )
    try:
        oc = json.loads(oc_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SimReportError(f"{oc_path}: cannot be read as JSON ({exc}).") from None
    if not isinstance(oc, dict) or not str(oc.get("schema", "")).startswith("rr-aml-adaptive/simulate/"):
        raise SimReportError(f"{oc_path}: not the oc.json of `adaptive simulate` (no simulate schema).")
    run_path = folder / "run.json"
    run = {}
    if run_path.is_file():
        try:
            run = json.loads(run_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            run = {}
    return oc, run


# ============================================================================= formatting
def _est(x, pct: bool = True, digits: int = 1) -> str:
    """``12.3 ± 0.4`` (percent) of an ``{estimate, mcse}`` entry; ``-`` when absent."""
    if not isinstance(x, dict) or x.get("estimate") is None:
        return "-"
    e, m = x["estimate"], x.get("mcse")
    scale = 100.0 if pct else 1.0
    out = f"{scale * e:.{digits}f}"
    return out + (f" ± {fmt_mcse(scale * m, digits)}" if m is not None else "")


def _rate(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


# ============================================================================= figures
def _adaptive(sc: dict) -> dict:
    """A scenario's results under adaptive allocation (its only allocation when it has one)."""
    return sc["allocations"].get("adaptive") or next(iter(sc["allocations"].values()))


def outcome_figure(scenarios: list[dict], arms: list[str]):
    """Stacked bars: how each arm ended, per scenario (adaptive allocation)."""
    n = len(scenarios)
    f, axes = fig._new(7.2, 0.45 * len(arms) * n + 0.8 * n, nrows=n)
    colors = ["#1b7837", "#b2182b", "#762a83", "#e08214", "#4393c3", "#bababa"]
    for k, sc in enumerate(scenarios):
        ax = axes[k, 0]
        s = _adaptive(sc)
        rows = {a["arm"]: a for a in s["arms"]}
        left = np.zeros(len(arms))
        for (key, label), color in zip(OUTCOMES, colors, strict=True):
            vals = np.array([(rows[a].get(key) or {}).get("estimate") or 0.0 for a in arms])
            ax.barh(arms, vals, left=left, color=color, label=label, height=0.7)
            left += vals
        ax.set_xlim(0, 1)
        ax.invert_yaxis()
        ax.set_title(f"{sc['scenario']}: how each arm ended ({s['n_trials']} trials)", loc="left")
        if k == 0:
            ax.legend(ncol=3, fontsize=6, frameon=False, loc="lower left", bbox_to_anchor=(0, 1.12))
    axes[-1, 0].set_xlabel("share of virtual trials")
    f.tight_layout()
    return f


def sample_size_figure(scenarios: list[dict], arms: list[str]):
    """Patients enrolled per arm: median with the 10-90% range, per scenario."""
    f, axes = fig._new(7.2, 0.35 * len(arms) * len(scenarios) + 1.0)
    ax = axes[0, 0]
    width = 0.8 / max(len(scenarios), 1)
    y = np.arange(len(arms))
    for k, sc in enumerate(scenarios):
        s = _adaptive(sc)
        rows = {a["arm"]: a for a in s["arms"]}
        med = np.array([rows[a]["n_q50"] for a in arms])
        lo = med - np.array([rows[a]["n_q10"] for a in arms])
        hi = np.array([rows[a]["n_q90"] for a in arms]) - med
        ax.errorbar(med, y + k * width, xerr=[lo, hi], fmt="o", ms=3, capsize=2, label=sc["scenario"])
    ax.set_yticks(y + width * (len(scenarios) - 1) / 2, arms)
    ax.invert_yaxis()
    ax.set_xlabel("patients enrolled (median, 10-90% of trials)")
    ax.legend(fontsize=6, frameon=False)
    f.tight_layout()
    return f


def timing_figure(scenarios: list[dict], arms: list[str]):
    """When arms were decided: the share of decided trials at each look (first scenario per panel)."""
    n = len(scenarios)
    f, axes = fig._new(7.2, 1.9 * n, nrows=n)
    styles = fig.arm_styles(arms)
    for k, sc in enumerate(scenarios):
        ax = axes[k, 0]
        s = _adaptive(sc)
        for a in s["arms"]:
            timing = a.get("decision_timing")
            if not timing:
                continue
            looks = sorted((int(x), v) for x, v in timing["by_look"].items() if x.isdigit())
            if looks:
                st = styles[a["arm"]]
                ax.plot(*zip(*looks, strict=True), label=a["arm"], **st.line(), ms=3, lw=1)
        ax.set_title(f"{sc['scenario']}: decisions at interim looks (share of decided trials)", loc="left")
        ax.set_ylim(bottom=0)
        ax.legend(ncol=4, fontsize=6, frameon=False)
    axes[-1, 0].set_xlabel("look")
    f.tight_layout()
    return f


def allocation_figure(scenarios: list[dict], arms: list[str]):
    """Allocation over time: each randomized arm's mean probability after each look (adaptive).

    One panel per scenario and randomized cohort, the x axis the look's mean day; ``None`` when
    the study has no allocation trace (no randomized cohort, or a study from before it).
    """
    panels = []
    for sc in scenarios:
        s = _adaptive(sc)
        for cohort, block in (s.get("allocation_over_time") or {}).items():
            panels.append((sc["scenario"], cohort, block))
    if not panels:
        return None
    f, axes = fig._new(7.2, 1.7 * len(panels), nrows=len(panels))
    styles = fig.arm_styles(arms)
    for k, (scenario, cohort, block) in enumerate(panels):
        ax = axes[k, 0]
        for a, values in block["probabilities"].items():
            est = np.array([v["estimate"] for v in values], float)
            se = np.array([v["mcse"] if v["mcse"] is not None else np.nan for v in values], float)
            ax.plot(block["day_mean"], est, label=a, **styles[a].line(), ms=3, lw=1)
            ax.fill_between(
                block["day_mean"], est - 2 * se, est + 2 * se, color=styles[a].color, alpha=0.2, lw=0
            )
        for x, n in zip(block["day_mean"], block["n_trials"], strict=True):
            ax.annotate(f"{n}", (x, 0.02), fontsize=5, ha="center", color="0.4")
        ax.set_ylim(0, 1)
        ax.set_title(f"{scenario}, cohort {cohort}: mean allocation probability after each look", loc="left")
        ax.legend(ncol=4, fontsize=6, frameon=False)
    axes[-1, 0].set_xlabel("day of the look (mean over the trials still randomizing between two open arms)")
    f.tight_layout()
    return f


# ============================================================================= assembly
def looks_lines(looks: dict) -> list[str]:
    """The look schedule the simulator followed, in words (defaults spelled out)."""
    if looks.get("every_patients"):
        when = f"every {looks['every_patients']} enrolled patients"
    else:
        days = looks.get("every_days") or 91
        when = f"every {days} days" + ("" if looks.get("every_days") else " (the default)")
        if looks.get("at_days"):
            given = ", ".join(str(d) for d in looks["at_days"])
            when = f"on days {given} from the trial's start (looks as held), then {when} after the last"
    first = looks.get("first_after_patients") or 0
    lines = [when + (f", from {first} enrolled patients" if first else "")]
    cap = looks.get("max_patients")
    lines.append(
        f"enrolment stops at {cap} patients" if cap else "enrolment stops when every arm has its max_n"
    )
    lines.append(f"or after {looks.get('max_duration_days', 1826)} days, or when no arm is open")
    if looks.get("stop_trial_on"):
        lines.append("the trial stops when any of these rules fires: " + ", ".join(looks["stop_trial_on"]))
    lines.append(
        "a final analysis once every enrolled patient's outcomes are known"
        if looks.get("final_analysis", True)
        else "no final analysis"
    )
    return lines


def report_data(oc: dict, run: dict, folder: Path) -> dict:
    """Everything the template shows, from ``oc.json`` and ``run.json``."""
    scenarios = oc.get("scenarios") or []
    if not scenarios:
        raise SimReportError(f"{folder / 'oc.json'}: the study has no scenario results.")
    first = scenarios[0]["allocations"]
    arms = [a["arm"] for a in next(iter(first.values()))["arms"]]
    alloc_fig = allocation_figure(scenarios, arms)
    design_arms = [
        {
            "arm": a["arm"],
            "label": a["label"],
            "null": _rate(a.get("null_rate")),
            "futility": _rate(a.get("futility_rate")),
            "target": _rate(a.get("target_rate")),
            "monitoring": a.get("monitoring") or "-",
        }
        for a in next(iter(first.values()))["arms"]
    ]
    truths = []
    for sc in scenarios:
        s = next(iter(sc["allocations"].values()))
        truths.append(
            {
                "scenario": sc["scenario"],
                "file": sc.get("file"),
                "cells": [f"{_rate(a['true_crc'])} / {_rate(a['true_crc_itt'])}" for a in s["arms"]],
            }
        )
    tables, errors, comparisons = [], [], []
    for sc in scenarios:
        for alloc, s in sc["allocations"].items():
            title = f"{sc['scenario']} ({alloc} allocation), {s['n_trials']} trials"
            tables.append(
                {
                    "title": title,
                    "rows": [
                        {
                            "arm": f"{a['arm']} {a['label']}",
                            "truth": _rate(a["true_crc_itt"]),
                            "grad": _est(a["prob_graduate"]),
                            "fut": _est(a["prob_drop_futility"]),
                            "harm": _est(a["prob_drop_harm"]),
                            "inf": _est(a["prob_drop_inferior"]),
                            "complete": _est(a["prob_complete"]),
                            "type1": _est(a.get("type_i_error")),
                            "power": _est(a.get("power")),
                            "n": _est(a["n_mean"], pct=False),
                            "coverage": _est(a.get("coverage_95")),
                            "bias": _est(a.get("bias"), digits=1),
                            "by_rule": "; ".join(
                                f"{action}: " + ", ".join(f"{r} {100 * v:.1f}%" for r, v in rules.items())
                                for action, rules in (a.get("by_rule") or {}).items()
                            ),
                        }
                        for a in s["arms"]
                    ],
                }
            )
            es = s.get("error_summary") or {}
            worst = es.get("max_arm_type_i_error")
            errors.append(
                {
                    "title": title,
                    "null_arms": ", ".join(s.get("null_arms") or []) or "none",
                    "fwer": _est(s.get("fwer")),
                    "false_grad": _est(s.get("expected_false_graduations"), pct=False, digits=3),
                    "max_arm": f"{worst['arm']}: {_est(worst)}" if worst else "-",
                    "false_selection": (
                        f"{cs['rule']}: {_est(cs)}"
                        if (cs := es.get("max_comparison_false_selection"))
                        else "-"
                    ),
                    "false_harm": _est(s.get("prob_any_false_harm")),
                    "any_harm": _est(s.get("prob_any_drop_harm")),
                    "stopped": _est(s.get("prob_stopped_by_rule")),
                    "duration": _est(s.get("duration_mean"), pct=False),
                }
            )
            for c in s.get("comparisons") or []:
                comparisons.append(
                    {
                        "title": title,
                        "rule": c["rule"],
                        "arms": " vs ".join(c["arms"]),
                        "better": c.get("truly_better") or "equal",
                        "select_better": _est(c.get("prob_select_better")),
                        "select_worse": _est(c.get("prob_select_worse")),
                        "any": _est(c.get("prob_any_selection")),
                        "max_n": _est(c.get("prob_ran_to_max_n")),
                        "cut_short": _est(c.get("prob_cut_short")),
                    }
                )
    design = oc.get("design") or {}
    n_trials = min(s["n_trials"] for sc in scenarios for s in sc["allocations"].values())
    return {
        "trial": oc.get("config_file", "-"),
        "seed": oc.get("seed"),
        "complete": bool(oc.get("complete")),
        "trials_requested": oc.get("trials_requested"),
        "n_trials": n_trials,
        "mcse_at_5": 100 * float(np.sqrt(0.05 * 0.95 / max(n_trials, 1))),
        "arms": arms,
        "design_arms": design_arms,
        "rules": design.get("rules") or [],
        "not_simulated": design.get("rules_not_simulated") or [],
        "looks": looks_lines(design.get("looks") or {}),
        "truths": truths,
        "tables": tables,
        "errors": errors,
        "comparisons": comparisons,
        "hashes": [("config", oc.get("config_file"), oc.get("config_sha256"))]
        + [("scenario", sc.get("file"), sc.get("sha256")) for sc in scenarios],
        "versions": sorted((oc.get("versions") or {}).items()),
        "run": sorted((k, json.dumps(v)) for k, v in run.items()),
        "figures": {
            "outcomes": fig.to_png_base64(outcome_figure(scenarios, arms)),
            "sample_size": fig.to_png_base64(sample_size_figure(scenarios, arms)),
            "timing": fig.to_png_base64(timing_figure(scenarios, arms)),
            "allocation": None if alloc_fig is None else fig.to_png_base64(alloc_fig),
        },
        "allocation_trace": [
            {"scenario": sc["scenario"], "cohort": cohort, **block}
            for sc in scenarios
            for cohort, block in (_adaptive(sc).get("allocation_over_time") or {}).items()
        ],
    }


def render_html(oc: dict, run: dict, folder: Path) -> str:
    """The report's self-contained HTML."""
    from adaptive.report.render import _css, _env

    page = _env().get_template("simreport.html.j2")
    return page.render(d=report_data(oc, run, folder), sections=SECTIONS, css=_css())


def report_paths(folder: str | Path) -> dict[str, Path]:
    """The report files of a study folder, by kind (:data:`FILES`)."""
    folder = Path(folder)
    return {k: folder / v for k, v in FILES.items()}


def build_sim_report(folder: str | Path, *, force: bool = False) -> dict[str, Path]:
    """Write ``report.html`` and ``report.pdf`` into a finished study folder; their paths.

    Raises
    ------
    SimReportError
        Not a study folder, an unreadable ``oc.json``, or a report already there (without
        ``force``). Both files are written under temporary names and renamed into place together.
    """
    from adaptive.report.render import _write_all, html_to_pdf

    folder = Path(folder)
    oc, run = load_study(folder)
    paths = report_paths(folder)
    existing = [p.name for p in paths.values() if p.exists()]
    if existing and not force:
        raise SimReportError(
            f"{folder} already holds a simulation report ({', '.join(existing)}); it is never "
            "overwritten silently. Pass --force to rebuild it."
        )
    html = render_html(oc, run, folder)
    _write_all(paths, {"html": html.encode("utf-8"), "pdf": html_to_pdf(html)})
    return paths
