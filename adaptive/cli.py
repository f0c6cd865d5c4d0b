"""Command-line interface: ``adaptive validate|interim|history|synth|memo|simulate|report-sim|calibrate``.

Exit codes (each error's code is its class's ``exit_code`` in :mod:`adaptive.exceptions`):

- 0 success (including an idempotent rerun that found the identical earlier look);
- 1 an unexpected error (``AdaptiveError`` itself);
- 2 invalid config, data, scenario or command-line option (``ConfigError``, ``DataError``,
  ``ScenarioError``, click's usage errors), an output folder that exists or cannot be written
  (``OutputExistsError``, ``OutputNotWritableError``), a ledger request refused (``LedgerError``;
  ``LookOrderError``: a cutoff before a recorded look's, unless ``--allow-out-of-order``), a memo
  or a simulation report that cannot be built (``MemoError``, ``SimReportError``), a design or
  scenario the simulator cannot run (``AdaptiveErrorValue``, below);
- 3 a fit failed its convergence limits (``ConvergenceError``): the look is written as refused and
  no rule is evaluated (an idempotent rerun of a refused look exits 3 too);
- 4 the look ledger is busy: another ``adaptive interim`` held it longer than ``--wait``
  (``LedgerBusyError``);
- 5 a model-fitting worker process crashed or raised (``FitWorkerError``);
- 6 writing the outputs failed: disk full, permission lost, an I/O error (``OutputWriteError``);
- 130 interrupted (Ctrl-C); ``simulate`` first summarises and writes the trials that finished.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sqlite3
import sys
import textwrap
import warnings
from collections.abc import Collection, Sequence
from datetime import date, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from adaptive.exceptions import AdaptiveError, OutputExistsError, OutputWriteError

#: output width when stdout is not a terminal and ``COLUMNS`` is not set (a log file, a pipe)
DEFAULT_PIPE_WIDTH = 180


def _width() -> int | None:
    """Output width: the terminal's, else ``COLUMNS`` (as rich reads it), else 180 for logs."""
    if sys.stdout.isatty():
        return None
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else DEFAULT_PIPE_WIDTH


console = Console(highlight=False, width=_width())
err_console = Console(stderr=True, highlight=False)


def show_table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], *, left: Collection[str] = ()
) -> None:
    """Print a table when it fits the output's width, else one wrapped block per row.

    A narrower terminal (or ``COLUMNS``) gets no cut cells: each row becomes its first cell as a
    heading and ``column: value`` pairs below it, wrapped at the width.
    """
    from rich.measure import Measurement
    from rich.text import Text

    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="left" if col in left else "right", no_wrap=True)
    for row in rows:
        table.add_row(*(Text(v) for v in row))
    # a table squeezed below its natural width wraps or cuts cells (rich's column collapse does not
    # keep words whole), so it is printed only where it fits
    if Measurement.get(console, console.options.update_width(10_000), table).maximum <= console.width:
        console.print(table)
        return
    console.print(Text(title, style="bold"))
    for row in rows:
        console.print(Text(row[0], style="bold"))
        pairs = "; ".join(f"{c}: {v}" for c, v in zip(columns[1:], row[1:], strict=True))
        lines = textwrap.fill(
            pairs, console.width, initial_indent="  ", subsequent_indent="  ", break_on_hyphens=False
        )
        console.print(Text(lines), soft_wrap=True)


def _date(ctx, param, value):
    if value is None:
        return None
    bad = click.BadParameter(f"{value[:60]!r} is not an ISO 8601 date (YYYY-MM-DD, e.g. 2026-01-05)")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise bad
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise bad from None


def _fail(exc: AdaptiveError) -> None:
    err_console.print(f"[bold red]error:[/] {exc}", markup=True, soft_wrap=True)
    sys.exit(exc.exit_code)


#: set by a command whose work is done and written (``simulate``): the console program then exits
#: without the interpreter's teardown (:meth:`_Group.__call__`)
_QUICK_EXIT = {"on": False}


def _exit_now(code) -> None:
    """Exit as ``sys.exit(code)`` would, less the teardown of every loaded module.

    Python's finalization frees numba's compiled code, scipy, pandas and every array one by one:
    ~0.15 s, a tenth of a short ``adaptive simulate``, after its outputs are written. The streams
    are flushed and the exit handlers run (``atexit``) first; a thread still running (a chunk a
    Ctrl-C left running, its trials not counted) is stopped with the process.
    """
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


class _Group(click.Group):
    """The command group; Ctrl-C exits 130 (128 + SIGINT) with one line, not 1 "Aborted!"."""

    def __call__(self, *args, **kwargs):
        """The console program (``adaptive``, ``python -m adaptive.cli``): :meth:`main`, then exit.

        Run as the program (the command line read from ``sys.argv``, no ``args`` given), a command
        that sets ``_QUICK_EXIT`` exits by :func:`_exit_now`. Called with ``args``, or through
        :meth:`main` (click's ``CliRunner``), it returns or raises as click does.
        """
        program = not args and kwargs.get("args") is None
        _QUICK_EXIT["on"] = False
        try:
            result = self.main(*args, **kwargs)
        except SystemExit as exc:
            if program and _QUICK_EXIT["on"]:
                _exit_now(exc.code)
            raise
        if program and _QUICK_EXIT["on"]:
            _exit_now(0)
        return result

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (KeyboardInterrupt, click.Abort):
            err_console.print("[bold red]interrupted[/] (Ctrl-C).")
            ctx.exit(130)
        except AdaptiveError as exc:
            _fail(exc)
        except BrokenPipeError:
            raise
        except (OSError, sqlite3.OperationalError) as exc:
            _fail(_write_error(exc))


