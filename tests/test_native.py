"""nutpie's C entry points, built here so that numba caches them on disk (bayes_scaling.native)."""

import ctypes
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import nutpie
import pandas as pd
import pytest

import bayes_scaling as bs
from bayes_scaling.data import load_runs
from bayes_scaling.fitting import compiled_model
from bayes_scaling.model import build_model, data_values
from bayes_scaling.observation import ObservationModel
from bayes_scaling.priors import resolve_priors
from conftest import CHINCHILLA_TRUTH, simulate


def _parts(runs: pd.DataFrame, law: str, columns: dict | None = None):
    law_ = bs.load_law(law)
    observation = ObservationModel(discrepancy=False)
    table = load_runs(runs, inputs=law_.inputs, columns=columns)
    priors = resolve_priors({**law_.priors, **observation.default_priors()}, {})
    return law_.with_scales(table.inputs), table, priors, observation


def _model(runs: pd.DataFrame, law: str):
    """The law's PyMC model on ``runs``, not compiled."""
    law_, table, priors, observation = _parts(runs, law)
    return build_model(law_, table, priors, observation=observation)


def compile_law(runs: pd.DataFrame, law: str = "chinchilla", columns: dict | None = None):
    """The law's model on ``runs`` and its compiled form (this package's, in a cache of its own), and a
    function giving the data values of other runs."""
    law_, table, priors, observation = _parts(runs, law, columns)
    model, compiled, _ = compiled_model(law_, table, priors, observation, "nutpie", cache=bs.CompileCache())
    return model, compiled, lambda other: data_values(law_, load_runs(other, inputs=law_.inputs), observation)


def call_entries(compiled, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, int]:
    """The log density, its gradient and the expanded draw at ``x`` through the C functions nutpie calls,
    and the log density's return code."""
    pointer = ctypes.POINTER(ctypes.c_double)
    user_data = ctypes.c_void_p(compiled.user_data.ctypes.data)
    grad, logp, expanded = np.empty(compiled.n_dim), np.empty(()), np.empty(compiled.n_expanded)
    x_ = x.ctypes.data_as(pointer)
    code = compiled.compiled_logp_func.ctypes(
        compiled.n_dim, x_, grad.ctypes.data_as(pointer), logp.ctypes.data_as(pointer), user_data
    )
    compiled.compiled_expand_func.ctypes(
        compiled.n_dim, compiled.n_expanded, x_, expanded.ctypes.data_as(pointer), user_data
    )
    return float(logp), grad, expanded, code


def test_entry_points_match_nutpies_own(chinchilla_runs):
    """Same log density, gradient and expanded draws as nutpie's compile_pymc_model, also after other runs
    are swapped in as data; a point where the density is not finite gets nutpie's return code."""
    model, ours, values_of = compile_law(chinchilla_runs)
    assert ours.compiled_logp_func.__name__ == "entry"  # this package's entry points, not nutpie's fallback
    theirs = nutpie.compile_pymc_model(model)
    swapped = values_of(chinchilla_runs.iloc[::2])
    rng = np.random.default_rng(0)
    for a, b in [(ours, theirs), (ours.with_data(**swapped), theirs.with_data(**swapped))]:
        for _ in range(3):
            x = rng.normal(0, 0.5, ours.n_dim)
            (lp_a, grad_a, exp_a, code_a), (lp_b, grad_b, exp_b, code_b) = call_entries(a, x), call_entries(b, x)
            assert code_a == code_b == 0
            np.testing.assert_allclose([lp_a, *grad_a, *exp_a], [lp_b, *grad_b, *exp_b], rtol=1e-12)
    far = np.full(ours.n_dim, 1e6)
    assert call_entries(ours, far)[3] == call_entries(theirs, far)[3] != 0


