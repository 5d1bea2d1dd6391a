"""Bayesian scaling laws: fit neural scaling laws with NUTS and extrapolate with credible bands.

Public names are imported on first use (PEP 562), so ``import bayes_scaling`` and the command line's
``--help`` do not load PyMC, pandas or xarray.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from .errors import (
    BayesScalingError,
    ConvergenceError,
    DataError,
    DataWarning,
    ExpressionError,
    FitFileError,
    GroupError,
    LawError,
    MisfitWarning,
    MissingDependencyError,
    OptionError,
    OutputExistsError,
    PriorError,
    SamplerStartError,
    SamplingWarning,
)

try:
    __version__ = version("bayes-scaling")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

#: Each public name's module, imported when the name is first used.
_LAZY = {
    "Calibration": "calibrate",
    "calibration": "calibrate",
    "Average": "comparison",
    "average": "comparison",
    "backtest": "comparison",
    "compare": "comparison",
    "split_future": "comparison",
    "stack": "comparison",
    "schedule_areas": "curves",
    "RunTable": "data",
    "load_runs": "data",
    "read_table": "data",
    "list_datasets": "datasets",
    "load_dataset": "datasets",
    "CompileCache": "fitting",
    "compile_cache": "fitting",
    "fit": "fitting",
    "Law": "laws",
    "list_laws": "laws",
    "load_law": "laws",
    "Prior": "priors",
    "Reference": "references",
    "list_references": "references",
    "load_reference": "references",
    "ScalingFit": "result",
    "TwoStage": "stages",
}

if TYPE_CHECKING:  # what type checkers and editors see: the same names, imported eagerly
    from .calibrate import Calibration, calibration
    from .comparison import Average, average, backtest, compare, split_future, stack
    from .curves import schedule_areas
    from .data import RunTable, load_runs, read_table
    from .datasets import list_datasets, load_dataset
    from .fitting import CompileCache, compile_cache, fit
    from .laws import Law, list_laws, load_law
    from .priors import Prior
    from .references import Reference, list_references, load_reference
    from .result import ScalingFit
    from .stages import TwoStage


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'bayes_scaling' has no attribute {name!r}")
    value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value  # found directly from now on
    return value


__all__ = [
    "Average",
    "BayesScalingError",
    "Calibration",
    "CompileCache",
    "ConvergenceError",
    "DataError",
    "DataWarning",
    "ExpressionError",
    "FitFileError",
    "GroupError",
    "Law",
    "LawError",
    "MisfitWarning",
    "MissingDependencyError",
    "OptionError",
    "OutputExistsError",
    "Prior",
    "PriorError",
    "Reference",
    "RunTable",
    "SamplerStartError",
    "SamplingWarning",
    "ScalingFit",
    "TwoStage",
    "__version__",
    "average",
    "backtest",
    "calibration",
    "compare",
    "compile_cache",
    "fit",
    "list_datasets",
    "list_laws",
    "list_references",
    "load_dataset",
    "load_law",
    "load_reference",
    "load_runs",
    "read_table",
    "schedule_areas",
    "split_future",
    "stack",
]


def __dir__() -> list[str]:
    return __all__