def _write_error(exc: Exception) -> OutputWriteError:
    """An I/O failure (disk full, permission lost) as one clear line with exit code 6."""
    if isinstance(exc, OSError):
        what = exc.filename or "a file"
        why = exc.strerror or str(exc)
        if exc.errno is not None and exc.errno in errno.errorcode:
            why += f" ({errno.errorcode[exc.errno]})"
    else:
        what, why = "the look ledger", str(exc)
    return OutputWriteError(
        f"input/output error on {what}: {why}. A look's temporary folder and pending ledger row are "
        "removed, so nothing half-written is kept; free space or fix the permissions and rerun."
    )


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rr-aml-adaptive")
def main() -> None:
    """Bayesian adaptive-platform decision engine for the R/R AML platform trial."""
    warnings.filterwarnings("ignore", category=FutureWarning)


@main.command(short_help="Check a config (and a data export); exit 2 on any problem.")
@click.option(
    "--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Trial config YAML."
)
@click.option(
    "--data",
    "data_path",
    type=click.Path(),
    help="Patient export (or ADaM folder: ADSL, ADRS, optional ADTTE) to check too.",
)
@click.option("--cutoff", callback=_date, help="Also derive endpoints as of this date (YYYY-MM-DD).")
def validate(config_path: str, data_path: str | None, cutoff: date | None) -> None:
    """Check a config (and a data export) and list every problem; exit 2 if any."""
    from rich.markup import escape

    from adaptive.config import load_config
    from adaptive.data import load_patients
    from adaptive.exceptions import ConfigError
    from adaptive.provenance import provenance_summary
    from decision_rules.rules import rule_arms

    try:
        design = load_config(config_path)
    except ConfigError as exc:
        _fail(exc)
    console.print(
        f"config {config_path}: OK ({len(design.arms)} arms, {len(design.endpoints)} endpoints, "
        f"{len(design.rules)} rules; sha256 {design.sha256[:12]})"
    )
    if design.survival is not None:
        sv = design.survival
        console.print(
            f"survival endpoints {', '.join(sv.endpoints)}; cut points "
            f"{'/'.join(f'{c:g}' for c in sv.cut_points_days)} days; censored at transplant: "
            f"{'yes' if sv.censor_at_hsct else 'no'}"
        )
    for rule in design.rules:
        console.print(f"  - {rule}; on {', '.join(rule_arms(rule)) or 'no arm'}", soft_wrap=True)
    console.print(escape(provenance_summary(design)), soft_wrap=True)
    for arm in design.arms:
        if arm.is_descriptive:
            console.print(f"  - {arm.id} ({arm.label}) is descriptive: counts, estimates and safety only")
    for alloc in design.allocation_rules:
        console.print(f"  - {alloc}")
    for arm in design.arms:
        if arm.status == "queued":
            console.print(
                f"  - {arm.id} ({arm.label}) is queued for cohort {arm.entry.cohort if arm.entry else '-'}"
            )
    if data_path is None:
        return
    try:
        table = load_patients(data_path, design)
    except AdaptiveError as exc:
        _fail(exc)
    console.print(f"data {data_path}: OK ({len(table.frame)} patients; sha256 {table.sha256[:12]})")
    warns = list(table.warnings)
    if cutoff is not None:
        from adaptive.derive import derive

        try:
            derived = derive(table, design, cutoff)
        except AdaptiveError as exc:
            _fail(exc)
        warns += derived.warnings
        console.print(f"as of {cutoff}: {len(derived.patients)} patients enrolled")
        from adaptive.interim import look_reconciliation

        recon = look_reconciliation(table, derived)
        if recon is not None:
            colour = "yellow" if recon.n_disagreements else "green"
            console.print(f"[{colour}]ADTTE reconciliation:[/] {recon.sentence()}", soft_wrap=True)
            for row in recon.frame.head(25).itertuples(index=False):
                console.print(f"  - {row.USUBJID} {row.PARAMCD}: {row.reason}", soft_wrap=True)
            if recon.n_disagreements > 25:
                console.print(f"  ... and {recon.n_disagreements - 25} more (an interim look lists all)")
    _print_warnings(warns)


def _print_warnings(warns, limit: int = 25) -> None:
    for w in warns[:limit]:
        console.print(f"[yellow]warning:[/] {w}", soft_wrap=True)
    if len(warns) > limit:
        console.print(f"[yellow]... and {len(warns) - limit} more warning(s)[/]")


def _pct(x) -> str:
    """A rate (observed, posterior mean, interval bound) with one decimal."""
    return "-" if x is None else f"{100 * x:.1f}%"


def _median_days(s: dict | None) -> str:
    if s and s.get("estimable") is False:
        return "not estimable"
    if not s or not s.get("median_days"):
        return "-"
    m = s["median_days"]
    return f"{m['median']:.0f} ({m['ci95_low']:.0f}-{m['ci95_high']:.0f})"


