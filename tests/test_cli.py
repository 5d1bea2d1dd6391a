"""The command line, called in this process (compiled models are reused across tests); what only a real
process shows (the entry point, a closed pipe) is checked in test_stored_fit.py."""

import json

import numpy as np
import pytest

from bayes_scaling.result import ScalingFit
from conftest import CHINCHILLA_TRUTH, run, simulate


def test_laws_json():
    rows = json.loads(run("laws", "--json").stdout)["rows"]
    by_name = {row["name"]: row for row in rows}
    assert set(by_name) == {
        "kaplan_n",
        "kaplan_d",
        "kaplan_c",
        "kaplan_nd",
        "chinchilla",
        "chinchilla_tied",
        "power_irreducible",
        "broken_power",
        "data_constrained",
        "sigmoid_compute",
        "broken_sigmoid",
        "sigmoid_loss",
        "log_linear",
        "isoflop_parabola",
        "lr_annealing",
        "kaplan_ns",
        "batch_steps",
    }
    assert (
        by_name["data_constrained"]["inputs"] == ["N", "D", "U"]
        and "Muennighoff" in by_name["data_constrained"]["citation"]
    )
    assert by_name["chinchilla"]["inputs"] == ["N", "D"]
    assert "Hoffmann" in by_name["chinchilla"]["citation"] and "Kaplan" in by_name["kaplan_nd"]["citation"]
    assert "chinchilla" in run("laws").stdout


@pytest.mark.slow
def test_fit_summary_predict(tmp_path):
    csv = tmp_path / "runs.csv"
    simulate("chinchilla", CHINCHILLA_TRUTH, seed=7).rename(columns={"loss": "val_loss"}).to_csv(csv, index=False)
    out = tmp_path / "fit.nc"
    options = [
        "--law",
        "chinchilla",
        "--column",
        "loss=val_loss",
        "--draws",
        "300",
        "--tune",
        "300",
        "--chains",
        "2",
        "--seed",
        "1",
    ]
    proc = run("fit", csv, *options, "--out", out, "--prior", "alpha=LogNormal(mu=-1.1, sigma=0.3)", "--json")
    fitted = json.loads(proc.stdout)
    # not a terminal: one line per phase instead of a progress bar
    assert "bayes-scaling: sampling chinchilla on 64 runs: 2 chains x 300 draws" in proc.stderr
    assert "bayes-scaling: sampled in" in proc.stderr and "Traceback" not in proc.stderr
    assert out.is_file() and fitted["saved"] == str(out)
    assert [r["parameter"] for r in fitted["rows"]] == ["E", "A", "B", "alpha", "beta", "sigma", "nu", "kappa"]
    assert fitted["diagnostics"]["divergences"] == 0

    summary = json.loads(run("summary", out, "--json", "--prob", 0.8).stdout)
    alpha = next(r for r in summary["rows"] if r["parameter"] == "alpha")
    assert alpha["eti80_lower"] < 0.34 < alpha["eti80_upper"]
    assert "alpha" in run("summary", out).stdout

    pred = json.loads(
        run("predict", out, "--at", "N=7e10,D=1.4e12", "--at", "N=1e9,D=2e10", "--prob", 0.9, "--json").stdout
    )
    assert [r["N"] for r in pred["rows"]] == [7e10, 1e9] and pred["interval"] == "equal-tailed"
    first = pred["rows"][0]
    assert first["eti90_lower"] < first["median"] < first["eti90_upper"] and "eti50_lower" not in first

    # never overwrite without --overwrite
    again = run("fit", csv, "--column", "loss=val_loss", "--out", out, check=False)
    assert again.returncode == 2 and "exists; pass --overwrite" in again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fit", "missing.csv"], "no such file: 'missing.csv'"),
        (["fit", "{dir}"], "is a folder, not a table"),
        (["fit", "{csv}", "--column", "loss=a,loss=b"], "--column: 'loss' is given twice"),
        (["fit", "{csv}", "--column", "N=a", "--column", "N=b"], "--column: 'N' is given twice"),
        (["fit", "{csv}", "--column", ""], "--column: expected NAME=VALUE, got ''"),
        (["fit", "{csv}", "--formula", ""], "formula must be a non-empty string"),
        (["fit", "{csv}", "--law", "nope"], "unknown law 'nope'"),
        (["fit", "{csv}", "--prior", "alpha=Wishart(1)"], "unknown distribution 'Wishart'"),
        (["fit", "{csv}"], "missing column(s) 'loss'"),
        (["fit", "{csv}", "--autocorrelated", "S"], "autocorrelated='S' is not an input of law 'chinchilla'"),
        (["summary", "missing.nc"], "no saved fit at 'missing.nc'"),
        (["predict", "missing.nc", "--at", "N=1e9"], "no saved fit"),
        (["summary", "{csv}"], "is not a saved bayes_scaling fit"),
        (["fit", "{csv}", "--formula", "E + A * N**-alpha", "--prior", "E=Normal(sigma=1, 0)"], "positional value"),
        (["fit", "{csv}", "--out", "nowhere/fit.nc"], "folder 'nowhere' does not exist"),
        (["backtest", "{csv}", "--laws", "chinchilla,kaplan_nd"], "missing column(s) 'loss'"),
        (["stack", "{csv}", "--laws", "chinchilla,kaplan_nd", "--at", "N=1e9"], "missing ['D'], unknown []"),
        (["backtest", "{csv}", "--laws", "chinchilla,kaplan_nd", "--client", "nowhere:1"], "no Dask scheduler"),
        (["fit", "{csv}", "--csv", "{dir}/same.nc", "--out", "{dir}/same.nc"], "--csv and --out name the same file"),
        (["fit", "{csv}", "--csv", "{csv}", "--overwrite"], "is the file this command reads (data)"),
        (["summary", "missing.nc", "--csv", "{dir}", "--overwrite"], "is a folder; give a file name"),
        (["fit", "{csv}", "--csv", ""], "--csv needs a file name"),
        (["calibrate", "missing.nc", "--runs", "{csv}", "--plot", "{dir}/plot.xyz"], "end it with a figure format"),
        (["fit", "{csv}", "--tune", "0"], "nutpie needs at least one tuning step"),
    ],
)
def test_errors_are_one_clear_line(tmp_path, args, message):
    csv = tmp_path / "runs.csv"
    simulate("chinchilla", CHINCHILLA_TRUTH).drop(columns="loss").to_csv(csv, index=False)
    proc = run(*[a.format(csv=csv, dir=tmp_path) for a in args], check=False)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_demo_json():
    result = json.loads(run("demo", "--json", "--seed", 1, "--draws", 500, "--tune", 500).stdout)
    preds = result["predictions"]
    assert [p["model"] for p in preds] == ["open_lm_1b", "open_lm_1b", "open_lm_7b"] * 3
    assert [p["group"] for p in preds] == ["c4_original"] * 3 + ["rpj"] * 3 + ["rw_original"] * 3
    for p in preds:
        assert p["eti90_lower"] < p["median"] < p["eti90_upper"] and p["observed"] > 2
    assert {r["parameter"] for r in result["summary"]} >= {"E", "A", "B", "alpha", "beta", "E[rpj]", "E_sd"}
    assert result["diagnostics"]["divergences"] == 0


