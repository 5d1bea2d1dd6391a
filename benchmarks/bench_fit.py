"""Time ``bs.fit`` on the 245 digitised Chinchilla runs: nutpie (the default ``adaptation="auto"``, and the
diagonal and low-rank mass matrices alone) against PyMC's own NUTS, in one run.

    .venv/bin/python benchmarks/bench_fit.py [--reps 3] [--data PATH | --data gadre2024:c4_original]

``--data NAME:VALUE`` fits the rows of a bundled dataset whose ``dataset`` column is VALUE (Gadre et al.'s 34
C4 runs above).

Each sampler runs in fresh worker processes twice: first with empty compile caches (cold), then with the
caches the first left behind (warm). Within a worker the first fit compiles; further fits of the same law
reuse the compiled model (data swapped in) and time sampling alone: 4 chains x 1000 tune + 1000 draws.
Prints medians over the repetitions, ESS per second (min bulk ESS over all parameters / sampling
seconds), peak memory, and the nutpie / PyMC ratios measured in this same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "epoch_chinchilla" / "chinchilla_fig4_epoch.csv"


def worker(sampler: str, data: str, reps: int) -> dict:
    sampler, _, adaptation = sampler.partition(":")
    import bayes_scaling as bs

    if ":" in data and not Path(data).exists():  # a bundled dataset's rows of one `dataset`
        name, _, value = data.partition(":")
        table = bs.load_dataset(name)
        data = table[table["dataset"] == value]
    rows = []
    for rep in range(reps + 1):  # rep 0 compiles; the others reuse the compiled model
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = bs.fit(
                data,
                law="chinchilla",
                sampler=sampler,
                seed=100 + rep,
                progressbar=False,
                adaptation=adaptation or "auto",
            )
        wall = time.perf_counter() - start
        sampling = fit.settings["sample_seconds"]
        if sampler == "pymc":  # pm.sample compiles inside; its own record of the sampling loop
            sampling = float(fit.tree["posterior"].attrs["sampling_time"])
        d = fit.diagnostics
        rows.append(
            {
                "wall": wall,
                "sampling": sampling,
                "setup": wall - sampling,
                "ess": d["min_ess_bulk"],
                "divergences": d["divergences"],
                "r_hat": d["max_r_hat"],
                "restarted": "restarted" in fit.settings,
            }
        )
    return {
        "first": rows[0],
        "repeat": rows[1:],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_worker(sampler: str, data: str, reps: int, cache: str) -> dict:
    env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={cache}/pytensor", "NUMBA_CACHE_DIR": f"{cache}/numba"}
    out = subprocess.run(
        [sys.executable, __file__, "--worker", sampler, "--data", data, "--reps", str(reps)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--worker", default=None)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.data, args.reps)))
        return
    results = {}
    for sampler in ("nutpie", "nutpie:diag", "nutpie:low_rank", "pymc"):
        with tempfile.TemporaryDirectory() as cache:
            cold = run_worker(sampler, args.data, args.reps, cache)
            warm = run_worker(sampler, args.data, 0, cache)
        reps = cold["repeat"]
        sampling = statistics.median(r["sampling"] for r in reps)
        results[sampler] = {
            "compile_cold": cold["first"]["setup"],
            "compile_warm": warm["first"]["setup"],
            "refit_setup": statistics.median(r["setup"] for r in reps),
            "sampling": sampling,
            "ess_per_s": statistics.median(r["ess"] / r["sampling"] for r in reps),
            "divergences": max(r["divergences"] for r in [cold["first"], *reps]),
            "max_r_hat": max(r["r_hat"] for r in [cold["first"], *reps]),
            "peak_rss_mb": max(cold["peak_rss_mb"], warm["peak_rss_mb"]),
            "restarts": sum(r["restarted"] for r in [cold["first"], *reps]),
        }
    print(
        f"bs.fit, chinchilla, {args.data}: 4 chains x (1000 tune + 1000 draws); medians of {args.reps} refits; "
        "nutpie = adaptation 'auto' (restarts: low-rank runs sampled again with the diagonal mass matrix)"
    )
    header = (
        "compile_cold",
        "compile_warm",
        "refit_setup",
        "sampling",
        "ess_per_s",
        "divergences",
        "max_r_hat",
        "peak_rss_mb",
        "restarts",
    )
    print(f"{'sampler':16s}" + "".join(f"{h:>14s}" for h in header))
    for sampler, r in results.items():
        print(f"{sampler:16s}" + "".join(f"{r[h]:14.3f}" if isinstance(r[h], float) else f"{r[h]:14d}" for h in header))
    nut, pymc = results["nutpie"], results["pymc"]
    print(
        f"sampling speed-up nutpie vs PyMC NUTS: {pymc['sampling'] / nut['sampling']:.1f}x; "
        f"ESS/s ratio: {nut['ess_per_s'] / pymc['ess_per_s']:.1f}x; "
        f"compile cold / warm / refit: nutpie {nut['compile_cold']:.1f} / {nut['compile_warm']:.1f} / "
        f"{nut['refit_setup']:.2f} s, PyMC {pymc['compile_cold']:.1f} / {pymc['compile_warm']:.1f} / "
        f"{pymc['refit_setup']:.2f} s"
    )
    for name in ("nutpie:diag", "nutpie:low_rank"):
        alone = results[name]
        print(
            f"{name} vs PyMC NUTS: sampling {pymc['sampling'] / alone['sampling']:.1f}x, "
            f"ESS/s {alone['ess_per_s'] / pymc['ess_per_s']:.1f}x"
        )


if __name__ == "__main__":
    main()
