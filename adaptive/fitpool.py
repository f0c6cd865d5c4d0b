"""Long-lived worker processes that fit models, kept for every look of one process.

Compiling a model structure (nutpie's Numba build of the log-density and its gradient) costs
5-8 s, sampling it a few seconds. The fitting workers therefore outlive a look: each keeps its
compiled models (:mod:`models.sampling`'s per-process cache) and a further look in the same
process (a scheduler, a notebook, ``adaptive calibrate``-style loops) only samples.

Workers are fresh interpreters (``python -P -c``, with the engine's own folder first on
``sys.path``, never the working folder) rather than ``multiprocessing`` children, so
nothing of the caller's ``__main__`` is re-imported and scripts and notebooks need no
``if __name__ == "__main__"`` guard. Jobs and results travel as length-prefixed pickles over the
worker's stdin and a private copy of its stdout; whatever a library prints goes to the worker's
stderr, which is kept in a temporary file and quoted when a worker fails.

Why not a maintained executor (issue 17; ``benchmarks/bench_fitpool.py``, figures in
``benchmarks/README.md``): a look pays the workers' start-up, and further looks in one process
(a notebook, ``adaptive batch``) depend on a job reaching the worker that compiled its model. On
the bundled look with borrowing (two MCMC model classes), this pool took 11.9 s for start-up and
the first look and 2.6 s for a second; a Dask ``LocalCluster`` with each group pinned to a worker
13.5 s and 2.7 s (the cluster's start); ``concurrent.futures.ProcessPoolExecutor`` (no affinity,
as loky's reusable executor) 12.2 s and 8.0 s (the second look recompiles). With at most one MCMC
class (the bundled design) :func:`adaptive.interim.fit_endpoints` fits in-process instead (9.9 s
against 11.8 s here).

Life cycle: a worker exits when its stdin closes (the pool is closed, or the parent exits) and is
killed by the kernel when the parent dies (Linux ``PR_SET_PDEATHSIG``), so a killed look leaves
no orphan fitting on. ``PR_SET_PDEATHSIG`` follows the parent *thread*: workers started by a
thread that has since ended are gone, and are started again. A worker found dead is replaced; a
worker that dies or is interrupted during a job is discarded, never reused with a half-read result
in its pipe.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from adaptive.exceptions import FitWorkerError

_HEADER = struct.Struct("<Q")
_STDERR_TAIL = 4000


# ----------------------------------------------------------------------------- wire format
def _pickle(obj: object) -> bytes:
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def _send(stream: IO[bytes], payload: bytes) -> None:
    stream.write(_HEADER.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def _read_exact(stream: IO[bytes], n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _receive_bytes(stream: IO[bytes]) -> bytes:
    """The next message, still pickled; ``EOFError`` when the other side is gone."""
    head = _read_exact(stream, _HEADER.size)
    if head is None:
        raise EOFError
    (size,) = _HEADER.unpack(head)
    payload = _read_exact(stream, size)
    if payload is None:
        raise EOFError
    return payload


def _receive(stream: IO[bytes]) -> object:
    return pickle.loads(_receive_bytes(stream))


# ----------------------------------------------------------------------------- worker side
def _worker_main(parent: int) -> None:
    """Entry point of a worker: answer ``(fn, args)`` jobs until stdin closes."""
    try:  # Linux: die with the parent process
        import ctypes

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before the line above took effect
        return
    # Ctrl-C in a terminal reaches the whole process group: the parent decides (it discards the
    # workers whose jobs it abandons), so an idle worker survives for the next look
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # the protocol gets its own copy of stdout; fd 1 then points at stderr, so stray prints of
    # the libraries (or of a job) cannot corrupt a message
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    inp = sys.stdin.buffer
    while True:
        try:
            payload = _receive_bytes(inp)
        except EOFError:
            return
        try:
            fn, args = pickle.loads(payload)
            reply = ("ok", fn(*args))
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
            reply = ("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        try:
            payload = _pickle(reply)
        except Exception as exc:  # noqa: BLE001
            payload = _pickle(("error", f"the result could not be pickled: {exc}"))
        _send(out, payload)


def worker_status() -> dict[str, Any]:
    """A job that reports the worker's pid and the keys of the models it has compiled."""
    from models.sampling import compiled_keys

    return {"pid": os.getpid(), "compiled": sorted(map(repr, compiled_keys()))}


# ----------------------------------------------------------------------------- parent side
#: the folder that holds the engine's packages (``adaptive``, ``models``, ``decision_rules``), as
#: this process imported them (a source checkout, an editable install or site-packages)
_ENGINE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _worker_command(parent: int) -> list[str]:
    """The worker's command line.

    ``python -c`` would put the working folder first on ``sys.path``, so a user's own ``models/``
    or ``adaptive/`` folder there would be imported instead of the engine's. ``-P`` (Python 3.11+)
    leaves it out, and the engine's own root goes first, so the worker imports the very packages
    the parent runs.
    """
    code = (
        f"import sys; sys.path.insert(0, {_ENGINE_ROOT!r}); "
        f"import adaptive.fitpool as m; m._worker_main({parent})"
    )
    return [sys.executable, "-P", "-c", code]


