import numpy as np
import pytest

from bayes_scaling.expr import Expression, ExpressionError

NAMES = ["E", "A", "N", "alpha"]


def test_numpy_and_pytensor_agree():
    import pytensor

    expr = Expression.parse("E + A / N**alpha - -exp(log1p(sqrt(N))) * minimum(N, 2) / maximum(A, 1)", NAMES)
    env = {"E": 1.7, "A": 400.0, "N": np.array([1e7, 1e9]), "alpha": 0.34}
    sym = {k: pytensor.shared(np.asarray(v)) for k, v in env.items()}
    expected = 1.7 + 400 / env["N"] ** 0.34 + np.exp(np.log1p(np.sqrt(env["N"]))) * 2 / 400
    np.testing.assert_allclose(expr.evaluate(env), expected, rtol=1e-12)
    np.testing.assert_allclose(expr.evaluate(sym, backend="pytensor").eval(), expected, rtol=1e-12)
    assert expr.names == {"E", "A", "N", "alpha"}


def test_given_logs_replace_log_of_a_name():
    """A name used only as ``log(name)`` needs no value when its log is given (the model's data); the
    result is the same."""
    expr = Expression.parse("E + exp(alpha * log(N)) + log(A * 2) + log(A)", NAMES)
    assert expr.logged == {"N"}  # A also appears inside another call: it needs its value
    env = {"E": 1.7, "A": 400.0, "alpha": -0.3}
    n = np.array([1e7, 1e9])
    np.testing.assert_allclose(expr.evaluate(env, logs={"N": np.log(n)}), expr.evaluate({**env, "N": n}), rtol=1e-14)
    with pytest.raises(ExpressionError, match="no value given for N"):
        expr.evaluate(env)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os')", "call of '__import__' is not allowed"),
        ("N.__class__", "attribute access is not allowed at column 0: `N.__class__`"),
        ("(lambda x: x)(N)", "call of 'lambda x: x' is not allowed"),
        ("lambda x: x", "lambda is not allowed"),
        ("[n for n in N]", "comprehension is not allowed"),
        ("sum(n for n in N)", "call of 'sum' is not allowed"),
        ("E + foo", "unknown name 'foo' (known names: A, E, N, alpha) at column 4: `foo`"),
        ("E + 'text'", "only numbers are allowed as constants, not str"),
        ("N[0]", "indexing is not allowed"),
        ("N > 1", "comparison is not allowed"),
        ("N % 2", "operator Mod is not allowed"),
        ("E if N else A", "conditional expression is not allowed"),
        ("exp(N, A)", "exp() takes 1 argument(s), got 2"),
        ("exp(x=N)", "exp() takes no keyword arguments"),
        ("E +", "syntax error at column"),
        ("True + E", "only numbers are allowed as constants, not bool"),
        ("", "must be a non-empty string"),
    ],
)
def test_rejects_unsafe_or_malformed(text, message):
    with pytest.raises(ExpressionError) as info:
        Expression.parse(text, NAMES)
    assert message in str(info.value)


def test_missing_value_is_named():
    with pytest.raises(ExpressionError, match="no value given for alpha"):
        Expression.parse("N**alpha", NAMES).evaluate({"N": 1.0})
