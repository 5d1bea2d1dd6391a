"""Retrospective experiment-design study on real data: which small runs to pay for before the big one?

    .venv/bin/python benchmarks/design.py [--only NAME ...] [--seeds 5] [--out benchmarks/design_results.csv]

For each dataset the targets are its largest runs (the top 20% by compute 6ND, or the dataset's own split,
as in benchmarks/calibration.py) and the pool is the rest. Every strategy starts from the pool's START
cheapest runs and, budget by budget (a fraction of the pool's FLOPs), adds pool runs until the next run
would overspend:

- `design`: `ScalingFit.suggest_runs` on the fit of the runs so far, target the targets' loss at their
  (N, D), candidates the pool runs not yet chosen;
- `design_law`: the same, planned on the fit without its discrepancy (the law's uncertainty alone: the
  median's error is the law's, the discrepancy only widens the band);
- `random`: the pool in a random order (seeded), each run that still fits;
- `cheapest`: cheapest first;
- `grid`: space-filling in (log N, log D): the run farthest from those chosen, among those that still fit.

At each budget the chosen runs are fitted (the package defaults: Chinchilla law, discrepancy on) and the
targets scored: MdAPE of the median, median relative width of the 90% interval of a new run, coverage of
its 50% and 90% intervals. `full` is the fit of the whole pool. Rows are medians over seeds; the raw
rows go to --out.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import bayes_scaling as bs
from bayes_scaling.observation import gaps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calibration import Spec, _beck, _gadre, _li, _porian, ordering, top

ROOT = Path(__file__).resolve().parents[1]
#: Budgets, as fractions of the pool's FLOPs, and the number of cheapest runs every strategy starts from.
FRACTIONS = (0.02, 0.05, 0.1, 0.25, 0.5)
START = 8
STRATEGIES = ("design", "design_law", "random", "cheapest", "grid")
SETTINGS = {"chains": 4, "draws": 500, "tune": 500, "progressbar": False}

DATASETS = {
    "gadre_c4": (lambda: _gadre("c4_original"), lambda f: f["n_params"].to_numpy() >= 5e8),
    "porian_rw_cosine": (lambda: _porian("rw|base|short|chinchilla|standard|val"), None),
    "li2025": (_li, None),
    "beck_llama_ctx8192": (lambda: _beck("isoflop_llama_ctx8192"), None),
}


def split(name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The pool and the targets of a dataset, with a ``flops`` column (6ND)."""
    load, heldout = DATASETS[name]
    runs = load()
    runs = runs.assign(flops=6 * runs["n_params"].to_numpy(float) * runs["n_tokens"].to_numpy(float))
    held = heldout(runs) if heldout else top(ordering(Spec(name, name, load), runs), 0.2)
    return runs[~held].reset_index(drop=True), runs[held].reset_index(drop=True)


def choose(
    strategy: str, fit: bs.ScalingFit | None, pool: pd.DataFrame, chosen: list[int], targets, left: float, rng
) -> list[int]:
    """Pool rows (by position) to add with ``left`` FLOPs to spend."""
    rest = [i for i in range(len(pool)) if i not in chosen]
    cost = pool["flops"].to_numpy()
    if left <= 0:  # the start alone spends more than this budget
        return []
    if strategy in ("design", "design_law"):
        if not rest:
            return []
        planner = fit.with_discrepancy(None) if strategy == "design_law" else fit
        plan = planner.suggest_runs(pool.iloc[rest], target=targets[["n_params", "n_tokens"]], budget=left, seed=0)
        return list(plan.index)  # the pool's index is its positions
    if strategy == "random":
        order = list(rng.permutation(rest))
    elif strategy == "cheapest":
        order = sorted(rest, key=lambda i: cost[i])
    else:  # grid: farthest point in decades of N and D from the runs chosen so far
        size = {"N": pool["n_params"].to_numpy(float), "D": pool["n_tokens"].to_numpy(float)}
        picked, order = list(chosen), []
        while True:
            open_ = [i for i in rest if i not in order and cost[i] <= left - cost[order].sum()]
            if not open_:
                break
            gap = gaps({k: v[open_] for k, v in size.items()}, {k: v[picked] for k, v in size.items()}).min(1)
            best = open_[int(np.argmax(gap))]
            order.append(best)
            picked.append(best)
    out = []
    for i in order:
        if cost[i] <= left:
            out.append(i)
            left -= cost[i]
    return out


def score(fit: bs.ScalingFit, targets: pd.DataFrame) -> dict[str, float]:
    table = fit.predict(targets, kind="observation", seed=0)
    observed = targets["loss"].to_numpy(float)
    return {
        "mdape": float(np.median(np.abs(table["median"] / observed - 1))),
        "width_90": float(np.median((table["eti90_upper"] - table["eti90_lower"]) / table["median"])),
        "coverage_50": float(table["inside_eti50"].mean()),
        "coverage_90": float(table["inside_eti90"].mean()),
    }


def run(name: str, seeds: int) -> list[dict]:
    pool, targets = split(name)
    total = pool["flops"].sum()
    start = list(np.argsort(pool["flops"].to_numpy())[:START])
    rows = []
    for seed in range(seeds):
        clock = time.perf_counter()
        full = bs.fit(pool, law="chinchilla", seed=seed, **SETTINGS)
        rows.append({"dataset": name, "seed": seed, "strategy": "full", "fraction": 1.0, **score(full, targets)})
        for strategy in STRATEGIES:
            rng = np.random.default_rng(seed)
            chosen = list(start)
            fit = bs.fit(pool.iloc[chosen], law="chinchilla", seed=seed, **SETTINGS)
            for fraction in FRACTIONS:
                left = fraction * total - pool["flops"].to_numpy()[chosen].sum()
                chosen += choose(strategy, fit, pool, chosen, targets, left, rng)
                fit = bs.fit(pool.iloc[chosen], law="chinchilla", seed=seed, **SETTINGS)
                spent = pool["flops"].to_numpy()[chosen].sum() / total
                rows.append(
                    {
                        "dataset": name,
                        "seed": seed,
                        "strategy": strategy,
                        "fraction": fraction,
                        "spent": spent,
                        "runs": len(chosen),
                        **score(fit, targets),
                    }
                )
        print(f"{name} seed {seed}: {time.perf_counter() - clock:.0f} s", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "design_results.csv")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    rows = []
    for name in args.only:
        pool, targets = split(name)
        print(f"{name}: pool {len(pool)} runs, {len(targets)} targets", flush=True)
        rows += run(name, args.seeds)
        pd.DataFrame(rows).to_csv(args.out, index=False)
    table = pd.DataFrame(rows).groupby(["dataset", "strategy", "fraction"]).median(numeric_only=True)
    with pd.option_context("display.width", 160, "display.max_rows", 500):
        print(table.drop(columns="seed").round(4))


if __name__ == "__main__":
    main()
