"""The package's errors and warnings: every error a user can cause is a :class:`BayesScalingError`.

Each also derives from the built-in exception it replaces (``ValueError``, ``OSError`` ...), so code that
catches those keeps working. Anything else that escapes the package is a bug.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "BayesScalingError",
    "ConvergenceError",
    "DataError",
    "DataWarning",
    "ExpressionError",
    "FitFileError",
    "GroupError",
    "LawError",
    "MisfitWarning",
    "MissingDependencyError",
    "OptionError",
    "OutputExistsError",
    "PriorError",
    "SamplerStartError",
    "SamplingWarning",
]


class BayesScalingError(Exception):
    """Base of every error a user can cause: bad runs, law, formula, prior, option, group or file."""


class DataError(BayesScalingError, ValueError):
    """Runs that cannot be fitted or scored: a missing column, a bad value, too few runs."""


class LawError(BayesScalingError, ValueError):
    """A law that cannot be found, or whose file or formula is malformed."""


class ExpressionError(BayesScalingError, ValueError):
    """A formula outside the safe expression language, or one that does not parse."""


class PriorError(BayesScalingError, ValueError):
    """A prior that names an unknown distribution or parameter, or gives a bad value."""


class OptionError(BayesScalingError, ValueError):
    """An argument out of its range or not among its choices (sampler, probability, holdout, weights ...)."""


class GroupError(BayesScalingError, ValueError):
    """A group label the fit does not know (without asking for a new group), or groups where there are none."""


class FitFileError(BayesScalingError, OSError):
    """A saved fit (or another input file) that is missing or cannot be read."""


class OutputExistsError(BayesScalingError, FileExistsError):
    """An output path exists and overwriting was not asked for: nothing a user wrote is replaced."""


class MissingDependencyError(BayesScalingError, ImportError):
    """An optional dependency the call needs is not installed."""


class SamplerStartError(BayesScalingError, RuntimeError):
    """The sampler could not start: the log density is not finite at the initial point (names the variables)."""


class ConvergenceError(BayesScalingError, RuntimeError):
    """With ``strict=True``: a fit whose chains did not converge (R-hat, ESS or divergences)."""


class DataWarning(UserWarning):
    """Runs that can be fitted but look wrong: repeated rows, implausible magnitudes."""


class SamplingWarning(UserWarning):
    """The sampler's output fails a convergence check (R-hat, ESS or divergences)."""


class MisfitWarning(UserWarning):
    """The law does not describe its own runs, or the runs look like other units than the law expects."""


def is_number(value: Any) -> bool:
    """Whether a user's ``value`` is a finite real number (an int or float, not a truth value)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.integer | np.floating):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int past the largest float
        return False


def check_seed(seed: Any) -> Any:
    """A user's random ``seed`` as given when numpy takes it: None (fresh entropy), a whole number >= 0 or
    a Generator; anything else is an :class:`OptionError` naming it."""
    whole = isinstance(seed, int | np.integer) and not isinstance(seed, bool | np.bool_) and 0 <= seed < 2**64
    if seed is None or whole or isinstance(seed, np.random.Generator):
        return seed
    raise OptionError(f"seed must be a whole number >= 0 (or None), got {seed!r}")


def generator(seed: Any) -> np.random.Generator:
    """numpy's random generator for a user's ``seed``, checked by :func:`check_seed`."""
    return np.random.default_rng(check_seed(seed))
