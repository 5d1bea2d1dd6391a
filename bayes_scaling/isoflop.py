"""Approach 2 of Hoffmann et al. (2022): the compute-optimal allocation from IsoFLOP profiles.

Fit the law ``isoflop_parabola`` (loss = Lmin + w log(N / Nopt)^2) to runs at a few fixed compute budgets,
grouped by the budget, with ``pooling={"Lmin": "none", "m": "none", "w": "partial"}``: each budget gets its
own minimum and optimum, the curvature is shared loosely. Then, per posterior draw, a line through the
budgets' optimal sizes, log Nopt = log G + a log C, gives N_opt at any budget; D_opt = C / (6 N_opt). The
line is weighted least squares, each budget by the inverse posterior variance of its log Nopt: a profile
whose minimum its runs barely bracket (the smallest budget, often) must not tilt it.
The uncertainty of each profile's minimum reaches the exponent ``a`` and the allocation, draw by draw.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike

from .errors import OptionError, is_number
from .result import ScalingFit

__all__ = ["POOLING", "isoflop_optimal_draws"]

#: The pooling of an Approach 2 fit: each budget its own minimum and optimum, the curvature shared loosely.
POOLING = {"Lmin": "none", "m": "none", "w": "partial"}


def isoflop_optimal_draws(fit: ScalingFit, C: ArrayLike, *, flops_per_token: float = 6.0) -> xr.Dataset:
    """Posterior draws of the compute-optimal allocation by Approach 2 from a fit of ``isoflop_parabola``
    grouped by compute budget (the group labels are the budgets in FLOPs): ``N_opt``, ``D_opt`` (dims chain,
    draw, budget; the budgets in the coordinate ``C``) and the exponent ``a`` (N_opt ~ C^a; chain, draw).
    Summarise with :func:`bayes_scaling.intervals.summarize`."""
    from .optimal import checked_positive, group_trend

    C = checked_positive(C)
    if not (is_number(flops_per_token) and flops_per_token > 0):
        raise OptionError(
            f"flops_per_token must be a positive number (6 for a dense transformer), got {flops_per_token!r}"
        )
    _, intercept, slope, center = group_trend(
        fit, "Nopt_group", law="isoflop_parabola", labels="compute budgets in FLOPs"
    )
    n_opt = np.exp(intercept[..., None] + slope[..., None] * (np.log(C) - center))
    dims = ("chain", "draw", "budget")
    return xr.Dataset(
        {"N_opt": (dims, n_opt), "D_opt": (dims, C / (flops_per_token * n_opt)), "a": (dims[:2], slope)},
        coords={"C": ("budget", C)},
        attrs={"method": "Approach 2: a line through the IsoFLOP profiles' minima, per draw"},
    )
