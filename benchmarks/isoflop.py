"""IsoFLOP profiles: Approach 2 (a parabola per budget, then a line through the minima) next to Approach 3
(the Chinchilla form fitted to every run) on the same runs: Porian et al. (2024)'s cosine-decay
configurations (RefinedWeb and OpenWebText2; needs the workplace's ../shared/data).

Both are posteriors: Approach 2 is ``isoflop_parabola`` grouped by budget (each budget its own minimum),
the line fitted per draw (``bayes_scaling.isoflop``); Approach 3 is ``bs.fit(law="chinchilla")`` and
``compute_optimal``. Prints, per configuration and approach, the exponent a (N_opt ~ C^a) and N_opt at
three budgets, each as median [90% interval], next to the authors' own Approach 2 exponent (their basic fit
and bootstrap 5-95%); writes ``isoflop_results.md`` and the figure ``isoflop_results.png``. About 2
minutes on 2 cores.

    .venv/bin/python benchmarks/isoflop.py
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import bayes_scaling as bs
from bayes_scaling import intervals
from bayes_scaling.isoflop import POOLING, isoflop_optimal_draws

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "porian2024_isoflops"
CONFIGS = {
    "RefinedWeb": "rw|base|short|chinchilla|standard|val",
    "OpenWebText2": "owt2|base|short|chinchilla|standard|val",
}
BUDGETS = np.array([1e19, 1e21, 1e23])
OPTIONS = {"chains": 4, "draws": 500, "tune": 1000, "target_accept": 0.95, "progressbar": False, "seed": 1}


def cell(values: np.ndarray) -> str:
    lo, mid, hi = np.quantile(values, [0.05, 0.5, 0.95])
    return f"{mid:.3g} [{lo:.3g}, {hi:.3g}]"


def main() -> None:
    points = pd.read_csv(DATA / "porian2024_isoflop_points.csv")
    authors = pd.read_csv(DATA / "porian2024_authors_fit_results.csv").set_index(["config_id", "fit"])
    optimal = pd.read_csv(DATA / "porian2024_compute_optimal_points.csv")
    rows = []
    fig, axes = plt.subplots(1, len(CONFIGS), figsize=(5.5 * len(CONFIGS), 4.2), constrained_layout=True)
    for ax, (name, config) in zip(np.atleast_1d(axes), CONFIGS.items(), strict=True):
        runs = points[points.config_id == config].assign(budget=lambda d: d.compute_flops.map("{:.6g}".format))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            two = bs.fit(runs, law="isoflop_parabola", group="budget", pooling=POOLING, **OPTIONS)
            three = bs.fit(runs, law="chinchilla", **OPTIONS)
        grid = np.geomspace(runs.compute_flops.min(), BUDGETS.max(), 40)
        draws = {
            "Approach 2 (IsoFLOP parabolas)": isoflop_optimal_draws(two, np.append(BUDGETS, grid)),
            "Approach 3 (Chinchilla form)": three.optimal_draws(np.append(BUDGETS, grid)),
        }
        for (approach, d), color in zip(draws.items(), ("C0", "C1"), strict=True):
            n_opt = intervals.sample_matrix(d["N_opt"])
            exponent = np.asarray(d["a"]).reshape(-1, *np.shape(d["a"])[2:])
            exponent = exponent if exponent.ndim == 1 else exponent[:, 0]
            fit_ = two if approach.startswith("Approach 2") else three
            rows.append(
                {
                    "data": name,
                    "approach": approach,
                    "a (N_opt ~ C^a)": cell(exponent),
                    **{f"N_opt at {c:.0e}": cell(n_opt[:, i]) for i, c in enumerate(BUDGETS)},
                    "divergences": fit_.diagnostics["divergences"],
                    "max R-hat": round(fit_.diagnostics["max_r_hat"], 3),
                }
            )
            band = np.quantile(n_opt[:, BUDGETS.size :], [0.05, 0.5, 0.95], axis=0)
            ax.fill_between(grid, band[0], band[2], color=color, alpha=0.25, lw=0)
            ax.plot(grid, band[1], color=color, label=approach)
        per_budget = np.quantile(two.draws("Nopt_group"), [0.05, 0.5, 0.95], axis=0)
        budgets = np.array([float(g) for g in two.runs.groups])
        ax.errorbar(
            budgets,
            per_budget[1],
            yerr=[per_budget[1] - per_budget[0], per_budget[2] - per_budget[1]],
            fmt="o",
            color="C0",
            ms=3,
            label="each profile's minimum (90%)",
        )
        theirs = optimal[optimal.config_id == config]
        ax.plot(theirs.compute_flops, theirs.n_opt, "k+", label="authors' interpolated optima")
        basic, low, high = (authors.loc[(config, f), "n_exponent"] for f in ("basic", "bootstrap_p05", "bootstrap_p95"))
        rows.append(
            {
                "data": name,
                "approach": "authors' Approach 2 (Porian et al.)",
                "a (N_opt ~ C^a)": f"{basic:.3g} [{low:.3g}, {high:.3g}]",
            }
        )
        ax.set(xscale="log", yscale="log", xlabel="compute C (FLOPs)", ylabel="N_opt", title=f"{name}, cosine decay")
        ax.axvspan(runs.compute_flops.max(), grid.max(), color="0.9", lw=0)
        ax.legend(fontsize=7)
    table = pd.DataFrame(rows).astype(object).fillna("")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False))
    here = Path(__file__).parent
    fig.savefig(here / "isoflop_results.png", dpi=110)
    header = "| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns) + "\n"
    body = "\n".join("| " + " | ".join(map(str, r)) + " |" for r in table.itertuples(index=False))
    (here / "isoflop_results.md").write_text(
        "# Approach 2 against Approach 3 on Porian et al.'s cosine-decay IsoFLOP runs\n\n"
        "`.venv/bin/python benchmarks/isoflop.py`; median [90% interval]; figure `isoflop_results.png`.\n\n"
        + header
        + body
        + "\n"
    )


if __name__ == "__main__":
    main()
