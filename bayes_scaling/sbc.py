"""Simulation-based calibration (Talts et al. 2018, arXiv:1804.06788) of a law and the observation model.

Each cycle draws parameters from the priors, simulates runs on a fixed design, fits them with the same
model (the compiled model is reused; only the data change) and ranks every true value among its posterior
draws. If the sampler and the model's code are right, each parameter's ranks are uniform over cycles.
The discrepancy's ``kappa`` and ``z`` are drawn from their priors after sampling, so their ranks are
uniform by construction; cycles fit without them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from .data import DEFAULT_COLUMNS
from .errors import BayesScalingError
from .laws import Law, load_law
from .observation import ObservationModel, flat_draws, outside_support
from .parallel import raise_if_all_failed, run_tasks
from .priors import Prior

__all__ = ["DESIGN_COLUMNS", "SBCResult", "design", "sbc"]

#: Column of the design for each law input: the defaults, ``x`` (laws in one input) sees the compute and
#: ``L`` the task loss (neither has a default column).
DESIGN_COLUMNS = {**DEFAULT_COLUMNS, "x": "compute_flops", "L": "L"}


#: A cycle whose simulated target is not finite or outside its kind's range (no data to fit): dropped.
OFF_SUPPORT = "simulated target outside its range"


def design() -> pd.DataFrame:
    """The runs every cycle simulates: 8 model sizes (10M-3B) x 8 token-per-parameter ratios (5-640), compute
    6ND, unique tokens repeating the data 1 to 64 times; for the laws of other targets and of learning
    curves, the same runs' task loss ``L`` (2 to 0.5, falling with compute), a chance accuracy of 0.25, the
    steps at 2^20 tokens each, a learning-rate area of 0.6 D, an annealing area of 0 to 0.9 and batch sizes
    of 3e4 to 1e7 tokens."""
    sizes, tpp = np.meshgrid(np.geomspace(1e7, 3e9, 8), np.geomspace(5, 640, 8))
    n = sizes.ravel()
    d = n * tpp.ravel()
    rank = np.argsort(np.argsort(n * d))
    return pd.DataFrame(
        {
            "n_params": n,
            "n_tokens": d,
            "compute_flops": 6 * n * d,
            "unique_tokens": d / np.resize(2 ** np.arange(7), n.size),
            "L": np.geomspace(2.0, 0.5, n.size)[rank],
            "chance_acc": 0.25,
            "step": d / 2**20,
            "lr_area": 0.6 * d,
            "anneal_area": np.resize(np.linspace(0.0, 0.9, 5), n.size),
            "batch_size_tokens": np.resize(np.geomspace(3e4, 1e7, 7), n.size),
        }
    )


@dataclass(frozen=True)
class SBCResult:
    """``ranks``: one row per cycle, one column per parameter (the number of kept posterior draws below the
    true value, 0 to ``draws``), and ``problems`` (convergence checks the cycle's fit failed)."""

    law: str
    ranks: pd.DataFrame
    draws: int

    def summary(self, bins: int = 10, alpha: float = 0.01) -> pd.DataFrame:
        """Per parameter: a chi-square test of uniform ranks over ``bins`` bins, and whether it passes at
        ``alpha`` after a Bonferroni correction for the number of parameters."""
        from scipy.stats import chisquare

        params = [c for c in self.ranks if c != "problems"]
        edges = np.linspace(0, self.draws + 1, bins + 1)
        rows = []
        for p in params:
            counts, _ = np.histogram(self.ranks[p], bins=edges)
            rows.append({"parameter": p, "cycles": len(self.ranks), "p_value": float(chisquare(counts).pvalue)})
        table = pd.DataFrame(rows).set_index("parameter")
        table["passed"] = table["p_value"] > alpha / len(params)
        return table

    @property
    def passed(self) -> bool:
        return bool(self.summary()["passed"].all())


def _truth(law: Law, observation: ObservationModel, priors: dict[str, Prior], rng: np.random.Generator) -> dict:
    """Sampled parameters and noise drawn from their priors."""
    names = [*law.sampled_params, *observation.params]
    return {p: float(priors[p].sample(1, seed=rng)[0]) for p in names}


@lru_cache(maxsize=4)
def _setup(source: str, likelihood: str) -> tuple:
    """What every cycle of a law shares, made once per process: the law at the design's scales, the
    observation model, the design, its inputs and the priors."""
    law = Law.from_toml(source)
    observation = ObservationModel(likelihood, False, False, law.target)
    runs = design()
    inputs = {k: runs[DESIGN_COLUMNS[k]].to_numpy() for k in law.inputs}
    priors = {**law.priors, **{k: Prior.from_spec(k, v) for k, v in observation.default_priors().items()}}
    return law, law.with_scales(inputs), observation, runs, inputs, priors


def _cycle(task: tuple) -> dict:
    """One cycle (here or on a worker; each process compiles the law once, then refits swap the data):
    draw the truth, simulate the design's runs, fit, rank the truth among the kept draws."""
    from .fitting import fit

    source, likelihood, i, seed, draws, thin, tune, chains = task
    law, scaled, observation, runs, inputs, priors = _setup(source, likelihood)
    rng = np.random.default_rng([seed, i])
    truth = _truth(scaled, observation, priors, rng)
    mu = observation.link(scaled.evaluate_sampled(truth, **inputs))[None, :]
    noise = {k: np.asarray([[truth[k]]]) for k in observation.params}
    loss = observation.inverse(observation.sample(mu, noise, rng)[0])
    natural = scaled.to_natural(truth)  # constants such as a reference scale (rank 0 in every cycle): not ranked
    published = {k: float(natural[k]) for k in law.estimated_params}
    if not np.all(np.isfinite(loss)) or outside_support(law.target, loss).size:
        return {"problems": OFF_SUPPORT}  # a prior draw whose law overflows, or an accuracy rounded to 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit(
            runs.assign(loss=loss),
            law=law,
            columns={k: DESIGN_COLUMNS[k] for k in law.inputs},
            likelihood=likelihood,
            discrepancy=False,
            draws=draws * thin // chains,
            tune=tune,
            chains=chains,
            seed=int(rng.integers(2**31)),
            progressbar=False,
        )
    row: dict = {}
    for name, value in {**truth, **published}.items():
        kept = flat_draws(result.tree["posterior"].to_dataset()[name].values)[::thin][:draws]
        row[name] = int((kept < value).sum())
    row["problems"] = "; ".join(result.problems)
    return row


