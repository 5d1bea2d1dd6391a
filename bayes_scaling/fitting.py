"""``fit``: sample a law's posterior on a table of runs."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm

from .data import RunTable, load_runs, warn_if_repeated
from .diagnostics import convergence
from .errors import ConvergenceError, OptionError, PriorError, check_seed
from .laws import Law, load_law
from .model import PARAMETRISATIONS, build_model, data_values, resolve_pooling
from .native import compile_nutpie
from .observation import LIKELIHOODS, ObservationModel
from .priors import GROUP_SD, Prior, resolve_priors
from .result import MAX_RHAT, ScalingFit, assemble_tree, sampled_names, summarize_convergence
from .samplers import SAMPLERS, run_sampler

__all__ = [
    "ADAPTATIONS",
    "LIKELIHOODS",
    "LOW_RANK_MAX_DIM",
    "SAMPLERS",
    "CompileCache",
    "compile_cache",
    "compiled_model",
    "fit",
    "restart_reason",
]

log = logging.getLogger("bayes_scaling")

ADAPTATIONS = ("auto", "low_rank", "diag")
#: ``adaptation="auto"`` uses the low-rank mass matrix up to this many sampled scalars (a hierarchy of about 20
#: groups of a five-parameter law). Beyond it the low-rank adaptation cost more than it saved: 22-69 s of
#: sampling against 1.3-1.7 s with the diagonal one at 160-310 scalars (300 groups: 233 s against 7.5 s).
LOW_RANK_MAX_DIM = 100


def restart_reason(checked: Mapping[str, Mapping[str, np.ndarray]], tree: Any) -> str | None:
    """Why a run of the sampler fails the checks a fit warns on (divergent transitions, or R-hat above
    ``MAX_RHAT`` in ``checked``, the output of :func:`~bayes_scaling.diagnostics.convergence`), or None."""
    d = summarize_convergence(checked, tree["sample_stats"])
    if d["divergences"]:
        return f"{d['divergences']} divergent transition(s)"
    return f"R-hat {d['max_r_hat']:.3f} > {MAX_RHAT}" if d["max_r_hat"] > MAX_RHAT else None


class CompileCache:
    """Compiled models kept for reuse within this process, keyed by everything that shapes the model (law,
    priors, observation model, sampler, pooling, groups); refits swap their runs in as data. Holds at most
    ``maxsize`` models (the least recently used is dropped; 0 keeps none). The default instance is
    ``bayes_scaling.compile_cache``; pass another to ``fit(cache=...)``."""

    def __init__(self, maxsize: int = 8) -> None:
        if not isinstance(maxsize, int) or maxsize < 0:
            raise OptionError(f"maxsize must be a non-negative integer, got {maxsize!r}")
        self.maxsize = maxsize
        self._models: OrderedDict[tuple, tuple[pm.Model, Any]] = OrderedDict()

    def get(self, key: tuple) -> tuple[pm.Model, Any] | None:
        if key in self._models:
            self._models.move_to_end(key)
            return self._models[key]
        return None

    def put(self, key: tuple, value: tuple[pm.Model, Any]) -> None:
        self._models[key] = value
        while len(self._models) > self.maxsize:
            self._models.popitem(last=False)

    def clear(self) -> None:
        self._models.clear()

    def __len__(self) -> int:
        return len(self._models)

    def __repr__(self) -> str:
        return f"<CompileCache {len(self)} of at most {self.maxsize} compiled models>"


#: The compile cache ``fit`` uses by default.
compile_cache = CompileCache()


def compiled_model(
    law: Law,
    runs: RunTable,
    priors: Mapping[str, Prior],
    observation: ObservationModel,
    sampler: str,
    pooling: Mapping[str, str] | None = None,
    cache: CompileCache | None = None,
    parametrisation: str = "non_centred",
) -> tuple[pm.Model, Any, float]:
    """The PyMC model (and, for nutpie, its compiled form) with ``runs`` as data; compiles once per key
    of the ``cache`` (default :data:`compile_cache`).

    Returns the model, the compiled nutpie model (None for other samplers) and the seconds spent
    building and compiling (0.0 when the cache already held it).
    """
    cache = compile_cache if cache is None else cache
    if not isinstance(cache, CompileCache):
        raise OptionError(f"cache must be a CompileCache (bayes_scaling.fitting.CompileCache), got {cache!r:.80}")
    pooling = pooling or resolve_pooling(law, runs, None, autocorrelated=observation.autocorrelated is not None)
    key = (
        law.digest,
        tuple((k, v.dist, tuple(sorted(v.kwargs.items()))) for k, v in priors.items()),
        observation.likelihood,
        observation.noise_by_group,
        observation.autocorrelated,
        sampler,
        tuple(pooling.items()),
        parametrisation,
        runs.groups,
    )
    values = data_values(law, runs, observation, pooling)
    start = time.perf_counter()
    found = cache.get(key)
    if found is None:
        log.info("compiling the %s model (%s)", law.name, sampler)
        model = build_model(
            law, runs, priors, observation=observation, pooling=pooling, parametrisation=parametrisation
        )
        compiled = None
        if sampler == "nutpie":
            compiled = compile_nutpie(model, key)
        found = (model, compiled)
        cache.put(key, found)
    elapsed = time.perf_counter() - start
    model, compiled = found
    pm.set_data(values, model=model, coords={"obs": np.arange(len(runs))})
    if compiled is not None:
        compiled = compiled.with_data(**values)
    return model, compiled, elapsed


def fit(
    runs: pd.DataFrame | str | Path | RunTable,
    *,
    law: str | Path | Law = "chinchilla",
    priors: Mapping[str, Any] | None = None,
    likelihood: str = "student_t",
    sampler: str = "nutpie",
    chains: int = 4,
    draws: int = 1000,
    tune: int = 1000,
    target_accept: float = 0.9,
    adaptation: str = "auto",
    seed: int | None = None,
    progressbar: bool = True,
    columns: Mapping[str, str] | None = None,
    group: str | None = None,
    pooling: str | Mapping[str, str] | None = None,
    parametrisation: str = "non_centred",
    noise_by_group: bool = False,
    discrepancy: bool = True,
    autocorrelated: str | None = None,
    cache: CompileCache | None = None,
    strict: bool = False,
) -> ScalingFit:
    """Fit a scaling law to training runs with NUTS.

    Parameters
    ----------
    runs
        A DataFrame or CSV path with one row per run (default columns ``n_params``, ``n_tokens``,
        ``compute_flops``, ``loss``), or a checked :class:`RunTable`.
    law
        A bundled law's name (see :func:`list_laws`), a law file's path, or a :class:`Law`.
    priors
        Overrides of the default priors, by sampled parameter name (see ``law.priors``), ``sigma`` /
        ``nu`` of the observation model, its discrepancy's ``kappa``, or the spread across groups
        ``<p>_sd`` of a partially pooled parameter: ``{"alpha": {"dist": "Beta", "kwargs": {...}}}`` or
        ``{"alpha": "Beta(2, 5)"}``.
    likelihood
        ``"student_t"`` (robust to outlying runs) or ``"normal"``, on the law's link scale: log-loss for a
        loss (the law file's ``target``, see :mod:`bayes_scaling.observation`). For an accuracy scored on
        a known number of items, ``"binomial"``: each run's accuracy scatters about the law on the logit
        scale and its score is Binomial on its items (column ``n_items``, or ``columns={"items": ...}``);
        with the items unknown, ``"beta"``: the accuracy is Beta about the law, of precision ``4 / sigma^2``
        (the binomial's continuous twin, see :func:`~bayes_scaling.observation.beta_logpdf`).
    sampler
        ``"nutpie"`` (default), ``"pymc"`` or ``"numpyro"`` (needs the ``jax`` extra).
    chains, draws, tune, target_accept, seed, progressbar
        Sampler settings. ``seed=None`` draws one and records it on the fit.
    adaptation
        nutpie's mass matrix: ``"auto"`` (default), ``"low_rank"`` or ``"diag"``. The low-rank mass matrix
        learns the correlations of a law's parameters (the irreducible loss against each term's scale and
        exponent): on the 245 Chinchilla runs it samples ~6x faster than the diagonal one with ~3.5x the ESS
        (benchmarks/bench_fit.py), but now and then one chain wanders into a tail of the posterior it
        was not adapted to and stays there (about 1 fit in 30 on Gadre's 34 C4 runs). ``"auto"`` samples
        with the low-rank matrix, and if any transition diverged or R-hat exceeds 1.01 (the checks every fit
        warns on) samples again with the diagonal one and keeps that run (``settings["mass_matrix"]`` names
        the one kept, ``settings["restarted"]`` says why). Models of more than ``LOW_RANK_MAX_DIM`` sampled
        scalars (many groups), where the low-rank adaptation costs more than it saves, and other samplers use
        the diagonal one.
    columns, group
        Column names other than the defaults, and an optional group column.
    pooling
        Across groups, per sampled parameter: ``"shared"``, ``"partial"`` (a hierarchy) or
        ``"none"``; one string for all, or a dict for some. Default: ``"partial"`` with a group column,
        except with ``autocorrelated`` noise (``"shared"``: see there).
    parametrisation
        How the partially pooled parameters are sampled: ``"non_centred"`` (default; suits groups that say
        little on their own: few runs, or values close together) or ``"centred"`` (suits many groups whose
        runs pin their values down: 5x fewer gradient evaluations per draw on Porian's 15 groups of 88-132
        runs, but 80 divergences on 4 of Gadre's tasks, whose midpoints sit close together). Recorded in
        ``settings["parametrisation"]``.
    noise_by_group
        One observation noise scale ``sigma`` per group instead of one for all runs.
    discrepancy
        Add the extrapolation discrepancy to predictions (default): the law's own error beyond the runs,
        ``kappa * sigma`` per decade of distance from the nearest fitted run (see
        :mod:`bayes_scaling.observation`; override its prior with ``priors={"kappa": ...}``). False
        gives bands of the fitted law alone, which are overconfident beyond the runs.
    autocorrelated
        An input of the law (a step or token count) along which the noise of each group's runs is
        autocorrelated: the group's rows are checkpoints of one run, which lies above or below the law for
        many steps together. The noise becomes an Ornstein-Uhlenbeck process in the input's log10, with a
        correlation length ``ell`` (decades, sampled; prior ``priors={"ell": ...}``); predictions are
        conditioned on the group's latest fitted checkpoint before them (see
        :mod:`bayes_scaling.observation`). Needs a group; one row per group and position. The noise then
        carries each run's lasting offset from the law, so the law's parameters are shared by default: a
        random effect per run beside it is the same offset twice (on Li et al. 2025's checkpoints, ``ell``
        ~100 decades, and a random ``b`` per run left R-hat at 1.6-1.9).
    cache
        Where compiled models are kept for reuse (default :data:`compile_cache`, a bounded cache).
    strict
        Raise :class:`ConvergenceError` instead of warning when R-hat > 1.01, bulk or tail ESS < 400, or
        any transition diverged.

    Returns
    -------
    ScalingFit
        Posterior, log-likelihood, diagnostics and the runs; warns when R-hat > 1.01, bulk or tail
        ESS < 400 or any divergence occurred.
    """
    law = load_law(law)
    named = {"likelihood": likelihood, "sampler": sampler, "adaptation": adaptation, "parametrisation": parametrisation}
    for option, given in {**named, "autocorrelated": autocorrelated}.items():
        if not isinstance(given, str) and (given is not None or option != "autocorrelated"):
            raise OptionError(f"{option} must be a name (a string), got {given!r:.80}")
    observation = ObservationModel(likelihood, noise_by_group, discrepancy, law.target, autocorrelated)
    if autocorrelated is not None and autocorrelated not in law.inputs:
        raise OptionError(
            f"autocorrelated={autocorrelated!r} is not an input of law {law.name!r} (inputs: {', '.join(law.inputs)})"
        )
    if sampler not in SAMPLERS:
        raise OptionError(f"unknown sampler {sampler!r}; use one of {', '.join(SAMPLERS)}")
    for name, value in (("chains", chains), ("draws", draws)):
        if not isinstance(value, int) or value < 1:
            raise OptionError(f"{name} must be a positive integer, got {value!r}")
    if adaptation not in ADAPTATIONS or (adaptation == "low_rank" and sampler != "nutpie"):
        raise OptionError(f"adaptation must be 'auto', 'diag', or 'low_rank' with sampler='nutpie'; got {adaptation!r}")
    if parametrisation not in PARAMETRISATIONS:
        raise OptionError(f"parametrisation must be one of {', '.join(PARAMETRISATIONS)}, got {parametrisation!r}")
    if not isinstance(tune, int) or tune < 0:
        raise OptionError(f"tune must be a non-negative integer, got {tune!r}")
    if tune == 0 and sampler == "nutpie":
        raise OptionError("nutpie needs at least one tuning step (tune >= 1); sampler='pymc' takes tune=0")
    if priors is not None and not isinstance(priors, Mapping):
        raise PriorError(f"priors must be a mapping of parameter name to prior, got {type(priors).__name__}")
    user = dict(priors or {})
    spreads = {k: user.pop(k) for k in list(user) if k.endswith("_sd") and k.removesuffix("_sd") in law.priors}
    if not isinstance(runs, RunTable):
        runs = load_runs(
            runs,
            inputs=law.inputs,
            columns=columns,
            group=group,
            min_runs=len(law.priors) + len(observation.params),
            target=law.target,
            covariates=law.covariates,
            items=observation.items,
        )
        warn_if_repeated(runs)
    resolved = resolve_priors({**law.priors, **observation.default_priors(observation.link(runs.loss))}, user)
    law = law.with_scales(runs.inputs)
    pooling = resolve_pooling(law, runs, pooling, autocorrelated=autocorrelated is not None)
    partial = [f"{p}_sd" for p, mode in pooling.items() if mode == "partial"]
    stray = sorted(set(spreads) - set(partial))
    if stray:
        raise PriorError(
            f"prior(s) for {stray}: a spread across groups exists only for partially pooled parameters "
            f"({', '.join(partial) or 'none in this fit'})"
        )
    resolved.update(resolve_priors(dict.fromkeys(partial, GROUP_SD), spreads))
    sampled = {k: v for k, v in resolved.items() if k != "kappa"}  # what NUTS samples
    if isinstance(check_seed(seed), np.random.Generator):
        raise OptionError("fit's seed is recorded on the fit: give a whole number >= 0 (or None), not a Generator")
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])

    model, compiled, compile_s = compiled_model(
        law, runs, sampled, observation, sampler, pooling, cache, parametrisation
    )
    log.info(
        "sampling %s on %d runs: %d chains x %d draws after %d tuning steps", law.name, len(runs), chains, draws, tune
    )

    sample_s = 0.0

    def sample(mass_matrix: str) -> tuple[Any, dict[str, dict[str, np.ndarray]]]:
        nonlocal sample_s
        start = time.perf_counter()
        tree = run_sampler(
            model,
            compiled,
            sampler=sampler,
            chains=chains,
            draws=draws,
            tune=tune,
            target_accept=target_accept,
            adaptation=mass_matrix,
            seed=seed,
            progressbar=progressbar,
        )
        sample_s += time.perf_counter() - start
        return tree, convergence(tree["posterior"].to_dataset()[names])  # R-hat and ESS of what NUTS sampled

    names = sampled_names(law, pooling, observation, parametrisation)
    low_rank = sampler == "nutpie" and compiled.n_dim <= LOW_RANK_MAX_DIM
    used = adaptation if adaptation != "auto" else "low_rank" if low_rank else "diag"
    tree, checked = sample(used)
    restarted = restart_reason(checked, tree) if adaptation == "auto" and used == "low_rank" else None
    if restarted:
        log.info("low-rank mass matrix: %s; sampling again with the diagonal one", restarted)
        used = "diag"
        tree, checked = sample(used)
    log.info("sampled in %.1f s; scoring: log-likelihood and diagnostics", sample_s)
    settings = {
        "sampler": sampler,
        "chains": chains,
        "draws": draws,
        "tune": tune,
        "target_accept": target_accept,
        "adaptation": adaptation,
        "mass_matrix": used,
        "parametrisation": parametrisation,
        "seed": seed,
        "compile_seconds": compile_s,
        "sample_seconds": sample_s,
        **({"restarted": f"low_rank: {restarted}"} if restarted else {}),
    }
    result = ScalingFit(
        assemble_tree(
            tree, law=law, runs=runs, priors=resolved, pooling=pooling, observation=observation, settings=settings
        ),
        convergence=checked,
    )
    problems = result.warn_if_unreliable()
    if strict and problems:
        raise ConvergenceError(
            f"{law.name} (strict): {'; '.join(problems)}. Run longer (draws=, tune=), raise target_accept, "
            "or check the law against the runs"
        )
    return result
