"""Shared fixtures: simulated runs, real data paths, and fits sampled once per session."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import bayes_scaling as bs
from bayes_scaling.cli import main
from bayes_scaling.observation import ObservationModel
from bayes_scaling.sbc import DESIGN_COLUMNS, design

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

#: Hoffmann et al. 2022, Approach 3 (rounded, as printed in their eq. 10).
CHINCHILLA_TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
KAPLAN_TRUTH = {"N_c": 6.4e13, "D_c": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103}


def simulate(law: str, params: dict, *, sigma: float = 0.01, seed: int = 0) -> pd.DataFrame:
    """Runs on the 8 x 8 design of ``bayes_scaling.sbc.design`` (10M-3B parameters, 5-640 tokens per
    parameter, unique tokens repeated 1 to 64 times), the law's loss with noise on the log-loss. A law in one
    input ``x`` (power_irreducible, broken_power) sees the compute."""
    rng = np.random.default_rng(seed)
    runs = design()
    law_ = bs.load_law(law)
    loss = law_.evaluate(params, **{k: runs[DESIGN_COLUMNS[k]].to_numpy() for k in law_.inputs})
    return runs.assign(loss=loss * np.exp(rng.normal(0, sigma, len(runs))))


#: Column of each input in ``simulate``'s runs, for laws whose input has no default column.
SIM_COLUMNS = {"x": "compute_flops"}


def prior_band(law: bs.Law, inputs: dict, y: np.ndarray, floor: float | None = None) -> tuple:
    """The 90% prior predictive band of a law's target at ``inputs`` (its default priors and the noise's,
    4000 draws) and the prior draws of the curve: (lo, hi, curve). ``floor``: a least curve value, for a
    law whose curve some prior draws take below its target's range."""
    from bayes_scaling.priors import Prior

    law = law.with_scales(inputs)
    observation = ObservationModel(target=law.target)
    priors = {**law.priors, **observation.default_priors(observation.link(y))}
    draws = {p: Prior.from_spec(p, prior).sample(4000, seed=i)[:, None] for i, (p, prior) in enumerate(priors.items())}
    curve = law.evaluate_sampled({p: draws[p] for p in law.priors}, **inputs)
    mu = observation.link(curve if floor is None else np.maximum(curve, floor))
    replicates = observation.inverse(observation.sample(mu, draws, np.random.default_rng(0)))
    lo, hi = np.quantile(replicates, [0.05, 0.95], axis=0)
    return lo, hi, curve


def shared_csv(folder: str, name: str) -> Path:
    path = SHARED_DATA / folder / name
    if not path.is_file():
        pytest.skip(f"shared dataset {path} not present")
    return path


@pytest.fixture(scope="session")
def chinchilla_runs() -> pd.DataFrame:
    return simulate("chinchilla", CHINCHILLA_TRUTH)


@pytest.fixture(scope="session")
def chinchilla_fit(chinchilla_runs: pd.DataFrame) -> bs.ScalingFit:
    """A real NUTS fit (nutpie, 4 x 1000 draws) on simulated Chinchilla runs; reused by many tests."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", bs.SamplingWarning)
        return bs.fit(chinchilla_runs, law="chinchilla", seed=11, progressbar=False)


STORED_FIT = Path(__file__).resolve().parent / "data" / "grouped_fit.nc"


@pytest.fixture(scope="session")
def stored_fit_path() -> Path:
    """A small real fit saved by tests/data/make_fixtures.py: two groups ("web", "code"), 2 x 200 draws."""
    return STORED_FIT


@pytest.fixture(scope="session")
def stored_fit(stored_fit_path: Path) -> bs.ScalingFit:
    return bs.ScalingFit.load(stored_fit_path)


def run(*args, check=True):
    """``bayes-scaling ARGS`` in this process: returncode, stdout and stderr as a subprocess would give."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    proc = SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())
    if check and code != 0:
        raise AssertionError(f"exit {code}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def process(*args, **kwargs):
    """``bayes-scaling ARGS`` as a separate process."""
    return subprocess.run(
        [sys.executable, "-m", "bayes_scaling.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        **kwargs,
    )