def print_look(report: dict) -> None:
    """Readable summary of a look: per-arm CRc, safety, OS, fired rules, diagnostics."""
    from decision_rules.vocabulary import fmt_prob  # here: importing decision_rules takes ~2 s

    title = f"{report['trial']} - interim look, data cutoff {report['cutoff']} (seed {report['seed']})"
    columns = (
        "Arm",
        "Status",
        "n",
        "CRc y/n",
        "CRc mean (95% CrI)",
        "P(>null)",
        "P(>target)",
        "30d deaths",
        "P(30d>limit)",
        "OS median days",
        "Rules fired",
        "Recommendation",
    )
    rows = []
    recs = {r.get("arm"): r for r in report.get("recommendations") or [] if r.get("arm")}
    for a in report["arms"]:
        crc = a["endpoints"]["crc"]
        m30 = a["endpoints"].get("mortality_30d", {})
        fired = ", ".join(dict.fromkeys(r["rule"] for r in a["rules"] if r["fired"])) or "-"
        status = a["status"]
        if a.get("stage") and a["stage"] != "interim":
            status += f" ({a['stage'].replace('_', ' ')})"
        if a.get("monitoring") == "descriptive":
            status += " [descriptive]"
        action = recs.get(a["arm"], {}).get("action", "-")
        ci = (
            f"{_pct(crc['mean'])} ({_pct(crc['ci95_low'])}-{_pct(crc['ci95_high'])})"
            if crc.get("mean") is not None
            else "-"
        )
        rows.append(
            (
                f"{a['arm']} {a['label']}",
                status,
                str(a["n_enrolled"]),
                f"{crc['responders']}/{crc['n_evaluable']}"
                + (f" (+{crc['n_pending']} pending)" if crc["n_pending"] else ""),
                ci,
                fmt_prob(crc.get("prob_above_null")),
                fmt_prob(crc.get("prob_above_target")),
                f"{m30.get('responders', '-')}/{m30.get('n_evaluable', '-')}" if m30 else "-",
                (
                    f"{fmt_prob(m30.get('prob_above_limit'))} (limit {_pct(m30['limit_rate'])})"
                    if m30 and m30.get("limit_rate") is not None
                    else "-"
                ),
                _median_days(a.get("survival", {}).get("os")),
                fired,
                action,
            )
        )
    show_table(title, columns, rows, left=("Arm", "Status", "Rules fired", "Recommendation"))
    for c in report["comparisons"]:
        console.print(f"comparison: {c['sentence']}", soft_wrap=True)
    for c in report.get("survival_comparisons", []):
        console.print(f"survival: {c['sentence']}", soft_wrap=True)
    for c in report.get("opening_checks", []):
        console.print(f"[yellow]check the window:[/] {c['sentence']}", soft_wrap=True)
    span = (report.get("remission_span") or {}).get("trial")
    if span and span["n_remissions"]:
        console.print(
            f"remission span (the CRc outcome's time frame; descriptive): {span['span_days']} days "
            "from the first remission "
            f"({span['first_remission_on']}) to the last ({span['last_remission_on']}), "
            f"{span['n_remissions']} remissions"
        )
    recon = report.get("reconciliation")
    if recon:
        colour = "yellow" if recon["n_disagreements"] else "green"
        console.print(f"[{colour}]ADTTE reconciliation:[/] {recon['sentence']}", soft_wrap=True)
    d = report["diagnostics"]
    console.print(
        f"diagnostics: max R-hat {d['max_rhat']:.3f}, min bulk ESS {d['min_ess_bulk']:.0f}, "
        f"divergences {d['divergences']}, converged: {d['converged']}"
    )
    if report["fired"]:
        console.print("[bold]rules that fired:[/]")
        for s in report["fired"]:
            console.print(f"  - {s}", soft_wrap=True)
    print_adaptation(report)
    if report["warnings"]:
        console.print(
            f"[yellow]{len(report['warnings'])} data warning(s)[/] (listed in recommendations.json)"
        )


def print_adaptation(report: dict) -> None:
    """Recommendations, allocation and data changes of a look."""
    changes = report.get("data_changes")
    if changes:
        console.print(f"[bold]data changes:[/] {changes['sentence']}", soft_wrap=True)
    for block in (report.get("allocation") or {}).values():
        console.print(f"[bold]allocation[/] {block['sentence']}", soft_wrap=True)
        conc = block.get("concurrent")
        if conc and conc.get("sentence"):
            console.print(f"  drift check: {conc['sentence']}", soft_wrap=True)
        for adj in block.get("time_adjusted") or []:
            console.print(f"  {adj['sentence']}", soft_wrap=True)
        alt = block.get("if_recommendations_accepted")
        if alt:
            console.print(f"  if the recommendations are accepted: {alt['sentence']}", soft_wrap=True)
    from rich.markup import escape

    from adaptive.provenance import grade_tag, is_decisive

    recs = report.get("recommendations") or []
    signals = [(r["arm"], s) for r in recs for s in r.get("safety_signals") or []]
    if signals:
        console.print("[bold red]safety signals[/] (named whether or not a harm rule fires):")
        for arm, sig in signals:
            # what the reference the signal is measured against rests on (provenance grade)
            graded = sig.get("reference_key") is not None
            source = sig.get("reference_source") or "no provenance recorded"
            src = f" (reference {grade_tag(sig.get('reference_grade'))}: {source})"
            console.print(f"  - {arm}: {sig['sentence']}{src if graded else ''}", soft_wrap=True)
    if recs:
        console.print("[bold]recommendations (for the DSMB; nothing is applied automatically):[/]")
        for r in recs:
            flag = " [yellow](Monte Carlo-uncertain)[/]" if r.get("mc_uncertain") else ""
            console.print(f"  - [bold]{r['action']}[/]{flag}: {r['sentence']}", soft_wrap=True)
            if r.get("reference_note") and is_decisive(r):
                # one short line: the grades print as [M], [D]: escaped, not rich markup
                console.print(f"    [yellow]{escape(r['reference_note'])}[/]", soft_wrap=True)
    for note in report.get("coherence") or []:
        console.print(f"[bold]coherence check:[/] {note['sentence']}", soft_wrap=True)
    panel = report.get("robustness")
    if panel and panel.get("analyses"):
        fragile = [r for r in panel["results"] if r["fragile"]]
        names = "; ".join(
            f"{r['rule']} {'/'.join(r['arms'])} ({', '.join(r['flips_under'])})" for r in fragile
        )
        console.print(
            f"[bold]robustness:[/] {len(panel['results'])} rule results under {len(panel['analyses'])} "
            f"alternative analyses; fragile: {names or 'none'}",
            soft_wrap=True,
        )
        for c in panel.get("priors") or []:
            if c["conflict"]:
                console.print(
                    f"  prior-data conflict: {c['arm']} {c['endpoint']} {c['observed']} "
                    f"(tail probability {c['conflict_p']:.3f})",
                    soft_wrap=True,
                )
    from adaptive.companions import LABEL, companion_lines

    companions = companion_lines(report.get("companions"))
    if companions:
        console.print(f"[bold]frequentist companions[/] ({LABEL}):")
        for line in companions:
            console.print(f"  {line}", soft_wrap=True)


