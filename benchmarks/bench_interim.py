"""Wall time of `adaptive interim` on the bundled synthetic trial: cold, warm and cached.

cold: fresh PyTensor compile dir and Numba cache (every model compiled from scratch);
warm: the same caches reused across runs (what a scheduled rerun on one machine sees).
Each cold/warm run is a new process, timed end to end, including imports.
cached: further looks in one long-lived process after a first one, so the compiled models are
reused from memory (models.sampling's cache) and only sampling, diagnostics and output remain.
Prints the median of --runs for each.

    python benchmarks/bench_interim.py --runs 3
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
CMD = [
    "adaptive",
    "interim",
    "--config",
    str(ROOT / "configs/rr_aml.yaml"),
    "--data",
    str(ROOT / "examples/rr_aml_synthetic.csv"),
    "--cutoff",
    "2026-10-31",
]


def run_once(out: Path, cache: Path) -> float:
    env = dict(os.environ)
    env["PYTENSOR_FLAGS"] = f"compiledir={cache / 'pytensor'}"
    env["NUMBA_CACHE_DIR"] = str(cache / "numba")
    # a ledger per run: runs sharing the default ledger (beside --out) would find the first run's
    # look on the same inputs and return at once, writing nothing
    ledger = out.with_name(out.name + "-ledger.sqlite")
    t0 = time.perf_counter()
    subprocess.run(
        [*CMD, "--out", str(out), "--ledger", str(ledger)], check=True, env=env, stdout=subprocess.DEVNULL
    )
    return time.perf_counter() - t0


CACHED = """
import json, sys, time, warnings
from datetime import date
warnings.filterwarnings("ignore")
from adaptive.interim import run_interim
out, n = sys.argv[1], int(sys.argv[2])
args = (sys.argv[3], sys.argv[4], date(2026, 10, 31))
run_interim(*args, out + "/first")
times = []
for i in range(n):
    t0 = time.perf_counter()
    run_interim(*args, out + f"/again-{i}")
    times.append(time.perf_counter() - t0)
print(json.dumps(times))
"""


def run_cached(out: Path, cache: Path, runs: int) -> list[float]:
    env = dict(os.environ)
    env["PYTENSOR_FLAGS"] = f"compiledir={cache / 'pytensor'}"
    env["NUMBA_CACHE_DIR"] = str(cache / "numba")
    config, data = ROOT / "configs/rr_aml.yaml", ROOT / "examples/rr_aml_synthetic.csv"
    args = [str(out), str(runs), str(config), str(data)]
    res = subprocess.run(
        [sys.executable, "-c", CACHED, *args], check=True, env=env, capture_output=True, text=True
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-interim-"))
    cold, warm = [], []
    try:
        for i in range(args.runs):
            cache = work / f"cold-cache-{i}"
            cold.append(run_once(work / f"cold-{i}", cache))
        warm_cache = work / "warm-cache"
        run_once(work / "warm-prime", warm_cache)
        for i in range(args.runs):
            warm.append(run_once(work / f"warm-{i}", warm_cache))
        (work / "cached").mkdir()
        cached = run_cached(work / "cached", warm_cache, args.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
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
