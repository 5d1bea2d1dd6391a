"""The command line's fit of the 245 Epoch runs against the peer's (``simple-scaling-laws``, its default law
and 1000 bootstrap refits), whole processes from start to exit, timed in turns in one run.

    .venv/bin/python benchmarks/bench_cli.py [--reps 5] [--data PATH]

Rows: ``bayes-scaling fit DATA --law chinchilla --json`` in a first-ever process (empty compile caches) and in
a second process (the caches the first left), and ``scaling-laws fit`` on the same runs. The runs alternate
(ours, the peer's, ours, ...) so a drift in the machine's speed moves both; the ratios are medians of the
pairwise ratios. Without the peer installed (``pip install simple-scaling-laws``) only our times print.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "epoch_chinchilla" / "chinchilla_fig4_epoch.csv"
BIN = Path(sys.executable).parent


def wall(command: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--data", default=str(DATA))
    args = parser.parse_args()
    ours = [str(BIN / "bayes-scaling"), "fit", args.data, "--law", "chinchilla", "--json"]
    peer_bin = shutil.which("scaling-laws", path=str(BIN))
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={tmp}/pytensor", "NUMBA_CACHE_DIR": f"{tmp}/numba"}
        peer = None
        if peer_bin:
            import pandas as pd

            runs = pd.read_csv(args.data)
            table = Path(tmp) / "peer.csv"
            pd.DataFrame(
                {
                    "training_run_id": [f"run{i}" for i in range(len(runs))],
                    "model_size__n_params": runs["n_params"],
                    "dataset_size__n_tokens": runs["n_tokens"],
                    "test_loss__loss": runs["loss"],
                }
            ).to_csv(table, index=False)
            peer = [peer_bin, "fit", str(table), "--output", f"{tmp}/fit.slaw", "--quiet"]
            wall(peer)  # its own first run (imports into the page cache)
        times: dict[str, list[float]] = {"first process": [], "second process": [], "peer": []}
        for _ in range(args.reps):
            for kind in ("first process", "second process"):
                if kind == "first process":
                    shutil.rmtree(f"{tmp}/pytensor", ignore_errors=True)
                    shutil.rmtree(f"{tmp}/numba", ignore_errors=True)
                times[kind].append(wall(ours, env))
            if peer:
                shutil.rmtree(f"{tmp}/fit.slaw", ignore_errors=True)
                times["peer"].append(wall(peer))
    print(f"bayes-scaling fit of {Path(args.data).name}, whole processes, median of {args.reps} (min-max):")
    for kind, values in times.items():
        if values:
            print(f"  {kind:15s} {statistics.median(values):6.2f} s ({min(values):.2f}-{max(values):.2f})")
    if times["peer"]:
        for kind in ("first process", "second process"):
            ratio = statistics.median(a / b for a, b in zip(times[kind], times["peer"], strict=True))
            print(f"  {kind} / peer: {ratio:.2f}x (median of the pairwise ratios)")


if __name__ == "__main__":
    main()
