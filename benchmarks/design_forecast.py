"""How well suggest_runs' forecast tracks the refit it forecasts, on real data: for each strategy's choice of
runs in benchmarks/design.py (design, random, cheapest-first, space-filling), the width suggest_runs
expects for the targets' 90% interval once exactly those runs are trained (the last row of a plan whose
candidates are those runs and whose budget is their cost; a run expected to remove under 0.1% of today's
variance is left out), against the width the refit gives (its own ``width_now``, the same quantity: the
law's curve and the discrepancy, without a new run's noise), and the refit's error at the targets.

    .venv/bin/python benchmarks/design_forecast.py [--only NAME ...] [--fractions 0.05 0.25] [--seed 0]

Prints one row per dataset, budget and strategy, then per dataset and budget the rank correlation of
forecast and realised widths across the four strategies (does the forecast order the choices as the refits
do?) and the median ratio realised / forecast. ``law_alone`` is the start fit's band without the
discrepancy: how much of today's width the runs' distance from the targets makes.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

import bayes_scaling as bs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from design import DATASETS, SETTINGS, START, choose, score, split


def width(fit: bs.ScalingFit, targets: pd.DataFrame, runs: pd.DataFrame | None = None) -> float:
    """The targets' expected 90% width once ``runs`` are trained (today's with none)."""
    inputs = targets[["n_params", "n_tokens"]]
    if runs is None or runs.empty:
        return fit.suggest_runs(inputs.iloc[:1], target=inputs, budget=1.0, cost="1").attrs["width_now"]
    plan = fit.suggest_runs(runs[["n_params", "n_tokens"]], target=inputs, budget=float(runs["flops"].sum()) * 1.001)
    return float(plan["eti90_width"].iloc[-1]) if len(plan) else plan.attrs["width_now"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--fractions", nargs="*", type=float, default=[0.05, 0.25])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    rows = []
    for name in args.only:
        pool, targets = split(name)
        cost = pool["flops"].to_numpy()
        start = list(np.argsort(cost)[:START])
        fit = bs.fit(pool.iloc[start], law="chinchilla", seed=args.seed, **SETTINGS)
        now = width(fit, targets)
        alone = width(fit.with_discrepancy(None), targets)  # the law's band alone: what runs can narrow but distance
        print(f"{name}: targets' 90% width from the start fit {now:.4g}, of the law alone {alone:.4g}", flush=True)
        for fraction in args.fractions:
            left = fraction * cost.sum() - cost[start].sum()
            for strategy in ("design", "random", "cheapest", "grid"):
                added = choose(strategy, fit, pool, list(start), targets, left, np.random.default_rng(args.seed))
                refit = bs.fit(pool.iloc[start + added], law="chinchilla", seed=args.seed, **SETTINGS)
                row = {
                    "dataset": name,
                    "fraction": fraction,
                    "strategy": strategy,
                    "runs": len(added),
                    "width_now": now,
                    "law_alone": alone,
                    "forecast": width(fit, targets, pool.iloc[added]),
                    "realised": width(refit, targets),
                    "mdape": score(refit, targets)["mdape"],
                }
                rows.append(row)
                print({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    table = pd.DataFrame(rows)
    table["ratio"] = table["realised"] / table["forecast"]
    summary = table.groupby(["dataset", "fraction"]).apply(
        lambda t: pd.Series(
            {
                "rank_corr": stats.spearmanr(t["forecast"], t["realised"]).statistic,
                "median_ratio": t["ratio"].median(),
            }
        ),
        include_groups=False,
    )
    with pd.option_context("display.width", 160, "display.max_rows", 200):
        print(table.round(4).to_string(index=False))
        print(summary.round(3))


if __name__ == "__main__":
    main()
