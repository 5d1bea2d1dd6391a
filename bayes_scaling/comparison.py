"""Compare law forms: PSIS-LOO, leave-future-out backtests, and stacked predictions."""

from __future__ import annotations

import inspect
import logging
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import optimize
from scipy.special import logsumexp

from . import intervals
from .data import DEFAULT_COLUMNS, read_table
from .errors import BayesScalingError, DataError, OptionError, generator
from .laws import load_law
from .parallel import Outcome, raise_if_all_failed, run_tasks
from .result import ScalingFit

log = logging.getLogger("bayes_scaling")

__all__ = ["PARETO_K_MAX", "Average", "average", "backtest", "compare", "split_future", "stack", "stacking_weights"]

#: PSIS-LOO is unreliable for observations whose Pareto k exceeds this.
PARETO_K_MAX = 0.7


#: Ways of weighing fits by their LOO scores (ArviZ's compare methods).
METHODS = ("stacking", "bb-pseudo-bma", "pseudo-bma")


def _same_runs(fits: Mapping[str, ScalingFit]) -> None:
    if not isinstance(fits, Mapping) or not all(isinstance(f, ScalingFit) for f in fits.values()):
        raise OptionError(f"fits must be a mapping of name to ScalingFit, like {{'chinchilla': fit}}; got {fits!r:.80}")
    names = list(fits)
    first = fits[names[0]].runs
    for name in names[1:]:
        other = fits[name].runs
        if (
            len(other) != len(first)
            or fits[name].law.target != fits[names[0]].law.target
            or not np.array_equal(other.loss, first.loss)
            or any(not np.array_equal(other.inputs[k], first.inputs[k]) for k in set(other.inputs) & set(first.inputs))
        ):
            raise DataError(
                f"fits {names[0]!r} and {name!r} were made on different runs; LOO compares fits of the same runs"
            )


