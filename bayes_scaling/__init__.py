"""Bayesian scaling laws: fit neural scaling laws with NUTS and extrapolate with credible bands."""

from importlib.metadata import PackageNotFoundError, version

from .calibration import Calibration, calibration
from .compare import Average, average, backtest, compare, split_future, stack
from .data import DataWarning, RunTable, load_runs, read_table
from .datasets import list_datasets, load_dataset
from .errors import (
    BayesScalingError,
    ConvergenceError,
    DataError,
    ExpressionError,
    FitFileError,
    GroupError,
    LawError,
    MissingDependencyError,
    OptionError,
    OutputExistsError,
    PriorError,
    SamplerStartError,
)
from .fit import CompileCache, compile_cache, fit
from .laws import Law, list_laws, load_law
from .priors import Prior
from .references import Reference, list_references, load_reference
from .result import MisfitWarning, SamplingWarning, ScalingFit

try:
    __version__ = version("bayes-scaling")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

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
    "split_future",
    "stack",
]
