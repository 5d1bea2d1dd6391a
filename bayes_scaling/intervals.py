"""Credible intervals: one place for the default probabilities and the interval kind."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from .errors import OptionError

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

#: Default probability of a single credible interval, and the default set for bands.
PROB = 0.9
PROBS = (0.5, 0.9)
#: Every interval this package reports is equal-tailed (quantiles (1-p)/2 and (1+p)/2).
KIND = "eti"


def check_probs(prob: float | Iterable[float]) -> tuple[float, ...]:
    """``prob`` as a tuple of probabilities strictly between 0 and 1."""
    probs = (prob,) if np.isscalar(prob) else tuple(prob) if isinstance(prob, Iterable) else ()
    if not probs or not all(isinstance(p, int | float) and 0 < p < 1 for p in probs):
        raise OptionError(f"interval probabilities must lie strictly between 0 and 1, got {prob!r}")
    return tuple(float(p) for p in probs)


def check_prob(prob: float) -> float:
    """One interval's probability, strictly between 0 and 1."""
    probs = check_probs(prob)
    if len(probs) != 1:
        raise OptionError(f"give one interval probability here, got {prob!r}")
    return probs[0]


def label(prob: float) -> str:
    """Column prefix of an interval, e.g. ``eti90`` or ``eti97.5``."""
    return f"{KIND}{100 * prob:g}"


def bounds(samples: np.ndarray, probs: Iterable[float], axis: int = 0) -> dict[str, np.ndarray]:
    """Median and equal-tailed bounds along ``axis``: ``{"median", "eti90_lower", "eti90_upper", ...}``.
    Missing draws (NaN, e.g. a budget a draw never reaches) are left out."""
    nan = bool(np.isnan(samples).any())
    median, quantile = (np.nanmedian, np.nanquantile) if nan else (np.median, np.quantile)
    out = {"median": median(samples, axis=axis)}
    for p in probs:
        lo, hi = quantile(samples, [(1 - p) / 2, (1 + p) / 2], axis=axis)
        out[f"{label(p)}_lower"], out[f"{label(p)}_upper"] = lo, hi
    return out


def sorted_quantile(ordered: np.ndarray, q: float) -> np.ndarray:
    """numpy's default ("linear") quantile of each row of values sorted along the last axis, read off
    without partitioning again: one sort serves many quantiles."""
    m = ordered.shape[-1]
    h = (m - 1) * q
    lo = int(np.floor(h))
    t = h - lo
    a, b = ordered[..., lo], ordered[..., min(lo + 1, m - 1)]
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t


def inside(observed: np.ndarray, table: Mapping[str, np.ndarray], probs: Iterable[float]) -> dict[str, np.ndarray]:
    """Whether each observed value lies in each interval of ``table`` (as made by :func:`bounds`):
    ``{"inside_eti90": ...}``; False where the observation is missing (NaN)."""
    return {
        f"inside_{label(p)}": (observed >= table[f"{label(p)}_lower"]) & (observed <= table[f"{label(p)}_upper"])
        for p in probs
    }


#: The dimensions that index posterior draws.
SAMPLE_DIMS = ("chain", "draw")


def sample_matrix(draws: xr.DataArray) -> np.ndarray:
    """Draws with dims (chain, draw, point) as an array (chain * draw, points)."""
    return draws.stack(sample=SAMPLE_DIMS).transpose("sample", ...).values


def summarize(
    draws: xr.DataArray | xr.Dataset, probs: Iterable[float], observed: np.ndarray | None = None
) -> pd.DataFrame:
    """The one summary of posterior draws: a row per element of the non-sample dimensions (points, budgets,
    groups), with their coordinates as columns, then the median and the bounds of each equal-tailed interval
    (``median``, ``eti90_lower``, ...; prefixed by the variable's name for a Dataset: ``N_opt_median``).
    With ``observed`` values (one per row), adds them and whether each lies inside each interval."""
    import pandas as pd
    import xarray as xr

    probs = check_probs(probs)
    data = draws.to_dataset(name=draws.name or "value") if isinstance(draws, xr.DataArray) else draws
    rest = list(dict.fromkeys(d for v in data.data_vars.values() for d in v.dims if d not in SAMPLE_DIMS))
    stacked = data.stack(_row=rest) if rest else data.expand_dims("_row")
    size = stacked.sizes["_row"]
    columns = [c for c in data.coords if c not in SAMPLE_DIMS and data[c].dims and set(data[c].dims) <= set(rest)]
    table = pd.DataFrame({c: np.broadcast_to(stacked[c].values, (size,)) for c in columns})
    for name, var in stacked.data_vars.items():
        values = var.transpose(*SAMPLE_DIMS, "_row").values.reshape(-1, size)
        prefix = "" if isinstance(draws, xr.DataArray) else f"{name}_"
        table = table.assign(**{prefix + k: v for k, v in bounds(values, probs).items()})
    if observed is not None:
        table["observed"] = observed
        table = table.assign(**inside(observed, table, probs))
    table.attrs["interval"] = "equal-tailed"
    return table
