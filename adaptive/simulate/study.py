"""`adaptive simulate` and `adaptive calibrate`: studies of many scenarios, written atomically.

Outputs of ``simulate`` (in a new folder):

* ``oc.json``: per scenario (and per allocation: ``adaptive`` and, with ``--compare-fixed``,
  ``fixed``) the operating characteristics of :mod:`adaptive.simulate.summary` with MCSEs, plus
  the config's and every scenario's SHA-256, the seed, the trial counts, versions.
* ``oc.csv``: the per-arm characteristics, one row per scenario x allocation x arm.
* ``trials.parquet``: one row per scenario x allocation x trial x arm.
* ``run.json``: how the study ran: wall seconds, ``workers``, ``threads`` (threads of an
  in-process run, ``null`` on Dask) and ``scheduler``.

A short study runs in this process on one thread per core, a long one on Dask
(:func:`simulate_study`, :mod:`adaptive.simulate.run`). Nothing heavier than the simulation
needs is imported before the outputs are written (pandas only then): imports are a good part of
a short study's time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from adaptive.config import load_config, parse_config
from adaptive.output import atomic_dir, canonical_json, versions
from adaptive.scenario import load_scenario
from adaptive.simulate.engine import survival_rules_not_simulated
from adaptive.simulate.run import (
    TASK_TRIALS,
    Job,
    close_client,
    default_cache_dir,
    local_threads,
    open_client,
    pilot,
    run_trials,
    setting_up,
    spec_for,
)
from adaptive.simulate.summary import flat_rows, merge_chunks, per_trial_frame, summarise

SCHEMA = "rr-aml-adaptive/simulate/v1"


@dataclass(frozen=True)
class Input:
    """A file read once: its path, text and hash."""

    path: Path
    text: str
    sha256: str

    @classmethod
    def read(cls, path: str | Path) -> Input:
        p = Path(path)
        raw = p.read_bytes()
        return cls(p, raw.decode("utf-8"), hashlib.sha256(raw).hexdigest())


def with_look_days(config_text: str, days: Sequence[int]) -> str:
    """The config's text with ``looks.at_days`` set (the rest of the schedule kept)."""
    import yaml

    doc = yaml.safe_load(config_text)
    doc.setdefault("looks", {})["at_days"] = [int(d) for d in days]
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def looks_from_ledger(ledger_path: str | Path, config_path: str | Path) -> dict:
    """The looks a ledger holds, as days from the config's ``trial.start_date`` (``looks_as_held``).

    Every recorded look's cutoff counts once (several analyses of one cutoff are one look of the
    data). Raises :class:`~adaptive.exceptions.ConfigError` when the config has no start date,
    and ``LedgerError`` for a file that is not a ledger or holds no look.
    """
    from adaptive.exceptions import ConfigError, LedgerError
    from adaptive.ledger import read_looks

    design = load_config(config_path)
    start = design.raw.trial.start_date
    if start is None:
        raise ConfigError(
            [
                f"{Path(config_path).name}: trial.start_date is needed to place the ledger's looks on "
                "the simulated trial's calendar (days from the start)"
            ]
        )
    records = read_looks(ledger_path)
    cutoffs = sorted({date.fromisoformat(r.cutoff) for r in records})
    if not cutoffs:
        raise LedgerError(f"the ledger {ledger_path} holds no recorded look")
    early = [c for c in cutoffs if c <= start]
    if early:
        raise LedgerError(
            f"the ledger {ledger_path} has a look with cutoff {early[0]}, on or before the trial's "
            f"start_date {start} in {Path(config_path).name}"
        )
    return {
        "ledger": Path(ledger_path).name,
        "ledger_sha256": hashlib.sha256(Path(ledger_path).read_bytes()).hexdigest(),
        "start_date": start.isoformat(),
        "cutoffs": [c.isoformat() for c in cutoffs],
        "at_days": [(c - start).days for c in cutoffs],
    }


