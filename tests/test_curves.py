"""Learning curves: the areas under a learning-rate schedule, and the laws of a run's curve."""

import warnings

import numpy as np
import pandas as pd
import pytest

import bayes_scaling as bs
from bayes_scaling import intervals
from bayes_scaling.curves import critical_batch_draws, lr_schedule
from conftest import prior_band, shared_csv

FAST = {"chains": 2, "draws": 400, "tune": 600, "progressbar": False, "likelihood": "normal"}


def test_constant_rate_counts_every_token_and_anneals_nothing():
    table = pd.DataFrame({"step": [10, 50, 100], "total_steps": 100, "batch": 4.0})
    out = bs.schedule_areas(table, shape="constant", tokens_per_step="batch")
    assert out["lr_area"].tolist() == [40.0, 200.0, 400.0]
    assert (out["anneal_area"] == 0).all()
    assert table.columns.tolist() == ["step", "total_steps", "batch"]  # the user's table is left as it was


def test_without_memory_the_annealing_area_is_the_drop_so_far():
    table = pd.DataFrame({"step": np.arange(1, 201), "total_steps": 200})
    out = bs.schedule_areas(table, warmup=20, final_lr=0.1, memory=0.0)
    rate = lr_schedule(200, warmup=20, final_lr=0.1)
    assert rate[0] == pytest.approx(0.05) and rate[19] == 1.0 and rate[-1] == pytest.approx(0.1)
    assert out["step"].min() == 21 and len(out) == 180  # the warm-up's checkpoints left out
    np.testing.assert_allclose(out["anneal_area"], 1 - rate[20:], atol=1e-12)
    np.testing.assert_allclose(out["lr_area"], np.cumsum(rate)[20:])
    assert len(bs.schedule_areas(table, warmup=20, drop_warmup=False)) == 200


def test_memory_delays_the_gain_of_annealing():
    """A drop of the rate takes effect over ~1 / (1 - memory) steps: a 200-step cosine ends with a small
    part of its drop felt, a 20,000-step one with nearly all of it."""
    table = pd.DataFrame({"step": [200, 20_000], "total_steps": [200, 20_000]})
    short, long = bs.schedule_areas(table, final_lr=0.1)["anneal_area"]
    assert short < 0.1 * 0.9 < 0.85 < long < 0.9


@pytest.mark.parametrize(
    ("table", "options", "error", "message"),
    [
        (pd.DataFrame({"steps": [1]}), {}, bs.DataError, r"missing column\(s\) \['step', 'total_steps'\]"),
        (pd.DataFrame({"step": [5, 120], "total_steps": 100}), {}, bs.DataError, "row 1: 'step' 120 is past"),
        (pd.DataFrame({"step": [1.5], "total_steps": 10}), {}, bs.DataError, "'step' must hold whole steps"),
        (pd.DataFrame({"step": [1], "total_steps": [None]}), {}, bs.DataError, "'total_steps' must hold whole"),
        (pd.DataFrame({"step": [1], "total_steps": 10}), {"shape": "wsd"}, bs.OptionError, "unknown schedule"),
        (pd.DataFrame({"step": [1], "total_steps": 10}), {"final_lr": 2}, bs.OptionError, "final_lr is a fraction"),
        (pd.DataFrame({"step": [1], "total_steps": 10}), {"memory": 1}, bs.OptionError, r"memory must be in \[0, 1\)"),
    ],
)
def test_bad_checkpoints_are_named(table, options, error, message):
    with pytest.raises(error, match=message):
        bs.schedule_areas(table, **options)


def checkpoints(truth: dict, seed: int = 0) -> pd.DataFrame:
    """Checkpoints every 10% of 8 runs (4 sizes x 2 lengths, cosine to 10% after 100 warm-up steps,
    2^20 tokens per step), the law's loss with 0.5% noise on the log scale."""
    law = bs.load_law("lr_annealing")
    sizes, lengths = [3e7, 1e8, 3e8, 1e9], [4_000, 16_000]
    rows = [(n, t, s) for n in sizes for t in lengths for s in np.linspace(0.1, 1, 10) * t]
    table = pd.DataFrame(rows, columns=["n_params", "total_steps", "step"]).astype({"step": int})
    table = bs.schedule_areas(table, warmup=100, final_lr=0.1, tokens_per_step=2**20)
    inputs = {"N": table["n_params"], "S1": table["lr_area"], "S2": table["anneal_area"]}
    loss = law.evaluate(truth, **{k: v.to_numpy() for k, v in inputs.items()})
    return table.assign(loss=loss * np.exp(np.random.default_rng(seed).normal(0, 0.005, len(table))))


