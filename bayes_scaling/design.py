"""Which runs to train next: from candidate runs, a batch that most shrinks a target's posterior per unit cost.

The target is a quantity the fit predicts: the expected loss at given inputs, or the compute-optimal
``N_opt``, ``D_opt`` or ``loss_opt`` at a budget. Its posterior variance (on the log scale) after the new runs
are fitted is forecast from the posterior draws alone, under the fit's own model, with no refit per candidate:

- **the law's curve**, linearised at each of :data:`DRAWS` posterior draws (Bayesian design with a local
  linearisation, Chaloner and Verdinelli 1995): at a draw the parameters (on their link scales) have a
  precision, the prior's plus what the fitted runs tell (each run's slope of the curve, squared, over the
  noise variance), and a run at candidate ``k`` adds its own; the target's variance there is its slope
  through the inverse. Averaged over the draws this values runs as the refit does where the posterior is far
  from Gaussian (few runs, a curved posterior): many small runs together can pin a direction down that one
  large run cannot, which a single Gaussian of the curve's draws missed. The averaged forecast scales the
  target's variance in the draws.
- **the extrapolation discrepancy** (:mod:`bayes_scaling.observation`). Its variance at the target is
  ``E[(kappa sigma z)^2]`` times the squared distance from the nearest fitted run (of the target's group); a
  run nearer the target shortens that distance. This is what makes larger runs worth their cost.

Parameters of a grouped fit count once per group: a shared one once, a group's own value (its spread across
groups as its prior, for partial pooling) only through that group's runs. A new group's own values are
learned from no candidate; its target narrows through the shared parameters and the distance.

Runs are chosen greedily: at each step the candidate whose expected reduction of the target's variance per
unit cost is largest, among those that fit in what is left of the budget.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import intervals
from .errors import DataError, GroupError, OptionError, generator, is_number
from .expr import Expression
from .observation import flat_draws, gaps
from .priors import link_functions
from .result import sampled_draws

if TYPE_CHECKING:
    from .result import ScalingFit

__all__ = ["OPTIMAL_TARGETS", "greedy", "suggest_runs"]

#: The most candidate runs a grid may make (each is weighed at every posterior draw the design uses).
MAX_CANDIDATES = 100_000
#: A run is worth suggesting when it is expected to remove at least this share of the target's variance now.
MIN_GAIN = 1e-3
#: Posterior draws at which the law is linearised (evenly spaced through the chains), and the step of the
#: central differences on each parameter's link scale.
DRAWS = 256
STEP = 1e-3
#: Compute-optimal targets, and the key of :func:`bayes_scaling.optimal.optimum` each one reads.
OPTIMAL_TARGETS = {"N_opt": "N", "D_opt": "D", "loss_opt": "loss"}


def greedy(
    jac: np.ndarray,
    target_jac: np.ndarray,
    cov: np.ndarray,
    noise_var: np.ndarray,
    scale: np.ndarray,
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

    The curve, at S draws and C parameters: ``jac`` (S, K, C) its slopes at the K candidates, ``target_jac``
    (S, T, C) at the T targets, ``cov`` (S, C, C) the parameters' covariance today, ``noise_var``
    (S or 1, K) the noise variance of a run at each candidate, ``scale`` (T,) the targets' variance in the
    draws over the linearised one. The discrepancy: ``unit`` (S or 1, T) its draws per decade of distance
    (zeros without one), ``dist`` (S or 1, T) the targets' distance from the fitted runs now and ``reach``
    (S or 1, T, K) their distance from each candidate (inf where a candidate cannot shorten it).

    Returns, per chosen candidate, its index, the curve's variance at each target after it and the
    targets' distances after it.
    """
    K = cost.size

    def curve_var(cov: np.ndarray) -> np.ndarray:
        return scale * np.einsum("stc,scd,std->t", target_jac, cov, target_jac) / cov.shape[0]

    unit2 = np.square(unit)
    least = MIN_GAIN * (curve_var(cov).sum() + (unit2 * np.square(dist)).mean(0).sum())
    open_ = np.ones(K, dtype=bool)
    spent, out = 0.0, list[tuple[int, np.ndarray, np.ndarray]]()
    while batch is None or len(out) < batch:
        u = np.einsum("scd,skd->skc", cov, jac)  # cov j_k at each draw
        denom = noise_var + np.einsum("skc,skc->sk", jac, u)
        told = np.square(np.einsum("stc,skc->stk", target_jac, u)) / denom[:, None, :]  # rank-one update's gain
        nearer = np.minimum(dist[..., None], reach)  # (S or 1, T, K)
        shorter = (unit2[..., None] * (np.square(dist)[..., None] - np.square(nearer))).sum(axis=1).mean(0)
        gain = (scale[:, None] * told.mean(axis=0)).sum(axis=0) + shorter
        ok = open_ & (spent + cost <= budget) & (gain > least)
        if not ok.any():
            break
        k = int(np.argmax(np.where(ok, gain / cost if per_cost else gain, -np.inf)))
        cov = cov - np.einsum("sc,sd->scd", u[:, k], u[:, k]) / denom[:, k, None, None]
        dist = nearer[..., k]
        open_[k] = False
        spent += float(cost[k])
        out.append((k, curve_var(cov), dist))
    return out