@pytest.mark.slow
def test_fit_custom_formula_with_priors_file(tmp_path):
    csv = tmp_path / "runs.csv"
    simulate("chinchilla", CHINCHILLA_TRUTH, seed=2).to_csv(csv, index=False)
    priors = tmp_path / "priors.toml"
    priors.write_text('E = "LogNormal(0.5, 0.4)"\nA = { dist = "LogNormal", kwargs = { mu = 6, sigma = 2 } }\n')
    out = json.loads(
        run(
            "fit",
            csv,
            "--formula",
            "E + A * N**-alpha",
            "--priors",
            priors,
            "--prior",
            "alpha=LogNormal(-1.2, 0.5)",
            "--draws",
            200,
            "--tune",
            200,
            "--chains",
            2,
            "--seed",
            1,
            "--json",
        ).stdout
    )
    assert [r["parameter"] for r in out["rows"]] == ["A", "E", "alpha", "sigma", "nu", "kappa"]
    bad = run("fit", csv, "--formula", "E + N.__class__", check=False)
    assert bad.returncode == 2 and "attribute access is not allowed at column 4: `N.__class__`" in bad.stderr


@pytest.mark.slow
def test_compare_and_backtest(tmp_path):
    csv = tmp_path / "runs.csv"
    simulate("chinchilla", CHINCHILLA_TRUTH, seed=3).to_csv(csv, index=False)
    common = ["--laws", "chinchilla,kaplan_nd", "--draws", 300, "--tune", 300, "--chains", 2, "--seed", 1, "--json"]
    compared = json.loads(run("compare", csv, *common).stdout)
    assert compared["laws"] == ["chinchilla", "kaplan_nd"] and compared["runs"] == 64
    table = compared["rows"]
    assert [r["law"] for r in table] == ["chinchilla", "kaplan_nd"] and "n_pareto_k_high" in table[0]
    rows = json.loads(run("backtest", csv, "--holdout", "0.3,0.2", *common).stdout)["rows"]
    assert [r["law"] for r in rows] == ["chinchilla", "kaplan_nd"] * 2
    assert {"lpd", "coverage_50", "coverage_90", "mdape"} <= set(rows[0])
    bad = run("compare", csv, "--laws", "chinchilla", check=False)
    assert bad.returncode == 2 and "at least two laws" in bad.stderr


def cli(*args):
    proc = run(*args, check=False)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.slow