def _resolve_ledger(design, ledger_path: str | None, out_dir: str) -> Path:
    from adaptive.ledger import default_path

    if ledger_path:
        return Path(ledger_path)
    return design.ledger_path or default_path(Path(out_dir))


@main.command(short_help="Run an interim look: fit, evaluate the rules, recommend.")
@click.option(
    "--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Trial config YAML."
)
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(),
    help="Patient export (.csv, .parquet, .xpt), or a folder of ADaM datasets (ADSL, ADRS, optional ADTTE).",
)
@click.option("--cutoff", required=True, callback=_date, help="Data cutoff date (YYYY-MM-DD).")
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="New (or empty) output folder."
)
@click.option("--seed", type=int, default=None, help="Seed (default: the config's sampler.seed).")
@click.option(
    "--ledger",
    "ledger_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Look ledger (default: the config's ledger.path, else ledger.sqlite beside the --out folder).",
)
@click.option("--force", is_flag=True, help="Make a new look even if the ledger has one on the same inputs.")
@click.option(
    "--memo",
    "make_memo",
    is_flag=True,
    help="Also write the DSMB memo (closed and open reports, HTML and PDF) into the --out folder.",
)
@click.option(
    "--wait",
    type=click.FloatRange(0),
    default=900.0,
    show_default=True,
    help="Seconds to wait while another adaptive interim holds the ledger.",
)
@click.option(
    "--allow-out-of-order",
    is_flag=True,
    help="Make a look whose cutoff is before that of a look already in the ledger (recorded in the look).",
)
@click.option(
    "--draws",
    type=click.IntRange(1),
    default=None,
    help="MCMC draws per chain instead of the config's sampler.draws (recorded in the look).",
)
@click.option(
    "--tune", type=click.IntRange(1), default=None, help="Tuning steps per chain instead of sampler.tune."
)
@click.option("--chains", type=click.IntRange(2), default=None, help="Chains instead of sampler.chains.")
@click.option("--quiet", "-q", is_flag=True, help="No progress messages on stderr.")
def interim(
    config_path: str,
    data_path: str,
    cutoff: date,
    out_dir: str,
    seed: int | None,
    ledger_path: str | None,
    force: bool,
    wait: float,
    make_memo: bool = False,
    allow_out_of_order: bool = False,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    quiet: bool = False,
) -> None:
    """Run an interim look: fit every endpoint, evaluate the rules, recommend, write the outputs.

    --draws, --tune and --chains override the config's sampler settings for this look without
    editing the config (its hash, the look's identity, stays); the look records them.
    """
    from adaptive.config import load_config
    from adaptive.exceptions import ConvergenceError
    from adaptive.interim import run_interim
    from adaptive.progress import shown

    try:
        design = load_config(config_path)
        ledger = _resolve_ledger(design, ledger_path, out_dir)
        with shown(err_console, quiet=quiet, first="starting the look"):
            look = run_interim(
                design,
                data_path,
                cutoff,
                out_dir,
                seed=seed,
                ledger=ledger,
                force=force,
                wait=wait,
                allow_out_of_order=allow_out_of_order,
                sampler_overrides={
                    k: v for k, v in (("draws", draws), ("tune", tune), ("chains", chains)) if v is not None
                },
            )
    except ConvergenceError as exc:
        err_console.print(
            f"[bold red]REFUSED:[/] {exc}\nThe look was written to {out_dir} with status "
            "'refused' and its diagnostics; no rule was evaluated.",
            soft_wrap=True,
        )
        if make_memo:
            _write_memo(out_dir, data_path, ledger)
        sys.exit(exc.exit_code)
    except AdaptiveError as exc:
        _fail(exc)
    for note in look.notes:
        console.print(f"[yellow]ledger:[/] {note}", soft_wrap=True)
    if look.reused is not None:
        rec = look.reused
        console.print(
            f"Nothing to do: the ledger {ledger} already holds {rec.describe()}, made from the same data "
            f"(sha256 {rec.data_sha256[:12]}), config (sha256 {rec.config_sha256[:12]}) and cutoff. "
            "Nothing was written. Use --force for a new look on the same inputs.",
            soft_wrap=True,
        )
        if not Path(rec.out_dir).is_dir():
            console.print(f"[yellow]warning:[/] its folder {rec.out_dir} no longer exists.", soft_wrap=True)
        elif make_memo:
            _write_memo(rec.out_dir, data_path, ledger, existing_ok=True)
        if rec.status != "ok":
            err_console.print(f"[bold red]REFUSED:[/] look {rec.look} was refused (no recommendation).")
            sys.exit(3)
        return
    print_look(look.report)
    recon = look.report.get("reconciliation")
    files = [str(Path(out_dir) / f) for f in ("recommendations.json", "posterior.nc")]
    if recon:
        files.append(str(Path(out_dir) / recon["file"]))
    console.print(
        f"wrote {', '.join(files[:-1])} and {files[-1]}; recorded as look {look.look_number} in {ledger}"
    )
    schedule = (look.report.get("look") or {}).get("schedule") or {}
    if schedule.get("sentence"):
        remedy = f" {schedule['remedy'].replace('LEDGER', str(ledger))}." if schedule.get("remedy") else ""
        console.print(f"[yellow]look schedule:[/] {schedule['sentence']}{remedy}", soft_wrap=True)
    _more_draws_advice(look.report)
    if make_memo:
        with shown(err_console, quiet=quiet, first="building the memo"):
            _write_memo(out_dir, data_path, ledger)


