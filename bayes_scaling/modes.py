"""Chains in separate modes: which chains share one, and how much of the posterior each mode holds.

NUTS chains that settle in different modes are not weighted by the modes' masses: eight chains split seven
to one give the minor mode an eighth of the draws whatever it holds. :func:`mode_masses` estimates each
mode's mass by bridge sampling (Meng and Wong 1996; Gronau et al. 2017) in the sampler's unconstrained
space: a Gaussian fitted to the first half of the mode's chains bridges to their second half; a point drawn
from it counts for the mode whose Gaussian is most likely there, so no mass is counted for two modes. Plain
importance sampling from the same Gaussian (or a Student-t) was tried first and not kept: on a mode of one
chain its weights were too heavy-tailed to trust (Pareto k 2-3), while the bridge agreed with itself to
within its standard error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .errors import OptionError, generator

if TYPE_CHECKING:
    from .result import ScalingFit

__all__ = ["MAX_DIMENSIONS", "MIN_DRAWS_PER_DIMENSION", "bridge_log_mass", "chain_modes", "mode_masses"]

#: Bridge sampling from one Gaussian per mode is trusted up to this many unconstrained dimensions ...
MAX_DIMENSIONS = 40
#: ... with at least this many draws per dimension to fit each mode's Gaussian (fewer gave estimates that
#: moved by several nats between chains of one mode while their standard errors said one).
MIN_DRAWS_PER_DIMENSION = 25


def chain_modes(values: Mapping[str, np.ndarray], separation: float = 4.0) -> tuple[np.ndarray, list[str]]:
    """Which chains share a mode, from draws ``{name: (chain, draw)}``: two chains are apart when some
    parameter's medians in them differ by more than ``separation`` times the smaller of its standard
    deviations within them (the larger when one chain does not move; any difference when neither does):
    separate modes or a stuck chain, not a slow mix. Each chain joins the mode of
    the first chain it is not apart from. Returns each chain's mode (0, 1, ... in order of first chain) and
    the parameters that set some modes apart (no modes and no parameters when ``values`` is empty)."""
    names = list(values)
    if not names:  # nothing to tell the chains apart by
        return np.zeros(0, dtype=int), []
    medians = np.array([np.median(values[n], axis=1) for n in names])  # (parameter, chain)
    spreads = np.array([np.std(values[n], axis=1) for n in names])
    chains = medians.shape[1]

    def apart(i: int, j: int) -> np.ndarray:
        small, large = np.minimum(spreads[:, i], spreads[:, j]), np.maximum(spreads[:, i], spreads[:, j])
        spread = np.where(small > 0, small, large)  # a frozen chain is measured by the other's spread
        return np.abs(medians[:, i] - medians[:, j]) > separation * spread

    labels = np.full(chains, -1)
    for c in range(chains):
        if labels[c] < 0:
            labels[c] = labels.max() + 1
            for other in range(c + 1, chains):
                if labels[other] < 0 and not apart(c, other).any():
                    labels[other] = labels[c]
    separating = np.zeros(len(names), dtype=bool)
    for i in range(chains):
        for j in range(i + 1, chains):
            if labels[i] != labels[j]:
                separating |= apart(i, j)
    return labels, [n for n, s in zip(names, separating, strict=True) if s]


def _unconstrained(fit: ScalingFit, model) -> tuple[np.ndarray, list[str], list[tuple[int, ...]]]:
    """The posterior's draws of the model's free variables in the sampler's unconstrained space, shaped
    (chain, draw, dimension), with the value variables' names and shapes."""
    import pytensor
    from pytensor.graph.replace import graph_replace

    rvs = list(model.free_RVs)
    post = fit.posterior
    # one more leading dimension than each variable: all draws of a chain at once (the transforms are elementwise)
    places = [rv.type.clone(shape=(None, *rv.type.shape))(name=rv.name) for rv in rvs]
    outs = []
    for rv, x in zip(rvs, places, strict=True):
        transform = model.rvs_to_transforms.get(rv)
        outs.append(x if transform is None else transform.forward(x, *rv.owner.inputs))
    forward = pytensor.function(places, graph_replace(outs, dict(zip(rvs, places, strict=True)), strict=False))
    chains = []
    for c in range(post.sizes["chain"]):
        values = forward(*(post[rv.name].isel(chain=c).values for rv in rvs))
        chains.append(np.concatenate([np.reshape(v, (v.shape[0], -1)) for v in values], axis=1))
    shapes = [tuple(post[rv.name].shape[2:]) for rv in rvs]
    return np.stack(chains), [model.rvs_to_values[rv].name for rv in rvs], shapes


