"""Hostile input, generated (hypothesis): run tables, formulas, priors, law files and command lines. Every
failure must be the package's own error with a message; any other exception fails the test. Nothing here
samples: 2,450 examples in all."""

import contextlib
import io
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bayes_scaling as bs
from bayes_scaling.cli import main
from bayes_scaling.laws import Law
from bayes_scaling.priors import DISTRIBUTIONS, Prior

SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]}

values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=1e-6, max_value=1e16),
    st.integers(min_value=-(10**18), max_value=10**18),
    st.text(max_size=6),
    st.none(),
    st.booleans(),
)


def named_error_or_nothing(call):
    """Run ``call``; a package error must say something. Anything else propagates and fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return call()
        except bs.BayesScalingError as err:
            if not str(err).strip():
                pytest.fail(f"{type(err).__name__} without a message")


@settings(max_examples=700, **SETTINGS)
@given(
    rows=st.integers(min_value=0, max_value=8).flatmap(
        lambda n: st.fixed_dictionaries(
            {c: st.lists(values, min_size=n, max_size=n) for c in ("n_params", "n_tokens", "loss", "dataset")}
        )
    ),
    drop=st.sampled_from([None, "n_params", "loss"]),
    group=st.sampled_from([None, "dataset", "missing"]),
)
def test_run_tables(rows, drop, group):
    table = pd.DataFrame(rows)
    if drop:
        table = table.drop(columns=drop)
    named_error_or_nothing(lambda: bs.load_runs(table, inputs=["N", "D"], group=group))


formula_text = st.one_of(
    st.text(alphabet="ENADab+-*/()., 0123456789e_xlogpsqrtminuma[]'", max_size=40),
    st.text(max_size=30),
    st.builds(
        lambda terms, ops: "".join(t + o for t, o in zip(terms, ops, strict=False)) + terms[-1],
        st.lists(
            st.sampled_from(["E", "A", "N", "alpha", "1e400", "0", "log(N)", "exp(A)", "N**-alpha", "(A"]),
            min_size=1,
            max_size=6,
        ),
        st.lists(st.sampled_from(["+", "-", "*", "/", "**", " "]), min_size=5, max_size=5),
    ),
)


@settings(max_examples=500, **SETTINGS)
@given(text=formula_text, prior=st.sampled_from(["Normal(0, 1)", "LogNormal(0, 1)", "Uniform(0, 1)", 5, None]))
def test_formulas(text, prior):
    names = set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", text)) - {
        "N",
        "exp",
        "log",
        "log1p",
        "sqrt",
        "minimum",
        "maximum",
    }

    def build():
        law = Law.from_formula(text, inputs=["N"], priors=dict.fromkeys(names, prior))
        with np.errstate(all="ignore"):
            law.evaluate(dict.fromkeys(law.params, 0.5), N=np.array([1e8, 1e10]))

    named_error_or_nothing(build)


@settings(max_examples=500, **SETTINGS)
@given(
    spec=st.one_of(
        st.text(max_size=30),
        st.builds(
            lambda d, args: f"{d}({', '.join(args)})",
            st.sampled_from([*DISTRIBUTIONS, "Wishart", "normal"]),
            st.lists(
                st.sampled_from(["0", "1", "-1", "inf", "nan", "1e309", "mu=1", "sigma=0", "lower=2", "x", ""]),
                max_size=4,
            ),
        ),
        st.fixed_dictionaries(
            {
                "dist": st.sampled_from([*DISTRIBUTIONS, 3]),
                "kwargs": st.dictionaries(
                    st.sampled_from(["mu", "sigma", "lower", "upper", "nu", "q"]), values, max_size=3
                ),
            }
        ),
        values,
        st.lists(values, max_size=2),
    )
)
def test_priors(spec):
    def build():
        prior = Prior.from_spec("alpha", spec)
        assert np.all(np.isfinite(prior.scipy().rvs(size=3, random_state=0)))

    named_error_or_nothing(build)


LAW_FILE = (bs.laws.laws_dir() / "chinchilla.toml").read_text().splitlines()


@settings(max_examples=300, **SETTINGS)
@given(
    line=st.integers(min_value=0, max_value=len(LAW_FILE) - 1),
    replacement=st.one_of(
        st.just(""),
        st.text(max_size=25),
        st.sampled_from(
            [
                "priors = 5",
                'inputs = "N"',
                "N = inf",
                'E = "E + chain"',
                "[model]",
                'formula = "10**10**10"',
                "name = 3",
            ]
        ),
    ),
)
def test_law_files(line, replacement):
    text = "\n".join([*LAW_FILE[:line], replacement, *LAW_FILE[line + 1 :]])
    named_error_or_nothing(lambda: Law.from_toml(text))


points = st.one_of(values, st.lists(values, max_size=3), st.dictionaries(st.text(max_size=3), values, max_size=2))


@settings(max_examples=300, **SETTINGS)
@given(
    n=points,
    d=points,
    group=st.one_of(
        st.none(), st.sampled_from(["web", "code", ""]), st.lists(st.sampled_from(["web", "x"]), max_size=3)
    ),
    seed=st.one_of(st.none(), st.integers(min_value=-2, max_value=2**70), st.text(max_size=2), st.floats()),
    as_table=st.booleans(),
)
def test_predictions(stored_fit, n, d, group, seed, as_table):
    """Points to predict at, as keywords or as a mapping of columns (with a loss column), groups and seeds."""
    if as_table:
        table = {"n_params": n, "n_tokens": d, "loss": d, "dataset": group}
        named_error_or_nothing(lambda: stored_fit.predict(table, seed=seed, new_group=True))
    else:
        named_error_or_nothing(lambda: stored_fit.predict(N=n, D=d, group=group, seed=seed, new_group=True))


@settings(max_examples=150, **SETTINGS)
@given(
    command=st.sampled_from(["summary", "predict", "optimal", "laws", "calibrate", "modes"]),
    options=st.lists(
        st.sampled_from(
            [
                "--at",
                "N=1e9,D=2e10",
                "N=x",
                "N=-1,D=1",
                "=",
                "--group",
                "web",
                "cod",
                "--new-group",
                "--prob",
                "0.9",
                "1.5",
                "nan",
                "--compute",
                "1e21",
                "1e21,lots",
                "-1",
                "--runs",
                "missing.csv",
                "--json",
                "--kind",
                "observation",
                "banana",
                "--csv",
                "--flops",
                "6*N*D",
                "N.x",
                "--target",
                "--keep",
                "1,x",
                "--out",
                "kept.nc",
                "--seed",
            ]
        ),
        max_size=6,
    ),
)
def test_command_lines(stored_fit_path, tmp_path_factory, command, options):
    args = [command] + ([] if command == "laws" else [str(stored_fit_path)]) + options
    out, err = io.StringIO(), io.StringIO()
    with (
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        contextlib.chdir(tmp_path_factory.getbasetemp()),
    ):
        try:
            code = main(args)
        except SystemExit as exit_:  # argparse's own usage errors: exit 2 with its message
            if exit_.code != 2 or "error:" not in err.getvalue():
                pytest.fail(f"{args}: exit {exit_.code}, {err.getvalue()!r}")
            return
    assert code in (0, 2), (args, code, err.getvalue())
    if code == 2:
        assert err.getvalue().startswith("bayes-scaling: error: ") and "Traceback" not in err.getvalue()
