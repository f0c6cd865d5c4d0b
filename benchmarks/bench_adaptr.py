"""Side by side with adaptr (R): the same two-arm response-adaptive design in both, on this machine.

    python benchmarks/bench_adaptr.py --runs 3 --large-runs 1  # OCs and timings (Rscript + adaptr)
    python benchmarks/bench_adaptr.py --runs 3 --no-adaptr     # this package only

The design is adaptr's ``run_trials()`` documentation example reduced to two arms, with every
other setting at ``setup_trial_binom()``'s defaults (adaptr 1.4.0; ``benchmarks/adaptr_two_arm.R``):

* arms A and B, an undesirable binary outcome (``highest_is_best = FALSE``) with event
  probabilities 0.20 and 0.18 (the example's first two arms), independent Beta(1, 1) priors;
* analyses after 100, 200, ..., 2000 patients with outcome data; no follow-up lag
  (``randomised_at_looks`` = ``data_looks``);
* response-adaptive randomization from the start, ``soften_power = 1``: each arm's allocation
  probability is its posterior probability of being the best arm, no limits
  (``min_probs``/``max_probs`` unset), equal allocation until the first analysis;
* no common control: an arm is superior when P(best) > 0.99 (``superiority``) and inferior when
  P(best) < 0.01 (``inferiority``); with two arms the two coincide, and the trial stops for
  superiority; no equivalence or futility rules; otherwise the trial stops at 2000 patients.

In this package's vocabulary: an ``independent`` endpoint with a ``uniform`` prior, a
``superiority`` rule over the pair (fires when either arm is better with probability > 0.99) in
``stop_trial_on``, ``thall_wathen`` randomization with the constant ``power: 1`` (``P(best)^1``), no
burn-in or bounds. The engine's endpoint is a desirable response, so each arm's response rate is
one minus adaptr's event probability: under the uniform prior ``P(q_B > q_A)`` for ``q = 1 - p`` is
exactly ``P(p_B < p_A)``.

What cannot be made identical:

* adaptr estimates P(best) from 5,000 Monte Carlo posterior draws per arm (``n_draws``), this
  package integrates exactly, so adaptr's decisions and allocations carry a Monte Carlo error of
  ~0.0014 (binomial SD at 0.99 of 5,000 draws) around each probability.
* The engine runs in calendar time: an outcome is known ``response_landmark_days`` (at least 1)
  after enrolment and arrivals are a Poisson process, so the patient whose arrival triggers a look
  is never counted at it. Looks are therefore held when patients 101, 201, ..., 1901 arrive, with
  a 1-day landmark and one patient per ~100 days (see :data:`ACCRUAL_PER_MONTH`); the analysis at
  2000 patients is the final one. Each triggering patient is randomized with the previous
  allocation, and is left out of the analysed sample size (:func:`engine_trials`).

Timings, in rounds of 10,000 trials that run the three one after the other (so that they share
the machine's load), then 100,000 trials of this package (``--large-runs``): adaptr's
``run_trials(..., cores = 2)`` inside one ``Rscript`` (its cluster start included, R start-up
excluded); this package's whole ``adaptive simulate`` command with two workers (imports, cluster
start, outputs included), and ``run_trials`` on two warm Dask workers.
The operating characteristics are read from the per-trial results of both (adaptr's
``extract_results()``, this package's ``trials.parquet``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
R_SCRIPT = ROOT / "benchmarks" / "adaptr_two_arm.R"

#: adaptr's arm names and event probabilities (undesirable outcome) of the design
ADAPTR_ARMS = ("A", "B")
ADAPTR_TRUE_YS = (0.20, 0.18)
#: adaptr's ``data_looks``: analyses after 100, 200, ..., 2000 patients
LOOK_EVERY, MAX_PATIENTS = 100, 2000
THRESHOLD = 0.99
#: the engine is calendar-driven: an outcome is known ``response_landmark_days`` (at least 1) after
#: enrolment, arrivals are a Poisson process. With one patient per 100 days on average, a look
#: held when patient 100 k + 1 arrives sees the outcomes of exactly the 100 k patients before it
#: unless patient 100 k arrived less than a day earlier (probability 1 - exp(-0.01) = 1.0%).
LANDMARK_DAYS = 1
ACCRUAL_PER_MONTH = 0.3
MAX_DAYS = 400_000  # 2000 patients take ~200,000 days at this accrual: never reached


def adaptr_two_arm(true_ys: tuple[float, float] = ADAPTR_TRUE_YS) -> tuple[dict, dict]:
    """adaptr's two-arm design as an ``adaptive`` config and scenario (YAML documents as dicts).

    ``true_ys``: adaptr's event probabilities of arms A and B (undesirable outcome); the
    scenario's response rates are ``1 - true_ys``.
    """
    names = list(ADAPTR_ARMS)
    cfg = {
        "schema_version": 1,
        "trial": {"name": "adaptr two-arm design (run_trials example, two arms, setup_trial_binom defaults)"},
        "endpoints": {"crc": {"model": {"kind": "independent", "prior": "uniform"}}},
        # rates: reference values the engine reports against (P(rate > null) per arm); no rule
        # of this design reads them
        "arms": {
            a: {
                "label": f"Arm {a}",
                "max_n": MAX_PATIENTS,
                "response_landmark_days": LANDMARK_DAYS,
                "rates": {"crc": {"null_rate": 1 - max(true_ys), "target_rate": 1 - min(true_ys)}},
            }
            for a in names
        },  # fmt: skip
        "routing": [{"cohort": "all", "arms": names, "allocation": dict.fromkeys(names, 1)}],
        "rules": [
            {"id": "sup", "kind": "superiority", "endpoint": "crc", "arms": names, "threshold": THRESHOLD}
        ],
        "randomization": [{"cohort": "all", "kind": "thall_wathen", "endpoint": "crc", "power": 1.0}],
        "looks": {
            # looks when patient 101, 201, ..., 1901 arrives: the outcomes of the 100, 200, ...
            # patients before are known; the last analysis (2000) is the final one
            "every_patients": LOOK_EVERY,
            "first_after_patients": LOOK_EVERY + 1,
            "max_patients": MAX_PATIENTS,
            "max_duration_days": MAX_DAYS,
            "final_analysis": True,
            "stop_trial_on": ["sup"],
        },
    }
    sc = {
        "name": "adaptr_example",
        "accrual_per_month": ACCRUAL_PER_MONTH,
        "response_days": [0, 0],
        "dropout_per_year": 0,
        "prevalence": {"new_drug_eligible": 0, "idh1": 0, "flt3": 0, "prior_venetoclax_3m": 0},
        "arms": {
            a: {"cr": round(1 - y, 12), "cri": 0, "pr": 0, "ne": 0, "mortality_30d": 1e-6,
                "mortality_60d": 2e-6, "median_os_days": 1e6}
            for a, y in zip(names, true_ys, strict=True)
        },
    }  # fmt: skip
    return cfg, sc


# ----------------------------------------------------------------------------- operating characteristics
def _prop(x: np.ndarray) -> tuple[float, float]:
    p = float(np.mean(x))
    return p, float(np.sqrt(p * (1 - p) / len(x)))


def _mean(x: np.ndarray) -> tuple[float, float]:
    return float(np.mean(x)), float(np.std(x, ddof=1) / np.sqrt(len(x)))


def oc_of(superior: np.ndarray, n: np.ndarray) -> dict[str, tuple[float, float]]:
    """Operating characteristics with their Monte Carlo standard errors, from per-trial results.

    ``superior``: the arm declared superior per trial ("" if none); ``n``: patients with outcome
    data at the last analysis.
    """
    return {
        "P(superiority)": _prop(superior != ""),
        "P(B superior)": _prop(superior == ADAPTR_ARMS[1]),
        "P(A superior)": _prop(superior == ADAPTR_ARMS[0]),
        f"P(stop before {MAX_PATIENTS})": _prop(n < MAX_PATIENTS),
        "E[N]": _mean(n.astype(float)),
    }


def adaptr_trials(csv: Path) -> tuple[np.ndarray, np.ndarray]:
    """adaptr's per-trial superior arm and sample size (``extract_results()`` written by the R script)."""
    import pandas as pd

    ex = pd.read_csv(csv)
    sup = np.where(ex["final_status"] == "superiority", ex["superior_arm"].fillna("").astype(str), "")
    return sup, ex["final_n"].to_numpy()


