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
its 50% and 90% intervals, and of those of the law alone (`law_coverage_*`: the same fit without its
discrepancy, which tells which part of the band misses or overshoots). `full` is the fit of the whole pool.

The raw rows go to --out (rows of datasets not rerun are kept from it); benchmarks/design_results.md gets
medians over seeds by budget, and per planning strategy the budgets where it beats both random and
cheapest-first and the first budget that reaches the full pool's error; benchmarks/design_results.png
draws error, width and coverage against the FLOPs spent. `--from CSV` writes both from earlier rows
without fitting.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import bayes_scaling as bs
from bayes_scaling.observation import gaps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calibration import Spec, _beck, _gadre, _li, _porian, ordering, top
from downstream import markdown

ROOT = Path(__file__).resolve().parents[1]
#: Budgets, as fractions of the pool's FLOPs, and the number of cheapest runs every strategy starts from.
FRACTIONS = (0.02, 0.05, 0.1, 0.25, 0.5)
START = 8
STRATEGIES = ("design", "design_law", "random", "cheapest", "grid")
PLANNERS, BASELINES = ("design", "design_law"), ("random", "cheapest")
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
        rest = [i for i in rest if cost[i] <= left]
        if not rest:  # nothing fits in what is left
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
    law = fit.with_discrepancy(None).predict(targets, kind="observation", seed=0)
    observed = targets["loss"].to_numpy(float)
    return {
        "mdape": float(np.median(np.abs(table["median"] / observed - 1))),
        "width_90": float(np.median((table["eti90_upper"] - table["eti90_lower"]) / table["median"])),
        "coverage_50": float(table["inside_eti50"].mean()),
        "coverage_90": float(table["inside_eti90"].mean()),
        "law_coverage_50": float(law["inside_eti50"].mean()),
        "law_coverage_90": float(law["inside_eti90"].mean()),
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


def by_budget(rows: pd.DataFrame, column: str) -> pd.DataFrame:
    """Medians over seeds of ``column``: a row per dataset and budget, a column per strategy (``full`` at 1)."""
    table = rows.pivot_table(index=["dataset", "fraction"], columns="strategy", values=column, aggfunc="median")
    return table[[s for s in (*STRATEGIES, "full") if s in table.columns]]


def verdicts(rows: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and planning strategy: the budgets (of those where any run was added) at which its median
    error is below both random's and cheapest-first's, and the first budget whose median error is at most
    the full pool's."""
    error, runs = by_budget(rows, "mdape"), by_budget(rows, "runs")
    out = []
    for name in error.index.unique("dataset"):
        e, n = error.loc[name].drop(index=1.0, errors="ignore"), runs.loc[name].drop(index=1.0, errors="ignore")
        added = n[list(STRATEGIES)].max(axis=1) > START
        full = error.loc[(name, 1.0), "full"]
        for planner in PLANNERS:
            wins = (e[planner] < e[list(BASELINES)].min(axis=1))[added]
            reached = e.index[e[planner] <= full]
            out.append(
                {
                    "dataset": name,
                    "strategy": planner,
                    "beats random and cheapest": f"{int(wins.sum())} of {len(wins)}",
                    "budgets it loses": ", ".join(f"{f:g}" for f in wins.index[~wins.to_numpy()]) or "none",
                    "full pool's error reached at": f"{reached[0]:g}" if len(reached) else "not by 0.5",
                }
            )
    return pd.DataFrame(out)


def report(rows: pd.DataFrame, seeds: int) -> str:
    """benchmarks/design_results.md from the raw rows."""

    def budgets(column: str) -> str:
        return markdown(by_budget(rows, column).round(4).reset_index().astype(object).fillna(""))

    pooled = rows[rows.strategy != "full"].groupby(["dataset", "strategy"])
    coverage = pooled[["coverage_50", "coverage_90", "law_coverage_50", "law_coverage_90"]].mean().round(3)
    return (
        f"# Experiment design on real data (benchmarks/design.py, {seeds} seeds)\n\n"
        f"Every strategy starts from the pool's {START} cheapest runs and adds runs budget by budget (a share "
        "of the pool's FLOPs); the targets are the dataset's largest runs. `design`: `suggest_runs`; "
        "`design_law`: planned on the fit without its discrepancy; `full`: the whole pool. Medians over seeds; "
        "figure `design_results.png`.\n\n"
        "## Verdicts\n\n" + markdown(verdicts(rows)) + "\n\n"
        "## MdAPE of the targets' median prediction\n\n" + budgets("mdape") + "\n\n"
        "## Median relative width of the 90% interval of a new run\n\n" + budgets("width_90") + "\n\n"
        "## Coverage of the 50% interval\n\n" + budgets("coverage_50") + "\n\n"
        "## Coverage over budgets and seeds (mean), with the discrepancy and of the law alone\n\n"
        + markdown(coverage.reset_index())
        + "\n"
    )


def figure(rows: pd.DataFrame, path: Path) -> None:
    """Error, 90% width and 50% coverage against the FLOPs spent, a column per dataset."""
    names = list(dict.fromkeys(rows["dataset"]))
    panels = (("mdape", "MdAPE at the targets"), ("width_90", "90% width (relative)"), ("coverage_50", "50% covers"))
    fig, axes = plt.subplots(len(panels), len(names), figsize=(3.6 * len(names), 8), squeeze=False, sharex=True)
    for j, name in enumerate(names):
        mine = rows[rows.dataset == name]
        for i, (column, label) in enumerate(panels):
            ax = axes[i, j]
            table = by_budget(mine, column).loc[name]
            for k, strategy in enumerate(STRATEGIES):
                ax.plot(table.index[:-1], table[strategy].iloc[:-1], "o-", ms=3, color=f"C{k}", label=strategy)
            if column == "coverage_50":
                ax.axhline(0.5, color="k", lw=0.8, ls=":")
                ax.set_ylim(-0.03, 1.03)
            else:
                ax.axhline(table.loc[1.0, "full"], color="k", lw=0.8, ls="--", label="full pool")
                ax.set_yscale("log")
            ax.set(xscale="log", ylabel=label if j == 0 else None, title=name if i == 0 else None)
            ax.set_xticks(FRACTIONS, [f"{f:g}" for f in FRACTIONS], minor=False)
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        axes[-1, j].set_xlabel("share of the pool's FLOPs spent")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "design_results.csv")
    parser.add_argument("--from", dest="source", type=Path, help="write the results page and figure from these rows")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    if args.source:
        rows = pd.read_csv(args.source)
    else:
        new = []
        for name in args.only:
            pool, targets = split(name)
            print(f"{name}: pool {len(pool)} runs, {len(targets)} targets", flush=True)
            new += run(name, args.seeds)
        rows = pd.DataFrame(new)
        if args.out.exists():  # keep the rows of the datasets not rerun
            old = pd.read_csv(args.out)
            rows = pd.concat([old[~old.dataset.isin(args.only)], rows], ignore_index=True)
        rows.to_csv(args.out, index=False)
    seeds = int(rows["seed"].nunique())
    (ROOT / "benchmarks" / "design_results.md").write_text(report(rows, seeds))
    figure(rows, ROOT / "benchmarks" / "design_results.png")
    with pd.option_context("display.width", 160, "display.max_rows", 500):
        print(verdicts(rows).to_string(index=False))


if __name__ == "__main__":
    main()
