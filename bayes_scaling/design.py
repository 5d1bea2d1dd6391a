"""Which runs to train next: from candidate runs, a batch that most shrinks a target's posterior per unit cost.

The target is a quantity the fit predicts: the expected loss at given inputs, or the compute-optimal
``N_opt``, ``D_opt`` or loss at a budget. Its posterior variance (on the log scale) after the new runs are
fitted is forecast from the posterior draws alone, under the fit's own model, with no refit per candidate:

- **the law's curve.** Its draws at the candidates and at the target are taken as jointly Gaussian (a local
  Gaussian approximation of the posterior). A run at candidate ``k`` observes the curve there with the
  observation model's noise (as the Normal that carries the same information,
  :meth:`ObservationModel.information_variance`), so the target's variance after observing it follows from
  the linear (Kalman) update of the draws' covariance; choosing runs one at a time updates it by rank one.
- **the extrapolation discrepancy** (:mod:`bayes_scaling.observation`). Its variance at the target is
  ``E[(kappa sigma z)^2]`` times the squared distance from the nearest fitted run (of the target's group); a
  run nearer the target shortens that distance. This is what makes larger runs worth their cost.

Runs are chosen greedily: at each step the candidate whose expected reduction of the target's variance per
unit cost is largest, among those that fit in what is left of the budget.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import intervals
from .errors import DataError, OptionError
from .expr import Expression
from .observation import gaps

if TYPE_CHECKING:
    from .result import ScalingFit

__all__ = ["OPTIMAL_TARGETS", "greedy", "suggest_runs"]

#: A run is worth suggesting when it is expected to remove at least this share of the target's variance now.
MIN_GAIN = 1e-3
#: Compute-optimal targets, and the key of :func:`bayes_scaling.optimal.optimum` each one reads.
OPTIMAL_TARGETS = {"N_opt": "N", "D_opt": "D", "loss_opt": "loss"}


def greedy(
    curve: np.ndarray,
    noise_var: np.ndarray,
    cost: np.ndarray,
    unit: np.ndarray,
    dist: np.ndarray,
    reach: np.ndarray,
    *,
    budget: float,
    batch: int | None = None,
    per_cost: bool = True,
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Choose candidates one at a time, each the largest expected reduction of the targets' summed
    variance per unit cost (or, with ``per_cost=False``, the largest reduction) that fits in the budget left
    and removes at least :data:`MIN_GAIN` of the variance before the first.

    ``curve``: draws (S, K + T) of the curve at K candidates then T targets; ``noise_var`` (K,): the
    noise variance of a run at each candidate; ``cost`` (K,). The discrepancy: ``unit`` (S or 1, T) its
    draws per decade of distance (zeros without one), ``dist`` (S or 1, T) the targets' distance from the
    fitted runs now and ``reach`` (S or 1, T, K) their distance from each candidate (inf where a candidate
    cannot shorten it).

    Returns, per chosen candidate, its index, the curve's variance at each target after it and the
    targets' distances after it.
    """
    K = cost.size
    cov = np.atleast_2d(np.cov(curve, rowvar=False))
    unit2 = np.square(unit)
    least = MIN_GAIN * (np.trace(cov[K:, K:]) + (unit2 * np.square(dist)).mean(0).sum())
    open_ = np.ones(K, dtype=bool)
    spent, out = 0.0, list[tuple[int, np.ndarray, np.ndarray]]()
    while batch is None or len(out) < batch:
        nearer = np.minimum(dist[..., None], reach)  # (S or 1, T, K)
        shorter = (unit2[..., None] * (np.square(dist)[..., None] - np.square(nearer))).sum(axis=1).mean(0)
        gain = np.square(cov[K:, :K]).sum(axis=0) / (np.diagonal(cov)[:K] + noise_var) + shorter
        ok = open_ & (spent + cost <= budget) & (gain > least)
        if not ok.any():
            break
        k = int(np.argmax(np.where(ok, gain / cost if per_cost else gain, -np.inf)))
        cov = cov - np.outer(cov[:, k], cov[k, :]) / (cov[k, k] + noise_var[k])
        dist = nearer[..., k]
        open_[k] = False
        spent += float(cost[k])
        out.append((k, np.diagonal(cov)[K:].copy(), dist))
    return out


