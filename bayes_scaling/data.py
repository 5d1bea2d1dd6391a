"""Validate a table of training runs into a :class:`RunTable`."""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import DataError, DataWarning
from .observation import TARGETS, outside_support

__all__ = ["DEFAULT_COLUMNS", "DataError", "DataWarning", "RunTable", "load_runs", "read_table"]

#: Default column for each law input, and for the loss.
DEFAULT_COLUMNS: dict[str, str] = {
    "N": "n_params",
    "D": "n_tokens",
    "C": "compute_flops",
    "U": "unique_tokens",
    "chance": "chance_acc",
    "S": "step",
    "S1": "lr_area",
    "S2": "anneal_area",
    "B": "batch_size_tokens",
    "loss": "loss",
    "items": "n_items",
}


@dataclass(frozen=True, eq=False)
class RunTable:
    """Checked runs: one float array per law input, the loss, and group labels.

    ``group`` holds an integer code per run into ``groups`` (the sorted group names), or is None. ``items``:
    the number of items each run's score is on (the binomial likelihood), or None.
    """

    inputs: Mapping[str, np.ndarray]
    loss: np.ndarray
    columns: Mapping[str, str]
    group: np.ndarray | None = None
    groups: tuple[str, ...] = ()
    group_column: str | None = None
    items: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.loss)

    def to_frame(self) -> pd.DataFrame:
        """The runs under their original column names."""
        frame = pd.DataFrame({self.columns[k]: v for k, v in self.inputs.items()})
        if self.group is not None:
            frame[self.group_column] = np.asarray(self.groups, dtype=object)[self.group]
        if self.items is not None:
            frame[self.columns["items"]] = self.items
        frame[self.columns["loss"]] = self.loss
        return frame


def read_table(runs: pd.DataFrame | Mapping[str, Any] | str | Path) -> pd.DataFrame:
    """A DataFrame as it is, a mapping of column names to values (or to one value each) as a table, or a
    file read: parquet (``.parquet``, ``.pq``) or CSV (anything else); an error names a missing or
    unreadable file, or columns of different lengths."""
    if isinstance(runs, Mapping):
        try:
            return pd.DataFrame({str(k): np.atleast_1d(np.asarray(v)) for k, v in runs.items()})
        except ValueError as err:
            raise DataError(f"runs given as a mapping of columns: {err}") from None
    if isinstance(runs, str | Path):
        path = Path(runs)
        if not path.is_file():
            raise DataError(
                f"{str(path)!r} is a folder, not a table" if path.is_dir() else f"no such file: {str(path)!r}"
            )
        parquet = path.suffix.lower() in (".parquet", ".pq")
        try:
            return pd.read_parquet(path) if parquet else pd.read_csv(path)
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError, OSError, ValueError) as err:
            raise DataError(f"cannot read {str(path)!r} as {'parquet' if parquet else 'CSV'}: {err}") from None
    if not isinstance(runs, pd.DataFrame):
        raise DataError(
            f"runs must be a pandas DataFrame, a mapping of columns or a CSV path, got {type(runs).__name__}"
        )
    twice = runs.columns[runs.columns.duplicated()]
    if len(twice):
        raise DataError(f"the table has more than one column named {twice[0]!r}")
    return runs


