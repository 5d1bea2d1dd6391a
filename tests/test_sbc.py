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


def test_design_has_every_laws_inputs():
    """SBC runs every bundled law: the design has a column for each input of each law."""
    import bayes_scaling as bs
    from bayes_scaling.sbc import DESIGN_COLUMNS, design

    runs = design()
    for name in bs.list_laws():
        missing = [k for k in bs.load_law(name).inputs if DESIGN_COLUMNS.get(k) not in runs]
        assert not missing, f"{name}: the SBC design has no column for {missing}"


@pytest.mark.slow
def test_sbc_ranks_no_constant():
    """A published parameter that is a constant (log_linear's C0 is the runs' reference compute) would rank
    0 in every cycle and fail SBC however right the model: it is not ranked."""
    result = sbc("log_linear", cycles=4, seed=0, tune=200)
    assert set(result.ranks.columns) == {"a", "b", "sigma", "nu", "problems"} and len(result.ranks) == 4
