"""Figures (matplotlib only). Every function takes ``ax=None`` and returns the Axes it drew on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from . import intervals

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .calibration import Calibration
    from .result import ScalingFit

__all__ = ["plot_loss", "plot_frontier", "plot_isoflop", "plot_exponents", "plot_calibration", "plot_pit", "PUBLISHED"]

#: Published allocations to overlay on the frontier: (label, N, D, C = 6ND).
PUBLISHED = (
    ("Chinchilla 70B / 1.4T", 70e9, 1.4e12, 6 * 70e9 * 1.4e12),
    ("Gopher 280B / 300B", 280e9, 300e9, 6 * 280e9 * 300e9),
)


def _axes(ax: Axes | None) -> Axes:
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6.4, 4.4))
    return ax


def _band(ax: Axes, x: np.ndarray, table, probs: Sequence[float], color, label: str, ls: str = "-") -> None:
    for p in sorted(probs, reverse=True):
        name = intervals.label(p)
        ax.fill_between(x, table[f"{name}_lower"], table[f"{name}_upper"], color=color, alpha=0.12 + 0.25 * (1 - p),
                        lw=0)
    ax.plot(x, table["median"], color=color, lw=1.6, ls=ls, label=label)


def _groups(fit: ScalingFit, group) -> list:
    if fit.runs.group is None:
        return [None]
    return list(fit.runs.groups) if group is None else list(np.atleast_1d(group))


def _run_x(fit: ScalingFit, x: str) -> np.ndarray:
    inputs = fit.runs.inputs
    if x in inputs:
        return inputs[x]
    if x == "C" and {"N", "D"} <= set(inputs):
        return fit.law.compute_flops(**inputs)
    raise ValueError(f"law {fit.law.name!r} has inputs {list(fit.law.inputs)}; cannot plot against {x!r}")


def plot_loss(
    fit: ScalingFit,
    x: str = "N",
    *,
    ax: Axes | None = None,
    prob: Sequence[float] = intervals.PROBS,
    tokens_per_param: float | None = None,
    extrapolate: float = 100.0,
    group=None,
) -> Axes:
    """Loss against N, D or C on log-log axes: the runs, the median curve and its bands, and the
    extrapolated region (beyond the largest run, up to ``extrapolate`` times it) shaded.

    Against N or D the other input follows ``tokens_per_param`` (default: the runs' median); against C
    the curve is the loss at the compute-optimal allocation.
    """
    import matplotlib.pyplot as plt

    ax = _axes(ax)
    probs = intervals.check_probs(prob)
    seen = _run_x(fit, x)
    grid = np.geomspace(seen.min() / 2, seen.max() * extrapolate, 80)
    inputs = fit.law.inputs
    tpp = tokens_per_param
    if tpp is None and {"N", "D"} <= set(inputs):
        tpp = float(np.median(fit.runs.inputs["D"] / fit.runs.inputs["N"]))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, g in enumerate(_groups(fit, group)):
        kw = {} if g is None else {"group": g}
        if x == "C" and x not in inputs:
            opt = fit.compute_optimal(grid, prob=probs, **kw)
            table = opt.rename(columns=lambda c: c.removeprefix("loss_"))
            label = "compute-optimal"
        else:
            at = {x: grid}
            if x == "N" and "D" in inputs:
                at["D"] = tpp * grid
            if x == "D" and "N" in inputs:
                at["N"] = grid / tpp
            if "U" in inputs and "D" in at:
                at["U"] = at["D"]  # unique tokens: no repetition
            for k in inputs:
                at.setdefault(k, None)
            if any(v is None for v in at.values()):
                raise ValueError(f"cannot plot law {fit.law.name!r} (inputs {list(inputs)}) against {x!r}")
            table = fit.predict(prob=probs, **at, **kw)
            label = f"D = {tpp:.3g} N" if x in ("N", "D") and {"N", "D"} <= set(inputs) else "law"
        _band(ax, grid, table, probs, colors[i % len(colors)], label if g is None else f"{g}")
        mine = slice(None) if g is None else fit.runs.group == fit.runs.groups.index(g)
        ax.scatter(seen[mine], fit.runs.loss[mine], s=12, color=colors[i % len(colors)], edgecolor="k", lw=0.3,
                   zorder=3)
    ax.axvspan(seen.max(), grid.max(), color="0.85", alpha=0.5, lw=0, label="extrapolation")
    ax.set(xscale="log", yscale="log", xlabel={"N": "parameters N", "D": "tokens D", "C": "compute C (FLOPs)"}.get(x, x),
           ylabel="loss", title=f"{fit.law.name}: bands {', '.join(f'{100 * p:g}%' for p in probs)} (equal-tailed)")
    ax.legend(fontsize=8)
    return ax


def plot_frontier(
    fit: ScalingFit,
    *,
    C: Sequence[float] | None = None,
    ax: Axes | None = None,
    prob: Sequence[float] = intervals.PROBS,
    published: Sequence[tuple[str, float, float, float]] = PUBLISHED,
    group=None,
) -> Axes:
    """The compute-optimal frontier N_opt(C) and D_opt(C) with bands, published allocations overlaid."""
    ax = _axes(ax)
    probs = intervals.check_probs(prob)
    if C is None:
        seen = _run_x(fit, "C")
        C = np.geomspace(seen.min(), max(seen.max() * 1e3, 1e25), 40)
    C = np.asarray(C, dtype=float)
    for i, g in enumerate(_groups(fit, group)):
        table = fit.compute_optimal(C, prob=probs, **({} if g is None else {"group": g}))
        suffix = "" if g is None else f" ({g})"
        # one colour per quantity, or per group with D_opt dashed
        for name, color, ls in (("N_opt", "C0" if g is None else f"C{i}", "-"),
                                ("D_opt", "C1" if g is None else f"C{i}", "-" if g is None else "--")):
            part = table.filter(like=f"{name}_").rename(columns=lambda c: c.removeprefix(f"{name}_"))
            _band(ax, C, part, probs, color, f"{name}{suffix}", ls)
    for label, n, d, c in published:
        ax.scatter([c, c], [n, d], marker="*", s=90, color="gold", edgecolor="k", zorder=4)
        ax.annotate(label, (c, n), textcoords="offset points", xytext=(6, -10), fontsize=8)
    ax.axvline(_run_x(fit, "C").max(), color="0.5", ls=":", lw=1)
    ax.set(xscale="log", yscale="log", xlabel="compute C (FLOPs)", ylabel="parameters / tokens",
           title="compute-optimal allocation (stars: published)")
    ax.legend(fontsize=8)
    return ax


def plot_isoflop(
    fit: ScalingFit,
    C: Sequence[float],
    *,
    ax: Axes | None = None,
    prob: Sequence[float] = intervals.PROBS,
    span: float = 30.0,
    group=None,
) -> Axes:
    """IsoFLOP profiles: loss against N at each fixed budget C (D = C / f(N)), with bands and the optimum.
    A grouped fit shows ``group`` (default: its first group)."""
    from .optimal import flops_per_token

    ax = _axes(ax)
    probs = intervals.check_probs(prob)
    f = flops_per_token(fit.law)
    if group is None and fit.runs.group is not None:
        group = fit.runs.groups[0]
    kw = {} if group is None else {"group": group}
    for i, budget in enumerate(np.atleast_1d(C)):
        opt = fit.compute_optimal(budget, prob=probs, **kw)
        n_opt = float(opt["N_opt_median"][0])
        grid = np.geomspace(n_opt / span, n_opt * span, 60)
        extra = {"U": budget / f(grid)} if "U" in fit.law.inputs else {}
        table = fit.predict(N=grid, D=budget / f(grid), prob=probs, **extra, **kw)
        _band(ax, grid, table, probs, f"C{i}", f"C = {budget:.2g}")
        ax.plot(n_opt, float(opt["loss_median"][0]), "k*", ms=9, zorder=4)
    ax.set(xscale="log", xlabel="parameters N", ylabel="loss",
           title="IsoFLOP profiles (star: median optimum)" + ("" if group is None else f", {group}"))
    ax.legend(fontsize=8)
    return ax


def plot_exponents(fit: ScalingFit, params: Sequence[str] | None = None, *, ax: Axes | None = None) -> Axes:
    """Joint posterior of two exponents (default: the law's first two named alpha*/beta*/c*)."""
    ax = _axes(ax)
    if params is None:
        params = [p for p in fit.law.params if p.startswith(("alpha", "beta", "c"))][:2]
    if len(params) != 2:
        raise ValueError(f"give two parameters to plot, e.g. params={list(fit.law.params[:2])}")
    missing = [p for p in params if p not in fit.posterior]
    if missing:
        raise ValueError(f"{missing} have no population value in this fit (pooling 'none'); plot another pair")
    x, y = (fit.draws(p) for p in params)
    if x.ndim > 1 or y.ndim > 1:
        raise ValueError(f"{params} vary by group; plot their population values or pick a group")
    ax.scatter(x, y, s=3, alpha=0.25, color="C0", lw=0)
    ax.axvline(np.median(x), color="k", lw=0.8)
    ax.axhline(np.median(y), color="k", lw=0.8)
    ax.set(xlabel=params[0], ylabel=params[1], title=f"joint posterior ({x.size} draws)")
    return ax


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
        ax.plot(c.curve.index, c.curve["coverage"], "o-", color=f"C{i}", ms=4,
                label=label or f"coverage ({c.kind})")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="nominal probability of the central interval",
           ylabel="share of held-out runs inside", title="calibration on held-out runs (equal-tailed intervals)")
    ax.legend(fontsize=8, loc="upper left")
    return ax


def plot_pit(cal: Calibration, *, ax: Axes | None = None, bins: int = 10) -> Axes:
    """Histogram of PIT values (the predictive probability below each observed loss): flat when the
    predictive is calibrated, U-shaped when too narrow, humped when too wide, tilted when biased."""
    ax = _axes(ax)
    pit = cal.points["pit"].to_numpy()
    ax.hist(pit, bins=np.linspace(0, 1, bins + 1), color="C0", alpha=0.7, edgecolor="white")
    ax.axhline(len(pit) / bins, color="0.4", ls="--", lw=0.8, label="calibrated")
    ax.set(xlim=(0, 1), xlabel="PIT (predictive probability below the observed loss)", ylabel="runs",
           title=f"PIT of {len(pit)} held-out runs")
    ax.legend(fontsize=8)
    return ax