def _jobs(
    config: Input, scenario: Input, compare_fixed: bool, cache_dir: Path, overrides=()
) -> dict[str, Job]:
    jobs = {
        "adaptive": Job(
            config.text, config.path.name, scenario.text, scenario.path.name, False, str(cache_dir), overrides
        )
    }
    if compare_fixed:
        jobs["fixed"] = Job(
            config.text, config.path.name, scenario.text, scenario.path.name, True, str(cache_dir), overrides
        )
    return jobs


def simulate_study(
    config_path: str | Path,
    scenario_paths: list[str | Path],
    n_trials: int,
    out: str | Path,
    *,
    seed: int = 1,
    compare_fixed: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    chunk_size: int | None = None,
    progress=None,
    cache_dir: str | Path | None = None,
    looks_as_held: dict | None = None,
) -> dict:
    """Simulate every scenario and write ``oc.json``, ``oc.csv`` and ``trials.parquet`` into ``out``.

    Where the trials run (:mod:`adaptive.simulate.run`): with neither ``workers`` nor
    ``scheduler`` given, a study that :func:`~adaptive.simulate.run.pilot` predicts to take less
    than :data:`~adaptive.simulate.run.LOCAL_SECONDS` on one core runs in this process on one
    thread per core (``run.json``: ``"threads"``), a longer one on a local Dask cluster; with
    ``workers=1`` it runs in this process on one thread; with ``workers > 1`` or a ``scheduler``,
    on Dask. ``chunk_size``: trials per chunk (default: per Dask task
    :data:`~adaptive.simulate.run.TASK_TRIALS`, in this process the engine's pass). The results
    are the same wherever the trials run.

    ``looks_as_held`` (:func:`looks_from_ledger`) replaces the start of the config's look schedule
    by the looks a ledger holds (``looks.at_days``); ``oc.json`` records it under that key, and
    ``config_sha256`` stays the config file's.
    """
    design = load_config(config_path)  # validation with file names in the messages
    config = Input.read(config_path)
    if looks_as_held is not None:
        config = dataclasses.replace(config, text=with_look_days(config.text, looks_as_held["at_days"]))
        design = parse_config(config.text, config.path.name)
    scenarios = [Input.read(p) for p in scenario_paths]
    for sc in scenarios:
        load_scenario(sc.path, design)
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    started = time.perf_counter()
    client = None
    jobs = {sc.path: _jobs(config, sc, compare_fixed, cache) for sc in scenarios}
    first_job = next(iter(jobs[scenarios[0].path].values()))
    first = None
    task_trials = chunk_size or TASK_TRIALS
    threads = 1  # threads that run chunks in this process (1 on Dask)
    if scheduler is None and workers is None and n_trials > task_trials:
        # by default a short study runs in this process, on every core: the first chunk tells
        with setting_up(progress, "compiling the design and timing a first chunk"):
            first, local = pilot(first_job, n_trials, seed, task_trials, sum(len(j) for j in jobs.values()))
        if local:
            workers, threads = 1, local_threads()
        else:
            with setting_up(progress, "starting the Dask workers"):
                client = open_client()
    elif scheduler is None and workers is None:  # one task's trials: here, on every core
        workers, threads = 1, local_threads()
    elif scheduler is not None or (workers or 2) > 1 and n_trials > task_trials:
        with setting_up(progress, "starting the Dask workers"):
            client = open_client(workers=workers, scheduler=scheduler)
    results = []
    frames = []
    csv_rows = []
    complete = True
    try:
        for sc in scenarios:
            entry = {"scenario": sc.path.stem, "file": sc.path.name, "sha256": sc.sha256, "allocations": {}}
            for label, job in jobs[sc.path].items():
                if not complete:
                    break
                chunks, ok = run_trials(
                    job, n_trials, seed, chunk_size=chunk_size, workers=workers, scheduler=scheduler,
                    threads=threads, progress=progress, task_label=f"{sc.path.stem} ({label})",
                    client=client, first=first if job is first_job else None,
                )  # fmt: skip
                complete &= ok
                if not chunks:
                    continue
                spec = spec_for(job)
                res = merge_chunks(chunks)
                summary = summarise(spec, res)
                summary["allocation_rules"] = [str(r) for r in spec.alloc_rules]
                entry["allocations"][label] = summary
                frame = per_trial_frame(spec, res, sc.path.stem)
                frame.insert(1, "allocation", label)
                frames.append(frame)
                csv_rows += flat_rows(summary, sc.path.stem, label)
            results.append(entry)
    finally:
        if client is not None:
            close_client(client)
    report = {
        "schema": SCHEMA,
        "complete": complete,
        "trials_requested": n_trials,
        "seed": seed,
        "config_file": config.path.name,
        "config_sha256": config.sha256,
        "looks_as_held": looks_as_held,
        "scenarios": results,
        "versions": versions(),
        "design": {
            "looks": design.raw.looks.model_dump(mode="json"),
            "rules": [str(r) for r in design.rules],
            "rules_not_simulated": [
                {"rule": rule, "reason": reason}
                for rule, reason in survival_rules_not_simulated(design).items()
            ],
        },
    }
    import pandas as pd  # here, not earlier: ~0.2 s that the simulation does not need

    with atomic_dir(out) as tmp:
        (tmp / "oc.json").write_text(canonical_json(report), encoding="utf-8")
        pd.DataFrame(csv_rows).to_csv(tmp / "oc.csv", index=False, lineterminator="\n")
        if frames:
            pd.concat(frames, ignore_index=True).to_parquet(tmp / "trials.parquet", index=False)
        (tmp / "run.json").write_text(
            canonical_json(
                {
                    "wall_seconds": time.perf_counter() - started,
                    "workers": workers,
                    "threads": threads if client is None and scheduler is None else None,
                    "scheduler": scheduler,
                }
            ),
            encoding="utf-8",
        )
    return report