def candidate_table(candidates: pd.DataFrame | Mapping[str, Any]) -> pd.DataFrame:
    """Candidates as a table: a DataFrame as given, or a grid (a mapping of column to values) as every
    combination of its values."""
    if isinstance(candidates, pd.DataFrame):
        table = candidates
    elif isinstance(candidates, Mapping):
        columns = {k: np.atleast_1d(np.asarray(v)) for k, v in candidates.items()}
        count = int(np.prod([float(v.size) for v in columns.values()]))
        if count > MAX_CANDIDATES:
            raise OptionError(f"the grid makes {count:.3g} candidate runs; give at most {MAX_CANDIDATES:,}")
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


def _check_candidate_groups(fit: ScalingFit, table: pd.DataFrame) -> None:
    """A grouped fit's candidates name, in its group column, a group it knows: the planner forecasts what a
    run tells through the group's fitted values (``group=`` and ``new_group=`` are the target's)."""
    if fit.runs.group is None:
        return
    column, known = fit.runs.group_column, list(fit.runs.groups)
    if column not in table:
        raise GroupError(f"this fit is grouped by {column!r}: give the candidates a {column!r} column, one of {known}")
    unknown = sorted(set(table[column].astype(str)) - set(known))
    if unknown:
        raise GroupError(
            f"candidates of unknown group(s) {unknown} in {column!r}: a candidate run belongs to a group the fit "
            f"knows, one of {known} (new_group= is for the target)"
        )


Links = Mapping[str, tuple[Callable, Callable]]


def _slopes(fn: Callable[[Mapping[str, np.ndarray]], np.ndarray], sampled: Mapping, links: Links) -> dict:
    """The derivative of ``fn(sampled)`` (S, points) with respect to each sampled parameter on its link scale,
    at every point (a point's value depends on its own parameter values only): {p: (S, points)}."""
    out = {}
    for p, (forward, inverse) in links.items():
        up, down = (fn({**sampled, p: inverse(forward(sampled[p]) + h)}) for h in (STEP, -STEP))
        out[p] = (up - down) / (2 * STEP)
    return out


def _thinned(fit: ScalingFit, rows: np.ndarray) -> Any:
    """The posterior at its draws ``rows`` (counted chain by chain), as one chain: what the linearisation
    needs at the candidates and the fitted runs, without computing every draw there first."""
    flat = fit.posterior.stack(sample=("chain", "draw")).isel(sample=rows)
    flat = flat.drop_vars(["sample", "chain", "draw"]).rename(sample="draw")
    return flat.expand_dims("chain").transpose("chain", "draw", ...)


def _runs_at(
    fit: ScalingFit, posterior: Any, inputs: Mapping, codes: np.ndarray | None, links: Links, rng: Any = None
) -> tuple[dict, np.ndarray]:
    """At runs (``inputs``, group ``codes``), for the draws of ``posterior``: the law's :func:`_slopes` and
    the information variance of a run's observation (:meth:`ObservationModel.information_variance`)."""
    sampled = sampled_draws(fit.law, posterior, fit.priors, fit.pooling, codes, rng)
    noise = fit.observation.noise(posterior, codes, rng)
    return _slopes(lambda s: fit._law_at(s, inputs), sampled, links), fit.observation.information_variance(noise)


def _columns(fit: ScalingFit, *codes: np.ndarray | None) -> list[tuple[str, int | None]]:
    """The parameters the forecast tracks, as (parameter, group): a shared one once (group None), a group's
    own value once per group among ``codes`` (those of the candidates and the targets)."""
    groups = sorted({int(c) for some in codes if some is not None for c in some})
    return [
        (p, g) for p in fit.law.sampled_params for g in ([None] if fit.pooling[p] == "shared" or not groups else groups)
    ]


