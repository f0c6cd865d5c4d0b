"""All exceptions raised by the engine, in one place.

Every error says what went wrong, where (file, row, column, config key), what was received, what was
expected and, where possible, how to fix it. Validation collects *all* problems before raising, so a
statistician fixes a data export in one pass rather than one error at a time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One validation problem.

    Parameters
    ----------
    where
        Location in words, e.g. ``"data.csv line 14, column 'death_on'"`` or
        ``"rr_aml.yaml: arms.arm3.rates.crc.null_rate"``.
    message
        What rule was broken, what was received and what was expected.
    """

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class AdaptiveError(Exception):
    """Base class of every error raised on purpose by the engine."""

    exit_code = 1


class _ProblemsError(AdaptiveError, ValueError):
    """An error that carries a list of problems and prints all of them."""

    title = "problems"

    def __init__(self, problems: Iterable[Problem | str]):
        self.problems = [p if isinstance(p, Problem) else Problem("", str(p)) for p in problems]
        lines = [f"{len(self.problems)} {self.title}:"]
        lines += [f"  - {p}" if p.where else f"  - {p.message}" for p in self.problems]
        super().__init__("\n".join(lines))


class ConfigError(_ProblemsError):
    """The trial configuration is invalid (every problem is listed)."""

    title = "configuration problem(s)"
    exit_code = 2


class DataError(_ProblemsError):
    """The patient-level data are invalid (every problem is listed with file, row and column)."""

    title = "data problem(s)"
    exit_code = 2


class ScenarioError(_ProblemsError):
    """A simulation scenario file is invalid."""

    title = "scenario problem(s)"
    exit_code = 2


class OutputExistsError(AdaptiveError, FileExistsError):
    """The output folder already holds results; earlier looks are never overwritten."""

    exit_code = 2


class OutputNotWritableError(AdaptiveError, PermissionError):
    """``--out``'s folder or the ledger's folder cannot be written; found before anything is fitted."""

    exit_code = 2


class OutputWriteError(AdaptiveError, OSError):
    """Writing the outputs failed (disk full, permission lost, I/O error); nothing of the look is kept.

    The message names the file and the system's reason.
    """

    exit_code = 6


class ConvergenceError(AdaptiveError, RuntimeError):
    """A model fit failed the configured R-hat / ESS / divergence limits after every retry.

    No recommendation may be made from such a fit.
    """

    exit_code = 3

    def __init__(self, message: str, reports: list | None = None):
        super().__init__(message)
        self.reports = reports or []


class LedgerError(AdaptiveError, RuntimeError):
    """The look ledger refuses a look or cannot be read.

    E.g. the same data, config and cutoff were already analysed with another seed, or the file is
    not a ledger of a known schema.
    """

    exit_code = 2


class LookOrderError(LedgerError):
    """A look's cutoff is before the cutoff of a look already recorded in the ledger.

    Its data changes and previous allocation would refer to a later look; ``adaptive interim
    --allow-out-of-order`` makes it anyway (recorded in the look).
    """

    exit_code = 2


class LedgerBusyError(AdaptiveError, RuntimeError):
    """Another ``adaptive interim`` holds the ledger's lock for longer than the wait allowed."""

    exit_code = 4


class SimReportError(AdaptiveError, ValueError):
    """A simulation report cannot be built: not a finished study folder, or a report already there."""

    exit_code = 2


class MemoError(AdaptiveError, ValueError):
    """A DSMB memo cannot be built.

    Not a look folder, a data file that is not the look's, or a memo that already exists (without
    ``--force``).
    """

    exit_code = 2


class FitWorkerError(AdaptiveError, RuntimeError):
    """A model-fitting worker process raised or died during a look; nothing of the look is written.

    The message quotes the worker's error or the tail of its output. The next look starts a fresh
    worker in its place.
    """

    exit_code = 5
