"""Pooling across groups: a hierarchical recovery test and predictions for known and new groups."""

import warnings

import numpy as np
import pandas as pd
import pytest

import bayes_scaling as bs
from conftest import CHINCHILLA_TRUTH, shared_csv, simulate


@pytest.fixture(scope="module")
def grouped_runs() -> tuple[pd.DataFrame, dict]:
    """8 groups sharing the exponents, each with its own E and A (as datasets differ in entropy)."""
    rng = np.random.default_rng(8)
    frames, truth = [], {}
    for g in range(8):
        params = {**CHINCHILLA_TRUTH, "E": 1.69 * np.exp(rng.normal(0, 0.08)), "A": 406.4 * np.exp(rng.normal(0, 0.15))}
        truth[f"g{g}"] = params
        frame = simulate("chinchilla", params, seed=100 + g).iloc[::4]  # 16 runs a group
        frames.append(frame.assign(dataset=f"g{g}"))
    return pd.concat(frames, ignore_index=True), truth


@pytest.fixture(scope="module")
def grouped_fit(grouped_runs) -> bs.ScalingFit:
    runs, _ = grouped_runs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplingWarning)  # checked in the test
        return bs.fit(
            runs,
            group="dataset",
            pooling={"alpha": "shared", "beta": "shared", "b": "shared"},
            seed=5,
            draws=2000,  # E, a and alpha of the population mix slowly (R-hat 1.005-1.02 over seeds at 1000)
            progressbar=False,
        )


def test_hierarchical_recovery(grouped_fit, grouped_runs):
    _, truth = grouped_runs
    assert grouped_fit.settings["parametrisation"] == "non_centred"  # the default
    d = grouped_fit.diagnostics
    assert d["divergences"] == 0 and d["max_r_hat"] <= 1.01, d
    table = grouped_fit.summary(prob=0.9)
    for g, params in truth.items():
        for name in ("E", "A"):
            lo, hi = table.loc[f"{name}[{g}]", ["eti90_lower", "eti90_upper"]]
            assert lo <= params[name] <= hi, f"{name}[{g}] = {params[name]:.3f} outside [{lo:.3f}, {hi:.3f}]"
    for name in ("alpha", "beta"):
        lo, hi = table.loc[name, ["eti90_lower", "eti90_upper"]]
        assert lo <= CHINCHILLA_TRUTH[name] <= hi
    assert {"E_sd", "a_sd", "E", "A", "B"} <= set(table.index) and "alpha_sd" not in table.index


def test_centred_fit_samples_group_values_and_agrees(grouped_runs, tmp_path):
    """Six groups of 64 runs with 2 parameters of their own: the centred hierarchy samples each group's value on
    the link scale (``E_group_link``), with the offsets ``E_z`` computed from them; it recovers the groups
    and agrees with the non-centred fit of the same runs, and a save keeps it."""
    _, truth = grouped_runs
    runs = pd.concat(
        [simulate("chinchilla", truth[g], seed=200 + i).assign(dataset=g) for i, g in enumerate(list(truth)[:6])]
    )
    fits = {}
    for parametrisation in ("centred", "non_centred"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bs.SamplingWarning)  # checked below
            fits[parametrisation] = bs.fit(
                runs,
                group="dataset",
                pooling={"alpha": "shared", "beta": "shared", "b": "shared"},
                parametrisation=parametrisation,
                seed=5,
                progressbar=False,
            )
    centred = fits["centred"]
    assert centred.settings["parametrisation"] == "centred"
    assert {"E_group_link", "a_group_link"} <= set(centred.sampled_names) and "E_z" not in centred.sampled_names
    assert {"E_z", "a_z"} <= set(centred.posterior.data_vars)
    for fit in fits.values():
        d = fit.diagnostics
        assert d["divergences"] == 0 and d["max_r_hat"] <= 1.01, d
    ours, theirs = centred.summary(prob=0.9), fits["non_centred"].summary(prob=0.9)
    for g in list(truth)[:6]:
        lo, hi = ours.loc[f"E[{g}]", ["eti90_lower", "eti90_upper"]]
        assert lo <= truth[g]["E"] <= hi
        sd = theirs.loc[f"E[{g}]", "sd"]
        assert abs(ours.loc[f"E[{g}]", "median"] - theirs.loc[f"E[{g}]", "median"]) < 0.3 * sd
    loaded = bs.ScalingFit.load(centred.save(tmp_path / "centred.nc"))
    assert loaded.parametrisation == "centred" and loaded.diagnostics == centred.diagnostics
    assert loaded._fit_options()["parametrisation"] == "centred"
    assert "E_group_link" in loaded.model.named_vars


def test_parametrisation_is_checked(grouped_runs):
    with pytest.raises(bs.OptionError, match="parametrisation must be one of non_centred, centred, got 'centered'"):
        bs.fit(grouped_runs[0], group="dataset", parametrisation="centered")


def test_new_group_band_is_wider_than_every_known_group(grouped_fit):
    at = {"N": 7e10, "D": 1.4e12}
    known = grouped_fit.predict(group=[f"g{g}" for g in range(8)], N=np.full(8, at["N"]), D=np.full(8, at["D"]))
    new = grouped_fit.predict(group="a new dataset", new_group=True, seed=0, **at)
    assert not known["new_group"].any() and new["new_group"].all()
    with pytest.raises(bs.GroupError, match=r"unknown group\(s\) \['a new dataset'\].*knows \['g0'.*new_group=True"):
        grouped_fit.predict(group="a new dataset", **at)
    width = lambda t: (t["eti90_upper"] - t["eti90_lower"]).to_numpy()  # noqa: E731
    assert (width(new)[0] > width(known)).all()


