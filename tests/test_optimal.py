"""Compute-optimal allocations: closed form against numeric, coverage of the truth, budgets for a loss."""

import warnings

import numpy as np
import pytest

import bayes_scaling as bs
from bayes_scaling.optimal import budget_for_loss, optimum
from conftest import CHINCHILLA_TRUTH, KAPLAN_TRUTH, simulate


def test_closed_form_and_numeric_agree(chinchilla_fit):
    budgets = [1e19, 1e21, 5.76e23, 1e26]
    closed = chinchilla_fit.compute_optimal(budgets, method="closed")
    numeric = chinchilla_fit.compute_optimal(budgets, method="numeric")
    for column in ("N_opt_median", "D_opt_eti90_lower", "loss_eti50_upper", "a_median", "b_eti90_upper"):
        np.testing.assert_allclose(numeric[column], closed[column], rtol=1e-6)
    # per draw, not only the summaries
    sampled = {p: chinchilla_fit.draws(p)[:, None] for p in chinchilla_fit.law.sampled_params}
    c, n = (optimum(chinchilla_fit.law, sampled, np.array([[1e22]]), method=m) for m in ("closed", "numeric"))
    np.testing.assert_allclose(n["N"], c["N"], rtol=1e-6)
    np.testing.assert_allclose(n["D"], c["D"], rtol=1e-6)
    # Chinchilla: N_opt ~ C^a with a = beta / (alpha + beta) exactly
    a = chinchilla_fit.draws("beta") / (chinchilla_fit.draws("alpha") + chinchilla_fit.draws("beta"))
    assert closed["a_median"][0] == pytest.approx(np.median(a), rel=1e-6)


def test_tied_law_closed_form_matches_numeric():
    law = bs.load_law("chinchilla_tied")
    sampled = {p: prior.sample(50, seed=i)[:, None] for i, (p, prior) in enumerate(law.priors.items())}
    C = np.array([[1e20, 1e24]])
    c, n = optimum(law, sampled, C, method="closed"), optimum(law, sampled, C, method="numeric")
    np.testing.assert_allclose(n["N"], c["N"], rtol=1e-6)
    np.testing.assert_allclose(n["D"], c["D"], rtol=1e-6)


def test_n_opt_interval_covers_truth_100x_beyond_the_data(chinchilla_fit, chinchilla_runs):
    budget = 100 * chinchilla_runs["compute_flops"].max()
    truth = bs.load_law("chinchilla").optimal["N"].evaluate({**CHINCHILLA_TRUTH, "C": budget})
    row = chinchilla_fit.compute_optimal(budget, prob=0.9)
    assert row["N_opt_eti90_lower"][0] <= truth <= row["N_opt_eti90_upper"][0]
    assert list(row.columns[:4]) == ["C", "N_opt_median", "N_opt_eti90_lower", "N_opt_eti90_upper"]


def test_flops_formula_can_be_replaced(chinchilla_fit):
    # 18ND is 6ND with every budget a third as large
    triple = chinchilla_fit.compute_optimal(3e22, flops="18 * N * D", prob=0.9)
    single = chinchilla_fit.compute_optimal(1e22, prob=0.9)
    np.testing.assert_allclose(triple["N_opt_median"], single["N_opt_median"], rtol=1e-6)
    with pytest.raises(bs.LawError, match="proportional to D"):
        chinchilla_fit.compute_optimal(1e22, flops="6 * N * D + N")
    with pytest.raises(bs.LawError, match="only"):
        chinchilla_fit.compute_optimal(1e22, flops="18 * N * D", method="closed")
    with pytest.raises(bs.LawError, match=r"has no input\(s\) \['U'\]"):
        chinchilla_fit.compute_optimal(1e22, U=1e10)


