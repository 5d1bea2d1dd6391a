"""Credible intervals: one place for the default probabilities and the interval kind."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

#: Default probability of a single credible interval, and the default set for bands.
PROB = 0.9
PROBS = (0.5, 0.9)
#: Every interval this package reports is equal-tailed (quantiles (1-p)/2 and (1+p)/2).
KIND = "eti"


def check_probs(prob: float | Iterable[float]) -> tuple[float, ...]:
    """``prob`` as a tuple of probabilities strictly between 0 and 1."""
    probs = (prob,) if np.isscalar(prob) else tuple(prob)  # type: ignore[arg-type]
    if not probs or not all(isinstance(p, int | float) and 0 < p < 1 for p in probs):
        raise ValueError(f"interval probabilities must lie strictly between 0 and 1, got {prob!r}")
    return tuple(float(p) for p in probs)


def label(prob: float) -> str:
    """Column prefix of an interval, e.g. ``eti90`` or ``eti97.5``."""
    return f"{KIND}{100 * prob:g}"


def bounds(samples: np.ndarray, probs: Iterable[float], axis: int = 0) -> dict[str, np.ndarray]:
    """Median and equal-tailed bounds along ``axis``: ``{"median", "eti90_lower", "eti90_upper", ...}``."""
    out = {"median": np.median(samples, axis=axis)}
    for p in probs:
        lo, hi = np.quantile(samples, [(1 - p) / 2, (1 + p) / 2], axis=axis)
        out[f"{label(p)}_lower"], out[f"{label(p)}_upper"] = lo, hi
    return out


def inside(observed: np.ndarray, table: Mapping[str, np.ndarray], probs: Iterable[float]) -> dict[str, np.ndarray]:
    """Whether each observed value lies in each interval of ``table`` (as made by :func:`bounds`):
    ``{"inside_eti90": ...}``; False where the observation is missing (NaN)."""
    return {f"inside_{label(p)}": (observed >= table[f"{label(p)}_lower"]) & (observed <= table[f"{label(p)}_upper"])
            for p in probs}


def table(points: pd.DataFrame, draws: np.ndarray, probs: Iterable[float], observed: np.ndarray | None = None
          ) -> pd.DataFrame:
    """The summary of draws (S, points) at ``points``: median and bounds of each interval and, with
    ``observed`` values, those values and whether each lies inside each interval."""
    probs = tuple(probs)
    out = points.assign(**bounds(draws, probs))
    if observed is not None:
        out["observed"] = observed
        out = out.assign(**inside(observed, out, probs))
    out.attrs["interval"] = "equal-tailed"
    return out
