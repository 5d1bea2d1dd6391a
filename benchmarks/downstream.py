"""Downstream accuracy on the OLMo ladder (Bhagia et al. 2024): predict the 7B and 13B targets' task
accuracies from the ladder, with intervals, and score them.

The paper's setup: fit the 190M-1.3B sizes at 1, 2, 5 and 10 x 20 tokens per parameter (no reruns, no
0.5 x, no 3.2B), predict OLMo 2 7B (4T tokens) and 13B (5T). Two ways, both hierarchical over the 20 task
splits (partial pooling of every parameter):

- two-step: (N, D) -> task bits-per-byte (Chinchilla form) -> accuracy (sigmoid between the task's
  chance accuracy and a ceiling), the first step's predictive draws pushed through the second
  (``bs.TwoStage``);
- direct: accuracy as a sigmoid in log compute (``sigmoid_compute``).

Also the second step alone at the targets' observed bpb, which separates the two steps' errors.
Prints, per method: the mean absolute error of the median in accuracy points over all 40 (task, target)
pairs and over the paper's 11 main task splits, the share of pairs inside their 50% and 90% intervals
of a new run's accuracy, and the mean bias; then the two-step errors per task. Writes
``downstream_results.md``. About 3 minutes on 2 cores.

    .venv/bin/python benchmarks/downstream.py
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import bayes_scaling as bs

OPTIONS = {"group": "task", "chains": 4, "draws": 500, "tune": 1000, "target_accept": 0.95, "progressbar": False}


def score(name: str, pred: pd.DataFrame, main: np.ndarray, seconds: float) -> dict:
    err = 100 * (pred["median"] - pred["observed"]).to_numpy()
    return {
        "method": name,
        "mae_points": np.mean(np.abs(err)),
        "mae_points_main": np.mean(np.abs(err[main])),
        "coverage_50": pred["inside_eti50"].mean(),
        "coverage_90": pred["inside_eti90"].mean(),
        "bias_points": np.mean(err),
        "seconds": seconds,
    }


def main() -> None:
    data = bs.load_dataset("bhagia2024")
    ladder = data[(data.role == "ladder") & ~data.is_rerun & (data.xC >= 1) & (data.size_label != "3.2B")]
    targets = data[data.role == "target"].reset_index(drop=True)
    main_set = targets["in_paper_main_set"].to_numpy(dtype=bool)
    rows, per_task = [], None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        first = bs.fit(ladder, law="chinchilla", columns={"loss": "rc_bpb"}, seed=1, **OPTIONS)
        second = bs.fit(ladder, law="sigmoid_loss", columns={"loss": "rc_acc", "L": "rc_bpb"}, seed=2, **OPTIONS)
        two = bs.TwoStage(first, second, via="L")
        pred = two.predict(targets, prob=(0.5, 0.9), kind="observation", seed=0)
        rows.append(score("two-step (bpb -> accuracy)", pred, main_set, time.perf_counter() - start))
        for fit_ in (first, second):
            print(f"{fit_.law.name}: {fit_.diagnostics}")
        per_task = pred.assign(task=targets["task"], model=targets["size_label"])
        # where the two-step error comes from: the second step given each target's own bpb, and the first
        # step's error in bpb
        start = time.perf_counter()
        oracle = second.predict(targets, prob=(0.5, 0.9), kind="observation", seed=0)
        rows.append(
            score("second step alone, at the targets' observed bpb", oracle, main_set, time.perf_counter() - start)
        )
        bpb = first.predict(targets, kind="mean", seed=0)["median"].to_numpy() / targets["rc_bpb"].to_numpy() - 1
        per_task = per_task.assign(median_at_observed_bpb=oracle["median"].to_numpy(), bpb_error_pct=100 * bpb)
        start = time.perf_counter()
        direct = bs.fit(ladder, law="sigmoid_compute", columns={"loss": "rc_acc"}, seed=3, **OPTIONS)
        pred = direct.predict(targets, prob=(0.5, 0.9), kind="observation", seed=0)
        rows.append(score("direct (sigmoid in log compute)", pred, main_set, time.perf_counter() - start))
        print(f"{direct.law.name}: {direct.diagnostics}")
    table = pd.DataFrame(rows).set_index("method")
    with pd.option_context("display.width", 160, "display.float_format", "{:.3f}".format):
        print(table)
        columns = ["task", "model", "observed", "median", "eti90_lower", "eti90_upper", "inside_eti90"]
        shown = per_task[[*columns, "median_at_observed_bpb", "bpb_error_pct"]]
        print(shown.to_string(index=False))
    out = Path(__file__).with_name("downstream_results.md")
    out.write_text(
        "# Downstream accuracy on the OLMo ladder: 7B and 13B targets, 20 task splits\n\n"
        "`.venv/bin/python benchmarks/downstream.py`: fitted on the paper's 16 ladder runs; errors in accuracy "
        "points, coverage of a new run's interval. The second row is the second step alone, given each target's "
        "observed bpb (the first step's error removed); `bpb_error_pct` is the first step's error in bpb "
        f"(mean {per_task['bpb_error_pct'].mean():+.1f}%).\n\n" + markdown(table.reset_index()) + "\n\n"
        "Two-step predictions per (task, target):\n\n" + markdown(shown) + "\n"
    )


def markdown(table: pd.DataFrame) -> str:
    """A table as Markdown, numbers to three decimals."""
    cells = [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row] for row in table.itertuples(index=False)]
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


if __name__ == "__main__":
    main()