def _more_draws_advice(report: dict) -> None:
    """For the statistician (never in the memo): how to settle Monte Carlo-uncertain results."""
    uncertain = [r for r in report.get("recommendations") or [] if r.get("mc_uncertain")]
    if not uncertain:
        return
    draws = (report.get("sampler_overrides") or {}).get("draws") or report["config"]["sampler"]["draws"]
    arms = ", ".join(dict.fromkeys(r.get("arm") or "-" for r in uncertain))
    console.print(
        f"[yellow]Monte Carlo:[/] the recommendation(s) for {arms} rest on probabilities within Monte "
        f"Carlo error of their thresholds. Four times the draws halve that error: rerun this look "
        f"with --draws {4 * int(draws)} --force and a new --out folder (both looks stay in the "
        "ledger; the rerun records its --draws).",
        soft_wrap=True,
    )


def _write_memo(look_dir, data_path, ledger, *, existing_ok: bool = False, force: bool = False) -> None:
    """Build the DSMB memo of a look folder and say where it went (exit 2 on a memo error)."""
    from adaptive.report import build_memo, memo_paths

    if existing_ok and all(p.exists() for p in memo_paths(look_dir).values()):
        console.print(
            f"memo: {look_dir} already holds its memo; nothing rebuilt (adaptive memo --force rebuilds it)."
        )
        return
    try:
        memo = build_memo(look_dir, data=data_path, ledger=ledger, force=force)
    except AdaptiveError as exc:
        _fail(exc)
    for note in memo.notes:
        console.print(f"[yellow]memo:[/] {note}", soft_wrap=True)
    if memo.refused:
        console.print(
            "[bold red]memo:[/] the look was refused (no convergence); the memo says so on its first page."
        )
    names = ", ".join(p.name for p in memo.paths.values())
    console.print(f"wrote the DSMB memo into {look_dir}: {names}", soft_wrap=True)


@main.command(short_help="Write the DSMB memo of a look (closed and open reports).")
@click.argument("look_dir", type=click.Path(file_okay=False, exists=True))
@click.option(
    "--data",
    "data_path",
    type=click.Path(exists=True),
    default=None,
    help="The patient export (file or ADaM folder) the look was made from (SHA-256 checked); default: the "
    "ledger's snapshot of it.",
)
@click.option(
    "--ledger",
    "ledger_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Look ledger (default: the ledger named in recommendations.json, beside the look folder).",
)
@click.option("--force", is_flag=True, help="Rebuild the memo if the folder already holds one.")
@click.option("--quiet", "-q", is_flag=True, help="No progress messages on stderr.")
def memo(
    look_dir: str, data_path: str | None, ledger_path: str | None, force: bool, quiet: bool = False
) -> None:
    """Write the DSMB memo of a look: closed and open reports, HTML and PDF (never refits)."""
    from adaptive.progress import shown

    with shown(err_console, quiet=quiet, first="building the memo"):
        _write_memo(look_dir, data_path, ledger_path, force=force)


@main.command(short_help="List a ledger's looks and how each arm's numbers moved.")
@click.option(
    "--ledger",
    "ledger_path",
    type=click.Path(dir_okay=False),
    default="looks/ledger.sqlite",
    show_default=True,
    help="Look ledger to read.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def history(ledger_path: str, as_json: bool) -> None:
    """List the looks of a ledger and, per arm, how probabilities, allocation and status moved."""
    import json

    from adaptive.ledger import history as ledger_history

    try:
        hist = ledger_history(ledger_path)
    except AdaptiveError as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps(hist, indent=2))
        return
    columns = ("Look", "Recorded (UTC)", "Cutoff", "Status", "Seed", "Data", "Config", "Data changes")
    columns += ("Actions",)
    rows = []
    for lk in hist["looks"]:
        acts: dict[str, int] = {}
        for r in lk["recommendations"]:
            if r["action"] != "continue":
                acts[r["action"]] = acts.get(r["action"], 0) + 1
        changes = lk["data_changes"]
        rows.append(
            (
                str(lk["look"])
                + (" (forced)" if lk["forced"] else "")
                + (" (out of order)" if lk["out_of_order"] else ""),
                lk["recorded_at"],
                lk["cutoff"],
                lk["status"],
                str(lk["seed"])
                + "".join(f" --{k} {v}" for k, v in sorted((lk.get("sampler_overrides") or {}).items())),
                lk["data_sha256"][:10],
                lk["config_sha256"][:10],
                "-" if not changes else f"+{changes['n_new_patients']} new, {changes['n_cleaning']} cleaned",
                ", ".join(f"{k} x{v}" if v > 1 else k for k, v in acts.items()) or "continue",
            )
        )
    show_table(f"Looks in {ledger_path}", columns, rows, left=columns)
    columns = ("Arm", "Look", "Cutoff", "Status", "n", "CRc y/n", "P(>null)", "P(>target)", "P(best)")
    columns += ("Alloc", "Action")
    rows = []
    for arm, arm_rows in hist["arms"].items():
        name = f"{arm} {arm_rows[-1].get('label') or ''}".strip()
        for r in arm_rows:
            rows.append(
                (
                    name,
                    str(r["look"]),
                    r["cutoff"],
                    r["status"] or "-",
                    str(r["n_enrolled"]),
                    f"{r['crc_responders']}/{r['crc_evaluable']}" if r["crc_evaluable"] is not None else "-",
                    _pct(r["prob_above_null"]),
                    _pct(r["prob_above_target"]),
                    _pct(r["prob_best"]),
                    _pct(r["allocation"]),
                    ", ".join(r["actions"]) or "-",
                )
            )
    show_table("Arms, look by look", columns, rows, left=("Arm", "Cutoff", "Status", "Action"))


