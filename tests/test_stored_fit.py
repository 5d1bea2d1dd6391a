"""The fast tier: everything downstream of sampling, on a stored real fit (tests/data/grouped_fit.nc, made by
tests/data/make_fixtures.py), and the CLI called in this process. No test here samples."""

import json
import subprocess
import sys

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayes_scaling as bs
from bayes_scaling import intervals
from conftest import process, run

AT = {"N": np.array([7e10, 1e9]), "D": np.array([1.4e12, 2e10])}


def test_draws_have_named_dims_and_tables_are_their_summary(stored_fit, stored_fit_path):
    draws = stored_fit.predict_draws(group="web", kind="observation", seed=0, **AT)
    assert isinstance(draws, xr.DataArray) and draws.dims == ("chain", "draw", "point")
    assert draws.sizes == {"chain": 2, "draw": 200, "point": 2} and list(draws["group"].values) == ["web", "web"]
    assert (draws["distance"].values[0] > 0.5) and draws["distance"].values[1] >= 0
    table = stored_fit.predict(group="web", kind="observation", seed=0, prob=0.9, **AT)
    pd.testing.assert_frame_equal(table, intervals.summarize(draws, 0.9))
    assert table["median"].to_numpy() == pytest.approx(np.median(draws.values.reshape(400, 2), axis=0))
    assert table.attrs["interval"] == "equal-tailed" and table.attrs["kind"] == "observation"

    opt = stored_fit.optimal_draws([1e21, 1e23])
    assert isinstance(opt, xr.Dataset) and opt["N_opt"].dims == ("chain", "draw", "group", "budget")
    assert list(opt["group"].values) == ["code", "web"] and list(opt["C"].values) == [1e21, 1e23]
    budget = stored_fit.budget_draws(2.2, group="code")
    assert budget["C"].dims == ("chain", "draw", "group") and budget.attrs["target"] == 2.2


def test_unknown_group_is_an_error_unless_asked_for(stored_fit):
    with pytest.raises(bs.GroupError, match=r"unknown group\(s\) \['cod'\].*knows \['code', 'web'\]"):
        stored_fit.predict(group="cod", **AT)
    with pytest.raises(bs.GroupError, match="pass group="):
        stored_fit.predict(**AT)
    new = stored_fit.predict(group="new", new_group=True, seed=0, prob=0.9, **AT)
    known = stored_fit.predict(group="code", seed=0, prob=0.9, **AT)
    width = lambda t: (t["eti90_upper"] - t["eti90_lower"]).to_numpy()  # noqa: E731
    assert (width(new) > width(known)).all()


def test_arviz_works_on_the_tree(stored_fit):
    import arviz_plots

    tree = stored_fit.tree
    assert "posterior_predictive" in tree.children
    pit = az.loo_pit(tree)
    values = pit["log_loss"].values
    assert values.shape == (len(stored_fit.runs),) and ((values >= 0) & (values <= 1)).all()
    assert arviz_plots.plot_ppc_dist(tree) is not None
    table = az.summary(tree, ci_prob=0.9)
    assert list(table.index[:5]) == ["E", "A", "B", "alpha", "beta"]
    with_pred = stored_fit.with_predictions(group="web", seed=0, **AT)
    assert with_pred["predictions"]["log_loss"].dims == ("chain", "draw", "point")
    assert list(with_pred["predictions_constant_data"]["N"].values) == [7e10, 1e9]
    assert "predictions" not in tree.children  # the fit's own tree is left alone


def test_model_is_the_pymc_model(stored_fit):
    model = stored_fit.model
    assert {"E", "alpha", "sigma"} <= {v.name for v in model.free_RVs}
    assert tuple(model.coords["group"]) == ("code", "web")


def test_cli_json_carries_its_provenance(stored_fit_path, tmp_path):
    out = json.loads(run("predict", stored_fit_path, "--at", "N=7e10,D=1.4e12", "--group", "web", "--json").stdout)
    assert (out["schema"], out["version"], out["law"], out["runs"]) == (1, bs.__version__, "chinchilla", 128)
    assert out["interval"] == "equal-tailed" and out["rows"][0]["group"] == "web"
    summary = json.loads(run("summary", stored_fit_path, "--json").stdout)
    assert summary["rows"][0]["parameter"] == "E" and summary["schema"] == 1


def test_cli_group_typo_and_new_group(stored_fit_path):
    typo = run("predict", stored_fit_path, "--at", "N=7e10,D=1.4e12", "--group", "cod", check=False)
    assert typo.returncode == 2 and typo.stderr.count("\n") == 1
    assert "unknown group(s) ['cod']" in typo.stderr and "['code', 'web']" in typo.stderr
    assert "--new-group" in typo.stderr and "Traceback" not in typo.stderr
    new = run("predict", stored_fit_path, "--at", "N=7e10,D=1.4e12", "--group", "cod", "--new-group", "--json")
    assert json.loads(new.stdout)["rows"][0]["group"] == "cod"


def test_cli_parquet_in_csv_out(stored_fit, stored_fit_path, tmp_path):
    held = pd.DataFrame({"n_params": [2e9, 4e9], "n_tokens": [4e10, 8e10], "dataset": ["web", "code"]})
    held["loss"] = stored_fit.predict(held)["median"].to_numpy()
    held.to_parquet(tmp_path / "held.parquet")
    csv = tmp_path / "pred.csv"
    run("predict", stored_fit_path, "--runs", tmp_path / "held.parquet", "--csv", csv)
    table = pd.read_csv(csv)
    assert list(table["group"]) == ["web", "code"] and {"median", "eti90_lower", "observed"} <= set(table)
    again = run("predict", stored_fit_path, "--runs", tmp_path / "held.parquet", "--csv", csv, check=False)
    assert again.returncode == 2 and "exists" in again.stderr


def test_report_from_stored_fit_in_process(stored_fit_path, tmp_path):
    page = tmp_path / "r.html"
    run("report", stored_fit_path, "--out", page)
    text = page.read_text()
    assert text.index("Decision") < text.index("Figures") and 'src="http' not in text
    assert text.count('<img src="data:image/png;base64,') >= 8


def test_real_process_version_and_closed_pipe(stored_fit_path, tmp_path):
    version = process("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"bayes-scaling {bs.__version__}"
    # far more output than a pipe buffers, read by a reader that stops after one line
    points = [f"--at=N={n:.4g},D={20 * n:.4g}" for n in np.geomspace(1e8, 1e11, 1500)]
    pipe = subprocess.Popen(
        [sys.executable, "-m", "bayes_scaling.cli", "predict", str(stored_fit_path), "--group", "web", *points],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert pipe.stdout.readline()
    pipe.stdout.close()
    err = pipe.stderr.read().decode()
    assert pipe.wait(timeout=120) == 1 and "Broken pipe" not in err and "Traceback" not in err
