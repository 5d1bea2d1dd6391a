"""Hostile input and unreliable fits: every user-caused failure is a named package error, and a fit that
cannot describe its runs says so (issue: reliability)."""

import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

import bayes_scaling as bs
from bayes_scaling import plots
from bayes_scaling.data import warn_if_repeated
from bayes_scaling.design import candidate_table
from bayes_scaling.laws import Law, laws_dir
from bayes_scaling.modes import bridge_log_mass
from bayes_scaling.priors import Prior
from bayes_scaling.report import write_report
from conftest import CHINCHILLA_TRUTH, run, simulate

QUICK = {"draws": 200, "tune": 300, "chains": 2, "seed": 1, "progressbar": False}


@pytest.mark.parametrize(
    ("scale", "message", "symptom"),
    [
        (1e-6, "typical loss is 3.16e-06", "fitted runs lie inside their own 50% predictive band"),
        (100, "typical loss is 316", "is pinned against its prior"),
    ],
)
def test_wrong_units_are_named(scale, message, symptom):
    runs = simulate("chinchilla", CHINCHILLA_TRUTH, seed=4)
    runs["loss"] *= scale
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = bs.fit(runs, **QUICK)
    said = [str(w.message) for w in caught if issubclass(w.category, bs.MisfitWarning)]
    assert any(message in s and "percent, scaled" in s for s in said), said
    assert any(symptom in s for s in said), said
    assert fit.misfits and not bs.fit(simulate("chinchilla", CHINCHILLA_TRUTH, seed=4), **QUICK).misfits


def test_a_wrong_law_fails_its_own_check():
    """Runs with a bend the law cannot follow: far fewer than 90% inside their own 90% band."""
    runs = simulate("chinchilla", CHINCHILLA_TRUTH, seed=4)
    runs["loss"] *= np.where(runs["n_params"] > 3e8, 1.15, 1.0)  # a 15% step half-way up the sizes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bs.fit(runs, likelihood="normal", **QUICK)
    assert fit.fit_check["p_trend"] < 1e-3, fit.fit_check
    assert any("residuals run in streaks along N" in m for m in fit.misfits), fit.misfits


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("Normal(inf, 1)", "must be a finite number"),
        ("LogNormal(0, inf)", "must be a finite number"),
        ("Uniform(1, 0)", "needs lower < upper"),
        ("TruncatedNormal(0, 1, lower=2, upper=1)", "needs lower < upper"),
        ("Normal(nan, 1)", "must be a finite number"),
    ],
)
def test_priors_that_would_crash_the_sampler(spec, message):
    with pytest.raises(bs.PriorError, match=message):
        Prior.from_spec("alpha", spec)


@pytest.mark.parametrize(
    ("formula", "inputs", "priors", "message"),
    [
        ("2*N**-0.05", ["N"], {}, "has no parameters"),
        ("10**10**10*A + E", ["N"], {"A": "Normal(0,1)", "E": "Normal(0,1)"}, "is inf (not finite)"),
        ("A + E", ["N"], {"A": "Normal(0,1)", "E": "Normal(0,1)"}, "does not use its input(s) ['N']"),
        ("chain + N", ["N"], {"chain": "Normal(0,1)"}, "['chain'] are names the model uses itself"),
        ("draw * N", ["N"], {"draw": "Normal(0,1)"}, "['draw'] are names the model uses itself"),
        ("-" * 100_000 + "N", ["N"], {}, "characters long; the limit is 2000"),
        ("E + " * 250_000 + "N", ["N"], {"E": "Normal(0,1)"}, "characters long; the limit is 2000"),
    ],
)
def test_formulas_that_would_crash(formula, inputs, priors, message):
    with pytest.raises(bs.LawError) as info:
        Law.from_formula(formula, inputs=inputs, priors=priors)
    assert message in str(info.value)


def test_law_files_that_would_crash(tmp_path):
    garbage = tmp_path / "random.toml"
    garbage.write_bytes(np.random.default_rng(0).bytes(256))
    with pytest.raises(bs.LawError, match="not UTF-8 text"):
        bs.load_law(garbage)
    no_table = tmp_path / "five.toml"
    no_table.write_text(
        'name = "x"\nformula = "E + N"\ninputs = ["N"]\ncitation = "x"\n[scales]\nN = 1e9\n[model]\npriors = 5\n'
        '[natural]\nE = "E"\n'
    )
    with pytest.raises(bs.LawError, match=r"\[model.priors\] must be a table"):
        bs.load_law(no_table)
    with pytest.raises(bs.PriorError, match="priors must be a mapping"):
        bs.fit(simulate("chinchilla", CHINCHILLA_TRUTH), priors=[("alpha", "Normal(0, 1)")])