@main.command(short_help="Simulate a realistic patient-level export from a scenario.")
@click.option(
    "--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Trial config YAML."
)
@click.option(
    "--scenario",
    "scenario_path",
    required=True,
    type=click.Path(dir_okay=False, exists=True),
    help="Scenario YAML.",
)
@click.option("--n", "n_patients", required=True, type=click.IntRange(1), help="Patients to simulate.")
@click.option("--seed", type=int, required=True, help="Random seed.")
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(),
    help="CSV or Parquet file to write (--format adam: a new folder for the XPT files).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet", "adam"]),
    default=None,
    help="csv or parquet (default: by the --out suffix, else csv); adam: ADSL, ADRS and ADTTE as "
    "SAS transport v5 files (adsl.xpt, adrs.xpt, adtte.xpt) in the --out folder.",
)
def synth(
    config_path: str, scenario_path: str, n_patients: int, seed: int, out_path: str, fmt: str | None = None
) -> None:
    """Simulate a realistic patient-level export from a scenario."""
    from adaptive.config import load_config
    from adaptive.output import write_text_atomic
    from adaptive.scenario import load_scenario
    from adaptive.synth import synthesize

    try:
        design = load_config(config_path)
        scenario = load_scenario(scenario_path, design)
    except AdaptiveError as exc:
        _fail(exc)
    out = Path(out_path)
    if fmt == "adam":
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            _fail(
                OutputExistsError(
                    f"{out} exists; synth never overwrites (give a new folder for --format adam)."
                )
            )
    elif out.exists():
        _fail(OutputExistsError(f"{out} exists; synth never overwrites a file."))
    df = synthesize(design, scenario, n_patients, seed)
    if fmt == "adam":
        from adaptive.synth import adam_datasets, write_adam

        export = date.fromisoformat(df.attrs["export_date"])
        datasets = adam_datasets(df, design, export)
        write_adam(datasets, out, export)
        console.print(
            f"wrote {len(df)} patients to {out}/ ({', '.join(f'{k}.xpt' for k in datasets)}, SAS transport "
            f"v5; export date {export}, ADTTE derived as of it)"
        )
        return
    if fmt == "parquet" or (fmt is None and out.suffix.lower() in (".parquet", ".pq")):
        tmp = out.with_name(f".{out.name}.tmp")
        df.to_parquet(tmp, index=False)
        tmp.replace(out)
    else:
        write_text_atomic(out, df.to_csv(index=False, lineterminator="\n"))
    console.print(f"wrote {len(df)} patients to {out} (export date {_export_date(df)})")


def _export_date(df) -> str:
    cols = ["enrolled_on", "response_on", "relapse_on", "death_on", "last_contact_on", "hsct_on"]
    vals = [v for c in cols for v in df[c] if v]
    return max(vals) if vals else "-"


def _progress(quiet: bool = False):
    """The progress bars of simulations on stderr (none with ``--quiet``)."""
    if quiet:
        return contextlib.nullcontext(None)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )


@main.command(short_help="Simulate the design's operating characteristics.")
@click.option(
    "--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Trial config YAML."
)
@click.option(
    "--scenario",
    "scenario_paths",
    required=True,
    multiple=True,
    type=click.Path(dir_okay=False, exists=True),
    help="Scenario YAML (repeat for several).",
)
@click.option(
    "--trials", "n_trials", required=True, type=click.IntRange(1), help="Virtual trials per scenario."
)
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="New (or empty) output folder."
)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the whole study.")
@click.option("--compare-fixed", is_flag=True, help="Also run every scenario with fixed allocation.")
@click.option(
    "--workers",
    type=click.IntRange(1),
    default=None,
    help="Local worker processes; 1: in this process, one thread (default: every core: a short study "
    "in this process on one thread per core, a long one on a local Dask cluster).",
)
@click.option(
    "--scheduler", default=None, help="Address of an existing Dask scheduler, e.g. tcp://host:8786."
)
@click.option(
    "--chunk-size",
    type=click.IntRange(1),
    default=None,
    help="Trials per chunk (default: 250 per Dask task, the engine's pass in this process).",
)
@click.option(
    "--sweep",
    "sweep_text",
    default=None,
    metavar="KEY=V1,V2,...",
    help="Rerun the study for each value of a config setting (rules.futility_os.threshold=0.05,0.1) "
    "or scenario setting (scenario.accrual_per_month=10,14) and report them side by side.",
)
@click.option(
    "--report", "with_report", is_flag=True, help="Also write report.html and report.pdf (see report-sim)."
)
@click.option(
    "--looks-from-ledger",
    "ledger_path",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="Simulate the looks this ledger holds (their cutoffs, as days from trial.start_date), then the "
    "config's schedule after the last: the operating characteristics of the trial as run so far.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars on stderr.")
