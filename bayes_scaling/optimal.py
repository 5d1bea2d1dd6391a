"""Compute-optimal allocation per posterior draw: closed form where the law declares one, numeric otherwise.

For a budget C, the allocation minimises the law along the FLOPs constraint flops(N, D) = C. FLOPs
formulas must be proportional to D (flops = D * f(N), as 6ND is), so D = C / f(N) and the search is over
log N alone: a golden-section search vectorised over draws and budgets. The loss reported there may carry
a log-offset per draw (the fit's extrapolation discrepancy), which does not move the allocation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .errors import ExpressionError, GroupError, LawError, OptionError
from .expr import Expression
from .laws import Law

__all__ = ["budget_for_loss", "checked_positive", "flops_per_token", "group_trend", "log_line", "optimum"]

_GOLDEN = (np.sqrt(5) - 1) / 2
#: Golden-section iterations: the bracket shrinks by 0.618 a step; 90 steps shrink it by ~1e-19.
_STEPS = 90
#: Fewest tokens an allocation may have (keeps the bracket of log N finite).
_MIN_TOKENS = 1e3


def checked_positive(values: Any, what: str = "compute budgets") -> np.ndarray:
    """``values`` (a number or a list of them: compute budgets in FLOPs, model sizes) as a 1-D array of
    positive finite numbers; otherwise an OptionError that names ``what`` they are."""
    try:
        checked = np.atleast_1d(np.asarray(values, dtype=float))
    except (TypeError, ValueError, OverflowError):
        checked = np.empty((0, 0))
    if checked.ndim != 1 or not checked.size or not np.all(np.isfinite(checked) & (checked > 0)):
        raise OptionError(f"{what} must be positive numbers, got {values!r}")
    return checked


def flops_per_token(law: Law, flops: str | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """f(N) with flops(N, D) = D * f(N): from the law's compute formula, or ``flops`` (a formula in N and D)."""
    if not {"N", "D"} <= set(law.inputs):
        raise LawError(f"law {law.name!r} has inputs {list(law.inputs)}: a compute-optimal allocation needs N and D")
    if law.target != "positive":
        raise LawError(
            f"law {law.name!r} predicts a {law.target} target: a compute-optimal allocation minimises a loss "
            "(a positive target)"
        )
    if flops is None:
        if law.compute is None:
            raise LawError(f"law {law.name!r} has no compute formula; pass flops='6 * N * D' or another")
        expr = law.compute
    else:
        try:
            expr = Expression.parse(flops, ["N", "D"], what="flops formula")
        except ExpressionError as err:
            raise LawError(str(err)) from None
    n = np.geomspace(1e6, 1e12, 7)
    per_token = expr.evaluate({"N": n, "D": 1.0})
    if not np.allclose(expr.evaluate({"N": n, "D": 1e9}), 1e9 * per_token, rtol=1e-9) or np.any(per_token <= 0):
        raise LawError(f"flops formula {expr} must be positive and proportional to D (like 6 * N * D)")
    return lambda N: expr.evaluate({"N": N, "D": np.ones_like(N)})