@dataclass
class _Worker:
    proc: subprocess.Popen
    stderr: IO[bytes]
    kinds: set[str] = field(default_factory=set)  # labels of the jobs it ran (for affinity)

    @classmethod
    def start(cls) -> _Worker:
        # append mode: the worker's writes land at the end whatever the parent reads
        err = tempfile.TemporaryFile(mode="a+b", prefix="adaptive-fit-worker-")
        proc = subprocess.Popen(
            _worker_command(os.getpid()),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            close_fds=True,
        )
        return cls(proc, err)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr_size(self) -> int:
        return os.fstat(self.stderr.fileno()).st_size

    def stderr_since(self, pos: int) -> str:
        """The tail of what the worker wrote to stderr after byte ``pos``."""
        size = self.stderr_size()
        start = max(pos, size - _STDERR_TAIL)
        # a plain seek and read (portable): the worker appends (O_APPEND), so moving this
        # handle's position never moves where the worker writes
        self.stderr.seek(start)
        return self.stderr.read(size - start).decode(errors="replace")

    def stop(self, timeout: float = 0.0) -> int:
        """Close the worker's stdin (it exits after its job), wait ``timeout`` s, then kill it.

        Returns its exit status. Its stderr file stays readable until :meth:`release`.
        """
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def release(self) -> None:
        """Close the parent's ends of a stopped worker's pipes and its stderr file."""
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.stderr.close()


class FitPool:
    """A set of long-lived worker processes; :meth:`map` runs one job on each of them at once."""

    def __init__(self) -> None:
        self._workers: list[_Worker] = []
        self._fingerprint: tuple | None = None
        self._lock = threading.Lock()

    @staticmethod
    def _environment() -> tuple:
        """What a worker inherits at start: a change means the workers must be restarted."""
        env = tuple(sorted((k, v) for k, v in os.environ.items() if not k.startswith("PYTEST_")))
        return (sys.executable, env)

    def _ready(self, n: int) -> list[_Worker]:
        fingerprint = self._environment()
        if fingerprint != self._fingerprint:
            self._close_all()
            self._fingerprint = fingerprint
        for w in [w for w in self._workers if not w.alive]:
            self._discard(w)
        while len(self._workers) < n:
            self._workers.append(_Worker.start())
        return self._workers

    @staticmethod
    def _assign(workers: list[_Worker], labels: Sequence[frozenset[str]]) -> list[_Worker]:
        """One distinct worker per job, preferring the worker that already ran jobs of its labels."""
        order = sorted(range(len(labels)), key=lambda i: -len(labels[i]))
        free = list(workers)
        chosen: dict[int, _Worker] = {}
        for i in order:
            best = max(free, key=lambda w: len(w.kinds & labels[i]))
            chosen[i] = best
            free.remove(best)
        return [chosen[i] for i in range(len(labels))]

    def map(
        self,
        fn: Callable,
        jobs: Sequence[tuple],
        *,
        labels: Sequence[frozenset[str]] | None = None,
    ) -> list[Any]:
        """``[fn(*job) for job in jobs]``, each job in its own worker, all at once.

        ``fn`` must be importable by name (a module-level function). ``labels`` say what each job
        compiles (model classes, say); a job goes to a worker that ran the same labels before, so
        its compiled models are reused. Raises :class:`FitWorkerError` when a job raises or a worker
        dies; the other jobs still finish, and the pool stays usable.
        """
        if not jobs:
            return []
        labels = list(labels) if labels is not None else [frozenset()] * len(jobs)
        payloads = [_pickle((fn, tuple(job))) for job in jobs]  # fails here, before any worker is busy
        with self._lock:
            workers = self._assign(self._ready(len(jobs)), labels)
            marks = [w.stderr_size() for w in workers]
            pending = set(range(len(jobs)))
            failures: list[str] = []
            results: list[Any] = [None] * len(jobs)
            try:
                for i, (w, payload) in enumerate(zip(workers, payloads, strict=True)):
                    try:
                        _send(w.proc.stdin, payload)
                    except OSError:  # a broken pipe: the worker is gone
                        pending.discard(i)
                        failures.append(self._died(w, marks[i]))
                for i in sorted(pending):
                    w = workers[i]
                    try:
                        status, value = _receive(w.proc.stdout)
                    except EOFError:
                        failures.append(self._died(w, marks[i]))
                    else:
                        if status == "ok":
                            results[i] = value
                            w.kinds |= labels[i]
                        else:
                            failures.append(f"a model-fitting worker raised {value}")
                    pending.discard(i)
            finally:
                # interrupted (KeyboardInterrupt, say) with answers still owed: those workers
                # would hand a stale result to the next look, so they go
                for i in pending:
                    self._discard(workers[i])
        if failures:
            raise FitWorkerError("\n".join(failures))
        return results

    def _died(self, w: _Worker, mark: int) -> str:
        code = w.stop(timeout=10)  # its pipe is closed: it is exiting, or stuck on the way out
        err = w.stderr_since(mark)
        self._discard(w)
        return f"a model-fitting worker died (exit status {code}); its last output:\n{err}"

    def _discard(self, w: _Worker) -> None:
        w.stop()
        w.release()
        if w in self._workers:
            self._workers.remove(w)

    def pids(self) -> list[int]:
        """Process ids of the live workers (for tests and diagnostics)."""
        return [w.proc.pid for w in self._workers if w.alive]

    def _close_all(self) -> None:
        for w in self._workers:  # all asked first (EOF on stdin): they wind down at once
            with contextlib.suppress(OSError):
                w.proc.stdin.close()
        for w in self._workers:
            w.stop(timeout=5.0)
            w.release()
        self._workers = []

    def close(self) -> None:
        """Stop every worker (they are started again on the next :meth:`map`)."""
        with self._lock:
            self._close_all()


_POOL: FitPool | None = None
_POOL_LOCK = threading.Lock()


def shared_pool() -> FitPool:
    """The process's pool (created on first use, closed at interpreter exit)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = FitPool()
            atexit.register(_POOL.close)
        return _POOL
