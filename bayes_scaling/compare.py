"""Compare law forms: PSIS-LOO, leave-future-out backtests, and stacked predictions."""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from . import intervals
from .data import DEFAULT_COLUMNS, DataError, load_runs
from .result import ScalingFit

__all__ = ["compare", "backtest", "average", "Average", "PARETO_K_MAX"]

#: PSIS-LOO is unreliable for observations whose Pareto k exceeds this.
PARETO_K_MAX = 0.7


def _same_runs(fits: Mapping[str, ScalingFit]) -> None:
    names = list(fits)
    first = fits[names[0]].runs
    for name in names[1:]:
        other = fits[name].runs
        if len(other) != len(first) or not np.array_equal(other.loss, first.loss) or any(
            not np.array_equal(other.inputs[k], first.inputs[k]) for k in set(other.inputs) & set(first.inputs)
        ):
            raise DataError(f"fits {names[0]!r} and {name!r} were made on different runs; LOO compares fits of the same runs")


def compare(fits: Mapping[str, ScalingFit], *, method: str = "stacking") -> pd.DataFrame:
    """PSIS-LOO comparison of fits of the same runs (ArviZ's ``compare``), best first.

    Columns: ``rank``, ``elpd_loo`` (expected log predictive density of the log-loss), ``p_loo``,
    ``elpd_diff`` and ``dse`` against the best, ``se``, ``weight`` (stacking by default), and
    ``n_pareto_k_high``, the runs whose Pareto k exceeds 0.7 (a warning names the fits that have any).
    """
    import arviz_stats

    if len(fits) < 2:
        raise ValueError(f"compare needs at least two fits, got {len(fits)}")
    _same_runs(fits)
    trees = {name: fit.tree for name, fit in fits.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # we count and name the high Pareto k ourselves
        table = arviz_stats.compare(trees, method=method, round_to="none")
        high = {name: int((arviz_stats.loo(tree, pointwise=True).pareto_k.values > PARETO_K_MAX).sum())
                for name, tree in trees.items()}
    table = pd.DataFrame(table)
    table["n_pareto_k_high"] = [high[name] for name in table.index]
    flagged = {name: n for name, n in high.items() if n}
    if flagged:
        warnings.warn("PSIS-LOO is unreliable for " + ", ".join(f"{n} run(s) of {name!r}" for name, n in flagged.items())
                      + f" (Pareto k > {PARETO_K_MAX}); prefer a backtest or K-fold for these", stacklevel=2)
    keep = ["rank", "elpd", "p", "elpd_diff", "se", "dse", "weight", "n_pareto_k_high"]
    table = table[[c for c in keep if c in table]].rename(columns={"elpd": "elpd_loo", "p": "p_loo"})
    table.index.name = "law"
    return table


def _frame(runs: pd.DataFrame | str | Path) -> pd.DataFrame:
    if isinstance(runs, str | Path):
        if not Path(runs).is_file():
            raise DataError(f"no such file: {str(runs)!r}")
        return pd.read_csv(runs)
    if not isinstance(runs, pd.DataFrame):
        raise DataError(f"runs must be a pandas DataFrame or a CSV path, got {type(runs).__name__}")
    return runs


def _ordering(frame: pd.DataFrame, columns: Mapping[str, str] | None, by: str) -> np.ndarray:
    """Each run's position in the future: its compute (the C column, else 6 N D), or its N or D."""
    col = {**DEFAULT_COLUMNS, **(columns or {})}
    if by not in ("C", "N", "D"):
        raise ValueError(f"by must be 'C' (compute), 'N' or 'D', got {by!r}")

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
    ordered = np.sort(compute)
    cuts = []
    for h in np.atleast_1d(holdout):
        if not (np.isfinite(h) and h > 0):
            raise ValueError(f"holdout must be a fraction in (0, 1) or a compute threshold in FLOPs, got {h!r}")
        cut = float(ordered[len(ordered) - int(np.ceil(h * len(ordered))) - 1]) if h < 1 else float(h)
        if not (compute > cut).any() or (compute <= cut).sum() < 2:
            raise ValueError(f"holdout {h:g} leaves no runs to fit or none to score (the runs span {ordered[0]:.3g} "
                             f"to {ordered[-1]:.3g})")
        cuts.append(cut)
    return cuts


def score(fit: ScalingFit, runs: pd.DataFrame, *, prob: Sequence[float] = intervals.PROBS, seed: int | None = None
          ) -> dict[str, float]:
    """How well ``fit`` predicts ``runs`` it was not fitted on (they need their loss): the log predictive
    density of their log-loss (sum and mean per run), the share inside each predictive interval of a
    new run, and the median absolute percentage error of the median prediction."""
    rng = np.random.default_rng(seed)
    values, _, codes = fit._prediction_inputs(runs, {}, None)
    loss = load_runs(runs, inputs=(), columns={"loss": fit.runs.columns["loss"]}).loss  # checked like any loss
    lpd = logsumexp(fit.log_density(values, codes, loss, rng), axis=0) - np.log(len(fit.draws("sigma")))
    draws = fit.loss_draws(values, codes, kind="observation", seed=seed)
    bands = intervals.bounds(draws, prob)
    out = {"lpd": float(lpd.sum()), "lpd_per_run": float(lpd.mean())}
    for p in prob:
        lo, hi = bands[f"{intervals.label(p)}_lower"], bands[f"{intervals.label(p)}_upper"]
        out[f"coverage_{100 * p:g}"] = float(np.mean((loss >= lo) & (loss <= hi)))
    out["mdape"] = float(np.median(np.abs(bands["median"] / loss - 1)))
    return out


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
    **fit_kwargs: Any,
) -> pd.DataFrame:
    """Leave-future-out: fit each law on the runs with less compute, score its predictions of the rest.

    ``holdout``: a fraction of the runs (those with the most compute, default 0.2), a compute threshold
    in FLOPs, or a list of either for a rolling origin. ``by="N"`` (or ``"D"``) orders the runs by model
    size (or tokens) instead of compute. One row per cut and law: ``cut`` (FLOPs, or N or D),
    ``n_fit``, ``n_scored``, ``lpd`` and ``lpd_per_run`` (log predictive density of the held-out
    log-loss), ``coverage_50`` / ``coverage_90`` (held-out runs inside each predictive interval of a new
    run), ``mdape`` (median absolute percentage error of the median prediction), and the seconds spent
    compiling and sampling: refits of a law reuse its compiled model with the data swapped in.
    """
    from tqdm.auto import tqdm

    from .fit import fit

    frame = _frame(runs)
    compute = _ordering(frame, columns, by)
    bad = np.flatnonzero(~(np.isfinite(compute) & (compute > 0)))
    if bad.size:
        raise DataError(f"runs are ordered by {by}, which is missing, non-numeric or not positive in row {bad[0]}")
    cuts = _cuts(compute, holdout)
    probs = intervals.check_probs(prob)
    rows = []
    with tqdm(total=len(cuts) * len(laws), desc="backtest", disable=not progressbar) as bar:
        for cut in cuts:
            train, test = frame[compute <= cut], frame[compute > cut]
            for law in laws:
                bar.set_postfix_str(f"{law} @ {cut:.3g} FLOPs")
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # diagnostics are reported in the table
                    result = fit(train, law=law, columns=columns, group=group, seed=seed, progressbar=False,
                                 **fit_kwargs)
                d = result.diagnostics
                rows.append({"cut": cut, "law": law, "n_fit": len(train), "n_scored": len(test),
                             **score(result, test, prob=probs, seed=seed),
                             "divergences": d["divergences"], "max_r_hat": d["max_r_hat"],
                             "compile_seconds": result.settings["compile_seconds"],
                             "seconds": time.perf_counter() - start})
                bar.update()
    table = pd.DataFrame(rows)
    table.attrs.update(interval="equal-tailed", kind="observation")
    return table