def load_runs(
    runs: pd.DataFrame | str | Path,
    *,
    inputs: Sequence[str],
    columns: Mapping[str, str] | None = None,
    group: str | None = None,
    min_runs: int = 1,
    target: str = "positive",
    covariates: Sequence[str] = (),
    items: bool = False,
) -> RunTable:
    """Check ``runs`` (a DataFrame or a CSV path) and keep the columns the law needs.

    Parameters
    ----------
    runs
        One row per training run.
    inputs
        The law's inputs (``N``, ``D``, ``C``, ...); each maps to a column by ``columns`` or by default
        (``n_params``, ``n_tokens``, ``compute_flops``, ``unique_tokens``, ``chance_acc``, ``step``,
        ``lr_area``, ``anneal_area``, ``batch_size_tokens``).
    columns
        Overrides of the default column names, e.g. ``{"N": "params", "loss": "val_loss"}``.
    group
        Optional column whose values label groups (dataset, architecture).
    min_runs
        The fewest runs accepted (the number of free parameters of the model).
    target
        The kind of the law's target (the ``loss`` column): ``positive``, ``real`` or ``bounded`` in (0, 1).
    covariates
        Inputs taken as data (the law's covariates): any finite value; the other inputs must be positive.
    items
        Also read the number of items each run's score is on (key ``items``, default column ``n_items``):
        whole numbers from 1 to 2^53.
    """
    runs = read_table(runs)
    if group is not None and not isinstance(group, Hashable):
        raise DataError(f"group must be the name of one column, got {group!r}")
    columns = dict(columns or {})
    keys = [*inputs, "loss", *(["items"] if items else [])]
    unknown = set(columns) - set(keys)
    if unknown:
        hint = " ('items' goes with likelihood='binomial')" if "items" in unknown else ""
        raise DataError(
            f"columns given for {sorted(unknown)}, which are not inputs of the law {list(inputs)} or 'loss'{hint}"
        )
    mapping = {k: columns.get(k, DEFAULT_COLUMNS.get(k, k)) for k in keys}
    mapping_with_group = {**mapping, **({"group": group} if group is not None else {})}
    seen: dict[str, str] = {}
    for key, col in mapping_with_group.items():
        if col in seen:
            raise DataError(f"column {col!r} is mapped twice: to {seen[col]!r} and to {key!r}")
        seen[col] = key
    missing = [f"{col!r} (for {key})" for key, col in mapping_with_group.items() if col not in runs.columns]
    no_default = [k for k in inputs if k not in DEFAULT_COLUMNS and k not in columns]
    if no_default:
        raise DataError(
            f"law input(s) {no_default} have no default column; map them, e.g. "
            f"columns={{{no_default[0]!r}: 'compute_flops'}} (CLI: --column {no_default[0]}=compute_flops)"
        )
    if missing:
        raise DataError(
            f"missing column(s) {', '.join(missing)}; the table has {', '.join(map(repr, runs.columns))}. "
            "Map other names with columns={...} (CLI: --column N=my_col)"
        )
    arrays: dict[str, np.ndarray] = {}
    for key, col in mapping.items():
        if held := not_numbers(runs[col]):
            raise DataError(f"column {col!r} must hold numbers, not {held}")
        values = pd.to_numeric(runs[col], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(runs[col].notna().to_numpy() & np.isnan(values))
        if bad.size:
            raise DataError(f"column {col!r} has non-numeric value {runs[col].iloc[bad[0]]!r} in row {bad[0]}")
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise DataError(f"column {col!r} has {bad.size} missing or infinite value(s), first in row {bad[0]}")
        if key == "items":
            bad, need = not_items(values), "whole numbers from 1 to 2^53"
        else:
            kind = target if key == "loss" else "real" if key in covariates else "positive"
            bad, need = outside_support(kind, values), TARGETS[kind][1]
        if bad.size:
            raise DataError(f"column {col!r} must be {need}; row {bad[0]} has {values[bad[0]]:g}")
        arrays[key] = values
    if len(runs) < min_runs:
        raise DataError(f"{len(runs)} run(s) is fewer than the {min_runs} free parameters of the model")
    codes, groups = None, ()
    if group is not None:
        labels = runs[group]
        if labels.isna().any():
            raise DataError(
                f"group column {group!r} has missing values, first in row {int(np.flatnonzero(labels.isna())[0])}"
            )
        odd = [i for i, v in enumerate(labels) if not isinstance(v, Hashable)]
        if odd:
            raise DataError(
                f"group column {group!r} must hold labels (text or numbers); row {odd[0]} has {labels.iloc[odd[0]]!r}"
            )
        texts = labels.astype(str)
        per_text = labels.groupby(texts).nunique()  # distinct values behind each text
        clash = per_text.index[per_text > 1]
        if len(clash):
            shown = sorted({repr(v) for v in labels[texts.isin(clash)].unique()})
            raise DataError(
                f"group column {group!r} has different values that read the same: {', '.join(shown)}; "
                "make the labels one type (all text or all numbers)"
            )
        cat = pd.Categorical(texts)
        codes, groups = np.asarray(cat.codes, dtype=np.int64), tuple(cat.categories)
    return RunTable(
        inputs={k: arrays[k] for k in inputs},
        loss=arrays["loss"],
        columns=mapping,
        group=codes,
        groups=groups,
        group_column=group,
        items=arrays.get("items"),
    )


def not_numbers(values: Any) -> str | None:
    """The kind of values ``values`` hold when a run's number cannot be read from them (truth values,
    dates, durations, complex numbers), else None."""
    return {"b": "truth values", "M": "dates", "m": "durations", "c": "complex numbers"}.get(
        np.asarray(values).dtype.kind
    )


def not_items(values: np.ndarray) -> np.ndarray:
    """Indices of ``values`` that cannot be a number of items scored (whole numbers from 1 to 2^53, those a
    float holds exactly)."""
    return np.flatnonzero((values < 1) | (values > 2**53) | (values != np.round(values)))


def warn_if_repeated(runs: RunTable) -> None:
    """Warn (DataWarning) when training runs repeat a row exactly: each copy would count as one more
    observation. Points to predict at may repeat freely; only fits call this."""
    key = pd.DataFrame({**runs.inputs, "loss": runs.loss, **({"group": runs.group} if runs.group is not None else {})})
    twice = np.flatnonzero(key.duplicated().to_numpy())
    if twice.size:
        warnings.warn(
            f"{twice.size} run(s) repeat an earlier row exactly (inputs, loss and group), first row {twice[0]}: "
            "each copy counts as another observation; drop duplicates if they are one run",
            DataWarning,
            stacklevel=3,
        )
