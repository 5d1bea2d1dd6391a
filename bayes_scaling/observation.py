"""The observation model, defined once for the PyMC model, the predictive draws and the log density.

A run's observed target (its loss, by default) relates to the law's curve by

    link(y)  = link(law(x)) + delta(x) + eps
    eps      ~ StudentT(nu, 0, sigma)   (or Normal(0, sigma)); sigma shared or one per group
    delta(x) = kappa * sigma * z * distance(x),   z ~ Normal(0, 1), one z per posterior draw (and group)

``eps`` is the scatter of runs around the curve. Checkpoints of one run are not independent: a run that
lies above the curve at one step lies above it at the next. With ``autocorrelated="S"`` (an input of the
law) the ``eps`` of each group's runs follow an Ornstein-Uhlenbeck process along ``log10(S)``: correlation
``rho = exp(-gap / ell)`` between points ``gap`` decades apart, ``ell`` a parameter. Markov, so the
likelihood is a product of one-step conditionals (:meth:`ObservationModel.conditional`): each point given
the one before it in its group, ``Normal`` or Student-t with location ``law + rho * (residual before)`` and
scale ``sigma * sqrt(1 - rho^2)`` (with Student-t steps, a heavy-tailed process with the same correlations,
not a Gaussian one); a prediction is conditioned on its group's fitted point nearest before it (exact beyond
the group's last one: a run's final loss from its early checkpoints). PSIS-LOO of such a fit leaves out one
point's conditional term, not the point: compare such fits with backtests.

An accuracy scored on ``n`` items may instead take the binomial likelihood: ``eps ~ Normal(0, sigma)``
gives the run's own accuracy and its score is ``Binomial(n, that accuracy) / n`` (:func:`binomial_logpmf`).
With the number of items unknown, the beta likelihood is its continuous twin: the accuracy is
``Beta(p phi, (1 - p) phi)`` about the law's ``p``, with a precision ``phi = 4 / sigma^2`` (a benchmark of
about ``phi`` items), so ``sigma`` is its spread on the logit scale at ``p = 1/2`` and the spread grows
towards the bounds as a score's sampling noise does (:func:`beta_logpdf`).

``delta`` is the extrapolation discrepancy: how wrong the law's form itself may be beyond the runs it was
fitted on. ``distance(x)`` is in decades of the law's inputs from the nearest fitted run, so ``delta`` is
zero on the fitted runs and does not enter the likelihood of the fit. It grows linearly with the distance (a
wrong exponent errs linearly in log scale), at ``kappa`` noise scales per decade: a law that describes its
runs loosely is trusted less beyond them. ``kappa`` is common to all laws and datasets; its prior
(``models/observation.toml``) is an empirical-Bayes estimate from leave-future-out splits of real datasets
(``benchmarks/calibration.py``). One ``z`` per draw makes ``delta`` a tilt of the whole curve: points
further out move further, in the same direction, as the misses of a wrong law do. In a fit with groups each
group has its own ``z``: the curves of different datasets, tasks or runs err beyond their runs in their own
directions (a group not in the data gets a fresh one).

The law file declares its target's kind, which fixes the link (``TARGETS``): ``positive`` (a loss,
bits per byte; ``log``, so the noise is relative), ``real`` (Elo, a log-likelihood, a loss less its
floor; the identity, so the noise is in the target's units) or ``bounded`` in (0, 1) (accuracy, an
error rate; ``logit``, so the noise shrinks near the bounds and no draw leaves them).
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import DataError, GroupError, OptionError

if TYPE_CHECKING:
    import xarray as xr

    from .data import RunTable

__all__ = [
    "LIKELIHOODS",
    "TARGETS",
    "ObservationModel",
    "beta_logpdf",
    "beta_shapes",
    "binomial_logpmf",
    "discrepancy_file",
    "distance",
    "flat_draws",
    "gaps",
    "outside_support",
    "predecessors",
    "run_lags",
]

LIKELIHOODS = ("student_t", "normal", "binomial", "beta")
#: Kinds of target, each with the name of its observed variable on the model's scale (and of its
#: log-likelihood) and the values it can take.
TARGETS: dict[str, tuple[str, str]] = {
    "positive": ("log_loss", "positive"),
    "real": ("y", "finite"),
    "bounded": ("logit_y", "strictly between 0 and 1 (move a score of 0 or 1 on n items half an item inside)"),
}

#: Default priors of the noise parameters.
NOISE_PRIORS: dict[str, dict[str, Any]] = {
    "sigma": {"dist": "HalfNormal", "kwargs": {"sigma": 0.05}},
    "nu": {"dist": "Gamma", "kwargs": {"alpha": 2.0, "beta": 0.1}},
    # correlation length of autocorrelated noise, in decades: median 1, 90% between 0.08 and 12
    "ell": {"dist": "LogNormal", "kwargs": {"mu": 0.0, "sigma": 1.5}},
}
#: The gap (decades) given to a point with no predecessor in its group: its correlation exp(-gap / ell) is 0.
NO_PREDECESSOR = 1e6


#: Adaptive Gauss-Hermite quadrature of the binomial likelihood's run scatter: standard normal nodes and
#: log weights, and the Newton steps that centre them on the integrand's mode.
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(12)
_LOG_WEIGHTS = np.log(_WEIGHTS / _WEIGHTS.sum())
_NEWTON_STEPS = 3


def _special(xp: Any) -> tuple[Any, Any, Any]:
    """expit, softplus and log-gamma of numpy (scipy's) or of ``xp=pytensor.tensor``."""
    if xp is np:
        from scipy import special

        return special.expit, lambda x: np.logaddexp(0.0, x), special.gammaln
    return xp.sigmoid, xp.softplus, xp.gammaln


def binomial_logpmf(k: Any, n: Any, mu: Any, sigma: Any, xp: Any = np) -> Any:
    """log P(``k`` of ``n`` items right) when a run's true accuracy is ``expit(eta)``, ``eta ~ Normal(mu,
    sigma)`` (the law on the logit scale and the runs' scatter about it), with ``eta`` integrated out by
    adaptive Gauss-Hermite quadrature: 12 nodes about the integrand's mode (3 Newton steps from the
    Gaussian approximation), scaled by its curvature there. Relative error below 1e-6 against brute-force
    integration for 32 to 58,000 items, also far from the mode (tests/test_targets.py). ``k`` may be
    fractional (a score averaged over seeds); numpy arrays, or ``xp=pytensor.tensor`` inside the model."""
    expit, softplus, gammaln = _special(xp)
    precision = 1.0 / xp.square(sigma)
    # start: the binomial likelihood as a normal in logit(accuracy), times the normal of the runs' scatter
    observed = (k + 0.5) * (n - k + 0.5) / (n + 1.0)  # its precision
    mode = (mu * precision + (xp.log(k + 0.5) - xp.log(n - k + 0.5)) * observed) / (precision + observed)
    for _ in range(_NEWTON_STEPS):
        p = expit(mode)
        mode = mode + (k - n * p - (mode - mu) * precision) / (precision + n * p * (1.0 - p))
    p = expit(mode)
    curvature = precision + n * p * (1.0 - p)
    scale = 1.0 / xp.sqrt(curvature)

    def term(x: float, log_w: float) -> Any:
        eta = mode + scale * x
        prior = 0.5 * x * x - 0.5 * xp.square(eta - mu) * precision  # the scatter's density over the node's
        return log_w + prior - k * softplus(-eta) - (n - k) * softplus(eta)

    terms = (term(x, log_w) for x, log_w in zip(_NODES, _LOG_WEIGHTS, strict=True))
    # numpy: two arrays at a time (draws x points can be large); pytensor: one node per quadrature node
    total = functools.reduce(np.logaddexp, terms) if xp is np else xp.logsumexp(xp.stack(list(terms)), axis=0)
    return total + gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0) + 0.5 * xp.log(precision / curvature)


