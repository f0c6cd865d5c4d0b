"""Wall time of `adaptive interim` on the bundled synthetic trial: cold, warm and cached.

cold: fresh PyTensor compile dir and Numba cache (every model compiled from scratch);
warm: the same caches reused across runs (what a scheduled rerun on one machine sees).
Each cold/warm run is a new process, timed end to end, including imports.
cached: further looks in one long-lived process after a first one, so the compiled models are
reused from memory (models.sampling's cache) and only sampling, diagnostics and output remain.
Prints the median of --runs for each.

    python benchmarks/bench_interim.py --runs 3
    python benchmarks/bench_interim.py --runs 3 --patients 300
    python benchmarks/bench_interim.py --runs 3 --no-panel   # without the robustness panel

--patients N: instead of the bundled 220-patient trial, a trial of N patients synthesized with the
bundled realistic scenario (seed 7), looked at on the last date in its export.
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

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs/rr_aml.yaml"
BUNDLED = (ROOT / "examples/rr_aml_synthetic.csv", "2026-10-31")


def synthesize(n: int, work: Path) -> tuple[Path, str]:
    """A trial of ``n`` patients from the realistic scenario, and its last recorded date."""
    import pandas as pd

    path = work / f"trial-{n}.csv"
    scenario = ROOT / "configs/scenarios/realistic.yaml"
    subprocess.run(
        ["adaptive", "synth", "--config", str(CONFIG), "--scenario", str(scenario), "--n", str(n)]
        + ["--seed", "7", "--out", str(path)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    frame = pd.read_csv(path, dtype=str)
    dates = frame[[c for c in frame.columns if c.endswith("_on")]].stack()
    return path, max(dates)


def without_panel(work: Path) -> Path:
    """The bundled config without its declared alternative analyses (no robustness panel)."""
    import yaml

    doc = yaml.safe_load(CONFIG.read_text())
    doc = {k: v for k, v in doc.items() if not k.startswith("x-")}
    doc["sensitivity"]["analyses"] = []
    path = work / "rr_aml-no-panel.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def run_once(out: Path, cache: Path, data: Path, cutoff: str) -> float:
    env = dict(os.environ)
    env["PYTENSOR_FLAGS"] = f"compiledir={cache / 'pytensor'}"
    env["NUMBA_CACHE_DIR"] = str(cache / "numba")
    # a ledger per run: runs sharing the default ledger (beside --out) would find the first run's
    # look on the same inputs and return at once, writing nothing
    ledger = out.with_name(out.name + "-ledger.sqlite")
    cmd = ["adaptive", "interim", "--config", str(CONFIG), "--data", str(data), "--cutoff", cutoff]
    t0 = time.perf_counter()
    subprocess.run(
        [*cmd, "--out", str(out), "--ledger", str(ledger)], check=True, env=env, stdout=subprocess.DEVNULL
    )
    return time.perf_counter() - t0


CACHED = """
import json, sys, time, warnings
from datetime import date
warnings.filterwarnings("ignore")
from adaptive.interim import run_interim
out, n = sys.argv[1], int(sys.argv[2])
args = (sys.argv[3], sys.argv[4], date.fromisoformat(sys.argv[5]))
run_interim(*args, out + "/first")
times = []
for i in range(n):
    t0 = time.perf_counter()
    run_interim(*args, out + f"/again-{i}")
    times.append(time.perf_counter() - t0)
print(json.dumps(times))
"""


def run_cached(out: Path, cache: Path, runs: int, data: Path, cutoff: str) -> list[float]:
    env = dict(os.environ)
    env["PYTENSOR_FLAGS"] = f"compiledir={cache / 'pytensor'}"
    env["NUMBA_CACHE_DIR"] = str(cache / "numba")
    args = [str(out), str(runs), str(CONFIG), str(data), cutoff]
    res = subprocess.run(
        [sys.executable, "-c", CACHED, *args], check=True, env=env, capture_output=True, text=True
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--patients", type=int, default=None, help="synthesize a trial of this size")
    ap.add_argument("--no-panel", action="store_true", help="without the robustness panel's analyses")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-interim-"))
    if args.no_panel:
        global CONFIG
        CONFIG = without_panel(work)
    cold, warm = [], []
    try:
        look = synthesize(args.patients, work) if args.patients else BUNDLED
        data, cutoff = look
        with open(data) as fh:
            n_patients = sum(1 for _ in fh) - 1
        for i in range(args.runs):
            cache = work / f"cold-cache-{i}"
            cold.append(run_once(work / f"cold-{i}", cache, *look))
        warm_cache = work / "warm-cache"
        run_once(work / "warm-prime", warm_cache, *look)
        for i in range(args.runs):
            warm.append(run_once(work / f"warm-{i}", warm_cache, *look))
        (work / "cached").mkdir()
        cached = run_cached(work / "cached", warm_cache, args.runs, *look)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"data: {data.name} ({n_patients} patients), cutoff {cutoff}, config {CONFIG.name}")
    print(
        f"machine: {platform.machine()} {platform.processor() or ''} cores={os.cpu_count()} "
        f"python={platform.python_version()}"
    )
    print(f"cold runs (s): {[round(x, 1) for x in cold]}  median {statistics.median(cold):.1f}")
    print(f"warm runs (s): {[round(x, 1) for x in warm]}  median {statistics.median(warm):.1f}")
    print(f"cached runs (s): {[round(x, 1) for x in cached]}  median {statistics.median(cached):.1f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