def simulate(
    config_path,
    scenario_paths,
    n_trials,
    out_dir,
    seed,
    compare_fixed,
    workers,
    scheduler,
    chunk_size,
    sweep_text,
    with_report,
    ledger_path=None,
    quiet=False,
):
    """Operating characteristics of the design: virtual trials on the same rules as `interim`."""
    from adaptive.simulate.study import looks_from_ledger, simulate_study

    _QUICK_EXIT["on"] = True  # once this command returns or exits, its work is written
    if sweep_text is not None and ledger_path is not None:
        _fail(AdaptiveErrorValue("--sweep and --looks-from-ledger cannot be combined yet"))
    held = None
    if ledger_path is not None:
        try:
            held = looks_from_ledger(ledger_path, config_path)
        except AdaptiveError as exc:
            _fail(exc)
        console.print(
            f"looks as held ({held['ledger']}): days {', '.join(map(str, held['at_days']))} from "
            f"{held['start_date']} (cutoffs {', '.join(held['cutoffs'])}), then the config's schedule"
        )
    if sweep_text is not None:
        _simulate_sweep(
            config_path, scenario_paths, n_trials, out_dir, sweep_text, seed=seed,
            compare_fixed=compare_fixed, workers=workers, scheduler=scheduler, chunk_size=chunk_size,
            quiet=quiet,
        )  # fmt: skip
        return
    try:
        with _progress(quiet) as progress:
            report = simulate_study(
                config_path, list(scenario_paths), n_trials, out_dir, seed=seed, compare_fixed=compare_fixed,
                workers=workers, scheduler=scheduler, chunk_size=chunk_size, progress=progress,
                looks_as_held=held,
            )  # fmt: skip
    except AdaptiveError as exc:
        _fail(exc)
    except ValueError as exc:
        _fail(AdaptiveErrorValue(str(exc)))
    _print_oc(report)
    if not report["complete"]:
        err_console.print("[yellow]interrupted:[/] the finished trials were summarised and written.")
        sys.exit(130)
    console.print(f"wrote {Path(out_dir) / 'oc.json'}, oc.csv and trials.parquet")
    if with_report:
        _write_sim_report(out_dir, force=False)


def _write_sim_report(study_dir, *, force: bool) -> None:
    from adaptive.report.simreport import build_sim_report

    try:
        paths = build_sim_report(study_dir, force=force)
    except AdaptiveError as exc:
        _fail(exc)
    console.print(f"wrote {paths['html']} and {paths['pdf'].name}")


