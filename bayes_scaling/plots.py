"""Figures (matplotlib only). Every function takes ``ax=None`` and returns the Axes it drew on (a Figure
where it draws one panel per group). Bands are drawn from posterior draws (``ScalingFit.predict_draws``,
``optimal_draws``), never parsed back out of tables; :func:`plot_draws` draws any such draws."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd

from . import intervals
from .errors import OptionError, is_number

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .calibrate import Calibration
    from .result import ScalingFit

__all__ = [
    "PUBLISHED",
    "group_colors",
    "plot_calibration",
    "plot_draws",
    "plot_exponents",
    "plot_frontier",
    "plot_isoflop",
    "plot_loo_pit",
    "plot_loss",
    "plot_pareto_k",
    "plot_pit",
    "plot_plan",
    "plot_ppc",
    "plot_rank",
    "plot_residuals",
]

#: Published allocations to overlay on the frontier: (label, N, D, C = 6ND).
PUBLISHED = (
    ("Chinchilla 70B / 1.4T", 70e9, 1.4e12, 6 * 70e9 * 1.4e12),
    ("Gopher 280B / 300B", 280e9, 300e9, 6 * 280e9 * 300e9),
)
_F = TypeVar("_F", bound=Callable[..., Any])


def _checked(first: str) -> Callable[[_F], _F]:
    """Check a plot's arguments by name before it draws, each failure an OptionError. Its first argument
    is a ``first``: ``fit`` (a ScalingFit), ``calibration`` (``calibrations``: also a mapping of them),
    ``draws`` (an xarray DataArray with chains and draws) or ``SBC result``. Then ``ax`` is an Axes or
    None, ``bins`` a whole number >= 1, ``prob`` probabilities, ``params`` a list of names, ``extrapolate``
    and ``span`` numbers above 1, ``tokens_per_param`` a positive number or None, ``C`` positive budgets
    or None, ``published`` a list of (label, N, D, C)."""

    def decorate(func: _F) -> _F:
        signature = inspect.signature(func)

        @functools.wraps(func)
        def checked(*args: Any, **kwargs: Any) -> Any:
            try:
                given = signature.bind(*args, **kwargs).arguments
            except TypeError as err:
                raise OptionError(f"{func.__name__}: {err}") from None
            _check_first(func.__name__, first, next(iter(given.values())))
            for name, value in given.items():
                _check_option(func.__name__, name, value)
            return func(*args, **kwargs)

        return checked  # type: ignore[return-value]

    return decorate


def _check_first(plot: str, first: str, value: Any) -> None:
    import xarray as xr

    from .calibrate import Calibration
    from .result import ScalingFit

    ok = {
        "fit": lambda: isinstance(value, ScalingFit),
        "calibration": lambda: isinstance(value, Calibration),
        "calibrations": lambda: (
            isinstance(value, Calibration)
            or (isinstance(value, Mapping) and bool(value) and all(isinstance(c, Calibration) for c in value.values()))
        ),
        "draws": lambda: isinstance(value, xr.DataArray) and {"chain", "draw"} <= set(value.dims),
        "SBC result": lambda: hasattr(value, "ranks") and hasattr(value, "draws"),
    }[first]()
    if not ok:
        raise OptionError(f"{plot} draws a {first} (see its docstring), got {type(value).__name__}")


def _check_option(plot: str, name: str, value: Any) -> None:
    from matplotlib.axes import Axes

    def number(low: float) -> bool:
        return is_number(value) and value > low

    def names(v: Any) -> bool:
        return not isinstance(v, str) and isinstance(v, Sequence) and all(isinstance(p, str) for p in v)

    fine = {
        "ax": lambda: value is None or isinstance(value, Axes),
        "bins": lambda: isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= 1,
        "params": lambda: value is None or names(value),
        "extrapolate": lambda: number(1.0),
        "span": lambda: number(1.0),
        "tokens_per_param": lambda: value is None or number(0.0),
        "published": lambda: (
            isinstance(value, Sequence) and all(isinstance(p, Sequence) and len(p) == 4 for p in value)
        ),
    }
    if name in fine and not fine[name]():
        raise OptionError(f"{plot}: {name}={value!r:.80} is not allowed (see its docstring)")
    if name == "prob":
        intervals.check_probs(value)
    if name == "C" and value is not None:
        from .optimal import checked_positive

        checked_positive(value)


_LABELS = {"N": "parameters N", "D": "tokens D", "C": "compute C (FLOPs)", "U": "unique tokens U"}


def _axes(ax: Axes | None) -> Axes:
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6.4, 4.4))
    return ax


def _figure(n: int, width: float = 3.4, height: float = 2.8) -> tuple[Figure, list[Axes]]:
    """A figure of ``n`` small panels, up to four a row (one per group), outside pyplot's state."""
    from matplotlib.figure import Figure

    cols = min(n, 4)
    rows = -(-n // cols)
    fig = Figure(figsize=(width * cols, height * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for extra in axes.ravel()[n:]:
        extra.set_visible(False)
    return fig, list(axes.ravel()[:n])


def group_colors(n: int) -> list:
    """``n`` distinguishable colours: tab10 up to 10 groups, tab20 up to 20, a sequential map beyond."""
    from matplotlib import colormaps

    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        return [colormaps["tab20"](i) for i in range(n)]
    return [colormaps["viridis"](i / (n - 1)) for i in range(n)]


def _band(
    ax: Axes, x: np.ndarray, draws: np.ndarray, probs: Sequence[float], color: Any, label: str, ls: str = "-"
) -> None:
    """Median and equal-tailed bands of ``draws`` (samples, len(x)) against ``x``."""
    found = intervals.bounds(draws, probs)
    for p in sorted(probs, reverse=True):
        name = intervals.label(p)
        ax.fill_between(
            x, found[f"{name}_lower"], found[f"{name}_upper"], color=color, alpha=0.12 + 0.25 * (1 - p), lw=0
        )
    ax.plot(x, found["median"], color=color, lw=1.6, ls=ls, label=label)


@_checked("draws")
def plot_draws(
    draws: xr.DataArray,
    x: str,
    *,
    ax: Axes | None = None,
    prob: Sequence[float] = intervals.PROBS,
    color: Any = "C0",
    label: str | None = None,
) -> Axes:
    """Median and bands of draws with dims (chain, draw, point) against their coordinate ``x`` (e.g. the
    output of ``fit.predict_draws(N=grid, D=20 * grid)`` against ``"N"``), on log-log axes."""
    ax = _axes(ax)
    along = [str(c) for c in draws.coords if draws[c].ndim == 1 and draws[c].dims[0] not in ("chain", "draw")]
    if x not in along:
        raise OptionError(f"the draws have no coordinate {x!r} along their points; they have {along}")
    order = np.argsort(draws[x].values)
    _band(
        ax,
        draws[x].values[order],
        intervals.sample_matrix(draws)[:, order],
        intervals.check_probs(prob),
        color,
        label or str(draws.name or ""),
    )
    ax.set(xscale="log", yscale="log", xlabel=_LABELS.get(x, x), ylabel=str(draws.name or ""))
    return ax


def _groups(fit: ScalingFit, group: Any) -> list:
    if fit.runs.group is None:
        return [None]
    return fit._group_labels(group)


def _run_x(fit: ScalingFit, x: str) -> np.ndarray:
    inputs = fit.runs.inputs
    if x in inputs:
        return inputs[x]
    if x == "C" and {"N", "D"} <= set(inputs):
        return fit.law.compute_flops(**inputs)
    raise OptionError(f"law {fit.law.name!r} has inputs {list(fit.law.inputs)}; cannot plot against {x!r}")


def _mine(fit: ScalingFit, group: str | None) -> Any:
    return slice(None) if group is None else fit.runs.group == fit.runs.groups.index(group)


@_checked("fit")
def plot_loss(
    fit: ScalingFit,
    x: str = "N",
    *,
    ax: Axes | None = None,
    prob: Sequence[float] = intervals.PROBS,
    tokens_per_param: float | None = None,
    extrapolate: float = 100.0,
    group: Any = None,
) -> Axes:
    """Loss against N, D or C on log-log axes: the runs, the median curve and its bands, and the
    extrapolated region (beyond the largest run, up to ``extrapolate`` times it) shaded.

    Against N or D the other input follows ``tokens_per_param`` (default: the runs' median); against C
    the curve is the loss at the compute-optimal allocation. A grouped fit draws every group (or
    ``group``) in its own colour.
    """
    ax = _axes(ax)
    probs = intervals.check_probs(prob)
    seen = _run_x(fit, x)
    grid = np.geomspace(seen.min() / 2, seen.max() * extrapolate, 80)
    inputs = fit.law.inputs
    tpp = tokens_per_param
    if tpp is None and {"N", "D"} <= set(inputs):
        tpp = float(np.median(fit.runs.inputs["D"] / fit.runs.inputs["N"]))
    groups = _groups(fit, group)
    colors = group_colors(len(groups))
    for g, color in zip(groups, colors, strict=True):
        if x == "C" and x not in inputs:
            opt = fit.optimal_draws(grid, group=g)["loss"]
            draws = intervals.sample_matrix(opt if g is None else opt.sel(group=g))
            label = "compute-optimal"
        else:
            at: dict[str, Any] = {x: grid}
            if x == "N" and "D" in inputs:
                at["D"] = tpp * grid
            if x == "D" and "N" in inputs:
                at["N"] = grid / tpp
            if "U" in inputs and "D" in at:
                at["U"] = at["D"]  # unique tokens: no repetition
            for k in fit.law.covariates:  # as in the (group's) runs
                at[k] = np.full(grid.size, np.median(fit.runs.inputs[k][_mine(fit, g)]))
            if set(at) != set(inputs):
                raise OptionError(f"cannot plot law {fit.law.name!r} (inputs {list(inputs)}) against {x!r}")
            draws = intervals.sample_matrix(fit.predict_draws(group=g, **at))
            label = f"D = {tpp:.3g} N" if x in ("N", "D") and {"N", "D"} <= set(inputs) else "law"
        _band(ax, grid, draws, probs, color, label if g is None else f"{g}")
        mine = _mine(fit, g)
        ax.scatter(seen[mine], fit.runs.loss[mine], s=12, color=color, edgecolor="k", lw=0.3, zorder=3)
    ax.axvspan(seen.max(), grid.max(), color="0.85", alpha=0.5, lw=0, label="extrapolation")
    ax.set(
        xscale="log",
        xlabel=_LABELS.get(x, x),
        **_target_axis(fit),
        title=f"{fit.law.name}: bands {', '.join(f'{100 * p:g}%' for p in probs)} (equal-tailed)",
    )
    ax.legend(fontsize=8, ncol=1 + len(groups) // 8)
    return ax


@_checked("fit")
def plot_frontier(
    fit: ScalingFit,
    *,
    C: Sequence[float] | None = None,
    ax: Axes | None = None,
    prob: Sequence[float] = intervals.PROBS,
    published: Sequence[tuple[str, float, float, float]] = PUBLISHED,
    group: Any = None,
) -> Axes:
    """The compute-optimal frontier N_opt(C) and D_opt(C) with bands, published allocations overlaid.
    A grouped fit draws each group in its own colour, N_opt solid and D_opt dashed."""
    ax = _axes(ax)
    probs = intervals.check_probs(prob)
    if C is None:
        seen = _run_x(fit, "C")
        budgets = np.geomspace(seen.min(), max(seen.max() * 1e3, 1e25), 40)
    else:
        budgets = np.asarray(C, dtype=float)
    groups = _groups(fit, group)
    colors = group_colors(len(groups)) if groups != [None] else None
    draws = fit.optimal_draws(budgets, group=None if groups == [None] else groups)
    for i, g in enumerate(groups):
        part = draws if g is None else draws.sel(group=g)
        suffix = "" if g is None else f" ({g})"
        for name, ls in (("N_opt", "-"), ("D_opt", "--" if g is not None else "-")):
            color = colors[i] if colors else ("C0" if name == "N_opt" else "C1")
            _band(ax, budgets, intervals.sample_matrix(part[name]), probs, color, f"{name}{suffix}", ls)
    for label, n, d, c in published:
        ax.scatter([c, c], [n, d], marker="*", s=90, color="gold", edgecolor="k", zorder=4)
        ax.annotate(label, (c, n), textcoords="offset points", xytext=(6, -10), fontsize=8)
    ax.axvline(_run_x(fit, "C").max(), color="0.5", ls=":", lw=1)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="compute C (FLOPs)",
        ylabel="parameters / tokens",
        title="compute-optimal allocation (stars: published; dotted: largest run)",
    )
    ax.legend(fontsize=8, ncol=1 + len(groups) // 6)
    return ax


@_checked("fit")
def plot_isoflop(
    fit: ScalingFit,
    C: Sequence[float],
    *,
    ax: Axes | None = None,
    prob: Sequence[float] = intervals.PROBS,
    span: float = 30.0,
    group: Any = None,
) -> Axes | Figure:
    """IsoFLOP profiles: loss against N at each fixed budget C (D = C / f(N)), with bands and the optimum.
    A grouped fit without ``group`` draws one panel per group and returns the Figure."""
    from .optimal import flops_per_token

    probs = intervals.check_probs(prob)
    f = flops_per_token(fit.law)
    if fit.runs.group is not None and group is None:
        if ax is not None:
            raise OptionError("a grouped fit draws one panel per group: pass group= to draw one on ax")
        fig, axes = _figure(len(fit.runs.groups))
        for g, panel in zip(fit.runs.groups, axes, strict=True):
            plot_isoflop(fit, C, ax=panel, prob=prob, span=span, group=g)
        fig.tight_layout()
        return fig
    ax = _axes(ax)
    budgets = np.atleast_1d(np.asarray(C, dtype=float))
    opt = fit.optimal_draws(budgets, group=group)
    if group is not None:
        opt = opt.sel(group=group)
    for i, budget in enumerate(budgets):
        n_opt = float(np.median(opt["N_opt"].isel(budget=i)))
        grid = np.geomspace(n_opt / span, n_opt * span, 60)
        extra = {"U": budget / f(grid)} if "U" in fit.law.inputs else {}
        draws = fit.predict_draws(N=grid, D=budget / f(grid), group=group, **extra)
        _band(ax, grid, intervals.sample_matrix(draws), probs, f"C{i}", f"C = {budget:.2g}")
        ax.plot(n_opt, float(np.median(opt["loss"].isel(budget=i))), "k*", ms=9, zorder=4)
    ax.set(
        xscale="log",
        xlabel="parameters N",
        ylabel="loss",
        title="IsoFLOP profiles (star: median optimum)" + ("" if group is None else f", {group}"),
    )
    ax.legend(fontsize=8)
    return ax


@_checked("fit")
def plot_exponents(fit: ScalingFit, params: Sequence[str] | None = None, *, ax: Axes | None = None) -> Axes:
    """Joint posterior of two exponents (default: the law's first two named alpha*/beta*/c*)."""
    ax = _axes(ax)
    if params is None:
        params = [p for p in fit.law.params if p.startswith(("alpha", "beta", "c"))][:2]
    if len(params) != 2:
        raise OptionError(f"give two parameters to plot, e.g. params={list(fit.law.params[:2])}")
    missing = [p for p in params if p not in fit.posterior]
    if missing:
        raise OptionError(f"{missing} have no population value in this fit (pooling 'none'); plot another pair")
    x, y = (fit.draws(p) for p in params)
    if x.ndim > 1 or y.ndim > 1:
        raise OptionError(f"{params} vary by group; plot their population values or pick a group")
    ax.scatter(x, y, s=3, alpha=0.25, color="C0", lw=0)
    ax.axvline(np.median(x), color="k", lw=0.8)
    ax.axhline(np.median(y), color="k", lw=0.8)
    ax.set(xlabel=params[0], ylabel=params[1], title=f"joint posterior ({x.size} draws)")
    return ax


@_checked("calibrations")
def plot_calibration(cal: Calibration | dict[str, Calibration], *, ax: Axes | None = None) -> Axes:
    """Reliability diagram: the share of held-out runs inside each central interval against its nominal
    probability, with the band (95%) in which a calibrated predictive would fall for this many runs.
    Pass ``{label: calibration}`` to compare methods or laws."""
    from scipy import stats

    ax = _axes(ax)
    cals = cal if isinstance(cal, dict) else {"": cal}
    first = next(iter(cals.values()))
    probs = first.curve.index.to_numpy()
    n = int(first.summary["n"])
    lo, hi = stats.binom.ppf([[0.025], [0.975]], n, probs) / n
    ax.fill_between(probs, lo, hi, color="0.85", lw=0, label=f"calibrated, {n} runs (95%)")
    ax.plot([0, 1], [0, 1], color="0.4", lw=0.8, ls="--")
    for i, (label, c) in enumerate(cals.items()):
        ax.plot(c.curve.index, c.curve["coverage"], "o-", color=f"C{i}", ms=4, label=label or f"coverage ({c.kind})")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.02),
        xlabel="nominal probability of the central interval",
        ylabel="share of held-out runs inside",
        title="calibration on held-out runs (equal-tailed intervals)",
    )
    ax.legend(fontsize=8, loc="upper left")
    return ax


def _pit_histogram(ax: Axes, pit: np.ndarray, bins: int, title: str, xlabel: str) -> Axes:
    ax.hist(pit, bins=np.linspace(0, 1, bins + 1).tolist(), color="C0", alpha=0.7, edgecolor="white")
    ax.axhline(len(pit) / bins, color="0.4", ls="--", lw=0.8, label="calibrated")
    ax.set(xlim=(0, 1), xlabel=xlabel, ylabel="runs", title=title)
    ax.legend(fontsize=8)
    return ax


@_checked("calibration")
def plot_pit(cal: Calibration, *, ax: Axes | None = None, bins: int = 10) -> Axes:
    """Histogram of PIT values (the predictive probability below each observed loss): flat when the
    predictive is calibrated, U-shaped when too narrow, humped when too wide, tilted when biased."""
    pit = cal.points["pit"].to_numpy()
    return _pit_histogram(
        _axes(ax), pit, bins, f"PIT of {len(pit)} held-out runs", "PIT (predictive probability below the observed loss)"
    )


@_checked("fit")
def plot_loo_pit(fit: ScalingFit, *, ax: Axes | None = None, bins: int = 10) -> Axes:
    """Histogram of LOO-PIT values of the fitted runs (each run's PIT under the posterior without it,
    by PSIS): flat when the observation model describes the runs."""
    import arviz_stats

    pit = np.asarray(arviz_stats.loo_pit(fit.tree)[fit.observation.observed].values).ravel()
    return _pit_histogram(_axes(ax), pit, bins, f"LOO-PIT of the {len(pit)} fitted runs", "LOO-PIT")


def _fitted(fit: ScalingFit) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(compute or the single input, observed target, posterior predictive replicates (S, runs)), the
    last two on the link scale (log-loss for a loss)."""
    x = _run_x(fit, "C" if fit.law.compute is not None else fit.law.inputs[0])
    return x, fit.observation.link(fit.runs.loss), fit.replicates


def _target_axis(fit: ScalingFit) -> dict[str, str]:
    """The y scale and label of a plot of the target: log for a loss, linear otherwise."""
    return {"yscale": "log" if fit.law.target == "positive" else "linear", "ylabel": fit.runs.columns["loss"]}


@_checked("fit")
def plot_ppc(fit: ScalingFit, *, ax: Axes | None = None, prob: Sequence[float] = intervals.PROBS) -> Axes:
    """Posterior predictive check: each fitted run's observed loss against the 50% and 90% intervals of
    its replicates, by compute. Runs outside their 90% interval are drawn in red."""
    ax = _axes(ax)
    x, y, rep = _fitted(fit)
    y, rep = fit.observation.inverse(y), fit.observation.inverse(rep)
    found = intervals.bounds(rep, intervals.check_probs(prob))
    order = np.argsort(x)
    for p in sorted(intervals.check_probs(prob), reverse=True):
        name = intervals.label(p)
        ax.vlines(
            x[order],
            found[f"{name}_lower"][order],
            found[f"{name}_upper"][order],
            color="C0",
            lw=1 + 2 * (1 - p),
            alpha=0.35 + 0.4 * (1 - p),
        )
    lo, hi = np.quantile(rep, [0.05, 0.95], axis=0)
    outside = (y < lo) | (y > hi)
    ax.scatter(x[~outside], y[~outside], s=10, color="k", zorder=3, label="observed")
    ax.scatter(x[outside], y[outside], s=16, color="C3", zorder=4, label=f"outside 90% ({outside.sum()})")
    ax.set(
        xscale="log",
        xlabel=_LABELS.get("C", "C"),
        title="posterior predictive check of the fitted runs",
        **_target_axis(fit),
    )
    ax.legend(fontsize=8)
    return ax


@_checked("fit")
def plot_residuals(fit: ScalingFit, *, ax: Axes | None = None) -> Axes:
    """Residuals of the fitted runs' target on the link scale (log-loss for a loss) about the posterior
    median of the law, against compute,
    with the 90% band of the noise: structure in them is the law's misfit."""
    ax = _axes(ax)
    x, y, rep = _fitted(fit)
    center = np.median(rep, axis=0)
    residual = y - center
    lo, hi = np.quantile(rep - center, [0.05, 0.95], axis=0)
    order = np.argsort(x)
    ax.fill_between(x[order], lo[order], hi[order], color="0.85", lw=0, label="90% of replicates")
    groups = _groups(fit, None)
    for g, color in zip(groups, group_colors(len(groups)), strict=True):
        mine = _mine(fit, g)
        ax.scatter(x[mine], residual[mine], s=12, color=color, edgecolor="k", lw=0.3, label=g or "runs", zorder=3)
    ax.axhline(0, color="k", lw=0.8)
    link = {"positive": "log(observed)", "bounded": "logit(observed)"}.get(fit.law.target, "observed")
    ax.set(xscale="log", xlabel=_LABELS.get("C", "C"), ylabel=f"{link} - median", title="residuals by compute")
    ax.legend(fontsize=8, ncol=1 + len(groups) // 8)
    return ax


@_checked("fit")
def plot_pareto_k(fit: ScalingFit, *, ax: Axes | None = None) -> Axes:
    """PSIS-LOO Pareto k of each fitted run against compute: above 0.7 (red line) LOO is unreliable there."""
    import arviz_stats

    ax = _axes(ax)
    x = _fitted(fit)[0]
    k = np.asarray(arviz_stats.loo(fit.tree, pointwise=True).pareto_k.values).ravel()
    ax.scatter(x, k, s=12, color=np.where(k > 0.7, "C3", "C0"))
    ax.axhline(0.7, color="C3", ls="--", lw=0.8)
    ax.set(
        xscale="log",
        xlabel=_LABELS.get("C", "C"),
        ylabel="Pareto k",
        title=f"PSIS-LOO Pareto k ({int((k > 0.7).sum())} of {k.size} runs above 0.7)",
    )
    return ax


@_checked("fit")
def plot_rank(fit: ScalingFit, params: Sequence[str] | None = None, *, bins: int = 20) -> Figure:
    """Rank plots: for each parameter, the histogram of its draws' ranks (across all chains) per chain;
    flat bars in every chain mean the chains agree."""
    names = list(params or [p for p in fit.law.params if p in fit.posterior and fit.posterior[p].ndim == 2])
    unknown = [p for p in names if p not in fit.posterior]
    if unknown:
        raise OptionError(f"plot_rank: no variable {unknown[0]!r} in the posterior; it has {list(fit.posterior)}")
    fig, axes = _figure(len(names), width=3.0, height=2.2)
    for name, ax in zip(names, axes, strict=True):
        values = fit.posterior[name].values
        ranks = np.argsort(np.argsort(values.ravel())).reshape(values.shape)
        edges = np.linspace(0, ranks.size, bins + 1)
        for c in range(values.shape[0]):
            counts, _ = np.histogram(ranks[c], bins=edges)
            ax.step(np.arange(bins), counts, where="mid", lw=1, color=f"C{c % 10}")
        ax.axhline(values.shape[1] / bins, color="0.4", ls="--", lw=0.8)
        ax.set(title=name, xticks=[], yticks=[])
    fig.suptitle("rank plots (one line per chain)", fontsize=10)
    fig.tight_layout()
    return fig


@_checked("SBC result")
def plot_sbc(result: Any, ax: Axes | None = None) -> Axes:
    """Simulation-based calibration as ECDF differences: for each parameter, the ECDF of its normalised
    ranks minus the uniform CDF, inside a 99% band for a uniform sample of this many cycles (pointwise)."""
    ax = _axes(ax)
    ranks = result.ranks.drop(columns="problems")
    n = len(ranks)
    grid = np.linspace(0, 1, 201)
    band = 2.576 * np.sqrt(grid * (1 - grid) / n)
    ax.fill_between(grid, -band, band, color="0.85", label="99% band (uniform)")
    for i, name in enumerate(ranks):
        u = (ranks[name].to_numpy() + 0.5) / (result.draws + 1)
        ax.plot(grid, (u[:, None] <= grid).mean(axis=0) - grid, color=f"C{i % 10}", lw=1, label=name)
    ax.axhline(0, color="0.4", lw=0.6)
    ax.set(xlim=(0, 1), xlabel="normalised rank", ylabel="ECDF - uniform", title=f"{result.law}: SBC, {n} cycles")
    ax.legend(fontsize=7, ncol=2)
    return ax


@_checked("fit")
def plot_plan(
    fit: ScalingFit, plan: Any, *, target: Any = None, candidates: Any = None, ax: Axes | None = None
) -> Axes:
    """A plan of runs (:meth:`ScalingFit.suggest_runs`) in the (N, D) plane: the fitted runs, the candidates
    (if given), the chosen runs numbered in the order chosen, and the target points (a mapping of N and D,
    or a table with the fit's columns)."""
    if not {"N", "D"} <= set(fit.law.inputs):
        raise OptionError(f"law {fit.law.name!r} has inputs {list(fit.law.inputs)}; a plan is drawn in N and D")
    n, d = fit.runs.columns["N"], fit.runs.columns["D"]
    for what, table, needed in (("plan", plan, [n, d, "total_cost"]), ("candidates", candidates, [n, d])):
        if (table is not None or what == "plan") and not (
            isinstance(table, pd.DataFrame) and set(needed) <= set(table.columns)
        ):
            raise OptionError(f"plot_plan: {what} must be a table with the columns {needed} (suggest_runs gives one)")
    if target is not None:
        keys = [n, d] if isinstance(target, pd.DataFrame) else ["N", "D"]
        if not (isinstance(target, pd.DataFrame | Mapping) and set(keys) <= set(target)):
            raise OptionError(f"plot_plan: target must be a mapping of N and D, or a table with the columns {[n, d]}")
    ax = _axes(ax)
    if candidates is not None:
        ax.scatter(candidates[n], candidates[d], s=14, facecolors="none", edgecolors="0.6", lw=0.7, label="candidates")
    ax.scatter(fit.runs.inputs["N"], fit.runs.inputs["D"], s=14, color="k", label="fitted runs")
    ax.scatter(plan[n], plan[d], s=60, color="C1", zorder=3, label="suggested, in order")
    for i, (x, y) in enumerate(zip(plan[n], plan[d], strict=True), start=1):
        ax.annotate(str(i), (x, y), xytext=(4, 4), textcoords="offset points", fontsize=8, color="C1")
    if target is not None:
        nt, dt = (target[n], target[d]) if isinstance(target, pd.DataFrame) else (target["N"], target["D"])
        ax.scatter(nt, dt, marker="*", s=160, color="C3", zorder=4, label="target")
    ax.set(xscale="log", yscale="log", xlabel=_LABELS["N"], ylabel=_LABELS["D"])
    spent = f"{len(plan)} runs, {plan['total_cost'].iloc[-1]:.3g} in all" if len(plan) else "no run worth its cost"
    ax.set_title(spent)
    ax.legend(fontsize=8)
    return ax