def test_calibrate_predict_runs_and_stack(tmp_path):
    runs = simulate("chinchilla", CHINCHILLA_TRUTH, seed=7)
    order = runs["compute_flops"].rank(method="first")
    small, large = runs[order <= 48], runs[order > 48]
    csv, held = tmp_path / "runs.csv", tmp_path / "held.csv"
    runs.to_csv(csv, index=False)
    large.to_csv(held, index=False)
    quick = ["--draws", 200, "--tune", 200, "--chains", 2, "--seed", 1]

    code, out, _ = cli("calibrate", csv, "--holdout", 0.25, *quick, "--plot", tmp_path / "cal.png", "--json")
    cal = json.loads(out)
    assert code == 0 and cal["summary"]["n"] == 16 and (tmp_path / "cal.png").is_file()
    assert [r["prob"] for r in cal["rows"]] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
    assert cal["summary"]["coverage_90"] >= 0.75  # runs from the fitted law itself

    small.to_csv(tmp_path / "small.csv", index=False)
    assert cli("fit", tmp_path / "small.csv", "--out", tmp_path / "fit.nc", *quick, "--json")[0] == 0
    code, out, _ = cli("calibrate", tmp_path / "fit.nc", "--runs", held, "--json")
    assert code == 0 and json.loads(out)["summary"]["n"] == 16
    code, out, _ = cli("predict", tmp_path / "fit.nc", "--runs", held, "--kind", "observation", "--json")
    pred = json.loads(out)
    assert (
        pred["heldout"] == 16
        and pred["runs"] == 48
        and pred["inside"]["eti90"] == sum(r["inside_eti90"] for r in pred["rows"])
    )
    assert all(r["distance"] >= 0 for r in pred["rows"]) and "observed" in pred["rows"][0]

    code, out, _ = cli(
        "stack",
        csv,
        "--laws",
        "chinchilla,kaplan_nd",
        "--holdout",
        "0.4,0.25",
        "--at",
        "N=1e10,D=2e11",
        "--kind",
        "observation",
        *quick,
        "--json",
    )
    stacked = json.loads(out)
    assert code == 0 and [r["law"] for r in stacked["weights"]] == ["chinchilla", "kaplan_nd"]
    assert abs(sum(r["weight"] for r in stacked["weights"]) - 1) < 1e-9 and len(stacked["rows"]) == 1

    code, _, err = cli("calibrate", tmp_path / "fit.nc")
    assert code == 2 and "needs --runs" in err
    code, _, err = cli("predict", tmp_path / "fit.nc", "--runs", held, "--at", "N=1e9,D=2e10")
    assert code == 2 and "one of the two" in err
    for option in ("prob=0.5", "seed=1"):  # an option of the prediction is not an input
        code, _, err = cli("predict", tmp_path / "fit.nc", "--at", f"N=1e9,D=2e10,{option}")
        assert code == 2 and f"{option.split('=')[0]!r} is not one (it is an option)" in err, err


def test_stack_by_group(tmp_path):
    """`stack --group`: the weights pooled and per group; with --at, a prediction for every group (the
    group column's name was once taken for a group label)."""
    runs = simulate("chinchilla", CHINCHILLA_TRUTH, seed=7)
    runs["dataset"] = np.where(np.arange(len(runs)) % 2 == 0, "a", "b")
    csv = tmp_path / "runs.csv"
    runs.to_csv(csv, index=False)
    common = ["stack", csv, "--laws", "chinchilla,kaplan_nd", "--holdout", 0.4, "--group", "dataset"]
    quick = ["--draws", 200, "--tune", 200, "--chains", 2, "--seed", 1, "--json"]
    code, out, _ = cli(*common, *quick)
    rows = json.loads(out)["rows"]
    assert code == 0 and [(r["dataset"], r["law"]) for r in rows] == [
        (g, law) for g in ("(all)", "a", "b") for law in ("chinchilla", "kaplan_nd")
    ]
    assert sum(r["n_predictions"] for r in rows if r["dataset"] != "(all)") == 2 * 26
    code, out, _ = cli(*common, "--at", "N=1e10,D=2e11", *quick)
    assert code == 0 and [r["group"] for r in json.loads(out)["rows"]] == ["a", "b"]


def test_modes_and_keeping_chains(chinchilla_fit, tmp_path):
    """One mode: all the mass; --keep saves a fit of those chains (the user's file is never replaced)."""
    path = chinchilla_fit.save(tmp_path / "fit.nc")
    out = json.loads(run("modes", path, "--json").stdout)
    assert [(r["chains"], round(r["share"], 6)) for r in out["rows"]] == [("0, 1, 2, 3", 1.0)]
    kept = tmp_path / "kept.nc"
    out = json.loads(run("modes", path, "--keep", "1,3", "--out", kept, "--json").stdout)
    assert out["saved"] == str(kept) and [r["chains"] for r in out["rows"]] == ["0, 1"]
    assert ScalingFit.load(kept).settings["kept_chains"] == [1, 3]
    for args, message in (
        (["--keep", "1"], "--keep needs --out FILE.nc"),
        (["--out", tmp_path / "k2.nc"], "--out needs --keep"),
        (["--keep", "1,x", "--out", tmp_path / "k2.nc"], "chain 'x' is not a chain number"),
        (["--keep", "\u00b2", "--out", tmp_path / "k2.nc"], "is not a chain number"),
        (["--keep", "5", "--out", tmp_path / "k2.nc"], "chains must be whole numbers among 0..3"),
        (["--keep", "0", "--out", kept], "exists; pass --overwrite"),
        (["--seed", "-1"], "seed must be a whole number >= 0"),
    ):
        proc = run("modes", path, *args, check=False)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "k2.nc").exists()