def engine_trials(parquet: Path) -> tuple[np.ndarray, np.ndarray]:
    """This package's per-trial superior arm and analysed sample size (``trials.parquet``).

    The superior arm is the partner of the arm dropped as inferior by the superiority rule. A
    trial stopped at a look has enrolled the patient whose arrival triggered it (100 k + 1), whose
    outcome was not yet known: the analysed sample size leaves that patient out.
    """
    import pandas as pd

    t = pd.read_parquet(parquet, columns=["trial", "arm", "decision", "n_enrolled", "stopped_by_rule"])
    wide = t.pivot(index="trial", columns="arm")
    dropped = wide["decision"] == "drop_inferior"
    a, b = ADAPTR_ARMS
    sup = np.where(dropped[a], b, np.where(dropped[b], a, ""))
    n = wide["n_enrolled"].sum(axis=1).to_numpy() - wide["stopped_by_rule"][a].to_numpy().astype(int)
    return sup, n


def oc_table(ocs: dict[str, dict[str, tuple[float, float]]], ns: dict[str, int]) -> str:
    """Markdown table: one row per characteristic, estimate (MCSE) per source, z of the difference.

    The difference (first source minus last) is shown only when there are two or more sources.
    """
    names = list(ocs)
    pair = len(names) > 1
    head = "| | " + " | ".join(f"{k} ({ns[k]:,} trials)" for k in names) + " |"
    lines = [head + (" difference (z) |" if pair else ""), "|" + "---|" * (len(names) + 1 + pair)]
    for m in ocs[names[0]]:
        cells = []
        for k in names:
            est, se = ocs[k][m]
            cells.append(f"{est:,.1f} ({se:.1f})" if m == "E[N]" else f"{est:.4f} ({se:.4f})")
        row = f"| {m} | " + " | ".join(cells) + " |"
        if pair:
            (e0, s0), (e1, s1) = ocs[names[0]][m], ocs[names[-1]][m]
            z = (e0 - e1) / np.hypot(s0, s1) if np.hypot(s0, s1) > 0 else 0.0
            diff = f"{e0 - e1:+,.1f}" if m == "E[N]" else f"{e0 - e1:+.4f}"
            row += f" {diff} ({z:+.1f}) |"
        lines.append(row)
    return "\n".join(lines)


