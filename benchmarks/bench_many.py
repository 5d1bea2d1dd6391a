"""Many independent fits: serially in one process against a 2-worker Dask LocalCluster, measured in one run.

    .venv/bin/python benchmarks/bench_many.py [--fits 100] [--workers 2]

Each task simulates its own Chinchilla dataset (64 runs, seed = task number) and fits it (4 chains x 500
draws after 500 tuning steps). The serial run reuses one compiled model; the cluster's time includes
starting it and compiling once per worker. Prints both wall times, their ratio, and whether every fit's
numbers are identical.
"""

import argparse
import time

import numpy as np
import pandas as pd

from bayes_scaling.parallel import run_tasks

TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def one_fit(seed: int) -> tuple[float, float, float]:
    """Simulate a dataset and fit it: the median of alpha and E, and the max R-hat."""
    import warnings

    import bayes_scaling as bs

    rng = np.random.default_rng(seed)
    n = np.repeat(np.geomspace(2e7, 2e9, 8), 8)
    d = n * np.tile(np.geomspace(5, 200, 8), 8)
    mean = TRUTH["E"] + TRUTH["A"] / n ** TRUTH["alpha"] + TRUTH["B"] / d ** TRUTH["beta"]
    runs = pd.DataFrame({"n_params": n, "n_tokens": d, "loss": mean * np.exp(rng.normal(0, 0.01, n.size))})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bs.fit(runs, draws=500, tune=500, seed=seed, progressbar=False)
    return float(np.median(fit.draws("alpha"))), float(np.median(fit.draws("E"))), fit.diagnostics["max_r_hat"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fits", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    seeds = list(range(args.fits))

    start = time.perf_counter()
    serial = run_tasks(one_fit, seeds, progressbar=False)
    serial_s = time.perf_counter() - start

    from distributed import Client, LocalCluster

    start = time.perf_counter()
    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None)
    with cluster, Client(cluster) as client:
        spread = run_tasks(one_fit, seeds, client=client, progressbar=False)
    cluster_s = time.perf_counter() - start

    failed = sum(bool(o.error) for o in serial + spread)
    print(
        f"{args.fits} fits: serial {serial_s:.1f} s, {args.workers}-worker LocalCluster {cluster_s:.1f} s "
        f"(start-up and a compile per worker included): ratio {cluster_s / serial_s:.2f}; "
        f"identical results: {serial == spread}; failed tasks: {failed}"
    )


if __name__ == "__main__":
    main()