def beta_shapes(mu: Any, sigma: Any, xp: Any = np) -> tuple[Any, Any]:
    """The beta likelihood's ``Beta(p phi, (1 - p) phi)`` about ``p = expit(mu)`` (the law on the logit
    scale), precision ``phi = 4 / sigma^2``: its two shape parameters."""
    phi = 4.0 / xp.square(sigma)
    expit = _special(xp)[0]
    return expit(mu) * phi, expit(-mu) * phi


def beta_logpdf(z: Any, mu: Any, sigma: Any, xp: Any = np) -> Any:
    """Log density of ``z = logit(y)`` when ``y`` is Beta about the law (:func:`beta_shapes`): the Beta's
    density of ``y`` times ``dy/dz = y (1 - y)``. numpy arrays, or ``xp=pytensor.tensor`` inside the model."""
    _, softplus, gammaln = _special(xp)
    a, b = beta_shapes(mu, sigma, xp)
    return gammaln(a + b) - gammaln(a) - gammaln(b) - a * softplus(-z) - b * softplus(z)


@cache
def discrepancy_file() -> dict[str, Any]:
    """``models/observation.toml``: the shipped prior of ``kappa`` and its provenance."""
    from .laws import laws_dir

    return tomllib.loads((laws_dir().parent / "observation.toml").read_text())