# ----------------------------------------------------------------------------- timing
def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def run_adaptr(n_rep: int, seed: int, out: Path, cores: int = 2) -> dict:
    """One ``Rscript`` run; returns its JSON line (seconds of ``run_trials``, versions) and the CSV path."""
    csv = out / f"adaptr_{n_rep}_{seed}.csv"
    t = time.perf_counter()
    proc = subprocess.run(
        ["Rscript", str(R_SCRIPT), str(n_rep), str(seed), str(cores), str(csv)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - t
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    return {**info, "wall": wall, "csv": str(csv), "rate": n_rep / info["seconds"]}


def write_design(work: Path) -> tuple[Path, Path]:
    cfg, sc = adaptr_two_arm()
    (work / "adaptr_design.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    (work / "adaptr_example.yaml").write_text(yaml.safe_dump(sc, sort_keys=False))
    return work / "adaptr_design.yaml", work / "adaptr_example.yaml"


def run_cli(n_trials: int, seed: int, work: Path, workers: int = 2) -> dict:
    """The whole ``adaptive simulate`` command in a fresh process (imports, cluster, outputs)."""
    c, s = write_design(work)
    out = work / f"sim_{n_trials}_{seed}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "adaptive.cli", "simulate", "--config", str(c), "--scenario", str(s),
         "--trials", str(n_trials), "--seed", str(seed), "--workers", str(workers), "--quiet",
         "--out", str(out)],
        check=True, capture_output=True, env=env,
    )  # fmt: skip
    wall = time.perf_counter() - t
    return {"seconds": wall, "rate": n_trials / wall, "parquet": str(out / "trials.parquet")}


class WarmWorkers:
    """``run_trials`` on two Dask workers already started and warmed up (no start, no outputs)."""

    def __init__(self, cache: Path, chunk: int = 1000):
        from adaptive.simulate.run import Job, open_client, run_trials

        cfg, sc = adaptr_two_arm()
        self.job = Job(yaml.safe_dump(cfg), "c.yaml", yaml.safe_dump(sc), "s.yaml", False, str(cache))
        self.chunk = chunk
        self.client = open_client(workers=2)
        run_trials(self.job, 2 * chunk, 0, chunk_size=chunk, client=self.client)  # imports, kernels

    def time(self, n_trials: int, seed: int) -> dict:
        from adaptive.simulate.run import run_trials

        t = time.perf_counter()
        run_trials(self.job, n_trials, seed, chunk_size=self.chunk, client=self.client)
        dt = time.perf_counter() - t
        return {"trials": n_trials, "seconds": dt, "rate": n_trials / dt}

    def close(self) -> None:
        from adaptive.simulate.run import close_client

        close_client(self.client)


def _med(rows: list[dict], key: str = "rate") -> str:
    xs = [r[key] for r in rows]
    runs = f" ({', '.join(f'{x:,.0f}' for x in xs)})" if len(xs) > 1 else ""
    return f"{statistics.median(xs):,.0f}{runs}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="rounds of 10,000 trials each (the OCs pool them)")
    ap.add_argument("--large-runs", type=int, default=1, help="runs of 100,000 trials of this package")
    ap.add_argument("--no-adaptr", action="store_true", help="skip adaptr (no R needed)")
    ap.add_argument("--out", type=Path, default=None, help="results folder (default: a new temp folder)")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-adaptr-"))
    out.mkdir(parents=True, exist_ok=True)
    py = platform.python_version()
    print(f"machine: {platform.machine()} cores={os.cpu_count()} python={py} load={load()}")
    results: dict = {"load_start": load(), "rounds": [], "large": {}}
    per_trial: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"adaptr": [], "adaptive": []}
    if not args.no_adaptr and shutil.which("Rscript") is None:
        raise SystemExit("Rscript not found: install R and adaptr, or pass --no-adaptr")
    warm = WarmWorkers(out / "cache")
    try:
        # rounds of 10,000 trials, adaptr and this package interleaved: they share the machine's load
        for r in range(args.runs):
            row: dict = {"load_before": load()}
            if not args.no_adaptr:
                row["adaptr"] = run_adaptr(10_000, r + 1, out)
                per_trial["adaptr"].append(adaptr_trials(Path(row["adaptr"]["csv"])))
            row["simulate"] = run_cli(10_000, r + 1, out)
            per_trial["adaptive"].append(engine_trials(Path(row["simulate"]["parquet"])))
            row["warm"] = warm.time(10_000, 100 + r)
            row["load_after"] = load()
            results["rounds"].append(row)
            print(f"round {r + 1}, 10,000 trials, trials/s: " + ", ".join(
                f"{k} {row[k]['rate']:,.0f}" for k in ("adaptr", "simulate", "warm") if k in row
            ) + f"; load {row['load_before']} -> {row['load_after']}")  # fmt: skip
        for r in range(args.large_runs):
            row = {"load_before": load()}
            row["simulate"] = run_cli(100_000, 10 + r, out)
            per_trial["adaptive"].append(engine_trials(Path(row["simulate"]["parquet"])))
            row["warm"] = warm.time(100_000, 110 + r)
            row["load_after"] = load()
            results["large"].setdefault("runs", []).append(row)
            rates = f"simulate {row['simulate']['rate']:,.0f}, warm {row['warm']['rate']:,.0f}"
            print(f"100,000 trials, trials/s: {rates}; load {row['load_before']} -> {row['load_after']}")
    finally:
        warm.close()
    for k in ("adaptr", "simulate", "warm"):
        rows = [row[k] for row in results["rounds"] if k in row]
        if rows:
            print(f"median over rounds, 10,000 trials, {k}: {_med(rows)} trials/s")
    if not args.no_adaptr:
        t_large = 10 * statistics.median(row["adaptr"]["seconds"] for row in results["rounds"])
        print(f"adaptr 100,000 trials extrapolated (time linear in trials): {t_large:,.0f} s")
    ocs, ns = {}, {}
    for k, parts in per_trial.items():
        if parts:
            sup = np.concatenate([p[0] for p in parts])
            n = np.concatenate([p[1] for p in parts])
            ocs[k], ns[k] = oc_of(sup, n), len(n)
    results["oc"] = ocs
    results["load_end"] = load()
    print(oc_table(ocs, ns))
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print(f"load average at the end: {load()}; results in {out / 'results.json'}")


if __name__ == "__main__":
    main()