def candidate_table(candidates: pd.DataFrame | Mapping[str, Any]) -> pd.DataFrame:
    """Candidates as a table: a DataFrame as given, or a grid (a mapping of column to values) as every
    combination of its values."""
    if isinstance(candidates, pd.DataFrame):
        table = candidates
    elif isinstance(candidates, Mapping):
        columns = {k: np.atleast_1d(np.asarray(v)) for k, v in candidates.items()}
        table = pd.DataFrame(list(itertools.product(*columns.values())), columns=list(columns))
    else:
        raise OptionError(
            f"candidates must be a DataFrame of runs or a grid (a mapping of column to values), "
            f"got {type(candidates).__name__}"
        )
    if table.empty:
        raise OptionError("no candidate runs to choose from")
    return table


def _costs(fit: ScalingFit, cost: str | None, values: Mapping[str, np.ndarray]) -> np.ndarray:
    """Each candidate's cost from the ``cost`` formula in the law's inputs (default: its FLOPs formula)."""
    if cost is None:
        out = fit.law.compute_flops(**values)
    else:
        out = Expression.parse(cost, fit.law.inputs, what="cost").evaluate(dict(values))
    out = np.broadcast_to(np.asarray(out, dtype=float), next(iter(values.values())).shape)
    bad = np.flatnonzero(~(np.isfinite(out) & (out > 0)))
    if bad.size:
        raise DataError(
            f"cost {cost or fit.law.compute} must be positive and finite; candidate {bad[0]} has {out[bad[0]]:g}"
        )
    return out


@dataclass(frozen=True)
class _Target:
    """A target's draws on the log scale, split into the law's curve (S, T) and the discrepancy per decade
    of distance ``unit`` (S or 1, T; zero where there is none); where it lies (inputs of shape (S or 1, T))
    and in which group."""

    curve: np.ndarray
    unit: np.ndarray
    where: dict[str, np.ndarray]
    codes: np.ndarray | None
    name: str


def _per_decade(fit: ScalingFit, codes: np.ndarray | None, size: int, rng: np.random.Generator) -> np.ndarray:
    """The discrepancy's draws per decade of distance at ``size`` points (of the groups ``codes``):
    (S, size), or zeros (1, size) for a fit without one."""
    if not fit.observation.discrepancy:
        return np.zeros((1, size))
    sigma = fit.observation.noise(fit.posterior, codes, rng)["sigma"]
    return np.broadcast_to(fit._delta(np.ones(size), sigma, fit._tilt(codes, rng)), (sigma.shape[0], size))


def _loss_target(fit: ScalingFit, target: Any, group: Any, new_group: bool, rng: np.random.Generator) -> _Target:
    table, inputs = (target, {}) if isinstance(target, pd.DataFrame) else (None, dict(target))
    values, _, codes = fit._prediction_inputs(table, inputs, group, new_group)
    curve = fit.curve(values, codes, rng)
    unit = _per_decade(fit, codes, curve.shape[1], rng)
    return _Target(curve, unit, {k: v[None, :] for k, v in values.items()}, codes, "loss")


def _optimal_target(
    fit: ScalingFit, name: str, C: Any, group: Any, new_group: bool, rng: np.random.Generator
) -> _Target:
    from .optimal import checked_positive, optimum

    if C is None:
        raise OptionError(f"target {name!r} needs C=, the compute budget(s) in FLOPs")
    budgets = checked_positive(C)
    labels, groups = fit._group_draws(group, new_group, rng)
    codes = None if labels is None else fit._group_codes(labels, new_group)
    curves, units, where = [], [], []
    for i, (sampled, _) in enumerate(groups):
        opt = optimum(fit.law, sampled, budgets[None, :])
        curves.append(np.log(opt[OPTIMAL_TARGETS[name]]))
        where.append(opt["inputs"])
        mine = None if codes is None else codes[i : i + 1]
        units.append(_per_decade(fit, mine, budgets.size, rng) if name == "loss_opt" else np.zeros((1, budgets.size)))
    every = {k: np.concatenate([w[k] for w in where], axis=1) for k in fit.law.inputs}
    return _Target(
        np.concatenate(curves, axis=1),
        np.concatenate(units, axis=1),
        every,
        None if codes is None else np.repeat(codes, budgets.size),
        name,
    )