def test_two_new_groups_are_independent(grouped_fit):
    table = grouped_fit.predict(N=[7e10, 7e10], D=[1.4e12, 1.4e12], group=["new-1", "new-2"], new_group=True, seed=0)
    assert table["new_group"].all()
    draws = grouped_fit.loss_draws({"N": np.full(2, 7e10), "D": np.full(2, 1.4e12)}, np.array([-1, -2]), seed=0)
    assert not np.allclose(draws[:, 0], draws[:, 1])
    same = grouped_fit.loss_draws({"N": np.full(2, 7e10), "D": np.full(2, 1.4e12)}, np.array([-1, -1]), seed=0)
    np.testing.assert_array_equal(same[:, 0], same[:, 1])


def test_grouped_predict_needs_group_and_saves(grouped_fit, tmp_path):
    with pytest.raises(bs.BayesScalingError, match="pass group= one of"):
        grouped_fit.predict(N=1e9, D=2e10)
    path = grouped_fit.save(tmp_path / "grouped.nc")
    loaded = bs.ScalingFit.load(path)
    pd.testing.assert_frame_equal(
        loaded.predict(N=1e9, D=2e10, group="g3"), grouped_fit.predict(N=1e9, D=2e10, group="g3")
    )
    assert loaded.pooling == grouped_fit.pooling and loaded.runs.groups == grouped_fit.runs.groups


def test_pooling_errors(chinchilla_runs):
    with pytest.raises(bs.BayesScalingError, match="needs a group column"):
        bs.fit(chinchilla_runs, pooling="partial")
    runs = chinchilla_runs.assign(dataset="x")
    with pytest.raises(bs.BayesScalingError, match=r"pooling given for unknown parameter\(s\) \['A'\]"):
        bs.fit(runs, group="dataset", pooling={"A": "partial"})
    with pytest.raises(bs.BayesScalingError, match="must be one of shared, partial, none"):
        bs.fit(runs, group="dataset", pooling="complete")


def test_noise_by_group(grouped_runs):
    runs, _ = grouped_runs
    runs = runs[runs["dataset"].isin(["g0", "g1", "g2"])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplingWarning)
        result = bs.fit(
            runs,
            group="dataset",
            pooling="shared",
            noise_by_group=True,
            likelihood="normal",
            draws=300,
            tune=300,
            chains=2,
            seed=1,
            progressbar=False,
        )
    assert result.posterior["sigma"].dims == ("chain", "draw", "group")
    assert {"sigma[g0]", "sigma[g2]"} <= set(result.summary().index)
    known = result.predict(N=1e9, D=2e10, group="g1", kind="observation", seed=0)
    new = result.predict(N=1e9, D=2e10, group="elsewhere", new_group=True, kind="observation", seed=0)
    assert np.isfinite(known["median"]).all() and np.isfinite(new["median"]).all()
    assert result.tree["log_likelihood"]["log_loss"].shape == (2, 300, len(runs))
    with pytest.raises(bs.BayesScalingError, match="noise_by_group=True needs a group column"):
        bs.fit(runs, noise_by_group=True)


@pytest.mark.parametrize(
    ("folder", "name", "group"),
    [
        ("gadre", "gadre2024", "dataset"),
        pytest.param("porian2024_isoflops", "porian2024_isoflop_points.csv", "config_id", marks=pytest.mark.slow),
    ],
)
def test_real_grouped_runs_have_no_divergences(folder, name, group):
    """Gadre 2024 grouped by pretraining dataset (104 runs); Porian 2024 IsoFLOP points grouped by their
    15 configurations (1,745 points, ~3.5 minutes): default priors, partial pooling, zero divergences."""
    runs = bs.load_dataset(name) if folder == "gadre" else shared_csv(folder, name)
    result = bs.fit(runs, group=group, seed=1, progressbar=False)
    d = result.diagnostics
    assert d["divergences"] == 0 and d["max_r_hat"] <= 1.01, d


def test_each_group_tilts_on_its_own(stored_fit):
    """Beyond the runs each group's discrepancy has its own tilt: far points of two groups vary
    independently from draw to draw, two far points of one group together; a new group gets a fresh tilt."""
    fit = stored_fit.with_discrepancy("LogNormal(2, 0.01)", seed=0)  # kappa ~ 7: the discrepancy dominates
    assert fit.posterior["z"].dims == ("chain", "draw", "group")
    far = {"N": [1e12, 3e12], "D": [2e13, 6e13]}
    web, code, new = (
        np.log(fit.predict_draws(**far, group=g, new_group=g == "new", seed=1).values.reshape(-1, 2))
        for g in ("web", "code", "new")
    )
    assert np.corrcoef(web[:, 1], web[:, 0])[0, 1] > 0.9
    assert abs(np.corrcoef(web[:, 1], code[:, 1])[0, 1]) < 0.3
    assert abs(np.corrcoef(web[:, 1], new[:, 1])[0, 1]) < 0.3
