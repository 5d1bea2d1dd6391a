"""The vectorised convergence diagnostics give ArviZ's numbers (rank-normalised split R-hat, bulk ESS, tail
ESS at the 5% and 95% quantiles), for every scalar at once."""

import arviz_stats
import numpy as np
import pytest
import xarray as xr

from bayes_scaling.diagnostics import convergence, diagnose

RNG = np.random.default_rng(0)
CASES = {
    "autocorrelated": np.cumsum(RNG.normal(size=(30, 4, 301)), axis=2) * 0.05 + RNG.normal(size=(30, 4, 301)),
    "independent": RNG.normal(size=(10, 4, 1000)),
    "stuck chains": np.concatenate([RNG.normal(size=(5, 2, 200)), 3 + RNG.normal(size=(5, 2, 200))], axis=1),
    "few draws": RNG.normal(size=(5, 3, 9)),
    "constant": np.ones((2, 2, 50)),
    "one chain": RNG.normal(size=(4, 1, 100)),
    "ties": RNG.integers(0, 3, size=(6, 4, 120)).astype(float),
    "beyond single precision": RNG.normal(size=(4, 4, 200)) * np.array([1e-42, 1e-30, 1e30, 1e40])[:, None, None],
}


@pytest.mark.parametrize("name", CASES)
def test_same_numbers_as_arviz(name):
    x = CASES[name]
    da = xr.DataArray(np.moveaxis(x, 0, 2), dims=("chain", "draw", "v"))
    with np.errstate(all="ignore"):
        expected = (
            arviz_stats.rhat(da).values,
            arviz_stats.ess(da, method="bulk").values,
            arviz_stats.ess(da, method="tail", prob=0.95).values,
        )
    ours = diagnose(x)
    for key, theirs in zip(("r_hat", "ess_bulk", "ess_tail"), expected, strict=True):
        # ESS: autocovariances by single-precision transforms
        np.testing.assert_allclose(ours[key], theirs, rtol=1e-9 if key == "r_hat" else 1e-6, equal_nan=True)


def test_convergence_keeps_each_variables_shape(stored_fit):
    post = stored_fit.posterior
    stats = convergence(post)
    assert stats["r_hat"]["E"].shape == () and stats["ess_bulk"]["E_group"].shape == (2,)
    np.testing.assert_allclose(stats["r_hat"]["alpha_group"], arviz_stats.rhat(post["alpha_group"]).values, rtol=1e-9)


def test_many_variables_in_blocks_on_threads():
    """Enough variables to be split into blocks computed on threads: the same numbers as ArviZ's, in order."""
    x = np.cumsum(RNG.normal(size=(4, 200, 3 * 64)), axis=1) * 0.1 + RNG.normal(size=(4, 200, 3 * 64))
    x[:, :, 70] = np.round(x[:, :, 70])  # ties in one block
    post = xr.Dataset({"a": (("chain", "draw", "v"), x[..., :100]), "b": (("chain", "draw", "w"), x[..., 100:])})
    stats = convergence(post)
    for name in ("a", "b"):
        np.testing.assert_allclose(stats["r_hat"][name], arviz_stats.rhat(post[name]).values, rtol=1e-9)
        np.testing.assert_allclose(
            stats["ess_tail"][name], arviz_stats.ess(post[name], method="tail", prob=0.95).values, rtol=1e-6
        )
