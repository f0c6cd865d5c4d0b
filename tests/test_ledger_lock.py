"""The ledger's lock (filelock + holder information), looks in cutoff order, folders colleagues can
open (umask), paths relative to the ledger, and imports without Unix-only modules (issues 16.10, 17).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from adaptive.cli import main
from adaptive.exceptions import LedgerBusyError
from adaptive.ledger import Ledger, LockHolder, history, holder_path, lock_path, read_looks
from adaptive.output import atomic_dir
from tests.conftest import EXAMPLE, ROOT

CUTOFF = "2026-10-31"
POSIX = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def interim(cfg, cutoff, out, *extra):
    return run("interim", "--config", cfg, "--data", EXAMPLE, "--cutoff", cutoff, "--out", out, *extra)


def rows(ledger: Path) -> list[tuple]:
    with sqlite3.connect(ledger) as conn:
        return conn.execute("SELECT look, state, cutoff, out_dir FROM looks ORDER BY look").fetchall()


# ----------------------------------------------------------------------------- the lock
HOLDER = """
import sys
from adaptive.ledger import Ledger
with Ledger.open(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()
"""


def _hold(ledger: Path) -> subprocess.Popen:
    """Another process that holds the ledger until its stdin closes."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(ledger)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_waiter_names_the_holder_and_leaves_its_information_intact(tmp_path):
    ledger = tmp_path / "ledger.sqlite"
    proc = _hold(ledger)
    try:
        info = holder_path(ledger)
        before = info.read_bytes()
        holder = LockHolder.read(info)
        assert holder.pid == proc.pid and holder.host == socket.gethostname()
        assert "-c" in holder.command and holder.started.endswith("Z")
        for _ in range(2):  # the second waiter still gets the holder: the first did not truncate it
            with pytest.raises(
                LedgerBusyError, match=rf"locked by another adaptive interim \(pid {proc.pid} on "
            ):
                with Ledger.open(ledger, wait=0.2):
                    pass
            assert info.read_bytes() == before
        assert lock_path(ledger).is_file()
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    assert proc.returncode == 0
    assert not holder_path(ledger).exists()  # the holder removed it on release
    with Ledger.open(ledger, wait=0) as book:  # free again at once
        assert book.stale_holder is None and LockHolder.read(holder_path(ledger)).pid == os.getpid()
    assert not holder_path(ledger).exists()


def test_a_stale_holder_is_named_as_stale(tmp_path):
    ledger = tmp_path / "ledger.sqlite"
    proc = _hold(ledger)
    try:
        # the information names a process that no longer runs (e.g. the lock passed to a child)
        dead = LockHolder(
            _dead_pid(), socket.gethostname(), "someone", "2026-01-01T00:00:00Z", "adaptive interim"
        )
        dead.write(holder_path(ledger))
        with pytest.raises(LedgerBusyError, match=rf"stale holder \(pid {dead.pid} on ") as exc:
            with Ledger.open(ledger, wait=0.1):
                pass
        assert "no longer runs on this host" in str(exc.value) and "ledger.sqlite.lock.info" in str(exc.value)
        assert LockHolder.read(holder_path(ledger)) == dead
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)


def test_stale_holder_checks():
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    host = socket.gethostname()
    assert not LockHolder(os.getpid(), host, "u", now, "x").is_stale()
    assert LockHolder(_dead_pid(), host, "u", now, "x").is_stale()
    # this pid, but the holder started long before this process: the pid was reused
    assert LockHolder(os.getpid(), host, "u", "2001-01-01T00:00:00Z", "x").is_stale()
    # another machine's processes are not judged from here
    assert not LockHolder(_dead_pid(), host + "-elsewhere", "u", now, "x").is_stale()
    assert LockHolder.read(Path("/nonexistent/ledger.sqlite.lock.info")) is None


def test_a_holder_killed_with_the_lock_is_reported_and_does_not_block(tmp_path):
    ledger = tmp_path / "ledger.sqlite"
    proc = _hold(ledger)
    proc.kill()  # SIGKILL / TerminateProcess: no release, the information stays behind
    proc.wait(timeout=60)
    assert LockHolder.read(holder_path(ledger)).pid == proc.pid
    with Ledger.open(ledger, wait=0) as book:
        assert book.stale_holder.pid == proc.pid
        notes = book.recover()
    assert f"pid {proc.pid} on" in notes[0] and "ended without releasing it" in notes[0]
    assert not holder_path(ledger).exists()


def test_the_lock_works_without_fcntl_and_nothing_imports_unix_only_io(tmp_path):
    # Windows has no fcntl: the interim, memo and history code must import without it (the lock
    # then uses filelock's portable fallback)
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["fcntl"] = None  # import fcntl raises ImportError, as on Windows
        import adaptive.cli, adaptive.interim, adaptive.ledger, adaptive.fitpool, adaptive.report.data
        from adaptive.ledger import Ledger, holder_path
        with Ledger.open({str(tmp_path / "ledger.sqlite")!r}, wait=0) as book:
            assert holder_path(book.path).is_file() and book.looks() == []
        assert "fcntl" not in [m for m in sys.modules if sys.modules[m] is not None]
        print("ok")
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-3000:]
    pattern = ("fc" + "ntl", "os.p" + "read", "os.p" + "write")  # not spelled out: this file is searched too
    hits = [
        f"{p}: {word}"
        for p in sorted((ROOT / "adaptive").rglob("*.py"))
        for word in pattern
        if word in p.read_text(encoding="utf-8")
    ]
    assert hits == []