def sbc(
    law: str | Law,
    *,
    cycles: int = 200,
    seed: int = 0,
    draws: int = 99,
    thin: int = 4,
    tune: int = 500,
    chains: int = 2,
    likelihood: str = "student_t",
    client: Any = None,
    progressbar: bool = False,
) -> SBCResult:
    """Simulation-based calibration of ``law`` with the default observation model: ``cycles`` prior draws,
    simulated runs on :func:`design`, fits, and the rank of each true value among ``draws`` posterior draws
    (every ``thin``-th, to make them nearly independent). ``client``: where the cycles run, this process
    (None) or a Dask cluster (``"local"``, an address or a Client; see :mod:`bayes_scaling.parallel`), each
    process compiling once. Cycles whose simulated targets overflow or leave their range (an accuracy
    rounded to 1) are dropped; a cycle whose fit fails raises (SBC needs every cycle)."""
    law = load_law(law)
    tasks = [(law.source, likelihood, i, seed, draws, thin, tune, chains) for i in range(cycles)]
    outcomes = run_tasks(_cycle, tasks, client=client, desc=f"SBC {law.name}", progressbar=progressbar)
    raise_if_all_failed(outcomes)
    failed = [f"cycle {i}: {o.error}" for i, o in enumerate(outcomes) if o.error]
    if failed:  # SBC's ranks are uniform only over every cycle
        raise BayesScalingError(f"SBC of {law.name}: {len(failed)} cycle(s) failed, first {failed[0]}")
    rows = [o.value for o in outcomes]
    ranks = pd.DataFrame(rows)
    ranks = ranks[ranks["problems"] != OFF_SUPPORT].reset_index(drop=True)
    return SBCResult(law.name, ranks, draws)
