import numpy as np
import pymc as pm
import pytest

from bayes_scaling.priors import DISTRIBUTIONS, Prior, PriorError, parse_prior, resolve_priors


def test_parse_forms():
    assert parse_prior("alpha", "Beta(2, 5)") == Prior("Beta", {"alpha": 2.0, "beta": 5.0})
    assert parse_prior("E", "LogNormal(mu=0.5, sigma=0.4)") == Prior("LogNormal", {"mu": 0.5, "sigma": 0.4})
    assert Prior.from_spec("x", {"dist": "Normal", "kwargs": {"mu": 0, "sigma": 1}}).to_dict() == {
        "dist": "Normal",
        "kwargs": {"mu": 0.0, "sigma": 1.0},
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"dist": "Wishart", "kwargs": {}}, "unknown distribution 'Wishart'"),
        ({"dist": "Normal", "kwargs": {"scale": 1}}, "Normal has no parameter 'scale'"),
        ({"dist": "Normal", "kwargs": {"mu": "zero"}}, "parameter 'mu' must be a finite number"),
        ({"dist": "Normal", "kw": {}}, "unknown key(s) ['kw']"),
        (3.0, "must be a dict with 'dist' and 'kwargs'"),
        ("Normal(0, 1, 2)", "too many values"),
        ("Normal(0, one)", "'one' in 'Normal(0, one)' is not a number"),
        ("normal 0 1", "cannot read 'normal 0 1'"),
        ("Normal(sigma=1, 0)", "a positional value follows a keyword"),
        ("HalfNormal(-1)", "parameter 'sigma' must be positive"),
        ("Gamma(alpha=2)", "Gamma needs beta"),
        ("LogNormal(710, 1)", "puts its draws beyond the range of floating point numbers"),  # exp(710) overflows
        ("LogNormal(0, 403)", "puts its draws beyond the range of floating point numbers"),
        ("Normal(1e300, 1e300)", "puts its draws beyond the range of floating point numbers"),
    ],
)
def test_bad_priors(spec, message):
    with pytest.raises(PriorError) as info:
        Prior.from_spec("alpha", spec)
    assert message in str(info.value)
    assert "'alpha'" in str(info.value)


def test_user_overrides_law_default_and_unknown_name_is_refused():
    defaults = {"alpha": {"dist": "LogNormal", "kwargs": {"mu": -1.2, "sigma": 0.5}}}
    resolved = resolve_priors({**defaults, "sigma": "HalfNormal(0.05)"}, {"alpha": "Beta(2, 5)"})
    assert resolved["alpha"].dist == "Beta" and set(resolved) == {"alpha", "sigma"}
    with pytest.raises(PriorError, match="unknown parameter 'gamma'"):
        resolve_priors(defaults, {"gamma": "Normal(0, 1)"})
    with pytest.raises(PriorError, match="unknown parameter 'nu'"):
        resolve_priors({**defaults, "sigma": "HalfNormal(0.05)"}, {"nu": "Gamma(2, 0.1)"})


#: One prior of each distribution.
EVERY_DISTRIBUTION = [
    "Normal(1, 2)",
    "StudentT(3, 1, 2)",
    "HalfNormal(0.5)",
    "HalfStudentT(3, 0.5)",
    "HalfCauchy(0.7)",
    "LogNormal(0.5, 0.4)",
    "Gamma(2, 3)",
    "InverseGamma(3, 2)",
    "Exponential(2)",
    "Beta(2, 5)",
    "Uniform(-1, 3)",
    "TruncatedNormal(0, 1, lower=-0.5, upper=2)",
]


@pytest.mark.parametrize("spec", EVERY_DISTRIBUTION)
def test_prior_cdf_matches_pymc_draws(spec):
    """Prior.scipy() is the distribution PyMC samples: its CDF at the quartiles of PyMC's draws, and of
    Prior.sample's, is 1/4, 1/2, 3/4."""
    prior = Prior.from_spec("x", spec)
    pymc_draws = pm.draw(getattr(pm, prior.dist).dist(**prior.kwargs, size=40_000), random_seed=1)
    for draws in (pymc_draws, prior.sample(40_000, seed=2)):
        quartiles = np.quantile(np.asarray(draws), [0.25, 0.5, 0.75])
        assert prior.cdf(quartiles) == pytest.approx([0.25, 0.5, 0.75], abs=0.01)


@pytest.mark.parametrize("spec", EVERY_DISTRIBUTION)
def test_prior_draws_and_cdf_are_scipys(spec):
    """Prior.sample and Prior.cdf (numpy and scipy.special) are scipy.stats' rvs and cdf: the same draws from
    the same Generator, the same cdf inside and outside the support."""
    prior = Prior.from_spec("x", spec)
    ours = prior.sample(500, seed=np.random.default_rng(7))
    assert np.array_equal(ours, prior.scipy().rvs(size=500, random_state=np.random.default_rng(7)))
    x = np.array([-3.0, -0.5, 0.0, 1e-3, 0.3, 0.5, 1.0, 2.0, 50.0])
    np.testing.assert_allclose(prior.cdf(x), prior.scipy().cdf(x), rtol=1e-12, atol=1e-15)
    if prior.dist.startswith("Half"):
        assert prior.scipy().logpdf(-1.0) == -np.inf and np.isfinite(prior.scipy().logpdf(1.0))


def test_every_distribution_is_checked():
    assert sorted(Prior.from_spec("x", spec).dist for spec in EVERY_DISTRIBUTION) == sorted(DISTRIBUTIONS)
