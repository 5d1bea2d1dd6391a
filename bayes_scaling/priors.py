"""Prior specifications in the dict form ``{"dist": "Normal", "kwargs": {"mu": 0, "sigma": 1}}``.

Precedence: priors the user gives override the law file's defaults, name by name.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import PriorError, generator

__all__ = ["Prior", "PriorError", "parse_prior", "resolve_priors"]

#: Distributions a prior may name, with the parameters each accepts.
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "Normal": ("mu", "sigma"),
    "StudentT": ("nu", "mu", "sigma"),
    "HalfNormal": ("sigma",),
    "HalfStudentT": ("nu", "sigma"),
    "HalfCauchy": ("beta",),
    "LogNormal": ("mu", "sigma"),
    "Gamma": ("alpha", "beta"),
    "InverseGamma": ("alpha", "beta"),
    "Exponential": ("lam",),
    "Beta": ("alpha", "beta"),
    "Uniform": ("lower", "upper"),
    "TruncatedNormal": ("mu", "sigma", "lower", "upper"),
}

#: Parameters that must be positive, and those that may be left out (PyMC's defaults, e.g. no truncation).
_POSITIVE = frozenset({"sigma", "nu", "beta", "alpha", "lam"})
_OPTIONAL = {"TruncatedNormal": frozenset({"lower", "upper"})}

#: Support of each distribution: where partial pooling adds group offsets (log, logit or identity link).
SUPPORT: dict[str, str] = {
    **dict.fromkeys(("Normal", "StudentT"), "real"),
    **dict.fromkeys(
        ("HalfNormal", "HalfStudentT", "HalfCauchy", "LogNormal", "Gamma", "InverseGamma", "Exponential"), "positive"
    ),
    "Beta": "unit",
    **dict.fromkeys(("Uniform", "TruncatedNormal"), "bounded"),
}

#: Prior of the spread of a partially pooled parameter across groups, on its link scale.
GROUP_SD = {"dist": "HalfNormal", "kwargs": {"sigma": 0.2}}


@dataclass(frozen=True)
class Prior:
    """One prior: a PyMC distribution name and its keyword arguments."""

    dist: str
    kwargs: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_spec(cls, name: str, spec: Any) -> Prior:
        """Build from ``Prior``, ``{"dist": ..., "kwargs": {...}}`` or a string like ``"Normal(0, 1)"``."""
        if isinstance(spec, Prior):
            return spec
        if isinstance(spec, str):
            return parse_prior(name, spec)
        if not isinstance(spec, Mapping) or "dist" not in spec:
            raise PriorError(f"prior for {name!r} must be a dict with 'dist' and 'kwargs', got {spec!r}")
        extra = set(spec) - {"dist", "kwargs"}
        if extra:
            raise PriorError(f"prior for {name!r} has unknown key(s) {sorted(extra)}; use 'dist' and 'kwargs'")
        dist, kwargs = spec["dist"], spec.get("kwargs", {})
        if not isinstance(kwargs, Mapping):
            raise PriorError(f"prior for {name!r}: 'kwargs' must be a table of parameters, got {kwargs!r:.80}")
        kwargs = dict(kwargs)
        if not isinstance(dist, str) or dist not in DISTRIBUTIONS:
            raise PriorError(f"prior for {name!r}: unknown distribution {dist!r} (known: {', '.join(DISTRIBUTIONS)})")
        allowed = DISTRIBUTIONS[dist]
        for key, value in kwargs.items():
            if key not in allowed:
                raise PriorError(f"prior for {name!r}: {dist} has no parameter {key!r} (it takes {', '.join(allowed)})")
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise PriorError(f"prior for {name!r}: {dist} parameter {key!r} must be a finite number, got {value!r}")
            if key in _POSITIVE and value <= 0:
                raise PriorError(f"prior for {name!r}: {dist} parameter {key!r} must be positive, got {value!r}")
        missing = [k for k in allowed if k not in kwargs and k not in _OPTIONAL.get(dist, ())]
        if missing:
            raise PriorError(f"prior for {name!r}: {dist} needs {', '.join(missing)}")
        if kwargs.get("lower", -math.inf) >= kwargs.get("upper", math.inf):
            raise PriorError(
                f"prior for {name!r}: {dist} needs lower < upper, "
                f"got lower={kwargs['lower']!r}, upper={kwargs['upper']!r}"
            )
        if "sigma" in kwargs:  # its draws (the sampler's start, predictions for new groups) must be finite numbers
            reach = abs(kwargs.get("mu", 0.0)) + 10.0 * kwargs["sigma"]
            if reach > (700.0 if dist == "LogNormal" else 1e300):
                raise PriorError(
                    f"prior for {name!r}: {dist} with mu={kwargs.get('mu', 0.0)!r}, sigma={kwargs['sigma']!r} puts "
                    "its draws beyond the range of floating point numbers; use a smaller mu or sigma"
                )
        return cls(dist, {k: float(v) for k, v in kwargs.items()})

    def to_pymc(self, name: str, **dist_kwargs: Any) -> Any:
        """Create the PyMC random variable (inside a model context)."""
        import pymc as pm

        return getattr(pm, self.dist)(name, **self.kwargs, **dist_kwargs)

    def sample(self, size: int, seed: int | np.random.Generator | None = None) -> np.ndarray:
        """``size`` draws from the prior, made with numpy and scipy.special (a fit draws its discrepancy's
        kappa here: importing scipy.stats would cost it 0.5-1 s). Given a ``Generator``, the same draws as
        :meth:`scipy`'s ``rvs`` with it."""
        from scipy import special

        rng = generator(seed)
        k = {"mu": 0.0, **self.kwargs}
        if self.dist == "TruncatedNormal":
            return np.asarray(self.scipy().rvs(size=size, random_state=rng), dtype=float)
        draw = {
            "Normal": lambda: k["mu"] + k["sigma"] * rng.standard_normal(size),
            "StudentT": lambda: k["mu"] + k["sigma"] * rng.standard_t(k["nu"], size),
            "HalfNormal": lambda: k["sigma"] * abs(rng.standard_normal(size)),
            "HalfStudentT": lambda: abs(k["sigma"] * rng.standard_t(k["nu"], size)),
            # scipy's draws of these two are quantiles of uniform draws
            "HalfCauchy": lambda: k["beta"] * np.tan(np.pi / 2 * rng.uniform(0.0, 1.0, size)),
            "InverseGamma": lambda: k["beta"] * (1.0 / special.gammainccinv(k["alpha"], rng.uniform(0.0, 1.0, size))),
            "LogNormal": lambda: math.exp(k["mu"]) * np.exp(k["sigma"] * rng.standard_normal(size)),
            "Gamma": lambda: (1 / k["beta"]) * rng.standard_gamma(k["alpha"], size),
            "Exponential": lambda: (1 / k["lam"]) * rng.standard_exponential(size),
            "Beta": lambda: rng.beta(k["alpha"], k["beta"], size),
            "Uniform": lambda: k["lower"] + (k["upper"] - k["lower"]) * rng.uniform(0.0, 1.0, size),
        }[self.dist]
        return np.asarray(draw(), dtype=float)

    def cdf(self, x: Any) -> Any:
        """The prior's cumulative distribution function at ``x`` (scipy.special: no scipy.stats to import)."""
        from scipy import special

        if self.dist == "TruncatedNormal":
            return self.scipy().cdf(x)
        x = np.asarray(x, dtype=float)
        k = {"mu": 0.0, **self.kwargs}
        positive = np.maximum(x, 0.0)
        with np.errstate(divide="ignore"):
            return {
                "Normal": lambda: special.ndtr((x - k["mu"]) / k["sigma"]),
                "StudentT": lambda: special.stdtr(k["nu"], (x - k["mu"]) / k["sigma"]),
                "HalfNormal": lambda: special.erf(positive / (k["sigma"] * math.sqrt(2.0))),
                "HalfStudentT": lambda: 2.0 * special.stdtr(k["nu"], positive / k["sigma"]) - 1.0,
                "HalfCauchy": lambda: 2.0 / np.pi * np.arctan(positive / k["beta"]),
                "LogNormal": lambda: special.ndtr((np.log(positive) - k["mu"]) / k["sigma"]),
                "Gamma": lambda: special.gammainc(k["alpha"], k["beta"] * positive),
                "InverseGamma": lambda: special.gammaincc(k["alpha"], k["beta"] / positive),
                "Exponential": lambda: -np.expm1(-k["lam"] * positive),
                "Beta": lambda: special.betainc(k["alpha"], k["beta"], np.clip(x, 0.0, 1.0)),
                "Uniform": lambda: np.clip((x - k["lower"]) / (k["upper"] - k["lower"]), 0.0, 1.0),
            }[self.dist]()

    def scipy(self) -> Any:
        """The prior as a frozen scipy distribution (``logpdf``, ``cdf``, ``rvs``): numpy only, nothing to
        compile, but importing scipy.stats takes 0.5-1 s: :meth:`sample` and :meth:`cdf` do without it."""
        from scipy import stats

        k = {"lower": -math.inf, "upper": math.inf, "mu": 0.0, **self.kwargs}
        if self.dist == "HalfStudentT":
            return _HalfStudentT(stats.t(k["nu"], 0, k["sigma"]))
        return {
            "Normal": lambda: stats.norm(k["mu"], k["sigma"]),
            "StudentT": lambda: stats.t(k["nu"], k["mu"], k["sigma"]),
            "HalfNormal": lambda: stats.halfnorm(scale=k["sigma"]),
            "HalfCauchy": lambda: stats.halfcauchy(scale=k["beta"]),
            "LogNormal": lambda: stats.lognorm(s=k["sigma"], scale=math.exp(k["mu"])),
            "Gamma": lambda: stats.gamma(k["alpha"], scale=1 / k["beta"]),
            "InverseGamma": lambda: stats.invgamma(k["alpha"], scale=k["beta"]),
            "Exponential": lambda: stats.expon(scale=1 / k["lam"]),
            "Beta": lambda: stats.beta(k["alpha"], k["beta"]),
            "Uniform": lambda: stats.uniform(k["lower"], k["upper"] - k["lower"]),
            "TruncatedNormal": lambda: stats.truncnorm(
                (k["lower"] - k["mu"]) / k["sigma"], (k["upper"] - k["mu"]) / k["sigma"], k["mu"], k["sigma"]
            ),
        }[self.dist]()

    def to_dict(self) -> dict[str, Any]:
        return {"dist": self.dist, "kwargs": dict(self.kwargs)}

    def __str__(self) -> str:
        return f"{self.dist}({', '.join(f'{k}={v:g}' for k, v in self.kwargs.items())})"


