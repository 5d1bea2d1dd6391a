"""The saving from reusing compiled models in a rolling-origin backtest, measured in one run.

    .venv/bin/python benchmarks/bench_backtest.py [--data PATH]

Runs ``bs.backtest`` (chinchilla and kaplan_nd, three cut points, 4 chains x 1000 draws) twice in fresh
processes: as shipped (each law compiles once, refits swap the data in) and with the compile cache
disabled (every refit compiles). Prints each one's wall time and compile seconds, and the ratio.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "epoch_chinchilla" / "chinchilla_fig4_epoch.csv"


def worker(data: str, reuse: bool) -> dict:
    import bayes_scaling as bs

    cache = bs.compile_cache if reuse else bs.CompileCache(maxsize=0)  # maxsize 0: every fit compiles
    start = time.perf_counter()
    table = bs.backtest(
        data, laws=["chinchilla", "kaplan_nd"], holdout=[0.4, 0.3, 0.2], seed=1, progressbar=False, cache=cache
    )
    return {
        "wall": time.perf_counter() - start,
        "compile": float(table["compile_seconds"].sum()),
        "fits": len(table),
        "lpd": table["lpd"].round(1).tolist(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--worker", choices=("reuse", "recompile"), default=None)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.data, args.worker == "reuse")))
        return
    out = {}
    for mode in ("reuse", "recompile"):
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", mode, "--data", args.data],
            capture_output=True,
            text=True,
            check=True,
        )
        out[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    for mode, r in out.items():
        print(f"{mode:10s} {r['fits']} fits: wall {r['wall']:.1f} s, of which compiling {r['compile']:.1f} s")
    print(
        f"reusing compiled models: {out['recompile']['wall'] / out['reuse']['wall']:.2f}x faster in wall time, "
        f"compile time {out['recompile']['compile']:.1f} s -> {out['reuse']['compile']:.1f} s"
    )


if __name__ == "__main__":
    main()
