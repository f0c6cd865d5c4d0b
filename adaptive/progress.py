"""Progress messages of long work: a look's fits, the memo's PDFs, the simulator's set-up.

The engine says what it is doing at ``INFO`` on standard :mod:`logging` loggers
(``adaptive.progress`` here, ``models.fit`` for the sampler's attempts), so a library caller sees
nothing unless it configures logging. The CLI shows the latest message as a one-line status on
stderr (:func:`shown`) when stderr is a terminal, and nothing with ``--quiet`` or in a pipe or log
file: progress never mixes into the results printed on stdout.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["LOGGERS", "shown", "step"]

log = logging.getLogger("adaptive.progress")
#: the loggers whose INFO messages are progress (``models`` may not import ``adaptive``)
LOGGERS = ("adaptive.progress", "models.fit")


def step(message: str) -> None:
    """Say what the engine starts doing now (a short phrase: 'fitting CRc (4 chains x 2000 draws)')."""
    log.info(message)


class _StatusHandler(logging.Handler):
    def __init__(self, status) -> None:
        super().__init__(logging.INFO)
        self.status = status

    def emit(self, record: logging.LogRecord) -> None:
        self.status.update(record.getMessage())


@contextmanager
def shown(console, *, quiet: bool = False, first: str = "starting") -> Iterator[None]:
    """Show progress messages as a rich status line on ``console`` while the block runs.

    Nothing is shown with ``quiet`` or when ``console`` is not a terminal (a pipe, a log file,
    a test's captured output).
    """
    if quiet or not console.is_terminal:
        yield
        return
    with console.status(first) as status:
        handler = _StatusHandler(status)
        loggers = [logging.getLogger(name) for name in LOGGERS]
        levels = [lg.level for lg in loggers]
        for lg in loggers:
            lg.addHandler(handler)
            lg.setLevel(logging.INFO)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.removeHandler(handler)
                lg.setLevel(level)