_CALL = re.compile(r"^\s*([A-Za-z]+)\s*\((.*)\)\s*$")


def parse_prior(name: str, text: str) -> Prior:
    """Parse ``"Normal(0, 1)"`` or ``"Beta(alpha=2, beta=5)"``; positional values follow the order in DISTRIBUTIONS."""
    match = _CALL.match(text)
    if not match:
        raise PriorError(f"prior for {name!r}: cannot read {text!r}; write it like 'Normal(mu=0, sigma=1)'")
    dist, body = match.groups()
    if dist not in DISTRIBUTIONS:
        raise PriorError(f"prior for {name!r}: unknown distribution {dist!r} (known: {', '.join(DISTRIBUTIONS)})")
    kwargs: dict[str, float] = {}
    positional = list(DISTRIBUTIONS[dist])
    seen_keyword = False
    for i, part in enumerate(p.strip() for p in body.split(",") if p.strip()):
        key, _, value = part.rpartition("=")
        if key.strip():
            seen_keyword = True
        elif seen_keyword:
            raise PriorError(f"prior for {name!r}: a positional value follows a keyword in {text!r}")
        key = key.strip() or (positional[i] if i < len(positional) else "")
        if not key:
            raise PriorError(f"prior for {name!r}: too many values in {text!r}")
        try:
            kwargs[key] = float(value)
        except ValueError:
            raise PriorError(f"prior for {name!r}: {value.strip()!r} in {text!r} is not a number") from None
    return Prior.from_spec(name, {"dist": dist, "kwargs": kwargs})


