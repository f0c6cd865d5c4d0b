"""Running many virtual trials: chunks, threads or Dask (local or a cluster), progress, interruption.

Trials are split into chunks; each chunk runs :func:`adaptive.simulate.engine.simulate_chunk`.
Every trial draws its randomness from its own stream, seeded from ``(seed, trial)``
(:mod:`adaptive.simulate.rng`), so the results do not depend on the chunk size, on the number of
workers or threads, or on the order in which chunks finish.

* in this process (``workers=1``, a single chunk, or ``threads > 1``): chunks of the engine's pass
  (:data:`~adaptive.simulate.engine.PASS_TRIALS` trials, smaller where that would leave a thread
  without work) run one after the other or, with ``threads > 1``, on a pool of threads. The
  compiled kernels release the GIL (``nogil=True``) and numpy does for its array work, so threads
  use several cores without starting processes; ``adaptive simulate`` runs a short study this way
  on every core (:func:`pilot` decides; :func:`local_threads`: one thread per core, at most
  :data:`LOCAL_THREADS`). What the threads share is safe to share: the spec is read only, except
  for memos that map a key to the same numbers whoever computes them (two-arm P(best) rows, the
  queue's openings, tables built on first use), and every trial's random stream is its own.
* default for long studies: a Dask ``LocalCluster`` with one single-threaded worker process per
  core, tasks of :data:`TASK_TRIALS` trials.
* ``scheduler="tcp://host:8786"``: an existing Dask distributed cluster.

Workers rebuild the compiled design from the config and scenario texts (cheap) and load the
quadrature tables of hierarchical endpoints from a shared disk cache (built once, in the parent,
before any chunk is sent). Ctrl-C cancels what is still queued and keeps every finished chunk;
the outputs then say ``"complete": false`` and how many trials finished. (A thread cannot be
stopped: chunks already running in threads, up to one per thread, are not counted, and finish
before the interpreter exits; the ``adaptive`` program stops them with the process.)
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import as_completed as threads_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adaptive.config import parse_config
from adaptive.scenario import parse_scenario
from adaptive.simulate.engine import PASS_TRIALS, ChunkResult, SimSpec, compile_spec, simulate_chunk


def default_cache_dir() -> Path:
    """Where quadrature tables are cached (``ADAPTIVE_CACHE_DIR`` or ``~/.cache/rr-aml-adaptive``)."""
    env = os.environ.get("ADAPTIVE_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "rr-aml-adaptive"


@dataclass(frozen=True)
class Job:
    """Everything a worker needs to rebuild a :class:`SimSpec` (plain text, picklable)."""

    config_text: str
    config_name: str
    scenario_text: str
    scenario_name: str
    fixed_allocation: bool
    cache_dir: str
    overrides: tuple = ()  # (rule id, threshold) pairs, for calibration


@functools.lru_cache(maxsize=8)
def spec_for(job: Job) -> SimSpec:
    """Compile (and cache per process) the spec of a job."""
    design = parse_config(job.config_text, job.config_name)
    if job.overrides:
        design = with_thresholds(design, dict(job.overrides))
    scenario = parse_scenario(job.scenario_text, job.scenario_name, design)
    return compile_spec(
        design, scenario, fixed_allocation=job.fixed_allocation, table_options={"cache_dir": job.cache_dir}
    )


def with_thresholds(design, thresholds: dict[str, float]):
    """The design with some rules' probability thresholds replaced, as if edited in the config.

    A tiered harm rule's threshold is its most severe tier's (``drop_harm``). A predictive rule
    whose ``success_rule`` is replaced predicts success at the new threshold, as the config
    builds it (it copies its success rule's threshold): calibrating ``graduate_crc`` moves
    ``pp_futility_crc`` with it, so the calibrated threshold, written into the config, gives the
    error that calibration reported. Nothing else changes.
    """
    import dataclasses

    def changed(r):
        success = getattr(r, "success_rule", None)
        if success in thresholds and hasattr(r, "success_threshold"):
            r = dataclasses.replace(r, success_threshold=float(thresholds[success]))
        if r.id not in thresholds:
            return r
        if hasattr(r, "tiers"):
            *rest, last = r.tiers
            return dataclasses.replace(
                r, tiers=(*rest, dataclasses.replace(last, threshold=float(thresholds[r.id])))
            )
        return dataclasses.replace(r, threshold=float(thresholds[r.id]))

    return dataclasses.replace(design, rules=tuple(changed(r) for r in design.rules))


def run_chunk(job: Job, seed: int, trials: np.ndarray) -> ChunkResult:
    """Worker entry point."""
    return simulate_chunk(spec_for(job), seed, trials)


def chunks_of(n_trials: int, chunk_size: int, start: int = 0) -> list[np.ndarray]:
    """Trial indices ``start..n_trials-1`` in consecutive chunks."""
    return [np.arange(s, min(s + chunk_size, n_trials)) for s in range(start, n_trials, chunk_size)]


def cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


#: most threads an in-process run uses: part of a chunk's work holds the GIL (Python between the
#: compiled kernels and numpy calls), so beyond a few threads they mostly wait for each other
#: (measured on two cores only: a cautious cap)
LOCAL_THREADS = 4


def local_threads() -> int:
    """Threads of an in-process run: one per core, at most :data:`LOCAL_THREADS`."""
    return min(cores(), LOCAL_THREADS)


def local_chunk_size(n_trials: int, threads: int) -> int:
    """Trials per chunk run in this process: the engine's pass, less where threads would idle.

    A chunk costs a fixed overhead besides its trials, so in-process chunks are as large as one
    pass of the engine (:data:`~adaptive.simulate.engine.PASS_TRIALS`; a larger chunk runs as
    several passes anyway, and progress advances per chunk), but no larger than an equal share
    of the trials per thread.
    """
    return max(1, min(PASS_TRIALS, -(-n_trials // max(threads, 1))))


#: a study whose trials would take less than this many seconds in one process (on one core) runs in
#: this process (on threads, one per core): a local cluster's start, worker imports and hand-over
#: cost about as much. Threads run ~1.4x one core, two Dask workers ~1.9x after ~3 s of start:
#: they break even near 16 s (100,000 two-arm trials, ~5.8 s on one core: 7.6 s on Dask, 4.4 s
#: on threads; benchmarks/README.md)
LOCAL_SECONDS = 16.0
#: trials per Dask task unless ``chunk_size`` says otherwise (also the chunk :func:`pilot` times)
TASK_TRIALS = 250
#: trials run untimed before the pilot's clock starts (:func:`pilot`)
WARM_UP_TRIALS = 8


@contextlib.contextmanager
def setting_up(progress, text: str) -> Iterator[None]:
    """An indeterminate line on the progress display while set-up work runs (tables, workers)."""
    if progress is None:
        yield
        return
    task = progress.add_task(text, total=None)
    try:
        yield
    finally:
        progress.remove_task(task)


def pilot(job: Job, n_trials: int, seed: int, chunk_size: int, n_jobs: int) -> tuple[ChunkResult, bool]:
    """Run the first chunk of ``job`` here; whether ``n_jobs`` such runs are quicker in this process.

    The estimate is the chunk's time per trial times every trial of the study. The tables are
    built and the compiled kernels loaded before the clock starts (a few of the chunk's trials
    are run once untimed, and their result dropped): loading the kernels takes ~0.3 s, as long
    as a thousand trials of a small design, and counting it sent short studies to a Dask cluster
    whose start costs more than the whole study. Results do not depend on where chunks run.
    """
    spec_for(job)
    first = chunks_of(n_trials, chunk_size)[0]
    run_chunk(job, seed, first[:WARM_UP_TRIALS])
    start = time.perf_counter()
    res = run_chunk(job, seed, first)
    per_trial = (time.perf_counter() - start) / len(first)
    return res, per_trial * n_trials * n_jobs < LOCAL_SECONDS


def run_trials(
    job: Job,
    n_trials: int,
    seed: int,
    *,
    chunk_size: int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    threads: int = 1,
    progress=None,
    task_label: str = "",
    client=None,
    first: ChunkResult | None = None,
) -> tuple[list[ChunkResult], bool]:
    """Simulate ``n_trials`` trials; returns the finished chunks and whether all finished.

    Runs in this process (see the module docstring) when no ``client`` or ``scheduler`` is given
    and ``threads > 1``, ``workers`` is 1 (or the machine has one core) or the trials fit in one
    task; else on Dask. ``chunk_size``: trials per chunk (default: :func:`local_chunk_size` in
    this process, :data:`TASK_TRIALS` per Dask task). ``threads``: threads that run chunks in
    this process. ``progress`` is a rich ``Progress`` (or ``None``); a task is added and advanced
    per chunk. ``client``: an open Dask client to reuse (see :func:`open_client`). ``first``: the
    first chunk's result (trials ``0..len(first.trial)-1``), already computed (:func:`pilot`).
    """
    with setting_up(progress, f"{task_label or 'trials'}: compiling the design (quadrature tables cached)"):
        spec_for(job)  # build (and cache on disk) the tables once, here, before any worker needs them
    task = progress.add_task(task_label or "trials", total=n_trials) if progress is not None else None
    done: list[ChunkResult] = []

    def advance(res: ChunkResult):
        done.append(res)
        if progress is not None:
            progress.advance(task, len(res.trial))

    start = 0
    if first is not None:
        advance(first)
        start = len(first.trial)
        if start >= n_trials:
            return done, True

    task_trials = chunk_size or TASK_TRIALS
    here = threads > 1 or (workers or cores()) == 1 or n_trials - start <= task_trials
    if client is None and scheduler is None and here:
        size = chunk_size or local_chunk_size(n_trials - start, threads)
        return done, run_here(job, seed, chunks_of(n_trials, size, start), threads, advance)
    parts = chunks_of(n_trials, task_trials, start)
    own = None
    if client is None:
        own = client = open_client(workers=workers, scheduler=scheduler)
    from dask.distributed import as_completed

    futures = [client.submit(run_chunk, job, seed, trials, pure=False) for trials in parts]
    complete = True
    try:
        for fut in as_completed(futures):
            advance(fut.result())
    except KeyboardInterrupt:
        complete = False
        for f in futures:
            f.cancel()
    finally:
        if own is not None:
            close_client(own)
    return done, complete


def run_here(
    job: Job, seed: int, parts: list[np.ndarray], threads: int, advance: Callable[[ChunkResult], None]
) -> bool:
    """Run the chunks ``parts`` in this process, on ``threads`` threads; whether all finished.

    ``advance`` is called with each finished chunk, in this thread (in the order chunks finish).
    Ctrl-C (or a ``KeyboardInterrupt`` raised by a chunk) cancels the chunks not yet started and
    returns ``False``; chunks already running finish in their threads and are not counted.
    """
    if threads <= 1 or len(parts) <= 1:
        try:
            for trials in parts:
                advance(run_chunk(job, seed, trials))
        except KeyboardInterrupt:
            return False
        return True
    pool = ThreadPoolExecutor(max_workers=min(threads, len(parts)), thread_name_prefix="adaptive-simulate")
    futures = [pool.submit(run_chunk, job, seed, trials) for trials in parts]
    try:
        for fut in threads_completed(futures):
            advance(fut.result())
    except KeyboardInterrupt:
        return False
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return True


def open_client(*, workers: int | None = None, scheduler: str | None = None):
    """A Dask client: on ``scheduler`` if given, else on a new ``LocalCluster`` (one process per core)."""
    import dask
    from dask.distributed import Client, LocalCluster

    if scheduler is not None:
        return Client(scheduler)
    # Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536 (to hand memory back between tasks of
    # long-lived workers); that also fixes glibc's mmap threshold, so every large numpy array of
    # a chunk is a fresh mmap with page faults: the simulator ran ~40% slower in such a worker
    # (benchmarks/README.md). Our own short-lived workers keep glibc's adaptive default.
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}))
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    # Ctrl-C in a terminal signals the whole process group: the worker processes would each die
    # with a KeyboardInterrupt traceback while this process stops cleanly and closes them. An
    # ignored SIGINT survives exec and Python then installs no KeyboardInterrupt handler, so the
    # nannies and workers spawned here ignore it; the parent restores its own handler at once.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main_thread else None
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
            cluster = LocalCluster(
                n_workers=workers or cores(),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            )
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)
    return Client(cluster)


def close_client(client) -> None:
    """Close a client and the local cluster it owns (if any)."""
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()
