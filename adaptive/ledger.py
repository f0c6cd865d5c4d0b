"""The look ledger: a SQLite file that records every interim look of a trial.

One row per look: when it was recorded (UTC), the cutoff, the data and config hashes (and file
names), the seed, the package versions, the diagnostics, the recommendations, a per-arm summary
(probabilities, allocation, status, action) for ``adaptive history``, what changed in the data
since the previous look, the output folder with the SHA-256 of its ``recommendations.json``, and a
compressed per-patient snapshot of the export (so the next look can diff against it).

Safety (see README, "Look ledger"):

* **One writer at a time.** ``adaptive interim`` holds an exclusive ``flock`` on ``<ledger>.lock``
  for the whole look (identity check, fit, write). A second process waits for it (``--wait``
  seconds) and then proceeds (typically finding the look already made: idempotent) or refuses with
  exit code 4, naming the holder. The kernel drops the lock when its holder dies, even by
  ``kill -9``, so a crashed run never blocks the ledger. Readers (``adaptive history``) need no
  lock: SQLite gives them a consistent view.
* **Atomic records.** Every change is one SQLite transaction (``BEGIN IMMEDIATE``): a killed
  process leaves the previous state intact, never a half-written row.
* **No look without its folder, no folder without its look.** A look is first inserted as
  ``pending`` (committed), then its temporary folder is renamed to ``--out``, then it is marked
  ``recorded``. The next writer (under the lock) resolves any ``pending`` row left by a crash:
  recorded if the folder exists with the expected ``recommendations.json`` hash, deleted
  otherwise. ``history`` and the identity check only see recorded looks. A run killed mid-fit
  has written nothing at all.
* **Earlier looks are never touched**: rows are only inserted, and a pending row is only ever
  completed or removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from adaptive.exceptions import LedgerBusyError, LedgerError
from adaptive.output import remove_stale_tmp

SCHEMA_VERSION = "1"
DEFAULT_NAME = "ledger.sqlite"

_DDL = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS looks (
        look INTEGER PRIMARY KEY,
        state TEXT NOT NULL CHECK (state IN ('pending', 'recorded')),
        recorded_at TEXT NOT NULL,
        cutoff TEXT NOT NULL,
        status TEXT NOT NULL,
        forced INTEGER NOT NULL,
        seed INTEGER NOT NULL,
        data_file TEXT,
        data_sha256 TEXT NOT NULL,
        config_file TEXT,
        config_sha256 TEXT NOT NULL,
        out_dir TEXT NOT NULL,
        report_sha256 TEXT NOT NULL,
        versions TEXT NOT NULL,
        diagnostics TEXT NOT NULL,
        recommendations TEXT NOT NULL,
        summary TEXT NOT NULL,
        data_changes TEXT,
        snapshot BLOB NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS looks_inputs ON looks (data_sha256, config_sha256, cutoff)",
)

_JSON_FIELDS = ("versions", "diagnostics", "recommendations", "summary", "data_changes")


@dataclass(frozen=True)
class LookRecord:
    """One row of the ledger (JSON columns decoded)."""

    look: int
    state: str
    recorded_at: str
    cutoff: str
    status: str
    forced: bool
    seed: int
    data_file: str | None
    data_sha256: str
    config_file: str | None
    config_sha256: str
    out_dir: str
    report_sha256: str
    versions: dict
    diagnostics: dict
    recommendations: list
    summary: dict
    data_changes: dict | None
    snapshot: bytes = b""

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> LookRecord:
        d = dict(row)
        for f in _JSON_FIELDS:
            d[f] = None if d[f] is None else json.loads(d[f])
        d["forced"] = bool(d["forced"])
        return cls(**d)

    def describe(self) -> str:
        return (
            f"look {self.look} (cutoff {self.cutoff}, recorded {self.recorded_at}, seed {self.seed}, "
            f"status {self.status}) in {self.out_dir}"
        )


def default_path(out: Path) -> Path:
    """The default ledger: ``ledger.sqlite`` in the folder that holds the look folders."""
    return Path(out).resolve().parent / DEFAULT_NAME


def _connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0, isolation_level=None)
    else:
        conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
    conn.row_factory = sqlite3.Row
    return conn


def _not_a_ledger(path: Path, exc: Exception) -> LedgerError:
    return LedgerError(
        f"{path} is not a readable look ledger ({exc}). Point --ledger at the ledger.sqlite of this "
        "trial, or at a new file name to start a new ledger."
    )


class Ledger:
    """An open ledger, held exclusively by this process (use :meth:`open`)."""

    def __init__(self, path: Path, conn: sqlite3.Connection):
        self.path = path
        self.conn = conn

    # ------------------------------------------------------------------ opening
    @classmethod
    @contextlib.contextmanager
    def open(cls, path: str | Path, *, wait: float = 900.0) -> Iterator[Ledger]:
        """Lock the ledger for writing (waiting up to ``wait`` seconds), create it if needed."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = path.with_name(path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + max(wait, 0.0)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        holder = os.pread(fd, 400, 0).decode(errors="replace").strip() or "unknown"
                        raise LedgerBusyError(
                            f"the ledger {path} is locked by another adaptive interim ({holder}); it "
                            f"was still running after waiting {wait:g} s. Wait for it to finish (the "
                            "lock is released when it ends, even if it crashes), or rerun with a "
                            "longer --wait."
                        ) from None
                    time.sleep(0.1)
            os.ftruncate(fd, 0)
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {stamp}\n".encode(), 0)
            conn = _connect(path)
            try:
                ledger = cls(path, conn)
                ledger._init_schema()
                yield ledger
            finally:
                conn.close()
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing the descriptor releases the flock

    def _init_schema(self) -> None:
        try:
            with self.transaction():
                for stmt in _DDL:
                    self.conn.execute(stmt)
                row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
                if row is None:
                    self.conn.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
                elif row["value"] != SCHEMA_VERSION:
                    raise LedgerError(
                        f"{self.path} is a ledger of schema {row['value']}; this version reads schema "
                        f"{SCHEMA_VERSION}. Use the engine version that wrote it, or a new ledger file."
                    )
        except sqlite3.DatabaseError as exc:
            raise _not_a_ledger(self.path, exc) from None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any error)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # ------------------------------------------------------------------ queries
    def looks(self, *, include_pending: bool = False) -> list[LookRecord]:
        where = "" if include_pending else "WHERE state = 'recorded'"
        rows = self.conn.execute(f"SELECT * FROM looks {where} ORDER BY look").fetchall()  # noqa: S608
        return [LookRecord.from_row(r) for r in rows]

    def same_inputs(self, data_sha256: str, config_sha256: str, cutoff: str) -> list[LookRecord]:
        """Recorded looks on the same data file, config file and cutoff."""
        rows = self.conn.execute(
            "SELECT * FROM looks WHERE state = 'recorded' AND data_sha256 = ? AND config_sha256 = ? "
            "AND cutoff = ? ORDER BY look",
            (data_sha256, config_sha256, cutoff),
        ).fetchall()
        return [LookRecord.from_row(r) for r in rows]

    def latest(self, *, status: str | None = None) -> LookRecord | None:
        """The most recent recorded look (optionally with this status)."""
        sql = "SELECT * FROM looks WHERE state = 'recorded'"
        args: tuple = ()
        if status is not None:
            sql += " AND status = ?"
            args = (status,)
        row = self.conn.execute(sql + " ORDER BY look DESC LIMIT 1", args).fetchone()
        return None if row is None else LookRecord.from_row(row)

    def next_look(self) -> int:
        row = self.conn.execute("SELECT COALESCE(MAX(look), 0) AS m FROM looks").fetchone()
        return int(row["m"]) + 1

    # ------------------------------------------------------------------ writing
    def recover(self) -> list[str]:
        """Resolve pending rows left by a crashed writer (see the module docstring)."""
        notes = []
        for rec in self.looks(include_pending=True):
            if rec.state != "pending":
                continue
            remove_stale_tmp(Path(rec.out_dir))
            report = Path(rec.out_dir) / "recommendations.json"
            ok = report.is_file() and hashlib.sha256(report.read_bytes()).hexdigest() == rec.report_sha256
            with self.transaction():
                if ok:
                    self.conn.execute("UPDATE looks SET state = 'recorded' WHERE look = ?", (rec.look,))
                    notes.append(f"look {rec.look} was interrupted after its folder was written; recorded.")
                else:
                    self.conn.execute("DELETE FROM looks WHERE look = ? AND state = 'pending'", (rec.look,))
                    notes.append(f"look {rec.look} was interrupted before its folder was written; discarded.")
        return notes

    def insert_pending(self, record: LookRecord) -> None:
        """Insert a look as ``pending`` (its folder is not in place yet)."""
        cols = [f for f in LookRecord.__dataclass_fields__]
        values = []
        for f in cols:
            v = getattr(record, f)
            if f == "state":
                v = "pending"
            elif f in _JSON_FIELDS:
                v = None if v is None else json.dumps(v, sort_keys=False)
            elif f == "forced":
                v = int(v)
            values.append(v)
        with self.transaction():
            self.conn.execute(
                f"INSERT INTO looks ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",  # noqa: S608
                values,
            )

    def mark_recorded(self, look: int) -> None:
        with self.transaction():
            self.conn.execute(
                "UPDATE looks SET state = 'recorded' WHERE look = ? AND state = 'pending'", (look,)
            )

    def discard_pending(self, look: int) -> None:
        with self.transaction():
            self.conn.execute("DELETE FROM looks WHERE look = ? AND state = 'pending'", (look,))


