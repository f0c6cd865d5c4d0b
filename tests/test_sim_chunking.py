"""Issue 16.11: results are bitwise independent of the chunk size and of threads (the README's promise).

Every virtual trial draws from its own stream and the looks' arithmetic is elementwise per trial,
so how the trials are cut into tasks must not change a single bit of `trials.parquet`, `oc.csv` or
`oc.json` (apart from the recorded run time and chunk size). The bundled design is used, survival
rules included, on two scenarios (one with a harmful arm, so that harm tiers and suspensions run).
"""

from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np
import pytest
import yaml

from adaptive.simulate import looks, run, study
from adaptive.simulate.engine import PASS_TRIALS
from adaptive.simulate.study import simulate_study
from adaptive.simulate.summary import merge_chunks
from tests.conftest import CONFIG, SCENARIOS

VOLATILE = {"elapsed_seconds", "chunk_size", "workers", "started", "finished", "run_seconds"}


def _stable(doc):
    if isinstance(doc, dict):
        return {k: _stable(v) for k, v in doc.items() if k not in VOLATILE}
    if isinstance(doc, list):
        return [_stable(v) for v in doc]
    return doc


@pytest.mark.parametrize("chunk", [7, 50])
def test_chunk_size_changes_no_bit(tmp_path, chunk):
    scen = [SCENARIOS / "global_null.yaml", SCENARIOS / "harmful_arm.yaml"]
    ref = tmp_path / "ref"
    other = tmp_path / f"chunk{chunk}"
    simulate_study(CONFIG, scen, 60, ref, seed=11, workers=1, chunk_size=250)
    simulate_study(CONFIG, scen, 60, other, seed=11, workers=1, chunk_size=chunk)
    assert (ref / "trials.parquet").read_bytes() == (other / "trials.parquet").read_bytes()
    assert (ref / "oc.csv").read_bytes() == (other / "oc.csv").read_bytes()
    a = json.loads((ref / "oc.json").read_text())
    b = json.loads((other / "oc.json").read_text())
    assert _stable(a) == _stable(b)


# ----------------------------------------------------------------------------- threads
def _two_arm_job(tmp_path):
    from tests.test_sim_fastpaths import _two_arm_docs

    cfg, sc = _two_arm_docs()
    return run.Job(yaml.safe_dump(cfg), "c.yaml", yaml.safe_dump(sc), "s.yaml", False, str(tmp_path))


def _bundled_job(tmp_path):
    return run.Job(
        CONFIG.read_text(), CONFIG.name, (SCENARIOS / "harmful_arm.yaml").read_text(), "harmful_arm.yaml",
        False, str(tmp_path),
    )  # fmt: skip


def _assert_same(a, b):
    for f in dataclasses.fields(a):
        x, y = np.asarray(getattr(a, f.name)), np.asarray(getattr(b, f.name))
        assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True), f.name


@pytest.mark.parametrize("design", ["two_arm", "bundled"])
def test_threads_change_no_bit(tmp_path, design):
    """Chunks run on threads give every array of the sequential run, for any thread count and chunk size.

    The two-arm design shares its P(best) memo between the threads (cleared before each run, so
    that threads fill it concurrently); the bundled design with a harmful arm runs the queue's
    openings memo, harm tiers, suspensions and the survival rules.
    """
    job = _two_arm_job(tmp_path) if design == "two_arm" else _bundled_job(tmp_path)
    n = 120 if design == "two_arm" else 60
    looks.PAIR_MEMO.clear()
    ref_chunks, ok = run.run_trials(job, n, 5, workers=1, chunk_size=n)
    assert ok and len(ref_chunks) == 1
    ref = merge_chunks(ref_chunks)
    assert np.array_equal(ref.trial, np.arange(n))
    # chunks of one trial too: the patient-averaged true CRc rate is summed patient by patient
    # (it was a row sum over the chunk's patient columns, whose count depends on the chunk)
    for threads, chunk in [(2, 7), (3, 13), (2, None), (4, 2), (2, 1)]:
        looks.PAIR_MEMO.clear()
        chunks, ok = run.run_trials(job, n, 5, threads=threads, chunk_size=chunk)
        assert ok and len(chunks) == (-(-n // chunk) if chunk else 2)
        _assert_same(merge_chunks(chunks), ref)


def test_local_chunks_are_engine_passes_shared_by_the_threads():
    assert run.local_chunk_size(9_750, 2) == PASS_TRIALS
    assert run.local_chunk_size(50, 2) == 25 and run.local_chunk_size(51, 2) == 26
    assert run.local_chunk_size(3, 4) == 1 and run.local_chunk_size(PASS_TRIALS + 1, 1) == PASS_TRIALS
    parts = run.chunks_of(10, 4, start=3)
    assert [p.tolist() for p in parts] == [[3, 4, 5, 6], [7, 8, 9]]


def test_interrupted_threads_keep_their_finished_chunks(tmp_path, monkeypatch):
    """Ctrl-C (here raised by the third chunk) keeps the chunks that finished, each one intact."""
    job = _two_arm_job(tmp_path)
    whole = merge_chunks(run.run_trials(job, 100, 2, workers=1, chunk_size=100)[0])
    real = run.run_chunk
    calls = itertools.count(1)

    def flaky(job, seed, trials):
        if next(calls) == 3:
            raise KeyboardInterrupt
        return real(job, seed, trials)

    monkeypatch.setattr(run, "run_chunk", flaky)
    chunks, ok = run.run_trials(job, 100, 2, threads=2, chunk_size=10)
    assert not ok and 0 < len(chunks) < 10
    for c in chunks:
        assert len(c.trial) == 10
        assert np.array_equal(c.status, whole.status[c.trial]) and np.array_equal(
            c.duration, whole.duration[c.trial]
        )


def test_a_short_study_runs_here_on_every_core_and_says_so(tmp_path, monkeypatch):
    """By default a short study runs in this process on one thread per core (run.json records it)."""
    for module in (run, study):
        monkeypatch.setattr(module, "open_client", lambda **kw: pytest.fail("a short study started Dask"))
    scen = [SCENARIOS / "global_null.yaml"]
    simulate_study(CONFIG, scen, 60, tmp_path / "threads", seed=11, chunk_size=20)
    simulate_study(CONFIG, scen, 60, tmp_path / "one", seed=11, workers=1)
    a = json.loads((tmp_path / "threads" / "run.json").read_text())
    b = json.loads((tmp_path / "one" / "run.json").read_text())
    assert (a["workers"], a["threads"], a["scheduler"]) == (1, run.local_threads(), None)
    assert (b["workers"], b["threads"]) == (1, 1)
    parquet = [(tmp_path / d / "trials.parquet").read_bytes() for d in ("threads", "one")]
    assert parquet[0] == parquet[1]
