"""Accuracy scored on known numbers of items: the binomial likelihood against the default Student-t on the
logit scale and the beta likelihood (which does not see the items), on real held-out runs.

Gadre et al. (2024)'s downstream evaluations (``../shared/data/gadre2024_downstream``, MIT): the C4-trained
runs on the paper's 17-task subset (eval sets of 100 to 10,042 items), accuracy against compute
(``sigmoid_compute``, the task's chance accuracy as data), hierarchical over tasks. Fitted on each task's
runs below the 80th percentile of compute, scored on the runs above it: the median's absolute error in
accuracy points, and the share of held-out scores inside their 50% and 90% bands of a new run's score
(binomial: on the run's own items). Writes ``downstream_items_results.md``. About 8 minutes on 2 cores.

    .venv/bin/python benchmarks/downstream_items.py
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from downstream import markdown  # the benchmarks' Markdown table

import bayes_scaling as bs

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gadre2024_downstream"
DATA = DATA / "gadre2024_downstream_long.csv"
OPTIONS = {"law": "sigmoid_compute", "group": "task", "seed": 1, "progressbar": False}
COLUMNS = {"loss": "accuracy", "chance": "random_baseline_acc"}


def runs() -> pd.DataFrame:
    """The C4 runs on the 17-task subset; a score of 0 or all items moved half an item inside."""
    d = pd.read_csv(DATA)
    d = d[d.in_17_task_subset & (d.dataset == "c4_original")].copy()
    n = d["n_examples"]
    d["accuracy"] = d["accuracy"].clip(0.5 / n, 1 - 0.5 / n)
    return d


def main() -> None:
    data = runs()
    cut = data.groupby("task")["compute_flops"].transform(lambda c: c.quantile(0.8))
    fit_on, held = data[data.compute_flops <= cut], data[data.compute_flops > cut]
    rows = []
    for likelihood in ("student_t", "binomial", "beta"):
        columns = {**COLUMNS, **({"items": "n_examples"} if likelihood == "binomial" else {})}
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = bs.fit(fit_on, likelihood=likelihood, columns=columns, **OPTIONS)
        pred = fit.predict(held, kind="observation", seed=0)
        err = 100 * (pred["median"] - pred["observed"]).to_numpy()
        rows.append(
            {
                "likelihood": likelihood,
                "fitted": len(fit_on),
                "held_out": len(held),
                "mae_points": np.mean(np.abs(err)),
                "coverage_50": pred["inside_eti50"].mean(),
                "coverage_90": pred["inside_eti90"].mean(),
                "max_r_hat": fit.diagnostics["max_r_hat"],
                "divergences": fit.diagnostics["divergences"],
                "seconds": time.perf_counter() - start,
            }
        )
        print(rows[-1], flush=True)
    table = markdown(pd.DataFrame(rows))
    print(table)
    (Path(__file__).parent / "downstream_items_results.md").write_text(
        "# Accuracy on known numbers of items (benchmarks/downstream_items.py)\n\n" + table + "\n"
    )


if __name__ == "__main__":
    main()
