"""Rendering the DSMB memo: assembled data -> figures -> jinja2 templates -> HTML and PDF files.

:func:`build_memo` is what ``adaptive memo`` and ``adaptive interim --memo`` call. It loads the
look (:func:`adaptive.report.data.load_look`), draws the figures (:mod:`adaptive.report.figures`),
renders ``templates/closed.html.j2`` and ``templates/open.html.j2`` into self-contained HTML
(figures embedded as base64 PNG, styles inline) and prints each to PDF with WeasyPrint (HTML and
CSS to PDF in Python, no browser needed: the PDF is laid out from the same HTML with the print
rules of ``memo.css``: A4 pages, one section per page, running headers, page numbers).

Files are written into the look folder through temporary names and renamed into place once all
four exist; an existing memo is never overwritten unless ``force`` is given. Nothing else in the
folder is touched.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import jinja2

from adaptive import progress
from adaptive.exceptions import MemoError
from adaptive.report import data as rdata
from adaptive.report import figures as fig

#: memo files written into the look folder
FILES = {
    "closed_html": "memo-closed.html",
    "closed_pdf": "memo-closed.pdf",
    "open_html": "memo-open.html",
    "open_pdf": "memo-open.pdf",
}
#: (id, title) of the closed report's sections, in order; each starts on a new page in the PDF
CLOSED_SECTIONS = (
    ("summary", "Summary and recommendations"),
    ("recommendations-full", "Recommendations in full"),
    ("enrolment", "Enrolment"),
    ("baseline", "Baseline characteristics and disposition"),
    ("outcomes", "Efficacy and safety by arm"),
    ("adverse-events", "Treatment-emergent adverse events"),
    ("densities", "Posterior distributions of CRc"),
    ("forest", "Forest plot"),
    ("survival", "Survival"),
    ("robustness", "Robustness of the decisions"),
    ("randomization", "Randomization history"),
    ("trajectories", "Probabilities across looks"),
    ("data-changes", "Data changes since the previous look"),
    ("diagnostics", "Sampler diagnostics"),
    ("appendix", "Reproducibility appendix"),
)
#: (id, title) of the open report's sections
OPEN_SECTIONS = (
    ("overview", "Open report"),
    ("accrual", "Accrual"),
    ("baseline", "Baseline characteristics and disposition, pooled"),
    ("pooled", "Pooled response and mortality"),
    ("adverse-events", "Treatment-emergent adverse events, pooled"),
    ("completeness", "Data completeness"),
)


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("adaptive.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = rdata.fmt_pct
    env.filters["prob"] = rdata.fmt_prob
    return env


def _css() -> str:
    from importlib import resources

    return resources.files("adaptive.report").joinpath("templates", "memo.css").read_text(encoding="utf-8")


# ============================================================================= figures
def closed_figures(d: dict, arm_ids: list[str], labels: dict[str, str]) -> dict[str, str | list]:
    """Every figure of the closed report, as ``data:`` URIs (absent parts are left out)."""
    styles = fig.arm_styles(arm_ids)
    out: dict[str, str | list] = dict.fromkeys(
        ("enrolment", "densities", "forest", "trajectories", "rank"), ""
    )
    en = d["enrolment"]
    if en["has_dates"]:
        out["enrolment"] = fig.to_png_base64(
            fig.enrolment_panels(
                en["by_arm"],
                en["by_cohort"],
                en["by_site"],
                d["cutoff_date"],
                styles,
                {a: f"{a}: {lab}" for a, lab in labels.items()},
            )
        )
    if d["densities"] is not None:
        dd = d["densities"]
        out["densities"] = fig.to_png_base64(
            fig.crc_densities(
                dd["draws"],
                dd["null"],
                dd["target"],
                styles,
                labels,
                beta=dd.get("beta"),
                prob_above_null=dd.get("prob_above_null"),
                prob_above_target=dd.get("prob_above_target"),
            )
        )
    if d["forest"]:
        eps = [(t["endpoint"], t["label"]) for t in d["tables"]]
        out["forest"] = fig.to_png_base64(fig.forest(d["forest"], eps, styles))
    surv = []
    for ep in d["survival"]["endpoints"]:
        if ep["has_km"] or ep["has_band"]:
            surv.append(
                fig.to_png_base64(
                    fig.km_with_bands(
                        ep["panels"],
                        styles,
                        endpoint_label=ep["label"],
                        horizon=d["survival"]["horizon"],
                        overlays=ep["overlays"],
                    )
                )
            )
        else:
            surv.append("")
    out["survival"] = surv
    out["randomization"] = [
        fig.to_png_base64(fig.allocation_history(c["history"], c["arms"], styles, labels, cohort=c["cohort"]))
        if c["history"]
        else ""
        for c in d["randomization"]
    ]
    tr = d["trajectories"]
    if tr["points"]:
        out["trajectories"] = fig.to_png_base64(
            fig.probability_trajectories(tr["panels"], tr["points"], styles, labels)
        )
    if d.get("rank_idata") is not None:
        out["rank"] = fig.to_png_base64(fig.rank_plot(d["rank_idata"], "p"))
    return out


def open_figures(d: dict) -> dict[str, str]:
    """The open report's figures (pooled data only), as ``data:`` URIs."""
    out = dict.fromkeys(("accrual", "pooled", "completeness"), "")
    acc = d["accrual"]
    if acc["has_dates"] and acc["dates"]:
        out["accrual"] = fig.to_png_base64(fig.pooled_accrual(acc["dates"], d["cutoff_date"], acc["monthly"]))
    if d["outcomes"]:
        out["pooled"] = fig.to_png_base64(fig.pooled_rates(d["outcomes"]))
    if d["completeness"]:
        out["completeness"] = fig.to_png_base64(fig.completeness(d["completeness"]))
    return out