def _closed_form(law: Law, natural: Mapping[str, np.ndarray], C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    env = {**natural, "C": C}
    return law.optimal["N"].evaluate(env), law.optimal["D"].evaluate(env)


def optimum(
    law: Law,
    sampled: Mapping[str, np.ndarray],
    C: np.ndarray,
    *,
    flops: str | None = None,
    fixed: Mapping[str, Any] | None = None,
    method: str = "auto",
    offset: Callable[[Mapping[str, np.ndarray]], np.ndarray] | None = None,
) -> dict[str, Any]:
    """N, D and loss at the optimum for each draw (rows of ``sampled``) and budget ``C`` (columns), and
    ``inputs``: every input of the law there (N, D and those ``fixed`` or implied).

    ``method``: ``"closed"`` (the law's ``[optimal]`` formulas, valid for its own compute formula),
    ``"numeric"``, or ``"auto"`` (closed where it applies). ``fixed`` gives values of inputs other than
    N and D (e.g. unique tokens ``U``); without one, ``U`` is taken equal to D (no repetition).
    ``offset(inputs)`` adds a log-loss offset to the loss reported at the optimum (not to the search).
    """
    C = np.asarray(C, dtype=float)
    if method not in ("auto", "closed", "numeric"):
        raise OptionError(f"method must be 'auto', 'closed' or 'numeric', got {method!r}")
    use_closed = method == "closed" or (method == "auto" and bool(law.optimal) and flops is None)
    if use_closed and not law.optimal:
        raise LawError(f"law {law.name!r} declares no closed-form optimum")
    if use_closed and flops is not None:
        raise LawError("the closed form holds for the law's own compute formula only; use method='numeric'")
    f = flops_per_token(law, flops)
    unknown = sorted(set(fixed or {}) - set(law.inputs) - {"N", "D"})
    if unknown:
        raise LawError(f"law {law.name!r} has no input(s) {unknown} (its inputs: {list(law.inputs)})")

    def inputs_at(N: np.ndarray, D: np.ndarray) -> dict[str, np.ndarray]:
        inputs = {"N": N, "D": D}
        for k in law.inputs:
            if k not in inputs:
                if fixed and k in fixed:
                    inputs[k] = np.broadcast_to(np.asarray(fixed[k], dtype=float), N.shape)
                elif k == "U":
                    inputs[k] = D
                else:
                    raise LawError(f"law {law.name!r} needs a value for input {k!r} (pass {k}=...)")
        return inputs

    def loss(N: np.ndarray, D: np.ndarray) -> np.ndarray:
        return law.evaluate_sampled(sampled, **inputs_at(N, D))

    shape = np.broadcast_shapes(next(iter(sampled.values())).shape, C.shape)
    C = np.broadcast_to(C, shape)
    if use_closed:
        N, D = _closed_form(law, law.to_natural(sampled), C)
        N, D = np.broadcast_to(N, shape), np.broadcast_to(D, shape)
    else:

        def along(x: np.ndarray) -> np.ndarray:  # loss at N = exp(x) on the constraint
            return loss(np.exp(x), C / f(np.exp(x)))

        lo, hi = np.zeros(shape), np.log(_largest_n(f, C))
        a, b = hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo)
        fa, fb = along(a), along(b)
        for _ in range(_STEPS):
            left = fa < fb  # the minimum lies in [lo, b]: b becomes the new upper end
            lo, hi = np.where(left, lo, a), np.where(left, b, hi)
            x = np.where(left, hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo))
            fx = along(x)
            a, fa, b, fb = (np.where(left, x, b), np.where(left, fx, fb), np.where(left, a, x), np.where(left, fa, fx))
        N = np.exp((lo + hi) / 2)
        D = C / f(N)
    inputs = inputs_at(N, D)
    at = law.evaluate_sampled(sampled, **inputs)
    if offset is not None:
        at = at * np.exp(offset(inputs))
    return {"N": N, "D": D, "loss": at, "inputs": inputs}


def _largest_n(f: Callable[[np.ndarray], np.ndarray], C: np.ndarray) -> np.ndarray:
    """The N at which D falls to _MIN_TOKENS (f increases with N), by bisection in log N."""
    lo, hi = np.zeros_like(C), np.log(C)
    for _ in range(100):
        mid = (lo + hi) / 2
        ok = C / f(np.exp(mid)) >= _MIN_TOKENS
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    return np.exp(lo)