#: Published parameters the curves are simulated from (K: a cosine's full anneal is worth ~0.15 nats).
RECOVERY = {
    "lr_annealing": {"E": 2.0, "A": 400.0, "alpha": 0.34, "B": 600.0, "beta": 0.3, "K": 0.15},
    "kaplan_ns": {"N_c": 6.5e13, "alpha_N": 0.076, "S_c": 2.1e3, "alpha_S": 0.76},
}


@pytest.mark.parametrize("name", sorted(RECOVERY))
def test_recovery(name):
    """Curves simulated from the law: the posterior's 90% interval holds every published parameter."""
    truth = RECOVERY[name]
    runs = checkpoints(truth) if name == "lr_annealing" else kaplan_curves(truth)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplingWarning)  # R-hat is checked here
        result = bs.fit(runs, law=name, seed=1, **FAST)
    assert result.diagnostics["divergences"] == 0 and result.diagnostics["max_r_hat"] < 1.05
    table = result.summary(prob=0.9)
    for p, value in truth.items():
        assert table.loc[p, "eti90_lower"] <= value <= table.loc[p, "eti90_upper"], (p, value)


def kaplan_curves(truth: dict, seed: int = 0) -> pd.DataFrame:
    """Kaplan's L(N, S) at 5 sizes x 8 step counts, 0.5% noise on the log scale."""
    n, s = np.meshgrid(np.geomspace(1e7, 1e9, 5), np.geomspace(1e3, 1e5, 8))
    loss = bs.load_law("kaplan_ns").evaluate(truth, N=n.ravel(), S=s.ravel())
    noise = np.exp(np.random.default_rng(seed).normal(0, 0.005, loss.size))
    return pd.DataFrame({"n_params": n.ravel(), "step": s.ravel(), "loss": loss * noise})


def test_prior_predictive_covers_real_checkpoints():
    """lr_annealing's default priors, with the noise, put the real checkpoints of Li et al. (2025)'s open_lm
    runs (the authors' schedule: cosine to 10% after 50 warm-up steps) inside the 90% prior predictive
    band, without being vacuous (a band narrower than a factor of 10 in loss)."""
    raw = pd.read_csv(shared_csv("li2025_misfitting", "misfitting_all_checkpoints.csv"))
    raw = raw[raw.current_steps <= raw.total_steps]
    runs = bs.schedule_areas(raw, step="current_steps", tokens_per_step=2**20, warmup=50, final_lr=0.1)
    inputs = {"N": runs["n_params"].to_numpy(), "S1": runs["lr_area"].to_numpy(), "S2": runs["anneal_area"].to_numpy()}
    lo, hi, curve = prior_band(bs.load_law("lr_annealing"), inputs, runs["loss"].to_numpy(), floor=1e-3)
    assert np.mean(curve <= 0) < 0.01  # an annealing gain above the whole loss: rare under the priors
    inside = np.mean((runs["loss"] >= lo) & (runs["loss"] <= hi))
    assert inside >= 0.95, f"only {inside:.0%} of real checkpoint losses inside the 90% prior band"
    assert np.median(hi / lo) < 10


def batch_fit(runs: pd.DataFrame, **options) -> bs.ScalingFit:
    return bs.fit(
        runs, law="batch_steps", group="n_params", pooling="none", columns={"loss": "steps"}, seed=1, **FAST, **options
    )