def _jacobian(slopes: Mapping[str, np.ndarray], codes: np.ndarray | None, columns: list) -> np.ndarray:
    """Slopes (S, points) per parameter as a Jacobian (S, points, C) over ``columns`` (parameter, group): a
    group's own value moves that group's points only."""
    return np.stack([slopes[p] if g is None else slopes[p] * (codes == g) for p, g in columns], axis=-1)


@dataclass(frozen=True)
class _Target:
    """A target's draws on the log scale, split into the law's curve (S, T) and the discrepancy per decade
    of distance ``unit`` (S or 1, T; zero where there is none); where it lies (inputs of shape (S or 1, T)),
    in which group, and the curve's ``slopes`` at the linearisation's draws ({parameter: (DRAWS, T)})."""

    curve: np.ndarray
    unit: np.ndarray
    where: dict[str, np.ndarray]
    codes: np.ndarray | None
    name: str
    slopes: dict[str, np.ndarray]


def _per_decade(fit: ScalingFit, codes: np.ndarray | None, size: int, rng: np.random.Generator) -> np.ndarray:
    """The discrepancy's draws per decade of distance at ``size`` points (of the groups ``codes``):
    (S, size), or zeros (1, size) for a fit without one."""
    if not fit.observation.discrepancy:
        return np.zeros((1, size))
    sigma = fit.observation.noise(fit.posterior, codes, rng)["sigma"]
    return np.broadcast_to(fit._delta(np.ones(size), sigma, fit._tilt(codes, rng)), (sigma.shape[0], size))