#: calibration criteria: the largest per-arm type I error, or the family-wise error
CRITERIA = {
    "max_arm": "largest per-arm type I error among arms at their null rate (ITT)",
    "fwer": "family-wise error: P(any arm at its null graduates or is declared superior)",
}


def type_i_error(summary: dict, measure: str = "max_arm") -> tuple[float, float]:
    """Type I error of a null-scenario summary: ``max_arm`` (largest per-arm) or ``fwer``."""
    if measure not in CRITERIA:
        raise ValueError(f"unknown criterion {measure!r} (known: {', '.join(CRITERIA)})")
    if measure == "fwer":
        if summary.get("fwer") is None:
            raise ValueError(
                "no arm of this scenario is at its null rate: it cannot calibrate a type I error"
            )
        return summary["fwer"]["estimate"], summary["fwer"]["mcse"]
    vals = [
        (a["type_i_error"]["estimate"], a["type_i_error"]["mcse"])
        for a in summary["arms"]
        if a["type_i_error"]
    ]
    if not vals:
        raise ValueError("no arm of this scenario is at its null rate: it cannot calibrate a type I error")
    return max(vals)


def calibrate(
    config_path: str | Path,
    scenario_path: str | Path | Sequence[str | Path],
    rule_id: str,
    target: float,
    n_trials: int,
    out: str | Path,
    *,
    seed: int = 1,
    lo: float = 0.9,
    hi: float = 0.9999,
    iterations: int = 8,
    workers: int | None = None,
    scheduler: str | None = None,
    chunk_size: int | None = None,
    progress=None,
    cache_dir: str | Path | None = None,
    criterion: str = "max_arm",
) -> dict:
    """Bisect a rule's probability threshold so that the type I error stays at or below ``target``.

    Every candidate threshold is simulated on the same virtual trials (same seed: common random
    numbers), so the error is a step function of the threshold that the bisection can follow. The
    error is the ``criterion`` (:data:`CRITERIA`: the largest per-arm error or the family-wise
    error) in each null scenario, and its maximum over the scenarios (a family of nulls: e.g. all
    arms null, and each arm null while the others are effective). The result is the smallest
    threshold tried whose error is at or below the target, with that error and its MCSE; a
    warning is recorded when that MCSE exceeds a tenth of the target (more trials are needed to
    tell the threshold from its neighbours).
    """
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r} (known: {', '.join(CRITERIA)})")
    paths = [scenario_path] if isinstance(scenario_path, str | Path) else list(scenario_path)
    if not paths:
        raise ValueError("calibrate needs at least one null scenario")
    design = load_config(config_path)
    if rule_id not in {r.id for r in design.rules}:
        raise ValueError(
            f"rule {rule_id!r} is not in the config (rules: {', '.join(r.id for r in design.rules)})"
        )
    config = Input.read(config_path)
    scenarios = [Input.read(p) for p in paths]
    names = [load_scenario(sc.path, design).name for sc in scenarios]
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    client = None
    if scheduler is not None or (workers or 2) > 1 and n_trials > (chunk_size or TASK_TRIALS):
        with setting_up(progress, "starting the Dask workers"):
            client = open_client(workers=workers, scheduler=scheduler)
    path = []

    def error_at(threshold: float) -> tuple[float, float]:
        by_scenario = []
        for sc, name in zip(scenarios, names, strict=True):
            job = _jobs(config, sc, False, cache, ((rule_id, threshold),))["adaptive"]
            chunks, ok = run_trials(
                job, n_trials, seed, chunk_size=chunk_size, workers=workers, scheduler=scheduler,
                progress=progress, task_label=f"{name}: {rule_id} threshold {threshold:.4f}",
                client=client,
            )  # fmt: skip
            if not ok:
                raise KeyboardInterrupt
            est, mcse = type_i_error(summarise(spec_for(job), merge_chunks(chunks)), criterion)
            by_scenario.append({"scenario": name, "type_i_error": est, "mcse": mcse})
        worst = max(by_scenario, key=lambda e: e["type_i_error"])
        path.append(
            {
                "threshold": threshold,
                "type_i_error": worst["type_i_error"],
                "mcse": worst["mcse"],
                "worst_scenario": worst["scenario"],
                "by_scenario": by_scenario,
            }
        )
        return worst["type_i_error"], worst["mcse"]

    try:
        e_hi, _ = error_at(hi)
        if e_hi > target:
            best = None
        else:
            e_lo, _ = error_at(lo)
            if e_lo <= target:
                best = lo
            else:
                a, b = lo, hi
                for _ in range(iterations):
                    mid = 0.5 * (a + b)
                    e, _ = error_at(mid)
                    if e <= target:
                        b = mid
                    else:
                        a = mid
                best = b
    finally:
        if client is not None:
            close_client(client)
    chosen = next((p for p in path if best is not None and np.isclose(p["threshold"], best)), None)
    warnings = []
    if chosen is not None and chosen["mcse"] > target / 10:
        warnings.append(
            f"the Monte Carlo standard error at the chosen threshold ({chosen['mcse']:.4f}) is larger "
            f"than a tenth of the target ({target / 10:.4f}): rerun with more trials (about "
            f"{int(np.ceil(n_trials * (chosen['mcse'] / (target / 10)) ** 2)):,} per evaluation) "
            "before adopting the threshold"
        )
    report = {
        "schema": "rr-aml-adaptive/calibrate/v1",
        "rule": rule_id,
        "target_type_i_error": target,
        "criterion": criterion,
        "measure": CRITERIA[criterion] + (", the largest over the scenarios" if len(paths) > 1 else ""),
        "warnings": warnings,
        "chosen_threshold": best,
        "type_i_error_at_chosen": chosen,
        "evaluations": sorted(path, key=lambda p: p["threshold"]),
        "trials_per_evaluation": n_trials,
        "seed": seed,
        "config_file": config.path.name,
        "config_sha256": config.sha256,
        "scenarios": [
            {"scenario": name, "file": sc.path.name, "sha256": sc.sha256}
            for sc, name in zip(scenarios, names, strict=True)
        ],
        "versions": versions(),
        "note": None if best is not None else f"even threshold {hi} gives a type I error above {target}",
    }
    with atomic_dir(out) as tmp:
        (tmp / "calibration.json").write_text(canonical_json(report), encoding="utf-8")
    return report