# ----------------------------------------------------------------------------- umask
@POSIX
@pytest.mark.parametrize(("umask", "folder", "file"), [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600)])
def test_output_folders_respect_the_umask(tmp_path, umask, folder, file):
    old = os.umask(umask)
    try:
        with atomic_dir(tmp_path / "out") as tmp:
            (tmp / "a.json").write_text("{}")
            (tmp / "sub").mkdir()
    finally:
        os.umask(old)
    out = tmp_path / "out"
    assert out.stat().st_mode & 0o777 == folder
    assert (out / "sub").stat().st_mode & 0o777 == folder
    assert (out / "a.json").stat().st_mode & 0o777 == file


# ----------------------------------------------------------------------------- an interim look
def test_a_look_is_readable_by_colleagues_and_its_study_folder_can_be_moved(fast_config, tmp_path):
    study = tmp_path / "study"
    old = os.umask(0o022)
    try:
        res = interim(fast_config, CUTOFF, study / "looks" / "l1")
    finally:
        os.umask(old)
    assert res.exit_code == 0, res.output
    look, ledger = study / "looks" / "l1", study / "looks" / "ledger.sqlite"
    if sys.platform != "win32":
        assert look.stat().st_mode & 0o777 == 0o755
        assert {p.name: p.stat().st_mode & 0o777 for p in look.iterdir()} == {
            "recommendations.json": 0o644,
            "posterior.nc": 0o644,
        }
    assert rows(ledger) == [(1, "recorded", CUTOFF, "l1")]  # stored relative to the ledger's folder
    assert not holder_path(ledger).exists()

    # the study folder copied elsewhere (an archive, a colleague's drive), the original gone
    moved = tmp_path / "archive" / "study"
    shutil.copytree(study, moved)
    shutil.rmtree(study)
    mledger = moved / "looks" / "ledger.sqlite"
    (rec,) = read_looks(mledger)
    assert rec.out_dir == str((moved / "looks" / "l1").resolve())
    hist = history(mledger)
    assert hist["looks"][0]["out_dir"] == "l1" and str(tmp_path) not in json.dumps(hist["looks"])
    res = interim(fast_config, CUTOFF, moved / "looks" / "l1-again")
    assert res.exit_code == 0 and "Nothing to do" in res.output, res.output
    assert "no longer exists" not in res.output and not (moved / "looks" / "l1-again").exists()

    # the memo names the ledger relative to the study folder, not by a home folder
    from adaptive.report.data import load_look, reproducibility

    rows_ = dict(reproducibility(load_look(moved / "looks" / "l1"))["rows"])
    assert rows_["Look"] == "1 (ledger ledger.sqlite)"

    # rows written by earlier versions hold absolute paths: still read as they are
    with sqlite3.connect(mledger) as conn:
        conn.execute("UPDATE looks SET out_dir = ?", (str((moved / "looks" / "l1").resolve()),))
    assert read_looks(mledger)[0].out_dir == str((moved / "looks" / "l1").resolve())
    assert history(mledger)["looks"][0]["out_dir"] == "l1"


def test_an_out_of_order_cutoff_is_refused_unless_allowed(fast_config, tmp_path):
    looks = tmp_path / "looks"
    ledger = looks / "ledger.sqlite"
    assert interim(fast_config, CUTOFF, looks / "late").exit_code == 0
    before = rows(ledger)
    res = interim(fast_config, "2026-06-30", looks / "early")
    assert res.exit_code == 2, res.output
    msg = " ".join(res.output.split())
    assert (
        "cutoff 2026-06-30 is before the cutoff 2026-10-31 of look 1" in msg and "--allow-out-of-order" in msg
    )
    assert "Traceback" not in res.output
    assert rows(ledger) == before and sorted(p.name for p in looks.iterdir()) == [
        "late",
        "ledger.sqlite",
        "ledger.sqlite.lock",
    ]

    res = interim(fast_config, "2026-06-30", looks / "early", "--allow-out-of-order")
    assert res.exit_code == 0, res.output
    assert "recorded as look 2" in res.output  # numbers follow the recording; they never change
    rep = json.loads((looks / "early" / "recommendations.json").read_text())
    # its previous look is the latest by cutoff on or before its own: none
    assert rep["look"]["previous_look"] is None and rep["data_changes"] is None
    assert rep["look"]["out_of_order"] == {"later_looks": [1]}
    hist = history(ledger)
    assert [(lk["look"], lk["cutoff"], lk["out_of_order"]) for lk in hist["looks"]] == [
        (2, "2026-06-30", True),
        (1, CUTOFF, False),
    ]
    assert [r["look"] for r in hist["arms"]["arm4"]] == [2, 1]
    res = run("history", "--ledger", ledger)
    assert res.exit_code == 0 and "(out of order)" in res.output

    # a look between the two takes the earlier-cutoff look as its previous one
    res = interim(fast_config, "2026-08-31", looks / "mid", "--allow-out-of-order")
    assert res.exit_code == 0, res.output
    rep = json.loads((looks / "mid" / "recommendations.json").read_text())
    assert rep["look"]["number"] == 3 and rep["look"]["previous_look"]["number"] == 2
    assert rep["look"]["previous_look"]["cutoff"] == "2026-06-30"
    assert rep["data_changes"]["previous_look"] == 2
    early = json.loads((looks / "early" / "recommendations.json").read_text())
    assert (
        rep["allocation"]["fit_no_target"]["previous"]
        == early["allocation"]["fit_no_target"]["probabilities"]
    )
