"""Critical batch size on Zhang et al. (2024)'s runs: the steps each batch size took to reach a target loss
(5 model sizes, 85M-1.2B, x 9 batch sizes, the Chinchilla setting; MIT, read from
``../shared/data/zhang2024_critical_batch``).

Law ``batch_steps`` (S = S_min (1 + B_crit / B)) per model size (``pooling="none"``), then the trend
B_crit ~ N^gamma per posterior draw (``bayes_scaling.curves.critical_batch_draws``), and Kaplan et al.
(2020)'s B_crit(L) = B_star / L^(1 / alpha_B) through each size's target loss. Prints each size's S_min and
B_crit (tokens) with 90% intervals, gamma, the trend's B_crit at 7B, alpha_B and B_star; writes
``critical_batch_results.md``. Under a minute.

    .venv/bin/python benchmarks/critical_batch.py
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
from downstream import markdown  # the benchmarks' Markdown table

import bayes_scaling as bs
from bayes_scaling import intervals
from bayes_scaling.curves import critical_batch_draws

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "zhang2024_critical_batch"


def main() -> None:
    runs = pd.read_csv(DATA / "zhang2024_cbs_steps_to_target.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.MisfitWarning)  # steps are not nats: the loss-range check
        fit = bs.fit(
            runs, law="batch_steps", group="n_params", pooling="none", columns={"loss": "steps_to_target"}, seed=1
        )
    print(fit.diagnostics)
    loss = runs.groupby("n_params")["target_loss"].first().to_dict()
    draws = critical_batch_draws(fit, N=[7e9], loss=loss)
    per_size = intervals.summarize(fit.posterior[["S_min_group", "B_crit_group"]], (0.9,))
    per_size["group"] = per_size["group"].astype(float)
    per_size = per_size.sort_values("group").rename(columns={"group": "n_params"})
    trend = pd.concat(
        [intervals.summarize(draws[["gamma"]], (0.9,)), intervals.summarize(draws[["B_crit_at"]], (0.9,))], axis=1
    )
    kaplan = intervals.summarize(draws[["alpha_B", "B_star"]], (0.9,))
    with pd.option_context("display.width", 200, "display.float_format", "{:.4g}".format):
        print(per_size.to_string(index=False))
        print(trend.to_string(index=False))
        print(kaplan.to_string(index=False))
    out = Path(__file__).with_name("critical_batch_results.md")
    out.write_text(
        "# Critical batch size: Zhang et al. (2024), steps to a target loss\n\n"
        "`.venv/bin/python benchmarks/critical_batch.py`: `batch_steps` per model size (tokens per batch), "
        "90% intervals.\n\n"
        + markdown(per_size)
        + "\n\nTrend B_crit ~ N^gamma, and B_crit at 7B:\n\n"
        + markdown(trend)
        + "\n\nKaplan et al. (2020)'s B_crit(L) = B_star / L^(1 / alpha_B) through each size's target loss "
        "(B_star in tokens at a loss of 1 nat):\n\n" + markdown(kaplan) + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
