"""LOO comparison, leave-future-out backtests and stacked predictions, on simulated truth."""

import warnings

import numpy as np
import pytest

import bayes_scaling as bs
from bayes_scaling.comparison import score
from conftest import CHINCHILLA_TRUTH, KAPLAN_TRUTH, simulate

LAWS = ("chinchilla", "kaplan_nd")
SETTINGS = {"draws": 500, "tune": 500, "seed": 1, "progressbar": False}


def fits_of(runs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplingWarning)
        return {law: bs.fit(runs, law=law, **SETTINGS) for law in LAWS}


@pytest.fixture(
    scope="module",
    params=[("chinchilla", CHINCHILLA_TRUTH), ("kaplan_nd", KAPLAN_TRUTH)],
    ids=["from-chinchilla", "from-kaplan_nd"],
)
def simulated(request):
    truth, params = request.param
    return truth, simulate(truth, params, seed=5)


def test_loo_prefers_the_true_law(simulated):
    truth, runs = simulated
    table = bs.compare(fits_of(runs))
    assert table.index[0] == truth and table["elpd_diff"].iloc[1] < -4 * table["dse"].iloc[1]
    assert list(table.columns) == ["rank", "elpd_loo", "p_loo", "elpd_diff", "se", "dse", "weight", "n_pareto_k_high"]
    assert table["weight"].iloc[0] > 0.9


def test_backtest_prefers_the_true_law(simulated):
    truth, runs = simulated
    table = bs.backtest(runs, laws=list(LAWS), holdout=0.25, **SETTINGS)
    assert list(table["law"]) == list(LAWS) and (table["n_scored"] == 16).all()
    best = table.set_index("law")
    other = next(law for law in LAWS if law != truth)
    assert best.loc[truth, "lpd"] > best.loc[other, "lpd"] and best.loc[truth, "mdape"] < best.loc[other, "mdape"]


def test_rolling_origin_reuses_compiled_models(chinchilla_runs):
    table = bs.backtest(chinchilla_runs, laws=["chinchilla"], holdout=[0.5, 0.3, 1e20], **SETTINGS)
    assert len(table) == 3 and len(set(table["cut"])) == 3
    assert (table["compile_seconds"].iloc[1:] < 0.5).all()  # data swapped into the compiled model
    assert (table["n_fit"] + table["n_scored"] == len(chinchilla_runs)).all()
    with pytest.raises(bs.BayesScalingError, match="leaves no runs"):
        bs.backtest(chinchilla_runs, laws=["chinchilla"], holdout=1e30)
    with pytest.raises(bs.BayesScalingError, match="holdout must be"):
        bs.backtest(chinchilla_runs, laws=["chinchilla"], holdout=-1)
    holes = chinchilla_runs.assign(compute_flops=chinchilla_runs["compute_flops"].where(chinchilla_runs.index != 3))
    with pytest.raises(bs.DataError, match="not positive in row 3"):
        bs.backtest(holes, laws=["chinchilla"])


def test_true_law_intervals_cover_held_out_runs():
    """Over several simulated datasets the 90% predictive interval of the true law covers >= 80% of the
    held-out runs (the 25% with the most compute)."""
    inside = []
    for seed in (11, 12, 13, 14):
        runs = simulate("chinchilla", CHINCHILLA_TRUTH, seed=seed)
        row = bs.backtest(runs, laws=["chinchilla"], holdout=0.25, draws=500, tune=500, seed=seed, progressbar=False)
        inside.append(row["coverage_90"].iloc[0] * row["n_scored"].iloc[0])
    assert sum(inside) / (16 * 4) >= 0.8, inside


def test_compare_refuses_different_runs(chinchilla_fit, chinchilla_runs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplingWarning)
        other = bs.fit(chinchilla_runs.iloc[:50], draws=100, tune=100, chains=2, seed=1, progressbar=False)
    with pytest.raises(bs.DataError, match="made on different runs"):
        bs.compare({"all": chinchilla_fit, "some": other})
    with pytest.raises(bs.BayesScalingError, match="at least two fits"):
        bs.compare({"all": chinchilla_fit})


def test_average_mixes_by_weight(simulated):
    truth, runs = simulated
    fits = fits_of(runs)
    stacked = bs.average(fits)
    assert stacked.weights[truth] > 0.9
    equal = bs.average(fits, weights=dict.fromkeys(LAWS, 1.0))
    at = {"N": [1e10], "D": [2e11]}
    lone = {law: fits[law].predict(**at)["median"][0] for law in LAWS}
    mixed = equal.predict(seed=0, **at)["median"][0]
    assert min(lone.values()) - 1e-9 <= mixed <= max(lone.values()) + 1e-9
    only_truth = bs.average(fits, weights={truth: 1.0, next(x for x in LAWS if x != truth): 0.0}).predict(seed=0, **at)
    assert only_truth["median"][0] == pytest.approx(lone[truth], rel=2e-3)
    with pytest.raises(bs.BayesScalingError, match="must name exactly the fits"):
        bs.average(fits, weights={"chinchilla": 1.0})


def test_score_counts_coverage(chinchilla_fit, chinchilla_runs):
    result = score(chinchilla_fit, chinchilla_runs, prob=(0.5, 0.9), seed=0)
    assert 0.3 <= result["coverage_50"] <= 0.7 and result["coverage_90"] >= 0.8 and result["mdape"] < 0.02
    shifted = score(chinchilla_fit, chinchilla_runs.assign(loss=chinchilla_runs["loss"] * 1.1), seed=0)
    assert shifted["coverage_90"] < 0.1 and shifted["lpd"] < result["lpd"]
    assert np.isfinite(result["lpd_per_run"]) and result["lpd"] == pytest.approx(64 * result["lpd_per_run"])
