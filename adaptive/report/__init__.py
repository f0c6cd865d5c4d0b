"""The DSMB memo: closed (unblinded, by arm) and open (pooled) reports of an interim look.

``adaptive memo LOOK_DIR`` (and ``adaptive interim --memo``) call :func:`build_memo`. Modules:
:mod:`~adaptive.report.data` (a look's outputs -> the numbers each report shows),
:mod:`~adaptive.report.figures` (matplotlib/ArviZ figures), :mod:`~adaptive.report.render`
(jinja2 templates -> HTML, WeasyPrint -> PDF, atomic files).
"""

from adaptive.report.render import CLOSED_SECTIONS, FILES, OPEN_SECTIONS, Memo, build_memo, memo_paths

__all__ = ["build_memo", "memo_paths", "Memo", "FILES", "CLOSED_SECTIONS", "OPEN_SECTIONS"]
