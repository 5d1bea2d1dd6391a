"""Targets other than a loss: accuracy (bounded, on the logit scale) and real-valued quantities, and the
two-step downstream law, on simulated runs with known truth and on the bundled OLMo ladder."""

import itertools
import json

import numpy as np
import pandas as pd
import pytest

import bayes_scaling as bs
from bayes_scaling.laws import Law
from bayes_scaling.observation import ObservationModel
from conftest import run

FAST = {"chains": 2, "draws": 300, "tune": 400, "progressbar": False}
TASKS = ("hellaswag_val", "arc_easy_test", "piqa_val", "csqa_val")


def olmo() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The OLMo ladder on four tasks: (the paper's ladder runs, the 7B and 13B targets)."""
    d = bs.load_dataset("bhagia2024")
    d = d[d.task.isin(TASKS)]
    ladder = (d.role == "ladder") & ~d.is_rerun & (d.xC >= 1) & (d.size_label != "3.2B")
    return d[ladder], d[d.role == "target"]


def test_law_files_check_target_and_covariates():
    text = bs.load_law("sigmoid_compute").source
    assert bs.load_law("sigmoid_compute").target == "bounded" and bs.load_law("chinchilla").target == "positive"
    with pytest.raises(bs.LawError, match="target must be one of 'positive', 'real', 'bounded'"):
        Law.from_toml(text.replace('target = "bounded"', 'target = "accuracy"'))
    with pytest.raises(bs.LawError, match="'covariates' must be some, not all, of the inputs"):
        Law.from_toml(text.replace('covariates = ["chance"]', 'covariates = ["C", "chance"]'))
    with pytest.raises(bs.LawError, match="give them no scale"):
        Law.from_toml(text.replace('C = "data"', 'C = "data"\nchance = 1.0'))
    priors = {"a": "Normal(0, 1)", "b": "Normal(0, 1)"}
    assert Law.from_formula("a + b * log(C)", inputs=["C"], priors=priors, target="real").target == "real"


def test_runs_are_checked_against_the_target_kind():
    runs = pd.DataFrame({"compute_flops": [1e18, 1e19, 1e20], "acc": [0.3, 1.2, 0.5], "chance_acc": [0.25] * 3})
    with pytest.raises(bs.DataError, match=r"column 'acc' must be strictly between 0 and 1 \(move a .*; row 1 has 1.2"):
        bs.load_runs(runs, inputs=["C", "chance"], columns={"loss": "acc"}, target="bounded")
    real = runs.assign(acc=[-1.0, 0.0, 2.0])
    assert bs.load_runs(real, inputs=["C"], columns={"loss": "acc"}, target="real").loss.tolist() == [-1, 0, 2]
    with pytest.raises(bs.DataError, match="column 'acc' must be positive; row 0"):
        bs.load_runs(real, inputs=["C"], columns={"loss": "acc"})


def test_links_invert():
    for target, values in (("positive", [0.1, 2.0]), ("real", [-3.0, 4.0]), ("bounded", [0.01, 0.7])):
        obs = ObservationModel(target=target)
        np.testing.assert_allclose(obs.inverse(obs.link(np.array(values))), values, rtol=1e-12)


#: The sampled parameters each law of a target other than a loss is simulated from, and the noise.
RECOVERY = {
    "sigmoid_compute": ({"h": 0.7, "k": 0.8, "m": 0.5}, 0.1),
    "broken_sigmoid": ({"h": 0.8, "a": -1.5, "k": 0.1, "j": 1.2, "b": 0.5, "f": 0.4}, 0.1),
    "sigmoid_loss": ({"h": 0.7, "s": 8.0, "m": 0.9}, 0.1),
    "log_linear": ({"a": -1.3, "b": 0.05}, 0.005),
}


@pytest.mark.parametrize("name", sorted(RECOVERY))
def test_recovery(name):
    """Runs simulated from the law with its own observation model (logit or raw scale): the posterior's
    95% interval holds every true published parameter and the noise."""
    truth, sigma = RECOVERY[name]
    rng = np.random.default_rng(3)
    runs = pd.DataFrame({"compute_flops": np.geomspace(1e18, 1e22, 40), "chance_acc": 0.25})
    runs["bpb"] = np.linspace(1.4, 0.6, 40)
    law = bs.load_law(name)
    inputs = {"C": runs["compute_flops"].to_numpy(), "L": runs["bpb"].to_numpy(), "chance": runs["chance_acc"]}
    inputs = {k: np.asarray(inputs[k]) for k in law.inputs}
    scaled = law.with_scales(inputs)
    obs = ObservationModel(target=law.target)
    curve = scaled.evaluate_sampled(truth, **inputs)
    runs["y"] = obs.inverse(obs.link(curve) + sigma * rng.standard_normal(len(runs)))
    columns = {"loss": "y", **({"L": "bpb"} if "L" in law.inputs else {})}
    result = bs.fit(runs, law=law, columns=columns, likelihood="normal", seed=2, **FAST)
    assert result.diagnostics["divergences"] == 0
    table = result.summary(prob=0.95)
    natural = {p: v for p, v in scaled.to_natural(truth).items() if p in law.estimated_params}
    for p, value in {**natural, "sigma": sigma}.items():
        assert table.loc[p, "eti95_lower"] <= value <= table.loc[p, "eti95_upper"], (p, value)
    if law.target == "bounded":  # beyond the runs, the band stays between chance and 1
        far = {k: v[-1:] for k, v in inputs.items()} | ({"C": np.array([1e24])} if "C" in inputs else {})
        band = result.predict(**far, kind="observation", seed=0)
        assert 0.25 < band["eti90_lower"].iloc[0] < band["eti90_upper"].iloc[0] < 1
    with pytest.raises(bs.LawError, match="compute-optimal allocation needs N and D"):
        result.compute_optimal(1e21)


@pytest.mark.parametrize("n", [32, 1000, 58000])
def test_binomial_logpmf_matches_integration(n):
    """The binomial likelihood's run scatter integrated out by adaptive Gauss-Hermite quadrature equals a
    brute-force integral over a fine grid, to 1e-6, for scores near chance, the middle and the ceiling,
    also where the law and the score disagree by tens of scatter widths; numpy and pytensor agree."""
    import pytensor.tensor as pt
    from scipy import special, stats

    from bayes_scaling.native import exact_math
    from bayes_scaling.observation import binomial_logpmf

    for share, mu, sigma in itertools.product((0.02, 0.5, 0.99), (-3.0, 0.0, 2.5), (0.01, 0.3, 1.0)):
        k = np.round(share * n)
        hat = special.logit((k + 0.5) / (n + 1))
        eta = np.linspace(min(mu, hat) - 15 * max(sigma, 0.3), max(mu, hat) + 15 * max(sigma, 0.3), 1_000_001)
        log_f = stats.norm.logpdf(eta, mu, sigma) + stats.binom.logpmf(k, n, special.expit(eta))
        exact = special.logsumexp(log_f) + np.log(eta[1] - eta[0])
        ours = binomial_logpmf(k, float(n), mu, sigma)
        assert abs(ours - exact) <= 1e-6 * max(1.0, abs(exact)), (k, mu, sigma, ours, exact)
        with exact_math():  # PyTensor's default numba fast-math approximates log and exp
            symbolic = binomial_logpmf(*(pt.constant(v, dtype="float64") for v in (k, n, mu, sigma)), pt)
            assert symbolic.eval() == pytest.approx(ours, rel=1e-9)


def recovered(runs: pd.DataFrame, likelihood: str, truth: dict[str, float]) -> bs.ScalingFit:
    """``sigmoid_compute`` fitted to simulated accuracies ``acc``: converged, every true value inside its
    99% interval (four parameters and the scatter: a miss is rare by chance), and the stored
    log-likelihood (numpy) PyMC's for the same draws."""
    import pymc as pm
    import xarray as xr

    from bayes_scaling.fitting import compiled_model

    options = {"chains": 4, "draws": 500, "tune": 500, "progressbar": False}  # R-hat of 2 short chains is noisy
    fit = bs.fit(runs, law="sigmoid_compute", likelihood=likelihood, columns={"loss": "acc"}, seed=1, **options)
    assert fit.diagnostics["divergences"] == 0 and fit.diagnostics["max_r_hat"] < 1.02
    table = fit.summary(prob=0.99)
    for p, value in truth.items():
        assert table.loc[p, "eti99_lower"] <= value <= table.loc[p, "eti99_upper"], (p, value)
    model, _, _ = compiled_model(fit.law, fit.runs, fit._priors_with_spreads(), fit.observation, "nutpie")
    sub = xr.DataTree.from_dict({"posterior": fit.tree["posterior"].isel(draw=slice(0, 10)).to_dataset()})
    theirs = pm.compute_log_likelihood(sub, model=model, extend_inferencedata=False, progressbar=False)
    ours = fit.tree["log_likelihood"]["logit_y"].isel(draw=slice(0, 10)).values
    np.testing.assert_allclose(ours, theirs["logit_y"].values, rtol=1e-8)
    return fit


def test_binomial_fit_on_items(tmp_path):
    """Accuracies scored on 100-2000 items: the binomial likelihood recovers the law and the runs' own
    scatter (which the logit-normal one mixes with the scoring noise), its stored log-likelihood is PyMC's,
    a save keeps the items, and a held-out run's band is of its score on its own items."""
    from scipy.special import expit, logit

    rng = np.random.default_rng(1)
    law, truth = bs.load_law("sigmoid_compute"), {"h": 0.7, "k": 0.8, "C0": 1e20}
    compute = np.geomspace(1e18, 1e22, 40)
    items = rng.choice([100, 500, 2000], compute.size)
    accuracy = expit(logit(law.evaluate(truth, C=compute, chance=0.25)) + rng.normal(0, 0.05, compute.size))
    right = np.clip(rng.binomial(items, accuracy), 0.5, items - 0.5)
    runs = pd.DataFrame({"compute_flops": compute, "chance_acc": 0.25, "acc": right / items, "n_items": items})
    fit = recovered(runs, "binomial", {**truth, "sigma": 0.05})
    loaded = bs.ScalingFit.load(fit.save(tmp_path / "binomial.nc"))
    np.testing.assert_array_equal(loaded.runs.items, items)
    few = runs.iloc[[5, 30]].assign(n_items=[40, 40])
    scored = loaded.predict(few, kind="observation", seed=0)
    width = lambda t: (t["eti90_upper"] - t["eti90_lower"]).to_numpy()  # noqa: E731
    assert list(scored["items"]) == [40, 40]
    np.testing.assert_allclose(scored["median"] * 80, np.round(scored["median"] * 80))  # a score of k / 40
    unlimited = loaded.predict(few.drop(columns="n_items"), kind="observation", seed=0)
    assert "items" not in unlimited and (width(unlimited) < width(scored)).all()  # no scoring noise
    keyword = loaded.predict(C=compute[[5, 30]], chance=0.25, items=40, kind="observation", seed=0)
    np.testing.assert_allclose(keyword["median"], scored["median"])
    for items in (1e19, "many"):  # beyond what a float holds exactly; not a number
        with pytest.raises(bs.DataError, match=r"items must be|input items must be a number"):
            loaded.predict(C=1e20, chance=0.25, items=items, kind="observation")


def test_beta_fit():
    """Accuracies Beta about the law (precision 4 / sigma^2, the items unknown): the beta likelihood recovers
    the law and sigma, its stored log-likelihood is PyMC's, and the 90% band of a new run holds 0.86-0.94 of
    fresh runs drawn from the truth (a wide range for 600 draws: the posterior is uncertain too)."""
    rng = np.random.default_rng(2)
    law, truth, sigma = bs.load_law("sigmoid_compute"), {"h": 0.7, "k": 0.8, "C0": 1e20}, 0.15

    def draw(compute: np.ndarray) -> np.ndarray:
        p = law.evaluate(truth, C=compute, chance=0.25)
        return rng.beta(p * 4 / sigma**2, (1 - p) * 4 / sigma**2)

    compute = np.geomspace(1e18, 1e22, 40)
    runs = pd.DataFrame({"compute_flops": compute, "chance_acc": 0.25, "acc": draw(compute)})
    fit = recovered(runs, "beta", {**truth, "sigma": sigma})
    at = np.geomspace(2e18, 5e21, 3)  # within the runs: the discrepancy stays small
    band = fit.predict(C=at, chance=0.25, kind="observation", prob=0.9, seed=0)
    fresh = np.stack([draw(at) for _ in range(200)])
    inside = (fresh >= band["eti90_lower"].to_numpy()) & (fresh <= band["eti90_upper"].to_numpy())
    assert 0.86 <= inside.mean() <= 0.94, inside.mean()


def test_beta_draws_far_beyond_the_runs():
    """A law plus its discrepancy can sit hundreds of units out on the logit scale, where the Beta's mean
    rounds to 0 or 1: its draws stay finite and on their side."""
    model = ObservationModel("beta", target="bounded")
    draws = model.sample(np.array([[-800.0, 0.0, 800.0]]), {"sigma": np.array([[0.2]])}, np.random.default_rng(0))
    assert np.isfinite(draws).all() and draws[0, 0] < -100 and draws[0, 2] > 30


def test_binomial_errors():
    runs = pd.DataFrame({"compute_flops": np.geomspace(1e18, 1e22, 8), "chance_acc": 0.25, "acc": 0.5})
    with pytest.raises(bs.OptionError, match=r"likelihood 'binomial' is for an accuracy .* target is positive"):
        bs.fit(runs, likelihood="binomial")
    with pytest.raises(bs.DataError, match=r"missing column\(s\) 'n_items' \(for items\)"):
        bs.fit(runs, law="sigmoid_compute", likelihood="binomial", columns={"loss": "acc"})
    bad = runs.assign(n_items=[100] * 7 + [2.5])
    with pytest.raises(bs.DataError, match=r"column 'n_items' must be whole numbers from 1 to 2\^53; row 7 has 2\.5"):
        bs.fit(bad, law="sigmoid_compute", likelihood="binomial", columns={"loss": "acc"})
    with pytest.raises(bs.DataError, match="'items' goes with likelihood='binomial'"):
        bs.fit(bad, law="sigmoid_compute", columns={"loss": "acc", "items": "n_items"})


@pytest.mark.slow
def test_cli_fits_a_bounded_and_a_real_target(tmp_path):
    """`bayes-scaling fit --target COLUMN` on real OLMo ladder runs: accuracy (bounded, with the task's
    chance accuracy as a covariate) and the log-probability of the right answer (real-valued)."""
    ladder, targets = olmo()
    csv, heldout = tmp_path / "ladder.csv", tmp_path / "targets.csv"
    ladder.to_csv(csv, index=False)
    targets.to_csv(heldout, index=False)
    options = ["--group", "task", "--draws", 300, "--tune", 400, "--chains", 2, "--seed", 1]
    for law, target, extra in (
        ("sigmoid_compute", "rc_acc", ["--column", "chance=chance_acc"]),  # the default, given
        ("log_linear", "rc_soft_log", []),
    ):
        out = tmp_path / f"{law}.nc"
        fitted = run("fit", csv, "--law", law, "--target", target, *extra, *options, "--out", out, "--json")
        assert json.loads(fitted.stdout)["diagnostics"]["divergences"] == 0
        pred = json.loads(run("predict", out, "--runs", heldout, "--kind", "observation", "--json").stdout)["rows"]
        observed = targets[target].to_numpy()
        medians = np.array([r["median"] for r in pred])
        assert [r["observed"] for r in pred] == pytest.approx(observed)
        if law == "sigmoid_compute":  # the 7B and 13B accuracies, within 10 points of the observed
            assert np.all((medians > 0) & (medians < 1)) and np.mean(np.abs(medians - observed)) < 0.10
        else:
            assert np.all(medians < 0) and np.mean(np.abs(medians - observed)) < 0.05
    bad = run("fit", csv, "--law", "sigmoid_compute", "--target", "rc_bpb", *options, check=False)
    assert bad.returncode == 2 and "'rc_bpb' must be strictly between 0 and 1" in bad.stderr
    both = run("fit", csv, "--target", "rc_acc", "--column", "loss=rc_bpb", check=False)
    assert both.returncode == 2 and "disagree" in both.stderr


@pytest.mark.slow
def test_two_stage_predicts_olmo_targets():
    """Scale -> task bpb (Chinchilla form) -> accuracy (sigmoid): the 7B and 13B accuracies on four tasks
    from the ladder, with the first step's uncertainty carried into the second."""
    ladder, targets = olmo()
    first = bs.fit(ladder, law="chinchilla", columns={"loss": "rc_bpb"}, group="task", seed=1, **FAST)
    second = bs.fit(
        ladder,
        law="sigmoid_loss",
        columns={"loss": "rc_acc", "L": "rc_bpb", "chance": "chance_acc"},
        group="task",
        seed=1,
        **FAST,
    )
    two = bs.TwoStage(first, second, via="L")
    pred = two.predict(targets, prob=0.9, kind="observation", seed=0)
    assert np.all((pred["eti90_lower"] > 0) & (pred["eti90_upper"] < 1))
    assert np.mean(np.abs(pred["median"] - pred["observed"])) < 0.08
    # the first step's uncertainty reaches the second: wider than the second step at the observed bpb
    at_observed = second.predict(targets, prob=0.9, kind="observation", seed=0)
    assert np.median(pred["eti90_upper"] - pred["eti90_lower"]) > np.median(
        at_observed["eti90_upper"] - at_observed["eti90_lower"]
    )
    cal = bs.calibration(two, targets, seed=0)
    assert cal.summary["n"] == len(targets) and np.isfinite(cal.summary["lpd_per_run"])
    with pytest.raises(bs.OptionError, match="via='N' must be an input of the second law"):
        bs.TwoStage(first, second, via="N")