def read_looks(path: str | Path) -> list[LookRecord]:
    """Recorded looks of a ledger, read-only and without waiting for a writer's lock."""
    path = Path(path)
    if not path.is_file():
        raise LedgerError(
            f"no ledger at {path}. A ledger is created by the first `adaptive interim` (by default "
            f"{DEFAULT_NAME} in the folder that holds the look folders); pass --ledger FILE."
        )
    try:
        conn = _connect(path, readonly=True)
        try:
            meta = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if meta is None or meta["value"] != SCHEMA_VERSION:
                raise LedgerError(f"{path} is not a look ledger of schema {SCHEMA_VERSION}.")
            rows = conn.execute("SELECT * FROM looks WHERE state = 'recorded' ORDER BY look").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise _not_a_ledger(path, exc) from None
    return [LookRecord.from_row(r) for r in rows]


# ============================================================================= summaries
def look_summary(report: dict) -> dict:
    """Per-arm state of a look for ``adaptive history``: status, counts, probabilities, allocation."""
    alloc: dict[str, float] = {}
    prob_best: dict[str, float] = {}
    for block in (report.get("allocation") or {}).values():
        alloc.update(block.get("probabilities", {}))
        prob_best.update((block.get("inputs") or {}).get("prob_best") or {})
    actions: dict[str, list[str]] = {}
    for r in report.get("recommendations") or []:
        for a in [r.get("arm")] if r.get("arm") else r.get("arms", []):
            actions.setdefault(a, []).append(r["action"])
    arms = {}
    for a in report.get("arms", []):
        crc = a.get("endpoints", {}).get("crc", {})
        arms[a["arm"]] = {
            "label": a.get("label"),
            "status": a.get("status"),
            "n_enrolled": a.get("n_enrolled"),
            "crc_evaluable": crc.get("n_evaluable"),
            "crc_responders": crc.get("responders"),
            "prob_above_null": crc.get("prob_above_null"),
            "prob_above_target": crc.get("prob_above_target"),
            "prob_best": prob_best.get(a["arm"]),
            "allocation": alloc.get(a["arm"]),
            "actions": actions.get(a["arm"], []),
        }
    return {"arms": arms}


