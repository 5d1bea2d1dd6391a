"""Many fits: run_tasks here and on a Dask LocalCluster give the same outcomes in the same order, a failing
task is recorded instead of sinking the batch, and a backtest on a cluster equals the serial one."""

import math

import numpy as np
import pytest

import bayes_scaling as bs
from bayes_scaling.parallel import Outcome, run_tasks

pytest.importorskip("distributed", reason="the dask extra is not installed: pip install 'bayes-scaling[dask]'")

TASKS = [4.0, 9.0, -1.0, 2.25]
EXPECTED = [Outcome(2.0), Outcome(3.0), Outcome(error="ValueError: math domain error"), Outcome(1.5)]


def test_tasks_in_order_with_failures_recorded():
    assert run_tasks(math.sqrt, TASKS, progressbar=False) == EXPECTED


@pytest.mark.slow
def test_local_cluster_gives_the_serial_outcomes_and_backtest(chinchilla_runs):
    assert run_tasks(math.sqrt, TASKS, client="local", progressbar=False) == EXPECTED
    options = {"laws": ["chinchilla", "kaplan_nd"], "holdout": [0.4, 0.2], "draws": 300, "tune": 300, "seed": 3}
    serial = bs.backtest(chinchilla_runs, progressbar=False, **options)
    spread = bs.backtest(chinchilla_runs, progressbar=False, client="local", **options)
    same = ["cut", "law", "n_fit", "lpd", "coverage_90", "width_90", "max_r_hat", "error"]
    assert serial[same].equals(spread[same])


def test_a_failing_fit_is_a_row_not_a_crash(chinchilla_runs):
    table = bs.backtest(
        chinchilla_runs, laws=["chinchilla"], holdout=[0.5, 0.95], draws=200, tune=200, seed=1, progressbar=False
    )
    ok, failed = table.iloc[0], table.iloc[1]
    assert ok["error"] == "" and np.isfinite(ok["lpd"])
    assert failed["error"].startswith("DataError") and "fewer than" in failed["error"] and np.isnan(failed["lpd"])
    with pytest.raises(bs.DataError, match="fewer than"):  # every fit failing is the caller's error, raised
        bs.backtest(chinchilla_runs, laws=["chinchilla"], holdout=0.95, progressbar=False)


def test_bad_client_is_a_named_error(chinchilla_runs):
    with pytest.raises(bs.OptionError, match="client must be"):
        run_tasks(math.sqrt, TASKS, client=42, progressbar=False)
    with pytest.raises(bs.OptionError, match="each worker keeps its own"):
        bs.backtest(chinchilla_runs, laws=["chinchilla"], client="local", cache=bs.CompileCache())
