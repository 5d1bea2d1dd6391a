"""``ScalingFit``: a fitted law's posterior, with summaries, predictions and save / load."""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import cache, cached_property
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike

from . import intervals
from .data import RunTable, load_runs, not_items, not_numbers, read_table
from .errors import (
    BayesScalingError,
    DataError,
    FitFileError,
    GroupError,
    MisfitWarning,
    OptionError,
    OutputExistsError,
    SamplingWarning,
    check_seed,
    generator,
    is_number,
)
from .laws import Law
from .observation import TARGETS, ObservationModel, distance, flat_draws, outside_support, predecessors, run_lags
from .priors import Prior, link_functions

__all__ = ["MisfitWarning", "SamplingWarning", "ScalingFit", "assemble_tree", "versions"]

#: Thresholds of the convergence warning.
MAX_RHAT = 1.01
MIN_ESS = 400

_PACKAGES = ("bayes-scaling", "pymc", "pytensor", "arviz", "nutpie", "numpy", "xarray", "pandas")


#: A posterior predictive check fails when so few fitted runs fall inside their own band would happen with
#: less than this probability if the model were right (a binomial tail).
MISFIT_P = 1e-3
#: The fewest posterior draws whose 5% and 95% quantiles make a band to check the fitted runs against.
MIN_CHECK_DRAWS = 20
#: A parameter is pinned against its prior when its posterior median lies beyond this prior quantile (or
#: below 1 minus it): the runs pull it where the prior says it almost cannot be.
PINNED = 0.995
#: Plausible mean losses in nats per token: above ln(1e6) no language model with a vocabulary under a
#: million tokens can be (uniform guessing scores that); below 1e-3 none has been trained.
PLAUSIBLE_LOSS = (1e-3, float(np.log(1e6)))


@cache
def _versions() -> tuple[tuple[str, str], ...]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return tuple(out.items())


def versions() -> dict[str, str]:
    """Versions of Python and the packages that shape a fit (read once a process: 15 ms a fit)."""
    return dict(_versions())


def _numbers(name: str, value: Any) -> np.ndarray:
    """A keyword input to predict at, as a 1-d array of floats; an error names the input."""
    try:
        if not_numbers(value) is None:
            return np.atleast_1d(np.asarray(value, dtype=float))
    except (TypeError, ValueError):
        pass
    raise DataError(f"input {name} must be a number or numbers, got {value!r:.80}")


def _at_points(per_group: np.ndarray, codes: np.ndarray, new_group: Any) -> np.ndarray:
    """Per-group draws (S, groups) at each point's group (S, points); ``new_group()`` gives (S, 1) draws
    for a group not in the data: one call for each distinct negative code, so new groups are independent."""
    at = per_group[:, np.maximum(codes, 0)]
    for code in np.unique(codes[codes < 0]):
        at[:, codes == code] = new_group()
    return at


def sampled_draws(
    law: Law,
    posterior: xr.Dataset,
    priors: Mapping[str, Prior],
    pooling: Mapping[str, str],
    codes: np.ndarray | None,
    rng: np.random.Generator | None = None,
) -> dict[str, np.ndarray]:
    """Sampled parameters at each point, shape (chain * draw, points) or (chain * draw, 1) when shared.

    ``codes`` gives each point's group index; a negative code marks a group not in the data, whose
    values are drawn from the population (partial pooling only; needs ``rng``).
    """
    out = {}
    generator = np.random.default_rng() if rng is None else rng
    for p in law.sampled_params:
        if pooling[p] == "shared":
            out[p] = flat_draws(posterior[p].values)[:, None]
            continue
        assert codes is not None, f"{p!r} varies by group: the points need group codes"

        def new_group(p: str = p) -> np.ndarray:
            if pooling[p] == "none":
                raise GroupError(f"cannot predict for a new group: {p!r} has pooling 'none' (no population)")
            forward, inverse = link_functions(p, priors[p], np)
            population, sd = flat_draws(posterior[p].values)[:, None], flat_draws(posterior[f"{p}_sd"].values)[:, None]
            return inverse(forward(population) + sd * generator.standard_normal(population.shape))

        out[p] = _at_points(flat_draws(posterior[f"{p}_group"].values), codes, new_group)
    return out


