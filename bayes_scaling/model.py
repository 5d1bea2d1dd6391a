"""Build the PyMC model of a law on a table of runs (a pure function of its arguments)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from .data import RunTable
from .laws import Law
from .priors import Prior

__all__ = ["build_model", "LIKELIHOODS", "OBSERVED", "data_values"]

LIKELIHOODS = ("student_t", "normal")
#: Name of the observed log-loss variable (and of its log-likelihood).
OBSERVED = "log_loss"


def data_values(law: Law, runs: RunTable) -> dict[str, np.ndarray]:
    """The model's data containers for ``runs``: scaled inputs and the observed log-loss."""
    values = {k: runs.inputs[k] / law.scales[k] for k in law.inputs}
    values[f"{OBSERVED}_data"] = np.log(runs.loss)
    return values


def build_model(law: Law, runs: RunTable, priors: Mapping[str, Prior], *, likelihood: str = "student_t") -> pm.Model:
    """The law as a PyMC model on log-loss.

    The sampled parameters are the law's well-conditioned ones (inputs relative to the reference
    scales); the published parameters are deterministics. All laws share the observation model
    ``log(loss) ~ StudentT(nu, log(law), sigma)`` (or Normal), so their LOO scores compare. The data
    sit in ``pm.Data`` containers so a compiled model can be refitted on other runs.
    """
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {likelihood!r}; use one of {', '.join(LIKELIHOODS)}")
    with pm.Model(coords={"obs": np.arange(len(runs))}) as model:
        data = {k: pm.Data(k, v, dims="obs") for k, v in data_values(law, runs).items()}
        sampled = {p: priors[p].to_pymc(p) for p in law.sampled_params}
        for name, value in law.to_natural(sampled, backend="pytensor").items():
            if name not in sampled:
                pm.Deterministic(name, value)
        mu = pt.log(law.model_formula.evaluate({**sampled, **data}, backend="pytensor"))
        sigma = priors["sigma"].to_pymc("sigma")
        observed = data[f"{OBSERVED}_data"]
        if likelihood == "student_t":
            nu = priors["nu"].to_pymc("nu")
            pm.StudentT(OBSERVED, nu=nu, mu=mu, sigma=sigma, observed=observed, dims="obs")
        else:
            pm.Normal(OBSERVED, mu=mu, sigma=sigma, observed=observed, dims="obs")
    return model
