"""Calibration: the scoring kernels, calibration() on real fits, the discrepancy's evidence and its
empirical-Bayes estimate, leave-future-out stacking, and a seeded subset of the real-data benchmark."""

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import bayes_scaling as bs
from bayes_scaling.calibrate import (
    KAPPA_GRID,
    discrepancy_evidence,
    estimate_kappa,
    interval_score,
    kappa_posterior,
    scores,
)
from bayes_scaling.comparison import stacking_weights
from conftest import CHINCHILLA_TRUTH, KAPLAN_TRUTH, simulate

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


# ------------------------------------------------------------------------------------------------ kernels
def test_interval_score_by_hand():
    lo, hi = np.array([1.0, 1.0, 1.0]), np.array([2.0, 2.0, 2.0])
    y = np.array([1.5, 0.5, 2.5])
    # width 1; misses by 0.5 below / above cost 2 / 0.1 * 0.5 = 10 at 90%
    np.testing.assert_allclose(interval_score(lo, hi, y, 0.9), [1.0, 11.0, 11.0])


def test_scores_of_a_calibrated_predictive():
    """Observations from the predictive itself: coverage near nominal, PIT uniform."""
    rng = np.random.default_rng(1)
    draws = rng.normal(0, 1, (4000, 2000))
    found = scores(draws, rng.normal(0, 1, 2000), (0.5, 0.9))
    assert np.mean(found["inside_eti50"]) == pytest.approx(0.5, abs=0.04)
    assert np.mean(found["inside_eti90"]) == pytest.approx(0.9, abs=0.03)
    assert stats.kstest(found["pit"], "uniform").pvalue > 0.01
    too_narrow = scores(draws / 3, rng.normal(0, 1, 2000), (0.9,))
    assert np.mean(too_narrow["inside_eti90"]) < 0.6
    assert np.mean(too_narrow["interval_score_eti90"]) > np.mean(found["interval_score_eti90"])


def test_estimate_kappa_recovers_a_known_population():
    """Synthetic evidence: each dataset's tilt is kappa * sigma * z plus noise of known spread; the
    population estimate recovers kappa and the predictive is wider when datasets disagree."""
    rng = np.random.default_rng(2)

    def evidence(kappas, sigma=0.01, noise=0.01):
        tilts = kappas * sigma * rng.standard_normal(len(kappas)) + noise * rng.standard_normal(len(kappas))
        return [stats.norm.logpdf(t, 0, np.sqrt((KAPPA_GRID * sigma) ** 2 + noise**2)) for t in tilts]

    same = estimate_kappa(evidence(np.full(150, 4.0)))
    assert np.exp(same.mu) == pytest.approx(4.0, rel=0.2)
    spread = estimate_kappa(evidence(np.exp(rng.normal(np.log(4.0), 1.0, 150))))
    assert spread.s > 0.5 and spread.prior.kwargs["sigma"] > same.prior.kwargs["sigma"]
    assert same.prior.dist == "LogNormal" and "150 datasets" in repr(same)
    with pytest.raises(bs.BayesScalingError, match="at least one dataset"):
        estimate_kappa([])


def test_stacking_weights_prefer_the_better_predictor():
    rng = np.random.default_rng(3)
    y = rng.normal(0, 1, 500)
    good, bad = stats.norm.logpdf(y, 0, 1), stats.norm.logpdf(y, 1.5, 1)
    w = stacking_weights(np.stack([bad, good]))
    assert w[1] > 0.9 and w.sum() == pytest.approx(1.0)
    # two halves of a mixture: both kept
    mixed = np.where(np.arange(500) < 250, good, bad), np.where(np.arange(500) < 250, bad, good)
    assert stacking_weights(np.stack(mixed)).min() > 0.3


# ------------------------------------------------------------------------------------------------ on fits
def test_calibration_on_runs_from_the_truth(chinchilla_fit):
    """Runs simulated again from the fitted truth: the new-run intervals cover them at about their rate."""
    fresh = simulate("chinchilla", CHINCHILLA_TRUTH, seed=21)
    cal = bs.calibration(chinchilla_fit, fresh, seed=0)
    assert 0.75 <= cal.summary["coverage_90"] <= 1.0 and 0.3 <= cal.summary["coverage_50"] <= 0.75
    assert list(cal.curve.columns) == ["coverage", "width", "interval_score"]
    assert cal.curve["coverage"].is_monotonic_increasing and cal.curve["width"].is_monotonic_increasing
    assert {"observed", "median", "pit", "distance", "inside_eti90"} <= set(cal.points.columns)
    assert (cal.points["distance"] == 0).all()  # the same grid as the fitted runs
    assert "coverage 50%" in repr(cal)
    shifted = bs.calibration(chinchilla_fit, fresh.assign(loss=fresh["loss"] * 1.1), seed=0)
    assert shifted.summary["coverage_90"] < 0.1 and shifted.summary["bias"] > 0.1
    with pytest.raises(bs.DataError, match="need the loss column 'loss'"):
        bs.calibration(chinchilla_fit, fresh.drop(columns="loss"))