def compare(fits: Mapping[str, ScalingFit], *, method: str = "stacking") -> pd.DataFrame:
    """PSIS-LOO comparison of fits of the same runs (ArviZ's ``compare``), best first.

    Columns: ``rank``, ``elpd_loo`` (expected log predictive density of the log-loss), ``p_loo``,
    ``elpd_diff`` and ``dse`` against the best, ``se``, ``weight`` (stacking by default), and
    ``n_pareto_k_high``, the runs whose Pareto k exceeds 0.7 (a warning names the fits that have any).
    """
    import arviz_stats

    _same_runs(fits)
    if len(fits) < 2:
        raise OptionError(f"compare needs at least two fits, got {len(fits)}")
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise OptionError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    along = sorted(name for name, fit in fits.items() if fit.observation.autocorrelated)
    if along:
        warnings.warn(
            f"{', '.join(map(repr, along))}: noise autocorrelated within groups, so PSIS-LOO leaves out one "
            "checkpoint's term given the one before, not the checkpoint: a neighbour still tells of it. Prefer a "
            "backtest (bs.backtest) that holds out each group's later checkpoints",
            stacklevel=2,
        )
    trees = {name: fit.tree for name, fit in fits.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # we count and name the high Pareto k ourselves
        table = arviz_stats.compare(trees, method=method, round_to="none")
        high = {
            name: int((arviz_stats.loo(tree, pointwise=True).pareto_k.values > PARETO_K_MAX).sum())
            for name, tree in trees.items()
        }
    table = pd.DataFrame(table)
    table["n_pareto_k_high"] = [high[name] for name in table.index]
    flagged = {name: n for name, n in high.items() if n}
    if flagged:
        warnings.warn(
            "PSIS-LOO is unreliable for "
            + ", ".join(f"{n} run(s) of {name!r}" for name, n in flagged.items())
            + f" (Pareto k > {PARETO_K_MAX}); prefer a backtest or K-fold for these",
            stacklevel=2,
        )
    keep = ["rank", "elpd", "p", "elpd_diff", "se", "dse", "weight", "n_pareto_k_high"]
    table = table[[c for c in keep if c in table]].rename(columns={"elpd": "elpd_loo", "p": "p_loo"})
    table.index.name = "law"
    return table


def _ordering(frame: pd.DataFrame, columns: Mapping[str, str] | None, by: str) -> np.ndarray:
    """Each run's position in the future: its compute (the C column, else 6 N D), or its N or D."""
    if columns is not None and not isinstance(columns, Mapping):
        raise OptionError(f"columns must map keys to column names, like {{'N': 'params'}}; got {columns!r:.80}")
    col = {**DEFAULT_COLUMNS, **(columns or {})}
    if by not in ("C", "N", "D"):
        raise OptionError(f"by must be 'C' (compute), 'N' or 'D', got {by!r}")

    def values(key: str) -> np.ndarray:
        return pd.to_numeric(frame[col[key]], errors="coerce").to_numpy(float)

    if by == "C" and col["C"] not in frame and col["N"] in frame and col["D"] in frame:
        return 6 * values("N") * values("D")
    if col[by] not in frame:
        raise DataError(f"a backtest by {by} needs the column {col[by]!r}")
    return values(by)


def _cuts(compute: np.ndarray, holdout: float | Sequence[float]) -> list[float]:
    """Thresholds: runs at or below are fitted, runs above are held out. A holdout in (0, 1) holds out that
    fraction of the runs furthest in the future; a larger number is a threshold (FLOPs, parameters or tokens)."""
    try:
        holdouts = np.atleast_1d(np.asarray(holdout, dtype=float))
    except (TypeError, ValueError, OverflowError):
        holdouts = np.empty((0, 0))
    if holdouts.ndim != 1 or not holdouts.size:
        raise OptionError(f"holdout must be a fraction in (0, 1) or a compute threshold (or a list), got {holdout!r}")
    if not compute.size:
        raise DataError("no runs to split")
    ordered = np.sort(compute)
    cuts = []
    for h in holdouts:
        if not (np.isfinite(h) and h > 0):
            raise OptionError(f"holdout must be a fraction in (0, 1) or a compute threshold in FLOPs, got {h!r}")
        cut = float(ordered[len(ordered) - int(np.ceil(h * len(ordered))) - 1]) if h < 1 else float(h)
        if not (compute > cut).any() or (compute <= cut).sum() < 2:
            raise OptionError(
                f"holdout {h:g} leaves no runs to fit or none to score (the runs span {ordered[0]:.3g} "
                f"to {ordered[-1]:.3g})"
            )
        cuts.append(cut)
    return cuts


def split_future(
    runs: pd.DataFrame | str | Path, holdout: float, *, by: str = "C", columns: Mapping[str, str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs to fit, runs held out): ``holdout`` is a fraction of the runs furthest in the future (by
    compute, or ``by="N"`` / ``"D"``) or a threshold; the runs above it are held out."""
    frame = read_table(runs)
    order = _checked_ordering(frame, columns, by)
    (cut,) = _cuts(order, [holdout])
    return frame[order <= cut], frame[order > cut]


def _checked_ordering(frame: pd.DataFrame, columns: Mapping[str, str] | None, by: str) -> np.ndarray:
    order = _ordering(frame, columns, by)
    bad = np.flatnonzero(~(np.isfinite(order) & (order > 0)))
    if bad.size:
        raise DataError(f"runs are ordered by {by}, which is missing, non-numeric or not positive in row {bad[0]}")
    return order


def score(
    fit: ScalingFit | Average, runs: pd.DataFrame, *, prob: Sequence[float] = intervals.PROBS, seed: int | None = None
) -> dict[str, float]:
    """How well a fit predicts ``runs`` it was not fitted on (they need their loss): the log predictive
    density of their log-loss (sum and mean per run), the share inside each predictive interval of a
    new run, the 90% interval's median width and mean interval score, MdAPE and bias
    (see :func:`~bayes_scaling.calibrate.calibration`)."""
    from .calibrate import calibration

    cal = calibration(fit, runs, probs=prob, seed=seed)
    out = {"lpd": cal.summary["lpd_per_run"] * cal.summary["n"], "lpd_per_run": cal.summary["lpd_per_run"]}
    out.update({f"coverage_{100 * p:g}": cal.curve.loc[p, "coverage"] for p in intervals.check_probs(prob)})
    out.update({k: cal.summary[k] for k in ("width_90", "interval_score_90", "mdape", "bias")})
    return out


def _lfo_task(task: tuple) -> Any:
    """One leave-future-out fit (here or on a worker): fit ``law`` on ``train``, then ``scorer(result, test,
    seconds)``; only the scorer's small result travels back."""
    from .fitting import fit

    scorer, law, train, test, options = task
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # diagnostics are reported in the tables
        result = fit(train, law=law, progressbar=False, **options)
    return scorer(result, test, time.perf_counter() - start)


def _checked_laws(laws: Any) -> None:
    """``laws`` must be a list of laws, each a name, a law file or a Law (a bad one is named here, before
    any fit)."""
    if isinstance(laws, str) or not isinstance(laws, Sequence) or not laws:
        raise OptionError(f"laws must be a list of law names (or files, or Laws), got {laws!r:.80}")
    for law in laws:
        load_law(law)


def _leave_future_out(
    runs: pd.DataFrame | str | Path,
    laws: Sequence[str],
    holdout: float | Sequence[float],
    by: str,
    scorer: Callable[[ScalingFit, pd.DataFrame, float], Any],
    desc: str,
    fit_options: dict[str, Any],
    client: Any,
    progressbar: bool,
) -> list[tuple[float, str, Outcome]]:
    """For each cut and law: (cut, law, the outcome of ``scorer`` on the fit of the runs at or below the cut
    and the runs above). In this process, refits of a law reuse its compiled model with the data swapped in;
    on a cluster (``client``), each worker compiles a law once."""
    if client is not None and "cache" in fit_options:
        raise OptionError("cache= holds this process's compiled models; with client=, each worker keeps its own")
    from .fitting import fit

    unknown = sorted(set(fit_options) - set(inspect.signature(fit).parameters))
    if unknown:
        raise OptionError(f"unknown option(s) {unknown} for the fits (bs.fit's keywords)")
    frame = read_table(runs)
    compute = _checked_ordering(frame, fit_options.get("columns"), by)
    pairs = [(cut, law) for cut in _cuts(compute, holdout) for law in laws]
    tasks = [(scorer, law, frame[compute <= cut], frame[compute > cut], fit_options) for cut, law in pairs]
    outcomes = run_tasks(_lfo_task, tasks, client=client, desc=desc, progressbar=progressbar)
    raise_if_all_failed(outcomes)
    return [(cut, law, outcome) for (cut, law), outcome in zip(pairs, outcomes, strict=True)]


def _backtest_row(result: ScalingFit, test: pd.DataFrame, seconds: float, probs: tuple, seed: int | None) -> dict:
    d = result.diagnostics
    return {
        "n_fit": len(result.runs),
        "n_scored": len(test),
        **score(result, test, prob=probs, seed=seed),
        "divergences": d["divergences"],
        "max_r_hat": d["max_r_hat"],
        "problems": "; ".join(result.problems),
        "compile_seconds": result.settings["compile_seconds"],
        "seconds": seconds,
    }


def _stack_scores(result: ScalingFit, test: pd.DataFrame, seconds: float, seed: int | None, group: str | None) -> tuple:
    inside = result.predict(test, prob=0.9, kind="observation", seed=seed)["inside_eti90"].to_numpy()
    labels = test[group].to_numpy() if group is not None else np.zeros(len(test))
    return result.log_predictive_density(test, seed=seed), inside, labels


def backtest(
    runs: pd.DataFrame | str | Path,
    *,
    laws: Sequence[str],
    holdout: float | Sequence[float] = 0.2,
    by: str = "C",
    prob: Sequence[float] = intervals.PROBS,
    columns: Mapping[str, str] | None = None,
    group: str | None = None,
    seed: int | None = None,
    progressbar: bool = True,
    client: Any = None,
    **fit_kwargs: Any,
) -> pd.DataFrame:
    """Leave-future-out: fit each law on the runs with less compute, score its predictions of the rest.

    ``holdout``: a fraction of the runs (those with the most compute, default 0.2), a compute threshold
    in FLOPs, or a list of either for a rolling origin. ``by="N"`` (or ``"D"``) orders the runs by model
    size (or tokens) instead of compute. One row per cut and law: ``cut`` (FLOPs, or N or D),
    ``n_fit``, ``n_scored``, ``lpd`` and ``lpd_per_run`` (log predictive density of the held-out
    log-loss), ``coverage_50`` / ``coverage_90`` (held-out runs inside each predictive interval of a new
    run), the 90% interval's median ``width_90`` and mean ``interval_score_90``, ``mdape``
    (median absolute percentage error of the median prediction), ``bias`` (observed - median), and the
    seconds spent compiling and sampling: refits of a law reuse its compiled model with the data swapped in.
    ``problems`` names each failed convergence check of the row's fit (empty when it converged); ``error``
    says why a row's fit failed (its scores are then missing; with ``strict=True`` an unconverged fit fails
    with :class:`ConvergenceError`): one failed fit does not stop the others. ``client``: where the fits run,
    this process (None) or a Dask cluster (``"local"``, an address or a Client; see
    :mod:`bayes_scaling.parallel`).
    """
    probs = intervals.check_probs(prob)
    _checked_laws(laws)
    options = {"columns": columns, "group": group, "seed": seed, **fit_kwargs}
    scorer = partial(_backtest_row, probs=probs, seed=seed)
    outcomes = _leave_future_out(runs, laws, holdout, by, scorer, "backtest", options, client, progressbar)
    rows = [{"cut": cut, "law": law, **(o.value or {}), "error": o.error or ""} for cut, law, o in outcomes]
    table = pd.DataFrame(rows)
    table.attrs.update(interval="equal-tailed", kind="observation")
    return table


def stacking_weights(lpd: np.ndarray) -> np.ndarray:
    """Weights on the simplex maximising the summed log score of the mixture, sum_i log sum_k w_k p_k(y_i)
    (Yao et al. 2018), from log predictive densities of shape (laws, predictions)."""
    k = lpd.shape[0]
    if k == 1:
        return np.ones(1)
    shift = lpd.max(axis=0)
    dens = np.exp(lpd - shift)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = np.exp(np.append(theta, 0.0) - logsumexp(np.append(theta, 0.0)))
        mix = w @ dens
        grad_w = -(dens / mix).sum(axis=1)
        grad = w * (grad_w - w @ grad_w)  # through the softmax
        return -float(np.log(mix).sum()), grad[:-1]

    found = optimize.minimize(loss, np.zeros(k - 1), jac=True, method="L-BFGS-B")
    return np.exp(np.append(found.x, 0.0) - logsumexp(np.append(found.x, 0.0)))


def stack(
    runs: pd.DataFrame | str | Path,
    *,
    laws: Sequence[str],
    holdout: float | Sequence[float] = (0.4, 0.3, 0.2),
    by: str = "C",
    columns: Mapping[str, str] | None = None,
    group: str | None = None,
    seed: int | None = None,
    progressbar: bool = True,
    client: Any = None,
    **fit_kwargs: Any,
) -> Average:
    """Stack law forms by how well they predicted the future: leave-future-out stacking weights, and the
    mixture of the laws' fits of all the runs.

    For each ``holdout`` cut (as in :func:`backtest`: fractions of the runs with the most compute, or
    thresholds) each law is fitted on the runs below it and scores, by log predictive density of a new
    run with its discrepancy, the runs above. The weights maximise the log score of the mixture over
    all those predictions (Yao, Vehtari, Simpson and Gelman 2018, with leave-future-out in place of LOO,
    which rewards interpolation). Then each law is fitted on every run. Returns an :class:`Average`
    whose ``lfo`` table gives each law's summed leave-future-out log score (``elpd_lfo``), its
    coverage of the held-out runs at 90% and its weight; ``predict`` gives the stacked predictive. With a
    ``group`` column, ``lfo_groups`` gives the same per group (index: group, law), each group's weights
    stacked from its own held-out runs: which form predicted each group's future best (few held-out
    runs per group make these weights coarse; the mixture uses the pooled weights).
    ``client``: where the leave-future-out fits run, as in :func:`backtest`.
    """
    from .fitting import fit

    _checked_laws(laws)
    if len(laws) < 2 or len(set(laws)) != len(laws):
        raise OptionError(f"stack needs at least two different laws, got {list(laws)}")
    options = {"columns": columns, "group": group, "seed": seed, **fit_kwargs}
    scorer = partial(_stack_scores, seed=seed, group=group)
    outcomes = _leave_future_out(runs, laws, holdout, by, scorer, "stack", options, client, progressbar)
    failed = [f"{law} at cut {cut:.3g}: {outcome.error}" for cut, law, outcome in outcomes if outcome.error]
    if failed:  # weights need every law's predictions of the same runs
        raise BayesScalingError(f"stack: leave-future-out fit(s) failed, so no weights: {'; '.join(failed)}")
    scores = {law: [o.value for _, name, o in outcomes if name == law] for law in laws}
    matrix, inside, labels = (np.stack([np.concatenate([v[i] for v in scores[law]]) for law in laws]) for i in range(3))
    weights = stacking_weights(matrix)
    fits = {}
    for law in laws:  # each fit warns, by name, on its own checks
        fits[law] = fit(
            read_table(runs), law=law, columns=columns, group=group, seed=seed, progressbar=False, **fit_kwargs
        )
    stacked = Average(fits, dict(zip(laws, weights, strict=True)))
    stacked.lfo = _lfo_table(matrix, inside, weights, laws)
    if group is not None:
        by_group = {g: labels[0] == g for g in pd.unique(labels[0])}
        stacked.lfo_groups = pd.concat(
            {
                g: _lfo_table(matrix[:, m], inside[:, m], stacking_weights(matrix[:, m]), laws)
                for g, m in by_group.items()
            },
            names=[group],
        )
    return stacked


def _lfo_table(lpd: np.ndarray, inside: np.ndarray, weights: np.ndarray, laws: Sequence[str]) -> pd.DataFrame:
    """Each law's summed leave-future-out log score, predictions, 90% coverage and stacking weight."""
    return pd.DataFrame(
        {
            "elpd_lfo": lpd.sum(axis=1),
            "n_predictions": lpd.shape[1],
            "coverage_90": inside.mean(axis=1),
            "weight": weights,
        },
        index=pd.Index(laws, name="law"),
    )


class Average:
    """Posterior predictive mixture of several fits with fixed weights (see :func:`average`)."""

    def __init__(self, fits: Mapping[str, ScalingFit], weights: Mapping[str, float]) -> None:
        _same_runs(fits)
        if not isinstance(weights, Mapping) or set(weights) ^ set(fits):
            raise OptionError(f"weights must name exactly the fits {sorted(fits)}, got {weights!r:.80}")
        numbers = [w for w in weights.values() if isinstance(w, int | float) and not isinstance(w, bool)]
        if len(numbers) < len(weights) or not all(0 <= w < np.inf for w in numbers) or sum(numbers) <= 0:
            raise OptionError(f"weights must be finite, non-negative and not all zero, got {dict(weights)}")
        self.fits = dict(fits)
        total = sum(weights.values())
        self.weights = {name: weights[name] / total for name in self.fits}
        self.lfo: pd.DataFrame | None = None  # set by stack(): each law's leave-future-out score
        self.lfo_groups: pd.DataFrame | None = None  # ... and per group, when stacked with a group column

    def predict_draws(
        self,
        runs: pd.DataFrame | None = None,
        *,
        kind: str = "mean",
        group: str | Sequence[str] | None = None,
        new_group: bool = False,
        seed: int | None = None,
        **inputs: Any,
    ) -> xr.DataArray:
        """Draws of the loss from the weighted mixture of the fits' predictives: dims (chain, draw, point),
        the mixture's draws in one chain; coordinates as in :meth:`ScalingFit.predict_draws`."""
        rng = generator(seed)
        names = list(self.fits)
        parts = [
            self.fits[name].predict_draws(runs, kind=kind, group=group, new_group=new_group, seed=seed, **inputs)
            for name in names
        ]
        flat = [intervals.sample_matrix(p) for p in parts]
        size = max(len(f) for f in flat)
        which = rng.choice(len(names), size=size, p=[self.weights[n] for n in names])
        mixed = np.concatenate([f[rng.integers(len(f), size=(which == i).sum())] for i, f in enumerate(flat)])
        point = {k: v for k, v in parts[0].coords.items() if v.dims == ("point",)}
        return xr.DataArray(
            mixed[None],
            dims=("chain", "draw", "point"),
            name="loss",
            coords={"chain": [0], "draw": np.arange(size), **point},
            attrs={"kind": kind, "weights": str(self.weights)},
        )

    def log_predictive_density(
        self, runs: pd.DataFrame, *, new_group: bool = False, seed: int | None = None
    ) -> np.ndarray:
        """Log predictive density of each run's observed log-loss under the mixture."""
        names = list(self.fits)
        logp = np.stack([self.fits[n].log_predictive_density(runs, new_group=new_group, seed=seed) for n in names])
        return logsumexp(logp + np.log([max(self.weights[n], 1e-300) for n in names])[:, None], axis=0)

    def checked_loss(self, runs: pd.DataFrame) -> np.ndarray:
        return next(iter(self.fits.values())).checked_loss(runs)

    def predict(
        self,
        runs: pd.DataFrame | None = None,
        *,
        prob: float | tuple[float, ...] = intervals.PROBS,
        kind: str = "mean",
        group: str | Sequence[str] | None = None,
        new_group: bool = False,
        seed: int | None = None,
        **inputs: Any,
    ) -> pd.DataFrame:
        """Like :meth:`ScalingFit.predict`, from the weighted mixture of the fits' predictive draws."""
        probs = intervals.check_probs(prob)
        draws = self.predict_draws(runs, kind=kind, group=group, new_group=new_group, seed=seed, **inputs)
        table = intervals.summarize(draws, probs, next(iter(self.fits.values())).observed_loss(runs))
        table.attrs.update(kind=kind, weights=self.weights)
        return table

    def __repr__(self) -> str:
        return "<Average " + ", ".join(f"{n}: {w:.3f}" for n, w in self.weights.items()) + ">"


def average(fits: Mapping[str, ScalingFit], *, weights: str | Mapping[str, float] = "stacking") -> Average:
    """Mix fits' predictions: by LOO stacking weights (``"stacking"``, default), by pseudo-BMA
    (``"pseudo-BMA"``... any ``compare`` method), or by weights you give, ``{name: weight}``."""
    chosen = compare(fits, method=weights)["weight"].to_dict() if isinstance(weights, str) else weights
    return Average(fits, chosen)