def test_critical_batch_recovery():
    """Steps to a target at 9 batch sizes for 3 model sizes, B_crit growing as N^0.5: each size's 90%
    interval of B_crit holds its truth, and so does that of the trend's exponent."""
    rng = np.random.default_rng(0)
    sizes, batches = np.array([1e8, 3e8, 1e9]), 2.0 ** np.arange(15, 24)
    n, b = (a.ravel() for a in np.meshgrid(sizes, batches, indexing="ij"))
    b_crit, s_min = 2e5 * (n / 1e8) ** 0.5, 3000 * (n / 1e8) ** 0.3
    steps = s_min * (1 + b_crit / b) * np.exp(rng.normal(0, 0.02, n.size))
    runs = pd.DataFrame({"n_params": n, "batch_size_tokens": b, "steps": steps})
    result = batch_fit(runs)
    assert result.diagnostics["divergences"] == 0
    draws = critical_batch_draws(result, N=[1e10])
    per_size = intervals.summarize(draws["B_crit"], (0.9,))
    truth = 2e5 * (per_size["group"].astype(float) / 1e8) ** 0.5  # groups in the order of their labels
    assert np.all((per_size["eti90_lower"] <= truth) & (truth <= per_size["eti90_upper"])), per_size
    gamma = np.quantile(draws["gamma"], [0.05, 0.95])
    assert gamma[0] <= 0.5 <= gamma[1] and gamma[1] - gamma[0] < 0.3
    # Kaplan's B_crit(L) = B_star / L^(1 / alpha_B), each size's target loss placed on it (alpha_B = 0.21)
    loss = {size: 3.0 * (2e5 * (size / 1e8) ** 0.5 / 2e5) ** -0.21 for size in sizes}
    kaplan = critical_batch_draws(result, N=[1e10], loss=loss)
    alpha_b, b_star = (np.quantile(kaplan[k], [0.05, 0.95]) for k in ("alpha_B", "B_star"))
    assert alpha_b[0] <= 0.21 <= alpha_b[1] and b_star[0] <= 2e5 * 3.0 ** (1 / 0.21) <= b_star[1]
    with pytest.raises(bs.OptionError, match=r"target loss of every model size; missing \['1000000000.0'\]"):
        critical_batch_draws(result, N=[1e10], loss={1e8: 3.0, 3e8: 2.9})
    with pytest.raises(bs.OptionError, match="model sizes N must be positive numbers, got 'big'"):
        critical_batch_draws(result, N="big")
    with pytest.raises(bs.OptionError, match="needs a fit of the law 'batch_steps' grouped by model size"):
        critical_batch_draws(bs.fit(runs, law="batch_steps", columns={"loss": "steps"}, seed=1, **FAST), N=1e9)


@pytest.mark.slow
def test_critical_batch_on_zhang_2024():
    """Zhang et al. (2024)'s steps to a target loss (5 sizes x 9 batches, the Chinchilla setting): the fit
    describes the runs (its 90% band of a new run holds at least 80% of them) and the critical batch grows
    with model size (the exponent's 90% interval above 0), as the paper finds when data grows with size."""
    runs = pd.read_csv(shared_csv("zhang2024_critical_batch", "zhang2024_cbs_steps_to_target.csv"))
    result = batch_fit(runs.rename(columns={"steps_to_target": "steps"}))
    assert result.diagnostics["divergences"] == 0
    band = result.predict(runs.rename(columns={"steps_to_target": "steps"}), kind="observation", seed=0)
    assert band["inside_eti90"].mean() >= 0.8
    gamma = np.quantile(critical_batch_draws(result, N=[1e10])["gamma"], [0.05, 0.95])
    assert gamma[0] > 0, gamma


# ------------------------------------------------------------------------------ autocorrelated checkpoints
#: Kaplan's L(N, S) and the Ornstein-Uhlenbeck noise along log10(S) the checkpoints are simulated with.
OU = {"truth": RECOVERY["kaplan_ns"], "ell": 0.5, "sigma": 0.02}


