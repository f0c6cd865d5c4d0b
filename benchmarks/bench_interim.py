"""Wall time of `adaptive interim` on the bundled synthetic trial, cold and warm.

cold: fresh PyTensor compile dir and Numba cache (every model compiled from scratch);
warm: the same caches reused across runs (what a scheduled rerun on one machine sees).
Each run is a new process, timed end to end, including imports. Prints the median of --runs.

    python benchmarks/bench_interim.py --runs 3
"""

from __future__ import annotations

import argparse
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
    t0 = time.perf_counter()
    subprocess.run([*CMD, "--out", str(out)], check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


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
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"machine: {platform.machine()} {platform.processor() or ''} cores={os.cpu_count()} "
        f"python={platform.python_version()}"
    )
    print(f"cold runs (s): {[round(x, 1) for x in cold]}  median {statistics.median(cold):.1f}")
    print(f"warm runs (s): {[round(x, 1) for x in warm]}  median {statistics.median(warm):.1f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
