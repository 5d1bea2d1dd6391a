"""Simulation-based calibration (Talts et al. 2018, arXiv:1804.06788) of a law and the observation model.

Each cycle draws parameters from the priors, simulates runs on a fixed design, fits them with the same
model (the compiled model is reused; only the data change) and ranks every true value among its posterior
draws. If the sampler and the model's code are right, each parameter's ranks are uniform over cycles.
The discrepancy's ``kappa`` and ``z`` are drawn from their priors after sampling, so their ranks are
uniform by construction; cycles fit without them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .data import DEFAULT_COLUMNS
from .laws import Law, load_law
from .observation import ObservationModel, flat_draws
from .priors import Prior

__all__ = ["DESIGN_COLUMNS", "SBCResult", "design", "sbc"]

#: Column of the design for each law input: the defaults, and ``x`` (laws in one input) sees the compute.
DESIGN_COLUMNS = {**DEFAULT_COLUMNS, "x": "compute_flops"}


def design() -> pd.DataFrame:
    """The runs every cycle simulates: 8 model sizes (10M-3B) x 8 token-per-parameter ratios (5-640), compute
    6ND, unique tokens repeating the data 1 to 64 times."""
    sizes, tpp = np.meshgrid(np.geomspace(1e7, 3e9, 8), np.geomspace(5, 640, 8))
    n = sizes.ravel()
    d = n * tpp.ravel()
    return pd.DataFrame(
        {
            "n_params": n,
            "n_tokens": d,
            "compute_flops": 6 * n * d,
            "unique_tokens": d / np.resize(2 ** np.arange(7), n.size),
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
    return {p: float(priors[p].scipy().rvs(random_state=rng)) for p in names}


def _cycles(
    source: str, likelihood: str, indices: Sequence[int], seed: int, draws: int, thin: int, tune: int, chains: int
) -> list[dict]:
    """Run the cycles ``indices`` (in one process: the model compiles once, then refits swap the data)."""
    from .fitting import fit

    law = Law.from_toml(source)
    observation = ObservationModel(likelihood, False, False)
    runs = design()
    inputs = {k: runs[DESIGN_COLUMNS[k]].to_numpy() for k in law.inputs}
    scaled = law.with_scales(inputs)
    priors = {**law.priors, **{k: Prior.from_spec(k, v) for k, v in observation.default_priors().items()}}
    rows = []
    for i in indices:
        rng = np.random.default_rng([seed, i])
        truth = _truth(scaled, observation, priors, rng)
        mu = np.log(scaled.evaluate_sampled(truth, **inputs))[None, :]
        noise = {k: np.asarray([[truth[k]]]) for k in observation.params}
        loss = np.exp(observation.sample(mu, noise, rng)[0])
        published = {k: float(v) for k, v in scaled.to_natural(truth).items()}
        row: dict = {}
        if not np.all(np.isfinite(loss)):  # a prior draw whose law overflows: no data to fit
            row["problems"] = "simulated loss not finite"
            rows.append(row)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = fit(
                runs.assign(loss=loss),
                law=law,
                columns={k: DESIGN_COLUMNS[k] for k in law.inputs if k == "x"},
                likelihood=likelihood,
                discrepancy=False,
                draws=draws * thin // chains,
                tune=tune,
                chains=chains,
                seed=int(rng.integers(2**31)),
                progressbar=False,
            )
        for name, value in {**truth, **published}.items():
            kept = flat_draws(result.tree["posterior"].to_dataset()[name].values)[::thin][:draws]
            row[name] = int((kept < value).sum())
        row["problems"] = "; ".join(result.problems)
        rows.append(row)
    return rows


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
    workers: int = 1,
) -> SBCResult:
    """Simulation-based calibration of ``law`` with the default observation model: ``cycles`` prior draws,
    simulated runs on :func:`design`, fits, and the rank of each true value among ``draws`` posterior draws
    (every ``thin``-th, to make them nearly independent). ``workers`` > 1 runs cycles in that many processes
    (each compiles once). Cycles whose simulated losses overflow are dropped."""
    law = load_law(law)
    chunks = [list(range(w, cycles, workers)) for w in range(workers)]
    args = (law.source, likelihood)
    options = (seed, draws, thin, tune, chains)
    if workers == 1:
        rows = _cycles(*args, chunks[0], *options)
    else:
        with ProcessPoolExecutor(workers) as pool:
            futures = [pool.submit(_cycles, *args, chunk, *options) for chunk in chunks]
            rows = [row for future in futures for row in future.result()]
    ranks = pd.DataFrame(rows)
    ranks = ranks[ranks["problems"] != "simulated loss not finite"].reset_index(drop=True)
    return SBCResult(law.name, ranks, draws)