def ou_curves(seed: int = 0, runs: int = 8) -> pd.DataFrame:
    """Checkpoints of ``runs`` runs (one size each) at 15 steps from 100 to 10^4, each run's log-loss noise an
    Ornstein-Uhlenbeck process along log10(step): correlation exp(-gap / ell) between checkpoints gap
    decades apart, marginal sd sigma."""
    rng = np.random.default_rng(seed)
    steps = np.geomspace(100, 1e4, 15)
    rho = np.exp(-np.diff(np.log10(steps)) / OU["ell"])
    rows = []
    for run, n in enumerate(np.geomspace(3e7, 1e9, runs)):
        eps = [rng.normal(0, OU["sigma"])]
        for r in rho:
            eps.append(r * eps[-1] + rng.normal(0, OU["sigma"] * np.sqrt(1 - r**2)))
        loss = bs.load_law("kaplan_ns").evaluate(OU["truth"], N=np.full(steps.size, n), S=steps) * np.exp(eps)
        rows.append(pd.DataFrame({"run": f"r{run}", "n_params": n, "step": steps, "loss": loss}))
    return pd.concat(rows, ignore_index=True)


def test_autocorrelated_likelihood_is_the_process_density():
    """The product of one-step conditionals (each point given the one before it in its group) is the
    Ornstein-Uhlenbeck process's joint normal density, covariance sigma^2 exp(-|gap| / ell), per group."""
    from scipy import stats

    from bayes_scaling.observation import ObservationModel, predecessors

    rng = np.random.default_rng(3)
    position = rng.uniform(1, 1e4, 12)
    codes = np.repeat([0, 1, 2], 4)
    y, mu = rng.normal(size=12), rng.normal(size=(1, 12))
    ell, sigma = 0.7, 0.3
    model = ObservationModel("normal", autocorrelated="S")
    before, gap = predecessors(position, codes, position, codes)
    centre, scale = model.conditional(mu, sigma, np.where(before >= 0, (y - mu)[:, before], 0.0), gap, ell)
    ours = model.logpdf(y, centre, {"sigma": scale}).sum()
    theirs = 0.0
    for g in range(3):
        at = codes == g
        logs = np.log10(position[at])
        cov = sigma**2 * np.exp(-np.abs(logs[:, None] - logs[None, :]) / ell)
        theirs += stats.multivariate_normal(mu[0, at], cov).logpdf(y[at])
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)


@pytest.fixture(scope="module")
def ou_fit() -> bs.ScalingFit:
    """Kaplan's law on the first two thirds of each run's checkpoints, noise autocorrelated along the steps
    (the law's parameters shared by default: the run is the group only of the noise)."""
    runs = ou_curves()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplingWarning)  # R-hat is checked here
        return bs.fit(runs[runs.step < 2e3], law="kaplan_ns", group="run", autocorrelated="S", seed=1, **FAST)


def test_autocorrelated_fit_recovers_the_noise_and_matches_pymc(ou_fit):
    """The law's exponents and the noise's sigma and ell lie within 3 posterior sd of the truth (their
    z-scores over 6 simulated tables were within 2.8; a 90% interval misses one of four parameters a third
    of the time), and the stored pointwise log-likelihood (numpy) is PyMC's for the same draws. The law's
    parameters are shared by default with autocorrelated noise."""
    import pymc as pm
    import xarray as xr

    from bayes_scaling.fitting import compiled_model

    assert set(ou_fit.pooling.values()) == {"shared"}
    assert ou_fit.diagnostics["divergences"] == 0 and ou_fit.diagnostics["max_r_hat"] < 1.05
    table = ou_fit.summary()
    truth = {
        "alpha_N": OU["truth"]["alpha_N"],
        "alpha_S": OU["truth"]["alpha_S"],
        "sigma": OU["sigma"],
        "ell": OU["ell"],
    }
    for p, value in truth.items():
        assert abs(table.loc[p, "mean"] - value) < 3 * table.loc[p, "sd"], (p, value)
    model, _, _ = compiled_model(ou_fit.law, ou_fit.runs, ou_fit.priors, ou_fit.observation, "nutpie", ou_fit.pooling)
    sub = ou_fit.tree["posterior"].isel(draw=slice(0, 20))
    theirs = pm.compute_log_likelihood(
        xr.DataTree.from_dict({"posterior": sub.to_dataset()}),
        model=model,
        extend_inferencedata=False,
        progressbar=False,
    )
    ours = ou_fit.tree["log_likelihood"]["log_loss"].isel(draw=slice(0, 20)).values
    np.testing.assert_allclose(ours, theirs["log_loss"].values, rtol=1e-8)


