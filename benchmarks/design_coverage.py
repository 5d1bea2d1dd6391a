"""Why the design study's bands over-cover from few runs: a diagnostic of the predictive band's parts.

    .venv/bin/python benchmarks/design_coverage.py [--seeds 2]

On the runs benchmarks/design.py chooses (design, random, cheapest-first at each budget, and the whole
pool), the coverage of the targets by the 50% and 90% bands of a new run built four ways from the same
posterior draws (the law's curve, the discrepancy's draws and the noise, on the log scale):

- `law`: the curve and the noise, no discrepancy;
- `sum`: the package's band, the discrepancy added (kappa * sigma * z * distance);
- `floor`: the discrepancy as a floor on the curve's own spread, scaled at each target so that the two
  together have the larger of their variances (does the curve's uncertainty already hold the tilt?);
- `dense_sigma`: the discrepancy in units of the whole pool's noise scale instead of the subset's own
  (an oracle: it uses the pool's fit), which asks whether the subsets' larger sigma makes the excess;
- `trend_sigma`: no oracle. The noise and the discrepancy's unit follow compute, as the subset's own fit
  shows it: the slope of its runs' log absolute residuals against log compute (least squares), sigma at a
  target scaled by that slope from the runs' mean log compute to the target's (held at the largest run's
  beyond it). What a noise scale that follows compute could give, before building it into the model.

Also the median ratio of the curve's variance to the discrepancy's at the targets (`curve/disc`) and the
posterior median of sigma, and, on the whole pool's fit, the median absolute residual of its runs (log
scale, from the curve's median) in each quarter of the pool by compute: does the scatter shrink as runs
grow (so that the few cheapest runs inflate a subset's sigma)? Writes benchmarks/design_coverage_results.md.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import bayes_scaling as bs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from design import DATASETS, FRACTIONS, SETTINGS, START, choose, split
from downstream import markdown


def coverage(fit: bs.ScalingFit, targets: pd.DataFrame, dense_sigma: float) -> dict[str, float]:
    """Coverage of the targets by each way of building the band (see the module's docstring), and its parts'
    sizes."""
    rng = np.random.default_rng(0)
    values, _, codes = fit._prediction_inputs(targets[["n_params", "n_tokens"]], {}, None)
    curve = fit.curve(values, codes, rng)
    noise = fit.observation.noise(fit.posterior, codes, rng)
    delta = fit._delta(fit.distance(values, codes), noise["sigma"], fit._tilt(codes, rng))
    eps = fit.observation.sample(curve, noise, rng) - curve
    observed = np.log(targets["loss"].to_numpy(float))
    curve_var, delta_var = curve.var(axis=0), np.square(delta).mean(axis=0)
    runs = fit.runs.inputs
    residual = np.log(fit.runs.loss) - np.median(fit.curve(runs, fit.runs.group, rng), axis=0)
    at_runs = np.log10(fit.law.compute_flops(**runs))
    slope = np.polyfit(at_runs, np.log10(np.abs(residual) + 1e-9), 1)[0]
    at_targets = np.minimum(np.log10(fit.law.compute_flops(**values)), at_runs.max())
    trend = 10 ** (slope * (at_targets - at_runs.mean()))
    bands = {  # each band: how much of the discrepancy's draws and of the noise's it takes
        "law": (0.0, 1.0),
        "sum": (1.0, 1.0),
        "floor": (np.sqrt(np.clip(1 - curve_var / delta_var, 0, None)), 1.0),
        "dense_sigma": (dense_sigma / noise["sigma"], 1.0),
        "trend_sigma": (trend, trend),
    }
    out = {}
    for band, (of_delta, of_noise) in bands.items():
        draws = curve + of_delta * delta + of_noise * eps
        for prob in (50, 90):
            lower, upper = np.percentile(draws, [50 - prob / 2, 50 + prob / 2], axis=0)
            out[f"{band}_{prob}"] = float(np.mean((observed >= lower) & (observed <= upper)))
    out["curve/disc"] = float(np.median(curve_var / delta_var))
    out["trend slope"] = float(slope)
    out["sigma"] = float(np.median(noise["sigma"]))
    return out


def scatter_by_compute(fit: bs.ScalingFit, pool: pd.DataFrame) -> dict[str, float]:
    """Median absolute log residual of the fitted runs in each quarter of them by compute."""
    residual = np.abs(np.log(pool["loss"].to_numpy(float) / fit.predict(pool, kind="mean", seed=0)["median"]))
    quarter = pd.qcut(pool["flops"], 4, labels=False).to_numpy()
    return {f"quarter {q + 1}": float(np.median(residual[quarter == q])) for q in range(4)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    rows, scatter = [], []
    for name in DATASETS:
        pool, targets = split(name)
        cost = pool["flops"].to_numpy()
        start = list(np.argsort(cost)[:START])
        for seed in range(args.seeds):
            full = bs.fit(pool, law="chinchilla", seed=seed, **SETTINGS)
            dense = float(np.median(full.draws("sigma")))
            if seed == 0:
                scatter.append({"dataset": name, **scatter_by_compute(full, pool)})
            rows.append({"dataset": name, "strategy": "full", **coverage(full, targets, dense)})
            for strategy in ("design", "random", "cheapest"):
                rng, chosen = np.random.default_rng(seed), list(start)
                fit = bs.fit(pool.iloc[chosen], law="chinchilla", seed=seed, **SETTINGS)
                for fraction in FRACTIONS:
                    left = fraction * cost.sum() - cost[chosen].sum()
                    chosen += choose(strategy, fit, pool, chosen, targets, left, rng)
                    fit = bs.fit(pool.iloc[chosen], law="chinchilla", seed=seed, **SETTINGS)
                    rows.append({"dataset": name, "strategy": strategy, **coverage(fit, targets, dense)})
            print(f"{name} seed {seed}", flush=True)
    table = pd.DataFrame(rows)
    pooled = table.groupby("strategy", sort=False).mean(numeric_only=True).round(3).reset_index()
    each = table.groupby(["dataset", "strategy"], sort=False).mean(numeric_only=True).round(3).reset_index()
    print(pooled.to_string(index=False))
    Path(__file__).with_name("design_coverage_results.md").write_text(
        f"# The parts of the design study's bands (benchmarks/design_coverage.py, {args.seeds} seeds)\n\n"
        "Coverage of the targets, mean over the budgets (0.02-0.5 of the pool's FLOPs), seeds and datasets; "
        "`full`: the whole pool.\n\n" + markdown(pooled) + "\n\nBy dataset:\n\n" + markdown(each) + "\n\n"
        "Median absolute log residual of the pool's runs by quarter of compute (1: the cheapest), whole-pool fit, "
        "seed 0:\n\n" + markdown(pd.DataFrame(scatter).round(4)) + "\n"
    )


if __name__ == "__main__":
    main()