def _at(sampled: Mapping[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    """The draws ``rows`` of each parameter's draws."""
    return {p: v[rows] for p, v in sampled.items()}


def _loss_target(
    fit: ScalingFit, target: Any, group: Any, new_group: bool, rng: np.random.Generator, links: Links, rows: np.ndarray
) -> _Target:
    table, inputs = (target, {}) if isinstance(target, pd.DataFrame) else (None, dict(target))
    values, _, codes = fit._prediction_inputs(table, inputs, group, new_group)
    sampled = sampled_draws(fit.law, fit.posterior, fit.priors, fit.pooling, codes, rng)
    curve = fit._law_at(sampled, values)
    unit = _per_decade(fit, codes, curve.shape[1], rng)
    slopes = _slopes(lambda s: fit._law_at(s, values), _at(sampled, rows), links)
    return _Target(curve, unit, {k: v[None, :] for k, v in values.items()}, codes, "loss", slopes)


def _optimal_target(
    fit: ScalingFit,
    name: str,
    C: Any,
    group: Any,
    new_group: bool,
    rng: np.random.Generator,
    links: Links,
    rows: np.ndarray,
) -> _Target:
    from .optimal import checked_positive, optimum

    if C is None:
        raise OptionError(f"target {name!r} needs C=, the compute budget(s) in FLOPs")
    budgets = checked_positive(C)
    labels, groups = fit._group_draws(group, new_group, rng)
    codes = None if labels is None else fit._group_codes(labels, new_group)

    def log_optimum(sampled: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.log(optimum(fit.law, sampled, budgets[None, :])[OPTIMAL_TARGETS[name]])

    curves, units, where, slopes = [], [], [], []
    for i, (sampled, _) in enumerate(groups):
        opt = optimum(fit.law, sampled, budgets[None, :])
        curves.append(np.log(opt[OPTIMAL_TARGETS[name]]))
        where.append(opt["inputs"])
        slopes.append(_slopes(log_optimum, _at(sampled, rows), links))
        mine = None if codes is None else codes[i : i + 1]
        units.append(_per_decade(fit, mine, budgets.size, rng) if name == "loss_opt" else np.zeros((1, budgets.size)))
    every = {k: np.concatenate([w[k] for w in where], axis=1) for k in fit.law.inputs}
    return _Target(
        np.concatenate(curves, axis=1),
        np.concatenate(units, axis=1),
        every,
        None if codes is None else np.repeat(codes, budgets.size),
        name,
        {p: np.concatenate([s[p] for s in slopes], axis=1) for p in links},
    )


def _covariance(fit: ScalingFit, posterior: Any, columns: list, links: Links) -> np.ndarray:
    """The parameters' covariance (S, C, C) at each draw of ``posterior`` (:func:`_thinned`): the inverse of
    the prior's precision (a group's spread for a partially pooled group value) plus what the fitted runs
    tell."""
    size = posterior.sizes["draw"]
    prior = []
    for p, g in columns:
        if g is not None and fit.pooling[p] == "partial":
            prior.append(np.square(flat_draws(posterior[f"{p}_sd"].values)))
        else:
            prior.append(np.full(size, np.var(links[p][0](fit.priors[p].sample(4000, seed=0)))))
    codes = fit.runs.group
    slopes, noise_var = _runs_at(fit, posterior, fit.runs.inputs, codes, links)
    jac = _jacobian(slopes, codes, columns)
    precision = np.einsum("snc,snd->scd", jac / noise_var[..., None], jac)
    precision[:, np.arange(len(columns)), np.arange(len(columns))] += 1 / np.stack(prior, axis=1)
    return np.linalg.inv(precision)


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
    if fit.observation.autocorrelated:
        raise OptionError(
            "suggest_runs treats runs as independent; this fit's noise is autocorrelated along "
            f"{fit.observation.autocorrelated!r} (checkpoints of one run): plan on a fit of final losses"
        )
    if batch is not None and (not isinstance(batch, int) or isinstance(batch, bool) or batch < 1):
        raise OptionError(f"batch must be a positive integer, got {batch!r}")
    if not (is_number(budget) and budget > 0):
        raise OptionError(f"budget must be a positive number (the most the new runs may cost together), got {budget!r}")
    prob = intervals.check_prob(prob)
    rng = generator(seed)
    links = {p: link_functions(p, fit.priors[p], np) for p in fit.law.sampled_params}
    size = fit.posterior.sizes["chain"] * fit.posterior.sizes["draw"]
    rows = np.unique(np.linspace(0, size - 1, min(DRAWS, size)).astype(int))
    if isinstance(target, str):
        if target not in OPTIMAL_TARGETS:
            raise OptionError(
                f"unknown target {target!r}: use one of {', '.join(OPTIMAL_TARGETS)} (with C=), or give the "
                "inputs of the runs whose loss to pin down (a table, or a mapping such as {'N': 7e9, 'D': 1.4e11})"
            )
        aim = _optimal_target(fit, target, C, group, new_group, rng, links, rows)
    elif isinstance(target, pd.DataFrame | Mapping):
        if C is not None:
            raise OptionError("C= goes with a compute-optimal target (N_opt, D_opt, loss_opt), not with points")
        aim = _loss_target(fit, target, group, new_group, rng, links, rows)
    else:
        raise OptionError(f"target must be a table or mapping of inputs, or one of {', '.join(OPTIMAL_TARGETS)}")

    table = candidate_table(candidates)
    _check_candidate_groups(fit, table)
    values, _, codes = fit._prediction_inputs(table, {}, None, False)
    costs = _costs(fit, cost, values)
    if costs.min() > budget:
        raise OptionError(
            f"budget {budget:g} is below the cheapest candidate's cost ({costs.min():g}, {cost or fit.law.compute}): "
            "no run fits in it"
        )
    thinned = _thinned(fit, rows)
    slopes, noise_var = _runs_at(fit, thinned, values, codes, links, rng)
    columns = _columns(fit, codes, aim.codes)
    jac = _jacobian(slopes, codes, columns)
    target_jac = _jacobian(aim.slopes, aim.codes, columns)
    cov = _covariance(fit, thinned, columns, links)
    before = aim.curve.var(axis=0)
    linear = np.einsum("stc,scd,std->t", target_jac, cov, target_jac) / rows.size
    scale = np.divide(before, linear, out=np.zeros_like(before), where=linear > 0)
    dist = fit.distance(aim.where, aim.codes)
    reach = gaps(aim.where, {k: values[k] for k in fit.law.scaled_inputs})
    if aim.codes is not None and codes is not None:  # a run shortens the distance of its own group's targets
        reach = np.where((aim.codes[:, None] >= 0) & (aim.codes[:, None] != codes[None, :]), np.inf, reach)

    def variance(var: np.ndarray, dist: np.ndarray) -> float:
        """The targets' summed variance: the curve's, and the discrepancy's at distance ``dist``."""
        return float(var.sum() + np.square(aim.unit * dist).mean(0).sum())

    # Greedy by gain per unit cost can spend the budget on many cheap runs that each tell little; greedy by
    # gain alone can miss many cheap good ones. The better of the two is within a constant factor of the
    # best batch (Krause and Guestrin 2005; Leskovec et al. 2007).
    plans = [
        greedy(
            jac,
            target_jac,
            cov,
            noise_var,
            scale,
            costs,
            aim.unit,
            dist,
            reach,
            budget=budget,
            batch=batch,
            per_cost=per_cost,
        )
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
    if not chosen:
        out.attrs["note"] = (
            f"no candidate is expected to remove {MIN_GAIN:.1%} of the target's variance: none of these runs "
            "would narrow it"
        )
    return out
