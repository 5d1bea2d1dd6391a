"""nutpie's C entry points, built here so that numba caches them on disk (bayes_scaling.native)."""

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import nutpie
import pandas as pd

import bayes_scaling as bs
from bayes_scaling.data import load_runs
from bayes_scaling.fitting import compiled_model
from bayes_scaling.model import data_values
from bayes_scaling.observation import ObservationModel
from bayes_scaling.priors import resolve_priors


def compile_law(runs: pd.DataFrame, law: str = "chinchilla", columns: dict | None = None):
    """The law's model on ``runs`` and its compiled form (this package's, in a cache of its own), and a
    function giving the data values of other runs."""
    law_ = bs.load_law(law)
    observation = ObservationModel(discrepancy=False)
    table = load_runs(runs, inputs=law_.inputs, columns=columns)
    priors = resolve_priors({**law_.priors, **observation.default_priors()}, {})
    law_ = law_.with_scales(table.inputs)
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
import sys
import numpy as np
import pandas as pd
sys.path.insert(0, {tests!r})
from test_native import compile_law

from conftest import CHINCHILLA_TRUTH, simulate

_, compiled, _ = compile_law(simulate("chinchilla", CHINCHILLA_TRUTH), "kaplan_nd")
print(compiled.compiled_logp_func.cache_hits, compiled.compiled_expand_func.cache_hits)
import nutpie
tree = nutpie.sample(compiled, draws=100, tune=100, chains=1, seed=1, progress_bar=False)
print(repr(float(sum(v.values.sum() for v in tree["posterior"].data_vars.values()))))
"""


def test_a_second_process_loads_the_entry_points_from_disk(tmp_path):
    """The compile wall: a new process with the same model loads both C entry points from the disk cache
    (under PyTensor's base_compiledir) instead of compiling them, and draws what the first drew with the
    same seed (compiled code loaded from the cache computes exactly what it computed when fresh)."""
    env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={tmp_path}"}
    script = SCRIPT.format(tests=str(Path(__file__).parent))
    hits = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        hits.append(out.stdout.split())
    assert [h[:2] for h in hits] == [["0", "0"], ["1", "1"]]
    assert hits[0][2] == hits[1][2]