SCRIPT = """
import logging
import sys
import numpy as np
import pandas as pd
sys.path.insert(0, {tests!r})
from test_native import call_entries, compile_law

from conftest import CHINCHILLA_TRUTH, simulate

loaded = []
logging.getLogger("bayes_scaling").setLevel(logging.INFO)
logging.getLogger("bayes_scaling").addHandler(logging.Handler())
logging.getLogger("bayes_scaling").handlers[-1].emit = lambda r: loaded.append("graphs loaded" in r.getMessage())
runs = simulate("chinchilla", CHINCHILLA_TRUTH)
_, compiled, _ = compile_law(runs.assign(loss=runs["loss"] * {scale}), "kaplan_nd")
print(compiled.compiled_logp_func.cache_hits, compiled.compiled_expand_func.cache_hits, int(any(loaded)))
print(repr(call_entries(compiled, np.zeros(compiled.n_dim))[0]))
import nutpie
tree = nutpie.sample(compiled, draws=100, tune=100, chains=1, seed=1, progress_bar=False)
print(repr(float(sum(v.values.sum() for v in tree["posterior"].data_vars.values()))))
"""


def test_a_second_process_loads_the_entry_points_and_graphs_from_disk(tmp_path):
    """The compile wall: a new process with the same model loads both C entry points from the disk cache
    (under PyTensor's base_compiledir) instead of compiling them, and its rewritten graphs instead of
    rewriting them, and draws what the first drew with the same seed (compiled code loaded from the cache
    computes exactly what it computed when fresh). A third process with other runs loads them too, and its
    log density is PyMC's own for its runs (the data are the model's at hand, not those the graphs were
    kept with)."""
    env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={tmp_path}"}
    outputs = []
    for scale in (1.0, 1.0, 1.1):
        script = SCRIPT.format(tests=str(Path(__file__).parent), scale=scale)
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        outputs.append(out.stdout.split())
    assert [o[:3] for o in outputs] == [["0", "0", "0"], ["1", "1", "1"], ["1", "1", "1"]]
    assert outputs[0][3:] == outputs[1][3:]  # the same log density and draws
    runs = simulate("chinchilla", CHINCHILLA_TRUTH)
    model = _model(runs.assign(loss=runs["loss"] * 1.1), "kaplan_nd")
    at_zero = {v.name: np.zeros(model.initial_point()[v.name].shape) for v in model.value_vars}
    assert float(outputs[2][3]) == pytest.approx(float(model.compile_logp()(at_zero)), rel=1e-10)
    assert float(outputs[2][3]) != pytest.approx(float(outputs[0][3]), rel=1e-3)


def test_a_broken_graph_file_is_rewritten(tmp_path, monkeypatch, caplog):
    """A kept graph file that cannot be read (cut short, or written by something else) costs a rewrite, not
    the fit: the graphs are rewritten, the file replaced whole (without the runs' data), and read back by
    the next compile."""
    import logging

    from bayes_scaling import native

    path = tmp_path / "graphs.pkl"
    path.write_bytes(b"not a pickle")
    monkeypatch.setattr(native, "_graph_file", lambda key: path)
    runs = simulate("chinchilla", CHINCHILLA_TRUTH)
    with caplog.at_level(logging.INFO, logger="bayes_scaling"):
        _, first, _ = compile_law(runs, "kaplan_n")
        assert "not usable" in caplog.text and path.read_bytes() != b"not a pickle"
        kept = pickle.loads(path.read_bytes())[0]  # the runs are not copied into the cache
        assert {v.name for v in kept.inputs if hasattr(v, "get_value")} == {"log_loss_data", "N_log"}
        assert all(v.get_value().size == 0 for v in kept.inputs if hasattr(v, "get_value"))
        caplog.clear()
        _, second, _ = compile_law(runs, "kaplan_n")
        assert "graphs loaded" in caplog.text
    x = np.linspace(-0.3, 0.3, first.n_dim)
    (lp_a, grad_a, _, _), (lp_b, grad_b, _, _) = call_entries(first, x), call_entries(second, x)
    np.testing.assert_allclose([lp_a, *grad_a], [lp_b, *grad_b], rtol=1e-12)
