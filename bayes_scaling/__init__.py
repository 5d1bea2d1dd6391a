"""Bayesian scaling laws: fit neural scaling laws with NUTS and extrapolate with credible bands."""

from .calibration import Calibration, calibration
from .compare import Average, average, backtest, compare, split_future, stack
from .data import DataError, RunTable, load_runs
from .datasets import list_datasets, load_dataset
from .expr import ExpressionError
from .fit import fit
from .laws import Law, LawError, list_laws, load_law
from .priors import Prior, PriorError
from .references import Reference, list_references, load_reference
from .result import SamplingWarning, ScalingFit

__all__ = [
    "Average",
    "Calibration",
    "DataError",
    "ExpressionError",
    "Law",
    "LawError",
    "Prior",
    "Reference",
    "PriorError",
    "RunTable",
    "SamplingWarning",
    "ScalingFit",
    "average",
    "backtest",
    "calibration",
    "compare",
    "fit",
    "list_datasets",
    "list_laws",
    "list_references",
    "load_dataset",
    "load_law",
    "load_reference",
    "load_runs",
    "split_future",
    "stack",
]
