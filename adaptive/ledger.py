"""The look ledger: a SQLite file that records every interim look of a trial.

One row per look: when it was recorded (UTC), the cutoff, the data and config hashes (and file
names), the seed, the package versions, the diagnostics, the recommendations, a per-arm summary
(probabilities, allocation, status, action) for ``adaptive history``, what changed in the data
since the previous look, the output folder with the SHA-256 of its ``recommendations.json``, and a
compressed per-patient snapshot of the export (so the next look can diff against it).

Safety (see README, "Look ledger"):

* **One writer at a time.** ``adaptive interim`` holds an exclusive lock on ``<ledger>.lock``
  (``filelock``: ``flock`` on Linux and macOS, ``LockFileEx`` on Windows) for the whole look
  (identity check, fit, write). The holder writes who it is (pid, host, user, start, command) to
  ``<ledger>.lock.info`` and removes it on release; waiters only read it. A second process waits
  (``--wait`` seconds) and then proceeds (typically finding the look already made: idempotent) or
  refuses with exit code 4, naming the holder, or naming it as stale when its pid no longer runs on
  this host. The operating system drops the lock when its holder dies, even by ``kill -9``, so a
  crashed run never blocks the ledger. Readers (``adaptive history``) need no lock: SQLite gives
  them a consistent view.
* **Looks in cutoff order.** A look whose cutoff is before that of a recorded look is refused
  (:class:`~adaptive.exceptions.LookOrderError`) unless allowed explicitly; the previous look of a
  look (its data changes, its previous allocation) is the latest recorded look by cutoff, and
  looks are listed by cutoff (then number). Numbers are given in the order looks are recorded and
  never change.
* **Portable paths.** Output folders are stored relative to the ledger's folder, so a study
  folder (ledger and looks) copied elsewhere still finds its looks; rows written with absolute
  paths by earlier versions are read as they are.
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
import getpass
import hashlib
import json
import os
import socket
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil
from filelock import FileLock, Timeout

from adaptive import progress
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
    def from_row(cls, row: sqlite3.Row, base: Path | None = None) -> LookRecord:
        """A decoded row; a relative ``out_dir`` is resolved against ``base`` (the ledger's folder)."""
        d = dict(row)
        for f in _JSON_FIELDS:
            d[f] = None if d[f] is None else json.loads(d[f])
        d["forced"] = bool(d["forced"])
        if base is not None and not Path(d["out_dir"]).is_absolute():
            d["out_dir"] = str(base / d["out_dir"])
        return cls(**d)

    @property
    def out_of_order(self) -> bool:
        """Whether the look was allowed a cutoff before that of an already recorded look."""
        return bool(self.summary.get("out_of_order"))

    @property
    def sampler_overrides(self) -> dict:
        """The sampler settings the look overrode (``adaptive interim --draws``); none before they existed."""
        return dict(self.summary.get("sampler_overrides") or {})

    def describe(self) -> str:
        return (
            f"look {self.look} (cutoff {self.cutoff}, recorded {self.recorded_at}, seed {self.seed}, "
            f"status {self.status}) in {self.out_dir}"
        )


def default_path(out: Path) -> Path:
    """The default ledger: ``ledger.sqlite`` in the folder that holds the look folders."""
    return Path(out).resolve().parent / DEFAULT_NAME


def relative_path(path: str | Path, base: str | Path) -> str:
    """``path`` relative to the folder ``base`` (as written in outputs); absolute across drives."""
    try:
        return os.path.relpath(Path(path).resolve(), Path(base).resolve())
    except ValueError:  # Windows: another drive
        return str(Path(path).resolve())


def lock_path(path: Path) -> Path:
    """The lock file of a ledger: ``<ledger>.lock``."""
    return path.with_name(path.name + ".lock")


def holder_path(path: Path) -> Path:
    """The holder information of a ledger's lock: ``<ledger>.lock.info`` (present while held)."""
    return path.with_name(path.name + ".lock.info")


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or last held, if it died) a ledger's lock, as it wrote in ``<ledger>.lock.info``."""

    pid: int
    host: str
    user: str
    started: str  # UTC, ISO 8601
    command: str

    @classmethod
    def this_process(cls) -> LockHolder:
        try:
            user = getpass.getuser()
        except Exception:  # noqa: BLE001 - no user name in some containers
            user = "unknown"
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "python"
        return cls(
            pid=os.getpid(),
            host=socket.gethostname(),
            user=user,
            started=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            command=command[:300],
        )

    @classmethod
    def read(cls, path: Path) -> LockHolder | None:
        """The holder recorded in ``path``, or ``None`` (no file, or not readable as one)."""
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None

    def write(self, path: Path) -> None:
        """Write the file through a temporary name and an atomic rename (readers never see half)."""
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        try:
            tmp.write_text(json.dumps(asdict(self)) + "\n", encoding="utf-8")
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def is_stale(self) -> bool:
        """Whether this holder is known to be gone: on this host, its pid no longer runs (or was reused)."""
        if self.host != socket.gethostname():
            return False  # another machine's processes cannot be checked from here
        try:
            proc = psutil.Process(self.pid)
            created = proc.create_time()
        except psutil.NoSuchProcess:
            return True
        except psutil.Error:
            return False
        try:
            started = datetime.strptime(self.started, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
        except ValueError:
            return False
        # a later process got the same pid (5 s of slack: process start times are computed from
        # the boot time, which drifts from the wall clock by NTP adjustments)
        return created > started + 5.0

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, user {self.user}, since {self.started}: {self.command}"


def _busy_message(path: Path, wait: float) -> str:
    holder = LockHolder.read(holder_path(path))
    tail = (
        f"it was still running after waiting {wait:g} s. Wait for it to finish (the lock is released "
        "when it ends, even if it crashes), or rerun with a longer --wait."
    )
    if holder is None:
        return (
            f"the ledger {path} is locked by another adaptive interim (holder unknown: it has not "
            f"written {holder_path(path).name} yet); {tail}"
        )
    if holder.is_stale():
        return (
            f"the ledger {path} is locked, but its holder information names a stale holder "
            f"({holder.describe()}), which no longer runs on this host. Another process holds the "
            "lock (a process started by that holder, or a lock left on a file system without "
            f"working locks). Make sure no adaptive interim runs on this trial, then delete "
            f"{lock_path(path).name} and {holder_path(path).name} beside the ledger and rerun."
        )
    return f"the ledger {path} is locked by another adaptive interim ({holder.describe()}); {tail}"


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

    def __init__(self, path: Path, conn: sqlite3.Connection, *, stale_holder: LockHolder | None = None):
        self.path = path
        self.conn = conn
        self.base = path.resolve().parent  # output folders are stored relative to it
        self.stale_holder = stale_holder  # a holder that died holding the lock (kill -9, power loss)

    # ------------------------------------------------------------------ opening
    @classmethod
    @contextlib.contextmanager
    def open(cls, path: str | Path, *, wait: float = 900.0) -> Iterator[Ledger]:
        """Lock the ledger for writing (waiting up to ``wait`` seconds), create it if needed."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(lock_path(path), thread_local=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            holder = LockHolder.read(holder_path(path))
            progress.step(
                f"waiting up to {wait:g} s for the ledger {path.name}"
                + (f", held by {holder.describe()}" if holder else "")
            )
            try:
                lock.acquire(timeout=max(wait, 0.0), poll_interval=0.1)
            except Timeout:
                raise LedgerBusyError(_busy_message(path, wait)) from None
        info = holder_path(path)
        me = None
        try:
            stale = LockHolder.read(info)  # left behind by a holder that died holding the lock
            me = LockHolder.this_process()
            me.write(info)
            conn = _connect(path)
            try:
                ledger = cls(path, conn, stale_holder=stale)
                ledger._init_schema()
                yield ledger
            finally:
                conn.close()
        finally:
            if me is not None and LockHolder.read(info) == me:
                with contextlib.suppress(OSError):
                    info.unlink()
            lock.release()

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
        rows = self.conn.execute(f"SELECT * FROM looks {where} ORDER BY cutoff, look").fetchall()  # noqa: S608
        return [LookRecord.from_row(r, self.base) for r in rows]

    def same_inputs(self, data_sha256: str, config_sha256: str, cutoff: str) -> list[LookRecord]:
        """Recorded looks on the same data file, config file and cutoff."""
        rows = self.conn.execute(
            "SELECT * FROM looks WHERE state = 'recorded' AND data_sha256 = ? AND config_sha256 = ? "
            "AND cutoff = ? ORDER BY look",
            (data_sha256, config_sha256, cutoff),
        ).fetchall()
        return [LookRecord.from_row(r, self.base) for r in rows]

    def latest(self, *, status: str | None = None, cutoff: str | None = None) -> LookRecord | None:
        """The latest recorded look by cutoff, then number (optionally with this status).

        ``cutoff``: only looks with a cutoff on or before it (the previous look of a look).
        """
        sql = "SELECT * FROM looks WHERE state = 'recorded'"
        args: tuple = ()
        if status is not None:
            sql += " AND status = ?"
            args += (status,)
        if cutoff is not None:
            sql += " AND cutoff <= ?"
            args += (cutoff,)
        row = self.conn.execute(sql + " ORDER BY cutoff DESC, look DESC LIMIT 1", args).fetchone()
        return None if row is None else LookRecord.from_row(row, self.base)

    def later_looks(self, cutoff: str) -> list[LookRecord]:
        """Recorded looks with a cutoff after ``cutoff`` (a look at ``cutoff`` would be out of order)."""
        rows = self.conn.execute(
            "SELECT * FROM looks WHERE state = 'recorded' AND cutoff > ? ORDER BY cutoff, look", (cutoff,)
        ).fetchall()
        return [LookRecord.from_row(r, self.base) for r in rows]

    def next_look(self) -> int:
        row = self.conn.execute("SELECT COALESCE(MAX(look), 0) AS m FROM looks").fetchone()
        return int(row["m"]) + 1

    # ------------------------------------------------------------------ writing
    def recover(self) -> list[str]:
        """Resolve pending rows left by a crashed writer (see the module docstring)."""
        notes = []
        if self.stale_holder is not None:
            notes.append(
                f"the previous holder of the lock ({self.stale_holder.describe()}) ended without "
                "releasing it (killed); its pending work, if any, is resolved below."
            )
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
            elif f == "out_dir":
                v = relative_path(v, self.base)  # a copied study folder still finds its looks
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
            rows = conn.execute(
                "SELECT * FROM looks WHERE state = 'recorded' ORDER BY cutoff, look"
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise _not_a_ledger(path, exc) from None
    base = path.resolve().parent
    return [LookRecord.from_row(r, base) for r in rows]


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
    base = Path(path).resolve().parent
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
                "out_of_order": rec.out_of_order,
                "seed": rec.seed,
                "sampler_overrides": rec.sampler_overrides,
                "data_file": rec.data_file,
                "data_sha256": rec.data_sha256,
                "config_file": rec.config_file,
                "config_sha256": rec.config_sha256,
                "out_dir": relative_path(rec.out_dir, base),
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