def history(path: str | Path) -> dict:
    """Everything ``adaptive history --json`` prints: the looks and, per arm, their trajectory."""
    looks = read_looks(path)
    out_looks = []
    arms: dict[str, list[dict]] = {}
    for rec in looks:
        changes = rec.data_changes or {}
        out_looks.append(
            {
                "look": rec.look,
                "recorded_at": rec.recorded_at,
                "cutoff": rec.cutoff,
                "status": rec.status,
                "forced": rec.forced,
                "seed": rec.seed,
                "data_file": rec.data_file,
                "data_sha256": rec.data_sha256,
                "config_file": rec.config_file,
                "config_sha256": rec.config_sha256,
                "out_dir": rec.out_dir,
                "report_sha256": rec.report_sha256,
                "versions": rec.versions,
                "diagnostics": {k: v for k, v in rec.diagnostics.items() if k != "by_endpoint"},
                "recommendations": [
                    {
                        "action": r["action"],
                        "arm": r.get("arm"),
                        "arms": r.get("arms"),
                        "sentence": r["sentence"],
                    }
                    for r in rec.recommendations
                ],
                "data_changes": None
                if not changes
                else {
                    k: changes.get(k)
                    for k in ("previous_look", "n_new_patients", "n_routine", "n_cleaning", "sentence")
                },
            }
        )
        for arm, s in rec.summary.get("arms", {}).items():
            arms.setdefault(arm, []).append({"look": rec.look, "cutoff": rec.cutoff, **s})
    return {"ledger": str(Path(path)), "looks": out_looks, "arms": arms}
