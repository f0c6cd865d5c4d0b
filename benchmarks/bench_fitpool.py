"""The look's model fits in worker processes: adaptive.fitpool against maintained executors.

Issue 17 asks whether the hand-written fitting pool (:mod:`adaptive.fitpool`) earns its place
against a maintained executor. This benchmark fits the bundled look's endpoint groups (the same
jobs ``adaptive interim`` sends to its workers: one group per model structure, two processes) with

- ``fitpool``: :class:`adaptive.fitpool.FitPool` (jobs go to the worker that compiled their model
  structure before);
- ``processpool``: ``concurrent.futures.ProcessPoolExecutor`` (spawn; no affinity: a job goes to
  whichever worker is free);
- ``dask``: a Dask ``LocalCluster`` (the simulator's executor) with each group pinned to one worker
  (``workers=[address]``), which gives the fitpool's affinity;
- ``serial``: everything in this process (``sampler.fit_processes: 1``), for reference.

Each backend runs in a fresh process (no compiled model left in memory by another backend), with
the machine's disk caches (PyTensor, Numba) warm from a warm-up run, as on a machine that runs
looks on a schedule. ``first`` is start-up plus the first look's fits (what one ``adaptive interim``
pays); ``second`` is a further look in the same process (a notebook, ``adaptive batch``, a
scheduler), where kept workers and affinity matter. Prints the median of ``--runs``.

    python benchmarks/bench_fitpool.py --runs 3
    python benchmarks/bench_fitpool.py --runs 3 --design borrowing   # EXNEX CRc, hierarchical ORR
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("fitpool", "processpool", "dask", "serial")


#: a declared exchangeable set for the ``borrowing`` design (as tests/test_recommend.py's)
BASKET = ["arm1", "arm2", "arm5", "arm6"]


def design_of(name: str):
    """The bundled design, or (``borrowing``) the same with EXNEX CRc and hierarchical ORR."""
    import yaml

    from adaptive.config import load_config, parse_config

    path = ROOT / "configs/rr_aml.yaml"
    if name == "bundled":
        return load_config(path)
    doc = yaml.safe_load(path.read_text())
    doc = {k: v for k, v in doc.items() if not k.startswith("x-")}
    prior = {"mu": {"mean": 0.0, "sd": 1.0}, "tau": {"dist": "half_normal", "scale": 0.5}}
    doc["endpoints"]["crc"]["model"] = {
        "kind": "exnex", "borrowing_group": BASKET, **prior, "nex": {"mean": 0.0, "sd": 2.0}, "w": 0.5,
    }  # fmt: skip
    doc["endpoints"]["orr"]["model"] = {"kind": "hierarchical", "borrowing_group": BASKET, **prior}
    return parse_config(yaml.safe_dump(doc, sort_keys=False), "rr_aml-borrowing.yaml")


def jobs(design_name: str = "bundled"):
    """The look's fitting jobs, as ``adaptive.interim.fit_endpoints`` builds them."""
    import dataclasses

    from adaptive.data import load_patients
    from adaptive.derive import derive
    from adaptive.interim import _groups, _model_kind, fit_tasks, sampler_settings
    from models.diagnostics import Limits

    design = design_of(design_name)
    table = load_patients(ROOT / "examples/rr_aml_synthetic.csv", design)
    derived = derive(table, design, date(2026, 10, 31))
    tasks = fit_tasks(design, derived)
    groups = _groups(tasks, 2)
    settings = dataclasses.replace(sampler_settings(design), cores=1)
    lim = design.sampler.limits
    limits = Limits(lim.max_rhat, lim.min_ess_bulk, lim.min_ess_tail, lim.max_divergences)
    retries = tuple((r.tune, r.target_accept) for r in design.sampler.retries)
    seed = design.sampler.seed
    return (
        [(g, seed, settings, limits, retries) for g in groups],
        [frozenset(map(_model_kind, g)) for g in groups],
        tasks,
    )


def one_backend(backend: str, design_name: str) -> dict:
    """Time two looks' fits with ``backend`` in this (fresh) process."""
    from adaptive.interim import _fit_group

    work, labels, tasks = jobs(design_name)
    t0 = time.perf_counter()
    if backend == "fitpool":
        from adaptive.fitpool import FitPool

        pool = FitPool()

        def look():
            return pool.map(_fit_group, work, labels=labels)

        close = pool.close
    elif backend == "processpool":
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ex = ProcessPoolExecutor(len(work), mp_context=multiprocessing.get_context("spawn"))

        def look():
            return list(ex.map(_fit_group, *zip(*work, strict=True)))

        close = ex.shutdown
    elif backend == "dask":
        from adaptive.simulate.run import close_client, open_client

        client = open_client(workers=len(work))
        addresses = sorted(client.scheduler_info()["workers"])

        def look():
            futures = [
                client.submit(_fit_group, *job, workers=[addresses[i]], allow_other_workers=False, pure=False)
                for i, job in enumerate(work)
            ]
            return client.gather(futures)

        def close():
            close_client(client)
    else:
        from adaptive.interim import _fit_group as fit

        def look():
            return [fit(tasks, *work[0][1:])]

        def close():
            return None

    look()
    first = time.perf_counter() - t0
    t1 = time.perf_counter()
    parts = look()
    second = time.perf_counter() - t1
    close()
    assert sorted(ep for p in parts for ep in p) == sorted(t[0] for t in tasks)
    return {"first": first, "second": second}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--design", choices=("bundled", "borrowing"), default="bundled")
    parser.add_argument("--backend", choices=BACKENDS, help=argparse.SUPPRESS)  # one run, in a child
    args = parser.parse_args()
    if args.backend:
        print(json.dumps(one_backend(args.backend, args.design)))
        return
    # warm the disk caches (PyTensor's compile dir, Numba's cache) once
    warm = [sys.executable, __file__, "--backend", "serial", "--design", args.design]
    subprocess.run(warm, check=True, capture_output=True)
    times: dict[str, list[dict]] = {b: [] for b in BACKENDS}
    for _ in range(args.runs):
        for b in BACKENDS:
            out = subprocess.run(
                [sys.executable, __file__, "--backend", b, "--design", args.design],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            times[b].append(json.loads(out.strip().splitlines()[-1]))
    print(f"{args.design} design, {len(jobs(args.design)[0])} groups; {platform.node()} "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; {date.today()}; "
          f"load average {os.getloadavg()[0]:.2f}; median of {args.runs} runs")  # fmt: skip
    print(f"{'backend':<12} {'first look (start + fits), s':>30} {'second look, s':>16}")
    for b in BACKENDS:
        first = statistics.median(t["first"] for t in times[b])
        second = statistics.median(t["second"] for t in times[b])
        print(f"{b:<12} {first:>30.1f} {second:>16.1f}")


if __name__ == "__main__":
    main()
