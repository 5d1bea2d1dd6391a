"""The observation model, defined once for the PyMC model, the predictive draws and the log density.

A run's observed loss relates to the law's curve by

    log(loss) = log(law(x)) + delta(x) + eps
    eps      ~ StudentT(nu, 0, sigma)   (or Normal(0, sigma)); sigma shared or one per group
    delta(x) = kappa * sigma * z * distance(x),   z ~ Normal(0, 1), one z per posterior draw

``eps`` is the scatter of runs around the curve. ``delta`` is the extrapolation discrepancy: how wrong the
law's form itself may be beyond the runs it was fitted on. ``distance(x)`` is in decades of the law's
inputs from the nearest fitted run, so ``delta`` is zero on the fitted runs and does not enter the
likelihood of the fit. It grows linearly with the distance (a wrong exponent errs linearly in log scale),
at ``kappa`` noise scales per decade: a law that describes its runs loosely is trusted less beyond them.
``kappa`` is common to all laws and datasets; its prior (``models/observation.toml``) is an
empirical-Bayes estimate from leave-future-out splits of real datasets (``benchmarks/calibration.py``).
One ``z`` per draw makes ``delta`` a tilt of the whole curve: points further out move further, in the
same direction, as the misses of a wrong law do.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import OptionError

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["LIKELIHOODS", "OBSERVED", "ObservationModel", "discrepancy_file", "distance", "flat_draws", "gaps"]

LIKELIHOODS = ("student_t", "normal")
#: Name of the observed log-loss variable (and of its log-likelihood).
OBSERVED = "log_loss"

#: Default priors of the noise parameters.
NOISE_PRIORS: dict[str, dict[str, Any]] = {
    "sigma": {"dist": "HalfNormal", "kwargs": {"sigma": 0.05}},
    "nu": {"dist": "Gamma", "kwargs": {"alpha": 2.0, "beta": 0.1}},
}


@cache
def discrepancy_file() -> dict[str, Any]:
    """``models/observation.toml``: the shipped prior of ``kappa`` and its provenance."""
    from .laws import laws_dir

    return tomllib.loads((laws_dir().parent / "observation.toml").read_text())


def flat_draws(values: np.ndarray) -> np.ndarray:
    """(chain, draw, ...) -> (chain * draw, ...)."""
    return values.reshape(-1, *values.shape[2:])


def gaps(points: Mapping[str, np.ndarray], design: Mapping[str, np.ndarray]) -> np.ndarray:
    """Distance in decades of the inputs (Euclidean in log10) between every point and every run of
    ``design``: points of any shape, runs (K,) -> shape (*points, K). Both map each input name to an array."""
    return np.sqrt(
        sum(
            np.square(np.log10(np.asarray(points[k], dtype=float))[..., None] - np.log10(np.asarray(v, dtype=float)))
            for k, v in design.items()
        )
    )


def distance(points: Mapping[str, np.ndarray], design: Mapping[str, np.ndarray]) -> np.ndarray:
    """Distance of each point from the nearest fitted run, in decades of the inputs (Euclidean in log10).

    ``points`` and ``design`` map each input name to an array (points, and fitted runs); 0 at a fitted run.
    """
    size = np.asarray(next(iter(points.values()))).shape[0]
    out = np.empty(size)
    for start in range(0, size, 512):  # bounded memory for many points against many runs
        chunk = {k: np.asarray(points[k])[start : start + 512] for k in design}
        out[start : start + 512] = gaps(chunk, design).min(axis=1)
    return out


@dataclass(frozen=True)
class ObservationModel:
    """Likelihood of the observed log-loss around the law, its noise parameters and the discrepancy.

    ``likelihood``: ``"student_t"`` (robust to outlying runs) or ``"normal"``; ``noise_by_group``: one
    ``sigma`` per group; ``discrepancy``: add the extrapolation discrepancy to predictions.
    """

    likelihood: str = "student_t"
    noise_by_group: bool = False
    discrepancy: bool = True

    def __post_init__(self) -> None:
        if self.likelihood not in LIKELIHOODS:
            raise OptionError(f"unknown likelihood {self.likelihood!r}; use one of {', '.join(LIKELIHOODS)}")

    @property
    def params(self) -> tuple[str, ...]:
        """Names of the noise parameters, which NUTS samples with the law's."""
        return ("sigma", "nu") if self.likelihood == "student_t" else ("sigma",)

    def default_priors(self) -> dict[str, dict[str, Any]]:
        """Default priors of the noise parameters and, with the discrepancy, of ``kappa``."""
        out = {k: NOISE_PRIORS[k] for k in self.params}
        if self.discrepancy:
            kappa = discrepancy_file()["kappa"]
            out["kappa"] = {"dist": kappa["dist"], "kwargs": dict(kappa["kwargs"])}
        return out

    # ---------------------------------------------------------------------------------------- PyMC
    def to_pymc(self, mu, observed, priors: Mapping, group_idx=None) -> None:
        """Add the noise parameters and the observed log-loss to the model in context."""
        import pymc as pm

        if self.noise_by_group:
            sigma = priors["sigma"].to_pymc("sigma", dims="group")[group_idx]
        else:
            sigma = priors["sigma"].to_pymc("sigma")
        if self.likelihood == "student_t":
            pm.StudentT(OBSERVED, nu=priors["nu"].to_pymc("nu"), mu=mu, sigma=sigma, observed=observed, dims="obs")
        else:
            pm.Normal(OBSERVED, mu=mu, sigma=sigma, observed=observed, dims="obs")

    # ---------------------------------------------------------------------------------------- numpy
    def noise(
        self, posterior: xr.Dataset, codes: np.ndarray | None, rng: np.random.Generator | None = None
    ) -> dict[str, np.ndarray]:
        """Noise parameters at each point: ``sigma`` (S, points) or (S, 1), ``nu`` (S, 1) for Student-t.

        With noise per group, a point of a group not in the data (negative code) takes, draw by draw,
        the sigma of a random known group."""
        sigma = flat_draws(posterior["sigma"].values)
        if sigma.ndim == 1:
            sigma = sigma[:, None]
        else:
            assert codes is not None, "noise per group needs the points' group codes"
            rng = np.random.default_rng() if rng is None else rng
            rows = np.arange(sigma.shape[0])
            at = sigma[:, np.maximum(codes, 0)]
            for code in np.unique(codes[codes < 0]):
                at[:, codes == code] = sigma[rows, rng.integers(sigma.shape[1], size=rows.size)][:, None]
            sigma = at
        out = {"sigma": sigma}
        if self.likelihood == "student_t":
            out["nu"] = flat_draws(posterior["nu"].values)[:, None]
        return out

    def logpdf(self, y: np.ndarray, mu: np.ndarray, noise: Mapping[str, np.ndarray]) -> np.ndarray:
        """Log density of observed log-loss ``y`` given the curve ``mu`` (draws x points) and the noise."""
        from scipy import special

        sigma = noise["sigma"]
        z2 = np.square((y - mu) / sigma)
        if self.likelihood == "student_t":  # scipy.stats.t.logpdf, without its per-element overhead
            nu = noise["nu"]
            const = special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2) - 0.5 * np.log(nu * np.pi) - np.log(sigma)
            return const - (nu + 1) / 2 * np.log1p(z2 / nu)
        return -0.5 * z2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)

    def sample(self, mu: np.ndarray, noise: Mapping[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """One observed log-loss per draw and point around ``mu``."""
        if self.likelihood == "student_t":
            eps = rng.standard_t(np.broadcast_to(noise["nu"], mu.shape))
        else:
            eps = rng.standard_normal(mu.shape)
        return mu + noise["sigma"] * eps

    def information_variance(self, noise: Mapping[str, np.ndarray]) -> np.ndarray:
        """The variance of the Normal likelihood that tells as much about the curve as this one does (the
        inverse Fisher information of its location), per draw: sigma^2, or sigma^2 (nu + 3) / (nu + 1) for
        Student-t, whose heavy tails make one run say less."""
        variance = np.square(noise["sigma"])
        return variance * (noise["nu"] + 3) / (noise["nu"] + 1) if self.likelihood == "student_t" else variance

    @staticmethod
    def delta(kappa: np.ndarray, sigma: np.ndarray, z: np.ndarray, dist: np.ndarray) -> np.ndarray:
        """The discrepancy kappa * sigma * z * distance: draws (S, 1) of kappa and z, sigma (S, 1) or
        (S, points), distances (points,) or (S, points) -> (S, points)."""
        return kappa * sigma * z * (dist if dist.ndim == 2 else dist[None, :])

    def predictive_logpdf(self, y: np.ndarray, mu: np.ndarray, noise: Mapping[str, np.ndarray]) -> np.ndarray:
        """Log of the posterior predictive density of ``y`` (points,): the mean over draws of the density."""
        from scipy import special

        return special.logsumexp(self.logpdf(y, mu, noise), axis=0) - np.log(mu.shape[0])