def link_functions(name: str, prior: Prior, xp: Any) -> tuple[Any, Any]:
    """(forward, inverse) link of a parameter's support, with ``xp`` numpy or pytensor.tensor.

    Partial pooling draws group values as ``inverse(forward(population) + sd * z)``.
    """
    support = SUPPORT[prior.dist]
    if support == "positive":
        return xp.log, xp.exp
    if support == "unit":
        return (lambda x: xp.log(x) - xp.log1p(-x)), (lambda y: 1 / (1 + xp.exp(-y)))
    if support == "real":
        return (lambda x: x), (lambda y: y)
    raise PriorError(
        f"parameter {name!r}: partial pooling needs a prior on the real line, the positive line or (0, 1); "
        f"{prior.dist} is bounded. Use pooling 'shared' or 'none' for it, or another prior"
    )


def resolve_priors(defaults: Mapping[str, Any], user: Mapping[str, Any] | None) -> dict[str, Prior]:
    """The ``defaults`` (law and observation model), overridden by the user's priors; unknown names are refused."""
    merged: dict[str, Any] = dict(defaults)
    if user is not None and not isinstance(user, Mapping):
        raise PriorError(f"priors must be a mapping of parameter name to prior, got {type(user).__name__}")
    for name, spec in (user or {}).items():
        if name not in merged:
            raise PriorError(f"prior given for unknown parameter {name!r} (parameters: {', '.join(merged)})")
        merged[name] = spec
    return {name: Prior.from_spec(name, spec) for name, spec in merged.items()}


@dataclass(frozen=True)
class _HalfStudentT:
    """|t|: scipy has no half Student-t."""

    t: Any

    def cdf(self, x: Any) -> Any:
        return np.maximum(2 * self.t.cdf(x) - 1, 0.0)

    def logpdf(self, x: Any) -> Any:
        return np.where(np.asarray(x) >= 0, math.log(2.0) + self.t.logpdf(x), -np.inf)

    def rvs(self, size: Any = None, random_state: Any = None) -> Any:
        return abs(self.t.rvs(size=size, random_state=random_state))
