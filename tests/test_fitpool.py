"""The long-lived fitting workers: reuse, affinity, failures, interruption, and dying with the parent.

Jobs here are standard-library functions (``os.getpid``, ``exec``, ``time.sleep``), so the pool is
tested without fitting anything; the last test checks the real thing, a second look reusing the
workers' compiled models.
"""

from __future__ import annotations

import json
import operator
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from datetime import date

import pytest

from adaptive.exceptions import FitWorkerError
from adaptive.fitpool import FitPool, shared_pool, worker_status
from tests.conftest import EXAMPLE, ROOT, small_sampler, write_config
from tests.test_recommend import borrowing_doc


@pytest.fixture
def pool():
    p = FitPool()
    yield p
    p.close()


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return any(line.startswith("State:") and "Z" in line.split()[1] for line in fh)
    except FileNotFoundError:
        return True


def _wait_gone(pids, timeout=20.0) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if all(_gone(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


def test_each_job_runs_in_its_own_worker_and_the_workers_are_kept(pool):
    first = pool.map(os.getpid, [(), ()])
    assert len(set(first)) == 2 and os.getpid() not in first
    assert sorted(pool.pids()) == sorted(first)
    again = pool.map(os.getpid, [(), ()])
    assert sorted(again) == sorted(first)  # the same processes, not new ones
    assert pool.map(operator.add, [(1, 2), (3, 4), (5, 6)]) == [3, 7, 11]  # a third worker joins
    assert len(pool.pids()) == 3 and set(first) <= set(pool.pids())
    pids = pool.pids()
    pool.close()
    assert pool.pids() == [] and _wait_gone(pids)


def test_a_job_goes_back_to_the_worker_that_ran_its_labels(pool):
    a, b = pool.map(os.getpid, [(), ()], labels=[frozenset({"Exnex"}), frozenset({"PiecewiseExponential"})])
    again = pool.map(
        os.getpid, [(), ()], labels=[frozenset({"PiecewiseExponential"}), frozenset({"Exnex", "Other"})]
    )
    assert again == [b, a]


def test_a_job_that_raises_is_reported_and_its_worker_kept(pool):
    pids = set(pool.map(os.getpid, [(), ()]))
    with pytest.raises(FitWorkerError, match=r"raised ZeroDivisionError: division by zero"):
        pool.map(operator.truediv, [(4, 2), (1, 0)])
    assert set(pool.pids()) == pids
    assert pool.map(operator.truediv, [(4, 2), (9, 3)]) == [2.0, 3.0]


def test_a_job_that_cannot_be_pickled_is_refused_before_any_worker_starts(pool):
    with pytest.raises((AttributeError, TypeError, pickle.PicklingError)):
        pool.map(lambda: 1, [()])
    assert pool.pids() == []


def test_printing_in_a_job_does_not_corrupt_the_answer(pool):
    code = "import sys; print('noise on stdout'); sys.stdout.flush(); print('x' * 100000)"
    assert pool.map(exec, [(code,)]) == [None]
    assert pool.map(operator.mul, [(6, 7)]) == [42]


def test_a_worker_that_dies_mid_job_is_named_with_its_output_and_replaced(pool):
    pids = pool.map(os.getpid, [(), ()])
    crash = "import os, sys; print('about to crash', file=sys.stderr); sys.stderr.flush(); os._exit(7)"
    with pytest.raises(FitWorkerError, match=r"(?s)died \(exit status 7\).*about to crash") as info:
        pool.map(exec, [("pass",), (crash,)])
    assert "about to crash" in str(info.value)
    assert len(pool.pids()) == 1  # the dead one is gone, the other kept
    new = pool.map(os.getpid, [(), ()])
    assert len(set(new)) == 2 and len(set(new) & set(pids)) == 1


def test_a_worker_killed_between_looks_is_replaced(pool):
    pids = pool.map(os.getpid, [(), ()])
    os.kill(pids[0], signal.SIGKILL)
    assert _wait_gone([pids[0]])
    new = pool.map(os.getpid, [(), ()])
    assert pids[0] not in new and pids[1] in new


def test_workers_of_an_ended_thread_are_started_again(pool):
    import threading

    first: list[int] = []
    t = threading.Thread(target=lambda: first.extend(pool.map(os.getpid, [()])))
    t.start()
    t.join()
    assert len(first) == 1 and _wait_gone(first)  # died with the thread that started them
    (again,) = pool.map(os.getpid, [()])
    assert again != first[0] and not _gone(again)


def test_an_interrupted_map_discards_the_busy_worker(pool):
    class Interrupt(Exception):
        pass

    def interrupt(*_):
        raise Interrupt

    (idle,) = pool.map(os.getpid, [()])
    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        t0 = time.monotonic()
        with pytest.raises(Interrupt):
            pool.map(time.sleep, [(60,)])
        assert time.monotonic() - t0 < 30
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    # the busy worker owed an answer: it is killed, never asked again
    assert pool.pids() == [] and _wait_gone([idle])
    assert pool.map(operator.add, [(1, 1)]) == [2]


def test_a_changed_environment_restarts_the_workers(pool, monkeypatch):
    (before,) = pool.map(os.getpid, [()])
    monkeypatch.setenv("ADAPTIVE_FITPOOL_TEST", "1")
    (after,) = pool.map(os.getenv, [("ADAPTIVE_FITPOOL_TEST",)])
    assert after == "1" and _wait_gone([before])


def test_workers_die_with_a_killed_parent(tmp_path):
    code = textwrap.dedent(
        """
        import os, sys, time
        from adaptive.fitpool import FitPool
        pool = FitPool()
        print(*pool.map(os.getpid, [(), ()]), flush=True)
        time.sleep(600)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        pids = [int(x) for x in proc.stdout.readline().split()]
        assert len(pids) == 2 and not any(_gone(p) for p in pids)
    finally:
        proc.kill()
        proc.wait()
    assert _wait_gone(pids)


def test_workers_exit_when_the_parent_exits_normally(tmp_path):
    code = "import os\nfrom adaptive.fitpool import shared_pool\nprint(*shared_pool().map(os.getpid, [(), ()]))\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    assert _wait_gone([int(x) for x in res.stdout.split()])


@pytest.mark.slow
def test_a_further_look_reuses_the_workers_compiled_models(tmp_path):
    """Two looks in one process with ``fit_processes: 2``: same workers, no new compile, same bytes."""
    from adaptive.interim import run_interim

    # borrowing within a group (EXNEX CRc and ORR) and the survival model: two MCMC model classes,
    # two workers (with one MCMC class the look fits in-process: adaptive.interim.fit_endpoints)
    cfg = small_sampler(borrowing_doc())
    cfg["sampler"]["fit_processes"] = 2
    path = write_config(tmp_path, cfg)
    pool = shared_pool()
    pool.close()
    reps, states = [], []
    for i in range(2):
        out = tmp_path / f"look{i}"
        run_interim(path, EXAMPLE, date(2026, 10, 31), out, ledger=tmp_path / f"ledger{i}.sqlite")
        rep = json.loads((out / "recommendations.json").read_text())
        reps.append({k: v for k, v in rep.items() if k not in ("look",)})
        states.append(sorted(pool.map(worker_status, [(), ()]), key=lambda s: s["pid"]))
    assert reps[0] == reps[1]
    assert states[0] == states[1]  # the same two processes, holding the same compiled models
    compiled = [k for s in states[0] for k in s["compiled"]]
    # the hierarchical ORR model with arms outside its group is fitted as EXNEX with weights 0 / 1
    assert any("exnex" in k.lower() for k in compiled) and len(states[0]) == 2


def test_a_failing_worker_makes_interim_exit_5_and_write_nothing(tmp_path, monkeypatch):
    """A look whose fitting worker raises: exit code 5, the worker's error printed, no folder, no ledger row."""
    from click.testing import CliRunner

    import adaptive.interim as interim
    from adaptive.cli import main
    from adaptive.ledger import read_looks

    # borrowing within a group (EXNEX CRc and ORR) and the survival model: two MCMC model classes,
    # two workers (with one MCMC class the look fits in-process: adaptive.interim.fit_endpoints)
    cfg = small_sampler(borrowing_doc())
    cfg["sampler"]["fit_processes"] = 2
    path = write_config(tmp_path, cfg)
    # the workers run the job function by name: a built-in that refuses the job's five arguments
    monkeypatch.setattr(interim, "_fit_group", exec)
    out, ledger = tmp_path / "look", tmp_path / "ledger.sqlite"
    args = ["interim", "--config", path, "--data", EXAMPLE, "--cutoff", "2026-10-31", "--out", out]
    res = CliRunner().invoke(main, [str(a) for a in [*args, "--ledger", ledger]])
    assert res.exit_code == 5, res.output
    assert "model-fitting worker raised TypeError" in res.output
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".look")]
    assert read_looks(ledger) == []


def test_a_decoy_models_package_in_the_working_folder_is_not_imported(pool, tmp_path, monkeypatch):
    # a user's own models/ (or adaptive/) folder where the look runs must not replace the engine's
    for name in ("models", "adaptive", "decision_rules"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"raise ImportError('decoy {name} imported')\n")
    monkeypatch.chdir(tmp_path)
    [status] = pool.map(worker_status, [()])
    assert status["pid"] != os.getpid()
    [where] = pool.map(eval, [("__import__('models').__file__",)])
    assert not where.startswith(str(tmp_path))
    assert os.path.dirname(os.path.dirname(where)) == str(ROOT)