def test_discrepancy_widens_only_beyond_the_runs(chinchilla_fit, chinchilla_runs):
    law_only = chinchilla_fit.with_discrepancy(None)
    inside = chinchilla_runs.head(5)
    far = pd.DataFrame({"n_params": [3e10, 3e11], "n_tokens": [6e11, 6e12]})
    near_a, near_b = chinchilla_fit.predict(inside, seed=0), law_only.predict(inside, seed=0)
    np.testing.assert_allclose(near_a["eti90_upper"], near_b["eti90_upper"])  # distance 0: no discrepancy
    far_a, far_b = chinchilla_fit.predict(far, seed=0), law_only.predict(far, seed=0)
    width = (far_a["eti90_upper"] - far_a["eti90_lower"]) / (far_b["eti90_upper"] - far_b["eti90_lower"])
    assert (width > 1.2).all() and width[1] > width[0]  # wider, the more so further out
    assert far_a["distance"][1] > far_a["distance"][0] > 0.9
    assert "kappa" in chinchilla_fit.summary().index and "kappa" not in law_only.summary().index
    # the log density of a far run is the wider predictive's
    assert chinchilla_fit.log_predictive_density(far.assign(loss=[2.3, 2.1])).shape == (2,)


def test_discrepancy_evidence_sees_a_tilt(chinchilla_fit):
    """Runs far beyond the fit that fall away from the law in proportion to their distance: the evidence
    prefers a large kappa; runs that follow the law prefer a small one."""
    n = np.geomspace(1e10, 1e11, 12)
    far = pd.DataFrame({"n_params": n, "n_tokens": 20 * n})
    truth = bs.load_law("chinchilla").evaluate(CHINCHILLA_TRUTH, N=n, D=20 * n)
    dist = chinchilla_fit.distance({"N": n, "D": 20 * n})
    law_only = chinchilla_fit.with_discrepancy(None)
    follows = discrepancy_evidence(law_only, far.assign(loss=truth), seed=0)
    tilted = discrepancy_evidence(law_only, far.assign(loss=truth * np.exp(0.08 * dist)), seed=0)
    assert KAPPA_GRID[np.argmax(tilted)] > 3 * KAPPA_GRID[np.argmax(follows)]
    with pytest.raises(bs.BayesScalingError, match="distance 0"):
        discrepancy_evidence(law_only, simulate("chinchilla", CHINCHILLA_TRUTH, seed=4), seed=0)


def test_stack_by_leave_future_out():
    runs = simulate("kaplan_nd", KAPLAN_TRUTH, seed=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplingWarning)
        stacked = bs.stack(
            runs,
            laws=["chinchilla", "kaplan_nd"],
            holdout=(0.4, 0.25),
            draws=300,
            tune=300,
            chains=2,
            seed=1,
            progressbar=False,
        )
    assert list(stacked.lfo.columns) == ["elpd_lfo", "n_predictions", "coverage_90", "weight"]
    assert stacked.lfo["n_predictions"].iloc[0] == 26 + 16  # 40% and 25% of 64 runs
    assert stacked.weights["kaplan_nd"] > 0.6
    assert stacked.lfo.loc["kaplan_nd", "elpd_lfo"] > stacked.lfo.loc["chinchilla", "elpd_lfo"]
    pred = stacked.predict(N=[1e10], D=[2e11], kind="observation", seed=0)
    assert pred["eti90_lower"][0] < pred["median"][0] < pred["eti90_upper"][0]
    with pytest.raises(bs.BayesScalingError, match="at least two different laws"):
        bs.stack(runs, laws=["chinchilla"])