def test_compute_for_loss(chinchilla_fit):
    law_only = chinchilla_fit.with_discrepancy(None)
    row = law_only.compute_for_loss(2.0, prob=0.9)
    assert row["reachable_fraction"][0] == 1.0
    # the optimum at the budget found reaches the target
    check = law_only.compute_optimal(row["C_median"][0], prob=0.9)
    assert check["loss_median"][0] == pytest.approx(2.0, abs=0.01)
    with pytest.warns(UserWarning, match=r"out of reach for \d+\.\d% of the posterior"):
        partial = law_only.compute_for_loss(1.72)
    assert 0 < partial["reachable_fraction"][0] < 1
    with pytest.raises(bs.BayesScalingError, match="loss 1 is out of reach: no posterior draw"):
        chinchilla_fit.compute_for_loss(1.0)
    # with the discrepancy the budget is less certain: a wider interval around a similar median
    honest = chinchilla_fit.compute_for_loss(2.0, prob=0.9)
    assert honest["C_eti90_upper"][0] / honest["C_eti90_lower"][0] > row["C_eti90_upper"][0] / row["C_eti90_lower"][0]


def test_budget_for_loss_finds_the_first_crossing():
    """With an offset that makes loss rise again at large budgets, the search returns the first budget that
    reaches the target, and a draw whose offset keeps it above the target is unreachable."""
    law = bs.load_law("chinchilla").with_scales({"N": 1e9, "D": 2e10})
    sampled = {
        k: np.full((3, 1), v) for k, v in {"E": 1.69, "a": -1.04, "b": -0.62, "alpha": 0.34, "beta": 0.28}.items()
    }
    tilt = np.array([[0.0], [0.02], [0.2]])

    def offset(inputs, tilt=tilt):
        return tilt * np.log10(inputs["N"] / 1e9).clip(0)

    found = budget_for_loss(law, sampled, 2.0, offset=offset)
    plain = budget_for_loss(law, sampled, 2.0)
    assert found["reachable"].tolist() == [True, True, False] and plain["reachable"].all()
    assert found["C"][0] == pytest.approx(plain["C"][0], rel=1e-6) and found["C"][1] > plain["C"][1]
    at = optimum(
        law, {k: v[:2] for k, v in sampled.items()}, found["C"][:2, None], offset=lambda x: offset(x, tilt[:2])
    )
    np.testing.assert_allclose(at["loss"][:, 0], 2.0, rtol=1e-6)
    # a tilt downwards cannot take a draw below its irreducible loss
    down = budget_for_loss(law, sampled, 1.6, offset=lambda x: -offset(x))
    assert not down["reachable"].any()


def test_numeric_path_for_laws_without_closed_form():
    runs = simulate("kaplan_nd", KAPLAN_TRUTH, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplingWarning)
        result = bs.fit(
            runs, law="kaplan_nd", likelihood="normal", draws=200, tune=300, chains=2, seed=1, progressbar=False
        )
    table = result.compute_optimal([1e20, 1e22], prob=0.9)
    assert list(6 * table["N_opt_median"] * table["D_opt_median"]) == pytest.approx([1e20, 1e22], rel=1e-3)
    # along the constraint, the optimum beats its neighbours for the median draw's allocation
    grid = table["N_opt_median"][0] * np.array([0.5, 1, 2])
    loss = result.predict(N=grid, D=1e20 / (6 * grid))["median"]
    assert loss[1] <= loss[0] and loss[1] <= loss[2]
    with pytest.raises(bs.LawError, match="needs N and D"):
        optimum(bs.load_law("kaplan_n"), {"l": np.ones((1, 1)), "alpha_N": np.ones((1, 1))}, np.array(1e20))


def test_grouped_compute_optimal(chinchilla_runs):
    runs = chinchilla_runs.assign(dataset=np.where(np.arange(len(chinchilla_runs)) % 2, "a", "b"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplingWarning)
        result = bs.fit(runs, group="dataset", draws=300, tune=300, chains=2, seed=1, progressbar=False)
    table = result.compute_optimal([1e21, 1e23])
    assert list(table["group"]) == ["a", "a", "b", "b"]
    with pytest.raises(bs.GroupError, match=r"unknown group\(s\) \['unseen'\].*knows \['a', 'b'\]"):
        result.compute_optimal(1e23, group="unseen")
    new = result.compute_optimal(1e23, group="unseen", new_group=True, seed=0, prob=0.9)
    known = result.compute_optimal(1e23, group=["a", "b"], prob=0.9)
    width = lambda t: (t["N_opt_eti90_upper"] / t["N_opt_eti90_lower"]).to_numpy()  # noqa: E731
    assert new["group"][0] == "unseen" and (width(new)[0] > width(known)).all()
