"""A small simulation-based calibration (the full one per law: benchmarks/sbc.py)."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from bayes_scaling import plots
from bayes_scaling.sbc import sbc


@pytest.mark.slow
def test_small_sbc_passes():
    result = sbc("power_irreducible", cycles=30, seed=0, tune=300)
    summary = result.summary()
    assert set(summary.index) == {"E", "a", "alpha", "A", "sigma", "nu"} and (summary["cycles"] >= 25).all()
    ranks = result.ranks.drop(columns="problems").to_numpy()
    assert ranks.min() >= 0 and ranks.max() <= result.draws
    assert result.passed, summary  # uniform ranks: p > 0.01 / 6 for every parameter
    ax = plots.plot_sbc(result)
    assert len(ax.lines) == 7 and np.isclose(ax.get_xlim(), (0, 1)).all()


@pytest.mark.slow
def test_sbc_detects_a_wrong_model(monkeypatch):
    """The check can fail: simulating with twice the noise the model assumes skews sigma's ranks."""
    import bayes_scaling.sbc as module

    real = module.ObservationModel.sample
    monkeypatch.setattr(
        module.ObservationModel,
        "sample",
        lambda self, mu, noise, rng: real(self, mu, {**noise, "sigma": 2 * noise["sigma"]}, rng),
    )
    result = sbc("power_irreducible", cycles=30, seed=0, tune=300)
    assert not result.summary().loc["sigma", "passed"]