# ============================================================================= rendering
def render_closed(look: rdata.Look, *, generated: str) -> str:
    """The closed report's HTML (self-contained)."""
    d = rdata.closed_data(look)
    d["cutoff_date"] = look.cutoff
    d["rank_idata"] = None if look.refused else look.posterior("crc")
    figures = closed_figures(d, [a["arm"] for a in look.arms], look.labels)
    d.pop("rank_idata")
    return (
        _env()
        .get_template("closed.html.j2")
        .render(
            d=d,
            figures=figures,
            sections=CLOSED_SECTIONS,
            css=_css(),
            generated=generated,
            kind="closed",
        )
    )


def render_open(look: rdata.Look, *, generated: str) -> str:
    """The open report's HTML (pooled only)."""
    d = rdata.open_data(look)
    d["cutoff_date"] = look.cutoff
    figures = open_figures(d)
    return (
        _env()
        .get_template("open.html.j2")
        .render(
            d=d,
            figures=figures,
            sections=OPEN_SECTIONS,
            css=_css(),
            generated=generated,
            kind="open",
        )
    )


def html_to_pdf(html: str, base_url: str | None = None) -> bytes:
    """Lay the HTML out on A4 pages (its print CSS) and return the PDF bytes (WeasyPrint)."""
    import logging

    import weasyprint

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    return weasyprint.HTML(string=html, base_url=base_url).write_pdf()


# ============================================================================= files
@dataclass(frozen=True)
class Memo:
    """The files of a memo and what was left out, and why."""

    paths: dict[str, Path]
    notes: tuple[str, ...]
    refused: bool


def memo_paths(folder: str | Path) -> dict[str, Path]:
    """The memo files of a look folder, by kind (:data:`FILES`)."""
    folder = Path(folder)
    return {k: folder / v for k, v in FILES.items()}


def build_memo(
    folder: str | Path,
    *,
    data: str | Path | None = None,
    ledger: str | Path | None = None,
    force: bool = False,
    now: datetime | None = None,
) -> Memo:
    """Build the closed and open memo of a look and write them into its folder.

    Raises
    ------
    MemoError
        Not a look folder, a ``data`` file that is not the look's, or a memo already there
        (without ``force``).
    """
    folder = Path(folder)
    paths = memo_paths(folder)
    existing = [p for p in paths.values() if p.exists()]
    if existing and not force:
        raise MemoError(
            f"{folder} already holds a memo ({', '.join(p.name for p in existing)}); a memo is never "
            "overwritten silently. Pass --force to rebuild it."
        )
    progress.step(f"reading the look {folder.name}")
    look = rdata.load_look(folder, data=data, ledger=ledger)
    generated = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    progress.step("drawing the closed report (figures by arm)")
    closed = render_closed(look, generated=generated)
    progress.step("drawing the open report")
    opened = render_open(look, generated=generated)
    contents = {"closed_html": closed.encode("utf-8"), "open_html": opened.encode("utf-8")}
    progress.step("printing the closed report to PDF (headless Chromium)")
    contents["closed_pdf"] = html_to_pdf(closed)
    progress.step("printing the open report to PDF (headless Chromium)")
    contents["open_pdf"] = html_to_pdf(opened)
    progress.step(f"writing the memo into {folder.name}")
    _write_all(paths, contents)
    return Memo(paths=paths, notes=tuple(look.notes), refused=look.refused)


def _write_all(paths: dict[str, Path], contents: dict[str, bytes]) -> None:
    """Write every file under a temporary name, then rename them all into place."""
    tmps: dict[str, Path] = {}
    try:
        for key, blob in contents.items():
            tmp = paths[key].with_name(f".{paths[key].name}.tmp-{os.getpid()}")
            with open(tmp, "wb") as fh:
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())
            tmps[key] = tmp
        for key, tmp in tmps.items():
            os.replace(tmp, paths[key])
    finally:
        for tmp in tmps.values():
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
