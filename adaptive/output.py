"""Writing outputs safely: canonical JSON, atomic output folders, provenance."""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import platform
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import psutil

from adaptive.exceptions import OutputExistsError, OutputNotWritableError

_PACKAGES = (
    "rr-aml-adaptive",
    "numpy",
    "scipy",
    "pandas",
    "xarray",
    "pymc",
    "pytensor",
    "nutpie",
    "numba",
    "arviz",
    "pydantic",
    "statsmodels",
)

#: the key of :func:`versions` that names the engine's source revision
SOURCE_KEY = "rr-aml-adaptive source"


def versions() -> dict[str, str]:
    """Versions of Python and of every package that can change a number in the output.

    The engine's own version number does not change between releases, so its source revision is
    recorded beside it (:func:`source_revision`): the git commit it runs from.
    """
    out = {"python": platform.python_version()}
    for pkg in _PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
        if pkg == "rr-aml-adaptive":
            out[SOURCE_KEY] = source_revision()
    return out


@functools.lru_cache(maxsize=1)
def source_revision() -> str:
    """The git commit the engine runs from, ``"<sha> with uncommitted changes"`` if its tracked files differ.

    ``"not a git checkout"`` for an installed release (its version number then says it all), and
    ``"unknown (...)"`` when git cannot be run. Computed once per process.
    """
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return "not a git checkout"
    try:
        run = functools.partial(
            subprocess.run, capture_output=True, text=True, timeout=20, check=True, cwd=root
        )
        head = run(["git", "rev-parse", "HEAD"]).stdout.strip()
        changed = run(["git", "status", "--porcelain", "--untracked-files=no"]).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unknown ({type(exc).__name__})"
    return f"{head} with uncommitted changes" if changed else head


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


def current_umask() -> int:
    """The process's file mode creation mask (read by setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def folder_mode() -> int:
    """The mode of a new folder under the current umask (``0o755`` under umask 022)."""
    return 0o777 & ~current_umask()


@contextlib.contextmanager
def atomic_dir(out: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success rename it to ``out``, on failure delete it.

    The rename is atomic on one file system, so readers see either no folder or a complete one.
    ``tempfile.mkdtemp`` creates the folder private (0700); the finished folder gets the mode
    the umask gives a new folder (0755 under umask 022, so colleagues on a shared drive can open
    it; 0700 under umask 077) before the rename.
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
        os.chmod(tmp, folder_mode())
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_writable(folder: str | Path, what: str) -> None:
    """Refuse, before any work, a folder that cannot be created or written.

    ``folder`` need not exist: the nearest existing folder above it must be a writable folder
    (the missing ones are created later). ``what`` names the folder in the message ("--out").
    """
    folder = Path(folder).absolute()
    p = folder
    while not p.exists() and p != p.parent:
        p = p.parent
    if not p.is_dir():
        raise OutputNotWritableError(
            f"cannot write {what} {folder}: {p} is not a folder. Choose a path under a folder."
        )
    if not os.access(p, os.W_OK | os.X_OK):
        raise OutputNotWritableError(
            f"cannot write {what} {folder}: the folder {p} is not writable by this user. "
            "Choose a writable location (nothing was fitted)."
        )


#: a temporary folder of :func:`atomic_dir`: ``.<name>.tmp-<pid>-<8 random characters>``
_TMP_DIR = re.compile(r"\.(?P<name>.+)\.tmp-(?P<pid>\d+)-[a-z0-9_]{8}")


def _pid_gone(pid: int) -> bool:
    """Whether no process ``pid`` runs on this machine.

    psutil works on Windows too, where ``os.kill(pid, 0)`` would send a Ctrl-C instead of probing.
    """
    return not psutil.pid_exists(pid)


def remove_stale_tmp_in(folder: str | Path) -> list[Path]:
    """Delete the temporary folders of every look in ``folder`` left by killed processes.

    Like :func:`remove_stale_tmp` but for any output name (``.<any>.tmp-<pid>-<random>``) whose
    process no longer runs. Returns the folders removed.
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for p in folder.glob(".*.tmp-*-*"):
        m = _TMP_DIR.fullmatch(p.name)
        if m is None or not p.is_dir() or p.is_symlink():
            continue
        pid = int(m["pid"])
        if pid == os.getpid() or not _pid_gone(pid):
            continue
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


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
        if not pid_s.isdigit() or not p.is_dir() or not _pid_gone(int(pid_s)):
            continue  # still running (or not ours to judge)
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


def write_text_atomic(path: Path, text: str) -> None:
    """Write a file through a temporary name and an atomic rename."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk leaves no half-written temporary file
        raise
