import pytest

from bayes_scaling.priors import Prior, PriorError, parse_prior, resolve_priors


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
        ({"dist": "Normal", "kwargs": {"mu": "zero"}}, "parameter 'mu' must be a number"),
        ({"dist": "Normal", "kw": {}}, "unknown key(s) ['kw']"),
        (3.0, "must be a dict with 'dist' and 'kwargs'"),
        ("Normal(0, 1, 2)", "too many values"),
        ("Normal(0, one)", "'one' in 'Normal(0, one)' is not a number"),
        ("normal 0 1", "cannot read 'normal 0 1'"),
        ("Normal(sigma=1, 0)", "a positional value follows a keyword"),
        ("HalfNormal(-1)", "parameter 'sigma' must be positive"),
        ("Gamma(alpha=2)", "Gamma needs beta"),
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
