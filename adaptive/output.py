"""Writing outputs safely: canonical JSON, atomic output folders, provenance."""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import shutil
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

from adaptive.exceptions import OutputExistsError

_PACKAGES = (
    "rr-aml-adaptive",
    "numpy",
    "scipy",
    "pandas",
    "xarray",
    "pymc",
    "pytensor",
    "nutpie",
    "arviz",
    "pydantic",
)


def versions() -> dict[str, str]:
    """Versions of Python and of every package that can change a number in the output."""
    out = {"python": platform.python_version()}
    for pkg in _PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _round(obj, digits: int):
    if isinstance(obj, float):
        if not math.isfinite(obj):
            return None
        return round(obj, digits) + 0.0  # +0.0 turns -0.0 into 0.0
    if isinstance(obj, dict):
        return {str(k): _round(v, digits) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_round(v, digits) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _round(obj.item(), digits)
    return obj


def canonical_json(obj, digits: int = 6) -> str:
    """JSON with floats rounded to ``digits`` decimals, stable key order, trailing newline.

    Same inputs give byte-identical text; non-finite floats become ``null``.
    """
    return json.dumps(_round(obj, digits), indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def check_out_dir(out: Path) -> None:
    """Refuse to write into a folder that already holds anything (earlier looks are kept)."""
    if out.exists():
        if not out.is_dir():
            raise OutputExistsError(f"{out} exists and is not a folder; choose a new --out.")
        if any(out.iterdir()):
            raise OutputExistsError(
                f"{out} already holds results; an earlier look is never overwritten. "
                "Choose a new --out folder (one per look)."
            )


@contextlib.contextmanager
def atomic_dir(out: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success rename it to ``out``, on failure delete it.

    The rename is atomic on one file system, so readers see either no folder or a complete one.
    """
    out = Path(out)
    check_out_dir(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
    try:
        yield tmp
        check_out_dir(out)
        if out.exists():
            out.rmdir()
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_stale_tmp(out: str | Path) -> list[Path]:
    """Delete temporary folders of ``out`` left by a killed process (whose pid no longer runs).

    :func:`atomic_dir` names them ``.<out>.tmp-<pid>-<random>``; a process killed by a signal
    that cannot be caught (``kill -9``) leaves one behind. Returns the folders removed.
    """
    out = Path(out)
    removed = []
    if not out.parent.is_dir():
        return removed
    for p in out.parent.glob(f".{out.name}.tmp-*-*"):
        pid_s = p.name.removeprefix(f".{out.name}.tmp-").split("-", 1)[0]
        if not pid_s.isdigit() or not p.is_dir():
            continue
        try:
            os.kill(int(pid_s), 0)
            continue  # still running
        except ProcessLookupError:
            pass
        except PermissionError:
            continue  # someone else's live process
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


def write_text_atomic(path: Path, text: str) -> None:
    """Write a file through a temporary name and an atomic rename."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
