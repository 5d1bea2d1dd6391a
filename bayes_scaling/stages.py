"""Two-step laws: scale -> an intermediate quantity (a task's loss) -> the target (its accuracy).

A task's accuracy is a noisy, bounded, often flat-then-steep function of scale; its loss (bits per byte of
the correct answer) falls smoothly. Bhagia et al. (2024, arXiv:2412.04403) predict accuracy in two steps:
a power law takes (N, D) to the task loss, a sigmoid takes the task loss to accuracy. :class:`TwoStage`
composes two fits that way. Each step is fitted on its own (the second on the runs' observed task loss),
and a prediction pushes the first step's predictive draws of a new run's task loss through the second
step, draw by draw: the first step's uncertainty, its extrapolation discrepancy included, reaches the
accuracy. The second step's own discrepancy grows with the run's distance from the fitted runs in scale
(the first step's inputs), not only in task loss: both steps were fitted on the same small runs, and a
larger model's accuracy at a given task loss is an extrapolation too (on the OLMo ladder, the 7B and 13B
targets' task losses lie within the ladder's, their accuracies above what the ladder's sigmoid gives).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from . import intervals
from .errors import OptionError, generator
from .result import ScalingFit

__all__ = ["TwoStage"]


class TwoStage:
    """``first`` predicts the input ``via`` of ``second`` (its law's input, e.g. ``L``); together they
    predict ``second``'s target from ``first``'s inputs. Runs to predict need ``first``'s inputs, the
    columns of ``second``'s covariates (a task's chance accuracy) and, for grouped fits, the group column;
    to be scored they need ``second``'s target column. The interface is :class:`ScalingFit`'s for a table
    of runs: :meth:`predict`, :meth:`predict_draws`, :meth:`log_predictive_density`, so
    :func:`~bayes_scaling.calibration` scores it."""

    def __init__(self, first: ScalingFit, second: ScalingFit, *, via: str) -> None:
        if via not in second.law.scaled_inputs:
            raise OptionError(
                f"via={via!r} must be an input of the second law {second.law.name!r} "
                f"(its inputs: {list(second.law.scaled_inputs)})"
            )
        self.first, self.second, self.via = first, second, via

    def __repr__(self) -> str:
        return f"<TwoStage {self.first.law.name} -> {self.via} -> {self.second.law.name}>"

    def checked_loss(self, runs: pd.DataFrame) -> np.ndarray:
        """The observed target (``second``'s column) of every run in ``runs``."""
        return self.second.checked_loss(runs)

    def _predictive(
        self, runs: pd.DataFrame, new_group: bool, rng: np.random.Generator
    ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
        """Draws of the target's expected value on the link scale and of its noise at the runs, and the
        points' coordinates (the first step's inputs, group and distance)."""
        values, labels, codes = self.first._prediction_inputs(runs, {}, None, new_group)
        middle = self.first.loss_draws(values, codes, kind="observation", seed=rng)
        column = self.second.runs.columns[self.via]
        at, _, second_codes = self.second._prediction_inputs(runs.assign(**{column: 1.0}), {}, None, new_group)
        size = self.second.posterior.sizes["chain"] * self.second.posterior.sizes["draw"]
        pick = np.arange(size) if middle.shape[0] == size else rng.choice(middle.shape[0], size)
        at[self.via] = middle[pick]
        scale = self.first.distance(values, codes)
        mu, noise = self.second._predictive(at, second_codes, rng, beyond=scale)
        coords: dict[str, Any] = {k: ("point", v) for k, v in values.items()}
        if codes is not None:
            coords.update(group=("point", labels), new_group=("point", codes < 0))
        coords["distance"] = ("point", scale)
        return mu, noise, coords

    def predict_draws(
        self, runs: pd.DataFrame, *, kind: str = "mean", new_group: bool = False, seed: int | None = None
    ) -> xr.DataArray:
        """Posterior draws of the target at ``runs``: dims (chain, draw, point), with each point's inputs,
        group and distance (of the first step) as coordinates. ``kind="mean"``: a run's expected target
        given its task loss; ``"observation"``: its observed target (adds the second step's noise)."""
        if kind not in ("mean", "observation"):
            raise OptionError(f"kind must be 'mean' or 'observation', got {kind!r}")
        rng = generator(seed)
        mu, noise, coords = self._predictive(runs, new_group, rng)
        observation = self.second.observation
        values = observation.inverse(observation.sample(mu, noise, rng) if kind == "observation" else mu)
        return self.second._as_draws(values, ("point",), coords, self.second.runs.columns["loss"], kind=kind)

    def predict(
        self,
        runs: pd.DataFrame,
        *,
        prob: float | tuple[float, ...] = intervals.PROBS,
        kind: str = "mean",
        new_group: bool = False,
        seed: int | None = None,
    ) -> pd.DataFrame:
        """The target's median and equal-tailed intervals at ``runs`` (as :meth:`ScalingFit.predict`)."""
        draws = self.predict_draws(runs, kind=kind, new_group=new_group, seed=seed)
        table = intervals.summarize(draws, intervals.check_probs(prob), self.second.observed_loss(runs))
        table.attrs["kind"] = kind
        return table

    def log_predictive_density(
        self, runs: pd.DataFrame, *, new_group: bool = False, seed: int | None = None
    ) -> np.ndarray:
        """Log predictive density of each run's observed target on the second step's link scale."""
        observed = self.checked_loss(runs)
        mu, noise, _ = self._predictive(runs, new_group, generator(seed))
        observation = self.second.observation
        return observation.predictive_logpdf(observation.link(observed), mu, noise)
