"""Approach 2 (IsoFLOP parabolas, then a line through their minima) recovers a known allocation."""

import numpy as np
import pandas as pd
import pytest

import bayes_scaling as bs
from bayes_scaling.isoflop import POOLING, isoflop_optimal_draws


def profiles(exponent: float = 0.5, seed: int = 0) -> pd.DataFrame:
    """Five budgets x 8 model sizes around N_opt = 0.1 C^exponent, the loss a parabola in log N, 1% noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, C in enumerate(np.geomspace(1e17, 1e19, 5)):
        n_opt = 0.1 * C**exponent
        N = n_opt * np.geomspace(1 / 8, 8, 8)
        loss = (4.0 - 0.15 * i) + 0.04 * np.log(N / n_opt) ** 2
        rows.append(pd.DataFrame({"n_params": N, "loss": loss * np.exp(rng.normal(0, 0.01, N.size)), "budget": C}))
    return pd.concat(rows, ignore_index=True)


def approach2(runs: pd.DataFrame, draws: int = 300, **options) -> bs.ScalingFit:
    """A quick fit of ``isoflop_parabola``, grouped by budget as Approach 2 wants unless options say otherwise."""
    options = {"group": "budget", "pooling": POOLING, **options}
    return bs.fit(runs, law="isoflop_parabola", chains=2, draws=draws, tune=500, progressbar=False, seed=1, **options)


def test_approach2_recovers_the_exponent_and_allocation():
    runs = profiles()
    fit = approach2(runs)
    assert fit.diagnostics["divergences"] == 0
    draws = isoflop_optimal_draws(fit, [1e21])
    lo, hi = np.quantile(draws["a"].values, [0.05, 0.95])
    assert lo < 0.5 < hi and hi - lo < 0.1
    n_lo, n_hi = np.quantile(draws["N_opt"].values, [0.05, 0.95])
    assert n_lo < 0.1 * 1e21**0.5 < n_hi
    assert np.allclose(draws["D_opt"].values * 6 * draws["N_opt"].values, 1e21)
    with pytest.raises(bs.OptionError, match="needs a fit of the law 'isoflop_parabola' grouped by compute budget"):
        isoflop_optimal_draws(approach2(runs, draws=50, group=None, pooling=None), [1e21])
    labelled = runs.assign(budget=runs["budget"].map({b: f"C{i}" for i, b in enumerate(runs["budget"].unique())}))
    with pytest.raises(bs.GroupError, match="must be compute budgets in FLOPs"):
        isoflop_optimal_draws(approach2(labelled, draws=50), [1e21])
