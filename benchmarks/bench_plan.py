"""Time of one suggest_runs call on 200 candidates after the fit (the issue asks <= 10 s).

    .venv/bin/python benchmarks/bench_plan.py

Fits Gadre et al.'s C4 runs under 500M parameters (4 chains x 1000 draws), then plans on a 20 x 10 grid
of sizes and token counts for a loss target (the 6.9B run's) and for N_opt at 1e22 FLOPs; prints the median
of 5 calls of each, the runs chosen and the expected widths.
"""

import time
import warnings

import numpy as np

import bayes_scaling as bs


def main() -> None:
    warnings.simplefilter("ignore")
    runs = bs.load_dataset("gadre2024")
    c4 = runs[(runs["dataset"] == "c4_original") & (runs["n_params"] < 5e8)]
    fit = bs.fit(c4, law="chinchilla", seed=1, progressbar=False)
    grid = {"n_params": np.geomspace(2e7, 2e9, 20), "n_tokens": np.geomspace(4e8, 4e11, 10)}
    for target, C in (({"N": 6.9e9, "D": 1.4e11}, None), ("N_opt", 1e22)):
        times = []
        for _ in range(5):
            start = time.perf_counter()
            plan = fit.suggest_runs(grid, target=target, C=C, budget=1e21, seed=0)
            times.append(time.perf_counter() - start)
        print(
            f"target {target}: {np.median(times):.3f} s per call (median of 5, 200 candidates); {len(plan)} runs "
            f"chosen; 90% width {plan.attrs['width_now']:.4g} now, {plan['eti90_width'].iloc[-1]:.4g} after"
        )


if __name__ == "__main__":
    main()