def budget_for_loss(
    law: Law,
    sampled: Mapping[str, np.ndarray],
    target: float,
    *,
    flops: str | None = None,
    fixed: Mapping[str, Any] | None = None,
    method: str = "auto",
    offset: Callable[[Mapping[str, np.ndarray]], np.ndarray] | None = None,
    bounds: tuple[float, float] = (1e10, 1e40),
) -> dict[str, np.ndarray]:
    """The smallest budget whose optimal allocation reaches ``target`` loss, per draw: a scan of budgets
    (8 per decade) for the first that reaches it, then bisection in log C between it and the one before.

    A draw reaches the target if its law does at ``bounds[1]`` (the offset cannot take the loss below the
    law's own floor, e.g. its irreducible loss) and the offset loss does at some budget; other draws get
    NaN and ``reachable`` False. A draw that reaches it already at ``bounds[0]`` gets NaN and
    ``already_reached`` True: its budget lies below the range searched, not at its floor.
    """

    def at(C: np.ndarray, offset: Any = offset) -> dict[str, np.ndarray]:
        return optimum(law, sampled, C, flops=flops, fixed=fixed, method=method, offset=offset)

    grid = np.geomspace(*bounds, 8 * int(np.log10(bounds[1] / bounds[0])) + 1)
    below = at(grid[None, :])["loss"] <= target
    reachable = below.any(axis=1) & (at(np.full((1, 1), bounds[1]), None)["loss"][:, 0] <= target)
    first = np.argmax(below, axis=1)
    lo = np.log(grid[np.maximum(first - 1, 0)])[:, None]
    hi = np.log(grid[first])[:, None]
    for _ in range(40):
        mid = (lo + hi) / 2
        ok = at(np.exp(mid))["loss"] <= target
        lo, hi = np.where(ok, lo, mid), np.where(ok, mid, hi)
    out = {k: v for k, v in at(np.exp(hi)).items() if k != "inputs"}
    out["C"] = np.exp(hi)
    already = below[:, 0]
    found = reachable & ~already
    return {k: np.where(found, v[:, 0], np.nan) for k, v in out.items()} | {
        "reachable": reachable,
        "already_reached": already,
    }


def log_line(values: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Per posterior draw, the line log(values) = intercept + slope (log(x) - center) through the groups.

    ``values``: draws of a positive per-group quantity, shape (..., groups); ``x``: each group's positive
    abscissa (a compute budget, a model size). Weighted least squares, each group by the inverse posterior
    variance of its log value, so a group whose value its runs barely pin does not tilt the line. Returns
    the intercept (...) at ``center``, the slope (...) and ``center``, the weighted mean of log(x).
    """
    log_y, log_x = np.log(values), np.log(x)
    weight = 1 / log_y.reshape(-1, log_x.size).var(axis=0)
    center = float(np.average(log_x, weights=weight))
    dx = log_x - center
    intercept = np.average(log_y, axis=-1, weights=weight)
    slope = (weight * dx * (log_y - intercept[..., None])).sum(-1) / (weight * dx**2).sum()
    return intercept, slope, center


def group_trend(fit: Any, variable: str, *, law: str, labels: str) -> tuple[Any, np.ndarray, np.ndarray, float]:
    """The per-group draws of ``variable`` (chain, draw, group) from a fit of ``law`` grouped by ``labels``
    (numbers, named in the plural: compute budgets, model sizes), and :func:`log_line` through them against
    the labels: (draws, intercept, slope, center)."""
    from .result import ScalingFit

    if not isinstance(fit, ScalingFit):
        raise OptionError(f"this needs a fit (a ScalingFit), got {type(fit).__name__}")
    groups = list(fit.runs.groups)
    if variable not in fit.posterior:
        raise OptionError(
            f"this needs a fit of the law {law!r} grouped by {labels}; this is {fit.law.name!r}"
            + ("" if fit.runs.group is not None else " without groups")
        )
    try:
        x = np.array([float(g) for g in groups])
    except ValueError:
        raise GroupError(f"the groups of {fit.runs.group_column!r} must be {labels}, got {groups}") from None
    if x.size < 2 or not np.all(x > 0):
        raise GroupError(f"a trend needs two or more positive {labels}, got {groups}")
    values = fit.posterior[variable].transpose("chain", "draw", "group")
    return (values, *log_line(values.values, x))