def suggest_runs(
    fit: ScalingFit,
    candidates: pd.DataFrame | Mapping[str, Any],
    *,
    target: pd.DataFrame | Mapping[str, Any] | str,
    C: Any = None,
    budget: float,
    batch: int | None = None,
    cost: str | None = None,
    group: Any = None,
    new_group: bool = False,
    prob: float = intervals.PROB,
    seed: int | None = None,
) -> pd.DataFrame:
    """The runs to train next: see :meth:`ScalingFit.suggest_runs`."""
    if batch is not None and (not isinstance(batch, int) or isinstance(batch, bool) or batch < 1):
        raise OptionError(f"batch must be a positive integer, got {batch!r}")
    if isinstance(budget, bool) or not (isinstance(budget, int | float) and 0 < budget < np.inf):
        raise OptionError(f"budget must be a positive number (the most the new runs may cost together), got {budget!r}")
    (prob,) = intervals.check_probs(prob)
    rng = np.random.default_rng(seed)
    if isinstance(target, str):
        if target not in OPTIMAL_TARGETS:
            raise OptionError(
                f"unknown target {target!r}: use one of {', '.join(OPTIMAL_TARGETS)} (with C=), or give the "
                "inputs of the runs whose loss to pin down (a table, or a mapping such as {'N': 7e9, 'D': 1.4e11})"
            )
        aim = _optimal_target(fit, target, C, group, new_group, rng)
    elif isinstance(target, pd.DataFrame | Mapping):
        if C is not None:
            raise OptionError("C= goes with a compute-optimal target (N_opt, D_opt, loss_opt), not with points")
        aim = _loss_target(fit, target, group, new_group, rng)
    else:
        raise OptionError(f"target must be a table or mapping of inputs, or one of {', '.join(OPTIMAL_TARGETS)}")

    table = candidate_table(candidates)
    values, _, codes = fit._prediction_inputs(table, {}, None, False)
    costs = _costs(fit, cost, values)
    noise = fit.observation.noise(fit.posterior, codes, rng)
    noise_var = np.broadcast_to(fit.observation.information_variance(noise).mean(axis=0), len(table))
    curve = np.concatenate([fit.curve(values, codes, rng), aim.curve], axis=1)
    dist = fit.distance(aim.where, aim.codes)
    reach = gaps(aim.where, {k: values[k] for k in fit.law.scaled_inputs})
    if aim.codes is not None and codes is not None:  # a run shortens the distance of its own group's targets
        reach = np.where((aim.codes[:, None] >= 0) & (aim.codes[:, None] != codes[None, :]), np.inf, reach)
    before = aim.curve.var(axis=0)

    def variance(var: np.ndarray, dist: np.ndarray) -> float:
        """The targets' summed variance: the curve's, and the discrepancy's at distance ``dist``."""
        return float(var.sum() + np.square(aim.unit * dist).mean(0).sum())

    # Greedy by gain per unit cost can spend the budget on many cheap runs that each tell little; greedy by
    # gain alone can miss many cheap good ones. The better of the two is within a constant factor of the
    # best batch (Krause and Guestrin 2005; Leskovec et al. 2007).
    plans = [
        greedy(curve, noise_var, costs, aim.unit, dist, reach, budget=budget, batch=batch, per_cost=per_cost)
        for per_cost in (True, False)
    ]
    now = variance(before, dist)
    steps = min(plans, key=lambda plan: variance(*plan[-1][1:]) if plan else now)
    b = intervals.bounds(fit.observation.inverse(aim.curve + aim.unit * dist), [prob])
    width_now = float(np.mean(b[f"{intervals.label(prob)}_upper"] - b[f"{intervals.label(prob)}_lower"]))
    chosen = [k for k, _, _ in steps]
    out = table.iloc[chosen].copy()
    out["cost"] = costs[chosen]
    out["total_cost"] = np.cumsum(costs[chosen])
    # the width today, scaled by the forecast ratio of standard deviations
    out[f"{intervals.label(prob)}_width"] = [width_now * np.sqrt(variance(var, d) / now) for _, var, d in steps]
    out.attrs.update(target=aim.name, prob=prob, width_now=width_now, budget=budget, batch=batch)
    return out
