"""Learning curves: the inputs a schedule-aware law needs at each checkpoint of a run.

A checkpoint taken mid-run sits above the loss of a run trained to that length: its learning rate has not
been annealed yet. The law ``lr_annealing`` (Tissue et al. 2024) takes that into account through two areas
under the run's learning-rate schedule, which :func:`schedule_areas` adds to a table of checkpoints:

``lr_area`` (S1)
    The forward area: tokens seen, each weighted by the learning rate relative to its peak. Tokens at a
    constant learning rate count fully; under a cosine schedule the late tokens count less.
``anneal_area`` (S2)
    How much of the learning rate's decay has taken effect, as a fraction of the peak: each drop of the
    rate counts in full once it is long past and grows in at rate ``1 - memory`` per step after it (the
    momentum form of Tissue et al.). 0 at a constant rate; the final fraction (0.9 for a cosine to 10%)
    once the run has long finished its decay.

With those two columns, ``bs.fit(checkpoints, law="lr_annealing", group="run", pooling=...)`` with
``"partial"`` for ``b`` and ``"shared"`` for the other parameters fits all the curves at once, with a random
effect per run on the data term (checkpoints of one run share it); the final loss of an unfinished run is
a prediction at its last step (``benchmarks/learning_curves.py``).

The batch size trades steps for data: the law ``batch_steps``, S = S_min (1 + B_crit / B), fitted to the
steps each batch size took to reach a target loss, grouped by model size, gives each size's critical batch;
:func:`critical_batch_draws` draws its trend across sizes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.signal import lfilter

from .data import read_table
from .errors import DataError, OptionError, is_number

if TYPE_CHECKING:
    from collections.abc import Mapping

    import xarray as xr

    from .result import ScalingFit

__all__ = ["SCHEDULES", "critical_batch_draws", "lr_schedule", "schedule_areas"]

#: The longest run a schedule is computed for, step by step (8 bytes a step, a few arrays of them).
MAX_STEPS = 10**8
#: Shapes of the decay after warm-up: the rate as a function of the fraction of the decay done.
SCHEDULES = {
    "cosine": lambda t: 0.5 * (1 + np.cos(np.pi * t)),
    "linear": lambda t: 1 - t,
    "constant": lambda t: np.ones_like(t),
}


def lr_schedule(total_steps: int, *, warmup: int = 0, final_lr: float = 0.0, shape: str = "cosine") -> np.ndarray:
    """The learning rate at steps 1..``total_steps`` relative to its peak: a linear warm-up over ``warmup``
    steps, then ``shape`` from 1 down to ``final_lr`` at the last step."""
    if not isinstance(shape, str) or shape not in SCHEDULES:
        raise OptionError(f"unknown schedule shape {shape!r}; use one of {', '.join(SCHEDULES)}")
    if not (is_number(final_lr) and 0 <= final_lr <= 1):
        raise OptionError(f"final_lr is a fraction of the peak rate, between 0 and 1; got {final_lr!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int | np.integer) or not 0 <= warmup <= MAX_STEPS:
        raise OptionError(f"warmup must be a whole number of steps >= 0, got {warmup!r}")
    step = np.arange(1, total_steps + 1, dtype=float)
    done = np.clip((step - warmup) / max(total_steps - warmup, 1), 0.0, 1.0)
    decay = final_lr + (1 - final_lr) * SCHEDULES[shape](done)
    return np.where(step <= warmup, step / max(warmup, 1), decay)


def schedule_areas(
    checkpoints: pd.DataFrame,
    *,
    step: str = "step",
    total_steps: str = "total_steps",
    tokens_per_step: float | str = 1.0,
    warmup: int = 0,
    final_lr: float = 0.0,
    shape: str = "cosine",
    memory: float = 0.999,
    drop_warmup: bool = True,
) -> pd.DataFrame:
    """A copy of ``checkpoints`` (one row per evaluation of a run) with the columns ``lr_area`` and
    ``anneal_area`` the law ``lr_annealing`` reads.

    ``step`` and ``total_steps`` name the columns of a checkpoint's step and its run's length;
    ``tokens_per_step`` is a number or a column (batch size in tokens). Every run follows one schedule:
    ``warmup`` steps of linear warm-up, then ``shape`` (``cosine``, ``linear``, ``constant``) down to
    ``final_lr`` times the peak. ``memory`` is the per-step persistence of an annealing step's effect
    (Tissue et al. found 0.999 across their runs). ``drop_warmup`` leaves out checkpoints taken during
    the warm-up, whose loss no law of the trained model describes.
    """
    checkpoints = read_table(checkpoints)
    needed = [step, total_steps] + ([tokens_per_step] if isinstance(tokens_per_step, str) else [])
    missing = [c for c in needed if c not in checkpoints.columns]
    if missing:
        raise DataError(f"missing column(s) {missing}; the table has {list(checkpoints.columns)}")
    if not (is_number(memory) and 0 <= memory < 1):
        raise OptionError(f"memory must be in [0, 1), got {memory!r}")
    if isinstance(tokens_per_step, str):
        tokens = pd.to_numeric(checkpoints[tokens_per_step], errors="coerce").to_numpy(float)
        bad = np.flatnonzero(~(np.isfinite(tokens) & (tokens > 0)))
        if bad.size:
            shown = checkpoints[tokens_per_step].tolist()[bad[0]]
            raise DataError(f"column {tokens_per_step!r} must hold positive numbers; row {bad[0]} has {shown!r}")
    elif is_number(tokens_per_step) and tokens_per_step > 0:
        tokens = tokens_per_step
    else:
        raise OptionError(f"tokens_per_step must be a positive number or a column's name, got {tokens_per_step!r}")
    steps = _whole_steps(checkpoints, step)
    totals = _whole_steps(checkpoints, total_steps)
    beyond = np.flatnonzero(steps > totals)
    if beyond.size:
        raise DataError(f"row {beyond[0]}: {step!r} {steps[beyond[0]]} is past its run's {total_steps!r}")
    lr_area, anneal = np.empty(len(steps)), np.empty(len(steps))
    for total in np.unique(totals):
        rate = lr_schedule(int(total), warmup=warmup, final_lr=final_lr, shape=shape)
        drops = np.maximum(-np.diff(rate, prepend=rate[0]), 0.0)
        felt = np.cumsum(drops) - lfilter([memory], [1.0, -memory], drops)  # each drop, as far as it took effect
        rows = totals == total
        lr_area[rows] = np.cumsum(rate)[steps[rows] - 1]
        anneal[rows] = felt[steps[rows] - 1]
    out = checkpoints.assign(lr_area=lr_area * tokens, anneal_area=anneal)
    return out[steps > warmup] if drop_warmup else out


def _whole_steps(frame: pd.DataFrame, column: str) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(values) | (values < 1) | (values > MAX_STEPS) | (values != np.round(values)))
    if bad.size:
        shown = frame[column].tolist()[bad[0]]
        raise DataError(
            f"column {column!r} must hold whole steps from 1 to {MAX_STEPS:.0e}; row {bad[0]} has {shown!r}"
        )
    return values.astype(np.int64)


def critical_batch_draws(fit: ScalingFit, N: ArrayLike, *, loss: Mapping[float, float] | None = None) -> xr.Dataset:
    """Posterior draws of the critical batch size from a fit of ``batch_steps`` grouped by model size (the
    group labels are the sizes): ``B_crit`` per size (dims chain, draw, group), the exponent ``gamma`` of
    its trend B_crit ~ N^gamma (chain, draw; a line per draw through the sizes' values, each weighted by
    how well its runs pin it) and ``B_crit_at`` the trend at the sizes ``N`` (chain, draw, size).

    ``loss``: each size's target loss (the loss its steps were counted to, ``{size: loss}``) adds Kaplan
    et al. (2020)'s form B_crit(L) = B_star / L^(1 / alpha_B) (their eq. 5.4, after McCandlish et al.
    2018), the same kind of line against the loss: ``alpha_B`` and ``B_star`` (chain, draw).
    Summarise with :func:`bayes_scaling.intervals.summarize`."""
    import xarray as xr

    from .optimal import checked_positive, group_trend, log_line

    N = checked_positive(N, "model sizes N")
    per_size, intercept, slope, center = group_trend(fit, "B_crit_group", law="batch_steps", labels="model sizes")
    at = np.exp(intercept[..., None] + slope[..., None] * (np.log(N) - center))
    out = xr.Dataset(
        {"B_crit": per_size, "gamma": (("chain", "draw"), slope), "B_crit_at": (("chain", "draw", "size"), at)},
        coords={"N": ("size", N)},
        attrs={"method": "batch_steps per model size; a line through log B_crit against log N, per draw"},
    )
    if loss is not None:
        by_size = {float(size): value for size, value in loss.items()}
        missing = [g for g in fit.runs.groups if float(g) not in by_size]
        if missing:
            raise OptionError(f"loss= needs the target loss of every model size; missing {missing}")
        L = checked_positive([by_size[float(g)] for g in fit.runs.groups], "target losses")
        b_intercept, b_slope, b_center = log_line(per_size.values, L)
        out["alpha_B"] = (("chain", "draw"), -1 / b_slope)
        out["B_star"] = (("chain", "draw"), np.exp(b_intercept - b_slope * b_center))
    return out