def test_autocorrelated_prediction_follows_its_run(ou_fit, tmp_path):
    """At the fitted checkpoints the predictive density is the one the fit scored them with (each given the
    checkpoint before it; the stored log-likelihood). At the next checkpoint (0.14 decades on, correlation
    about 0.75) the band of the law and noise is narrower than a run not in the fit gets, with nothing to
    follow. A saved fit predicts the same."""
    from scipy.special import logsumexp

    runs = ou_curves()
    fitted = runs[runs.step < 2e3]
    stored = ou_fit.tree["log_likelihood"]["log_loss"].values.reshape(-1, len(fitted))
    expected = logsumexp(stored, axis=0) - np.log(stored.shape[0])
    np.testing.assert_allclose(ou_fit.log_predictive_density(fitted), expected, rtol=1e-9)
    following = runs[runs.step > 2e3].groupby("run").head(1)
    law = ou_fit.with_discrepancy(None)
    followed = law.predict(following, kind="observation", prob=0.5, seed=0)
    fresh = law.predict(following.assign(run="unseen"), kind="observation", prob=0.5, seed=0, new_group=True)
    width = {k: v["eti50_upper"] - v["eti50_lower"] for k, v in (("followed", followed), ("fresh", fresh))}
    assert np.all(width["followed"] < 0.8 * width["fresh"])
    finals = runs[runs.step == runs.step.max()]
    again = bs.ScalingFit.load(ou_fit.save(tmp_path / "ou.nc"))
    assert again.observation.autocorrelated == "S"
    pd.testing.assert_frame_equal(
        again.predict(finals, kind="observation", seed=0), ou_fit.predict(finals, kind="observation", seed=0)
    )


@pytest.mark.parametrize(
    ("change", "options", "error", "message"),
    [
        (lambda t: t, {"group": None}, bs.GroupError, "autocorrelated noise along 'step' needs a group column"),
        (lambda t: pd.concat([t, t.iloc[:1]]), {}, bs.DataError, "group 'r0' has two rows at step = 100"),
        (lambda t: t, {"autocorrelated": "D"}, bs.OptionError, "'D' is not an input of law 'kaplan_ns'"),
        (lambda t: t, {"likelihood": "binomial"}, bs.OptionError, "autocorrelated noise needs likelihood"),
    ],
)
def test_autocorrelated_bad_options_are_named(change, options, error, message):
    runs = change(ou_curves(runs=2))
    options = {"law": "kaplan_ns", "group": "run", "autocorrelated": "S", **FAST, **options}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.DataWarning)  # the repeated row
        with pytest.raises(error, match=message):
            bs.fit(runs, **options)


def test_autocorrelated_fit_refuses_to_plan(ou_fit):
    candidates = pd.DataFrame({"run": ["r0"], "n_params": [1e9], "step": [1e4]})
    with pytest.raises(bs.OptionError, match="autocorrelated along 'S'"):
        ou_fit.suggest_runs(candidates, target=candidates, budget=1e30)


def test_compare_warns_that_loo_of_autocorrelated_noise_is_not_leave_one_out(ou_fit):
    """The fit with independent noise sees the streaks and suggests the autocorrelated noise; compare warns
    that LOO of the autocorrelated fit leaves a neighbour in."""
    runs = ou_curves()
    options = {"law": "kaplan_ns", "group": "run", "pooling": "shared", "seed": 1, **FAST}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplingWarning)
        with pytest.warns(bs.MisfitWarning, match="checkpoints of one run, fit with autocorrelated="):
            independent = bs.fit(runs[runs.step < 2e3], **options)
    with pytest.warns(UserWarning, match="'autocorrelated': noise autocorrelated within groups"):
        table = bs.compare({"autocorrelated": ou_fit, "independent": independent})
    assert set(table.index) == {"autocorrelated", "independent"}
