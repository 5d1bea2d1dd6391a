"""Calibration: do predictive intervals cover runs held out from the fit at their stated rate?

Layers: :func:`scores` (numpy: predictive draws and observations -> coverage, width, interval score, PIT,
bias) -> :func:`calibration` (a fit or an average and runs it did not see -> :class:`Calibration`)
-> ``plots.plot_calibration``, the report, the CLI's ``calibrate``. :func:`discrepancy_evidence` and
:func:`estimate_kappa` estimate the growth of the extrapolation discrepancy across datasets (empirical
Bayes over leave-future-out splits); ``benchmarks/calibration.py`` uses them to write the shipped prior.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import logsumexp

from . import intervals
from .errors import DataError, OptionError, generator
from .priors import Prior

__all__ = [
    "KAPPA_GRID",
    "RELIABILITY_PROBS",
    "Calibration",
    "KappaEstimate",
    "calibration",
    "discrepancy_evidence",
    "estimate_kappa",
    "interval_score",
    "kappa_posterior",
    "scores",
]

#: Nominal probabilities of the reliability curve (always with 0.5 and 0.9).
RELIABILITY_PROBS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
#: Values of kappa (discrepancy per decade, in noise scales) on which its likelihood is evaluated.
KAPPA_GRID = np.geomspace(0.01, 100.0, 321)


def interval_score(lower: np.ndarray, upper: np.ndarray, observed: np.ndarray, prob: float) -> np.ndarray:
    """Interval score of a central ``prob`` interval (Gneiting and Raftery 2007, eq. 43): its width plus
    2 / (1 - prob) times the distance by which the observation misses it. Lower is better."""
    alpha = 1 - prob
    return (
        (upper - lower)
        + 2 / alpha * np.clip(lower - observed, 0, None)
        + 2 / alpha * np.clip(observed - upper, 0, None)
    )


def scores(draws: np.ndarray, observed: np.ndarray, probs: Sequence[float] = RELIABILITY_PROBS) -> dict[str, Any]:
    """Per point and per probability, how predictive draws (S, points) meet observations (points,).

    Returns ``median`` (points,), ``pit`` (share of draws at or below the observation) and for each
    probability ``p`` the interval bounds (``eti90_lower`` ...), ``inside_eti90`` and
    ``interval_score_eti90``. Everything is in the units of the draws. (No CRPS: the predictive of a
    Student-t log-loss has no finite mean in loss units, so its CRPS does not exist.)
    """
    probs = sorted(set(intervals.check_probs(probs)))
    out: dict[str, Any] = intervals.bounds(draws, probs)
    out.update(intervals.inside(observed, out, probs))
    for p in probs:
        lab = intervals.label(p)
        out[f"interval_score_{lab}"] = interval_score(out[f"{lab}_lower"], out[f"{lab}_upper"], observed, p)
    out["pit"] = np.mean(draws <= observed, axis=0)
    return out


@dataclass(frozen=True)
class Calibration:
    """How a predictive distribution met held-out runs.

    ``points``: one row per run (inputs, group, distance from the fitted runs, observed, median,
    PIT, 50% and 90% bounds, inside or not). ``curve``: per nominal probability, the coverage
    (share of runs inside the central interval), the median width and the mean interval score.
    ``summary``: n, coverage at 50% and 90%, median 90% width, mean 90% interval score, MdAPE
    (median absolute percentage error of the median), MAE (mean absolute error of the median, in the
    target's units), bias (mean observed - median, in the target's units) and
    the mean log predictive density of the observed log-loss. ``draws``: the predictive draws at the
    runs, dims (chain, draw, point).
    """

    points: pd.DataFrame
    curve: pd.DataFrame
    summary: dict[str, float]
    kind: str
    draws: xr.DataArray

    def __repr__(self) -> str:
        s = self.summary
        return (
            f"<Calibration n={s['n']:.0f} coverage 50%: {s['coverage_50']:.2f}, 90%: {s['coverage_90']:.2f}; "
            f"90% width {s['width_90']:.4g}, interval score {s['interval_score_90']:.4g}, "
            f"MdAPE {100 * s['mdape']:.2f}% ({self.kind})>"
        )


def calibration(
    model: Any,
    runs: pd.DataFrame,
    *,
    probs: Sequence[float] = RELIABILITY_PROBS,
    kind: str = "observation",
    new_group: bool = False,
    seed: int | None = None,
) -> Calibration:
    """Check a fit's (or an :class:`~bayes_scaling.Average`'s) predictive against runs it was not fitted
    on: coverage of each central interval against its nominal probability (a reliability curve), PIT
    values, interval scores, MdAPE and bias.

    ``runs`` need the inputs and the loss column of the fitted runs (and the group column of a grouped
    fit; ``new_group=True`` lets them belong to groups the fit does not know). ``kind="observation"``
    (default) scores the predictive of a new run's observed loss, the right one for runs; ``"mean"``
    scores the band of the expected loss.
    """
    probs = tuple(sorted(set(intervals.check_probs(probs)) | {0.5, 0.9}))
    observed = model.checked_loss(runs)
    draws = model.predict_draws(runs, kind=kind, new_group=new_group, seed=seed)
    found = scores(intervals.sample_matrix(draws), observed, probs)
    points = intervals.summarize(draws, (0.5, 0.9), observed).assign(pit=found["pit"])
    curve = pd.DataFrame(
        {
            "coverage": [float(np.mean(found[f"inside_{intervals.label(p)}"])) for p in probs],
            "width": [
                float(np.median(found[f"{intervals.label(p)}_upper"] - found[f"{intervals.label(p)}_lower"]))
                for p in probs
            ],
            "interval_score": [float(np.mean(found[f"interval_score_{intervals.label(p)}"])) for p in probs],
        },
        index=pd.Index(probs, name="prob"),
    )
    lpd = model.log_predictive_density(runs, new_group=new_group, seed=seed)
    summary = {
        "n": float(len(observed)),
        "coverage_50": curve.loc[0.5, "coverage"],
        "coverage_90": curve.loc[0.9, "coverage"],
        "width_90": curve.loc[0.9, "width"],
        "interval_score_90": curve.loc[0.9, "interval_score"],
        "mdape": float(np.median(np.abs(found["median"] / observed - 1))),
        "mae": float(np.mean(np.abs(observed - found["median"]))),
        "bias": float(np.mean(observed - found["median"])),
        "lpd_per_run": float(np.mean(lpd)),
    }
    return Calibration(points=points, curve=curve, summary=summary, kind=kind, draws=draws)


# ---------------------------------------------------------------------------------------- the discrepancy
def discrepancy_evidence(fit: Any, runs: pd.DataFrame, *, seed: int | None = None) -> np.ndarray:
    """Log-likelihood of the discrepancy's ``kappa`` (on :data:`KAPPA_GRID`) from runs beyond a fit.

    The statistic is the tilt of the held-out runs: the weighted least-squares slope of their log-loss
    residuals (about the predictive median of the fitted law, without discrepancy) on their distance from
    the fitted runs, weighted by the inverse predictive variance. Under the observation model it is
    ``kappa * sigma * z`` plus the tilt the law's own uncertainty and the noise give, whose distribution
    is simulated from the posterior (a draw as the truth, a fresh draw of noise). The likelihood of
    ``kappa`` is that distribution convolved with Normal(0, kappa * sigma), sigma the fit's median noise.
    In a fit with groups, whose groups have their own tilt (:func:`bayes_scaling.result.discrepancy_draws`),
    each group's held-out runs give their own, and the groups' likelihoods multiply: tilts of random sign
    across groups tell of kappa's size where their average would cancel.
    """
    rng = generator(seed)
    values, _, codes = fit._prediction_inputs(runs, {}, None)
    y = fit.observation.link(fit.checked_loss(runs))
    marginal = fit.observation.noise(fit.posterior, codes, rng)
    mu, noise = fit._conditioned(values, codes, fit.curve(values, codes, rng), marginal, rng)
    sim = fit.observation.sample(mu, noise, rng)
    center = np.median(sim, axis=0)
    q75, q25 = np.quantile(sim, [0.75, 0.25], axis=0)
    weight = 1 / ((q75 - q25) / 1.349) ** 2
    dist = fit.distance(values, codes)
    if not np.any(dist > 0):
        raise DataError("every held-out run lies on a fitted run (distance 0): no extrapolation to learn from")
    order = rng.permutation(mu.shape[0])
    null_residuals = fit.observation.sample(mu[order], {k: v[order] for k, v in noise.items()}, rng) - center
    sigma = np.broadcast_to(marginal["sigma"], sim.shape)  # the discrepancy's unit
    z = fit.posterior.get("z")  # absent without a discrepancy; without a group dim in fits saved before
    per_group = codes is not None and (z is None or "group" in z.dims)
    parts = [codes == g for g in np.unique(codes)] if per_group else [slice(None)]
    evidence = np.zeros(KAPPA_GRID.size)
    for at in parts:
        if not np.any(dist[at] > 0):
            continue  # a group whose held-out runs all lie on its fitted runs tells nothing

        def tilt(residuals: np.ndarray, at: Any = at) -> np.ndarray:
            return (residuals[..., at] * weight[at] * dist[at]).sum(-1) / (weight[at] * dist[at] ** 2).sum()

        null, observed = tilt(null_residuals), tilt(y - center)
        q75, q25 = np.quantile(null, [0.75, 0.25])
        bandwidth = 1.06 * (q75 - q25) / 1.349 * null.size**-0.2
        sd = np.sqrt((KAPPA_GRID[:, None] * np.median(sigma[:, at])) ** 2 + bandwidth**2)
        logpdf = -0.5 * ((observed - null[None, :]) / sd) ** 2 - np.log(sd) - 0.5 * np.log(2 * np.pi)
        evidence += logsumexp(logpdf, axis=1) - np.log(null.size)
    return evidence


@dataclass(frozen=True)
class KappaEstimate:
    """The population of ``kappa`` across datasets: ``log kappa ~ Normal(mu, s)``, with a posterior over
    (mu, s); ``prior`` is the predictive for a new dataset, moment-matched to a LogNormal."""

    mu: float
    s: float
    n: int
    prior: Prior

    def __repr__(self) -> str:
        return (
            f"<KappaEstimate kappa ~ {self.prior} from {self.n} datasets; population median "
            f"{np.exp(self.mu):.2f}, spread {self.s:.2f} (log scale)>"
        )


def estimate_kappa(evidence: Sequence[np.ndarray] | Mapping[str, np.ndarray]) -> KappaEstimate:
    """Empirical-Bayes population of ``kappa`` from datasets' :func:`discrepancy_evidence`.

    Each dataset has its own ``kappa``; ``log kappa ~ Normal(mu, s)`` across datasets, with a flat prior on
    ``mu`` and HalfNormal(1) on ``s``, integrated on a grid. Returns the posterior means of ``mu`` and
    ``s`` and the predictive of ``kappa`` for a new dataset as a LogNormal.
    """
    curves = list(evidence.values()) if isinstance(evidence, Mapping) else list(evidence)
    if not curves:
        raise OptionError("estimate_kappa needs the evidence of at least one dataset")
    log_k = np.log(KAPPA_GRID)
    step = log_k[1] - log_k[0]
    mus = np.linspace(np.log(0.05), np.log(50.0), 121)
    ss = np.linspace(0.05, 3.0, 60)
    dens = (
        -0.5 * ((log_k[None, None, :] - mus[:, None, None]) / ss[None, :, None]) ** 2
        - np.log(ss[None, :, None])
        - 0.5 * np.log(2 * np.pi)
    )  # (mu, s, grid)
    logpost = -0.5 * ss[None, :] ** 2  # HalfNormal(1) on s, flat on mu
    for curve in curves:
        logpost = logpost + logsumexp(dens + curve[None, None, :], axis=2) + np.log(step)
    w = np.exp(logpost - logpost.max())
    w /= w.sum()
    mu_mean = float((w.sum(1) * mus).sum())
    var = float((w * ((mus[:, None] - mu_mean) ** 2 + ss[None, :] ** 2)).sum())
    s_mean = float((w.sum(0) * ss).sum())
    prior = Prior("LogNormal", {"mu": round(mu_mean, 3), "sigma": round(float(np.sqrt(var)), 3)})
    return KappaEstimate(mu=mu_mean, s=s_mean, n=len(curves), prior=prior)


def kappa_posterior(evidence: np.ndarray, prior: Prior | Any) -> Prior:
    """One dataset's ``kappa`` given its :func:`discrepancy_evidence` and a prior (a :class:`Prior` or a spec,
    such as the fit's ``fit.priors["kappa"]``): the posterior on :data:`KAPPA_GRID`, moment-matched on the
    log scale to a LogNormal. For more runs of the same dataset, whose finished runs told how far its law
    strays; :func:`estimate_kappa` gives the prior for datasets not yet seen."""
    prior = prior if isinstance(prior, Prior) else Prior.from_spec("kappa", prior)
    evidence = np.asarray(evidence, dtype=float)
    if evidence.shape != KAPPA_GRID.shape:
        raise OptionError(
            f"evidence must be discrepancy_evidence's {KAPPA_GRID.size} values, got shape {evidence.shape}"
        )
    log_k = np.log(KAPPA_GRID)
    with np.errstate(divide="ignore"):
        log_post = evidence + prior.scipy().logpdf(KAPPA_GRID) + log_k  # the prior's density in log kappa
    w = np.exp(log_post - log_post.max())
    w /= w.sum()
    mean = float((w * log_k).sum())
    sd = float(np.sqrt((w * (log_k - mean) ** 2).sum()))
    return Prior("LogNormal", {"mu": round(mean, 3), "sigma": round(max(sd, 1e-3), 3)})