def test_sampler_that_cannot_start_names_the_variable():
    """A law negative at every starting point: log(law) is NaN, so the log density of the runs is too."""
    law = Law.from_formula("-A * N**-0.1", inputs=["N"], priors={"A": "LogNormal(0, 0.1)"})
    with pytest.raises(bs.SamplerStartError, match=r"not finite at the initial point for \['log_loss'\]"):
        bs.fit(simulate("chinchilla", CHINCHILLA_TRUTH), law=law, **QUICK)


def test_strict_mode(chinchilla_runs, tmp_path):
    with pytest.raises(bs.ConvergenceError, match=r"chinchilla \(strict\): .*ESS"):
        bs.fit(chinchilla_runs, draws=30, tune=100, chains=2, seed=2, progressbar=False, strict=True)
    csv = tmp_path / "runs.csv"
    chinchilla_runs.to_csv(csv, index=False)
    proc = run("fit", csv, "--draws", 30, "--tune", 100, "--chains", 1, "--seed", 2, "--strict", check=False)
    assert proc.returncode == 2 and "bayes-scaling: error: chinchilla (strict)" in proc.stderr
    # one chain: R-hat is undefined (NaN), and the JSON is still strict JSON
    proc = run("fit", csv, "--draws", 30, "--tune", 100, "--chains", 1, "--seed", 2, "--json")
    out = json.loads(proc.stdout, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert out["diagnostics"]["max_r_hat"] is None
    assert "bayes-scaling: warning: chinchilla:" in proc.stderr


def test_too_few_draws_are_named_not_passed(chinchilla_runs):
    """R-hat and ESS cannot be estimated from 3 draws a chain, nor bands checked: said once, as a convergence
    problem, with no numpy warning and no misfit claimed on bands of three draws."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = bs.fit(chinchilla_runs, draws=3, tune=50, chains=2, seed=0, progressbar=False)
        table = fit.summary()
    assert fit.problems == ["3 draw(s) a chain are too few to estimate R-hat or ESS (at least 4; 1000 is the default)"]
    assert [w.category for w in caught] == [bs.SamplingWarning]
    assert table["sd"].notna().all() and table["r_hat"].isna().all()
    one = bs.ScalingFit(fit.tree.isel(draw=[0], chain=[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert one.summary()["sd"].isna().all() and not one.misfits


def test_diagnostics_once_per_fit(stored_fit, monkeypatch):
    """R-hat and ESS of every sampled scalar in one vectorised pass, once per fit."""
    from bayes_scaling import diagnostics

    calls = []
    real = diagnostics.convergence
    monkeypatch.setattr(diagnostics, "convergence", lambda post: calls.append(1) or real(post))
    fresh = bs.ScalingFit(stored_fit.tree)
    first = fresh.diagnostics
    fresh.problems, fresh.warn_if_unreliable()
    assert fresh.diagnostics is first and len(calls) == 1
    assert fresh.sampled_names == [
        *(f"{p}{s}" for p in ("E", "a", "b", "alpha", "beta") for s in ("", "_sd", "_z")),
        "sigma",
        "nu",
    ]


def test_budget_already_reached_and_infinite_target(chinchilla_fit):
    with pytest.raises(bs.OptionError, match=r"reached already at 1e10 FLOPs.* by every posterior draw"):
        chinchilla_fit.compute_for_loss(1e4)
    with pytest.warns(UserWarning, match=r"reached already at 1e10 FLOPs .* by \d+\.\d% of the posterior"):
        chinchilla_fit.compute_for_loss(50.0)
    with pytest.raises(bs.OptionError, match="positive finite number"):
        chinchilla_fit.compute_for_loss(float("inf"))


def test_group_labels_and_duplicates(chinchilla_runs):
    runs = chinchilla_runs.assign(dataset=[1, "1"] * (len(chinchilla_runs) // 2))
    with pytest.raises(bs.DataError, match=r"group column 'dataset' has different values that read the same"):
        bs.load_runs(runs, inputs=["N", "D"], group="dataset")
    twice = bs.load_runs(chinchilla_runs.iloc[[0, 1, 2, 0]], inputs=["N", "D"])
    with pytest.warns(bs.DataWarning, match="1 run\\(s\\) repeat an earlier row exactly.*first row 3"):
        warn_if_repeated(twice)  # what fit() calls on its runs


def test_repeated_prediction_points_are_fine(stored_fit):
    with warnings.catch_warnings():
        warnings.simplefilter("error", bs.DataWarning)
        table = stored_fit.predict(N=[1e9, 1e9], D=[2e10, 2e10], group="web")
    assert len(table) == 2


def test_damaged_saved_fits(stored_fit_path, tmp_path):
    garbage = tmp_path / "random.nc"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    truncated = tmp_path / "truncated.nc"
    truncated.write_bytes(stored_fit_path.read_bytes()[:50_000])
    for path in (garbage, truncated):
        with pytest.raises(bs.FitFileError, match="is not a saved bayes_scaling fit"):
            bs.ScalingFit.load(path)
    edited = bs.ScalingFit.load(stored_fit_path).tree.copy()
    edited.attrs = {**edited.attrs, "pooling": "{not json"}
    edited.to_netcdf(tmp_path / "edited.nc", engine="h5netcdf")
    with pytest.raises(bs.FitFileError, match=r"damaged or hand-edited.*JSONDecodeError"):
        bs.ScalingFit.load(tmp_path / "edited.nc")


def test_a_killed_save_leaves_nothing_behind(stored_fit, tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".bayes_scaling-save.{dead.stdout.strip()}.abc.nc.tmp"
    alive = tmp_path / f".bayes_scaling-save.{os.getppid()}.abc.nc.tmp"  # a live process: not ours to touch
    mine = tmp_path / "notes.nc.tmp"  # a user's file with a similar name
    for path in (stale, alive, mine):
        path.write_text("partial")
    stored_fit.save(tmp_path / "fit.nc")
    assert not stale.exists() and alive.exists() and mine.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, mine.name, "fit.nc"])


def test_report_overwrite_keeps_the_users_files(stored_fit_path, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "notes.txt").write_text("mine")
    (site / "mydata").mkdir()
    run("report", stored_fit_path, "--out", site)
    run("report", stored_fit_path, "--out", site, "--overwrite")
    assert (site / "notes.txt").read_text() == "mine" and (site / "mydata").is_dir()
    assert sorted(p.name for p in site.iterdir()) == ["index.html", "mydata", "notes.txt"]


def test_chains_in_separate_modes_are_named(stored_fit):
    tree = stored_fit.tree.copy()
    post = tree["posterior"].to_dataset()
    shift = xr.zeros_like(post["alpha"]) + np.array([0.0, 0.2])[:, None]  # chain 2 sits elsewhere
    tree["posterior"] = xr.DataTree(post.assign(alpha=post["alpha"] + shift))
    problems = bs.ScalingFit(tree).problems
    (apart,) = [p for p in problems if p.startswith("chains settled in different places for alpha (")]
    # 2 x 200 draws of 22 dimensions are too few to weigh the modes: the warning says so instead
    assert "fit.modes() cannot weigh them here (mode masses need at least 25 draws per" in apart, apart
    frozen = post["alpha"].copy()
    frozen[1] = float(post["alpha"][0].mean()) + 0.2  # chain 2 stuck at one value, away from chain 1
    tree["posterior"] = xr.DataTree(post.assign(alpha=frozen))
    assert any(p.startswith("chains settled in different places for alpha (") for p in bs.ScalingFit(tree).problems)
    assert not any("chains settled" in p for p in stored_fit.problems)


def test_convergence_problems_name_the_worst_scalars(stored_fit):
    """A failed R-hat or ESS check names the scalars that fail it, worst first, a group's value by its group."""
    tree = stored_fit.tree.copy()
    post = tree["posterior"].to_dataset()
    group = str(post["group"].values[1])
    shift = xr.zeros_like(post["b_z"])
    shift.loc[{"chain": shift["chain"][1], "group": group}] = 3.0  # one group's offset, one chain elsewhere
    tree["posterior"] = xr.DataTree(post.assign(b_z=post["b_z"] + shift))
    fit = bs.ScalingFit(tree)
    (r_hat,) = [p for p in fit.problems if p.startswith("R-hat")]
    worst = fit._convergence["r_hat"]["b_z"][1]
    assert r_hat.startswith(f"R-hat {worst:.3f} > 1.01 (b_z[{group}] {worst:.3f}"), r_hat
    scalars = sum(v.size for v in fit._convergence["r_hat"].values())
    assert fit._failing("r_hat", 0.0, shown=2).endswith(f" and {scalars - 2} more")


def test_bridge_sampling_finds_a_known_normalising_constant():
    """p = exp(5) x a standard Normal density in 3 dimensions: log Z = 5, from draws of p and of a Gaussian
    that is wider and off-centre."""
    rng = np.random.default_rng(0)
    gaussian = stats.multivariate_normal(np.full(3, 0.3), 1.7 * np.eye(3))

    def log_p(x):
        return 5.0 + stats.multivariate_normal(np.zeros(3), np.eye(3)).logpdf(x)

    own, drawn = rng.standard_normal((1000, 3)), gaussian.rvs(2000, random_state=rng)
    at_own = (log_p(own) - gaussian.logpdf(own))[None, :]  # one chain
    log_z, se = bridge_log_mass(at_own, log_p(drawn) - gaussian.logpdf(drawn))
    assert 0 < se < 0.1 and abs(log_z - 5.0) < 3 * se, (log_z, se)


def test_modes_weigh_mass_not_chains(chinchilla_fit, monkeypatch):
    """Each mode's mass by bridge sampling with the real model's density: the same from any of one mode's
    chains; a mode moved where the posterior holds little gets half the draws and next to none of the mass;
    keep_chains keeps the other; too many dimensions are refused."""
    whole, half = chinchilla_fit.modes(), chinchilla_fit.keep_chains([2, 3]).modes(seed=1)
    assert len(whole) == len(half) == 1 and whole.loc[0, "log_mass_se"] < 0.1 and half.loc[0, "log_mass_se"] < 0.1
    assert abs(whole.loc[0, "log_mass"] - half.loc[0, "log_mass"]) < 0.3, (whole, half)
    tree = chinchilla_fit.tree.copy()
    post = tree["posterior"].to_dataset()
    tree["posterior"] = xr.DataTree(post.assign(alpha=post["alpha"] + np.array([0.0, 0.0, 0.05, 0.05])[:, None]))
    moved = bs.ScalingFit(tree)
    table = moved.modes()
    assert table["chains"].tolist() == ["0, 1", "2, 3"] and table["share_of_draws"].tolist() == [0.5, 0.5]
    assert table.loc[0, "share"] > 0.99 and abs(table.loc[0, "log_mass"] - whole.loc[0, "log_mass"]) < 0.3, table
    assert table.loc[1, "alpha"] - table.loc[0, "alpha"] > 0.04  # the separating parameter's median per mode
    kept = moved.keep_chains(np.array([1, 0, 1]))
    assert kept.posterior.sizes["chain"] == 2 and kept.settings["kept_chains"] == [0, 1]
    assert not any("chains settled" in p for p in kept.problems)
    for bad in ([4], [-1], [], "01", [0.5], [True], {0: 1}):
        with pytest.raises(bs.OptionError, match=r"chains must be whole numbers among 0\.\.3"):
            moved.keep_chains(bad)
    for options in ({"draws": 0}, {"draws": 2.5}, {"draws": True}, {"seed": -1}, {"seed": "x"}):
        with pytest.raises(bs.OptionError, match=r"(modes: draws|seed) must be"):
            moved.modes(**options)
    extended = kept.extend(200, progressbar=False)  # a new chain, sampled with a seed not used before
    assert extended.posterior["chain"].values.tolist() == [0, 1, 2]
    assert extended.settings["kept_chains"] == [0, 1, None] and len(set(extended.settings["seeds"])) == 2
    stuck = post["alpha"].copy()
    stuck[3] = 0.5  # chain 4 frozen far from the others
    tree["posterior"] = xr.DataTree(post.assign(alpha=stuck))
    with pytest.raises(bs.OptionError, match="chains 3 do not move in some parameter"):
        bs.ScalingFit(tree).modes()
    monkeypatch.setattr("bayes_scaling.modes.MAX_DIMENSIONS", 3)
    with pytest.raises(bs.OptionError, match="trusted up to 3 unconstrained dimensions"):
        moved.modes()


HOSTILE = {  # what a second hostile pass found escaping as raw exceptions; each is named now
    "budget beyond floats": (lambda f: f.compute_for_loss(10**400), "target loss must be"),
    "one interval": (lambda f: f.summary(prob=[0.5, 0.9]), "give one interval probability"),
    "no interval": (lambda f: f.summary(prob=None), "interval probabilities must lie"),
    "no group": (lambda f: f.compute_optimal(1e21, group=[]), "group= names no group"),
    "save a folder": (lambda f: f.save(Path(tempfile.mkdtemp()), overwrite=True), "it is not a file"),
    "save None": (lambda f: f.save(None), "save needs a file path"),
    "save NUL": (lambda f: f.save("a\x00b.nc"), "embedded null byte"),
    "load None": (lambda f: bs.ScalingFit.load(None), "load needs a file path"),
    "extend text": (lambda f: f.extend("10"), "draws must be a whole number"),
    "extend cache": (lambda f: f.extend(10, cache=5), "cache must be a CompileCache"),
    "compare a list": (lambda f: bs.compare([f, f]), "fits must be a mapping of name to ScalingFit"),
    "compare method": (lambda f: bs.compare({"a": f, "b": f}, method="bogus"), "method must be one of"),
    "average weights": (lambda f: bs.average({"a": f, "b": f}, weights={"a": "x", "b": 1}), "weights must be finite"),
    "holdout nested": (lambda f: bs.split_future(RUNS, [[0.2]]), "holdout must be a fraction"),
    "holdout no runs": (lambda f: bs.split_future(RUNS.iloc[:0], 0.5), "no runs to split"),
    "columns a list": (lambda f: bs.split_future(RUNS, 0.2, columns=["a"]), "columns must map keys"),
    "laws None": (lambda f: bs.backtest(RUNS, laws=None), "laws must be a list"),
    "law a number": (lambda f: bs.backtest(RUNS, laws=[5]), "a law is a name"),
    "fit option": (lambda f: bs.backtest(RUNS, laws=["chinchilla"], bogus=1), r"unknown option\(s\) \['bogus'\]"),
    "plot bins": (lambda f: plots.plot_loo_pit(f, bins=0), "bins=0 is not allowed"),
    "plot params": (lambda f: plots.plot_rank(f, ["nope"]), "no variable 'nope'"),
    "plot a table": (lambda f: plots.plot_loss(RUNS), "plot_loss draws a fit"),
    "plot span": (lambda f: plots.plot_isoflop(f, [1e21], span=0, group="web"), "span=0 is not allowed"),
    "plot plan": (lambda f: plots.plot_plan(f, None), "plan must be a table"),
    "report under a file": (
        lambda f: write_report(f, Path(tempfile.mkstemp()[1]) / "x.html"),
        "is a file, not a folder",
    ),
    "report command": (
        lambda f: write_report(f, Path(tempfile.mkdtemp()) / "r.html", command=5),
        "command must be text",
    ),
    "schedule total": (
        lambda f: bs.schedule_areas(pd.DataFrame({"step": [1], "total_steps": [10**13]})),
        r"1 to 1e\+08",
    ),
    "law inputs": (
        lambda f: Law.from_toml(CHINCHILLA.replace('inputs = ["N", "D"]', 'inputs = [["N"], "D"]')),
        "inputs",
    ),
    "empty model formula": (
        lambda f: Law.from_toml(CHINCHILLA.replace('formula = "E + exp(', 'formula = "" # ')),
        "model formula must be a non-empty string",
    ),
    "prior kwargs": (lambda f: Prior.from_spec("a", {"dist": "Beta", "kwargs": "x"}), "'kwargs' must be a table"),
    "grid too large": (
        lambda f: candidate_table({"n_params": np.geomspace(1e8, 1e10, 1000), "n_tokens": np.ones(1000)}),
        "the grid makes 1e\\+06 candidate runs",
    ),
    "fit edited by hand": (lambda f: bs.ScalingFit.load(_edited(f, pooling='{"E": "weird"}')), "hand-edited"),
    "schedule warmup": (
        lambda f: bs.schedule_areas(pd.DataFrame({"step": [1], "total_steps": [9]}), warmup="5"),
        "warmup",
    ),
}
CHINCHILLA = (laws_dir() / "chinchilla.toml").read_text()


def _edited(fit: bs.ScalingFit, **attrs: str) -> Path:
    """The fit saved with some of its root attributes replaced (by hand, as it were)."""
    tree = fit.tree.copy()
    tree.attrs = {**tree.attrs, **attrs}
    path = Path(tempfile.mkdtemp()) / "edited.nc"
    tree.to_netcdf(path, engine="h5netcdf")
    return path


RUNS = pd.DataFrame(
    {"n_params": [1e8, 2e8, 4e8, 8e8], "n_tokens": [2e9, 4e9, 8e9, 1.6e10], "loss": [3.5, 3.3, 3.1, 3.0]}
)


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_inputs_are_named(stored_fit, case):
    call, message = HOSTILE[case]
    with pytest.raises(bs.BayesScalingError, match=message):
        call(stored_fit)