def test_stack_weighs_each_group_on_its_own_future():
    """With a group column, ``lfo_groups`` scores each group's held-out runs apart: the groups' scores and
    predictions add up to the pooled table's, and each group has weights of its own."""
    runs = simulate("kaplan_nd", KAPLAN_TRUTH, seed=8)
    runs["dataset"] = np.where(np.arange(len(runs)) % 2 == 0, "a", "b")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplingWarning)
        stacked = bs.stack(
            runs,
            laws=["chinchilla", "kaplan_nd"],
            holdout=0.4,
            group="dataset",
            draws=300,
            tune=300,
            chains=2,
            seed=1,
            progressbar=False,
        )
    groups = stacked.lfo_groups
    assert set(groups.index.get_level_values("dataset")) == {"a", "b"} and stacked.lfo is not None
    totals = groups.groupby(level="law")[["elpd_lfo", "n_predictions"]].sum()
    np.testing.assert_allclose(totals.loc[stacked.lfo.index], stacked.lfo[["elpd_lfo", "n_predictions"]], rtol=1e-9)
    for name in ("a", "b"):
        weights = groups.loc[name, "weight"]
        assert weights.sum() == pytest.approx(1.0) and weights.between(0, 1).all()
    assert not groups.loc["a", "elpd_lfo"].equals(groups.loc["b", "elpd_lfo"])


# ------------------------------------------------------------------------------------------------ benchmark
def test_benchmark_subset_on_bundled_data():
    """The real-data benchmark on the bundled runs (Gadre 2024's three datasets, Muennighoff 2023), fewer
    draws, no peer: every method scored, kappa's prior for each source estimated without it, and the
    default's intervals (and the self-backtested ones') at least as wide as the law's alone."""
    sys.path.insert(0, str(BENCHMARKS))
    import calibration as bench

    specs = [s for s in bench.SPECS if s.name.startswith(("gadre", "muennighoff_chinchilla"))]
    rows, evidence = bench.run(
        specs, rolling=False, peer=False, settings={"draws": 300, "tune": 300, "chains": 2}, log=lambda _: None
    )
    table, priors = bench.add_default(rows, evidence)
    assert set(evidence) == {"gadre_c4_original", "gadre_rpj", "gadre_rw_original", "muennighoff_chinchilla"}
    assert set(priors) == {"gadre", "muennighoff"} and all(p.startswith("LogNormal") for p in priors.values())
    methods = {"no discrepancy", "default", "self-backtested", "conformal"}
    assert set(table["method"]) == methods and len(table) == 16
    wide = table.pivot_table(index="dataset", columns="method", values="width_90")
    assert (wide["default"] >= wide["no discrepancy"]).all() and (
        wide["self-backtested"] >= wide["no discrepancy"]
    ).all()
    assert table[["coverage_50", "coverage_90"]].apply(lambda c: c.between(0, 1)).all().all()
    assert "| gadre_rpj | main | default |" in bench.markdown(table)
    assert set(bench.pooled(table).index) == methods


def test_discrepancy_evidence_reads_each_groups_tilt(stored_fit):
    """Two groups' far runs fall away from their laws in opposite directions: each group has its own tilt,
    so the evidence prefers a large kappa (one tilt shared by both would see them cancel); runs that follow
    their laws prefer a small one."""
    law_only = stored_fit.with_discrepancy(None)
    n = np.geomspace(3e9, 3e10, 6)
    parts = []
    for group, sign in (("web", 1.0), ("code", -1.0)):
        median = law_only.predict(N=n, D=20 * n, group=group)["median"].to_numpy()
        dist = law_only.distance({"N": n, "D": 20 * n}, law_only._group_codes([group] * n.size, False))
        parts.append(
            pd.DataFrame({"n_params": n, "n_tokens": 20 * n, "dataset": group, "law": median, "tilt": sign * dist})
        )
    far = pd.concat(parts, ignore_index=True)
    follows = discrepancy_evidence(law_only, far.assign(loss=far["law"]), seed=0)
    apart = discrepancy_evidence(law_only, far.assign(loss=far["law"] * np.exp(0.1 * far["tilt"])), seed=0)
    assert KAPPA_GRID[np.argmax(apart)] > 3 * KAPPA_GRID[np.argmax(follows)]


def test_kappa_posterior_follows_the_evidence():
    """A sharp likelihood at kappa = 5 moves a wide prior there; a flat one leaves the prior as it was."""
    prior = bs.Prior.from_spec("kappa", "LogNormal(0, 1)")
    sharp = kappa_posterior(-0.5 * ((np.log(KAPPA_GRID) - np.log(5.0)) / 0.1) ** 2, prior)
    assert abs(sharp.kwargs["mu"] - np.log(5.0)) < 0.02 and abs(sharp.kwargs["sigma"] - 0.1) < 0.01
    flat = kappa_posterior(np.zeros(KAPPA_GRID.size), "LogNormal(0, 1)")
    assert abs(flat.kwargs["mu"]) < 0.01 and abs(flat.kwargs["sigma"] - 1.0) < 0.02
    with pytest.raises(bs.OptionError, match="321 values"):
        kappa_posterior(np.zeros(3), prior)