def bridge_log_mass(post: np.ndarray, proposal: np.ndarray, iterations: int = 1000) -> tuple[float, float]:
    """Meng and Wong's (1996) optimal bridge estimate of log Z, the log of the normalising constant of a
    density p, from ``post = log p - log g`` at draws from p / Z, shaped (chain, draw) in the order sampled,
    and ``proposal = log p - log g`` at independent draws from a normalised density g (1-D; -inf where p is
    zero); with its standard error: Fruhwirth-Schnatter (2004)'s relative error of Z, the posterior draws'
    term scaled by their effective sample size (as Gronau et al. 2017's bridgesampling does)."""
    from scipy.special import logsumexp

    from .diagnostics import _ess

    n1, n2 = post.size, proposal.size
    log_s1, log_s2 = np.log(n1 / (n1 + n2)), np.log(n2 / (n1 + n2))
    log_r = float(logsumexp(proposal) - np.log(n2))  # importance sampling, to start
    if not np.isfinite(log_r):
        return log_r, np.nan
    for _ in range(iterations):
        numerator = logsumexp(proposal - np.logaddexp(log_s1 + proposal, log_s2 + log_r)) - np.log(n2)
        denominator = logsumexp(-np.logaddexp(log_s1 + post, log_s2 + log_r)) - np.log(n1)
        previous, log_r = log_r, float(numerator - denominator)
        if abs(log_r - previous) < 1e-10:
            break
    f1 = np.exp(proposal - log_r - np.logaddexp(log_s1 + proposal - log_r, log_s2))
    f2 = np.exp(-np.logaddexp(log_s1 + post - log_r, log_s2))
    ess = float(_ess(f2[None])[0]) if post.shape[1] >= 4 else float(n1)
    relative = f1.var() / f1.mean() ** 2 / n2 + f2.var() / f2.mean() ** 2 / min(ess, n1)
    return log_r, float(np.sqrt(relative))


def mode_masses(fit: ScalingFit, *, draws: int = 2000, seed: int | None = 0) -> pd.DataFrame:
    """One row per mode the chains settled in (:func:`chain_modes` of the law's and noise's parameters):
    its ``chains``, its ``share_of_draws``, the estimated ``share`` of the posterior mass it holds, the
    estimate's ``log_mass`` and standard error ``log_mass_se``, and each separating parameter's median in
    the mode. Each mode's Gaussian is fitted to the first half of its chains; the bridge runs between the
    second halves and ``draws`` draws from the Gaussian."""
    from scipy import stats
    from scipy.special import logsumexp

    if isinstance(draws, bool) or not isinstance(draws, int | np.integer) or not 100 <= draws <= 100_000:
        raise OptionError(f"modes: draws must be a whole number from 100 to 100000, got {draws!r}")
    rng = generator(seed)
    post = fit.posterior
    dim = sum(int(np.prod(post[n].shape[2:])) for n in fit.sampled_names)  # the model's free variables
    if dim > MAX_DIMENSIONS:
        raise OptionError(
            f"mode masses are estimated by bridge sampling from a Gaussian, trusted up to {MAX_DIMENSIONS} "
            f"unconstrained dimensions; this model has {dim} (groups add dimensions)"
        )
    labels, separating = fit._chain_modes()
    if labels.size == 0:
        labels = np.zeros(post.sizes["chain"], dtype=int)
    half = post.sizes["draw"] // 2
    fewest = half * int(np.bincount(labels).min())
    if fewest < MIN_DRAWS_PER_DIMENSION * dim:
        raise OptionError(
            f"mode masses need at least {MIN_DRAWS_PER_DIMENSION} draws per unconstrained dimension in half of "
            f"each mode's chains ({MIN_DRAWS_PER_DIMENSION * dim} for {dim}); a mode has {fewest}: "
            "sample more draws (fit.extend)"
        )
    model = fit.model
    draws_u, value_names, shapes = _unconstrained(fit, model)
    if not np.isfinite(draws_u).all():
        raise OptionError("mode masses: some draws lie on the edge of their prior's support (a stuck chain?)")
    cuts = np.cumsum([0, *(int(np.prod(s)) for s in shapes)])
    slots = list(zip(value_names, cuts[:-1], cuts[1:], shapes, strict=True))
    logp = model.compile_logp(jacobian=True)

    def log_density(points: np.ndarray) -> np.ndarray:
        flat = points.reshape(-1, dim)
        values = [float(logp({n: x[a:b].reshape(s) for n, a, b, s in slots})) for x in flat]
        return np.reshape(values, points.shape[:-1])

    modes = range(labels.max() + 1)
    gaussians = []
    for k in modes:  # each mode's Gaussian from the first half of its chains
        fitting = draws_u[labels == k, :half].reshape(-1, dim)
        cov = np.cov(fitting, rowvar=False).reshape(dim, dim)
        if not np.ptp(fitting, axis=0).all():
            chains = ", ".join(str(c) for c in np.flatnonzero(labels == k))
            raise OptionError(f"mode masses: chains {chains} do not move in some parameter (stuck): no mass to weigh")
        gaussians.append(stats.multivariate_normal(fitting.mean(axis=0), cov, allow_singular=True))
    rows = []
    for k, gaussian in zip(modes, gaussians, strict=True):
        own = draws_u[labels == k, half:]  # (chain, draw, dim), in the order sampled
        points = gaussian.rvs(size=draws, random_state=rng).reshape(draws, dim)
        # a point counts for the mode whose Gaussian is most likely there: no mass is counted for two modes
        here = np.argmax(np.stack([g.logpdf(points) for g in gaussians]), axis=0) == k
        density = np.full(draws, -np.inf)
        density[here] = log_density(points[here])
        at_own = log_density(own) - gaussian.logpdf(own).reshape(own.shape[:-1])  # scipy drops axes of length 1
        log_mass, se = bridge_log_mass(at_own, density - gaussian.logpdf(points))
        rows.append(
            {
                "chains": ", ".join(str(c) for c in np.flatnonzero(labels == k)),
                "share_of_draws": float(np.mean(labels == k)),
                "log_mass": log_mass,
                "log_mass_se": se,
                **{n: float(np.median(post[n].values[labels == k])) for n in separating},
            }
        )
    table = pd.DataFrame(rows).rename_axis("mode")
    table.insert(2, "share", np.exp(table["log_mass"] - logsumexp(table["log_mass"])))
    return table