class Average:
    """Posterior predictive mixture of several fits with fixed weights (see :func:`average`)."""

    def __init__(self, fits: Mapping[str, ScalingFit], weights: Mapping[str, float]) -> None:
        self.fits = dict(fits)
        total = sum(weights.values())
        self.weights = {name: weights[name] / total for name in self.fits}

    def predict(
        self,
        runs: pd.DataFrame | None = None,
        *,
        prob: float | tuple[float, ...] = intervals.PROBS,
        kind: str = "mean",
        group: str | Sequence[str] | None = None,
        seed: int | None = None,
        **inputs: Any,
    ) -> pd.DataFrame:
        """Like :meth:`ScalingFit.predict`, from the weighted mixture of the fits' predictive draws."""
        probs = intervals.check_probs(prob)
        rng = np.random.default_rng(seed)
        names = list(self.fits)
        draws, values = [], None
        for name in names:
            fit = self.fits[name]
            values, _, codes = fit._prediction_inputs(runs, inputs, group)
            draws.append(fit.loss_draws(values, codes, kind=kind, seed=seed))
        size = max(d.shape[0] for d in draws)
        which = rng.choice(len(names), size=size, p=[self.weights[n] for n in names])
        mixed = np.concatenate([draws[i][rng.integers(draws[i].shape[0], size=(which == i).sum())]
                                for i in range(len(names))])
        table = pd.DataFrame(values).assign(**intervals.bounds(mixed, probs))
        table.attrs.update(kind=kind, interval="equal-tailed", weights=self.weights)
        return table

    def __repr__(self) -> str:
        return "<Average " + ", ".join(f"{n}: {w:.3f}" for n, w in self.weights.items()) + ">"


def average(fits: Mapping[str, ScalingFit], *, weights: str | Mapping[str, float] = "stacking") -> Average:
    """Mix fits' predictions: by LOO stacking weights (``"stacking"``, default), by pseudo-BMA
    (``"pseudo-BMA"``... any ``compare`` method), or by weights you give, ``{name: weight}``."""
    if isinstance(weights, str):
        table = compare(fits, method=weights)
        weights = table["weight"].to_dict()
    unknown = set(weights) ^ set(fits)
    if unknown:
        raise ValueError(f"weights must name exactly the fits {sorted(fits)}; mismatch: {sorted(unknown)}")
    if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError(f"weights must be non-negative and not all zero, got {dict(weights)}")
    return Average(fits, weights)