def _fitted_runs(
    law: Law, posterior: xr.Dataset, runs: RunTable, priors, pooling, observation: ObservationModel, seed: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """At the fitted runs (where the discrepancy is zero): the pointwise log density of their observed
    target on the link scale, and one posterior predictive replicate of it per draw, both of shape
    (chain, draw, obs). Chains run on threads (numpy releases the GIL), each with its own random stream;
    done a chain at a time, the temporaries stay small (fresh memory costs most at many groups)."""
    shape = (posterior.sizes["chain"], posterior.sizes["draw"], len(runs))
    loglik, replicates = np.empty(shape), np.empty(shape)
    observed = observation.link(runs.loss)
    lag = run_lags(runs, observation.autocorrelated) if observation.autocorrelated else None
    streams = np.random.SeedSequence([0 if seed is None else seed, 2]).spawn(shape[0])

    def one_chain(chain: int) -> None:
        one = posterior.isel(chain=[chain])
        mu = observation.link(law.evaluate_sampled(sampled_draws(law, one, priors, pooling, runs.group), **runs.inputs))
        noise = observation.noise(one, runs.group, items=runs.items)
        if lag is not None:
            mu, noise["sigma"] = observation.one_step(mu, noise["sigma"], observed, lag, noise["ell"])
        loglik[chain] = observation.logpdf(observed, mu, noise)
        replicates[chain] = observation.sample(mu, noise, np.random.default_rng(streams[chain]))

    with ThreadPoolExecutor(min(os.cpu_count() or 1, shape[0])) as pool:
        list(pool.map(one_chain, range(shape[0])))
    return loglik, replicates


def _in_reading_order(posterior: xr.Dataset, law: Law, observation: ObservationModel) -> xr.Dataset:
    """The law's published parameters first, then their per-group values, the noise and the discrepancy's
    kappa, the group spreads, then the sampler's own variables: ``az.summary(fit.tree)`` leads with what a
    reader wants."""
    names = [*law.params, *(f"{p}_group" for p in law.params), *observation.params, "kappa"]
    names += [f"{p}_sd" for p in law.sampled_params]
    first = [v for v in names if v in posterior]
    return posterior[first + [v for v in posterior.data_vars if v not in first]]


def discrepancy_draws(kappa: Prior, posterior: xr.Dataset, seed: int | None) -> dict[str, xr.DataArray]:
    """Draws of the discrepancy's ``kappa`` (its prior: no fitted run informs it), one per posterior draw,
    and of its tilt ``z``: one per draw, and per group in a fit with groups (each group's curve errs beyond
    its runs in its own direction)."""
    shape = (posterior.sizes["chain"], posterior.sizes["draw"])
    rng = np.random.default_rng([0 if seed is None else check_seed(seed), 1])
    dims = ("chain", "draw")
    draws = kappa.sample(shape[0] * shape[1], seed=rng)
    groups = posterior.sizes.get("group")
    return {
        "kappa": xr.DataArray(draws.reshape(shape), dims=dims),
        "z": xr.DataArray(rng.standard_normal(shape), dims=dims)
        if groups is None
        else xr.DataArray(rng.standard_normal((*shape, groups)), dims=(*dims, "group")),
    }


def assemble_tree(
    sampled: xr.DataTree,
    *,
    law: Law,
    runs: RunTable,
    priors: Mapping[str, Prior],
    pooling: Mapping[str, str],
    observation: ObservationModel,
    settings: Mapping[str, Any],
) -> xr.DataTree:
    """One DataTree holding everything a fit is, in ArviZ's groups: posterior, sample stats, posterior
    predictive and log-likelihood of the fitted runs' target (log-loss for a loss), observed and constant
    data (the runs),
    and provenance in the root's attributes."""
    posterior = sampled["posterior"].to_dataset()
    if runs.group is not None:
        posterior = posterior.assign_coords(group=list(runs.groups))
    if "kappa" in priors:
        posterior = posterior.assign(discrepancy_draws(priors["kappa"], posterior, settings["seed"]))
    posterior = _in_reading_order(posterior, law, observation)
    stats_ds = sampled["sample_stats"].to_dataset()
    stats_ds = stats_ds.drop_vars([k for k, v in stats_ds.data_vars.items() if v.dtype == object])
    obs = np.arange(len(runs))
    loglik, replicates = _fitted_runs(law, posterior, runs, priors, pooling, observation, settings["seed"])
    constant = {k: ("obs", v) for k, v in runs.inputs.items()}
    if runs.group is not None:
        constant["group"] = ("obs", runs.group)
    if runs.items is not None:
        constant["items"] = ("obs", runs.items)
    attrs = {
        "law": law.source,
        "law_name": law.name,
        "scales": json.dumps(dict(law.scales)),
        "priors": json.dumps({k: v.to_dict() for k, v in priors.items()}),
        "likelihood": observation.likelihood,
        "noise_by_group": int(observation.noise_by_group),
        "autocorrelated": observation.autocorrelated or "",
        "pooling": json.dumps(dict(pooling)),
        "columns": json.dumps(dict(runs.columns)),
        "groups": json.dumps(list(runs.groups)),
        "group_column": runs.group_column or "",
        "settings": json.dumps(dict(settings)),
        "versions": json.dumps(versions()),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    coords = {"chain": posterior["chain"].values, "draw": posterior["draw"].values, "obs": obs}
    name = observation.observed
    return xr.DataTree.from_dict(
        {
            "/": xr.Dataset(attrs=attrs),
            "posterior": posterior,
            "sample_stats": stats_ds,
            "posterior_predictive": xr.Dataset({name: (("chain", "draw", "obs"), replicates)}, coords=coords),
            "log_likelihood": xr.Dataset({name: (("chain", "draw", "obs"), loglik)}, coords=coords),
            "observed_data": xr.Dataset({name: ("obs", observation.link(runs.loss))}, coords={"obs": obs}),
            "constant_data": xr.Dataset(constant, coords={"obs": obs}),
        }
    )


#: Temporary files of an unfinished save start with this, then the writing process's id.
_TMP_PREFIX = ".bayes_scaling-save."


def _file_path(path: Any, doing: str) -> Path:
    """``path`` (a string or path-like) as a Path; anything else is a FitFileError."""
    if not isinstance(path, str | os.PathLike):
        raise FitFileError(f"{doing} needs a file path, got {path!r:.80}")
    return Path(path)


def _remove_stale_temporaries(folder: Path) -> None:
    """Remove the temporary files of saves whose process is gone (killed mid-save); never anything else."""
    for stale in folder.glob(f"{_TMP_PREFIX}*.nc.tmp"):
        pid = stale.name.removeprefix(_TMP_PREFIX).split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:  # that process is gone: its temporary file is ours to remove
            stale.unlink(missing_ok=True)
        except OSError:  # alive, or not ours to signal: leave it
            continue


def sampled_names(
    law: Law, pooling: Mapping[str, str], observation: ObservationModel, parametrisation: str = "non_centred"
) -> list[str]:
    """The variables NUTS samples for ``law`` with ``pooling``, ``parametrisation`` and ``observation``: the
    model's free variables."""
    partial = "{p} {p}_sd {p}_group_link" if parametrisation == "centred" else "{p} {p}_sd {p}_z"
    names = {"shared": "{p}", "partial": partial, "none": "{p}_group"}
    out = [v for p in law.sampled_params for v in names[pooling[p]].format(p=p).split()]
    return out + list(observation.params)


def summarize_convergence(convergence: Mapping[str, Mapping[str, np.ndarray]], sample_stats: Any) -> dict[str, float]:
    """Max R-hat, min bulk and tail ESS over every scalar of ``convergence`` (the output of
    :func:`~bayes_scaling.diagnostics.convergence`), and the divergences in ``sample_stats``."""
    stats = {k: np.concatenate([np.ravel(v) for v in by_name.values()]) for k, by_name in convergence.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN (one chain): NaN, said as such
        return {
            "max_r_hat": float(np.nanmax(stats["r_hat"])) if np.isfinite(stats["r_hat"]).any() else float("nan"),
            "min_ess_bulk": float(np.nanmin(stats["ess_bulk"])),
            "min_ess_tail": float(np.nanmin(stats["ess_tail"])),
            "divergences": int(sample_stats["diverging"].values.sum()),
        }


class ScalingFit:
    """A fitted scaling law. Everything it knows lives in :attr:`tree` (an ``xarray.DataTree``);
    ``convergence``, when the caller already computed it on the sampled variables, is kept instead of
    computed again."""

    def __init__(self, tree: xr.DataTree, convergence: dict[str, dict[str, np.ndarray]] | None = None) -> None:
        self.tree = tree
        if convergence is not None:
            self.__dict__["_convergence"] = convergence  # the cached_property's slot
        attrs = tree.attrs
        law = Law.from_toml(attrs["law"], origin=f"saved fit of {attrs['law_name']!r}")
        self.law = law.with_scales(json.loads(attrs["scales"]))
        self.priors = {k: Prior.from_spec(k, v) for k, v in json.loads(attrs["priors"]).items()}
        noise_by_group = bool(attrs.get("noise_by_group", tree["posterior"]["sigma"].ndim > 2))
        self.observation = ObservationModel(
            attrs["likelihood"],
            noise_by_group,
            "kappa" in tree["posterior"],
            self.law.target,
            attrs.get("autocorrelated") or None,
        )
        self.pooling: dict[str, str] = json.loads(attrs["pooling"])
        self.settings: dict[str, Any] = json.loads(attrs["settings"])
        #: how the partially pooled parameters were sampled (fits saved before it was recorded: non-centred)
        self.parametrisation: str = self.settings.get("parametrisation", "non_centred")
        constant = tree["constant_data"].to_dataset()
        groups = tuple(json.loads(attrs["groups"]))
        self.runs = RunTable(
            inputs={k: constant[k].values for k in self.law.inputs},
            loss=self.observation.inverse(tree["observed_data"].to_dataset()[self.observation.observed].to_numpy()),
            columns=json.loads(attrs["columns"]),
            group=constant["group"].to_numpy() if groups else None,
            groups=groups,
            group_column=attrs["group_column"] or None,
            items=constant["items"].to_numpy() if self.observation.items else None,
        )

    # ------------------------------------------------------------------------------ posterior access
    @property
    def posterior(self) -> xr.Dataset:
        return self.tree["posterior"].to_dataset()

    def draws(self, name: str) -> np.ndarray:
        """All posterior draws of one variable, chains stacked first: shape (chain * draw, ...)."""
        return flat_draws(self.tree["posterior"].to_dataset()[name].values)

    @property
    def likelihood(self) -> str:
        return self.observation.likelihood

    # ------------------------------------------------------------------------------ diagnostics
    @property
    def sampled_names(self) -> list[str]:
        """The variables NUTS samples (the model's free variables); the rest of the posterior are functions
        of them, or draws of the discrepancy made after sampling."""
        return sampled_names(self.law, self.pooling, self.observation, self.parametrisation)

    @cached_property
    def _convergence(self) -> dict[str, dict[str, np.ndarray]]:
        from .diagnostics import convergence

        return convergence(self.posterior[self.sampled_names])

    @cached_property
    def diagnostics(self) -> dict[str, float]:
        """Max R-hat, min bulk and tail ESS over every scalar NUTS sampled (:attr:`sampled_names`), and the
        divergence count; computed once, vectorised (:mod:`bayes_scaling.diagnostics`), and kept."""
        return summarize_convergence(self._convergence, self.tree["sample_stats"])

    @property
    def problems(self) -> list[str]:
        """Each failed convergence check, named: divergences, R-hat > 1.01, bulk or tail ESS < 400."""
        d = self.diagnostics
        problems = []
        if d["divergences"]:
            problems.append(f"{d['divergences']} divergent transition(s)")
        chains, draws = self.posterior.sizes["chain"], self.posterior.sizes["draw"]
        if not np.isfinite(d["min_ess_bulk"]):
            problems.append(
                f"{draws} draw(s) a chain are too few to estimate R-hat or ESS (at least 4; 1000 is the default)"
            )
        elif not np.isfinite(d["max_r_hat"]) and chains == 1:
            problems.append(
                "R-hat needs two chains or more, and this fit has one: convergence across chains is unchecked"
            )
        if d["max_r_hat"] > MAX_RHAT:
            problems.append(f"R-hat {d['max_r_hat']:.3f} > {MAX_RHAT} ({self._failing('r_hat', MAX_RHAT)})")
        for kind in ("bulk", "tail"):
            if d[f"min_ess_{kind}"] < MIN_ESS:
                problems.append(
                    f"{kind} ESS {d[f'min_ess_{kind}']:.0f} < {MIN_ESS} ({self._failing(f'ess_{kind}', MIN_ESS)})"
                )
        apart = self._chain_modes()[1] if d["max_r_hat"] > MAX_RHAT else {}
        if apart:
            named = ", ".join(f"{p} ({' / '.join(f'{m:.3g}' for m in medians)})" for p, medians in apart.items())
            loglik = self.tree["log_likelihood"].to_dataset()[self.observation.observed].values
            fit_per_chain = loglik.sum(axis=2).mean(axis=1)
            problems.append(
                f"chains settled in different places for {named} (medians per chain): the posterior has several "
                "modes or a chain is stuck. Mean log-likelihood of the runs per chain: "
                f"{' / '.join(f'{v:.1f}' for v in fit_per_chain)}. The share of chains in a mode is not its posterior "
                f"mass: {self._mode_masses}; run more chains (chains=8) and look at plot_rank. The mode that fits "
                "the fitted runs best need not predict new ones best (benchmarks/multimodal.py): check predictions "
                "with a backtest (bs.backtest), or tighten those priors"
            )
        return problems

    def _failing(self, stat: str, limit: float, shown: int = 3) -> str:
        """The sampled scalars that fail a check of ``stat`` (``r_hat`` above ``limit``, an ESS below it),
        worst first: ``"a 1.13, alpha 1.12 and 2 more"``; a group's value is named by its group."""
        above = stat == "r_hat"
        failing = []
        for name, values in self._convergence[stat].items():
            grouped = self.runs.group is not None and "group" in self.tree["posterior"][name].dims
            for at, value in np.ndenumerate(values):
                if value > limit if above else value < limit:
                    index = (self.runs.groups[at[0]], *at[1:]) if grouped else at
                    failing.append((-value if above else value, name + "".join(f"[{i}]" for i in index)))
        failing.sort()
        named = [f"{label} {abs(value):.{3 if above else 0}f}" for value, label in failing[:shown]]
        more = f" and {len(failing) - shown} more" if len(failing) > shown else ""
        return ", ".join(named) + more

    @cached_property
    def _mode_masses(self) -> str:
        """:meth:`modes` in words, for the warning on chains in different modes (computed once, when needed)."""
        try:
            table = self.modes()
        except (BayesScalingError, np.linalg.LinAlgError, ValueError) as error:  # a warning must not sink the fit
            return f"fit.modes() cannot weigh them here ({error})"
        shares = " / ".join(f"chains {m.chains}: {m.share:.2g}" for m in table.itertuples())
        heaviest = table.loc[table["share"].idxmax(), "chains"]
        return (
            f"estimated shares of it (fit.modes(), bridge sampling) {shares}; fit.keep_chains([{heaviest}]) keeps "
            "the chains of the heaviest mode"
        )

    def _chain_modes(self) -> tuple[np.ndarray, dict[str, list[float]]]:
        """Each chain's mode (:func:`~bayes_scaling.modes.chain_modes`: separate modes or a stuck chain, not a
        slow mix), and the law and noise parameters that set modes apart with their median in each chain."""
        from .modes import chain_modes

        post = self.tree["posterior"].to_dataset()
        names = (*self.law.params, *self.observation.params)
        values = {n: post[n].values for n in names if n in post and post[n].ndim == 2}
        labels, separating = chain_modes(values)
        return labels, {n: np.median(values[n], axis=1).tolist() for n in separating}

    def modes(self, *, draws: int = 2000, seed: int | None = 0) -> pd.DataFrame:
        """The modes the chains settled in, one row each: its chains, share of the draws, and estimated share
        of the posterior mass with the log mass's standard error (bridge sampling,
        :func:`~bayes_scaling.modes.mode_masses`). When one mode holds nearly all the mass,
        :meth:`keep_chains` keeps its chains."""
        from .modes import mode_masses

        return mode_masses(self, draws=draws, seed=seed)

    def keep_chains(self, chains: Sequence[int]) -> ScalingFit:
        """The fit with only ``chains`` (positions 0, 1, ...; repeats count once), for instance those of the
        mode holding the posterior's mass (:meth:`modes`): renumbered from 0 in their order, their positions
        in the first sampling kept in ``settings["kept_chains"]`` (None for chains added by :meth:`extend`).
        Diagnostics and checks are computed anew on them."""
        total = self.tree["posterior"].sizes["chain"]
        try:
            given = list(np.ravel(chains)) if not isinstance(chains, str | bytes | Mapping) else []
        except ValueError:  # ragged nested lists
            given = []
        whole = all(isinstance(c, int | np.integer) and not isinstance(c, bool | np.bool_) for c in given)
        if not given or not whole or not all(0 <= c < total for c in given):
            raise OptionError(f"keep_chains: chains must be whole numbers among 0..{total - 1}, got {chains!r}")
        keep = sorted({int(c) for c in given})
        tree = self.tree.copy()
        for name, node in self.tree.children.items():
            if "chain" in node.dims:  # renumbered 0, 1, ...: extend() numbers its new chains after them
                tree[name] = xr.DataTree(node.to_dataset().isel(chain=keep).assign_coords(chain=np.arange(len(keep))))
        previous = self.settings.get("kept_chains", list(range(total)))
        settings = dict(self.settings, chains=len(keep), kept_chains=[previous[c] for c in keep])
        tree.attrs = {**tree.attrs, "settings": json.dumps(settings)}
        result = ScalingFit(tree)
        result.warn_if_unreliable()
        return result

    @cached_property
    def replicates(self) -> np.ndarray:
        """The posterior predictive replicates of the fitted runs' target on the link scale (log-loss for a
        loss), shape (chain * draw, runs)."""
        return intervals.sample_matrix(self.tree["posterior_predictive"].to_dataset()[self.observation.observed])

    @cached_property
    def fit_check(self) -> dict[str, Any]:
        """Posterior predictive check on the fitted runs: the share inside their own 50% and 90% predictive
        bands, the chance of so few if the model were right (binomial tail, ``p_50``, ``p_90``), how
        far the worst run lies outside its 90% band, in band widths (0 when every run is inside), and a
        test for structure the noise cannot explain: the lag-1 autocorrelation of the residuals with the
        runs ordered by each input (within groups), ``p_trend`` its smallest one-sided p-value times the
        number of orderings, ``trend_input`` the input it came from. A step or bend the law misses leaves
        streaks of same-sign residuals even where the noise scale grows to cover them."""
        from scipy.special import bdtr, ndtr  # the binomial's and the normal's cdf (scipy.stats: 0.5-1 s to import)

        replicates = self.replicates
        observed = self.observation.link(self.runs.loss)
        if replicates.shape[0] < MIN_CHECK_DRAWS:  # no bands to check against: nothing found, said by problems
            nothing = dict.fromkeys(("inside_50", "inside_90", "worst_outside_90"), float("nan"))
            return {**nothing, "p_50": 1.0, "p_90": 1.0, "p_trend": 1.0, "trend_input": ""}
        ordered = np.sort(replicates.T, axis=1)  # one sort for five quantiles (faster than partitioning)
        lo50, hi50, lo90, hi90, median = (intervals.sorted_quantile(ordered, q) for q in (0.25, 0.75, 0.05, 0.95, 0.5))
        n = observed.size
        k50 = int(((observed >= lo50) & (observed <= hi50)).sum())
        k90 = int(((observed >= lo90) & (observed <= hi90)).sum())
        beyond = np.maximum(lo90 - observed, observed - hi90).clip(min=0) / (hi90 - lo90)
        residual = observed - median
        groups = self.runs.group if self.runs.group is not None else np.zeros(n, dtype=int)
        p_trend, trend_input = 1.0, ""
        for name in self.law.scaled_inputs:
            order = np.lexsort((self.runs.inputs[name], groups))
            r = residual[order] - residual.mean()
            same = groups[order][1:] == groups[order][:-1]  # neighbours within a group
            lag1 = float((r[1:] * r[:-1])[same].sum() / (r**2).sum())
            p = float(ndtr(-lag1 * np.sqrt(n))) * len(self.law.scaled_inputs)
            if p < p_trend:
                p_trend, trend_input = p, name
        return {
            "inside_50": k50 / n,
            "inside_90": k90 / n,
            "p_50": float(bdtr(k50, n, 0.5)),
            "p_90": float(bdtr(k90, n, 0.9)),
            "worst_outside_90": float(beyond.max()),
            "p_trend": min(p_trend, 1.0),
            "trend_input": trend_input,
        }

    @property
    def misfits(self) -> list[str]:
        """What suggests the law cannot describe these runs, each named: a failed posterior predictive check
        on the fitted runs (:attr:`fit_check`), losses outside the plausible range of nats per token, and
        parameters pinned against their prior (often the sign of other units)."""
        found = []
        check = self.fit_check
        for prob, key in ((50, "50"), (90, "90")):
            if check[f"p_{key}"] < MISFIT_P:
                found.append(
                    f"only {check[f'inside_{key}']:.0%} of the {len(self.runs)} fitted runs lie inside their own "
                    f"{prob}% predictive band (chance {check[f'p_{key}']:.1g} if the law described them): the law "
                    "does not describe these runs; compare other laws (bs.compare, bs.stack) or look at "
                    "plot_residuals"
                )
        if check["p_trend"] < MISFIT_P:
            checkpoints = (
                "; or, if each group's rows are checkpoints of one run, fit with autocorrelated= the input "
                "that orders them (its step or tokens)"
                if self.runs.group is not None and not self.observation.autocorrelated
                else ""
            )
            found.append(
                f"the residuals run in streaks along {check['trend_input']} (lag-1 autocorrelation, chance "
                f"{check['p_trend']:.1g} under independent noise): the law misses a bend or step the runs show; "
                f"compare other laws (bs.compare, bs.stack) or look at plot_residuals{checkpoints}"
            )
        typical = float(np.exp(np.mean(np.log(self.runs.loss)))) if self.law.target == "positive" else None
        low, high = PLAUSIBLE_LOSS
        if typical is not None and not low <= typical <= high:
            found.append(
                f"the runs' typical loss is {typical:.3g}, outside {low:g}-{high:.1f} nats per token "
                "(the range language-model losses can take): is it in percent, scaled, or summed over tokens?"
            )
        for name, prior in self.priors.items():
            if name not in self.law.sampled_params or name not in self.tree["posterior"]:
                continue
            q = float(prior.cdf(np.median(self.draws(name))))
            if not 1 - PINNED <= q <= PINNED:
                found.append(
                    f"{name} is pinned against its prior {prior} (posterior median at its {q:.2%} quantile): "
                    "the runs want a value the prior almost excludes; check the units of the runs or widen "
                    f"the prior of {name}"
                )
        return found

    def warn_if_unreliable(self) -> list[str]:
        """Warn naming each failed check: convergence (:attr:`problems`, SamplingWarning) and fit
        (:attr:`misfits`, MisfitWarning); returns the convergence problems."""
        problems = self.problems
        for message in problems:
            warnings.warn(f"{self.law.name}: {message}; treat this posterior with care", SamplingWarning, stacklevel=3)
        for message in self.misfits:
            warnings.warn(f"{self.law.name}: {message}", MisfitWarning, stacklevel=3)
        return problems

    # ------------------------------------------------------------------------------ summaries
    def summary(self, prob: float = intervals.PROB) -> pd.DataFrame:
        """Published parameters and the noise: mean, sd, median, equal-tailed interval, R-hat and ESS.

        For grouped fits: the population value ``alpha``, each group's ``alpha[c4]``, and the spread
        ``<p>_sd`` (on the link scale) of each partially pooled sampled parameter.
        """
        prob = intervals.check_prob(prob)
        post = self.posterior
        names = [v for p in self.law.params for v in (p, f"{p}_group") if v in post]
        names += [f"{p}_sd" for p, mode in self.pooling.items() if mode == "partial"] + list(self.observation.params)
        names += ["kappa"] if self.observation.discrepancy else []
        from .diagnostics import convergence

        stats = convergence(post[names])
        rows = []
        for name in names:
            draws = self.draws(name)
            labels = [name] if draws.ndim == 1 else [f"{name.removesuffix('_group')}[{g}]" for g in self.runs.groups]
            for i, label in enumerate(labels):
                x, at = (draws, ()) if draws.ndim == 1 else (draws[:, i], (i,))
                sd = float(x.std(ddof=1)) if x.size > 1 else float("nan")  # one draw: no spread to estimate
                row: dict[str, Any] = {"mean": x.mean(), "sd": sd, **intervals.bounds(x, [prob])}
                row.update({k: stats[k][name][at] for k in ("r_hat", "ess_bulk", "ess_tail")})
                rows.append(pd.Series({k: float(v) for k, v in row.items()}, name=label))
        table = pd.DataFrame(rows)
        table.index.name = "parameter"
        table.attrs["interval"] = f"{100 * prob:g}% equal-tailed"
        return table

    # ------------------------------------------------------------------------------ prediction
    def _prediction_inputs(
        self, runs: pd.DataFrame | None, inputs: Mapping[str, Any], group: Any, new_group: bool = False
    ) -> tuple[dict[str, np.ndarray], np.ndarray | None, np.ndarray | None]:
        """Input arrays, group labels and group codes (-1: a group not in the data) of the points. A binomial
        fit's points may carry the number of ``items`` each is scored on (the table's items column, or the
        keyword ``items=``): then a new run's observed accuracy is scored on them."""
        if runs is not None:
            if inputs:
                raise OptionError("give either a table of runs or inputs as keywords, not both")
            runs = read_table(runs)
            if not len(runs):
                raise DataError("no points to predict at: the table of runs has no rows")
        scored = self.observation.items and (("items" in inputs) or (runs is not None and self._items in runs))
        if runs is not None:
            columns = {k: v for k, v in self.runs.columns.items() if k in self.law.inputs}
            table = load_runs(
                runs.assign(**{"__loss": 1.0}),
                inputs=self.law.inputs,
                columns={**columns, "loss": "__loss", **({"items": self._items} if scored else {})},
                covariates=self.law.covariates,
                items=scored,
            )
            values = dict(table.inputs)
            if table.items is not None:
                values["items"] = table.items
            if group is None and self.runs.group_column in runs:
                group = runs[self.runs.group_column].astype(str).to_numpy()
        else:
            if scored:
                inputs = dict(inputs)
                items = _numbers("items", inputs.pop("items"))
                if not_items(items).size:
                    raise DataError(f"items must be whole numbers from 1 to 2^53, got {items}")
            self.law.check_inputs(inputs)
            names = [*self.law.inputs, *(["items"] if scored else [])]
            given = [_numbers(k, inputs[k]) for k in self.law.inputs] + ([items] if scored else [])
            try:
                arrays = np.broadcast_arrays(*given)
            except ValueError:
                lengths = ", ".join(f"{k} {a.size}" for k, a in zip(names, given, strict=True))
                raise DataError(f"inputs of different lengths ({lengths}): give one value or one per point") from None
            if not arrays[0].size:
                raise DataError("no points to predict at: the inputs are empty")
            values = dict(zip(names, (a.ravel() for a in arrays), strict=True))
            for k, v in values.items():
                covariate = k in self.law.covariates  # data: any finite value
                bad = ~(np.isfinite(v) & ((v > 0) | covariate))
                if bad.any():
                    what = "finite" if covariate else "positive and finite"
                    raise DataError(f"input {k} must be {what}, got {v[bad][0]:g}")
        if self.runs.group is None:
            if group is not None:
                raise GroupError("this fit has no groups; predict without group=")
            return values, None, None
        if group is None:
            raise GroupError(
                f"this fit is grouped by {self.runs.group_column!r}: pass group= one of "
                f"{list(self.runs.groups)} (or a new label with new_group=True)"
            )
        points = next(iter(values.values())).shape
        try:
            labels = np.broadcast_to(np.asarray(group, dtype=str), points)
        except ValueError:
            raise GroupError(
                f"group= gives {np.size(group)} label(s) for {points[0]} point(s): give one label, or one per point"
            ) from None
        return values, labels, self._group_codes(labels, new_group)

    @property
    def _items(self) -> str:
        """The column of the number of items a binomial fit's runs are scored on."""
        return self.runs.columns.get("items", "n_items")

    def _group_labels(self, group: Any) -> list[str]:
        """The labels ``group=`` asks for, as text: every group of the fit when None."""
        labels = list(self.runs.groups) if group is None else [str(g) for g in np.atleast_1d(group)]
        if not labels:
            raise GroupError(f"group= names no group; give one or more of {list(self.runs.groups)} (or none: all)")
        return labels

    def _group_codes(self, labels: Sequence[str] | np.ndarray, new_group: bool = False) -> np.ndarray:
        """Each label's group index; with ``new_group``, each label not in the data is its own new group
        (codes -1, -2, ...), drawn from the population; without, such a label is an error."""
        unknown = sorted({str(g) for g in labels} - set(self.runs.groups))
        if unknown and not new_group:
            raise GroupError(
                f"unknown group(s) {unknown} of {self.runs.group_column!r}; this fit knows "
                f"{list(self.runs.groups)}. To predict for a group not in the fit (from the "
                "population, a wider band) pass new_group=True (CLI: --new-group)"
            )
        index = {g: i for i, g in enumerate(self.runs.groups)}
        index.update({g: -1 - i for i, g in enumerate(dict.fromkeys(g for g in labels if g not in index))})
        return np.array([index[g] for g in labels])

    def curve(
        self, inputs: Mapping[str, np.ndarray], codes: np.ndarray | None = None, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """Posterior draws of the fitted law at ``inputs`` on the link scale (log-loss for a loss), without
        the discrepancy: (chain * draw, points).

        ``codes`` are group indices (-1: a new group, drawn from the population with ``rng``)."""
        return self._law_at(sampled_draws(self.law, self.posterior, self.priors, self.pooling, codes, rng), inputs)

    def _law_at(self, sampled: Mapping[str, np.ndarray], inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """The law on the link scale at ``inputs`` for draws of its sampled parameters (:func:`sampled_draws`)."""
        return self.observation.link(self.law.evaluate_sampled(sampled, **{k: inputs[k] for k in self.law.inputs}))

    def distance(self, inputs: Mapping[str, np.ndarray], codes: np.ndarray | None = None) -> np.ndarray:
        """Each point's distance from the nearest fitted run (of its own group; of any group for a new
        one), in decades of the law's inputs (not its covariates): 0 on a fitted run, 1 a tenfold
        extrapolation. Inputs of any (broadcast) shape; ``codes`` broadcast against it."""
        shape = np.broadcast_shapes(*(np.shape(v) for v in inputs.values()))
        if len(shape) != 1:
            flat = {k: np.broadcast_to(v, shape).ravel() for k, v in inputs.items()}
            return self.distance(flat, None if codes is None else np.broadcast_to(codes, shape).ravel()).reshape(shape)
        design = {k: self.runs.inputs[k] for k in self.law.scaled_inputs}
        if codes is None:
            return distance(inputs, design)
        out = np.empty(len(codes))
        for code in np.unique(codes):
            at, mine = codes == code, self.runs.group == code if code >= 0 else slice(None)
            out[at] = distance(
                {k: np.asarray(v)[at] for k, v in inputs.items()}, {k: v[mine] for k, v in design.items()}
            )
        return out

    def _predictive(
        self,
        inputs: Mapping[str, np.ndarray],
        codes: np.ndarray | None,
        rng: np.random.Generator,
        beyond: np.ndarray | float = 0.0,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Draws of the expected target on the link scale (the law plus the discrepancy) and of the noise at
        ``inputs``. ``beyond``: a distance the points lie from the fitted runs in something other than this
        law's inputs; the discrepancy takes the larger of it and their own distance. ``inputs`` may hold the
        points' ``items`` (see :meth:`_prediction_inputs`)."""
        mu = self.curve(inputs, codes, rng)
        noise = self.observation.noise(self.posterior, codes, rng, inputs.get("items"))
        if self.observation.discrepancy:
            mu = mu + self._delta(
                np.maximum(self.distance(inputs, codes), beyond), noise["sigma"], self._tilt(codes, rng)
            )
        return self._conditioned(inputs, codes, mu, noise, rng)

    def _conditioned(
        self,
        inputs: Mapping[str, np.ndarray],
        codes: np.ndarray | None,
        mu: np.ndarray,
        noise: dict[str, np.ndarray],
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """With autocorrelated noise, ``mu`` (draws x points) and the noise conditioned on each point's
        group's fitted run nearest before it along the autocorrelated input (its residual from the law,
        draw by draw: :meth:`ObservationModel.conditional`); otherwise as they are. Strictly before: at a
        fitted run this is the one-step predictive the fit scored it with, not the run itself."""
        along = self.observation.autocorrelated
        if not along:
            return mu, noise
        assert self.runs.group is not None, "autocorrelated noise is fitted with groups"
        codes = np.broadcast_to(np.full(1, -1) if codes is None else codes, (mu.shape[1],))
        fitted = self.runs.inputs[along]
        position = np.broadcast_to(np.asarray(inputs[along], dtype=float), (mu.shape[1],))
        index, gap = predecessors(position, codes, fitted, self.runs.group)
        residual = np.zeros(mu.shape)
        rows, where = np.unique(index[index >= 0], return_inverse=True)
        if rows.size:
            law = self.curve({k: v[rows] for k, v in self.runs.inputs.items()}, self.runs.group[rows], rng)
            residual[:, index >= 0] = (self.observation.link(self.runs.loss[rows]) - law)[:, where]
        mu, sigma = self.observation.conditional(mu, noise["sigma"], residual, gap, noise["ell"])
        return mu, {**noise, "sigma": sigma}

    def _tilt(self, codes: np.ndarray | None, rng: np.random.Generator | None) -> np.ndarray:
        """The discrepancy's tilt ``z`` at the groups ``codes`` (one code for all, or one per point):
        (S, 1) or (S, points). Each group has its own, a group not in the data a fresh one; a fit without
        groups (or saved before ``z`` was per group) has one for all."""
        z = self.draws("z")
        if z.ndim == 1:
            return z[:, None]
        assert codes is not None, "a discrepancy per group needs the points' group codes"
        fresh = np.random.default_rng() if rng is None else rng
        return _at_points(z, codes, lambda: fresh.standard_normal((z.shape[0], 1)))

    def _delta(self, dist: np.ndarray, sigma: np.ndarray, z: np.ndarray) -> np.ndarray:
        """The discrepancy's draws at distances (points,) or (S, points), with noise scales ``sigma`` and
        tilts ``z`` (:meth:`_tilt`)."""
        return self.observation.delta(self.draws("kappa")[:, None], sigma, z, dist)

    def link_draws(
        self,
        inputs: Mapping[str, np.ndarray],
        codes: np.ndarray | None = None,
        *,
        kind: str = "mean",
        seed: int | np.random.Generator | None = None,
    ) -> np.ndarray:
        """Posterior draws of the target at ``inputs`` on the link scale (log-loss for a loss): shape
        (chain * draw, points).

        ``kind="mean"``: the expected value for a run there (the law, and beyond the fitted runs its
        discrepancy; with autocorrelated noise, also the lean of the group's latest fitted run before it);
        ``"observation"``: a new run's observed value (adds the noise).
        """
        if kind not in ("mean", "observation"):
            raise OptionError(f"kind must be 'mean' or 'observation', got {kind!r}")
        rng = generator(seed)
        mu, noise = self._predictive(inputs, codes, rng)
        return self.observation.sample(mu, noise, rng) if kind == "observation" else mu

    def loss_draws(
        self,
        inputs: Mapping[str, np.ndarray],
        codes: np.ndarray | None = None,
        *,
        kind: str = "mean",
        seed: int | np.random.Generator | None = None,
    ) -> np.ndarray:
        """Posterior draws of the target (the loss) at ``inputs`` on its own scale (see :meth:`link_draws`)."""
        return self.observation.inverse(self.link_draws(inputs, codes, kind=kind, seed=seed))

    def log_density(
        self,
        inputs: Mapping[str, np.ndarray],
        codes: np.ndarray | None,
        loss: np.ndarray,
        seed: int | np.random.Generator | None = None,
    ) -> np.ndarray:
        """Log density of an observed ``loss`` (the target, on the link scale) at ``inputs`` under each draw:
        (chain * draw, points)."""
        mu, noise = self._predictive(inputs, codes, generator(seed))
        return self.observation.logpdf(self.observation.link(loss), mu, noise)

    def with_discrepancy(self, kappa: Any | None, *, seed: int | None = None) -> ScalingFit:
        """The same fit with the discrepancy's ``kappa`` drawn from another prior (a spec as in ``priors``,
        e.g. ``"LogNormal(1.5, 0.3)"``), or without the discrepancy (``None``). No refit: the discrepancy is
        zero on the fitted runs, so the posterior of the law does not depend on it."""
        tree = self.tree.copy()
        posterior = self.posterior.drop_vars(["kappa", "z"], errors="ignore")
        priors = {k: v for k, v in self.priors.items() if k != "kappa"}
        if kappa is not None:
            priors["kappa"] = Prior.from_spec("kappa", kappa)
            posterior = posterior.assign(discrepancy_draws(priors["kappa"], posterior, seed))
        tree["posterior"] = xr.DataTree(posterior)
        tree.attrs = {**tree.attrs, "priors": json.dumps({k: v.to_dict() for k, v in priors.items()})}
        return ScalingFit(tree)

    def _as_draws(
        self, values: np.ndarray, dims: tuple[str, ...], coords: Mapping[str, Any], name: str, **attrs: Any
    ) -> xr.DataArray:
        """Draws of shape (chain * draw, ...) as a DataArray with dims (chain, draw, *dims)."""
        post = self.tree["posterior"]
        shape = (post.sizes["chain"], post.sizes["draw"], *values.shape[1:])
        return xr.DataArray(
            values.reshape(shape),
            dims=("chain", "draw", *dims),
            name=name,
            attrs=attrs,
            coords={"chain": post["chain"].values, "draw": post["draw"].values, **coords},
        )

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
        """Posterior draws of the loss at new runs or inputs: dims (chain, draw, point), with each point's
        inputs, group and distance from the fitted runs as coordinates. Arguments as in :meth:`predict`."""
        values, labels, codes = self._prediction_inputs(runs, inputs, group, new_group)
        coords: dict[str, Any] = {k: ("point", v) for k, v in values.items()}
        if codes is not None:
            coords.update(group=("point", labels), new_group=("point", codes < 0))
        coords["distance"] = ("point", self.distance(values, codes))
        return self._as_draws(
            self.loss_draws(values, codes, kind=kind, seed=seed), ("point",), coords, "loss", kind=kind
        )

    def with_predictions(
        self,
        runs: pd.DataFrame | None = None,
        *,
        kind: str = "observation",
        group: str | Sequence[str] | None = None,
        new_group: bool = False,
        seed: int | None = None,
        **inputs: Any,
    ) -> xr.DataTree:
        """A copy of the fit's DataTree with ArviZ's ``predictions`` group (draws of the target on the link
        scale, ``log_loss`` for a loss, at the points,
        dims chain, draw, point; a new run's by default) and ``predictions_constant_data`` (the points'
        inputs, group and distance), for ArviZ's plots or to save beside the fit. Arguments as in
        :meth:`predict`."""
        draws = self.predict_draws(runs, kind=kind, group=group, new_group=new_group, seed=seed, **inputs)
        tree = self.tree.copy()
        points = draws.drop_vars(["chain", "draw"]).coords.to_dataset()
        link = self.observation.link(draws.reset_coords(drop=True))
        tree["predictions"] = xr.DataTree(xr.Dataset({self.observation.observed: link}))
        tree["predictions_constant_data"] = xr.DataTree(points)
        tree["predictions"].attrs["kind"] = kind
        return tree

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
        """Posterior predictive loss at new runs (a table) or at inputs given as keywords (``N=..., D=...``).

        Returns one row per point: the inputs, its ``distance`` from the nearest fitted run (decades of
        the inputs; beyond the runs the discrepancy widens the band with it), the median loss and the
        bounds of each equal-tailed interval in ``prob`` (columns ``eti50_lower``, ``eti50_upper``, ...).
        ``kind="mean"``: the expected loss of a run there; ``"observation"``: a new run's observed loss.
        A table of runs that has the fit's loss column gets ``observed`` and, per interval,
        ``inside_eti50``...: to check runs you held out, use ``kind="observation"``. A grouped fit needs
        ``group`` (or the group column in the table), a label the fit knows; ``new_group=True`` allows
        other labels, each predicted as a new group from the population (a wider band). ``seed`` fixes the
        random draws. The draws themselves: :meth:`predict_draws`.
        """
        probs = intervals.check_probs(prob)
        runs = None if runs is None else read_table(runs)  # a file read once
        draws = self.predict_draws(runs, kind=kind, group=group, new_group=new_group, seed=seed, **inputs)
        table = intervals.summarize(draws, probs, self.observed_loss(runs))
        table.attrs["kind"] = kind
        return table

    def log_predictive_density(
        self, runs: pd.DataFrame, *, new_group: bool = False, seed: int | None = None
    ) -> np.ndarray:
        """Log posterior predictive density of each run's observed target on the link scale (log-loss for a
        loss; the runs need the target's column)."""
        runs = read_table(runs)
        values, _, codes = self._prediction_inputs(runs, {}, None, new_group)
        observed = self.observation.link(self.checked_loss(runs))
        mu, noise = self._predictive(values, codes, generator(seed))
        return self.observation.predictive_logpdf(observed, mu, noise)

    def checked_loss(self, runs: pd.DataFrame) -> np.ndarray:
        """The observed loss of every run in ``runs``: an error names a missing column or value."""
        observed = self.observed_loss(runs)
        if observed is None:
            raise DataError(f"runs to score need the loss column {self.runs.columns['loss']!r}")
        if np.isnan(observed).any():
            raise DataError(
                f"column {self.runs.columns['loss']!r} has a missing value in row "
                f"{int(np.flatnonzero(np.isnan(observed))[0])}; every run scored needs its loss"
            )
        return observed

    def observed_loss(self, runs: pd.DataFrame | None) -> np.ndarray | None:
        """The loss column of ``runs`` (named as in the fitted runs), checked; None if it has none.
        Missing values (NaN) stay NaN: runs not trained yet."""
        column = self.runs.columns["loss"]
        runs = None if runs is None else read_table(runs)
        if runs is None or column not in runs:
            return None
        values = pd.to_numeric(runs[column], errors="coerce").to_numpy(dtype=float)
        finite = np.isfinite(values)
        bad = np.flatnonzero(runs[column].notna().to_numpy() & ~finite)  # not a number, or infinite
        bad = np.union1d(bad, np.flatnonzero(finite)[outside_support(self.law.target, values[finite])])
        if bad.size:
            raise DataError(
                f"column {column!r} must be {TARGETS[self.law.target][1]}; row {bad[0]} has "
                f"{runs[column].iloc[bad[0]]!r}"
            )
        return values

    # ------------------------------------------------------------------------------ compute-optimal
    def _group_draws(
        self, group: str | Sequence[str] | None, new_group: bool, seed: int | np.random.Generator | None
    ) -> tuple[list[str] | None, list[tuple[dict, Any]]]:
        """The group labels asked for (every known one by default; None for a fit without groups) and, for
        each, sampled draws of shape (S, 1) and the discrepancy's offset, which maps inputs of shape
        (S, budgets) to log-offsets."""
        rng = generator(seed)
        if self.runs.group is None:
            if group is not None:
                raise GroupError("this fit has no groups; call without group=")
            sampled = sampled_draws(self.law, self.posterior, self.priors, self.pooling, None)
            return None, [(sampled, self._offset(None))]
        labels = self._group_labels(group)
        codes = self._group_codes(labels, new_group)
        return labels, [
            (
                sampled_draws(self.law, self.posterior, self.priors, self.pooling, codes[i : i + 1], rng),
                self._offset(codes[i : i + 1], rng),
            )
            for i in range(len(labels))
        ]

    def _offset(self, codes: np.ndarray | None, rng: np.random.Generator | None = None) -> Any:
        """The discrepancy as a function of inputs of shape (S, k), for one group (None without it)."""
        if not self.observation.discrepancy:
            return None
        sigma = self.observation.noise(self.posterior, codes, rng)["sigma"][:, :1]
        z = self._tilt(codes, rng)  # drawn once: a new group keeps its tilt across calls

        def offset(inputs: Mapping[str, np.ndarray]) -> np.ndarray:
            return self._delta(self.distance(inputs, codes), sigma, z)

        return offset

    def _by_group(
        self,
        labels: list[str] | None,
        parts: list[dict[str, np.ndarray]],
        trailing: tuple[str, ...],
        coords: Mapping[str, Any],
    ) -> xr.Dataset:
        """Per-group dicts of draws (S, *trailing) as one Dataset: dims (chain, draw[, group], *trailing)."""
        dims = trailing if labels is None else ("group", *trailing)
        coords = dict(coords) | ({} if labels is None else {"group": labels})
        return xr.Dataset(
            {
                name: self._as_draws(
                    np.stack([p[name] for p in parts], axis=1) if labels is not None else parts[0][name],
                    dims,
                    coords,
                    name,
                )
                for name in parts[0]
            }
        )

    def optimal_draws(
        self,
        C: ArrayLike,
        *,
        flops: str | None = None,
        group: str | Sequence[str] | None = None,
        new_group: bool = False,
        method: str = "auto",
        seed: int | None = None,
        **fixed: float,
    ) -> xr.Dataset:
        """Posterior draws of the compute-optimal allocation (see :meth:`compute_optimal`): ``N_opt``,
        ``D_opt``, ``loss``, ``tokens_per_param``, ``a``, ``b``, dims (chain, draw[, group], budget), the
        budgets in the coordinate ``C``."""
        from .optimal import checked_positive, optimum

        budgets = checked_positive(C)
        step = 10**0.5  # local exponents: log-slope over the decade C / step .. C * step
        labels, groups = self._group_draws(group, new_group, seed)
        parts = []
        for sampled, offset in groups:
            opt = optimum(self.law, sampled, budgets[None, :], flops=flops, fixed=fixed, method=method, offset=offset)
            up = optimum(self.law, sampled, budgets[None, :] * step, flops=flops, fixed=fixed, method=method)
            down = optimum(self.law, sampled, budgets[None, :] / step, flops=flops, fixed=fixed, method=method)
            parts.append(
                {
                    "N_opt": opt["N"],
                    "D_opt": opt["D"],
                    "loss": opt["loss"],
                    "tokens_per_param": opt["D"] / opt["N"],
                    "a": np.log(up["N"] / down["N"]) / (2 * np.log(step)),
                    "b": np.log(up["D"] / down["D"]) / (2 * np.log(step)),
                }
            )
        out = self._by_group(labels, parts, ("budget",), {"C": ("budget", budgets)})
        out.attrs.update(method=method, flops=flops or str(self.law.compute))
        return out

    def compute_optimal(
        self,
        C: ArrayLike,
        *,
        prob: float | tuple[float, ...] = intervals.PROBS,
        flops: str | None = None,
        group: str | Sequence[str] | None = None,
        new_group: bool = False,
        method: str = "auto",
        seed: int | None = None,
        **fixed: float,
    ) -> pd.DataFrame:
        """The compute-optimal allocation at each budget ``C`` (FLOPs), as a posterior.

        For every draw the law is minimised along flops(N, D) = C: in closed form where the law declares
        one (Chinchilla: N_opt = G (C/6)^a, a = beta / (alpha + beta)), numerically otherwise. Returns a
        row per budget (and group) with the median and equal-tailed bounds of ``N_opt``, ``D_opt``, the
        ``loss`` there, ``tokens_per_param`` and the scaling exponents ``a`` (N_opt ~ C^a) and ``b``
        (D_opt ~ C^b), as log-slopes over the decade around C (exact for power-law frontiers). The loss
        carries the extrapolation discrepancy at the allocation's distance from the runs; the allocation
        is the law's. ``flops`` replaces the law's FLOPs formula (one proportional to D, e.g.
        ``"6 * N * D + 6 * 4096 * 24 * D"``); ``fixed`` sets other inputs (``U=`` unique tokens). A grouped
        fit gives every group, or ``group``. The draws themselves: :meth:`optimal_draws`.
        """
        probs = intervals.check_probs(prob)
        draws = self.optimal_draws(C, flops=flops, group=group, new_group=new_group, method=method, seed=seed, **fixed)
        table = intervals.summarize(draws, probs)
        table.attrs.update(draws.attrs)
        return table

    def budget_draws(
        self,
        target: float,
        *,
        flops: str | None = None,
        group: str | Sequence[str] | None = None,
        new_group: bool = False,
        method: str = "auto",
        seed: int | None = None,
        **fixed: float,
    ) -> xr.Dataset:
        """Posterior draws of the smallest budget that reaches loss ``target`` (see
        :meth:`compute_for_loss`): ``C``, ``N``, ``D`` (NaN where the draw never reaches it) and
        ``reachable``, dims (chain, draw[, group])."""
        from .optimal import budget_for_loss

        if not (is_number(target) and target > 0):
            raise OptionError(f"target loss must be a positive finite number, got {target!r}")
        labels, groups = self._group_draws(group, new_group, seed)
        parts = [
            budget_for_loss(self.law, sampled, float(target), flops=flops, fixed=fixed, method=method, offset=offset)
            for sampled, offset in groups
        ]
        out = self._by_group(labels, parts, (), {})
        out.attrs["target"] = float(target)
        return out

    def compute_for_loss(
        self,
        target: float,
        *,
        prob: float | tuple[float, ...] = intervals.PROBS,
        flops: str | None = None,
        group: str | Sequence[str] | None = None,
        new_group: bool = False,
        method: str = "auto",
        seed: int | None = None,
        **fixed: float,
    ) -> pd.DataFrame:
        """The smallest budget (and its N, D) whose compute-optimal run reaches loss ``target``.

        The loss at each budget carries the extrapolation discrepancy, so draws whose curve tilts upward
        far beyond the runs may never reach the target, as may draws whose irreducible loss lies above
        it: ``reachable_fraction`` says which fraction of the posterior reaches it at some budget up to
        1e40 FLOPs, the intervals describe those draws alone, and a warning says so. The draws
        themselves: :meth:`budget_draws`.
        """
        probs = intervals.check_probs(prob)
        draws = self.budget_draws(
            target, flops=flops, group=group, new_group=new_group, method=method, seed=seed, **fixed
        )
        share = draws["reachable"].mean(intervals.SAMPLE_DIMS)
        already = np.atleast_1d(draws["already_reached"].mean(intervals.SAMPLE_DIMS).values)
        labels = list(draws["group"].values) if "group" in draws.dims else [None]
        for label, fraction, early in zip(labels, np.atleast_1d(share.values), already, strict=True):
            name = "" if label is None else f" for group {label!r}"
            if early == 1:
                raise OptionError(
                    f"loss {target:g}{name} is reached already at 1e10 FLOPs, the smallest budget searched, by "
                    "every posterior draw: ask for a lower loss"
                )
            if early > 0:
                warnings.warn(
                    f"loss {target:g}{name} is reached already at 1e10 FLOPs (the smallest budget searched) by "
                    f"{early:.1%} of the posterior; intervals describe the draws that need more",
                    stacklevel=2,
                )
            if fraction == 0:
                raise OptionError(
                    f"loss {target:g} is out of reach{name}: no posterior draw gets there at any "
                    "budget up to 1e40 FLOPs (the target is below the loss the law can reach)"
                )
            if fraction < 1:
                warnings.warn(
                    f"loss {target:g}{name} is out of reach for {1 - fraction:.1%} of the posterior "
                    "(below its irreducible loss, or its extrapolation discrepancy keeps it above); "
                    "intervals describe the other draws",
                    stacklevel=2,
                )
        table = intervals.summarize(draws[["C", "N", "D"]], probs)
        table.insert(0, "target", float(target))
        table.insert(1 + ("group" in table), "reachable_fraction", np.atleast_1d(share.values).astype(float))
        return table

    # ------------------------------------------------------------------------------ experiment design
    def suggest_runs(
        self,
        candidates: pd.DataFrame | Mapping[str, Any],
        *,
        target: pd.DataFrame | Mapping[str, Any] | str,
        C: ArrayLike | None = None,
        budget: float,
        batch: int | None = None,
        cost: str | None = None,
        group: str | Sequence[str] | None = None,
        new_group: bool = False,
        prob: float = intervals.PROB,
        seed: int | None = None,
    ) -> pd.DataFrame:
        """The runs to train next: from ``candidates``, those that most shrink the posterior of ``target``
        per unit cost, chosen one at a time until the ``budget`` is spent (or ``batch`` runs are chosen).

        Parameters
        ----------
        candidates
            Runs that could be trained: a table with the fit's input columns (and its group column for a
            grouped fit, groups the fit knows), or a grid, a mapping of those columns to values, tried in
            every combination (``{"n_params": np.geomspace(1e7, 1e9, 9), "n_tokens": [...]}``).
        target
            What to pin down: the expected loss at given inputs (a table like ``candidates``, or a mapping
            of the law's inputs such as ``{"N": 7e9, "D": 1.4e11}``; several points add their variances),
            or ``"N_opt"``, ``"D_opt"`` or ``"loss_opt"``, the compute-optimal allocation or its loss at the
            budget(s) ``C`` (for every group of a grouped fit, or ``group``).
        budget, batch
            The most the chosen runs may cost together (in the units of ``cost``), and at most how many.
        cost
            A run's cost as a formula in the law's inputs (default: the law's FLOPs formula, ``6 * N * D``
            for Chinchilla's).
        group, new_group
            For a grouped fit: which groups' target (a label not in the fit needs ``new_group=True``).
        prob, seed
            The interval whose expected width is reported, and the seed of the random draws.

        Returns
        -------
        pandas.DataFrame
            The chosen candidates in the order chosen (their rows as given), with ``cost``, ``total_cost``
            and ``eti90_width``: the expected width of the target's interval once the runs so far are
            trained and fitted (mean over the target's points, in its units). ``attrs["width_now"]`` is
            the width today; an empty plan says why in ``attrs["note"]`` (a budget below every candidate's
            cost is an :class:`OptionError`).

        Notes
        -----
        No refit per candidate: the forecast comes from the posterior draws (the law linearised at each of
        256 of them, and the extrapolation discrepancy's shrinking distance; see :mod:`bayes_scaling.design`).
        It is the model's own expectation, so it cannot foresee a band that widens because the new runs
        disagree with the fit (from 8 of Gadre's runs the refits were 2.4-5.2x wider than forecast;
        benchmarks/design_forecast.py): refit after each batch and plan again.
        """
        from .design import suggest_runs

        return suggest_runs(
            self,
            candidates,
            target=target,
            C=C,
            budget=budget,
            batch=batch,
            cost=cost,
            group=group,
            new_group=new_group,
            prob=prob,
            seed=seed,
        )

    # ------------------------------------------------------------------------------ the model, refits
    def _priors_with_spreads(self) -> dict[str, Prior]:
        """The priors of the PyMC model (no kappa), with the spread prior of each partially pooled
        parameter (fits saved before it was stored get the default)."""
        from .priors import GROUP_SD

        priors = {k: v for k, v in self.priors.items() if k != "kappa"}
        for p, mode in self.pooling.items():
            if mode == "partial":
                priors.setdefault(f"{p}_sd", Prior.from_spec(f"{p}_sd", GROUP_SD))
        return priors

    @property
    def model(self) -> Any:
        """The fit's PyMC model (a ``pm.Model`` with its runs as data), built anew: changing it changes
        no fit and no compiled model kept for reuse."""
        from .model import build_model

        return build_model(
            self.law,
            self.runs,
            self._priors_with_spreads(),
            observation=self.observation,
            pooling=self.pooling,
            parametrisation=self.parametrisation,
        )

    def _fit_options(self) -> dict[str, Any]:
        """What ``fit`` needs to fit this model again: the law as written (data-derived scales unset), its
        priors, observation model, pooling and its parametrisation, sampler settings and columns."""
        s = self.settings
        columns = {k: v for k, v in self.runs.columns.items() if k in (*self.law.inputs, "loss", "items")}
        return dict(
            law=Law.from_toml(self.tree.attrs["law"], origin=f"fit of {self.law.name!r}"),
            priors={
                **self._priors_with_spreads(),
                **({"kappa": self.priors["kappa"]} if "kappa" in self.priors else {}),
            },
            likelihood=self.likelihood,
            noise_by_group=self.observation.noise_by_group,
            discrepancy=self.observation.discrepancy,
            autocorrelated=self.observation.autocorrelated,
            pooling=dict(self.pooling),
            parametrisation=self.parametrisation,
            group=self.runs.group_column,
            columns=columns,
            **{k: s[k] for k in ("sampler", "chains", "draws", "tune", "target_accept", "adaptation")},
        )

    def refit(
        self, runs: pd.DataFrame | str | Path, *, seed: int | None = None, progressbar: bool = True, cache: Any = None
    ) -> ScalingFit:
        """The same model (law, priors, observation model, pooling and sampler settings) fitted to other
        runs with the same columns; in this process it reuses the compiled model when the groups match."""
        from .fitting import fit

        return fit(runs, **self._fit_options(), seed=seed, progressbar=progressbar, cache=cache)

    def extend(
        self, draws: int | None = None, *, seed: int | None = None, progressbar: bool = True, cache: Any = None
    ) -> ScalingFit:
        """More posterior draws: at least ``draws`` more (default: as many as the fit has), sampled with the
        same model and settings as new chains of the fit's length (a chain cannot be resumed) and appended
        to its chains. Diagnostics then cover every chain."""
        from .fitting import fit

        if draws is not None and (isinstance(draws, bool) or not isinstance(draws, int | np.integer) or draws < 1):
            raise OptionError(f"extend: draws must be a whole number >= 1 (or None: as many as now), got {draws!r}")
        post = self.tree["posterior"]
        per_chain, chains = post.sizes["draw"], post.sizes["chain"]
        more = int(np.ceil((draws or per_chain * chains) / per_chain))
        seeds = self.settings.get("seeds", [self.settings["seed"]])
        if seed is None:  # a new seed for each extension, also after keep_chains left as many chains as before
            seed = int(np.random.SeedSequence([int(self.settings["seed"]), chains, len(seeds)]).generate_state(1)[0])
        options = self._fit_options() | {"chains": more, "draws": per_chain}
        with warnings.catch_warnings():  # checked once, below, on every chain together
            warnings.simplefilter("ignore", SamplingWarning)
            warnings.simplefilter("ignore", MisfitWarning)
            extra = fit(self.runs, **options, seed=seed, progressbar=progressbar, cache=cache)
        tree = self.tree.copy()
        for name in ("posterior", "sample_stats", "posterior_predictive", "log_likelihood"):
            new = extra.tree[name].to_dataset().assign_coords(chain=np.arange(chains, chains + more))
            tree[name] = xr.DataTree(xr.concat([self.tree[name].to_dataset(), new], dim="chain", join="outer"))
        settings = dict(self.settings, chains=chains + more, seeds=[*seeds, seed])
        if "kept_chains" in settings:
            settings["kept_chains"] = [*settings["kept_chains"], *[None] * more]
        tree.attrs = {**tree.attrs, "settings": json.dumps(settings)}
        result = ScalingFit(tree)
        result.warn_if_unreliable()
        return result

    # ------------------------------------------------------------------------------ persistence
    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the fit to one netCDF file, atomically; refuses an existing file unless ``overwrite``, and
        anything there that is not a file (a folder, a device) always."""
        path = _file_path(path, "save")
        try:
            return self._save(path, overwrite)
        except BayesScalingError:
            raise
        except (OSError, ValueError) as err:  # a name too long, a NUL in it, no permission ...
            raise FitFileError(f"cannot save to {str(path)!r}: {err}") from None

    def _save(self, path: Path, overwrite: bool) -> Path:
        """:meth:`save` itself; the file system's own errors are named by :meth:`save`."""
        if path.exists() and not path.is_file():
            raise FitFileError(f"cannot save to {str(path)!r}: it is not a file (a folder or a device)")
        if path.exists() and not overwrite:
            raise OutputExistsError(f"{str(path)!r} exists; pass overwrite=True to replace it")
        if not path.resolve().parent.is_dir():
            raise FitFileError(f"cannot save to {str(path)!r}: folder {str(path.parent)!r} does not exist")
        folder = path.parent if str(path.parent) else Path(".")
        _remove_stale_temporaries(folder)
        fd, tmp = tempfile.mkstemp(prefix=f"{_TMP_PREFIX}{os.getpid()}.", suffix=".nc.tmp", dir=folder)
        os.close(fd)
        try:
            self.tree.to_netcdf(tmp, engine="h5netcdf")
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; a saved fit gets the usual mode
            if overwrite:
                os.replace(tmp, path)
            else:
                try:
                    os.link(tmp, path)  # fails if the file appeared meanwhile: never clobbers
                except FileExistsError:
                    raise
                except OSError:  # no hard links here: create exclusively, then copy
                    with open(tmp, "rb") as src, open(path, "xb") as dst:
                        shutil.copyfileobj(src, dst)
        except FileExistsError:
            raise OutputExistsError(f"{str(path)!r} exists; pass overwrite=True to replace it") from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path

    @classmethod
    def load(cls, path: str | Path) -> ScalingFit:
        """Read a fit written by :meth:`save`."""
        path = _file_path(path, "load")
        try:
            found = path.is_file()
        except (OSError, ValueError):  # a name too long, a NUL in it
            found = False
        if not found:
            raise FitFileError(f"no saved fit at {str(path)!r}")
        try:
            with xr.open_datatree(path, engine="h5netcdf") as tree:
                tree = tree.load()
        except Exception as err:  # any failure to read a foreign, truncated or corrupt file is the file's
            raise FitFileError(f"{str(path)!r} is not a saved bayes_scaling fit (netCDF): {err}") from None
        if "law" not in tree.attrs:
            raise FitFileError(f"{str(path)!r} is not a bayes_scaling fit (no law in its attributes)")
        try:
            fit = cls(tree)
            missing = [v for v in fit.sampled_names if v not in tree["posterior"]]  # its pooling and noise, read
            if missing:
                raise KeyError(f"the posterior has no {missing}")
            return fit
        except (KeyError, ValueError, TypeError, AttributeError, IndexError) as err:
            raise FitFileError(
                f"{str(path)!r} is a damaged or hand-edited bayes_scaling fit: {type(err).__name__}: {err}"
            ) from None

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"<ScalingFit law={self.law.name!r} runs={len(self.runs)} sampler={s['sampler']} "
            f"chains={s['chains']} draws={s['draws']}>"
        )