@main.command(name="report-sim", short_help="Write the simulation report of a finished study.")
@click.argument("study_dir", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Rebuild a report that is already there.")
def report_sim(study_dir, force):
    """Write report.html and report.pdf of an `adaptive simulate` study folder (nothing is rerun)."""
    _write_sim_report(study_dir, force=force)


def _simulate_sweep(
    config_path, scenario_paths, n_trials, out_dir, sweep_text, *, quiet: bool = False, **options
) -> None:
    """`simulate --sweep`: one study per value, the key characteristics side by side."""
    from adaptive.simulate.sweep import parse_sweep, sweep_study

    try:
        sweep = parse_sweep(sweep_text)
        with _progress(quiet) as progress:
            result = sweep_study(
                config_path, list(scenario_paths), sweep, n_trials, out_dir, progress=progress, **options
            )
    except AdaptiveError as exc:
        _fail(exc)
    except ValueError as exc:
        _fail(AdaptiveErrorValue(str(exc)))
    runs = result["runs"]
    for si, sc in enumerate(runs[0]["scenarios"]):
        for label in sc["allocations"]:
            title = (
                f"{sc['scenario']} ({label} allocation): {result['key']} swept, {n_trials} trials "
                "per value; graduate / drop futility / E[N]"
            )
            columns = ("Arm", *(f"{result['key'].rsplit('.', 1)[-1]} = {run['value']}" for run in runs))
            rows = []
            for arm in sc["allocations"][label]["arms"]:
                cells = []
                for run in runs:
                    a = run["scenarios"][si]["allocations"][label]["arms"][arm]
                    cells.append(
                        f"{_est(a['prob_graduate'])} / {_est(a['prob_drop_futility'])} / "
                        f"{_est(a['n_mean'], pct=False)}"
                    )
                rows.append((arm, *cells))
            show_table(title, columns, rows, left=("Arm",))
    if not result["complete"]:
        err_console.print("[yellow]interrupted:[/] the finished values were summarised and written.")
        sys.exit(130)
    console.print(f"wrote {Path(out_dir) / 'sweep.json'}, sweep.csv and one study per value (value-<i>/)")


class AdaptiveErrorValue(AdaptiveError, ValueError):
    """A design or scenario that the simulator cannot run."""

    exit_code = 2


def _est(x, pct=True) -> str:
    if not x or x.get("estimate") is None:
        return "-"
    from decision_rules.vocabulary import fmt_mcse

    e, m = x["estimate"], x.get("mcse")
    if pct:
        return f"{100 * e:.1f}%" + (f" ±{fmt_mcse(100 * m)}" if m is not None else "")
    return f"{e:.1f}" + (f" ±{fmt_mcse(m)}" if m is not None else "")


def _print_oc(report: dict) -> None:
    skipped = report["design"].get("rules_not_simulated") or []
    if skipped:
        names = ", ".join(x["rule"] for x in skipped)
        console.print(f"[yellow]not simulated:[/] {names} ({skipped[0]['reason']})")
    for sc in report["scenarios"]:
        for label, s in sc["allocations"].items():
            columns = ("Arm", "true CRc (ITT)", "P(graduate)", "P(drop fut.)", "P(drop harm)")
            columns += ("P(drop inf.)", "P(complete)", "P(suspended)", "type I", "power")
            columns += ("E[N]", "allocation")
            rows = [
                (
                    f"{a['arm']} {a['label']}",
                    f"{100 * a['true_crc_itt']:.1f}%",
                    _est(a["prob_graduate"]),
                    _est(a["prob_drop_futility"]),
                    _est(a["prob_drop_harm"]),
                    _est(a["prob_drop_inferior"]),
                    _est(a["prob_complete"]),
                    _est(a["prob_ever_suspended"]),
                    _est(a["type_i_error"]),
                    _est(a["power"]),
                    _est(a["n_mean"], pct=False),
                    _est(a["allocation"]),
                )  # fmt: skip
                for a in s["arms"]
            ]
            title = f"{sc['scenario']} ({label} allocation): {s['n_trials']} trials, values ± MCSE"
            show_table(title, columns, rows, left=("Arm",))
            for c in s["comparisons"]:
                console.print(
                    f"  {c['rule']}: decided or ran to max_n {_est(c['prob_decided_or_max_n'])} "
                    f"(decided {_est(c['prob_decided'])}, cut short {_est(c['prob_cut_short'])}); "
                    f"P(select better) {_est(c['prob_select_better'])}, "
                    f"P(select worse) {_est(c['prob_select_worse'])}, "
                    f"any selection {_est(c['prob_any_selection'])}",
                    soft_wrap=True,
                )
            cs = (s.get("error_summary") or {}).get("max_comparison_false_selection")
            if cs:
                console.print(
                    f"  {cs['rule']}: two equal arms, one declared superior in {_est(cs)} (the comparison's "
                    "type I error)",
                    soft_wrap=True,
                )
            if s.get("fwer") is not None:
                console.print(
                    f"  family-wise error {_est(s['fwer'])} (null arms: {', '.join(s['null_arms'])}), "
                    f"expected false graduations {s['expected_false_graduations']['estimate']:.3f} "
                    f"±{s['expected_false_graduations']['mcse']:.3f}",
                    soft_wrap=True,
                )
            if s.get("prob_any_drop_harm") is not None:
                console.print(
                    f"  any arm dropped for harm {_est(s['prob_any_drop_harm'])}, any suspension "
                    f"{_est(s['prob_any_suspension'])}, any flag {_est(s['prob_any_flag'])}"
                    + (
                        f"; an arm not above its mortality limit dropped for harm "
                        f"{_est(s['prob_any_false_harm'])}"
                        if s.get("prob_any_false_harm") is not None
                        else ""
                    ),
                    soft_wrap=True,
                )
            console.print(
                f"  duration {_est(s['duration_mean'], pct=False)} days, "
                f"looks {_est(s['looks_mean'], pct=False)}"
            )


@main.command(short_help="Find a rule's threshold that meets a type I error target.")
@click.option(
    "--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Trial config YAML."
)
@click.option(
    "--scenario",
    "scenario_paths",
    required=True,
    multiple=True,
    type=click.Path(dir_okay=False, exists=True),
    help="Null scenario YAML; repeat it for a family of nulls (the error is the largest over them).",
)
@click.option("--rule", "rule_id", required=True, help="Id of the rule whose threshold is calibrated.")
@click.option(
    "--criterion",
    type=click.Choice(["max-arm", "fwer"]),
    default="max-arm",
    show_default=True,
    help="max-arm: the largest per-arm type I error; fwer: P(any null arm graduates or wins).",
)
@click.option(
    "--target",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.05,
    show_default=True,
    help="Largest acceptable error (per arm or family-wise, see --criterion).",
)
@click.option(
    "--trials", "n_trials", required=True, type=click.IntRange(1), help="Virtual trials per evaluation."
)
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="New (or empty) output folder."
)
@click.option(
    "--seed", type=int, default=1, show_default=True, help="Seed: every threshold sees the same trials."
)
@click.option("--lo", type=float, default=0.9, show_default=True, help="Lowest threshold searched.")
@click.option("--hi", type=float, default=0.9999, show_default=True, help="Highest threshold searched.")
@click.option("--iterations", type=click.IntRange(1), default=8, show_default=True, help="Bisection steps.")
@click.option(
    "--workers", type=click.IntRange(1), default=None, help="Local worker processes (default: all cores)."
)
@click.option(
    "--scheduler", default=None, help="Address of an existing Dask scheduler, e.g. tcp://host:8786."
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars on stderr.")
def calibrate(
    config_path,
    scenario_paths,
    rule_id,
    criterion,
    target,
    n_trials,
    out_dir,
    seed,
    lo,
    hi,
    iterations,
    workers,
    scheduler,
    quiet=False,
):
    """Find a rule's threshold that keeps the simulated type I error at or below a target."""
    from adaptive.simulate.study import calibrate as run_calibration

    try:
        with _progress(quiet) as progress:
            rep = run_calibration(
                config_path, scenario_paths, rule_id, target, n_trials, out_dir, seed=seed, lo=lo, hi=hi,
                iterations=iterations, workers=workers, scheduler=scheduler, progress=progress,
                criterion=criterion.replace("-", "_"),
            )  # fmt: skip
    except AdaptiveError as exc:
        _fail(exc)
    except ValueError as exc:
        _fail(AdaptiveErrorValue(str(exc)))
    what = "family-wise error" if criterion == "fwer" else "type I error"
    for e in rep["evaluations"]:
        worst = f" ({e['worst_scenario']})" if len(scenario_paths) > 1 else ""
        console.print(
            f"  threshold {e['threshold']:.5f}: {what} "
            f"{100 * e['type_i_error']:.2f}% ± {100 * e['mcse']:.2f}{worst}"
        )
    if rep["chosen_threshold"] is None:
        console.print(f"[yellow]{rep['note']}[/]")
    else:
        c = rep["type_i_error_at_chosen"]
        console.print(
            f"chosen threshold for {rule_id}: {rep['chosen_threshold']:.5f} "
            f"(simulated {what} {100 * c['type_i_error']:.2f}% ± {100 * c['mcse']:.2f}, "
            f"target {100 * target:g}%)"
        )
    for w in rep["warnings"]:
        console.print(f"[yellow]warning: {w}[/]")
    console.print(f"wrote {Path(out_dir) / 'calibration.json'}")


if __name__ == "__main__":
    main()
