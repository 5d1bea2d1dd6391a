"""The samplers a fit can use, and the one call that runs them (imported lazily: naming the samplers, as the
command line does for its options, costs nothing)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import MissingDependencyError, SamplerStartError

if TYPE_CHECKING:
    import pymc as pm
    import xarray as xr

__all__ = ["SAMPLERS", "run_sampler"]

SAMPLERS = ("nutpie", "pymc", "numpyro")


def run_sampler(
    model: pm.Model,
    compiled: Any,
    *,
    sampler: str,
    chains: int,
    draws: int,
    tune: int,
    target_accept: float,
    adaptation: str,
    seed: int,
    progressbar: bool,
) -> xr.DataTree:
    """NUTS on ``model`` (nutpie samples its ``compiled`` form); the sampler's own DataTree. A sampler that
    cannot start raises :class:`SamplerStartError` naming the variables whose log density is not finite."""
    import pymc as pm

    try:
        if sampler == "nutpie":
            from .native import import_nutpie

            return import_nutpie().sample(
                compiled,
                draws=draws,
                tune=tune,
                chains=chains,
                seed=seed,
                target_accept=target_accept,
                progress_bar=progressbar,
                adaptation=adaptation,
                save_warmup=False,  # a fit keeps the draws after tuning: converting the tuning steps cost a tenth
            )
        if sampler == "numpyro":
            try:
                import numpyro  # noqa: F401
            except ImportError:
                raise MissingDependencyError(
                    "sampler='numpyro' needs jax and numpyro: pip install 'bayes-scaling[jax]'"
                ) from None
        from .native import exact_math

        with exact_math():  # PyMC compiles the model here
            return pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                random_seed=seed,
                target_accept=target_accept,
                progressbar=progressbar,
                model=model,
                compute_convergence_checks=False,
                nuts_sampler=sampler,  # named explicitly: PyMC 6's own default is nutpie
            )
    except RuntimeError:  # nutpie: "All initialization points failed"; PyMC's SamplingError
        bad = _not_finite_at_start(model)
        if not bad:
            raise  # not explained by the model's density: a bug, shown as it is
        raise SamplerStartError(
            f"the sampler could not start: the log density is not finite at the initial point for {bad}. Check "
            "the priors of these parameters, the law's scales and the magnitude of the runs (loss in nats per "
            "token, N and D as counts)"
        ) from None


def _not_finite_at_start(model: pm.Model) -> list[str]:
    """The variables whose log density is not finite at the model's initial point; evaluated only after the
    sampler failed to start, so a fit that starts pays nothing for it."""
    import numpy as np

    try:
        logps = model.point_logps()
    except (ValueError, ArithmeticError, RuntimeError):
        return []
    return [name for name, value in logps.items() if not np.isfinite(value)]
