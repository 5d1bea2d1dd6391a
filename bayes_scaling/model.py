"""Build the PyMC model of a law on a table of runs (a pure function of its arguments)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from .data import RunTable
from .errors import DataError, GroupError, OptionError
from .laws import Law
from .observation import ObservationModel, run_lags
from .priors import Prior, link_functions

__all__ = ["PARAMETRISATIONS", "POOLING", "build_model", "data_values", "resolve_pooling"]

POOLING = ("shared", "partial", "none")
#: How NUTS samples partially pooled parameters (see :func:`build_model`).
PARAMETRISATIONS = ("non_centred", "centred")


def resolve_pooling(
    law: Law, runs: RunTable, pooling: str | Mapping[str, str] | None, *, autocorrelated: bool = False
) -> dict[str, str]:
    """Pooling per sampled parameter: ``shared`` (one value), ``partial`` (group values drawn from a
    population; see :func:`build_model`) or ``none`` (independent per group). Default: ``partial`` for every
    parameter when the runs have groups, ``shared`` otherwise and when the noise is ``autocorrelated``
    (each group is one run's checkpoints, whose lasting offset from the law the noise carries: a random
    effect per run beside it is the same offset twice, and does not converge); a dict sets some parameters,
    the others keep the default."""
    if pooling is not None and not isinstance(pooling, str | Mapping):
        raise OptionError(
            f"pooling must be one of {', '.join(POOLING)} or a mapping of parameter to one, got {pooling!r}"
        )
    default = "partial" if runs.group is not None and not autocorrelated else "shared"
    chosen = dict.fromkeys(law.sampled_params, pooling if isinstance(pooling, str) else default)
    if isinstance(pooling, Mapping):
        unknown = set(pooling) - set(law.sampled_params)
        if unknown:
            raise OptionError(
                f"pooling given for unknown parameter(s) {sorted(unknown)}; "
                f"law {law.name!r} samples {', '.join(law.sampled_params)}"
            )
        chosen.update(pooling)
    for name, mode in chosen.items():
        if not isinstance(mode, str) or mode not in POOLING:
            raise OptionError(f"pooling of {name!r} must be one of {', '.join(POOLING)}, got {mode!r}")
        if mode != "shared" and runs.group is None:
            raise GroupError(f"pooling {mode!r} for {name!r} needs a group column (group=...)")
    return chosen


def data_values(
    law: Law, runs: RunTable, observation: ObservationModel, pooling: Mapping[str, str] | None = None
) -> dict[str, np.ndarray]:
    """The model's data containers for ``runs``: reference scales (covariates have none), scaled inputs
    (``<input>_log``, their logs, for the law's ``logged_inputs``), group codes where the model uses them
    (``pooling`` not given, a parameter not ``shared`` in it, or noise by group), each run's predecessor for
    autocorrelated noise and the observed target on the link scale. The scales are data too, so a law
    whose scale comes from the runs compiles once."""
    values: dict[str, np.ndarray] = {f"{k}_ref": np.asarray(law.scales[k]) for k in law.scaled_inputs}
    for k in law.inputs:
        scaled = runs.inputs[k] / law.scales[k]
        if k in law.logged_inputs:
            with np.errstate(divide="ignore", invalid="ignore"):  # a covariate's log may be -inf or NaN, as the graph
                values[f"{k}_log"] = np.log(scaled)
        else:
            values[k] = scaled
    per_group = pooling is None or any(mode != "shared" for mode in pooling.values()) or observation.noise_by_group
    if runs.group is not None and per_group:
        values["group_idx"] = runs.group
    if observation.items:
        if runs.items is None:
            raise DataError(
                "likelihood 'binomial' needs each run's number of items (column n_items, or columns={'items': ...})"
            )
        values["items"] = runs.items
    if observation.autocorrelated:
        values["lag_prev"], values["lag_gap"] = run_lags(runs, observation.autocorrelated)
    values[f"{observation.observed}_data"] = observation.link(runs.loss)
    return values


def build_model(
    law: Law,
    runs: RunTable,
    priors: Mapping[str, Prior],
    *,
    observation: ObservationModel | None = None,
    pooling: Mapping[str, str] | None = None,
    parametrisation: str = "non_centred",
) -> pm.Model:
    """The law as a PyMC model of its target on the link scale (log-loss for a loss).

    The sampled parameters are the law's well-conditioned ones (inputs relative to the reference
    scales); the published parameters are deterministics. A partially pooled parameter ``p`` has a
    population value ``p`` (the law's prior), a spread ``p_sd`` (its prior ``priors["p_sd"]``), standardised
    offsets ``p_z`` and group values ``p_group``. Non-centred (the default), NUTS samples ``p_z``: best when
    a group's runs say little about its value (a few runs, or groups close together). ``centred``, it samples
    the group values on the prior's link scale, ``p_group_link``, and ``p_z`` is computed from them: best when
    each group's runs pin its value down, where the non-centred form is a narrow ridge. All laws share one
    observation model (:mod:`bayes_scaling.observation`,
    default ``log(loss) ~ StudentT(nu, log(law), sigma)``), so the LOO scores of laws of one kind of target
    compare. The data sit in ``pm.Data`` containers so a compiled model can be refitted on other runs.
    """
    observation = observation or ObservationModel(target=law.target)
    if observation.target != law.target:
        raise OptionError(f"law {law.name!r}: target {law.target}, observation model {observation.target}")
    if observation.noise_by_group and runs.group is None:
        raise GroupError("noise_by_group=True needs a group column (group=...)")
    pooling = pooling or dict.fromkeys(law.sampled_params, "shared")
    coords: dict[str, Any] = {"obs": np.arange(len(runs))}
    if runs.group is not None:
        coords["group"] = list(runs.groups)
    with pm.Model(coords=coords) as model:
        values = data_values(law, runs, observation, pooling)
        data = {k: pm.Data(k, v, dims=None if k.endswith("_ref") else "obs") for k, v in values.items()}
        scales = {k: data[f"{k}_ref"] if k in law.scaled_inputs else 1.0 for k in law.inputs}
        population, per_group = {}, {}
        for p in law.sampled_params:
            mode = pooling[p]
            if mode != "none":
                population[p] = priors[p].to_pymc(p)
            if mode == "partial":
                forward, inverse = link_functions(p, priors[p], pt)
                sd = priors[f"{p}_sd"].to_pymc(f"{p}_sd")
                centre = forward(population[p])
                if parametrisation == "centred":
                    linked = pm.Normal(f"{p}_group_link", centre, sd, dims="group")
                    pm.Deterministic(f"{p}_z", (linked - centre) / sd, dims="group")
                else:
                    linked = centre + sd * pm.Normal(f"{p}_z", 0.0, 1.0, dims="group")
                per_group[p] = pm.Deterministic(f"{p}_group", inverse(linked), dims="group")
            elif mode == "none":
                per_group[p] = priors[p].to_pymc(f"{p}_group", dims="group")
        _natural_deterministics(law, population, per_group, scales)
        at_obs = {p: per_group[p][data["group_idx"]] if p in per_group else population[p] for p in law.sampled_params}
        logged = law.logged_inputs
        curve = law.sampled_loss(
            at_obs,
            {k: data[k] for k in law.inputs if k not in logged},
            backend="pytensor",
            scales=scales,
            logs={k: data[f"{k}_log"] for k in logged},
        )
        observed = data[f"{observation.observed}_data"]
        lag = (data["lag_prev"], data["lag_gap"]) if observation.autocorrelated else None
        observation.to_pymc(
            observation.link(curve, pt), observed, priors, data.get("group_idx"), data.get("items"), lag
        )
    return model


def _natural_deterministics(law: Law, population: dict, per_group: dict, scales: dict) -> None:
    """Published parameters: for the population where every sampled parameter has one, and per group."""
    if len(population) == len(law.sampled_params):
        for name, value in law.to_natural(population, backend="pytensor", scales=scales).items():
            if name not in population:
                pm.Deterministic(name, value)
    if per_group:
        values = {p: per_group.get(p, population.get(p)) for p in law.sampled_params}
        for name, value in law.to_natural(values, backend="pytensor", scales=scales).items():
            # E = "E" is already there as E_group; a shared parameter has no per-group value
            if name not in per_group and law.natural[name].names & set(per_group):
                pm.Deterministic(f"{name}_group", value, dims="group")