def predecessors(
    points: np.ndarray, codes: np.ndarray, fitted: np.ndarray, fitted_codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each point (its position ``points`` along the autocorrelated input, its group ``codes``): the index of
    the ``fitted`` point of its group nearest strictly before it, and the gap in decades between them. Where
    there is none (before its group's first, or a group not fitted): index -1 and gap :data:`NO_PREDECESSOR`."""
    index = np.full(len(points), -1)
    gap = np.full(len(points), NO_PREDECESSOR)
    for code in np.unique(codes[codes >= 0]):
        mine = np.flatnonzero(fitted_codes == code)
        mine = mine[np.argsort(fitted[mine], kind="stable")]
        at = np.flatnonzero(codes == code)
        k = np.searchsorted(fitted[mine], points[at], side="left") - 1
        at, k = at[k >= 0], k[k >= 0]
        index[at] = mine[k]
        gap[at] = np.log10(points[at]) - np.log10(fitted[mine[k]])
    return index, gap


def run_lags(runs: RunTable, along: str) -> tuple[np.ndarray, np.ndarray]:
    """Each run's predecessor along the input ``along`` within its group and the gap to it in decades
    (:func:`~bayes_scaling.observation.predecessors`), for autocorrelated noise; a named
    error when there is no group, a position is not positive, or a group has two runs at one position."""
    column = runs.columns.get(along, along)
    if runs.group is None:
        raise GroupError(
            f"autocorrelated noise along {column!r} needs a group column (group=...): the run each row is a "
            "checkpoint of"
        )
    position = runs.inputs[along]
    if not np.all(position > 0):
        row = int(np.flatnonzero(~(position > 0))[0])
        raise DataError(
            f"autocorrelated noise is along log10({column}): row {row} has {column} = {position[row]:g}, not positive"
        )
    order = np.lexsort((position, runs.group))
    tied = np.flatnonzero((np.diff(runs.group[order]) == 0) & (np.diff(position[order]) == 0))
    if tied.size:
        row = int(order[tied[0]])
        raise DataError(
            f"group {runs.groups[runs.group[row]]!r} has two rows at {column} = {position[row]:g}: autocorrelated "
            "noise needs one per position (average repeated evaluations of a checkpoint)"
        )
    return predecessors(position, runs.group, position, runs.group)


def outside_support(target: str, values: np.ndarray) -> np.ndarray:
    """Indices of the (finite) ``values`` a target of kind ``target`` cannot take."""
    if target == "positive":
        return np.flatnonzero(values <= 0)
    if target == "bounded":
        return np.flatnonzero((values <= 0) | (values >= 1))
    return np.flatnonzero(~np.isfinite(values))


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
    """Likelihood of the observed target around the law on the link scale, its noise parameters and the
    discrepancy.

    ``likelihood``: ``"student_t"`` (robust to outlying runs), ``"normal"``, or for a bounded target scored on a
    known number of items ``"binomial"`` (each run's accuracy is Normal(law, sigma) on the logit scale, its
    score Binomial on its items: :func:`binomial_logpmf`), or ``"beta"`` (:func:`beta_logpdf`);
    ``noise_by_group``: one ``sigma`` per group; ``discrepancy``: add the extrapolation discrepancy to
    predictions; ``target``: the kind of target (``TARGETS``), which fixes the link; ``autocorrelated``: the
    input along which each group's noise is an Ornstein-Uhlenbeck process (checkpoints of one run), or None
    (independent runs).
    """

    likelihood: str = "student_t"
    noise_by_group: bool = False
    discrepancy: bool = True
    target: str = "positive"
    autocorrelated: str | None = None

    def __post_init__(self) -> None:
        if self.likelihood not in LIKELIHOODS:
            raise OptionError(f"unknown likelihood {self.likelihood!r}; use one of {', '.join(LIKELIHOODS)}")
        if self.target not in TARGETS:
            raise OptionError(f"unknown target kind {self.target!r}; use one of {', '.join(TARGETS)}")
        if self.autocorrelated and self.likelihood in ("binomial", "beta"):
            raise OptionError(f"autocorrelated noise needs likelihood 'student_t' or 'normal', not {self.likelihood!r}")
        if self.likelihood in ("binomial", "beta") and self.target != "bounded":
            raise OptionError(
                f"likelihood {self.likelihood!r} is for an accuracy or another share in (0, 1) (a bounded "
                f"target); this law's target is {self.target}"
            )

    @property
    def observed(self) -> str:
        """Name of the observed variable on the link scale (and of its log-likelihood)."""
        return TARGETS[self.target][0]

    def link(self, values: Any, xp: Any = np) -> Any:
        """The target's values on the scale the noise is added on: log, identity or logit (numpy, or
        ``xp=pytensor.tensor`` inside the model)."""
        if self.target == "positive":
            return xp.log(values)
        if self.target == "bounded":
            return xp.log(values) - xp.log1p(-values)
        return values

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """Back from the link scale to the target's own."""
        if self.target == "positive":
            with np.errstate(over="ignore"):  # heavy-tailed noise can put a draw beyond float range: inf is right
                return np.exp(z)
        if self.target == "bounded":
            from scipy.special import expit

            return expit(z)
        return z

    @property
    def params(self) -> tuple[str, ...]:
        """Names of the noise parameters, which NUTS samples with the law's."""
        own = ("sigma", "nu") if self.likelihood == "student_t" else ("sigma",)
        return (*own, "ell") if self.autocorrelated else own

    @property
    def items(self) -> bool:
        """Whether each run's number of items scored is data (the binomial likelihood)."""
        return self.likelihood == "binomial"

    def default_priors(self, observed: np.ndarray | None = None) -> dict[str, dict[str, Any]]:
        """Default priors of the noise parameters and, with the discrepancy, of ``kappa``. The noise of a
        bounded target is on the logit scale, where a benchmark of 100-1000 items scores with a noise of
        0.1-0.3 at accuracies from 0.25 to 0.75. The noise of a real-valued target is in its own units:
        its prior's scale is the spread of the ``observed`` values (on the link scale) when given, else 1."""
        out = {k: NOISE_PRIORS[k] for k in self.params}
        if self.target == "bounded":  # binomial noise of a benchmark of n items: 1 / sqrt(n p (1 - p)) in logit
            out["sigma"] = {"dist": "HalfNormal", "kwargs": {"sigma": 0.3}}
        elif self.target == "real":
            spread = float(np.std(observed)) if observed is not None and np.size(observed) > 1 else 0.0
            out["sigma"] = {"dist": "HalfNormal", "kwargs": {"sigma": spread if spread > 0 else 1.0}}
        if self.discrepancy:
            kappa = discrepancy_file()["kappa"]
            out["kappa"] = {"dist": kappa["dist"], "kwargs": dict(kappa["kwargs"])}
        return out

    def conditional(self, mu: Any, sigma: Any, residual: Any, gap: Any, ell: Any, xp: Any = np) -> tuple[Any, Any]:
        """Location and scale of autocorrelated noise at points ``gap`` decades after a point whose residual
        (observed less law, on the link scale) was ``residual``: ``mu + rho * residual`` and ``sigma * sqrt(1 -
        rho^2)``, ``rho = exp(-gap / ell)`` (numpy, or ``xp=pytensor.tensor`` inside the model)."""
        rho = xp.exp(-gap / ell)
        return mu + rho * residual, sigma * xp.sqrt(1.0 - xp.square(rho))

    def one_step(self, mu: Any, sigma: Any, observed: Any, lag: Any, ell: Any, xp: Any = np) -> tuple[Any, Any]:
        """The fitted runs' likelihood with autocorrelated noise: location and scale of each run given the one
        before it in its group (:meth:`conditional` of that run's residual). ``mu`` (points,) or (draws,
        points); ``lag``: :func:`run_lags`, a -1 (no run before) read as the run itself, at correlation 0."""
        before, gap = lag
        before = xp.maximum(before, 0)
        return self.conditional(mu, sigma, observed[before] - mu[..., before], gap, ell, xp)

    # ---------------------------------------------------------------------------------------- PyMC
    def to_pymc(self, mu, observed, priors: Mapping, group_idx=None, items=None, lag=None) -> None:
        """Add the noise parameters and the observed target (on the link scale) to the model in context
        (``items``: the runs' numbers of items, for the binomial likelihood; ``lag``: for autocorrelated
        noise, each run's predecessor index and the gap to it, :func:`run_lags`)."""
        import pymc as pm
        import pytensor.tensor as pt

        if self.noise_by_group:
            sigma = priors["sigma"].to_pymc("sigma", dims="group")[group_idx]
        else:
            sigma = priors["sigma"].to_pymc("sigma")
        if self.autocorrelated:
            mu, sigma = self.one_step(mu, sigma, observed, lag, priors["ell"].to_pymc("ell"), pt)
        if self.likelihood == "student_t":
            nu = priors["nu"].to_pymc("nu")
            pm.StudentT(self.observed, nu=nu, mu=mu, sigma=sigma, observed=observed, dims="obs")
        elif self.likelihood == "binomial":

            def logp(value, mu, sigma, n):
                return binomial_logpmf(n * pt.sigmoid(value), n, mu, sigma, pt)

            pm.CustomDist(self.observed, mu, sigma, items, logp=logp, observed=observed, dims="obs")
        elif self.likelihood == "beta":

            def beta_logp(value, mu, sigma):
                return beta_logpdf(value, mu, sigma, pt)

            pm.CustomDist(self.observed, mu, sigma, logp=beta_logp, observed=observed, dims="obs")
        else:
            pm.Normal(self.observed, mu=mu, sigma=sigma, observed=observed, dims="obs")

    # ---------------------------------------------------------------------------------------- numpy
    def noise(
        self,
        posterior: xr.Dataset,
        codes: np.ndarray | None,
        rng: np.random.Generator | None = None,
        items: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Noise parameters at each point: ``sigma`` (S, points) or (S, 1), ``nu`` (S, 1) for Student-t,
        ``ell`` (S, 1) for autocorrelated noise, and for the binomial likelihood the points' numbers of
        ``items`` when known (points,).

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
        if self.autocorrelated:
            out["ell"] = flat_draws(posterior["ell"].values)[:, None]
        if self.items and items is not None:
            out["items"] = np.asarray(items, dtype=float)
        return out

    def logpdf(self, y: np.ndarray, mu: np.ndarray, noise: Mapping[str, np.ndarray]) -> np.ndarray:
        """Log density of an observed ``y`` (on the link scale) given the curve ``mu`` (draws x points) and the
        noise. Binomial: the probability of the score on the points' items, or without them the density of
        the run's own accuracy (as many items as you like: the Normal on the logit scale)."""
        from scipy import special

        sigma = noise["sigma"]
        if "items" in noise:
            n = noise["items"]
            return binomial_logpmf(n * special.expit(y), n, mu, sigma)
        if self.likelihood == "beta":
            return beta_logpdf(y, mu, sigma)
        z2 = np.square((y - mu) / sigma)
        if self.likelihood == "student_t":  # scipy.stats.t.logpdf, without its per-element overhead
            nu = noise["nu"]
            const = special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2) - 0.5 * np.log(nu * np.pi) - np.log(sigma)
            return const - (nu + 1) / 2 * np.log1p(z2 / nu)
        return -0.5 * z2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)

    def sample(self, mu: np.ndarray, noise: Mapping[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """One observation (on the link scale) per draw and point around ``mu``. Binomial: a run's accuracy,
        scored on the points' items when known (a score of 0 or all items moved half an item inside, as
        the data are)."""
        if self.likelihood == "beta":  # far out (a law plus its discrepancy) p can round to 0 or 1, a draw too
            tiny = np.finfo(float).tiny
            a, b = (np.maximum(shape, tiny) for shape in beta_shapes(mu, noise["sigma"]))
            return self.link(np.clip(rng.beta(a, b), tiny, 1.0 - np.finfo(float).eps))
        if self.likelihood == "student_t":
            eps = rng.standard_t(np.broadcast_to(noise["nu"], mu.shape))
        else:
            eps = rng.standard_normal(mu.shape)
        linked = mu + noise["sigma"] * eps
        if "items" not in noise:
            return linked
        n = noise["items"]
        right = np.clip(rng.binomial(n.astype(np.int64), self.inverse(linked)), 0.5, n - 0.5)
        return self.link(right / n)

    def information_variance(self, noise: Mapping[str, np.ndarray]) -> np.ndarray:
        """The variance of the Normal likelihood that tells as much about the curve as this one does (the
        inverse Fisher information of its location), per draw: sigma^2, or sigma^2 (nu + 3) / (nu + 1) for
        Student-t, whose heavy tails make one run say less (binomial: sigma^2, a run scored on many items;
        beta: sigma^2, its value at accuracy 1/2)."""
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
